// The chore workers: after a trigger is delivered, follow it to its build in Jenkins, and post
// the commit statuses that tell its story to the forge. Both are durable work in the store
// (ChoreQueue): leased with a fencing token, so they survive restarts and fail over between
// instances, and on their own leases and in-flight limits, so they never delay delivery.
//
// Behaviour a user can rely on:
//  * Following (per Jenkins, at most follow_max_in_flight reads at once over every instance):
//    each due trigger's next read (story.hpp: queue item → build → result), its answer applied
//    by advance(), the outcome recorded only if the lease is still ours. A held Jenkins (the
//    dispatcher found it down) pauses following. The log says when a build started, finished
//    and when following gave up; metrics count queue waits, results and failures.
//  * Statuses (per source with `status:`, at most its max_in_flight posts at once): the newest
//    wish of each trigger is posted; missed ones are not (the forge shows the latest). A failed
//    post is retried with backoff from retry_initial up to retry_max, never sooner than the
//    forge's Retry-After, up to max_tries; a refusal (401/403/404/422) is given up at once and
//    logged once per source until the next reload; tokens never appear in logs.
//  * Every coroutine logs an exception that escapes it; every store call is bounded by
//    store_timeout; every request by the client's own deadlines.
#pragma once

#include <hookrelay/clock.hpp>
#include <hookrelay/config.hpp>
#include <hookrelay/jenkins.hpp>
#include <hookrelay/metrics.hpp>
#include <hookrelay/store.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <vector>

namespace hookrelay::forge_status {
class StatusClient;
}

namespace hookrelay::follow {

class Chores {
  public:
    struct JenkinsTarget {
        JenkinsConfig config;
        std::shared_ptr<JenkinsClient> client;
    };
    struct SourceTarget {
        SourceConfig config;  ///< with `status`
        std::shared_ptr<forge_status::StatusClient> client;
    };

    /// `options.poll_interval` is how often idle workers look for due chores (polling is how
    /// chores of other instances are noticed); `store_timeout` bounds every store call.
    Chores(boost::asio::any_io_executor executor, std::shared_ptr<ChoreQueue> queue,
           DispatchConfig options, std::chrono::milliseconds store_timeout,
           std::shared_ptr<Metrics> metrics = null_metrics(),
           std::shared_ptr<Clock> clock = system_clock());
    ~Chores();

    /// Before start(), and after each reload (new clients, limits and tokens, and how long a
    /// store call is awaited from now on; work in flight finishes with what it started with).
    /// Thread-safe.
    void configure(std::vector<JenkinsTarget> jenkins, std::vector<SourceTarget> sources,
                   std::chrono::milliseconds store_timeout);
    /// Starts one worker per Jenkins and per source with statuses.
    void start();
    /// A status wish or a follow was committed here: look now rather than at the next poll.
    void wake();
    /// Chores of `chore` for `key` (the Jenkins for following, the source for statuses) fall due
    /// at `at`, committed here: that lane looks then (at once if `at` has passed) rather than at
    /// its next poll, with no store call before. Thread-safe. Chores of other instances are
    /// still found by the poll.
    void due(Chore chore, std::string key, std::chrono::system_clock::time_point at);
    /// Stops taking chores and waits up to `grace` for the ones in flight; the leases of the rest
    /// run out (another instance, or this one after a restart, takes them).
    boost::asio::awaitable<void> stop(std::chrono::milliseconds grace);

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace hookrelay::follow
