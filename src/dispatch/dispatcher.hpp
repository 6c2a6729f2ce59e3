// The dispatcher: claims due triggers from the store's queue and delivers them to Jenkins,
// concurrently but within a per-Jenkins and an overall in-flight limit; retries with backoff;
// holds a Jenkins that is down (unreachable, 502/503/504) and probes it, without burning each
// trigger's retry budget, then drains its backlog. Other Jenkins servers keep flowing.
//
// Behaviour a user can rely on:
//  * Claims: a trigger is claimed (leased for dispatch.claim_lease, with a fencing token) only
//    when a request slot is free, and its lease is renewed every claim_renew_interval while the
//    request runs. The outcome is recorded only if the claim is still ours: when another
//    instance took it over (this one stalled past the lease) or an admin replayed it (a replay
//    leaves a live claim alone: only one whose lease ran out), the late
//    outcome is dropped (logged) and the other's view stands. A Jenkins' max_in_flight holds over
//    every instance sharing the store (the store counts live claims). A slot is free again once
//    Jenkins has answered and the outcome is queued: the next claim queues behind that outcome
//    (one store transaction for both with SQLite), and the store counts the claim until the
//    outcome is recorded.
//  * Claims ahead: with a store only this instance claims from (SQLite:
//    TriggerQueue::single_instance()), while a Jenkins' last answer was a build accepted within
//    k_claim_ahead_answer_time and its own max_in_flight (not dispatch.max_in_flight) is what
//    limits it, up to max_in_flight more of its due triggers are claimed than it has free slots.
//    A freed slot then starts the next request at once instead of after a store transaction, so
//    requests and the store's commits overlap; still at most max_in_flight requests at once, in
//    order, their leases renewed. They are given back when the Jenkins gets held, throttled or
//    slow, when no slot frees for k_claim_ahead_max_wait, and at stop. Being claimed, they are in
//    flight for coalescing: a newer trigger does not supersede them meanwhile.
//  * Held state is the store's, shared by every instance: an instance that finds a Jenkins
//    unavailable holds it for all; one instance at a time probes it (a probe lease); when a
//    probe succeeds every instance drains again.
//  * On stop, claims still in flight after the grace period are released, so another instance
//    (or this one after its restart) attempts them at once: delivery is at-least-once.
//  * Every coroutine it spawns logs an exception that escapes it; a request that fails that way
//    frees its slot and its claim runs out (the trigger is attempted again).
//  * The overall limit (dispatch.max_in_flight) is shared as fair_share.hpp says: each Jenkins
//    has a reserved share no other Jenkins can take, so one whose requests hang until
//    request_timeout cannot starve the others. A freed slot wakes every Jenkins waiting for one.
//  * Held (unavailable): no triggers go out; a probe runs after probe_initial, or after the
//    answer's Retry-After when that is longer (a 503 from a proxy; bounded by retry.max_delay),
//    then with backoff up to probe_max (again never before a probe answer's Retry-After).
//  * Auth-failed (401, or a 403 refusing the user rather than one job, see jenkins/client.hpp):
//    held for every instance like an outage, the hold's reason starting with
//    k_auth_failed_reason; its triggers wait, keep their order, use up no retry budget and never
//    die of it. A loud error line (at most every few minutes) and hookrelay_jenkins_auth_failed
//    name the Jenkins entry and the config key to fix. Probed every probe_max, and at once after
//    configure()/reconfigure() (a reload with new credentials, a restart): a probe the Jenkins
//    answers ends the hold; a probe refused again keeps it (and logs the loud line at once).
//  * Throttled (429 from Jenkins or a proxy in front of it): no request starts for
//    throttle_pause() (Retry-After within [probe_initial, retry.max_delay], or a backoff from
//    probe_initial to probe_max without one); afterwards one request at a time until an answer
//    that is not a 429, then full speed again. The 429'd attempts do not count against the
//    triggers' retry budgets and never make a trigger dead (retry.hpp's decide()). A probe
//    answered 429 ends a hold and starts the pause. status() shows the lane throttled.
#pragma once

#include <hookrelay/clock.hpp>
#include <hookrelay/config.hpp>
#include <hookrelay/jenkins.hpp>
#include <hookrelay/metrics.hpp>
#include <hookrelay/store.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace hookrelay::dispatch {

/// One Jenkins as the dispatcher sees it right now.
struct LaneStatus {
    std::string jenkins;
    bool held = false;          ///< down: triggers wait, a probe runs with backoff
    std::string held_reason;    ///< why, when held
    bool throttled = false;     ///< answered 429: paused for its Retry-After, then one at a time
    std::size_t in_flight = 0;  ///< requests being made now
    bool auth_failed = false;   ///< held because it refuses hookrelay's credentials
    std::string auth_key;       ///< the config key to fix then, e.g. "jenkins.ci.api_token"
    /// Some request got an answer from it since this instance started (or a hold on it ended);
    /// false: its state is unknown.
    bool contacted = false;
};

/// The config key that holds the credentials of `jenkins`: "jenkins.<name>.api_token", or
/// "jenkins.<name>.user" when it has no user (anonymous access refused).
std::string auth_key(const JenkinsConfig& jenkins);

class Dispatcher : public std::enable_shared_from_this<Dispatcher> {
  public:
    struct Target {
        JenkinsConfig config;
        std::shared_ptr<JenkinsClient> client;
    };

    /// `store_timeout` bounds every store call the dispatcher makes; `clock` gives the time and
    /// every timer (tests pass a fake one).
    Dispatcher(boost::asio::any_io_executor executor, std::shared_ptr<TriggerQueue> queue,
               DispatchConfig options, std::chrono::milliseconds store_timeout,
               std::shared_ptr<Metrics> metrics = null_metrics(),
               std::shared_ptr<Clock> clock = system_clock());
    ~Dispatcher();

    /// The configuration (rules: retry overrides and job tokens) and one target per Jenkins.
    /// Call once, before start().
    void configure(std::shared_ptr<const Config> config, std::vector<Target> targets);

    /// After a config reload: new rules (retry overrides, job tokens), the new
    /// server.store_timeout for the store calls asked from now on, and new clients for every
    /// Jenkins (credentials may have rotated). Requests in flight finish on the client they
    /// started with. A Jenkins that is no longer configured keeps its last client so its open
    /// triggers still go out. Thread-safe.
    void reconfigure(std::shared_ptr<const Config> config, std::vector<Target> targets);

    /// Called when an outcome this instance recorded makes chores due: a status to post (the
    /// trigger's source, now) or a build to follow (its Jenkins, the first poll). Set before
    /// start(); called on the dispatcher's strand (the follow workers wire it to Chores::due()).
    using ChoresDue = std::function<void(Chore chore, std::string key, TimePoint at)>;
    void on_chores_due(ChoresDue callback);

    /// Starts one scheduling loop per Jenkins. Triggers left pending by an earlier run (crash,
    /// restart) are picked up at once: delivery is at-least-once.
    void start();

    /// Something was committed: look for due triggers now rather than at the next poll.
    /// Thread-safe.
    void wake();

    /// Stops taking triggers and waits up to `grace` for requests in flight. The claims of what
    /// has not finished by then are released: those triggers stay pending in the store, free for
    /// any instance.
    boost::asio::awaitable<void> stop(std::chrono::milliseconds grace);

    /// A snapshot per Jenkins. Thread-safe.
    std::vector<LaneStatus> status() const;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace hookrelay::dispatch
