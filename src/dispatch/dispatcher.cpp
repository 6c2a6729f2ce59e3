#include "dispatch/dispatcher.hpp"

#include "config/lease.hpp"
#include "dispatch/fair_share.hpp"
#include "dispatch/multibranch.hpp"
#include "dispatch/retry.hpp"
#include "follow/story.hpp"
#include "util/bridge.hpp"
#include "util/late_answer.hpp"
#include "util/rate_limit.hpp"
#include "util/spawn.hpp"

#include <hookrelay/printable.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <cassert>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>

namespace hookrelay::dispatch {

namespace asio = boost::asio;
using Time = std::chrono::system_clock::time_point;
using Kind = JenkinsOutcome::Kind;
using std::chrono::milliseconds;

namespace {

// How often stop() looks whether the last request in flight has finished.
constexpr milliseconds k_drain_poll_interval{20};
// Log lines a persistent store fault repeats for every lane loop: at most this many per window.
constexpr std::size_t k_fault_log_burst = 10;
constexpr milliseconds k_fault_log_window{60'000};
// While a Jenkins refuses our credentials, the loud line saying what to fix is repeated at most
// this often (and once after each reload that did not fix it).
constexpr milliseconds k_auth_log_interval{300'000};
// At most this many older queue items are cancelled per delivered trigger (cancel_superseded):
// with coalescing only the newest of a key waits, so more than a few means they started.
constexpr std::size_t k_cancel_batch = 20;
// Triggers are claimed ahead of the free request slots (single-instance store) only while
// Jenkins answers within this: a trigger claimed ahead waits about one answer for its slot, and
// is in flight for coalescing meanwhile. Past it, the store's commit is small next to the answer
// and claiming ahead would gain little.
constexpr milliseconds k_claim_ahead_answer_time{20};
// Triggers claimed ahead are given back when no slot has freed for this long (requests hanging):
// they would otherwise wait claimed, out of reach of a newer trigger, until the hang ends.
constexpr milliseconds k_claim_ahead_max_wait{100};

// The delivery id and the job path come from the forge's request (the id was not signed): one
// word each, so that they cannot add fields of their own to the line.
std::string describe(const StoredTrigger& t) {
    std::string delivery, job;
    const auto path = job_display_path(t.request.job);
    return fmt::format("delivery={} trigger={} rule={} jenkins={} job={}",
                       log_word(t.delivery_id, delivery), t.id, t.request.rule, t.request.jenkins,
                       log_word(path, job));
}

milliseconds until(Time deadline, Time now) {
    return std::chrono::ceil<milliseconds>(deadline - now);
}

bool auth_held(const std::optional<JenkinsHold>& hold) {
    return hold && is_auth_failed(*hold);
}

}  // namespace

std::string auth_key(const JenkinsConfig& jenkins) {
    // Anonymous (no user) refused: what is missing is a user with a token.
    return fmt::format("jenkins.{}.{}", jenkins.name, jenkins.user.empty() ? "user" : "api_token");
}

// A claim this instance holds, until its outcome is recorded.
struct HeldClaim {
    std::string trigger_id;
    // The attempt ended and its outcome went to the store: complete() says whether the claim
    // was still ours.
    bool answered = false;
    // A renewal found it gone while its request was still at Jenkins, and said so: it is not
    // renewed or reported again.
    bool lost = false;
};

struct Lane {
    Lane(std::unique_ptr<Timer> t, Dispatcher::Target target)
        : target(std::move(target)), timer(std::move(t)) {}
    Dispatcher::Target target;
    std::unique_ptr<Timer> timer;                // the loop sleeps on it; poke() ends the sleep
    std::map<std::string, HeldClaim> in_flight;  // by claim id, until its outcome is recorded
    // Claimed ahead, not started: their requests start, in this order, as slots free up. Also
    // in in_flight (renewed like the others). Given back when held, throttled, slow or stuck.
    std::deque<Claim> ready;
    // Its last answer accepted a build within k_claim_ahead_answer_time.
    bool answers_fast = false;
    // When `ready` last started a request or was filled from empty: no slot freed since.
    Time ready_at{};
    // Requests to Jenkins in flight: claimed and not answered yet. What max_in_flight limits; a
    // slot is free again once Jenkins answered, while the outcome is still being recorded.
    // Atomic for status() from other threads; changed only on the strand.
    std::atomic<std::size_t> requests{0};
    // Held: from the store (shared by every instance); probing: this instance holds the probe.
    std::optional<JenkinsHold> hold;
    bool probing = false;
    bool probe_renewing = false;  // the probe's lease is being renewed (renew_probe)
    // Throttled: Jenkins answered 429. No request starts before paused_until; after that one
    // at a time, until an answer that is not a 429 ends it. Local to this instance.
    bool throttled = false;
    Time paused_until{};
    int throttle_streak = 0;  // 429s in a row, for the pause without Retry-After
    bool wants_slot = false;  // could start more, but the overall limit left it none
    // For status() from other threads.
    std::atomic<bool> held_flag{false};
    std::atomic<bool> throttled_flag{false};
    std::string held_reason;  // under status_mutex
    // Auth-failed: the client (credentials) Jenkins last refused. While the lane's client is
    // another one (a reload or a restart brought new credentials, or the hold came from another
    // instance), an auth-failed hold is probed at once instead of at its next slow probe.
    std::shared_ptr<JenkinsClient> refused;
    // A reload that changed how a Jenkins held down (unreachable, 5xx) is reached (its url,
    // ca_file or timeouts): probed at once, not at the next step of the backoff (up to
    // probe_max), since the reload may have fixed it.
    bool reprobe = false;
    bool force_auth_log = false;  // the next auth-failed line is logged whatever the interval
    Time auth_logged{};           // when the last one was
    std::atomic<bool> auth_failed_flag{false};
    // Some request (a trigger or a probe, here or, for a hold ended, anywhere) got an answer
    // since this instance started: the difference between "up" and "unknown".
    std::atomic<bool> contacted{false};
};

struct Dispatcher::Impl : std::enable_shared_from_this<Dispatcher::Impl> {
    Impl(asio::any_io_executor ex, std::shared_ptr<TriggerQueue> q, DispatchConfig o,
         milliseconds st, std::shared_ptr<Metrics> m, std::shared_ptr<Clock> c)
        : strand(asio::make_strand(ex)),
          queue(std::move(q)),
          metrics(std::move(m)),
          clock(std::move(c)),
          options(o),
          store_timeout(st),
          rng(std::random_device{}()),
          fault_log(k_fault_log_burst, k_fault_log_window),
          claim_ahead(queue->single_instance()) {}

    asio::strand<asio::any_io_executor> strand;
    std::shared_ptr<TriggerQueue> queue;
    std::shared_ptr<Metrics> metrics;
    std::shared_ptr<Clock> clock;
    Dispatcher::ChoresDue chores_due;  // set before start()
    DispatchConfig options;
    milliseconds store_timeout;
    std::shared_ptr<const Config> config;
    std::map<std::string, std::shared_ptr<Lane>> lanes;
    std::size_t in_flight_total = 0;
    bool running = false;
    // Set when stop() gave the claims of requests still running back after its grace: they are
    // no longer renewed. Until then they are, while their requests run (the grace may outlast a
    // lease, and another instance would then take their triggers over and send them again).
    bool claims_given_up = false;
    std::mt19937_64 rng;
    RateLimit fault_log;
    const bool claim_ahead;           // the store is this instance's alone
    mutable std::mutex status_mutex;  // guards lanes' identity for status() from other threads

    template <class... Args>
    void log_fault(fmt::format_string<Args...> format, Args&&... args) {
        std::size_t suppressed = 0;
        if (!fault_log.allow(&suppressed)) return;
        auto line = fmt::format(format, std::forward<Args>(args)...);
        if (suppressed > 0) line += fmt::format(" ({} similar lines suppressed)", suppressed);
        spdlog::error("{}", line);
    }

    std::shared_ptr<Lane> make_lane(Target target) {
        return std::make_shared<Lane>(clock->make_timer(strand), std::move(target));
    }
    void spawn_lane(const std::shared_ptr<Lane>& lane) {
        spawn_logged(strand, keep_lane(lane),
                     "jenkins=" + lane->target.config.name + ": dispatcher");
    }

    // run_lane() until the dispatcher stops: one that fails (out of memory, a bug) is logged and
    // started again after a poll_interval, so that a Jenkins' deliveries never stop for good
    // while webhooks are still answered.
    asio::awaitable<void> keep_lane(std::shared_ptr<Lane> lane);
    asio::awaitable<void> run_lane(std::shared_ptr<Lane> lane);
    void start_request(const std::shared_ptr<Lane>& lane, Claim claim);
    std::size_t claim_ahead_room(const Lane& lane, std::size_t free) const;
    // Gives back the claims of triggers claimed ahead and not started (held, throttled, slow,
    // stuck, stop).
    asio::awaitable<void> give_back_ready(std::shared_ptr<Lane> lane);
    // Releases `claim_ids` of `jenkins`; a failure is logged ("cannot give back the N <what>").
    // Whether the store released them.
    asio::awaitable<bool> give_back(std::string jenkins, std::vector<std::string> claim_ids,
                                    std::string what);
    asio::awaitable<void> deliver(std::shared_ptr<Lane> lane, Claim claim);
    void log_attempt(const StoredTrigger& trigger, const JenkinsOutcome& outcome,
                     const TriggerUpdate& update, bool waiting_for_branch, Time now) const;
    // One attempt at a trigger: the build request, or a scan (`scan:` triggers; the branch job
    // of a multibranch trigger not created yet), within the scan rate limit.
    struct Attempted {
        JenkinsOutcome outcome;
        std::optional<TriggerUpdate> update;  // decided here rather than by decide()
        bool asked = true;                    // a request went to Jenkins
    };
    asio::awaitable<Attempted> attempt(const StoredTrigger& trigger, const JenkinsConfig& jenkins,
                                       std::shared_ptr<JenkinsClient> client);
    asio::awaitable<result<ScanGate>> scan_gate(const StoredTrigger& trigger,
                                                const JenkinsConfig& jenkins);
    asio::awaitable<void> forget_scan(const JenkinsConfig& jenkins, const std::string& project,
                                      Time granted_at);
    asio::awaitable<void> cancel_superseded(StoredTrigger trigger, JenkinsConfig jenkins,
                                            std::shared_ptr<JenkinsClient> client);
    asio::awaitable<void> probe(std::shared_ptr<Lane> lane, JenkinsHold hold);
    // Every claim_renew_interval while wanted: a renewal of the claims in flight and of each
    // probe's lease, each asked on its own.
    asio::awaitable<void> renew_claims();
    // One renewal of `claim_ids`; a claim it did not find is reported lost.
    asio::awaitable<void> renew(std::vector<std::string> claim_ids);
    asio::awaitable<void> renew_probe(std::shared_ptr<Lane> lane);
    void report_lost_claims(const std::vector<std::string>& asked,
                            const std::vector<std::string>& renewed);
    void poke(Lane& lane) { lane.timer->cancel(); }
    // Whether a store slow to answer (within store_timeout) can let the lease of a request still
    // at Jenkins run out (config/lease.hpp); said at start and when a reload changes
    // store_timeout.
    void warn_if_leases_can_lapse() const {
        if (auto warning = claim_lease_warning(options, store_timeout); !warning.empty()) {
            spdlog::warn("dispatcher: {}", warning);
        }
    }
    std::size_t free_slots(const Lane& lane) const;
    void throttle(Lane& lane, const JenkinsOutcome& outcome);
    void set_held(Lane& lane, std::optional<JenkinsHold> hold);
    void log_auth_failed(Lane& lane);
    RetryPolicy retry_for(const StoredTrigger& t, const JenkinsConfig& jenkins) const;
    std::optional<Secret> token_for(const StoredTrigger& t) const;

    // A claim whose answer may come after ask() gave up on it (store_timeout): its triggers
    // would stay claimed, unsent and counted against max_in_flight until their lease ran out.
    // Its handler goes through forward_claim(); once ask() timed out, give_back_late() gives the
    // claims of the answer back at once, whether it came before or after.
    struct LateClaim {
        LateClaim(std::weak_ptr<Impl> dispatcher, std::string jenkins)
            : dispatcher(std::move(dispatcher)), jenkins(std::move(jenkins)) {}
        // Weak: the store holds this in the claim's handler until it answers.
        const std::weak_ptr<Impl> dispatcher;
        const std::string jenkins;
        LateAnswer answer;

        // Releases `ids` from the dispatcher's strand; the coroutine holds the dispatcher from
        // its start. Once the dispatcher is gone they run out with their lease.
        void give_back(std::vector<std::string> ids) const {
            auto self = dispatcher.lock();
            if (!self || ids.empty()) return;
            auto& strand = self->strand;
            spawn_logged(strand, self->release_late(self, jenkins, std::move(ids)),
                         "jenkins=" + jenkins + ": dispatcher: giving back the late claims");
        }
    };
    template <class Done>
    static auto forward_claim(std::shared_ptr<LateClaim> late, Done done) {
        return [late = std::move(late), done = std::move(done)](result<ClaimBatch> answer) mutable {
            std::vector<std::string> ids;
            if (answer) {
                for (const auto& claim : answer->claims) ids.push_back(claim.claim_id);
            }
            late->give_back(late->answer.answered(std::move(ids)));
            // Answered even when nobody waits any more: await_callback() then lets go of its
            // state on its own executor.
            done(std::move(answer));
        };
    }
    static void give_back_late(const std::shared_ptr<LateClaim>& late);
    asio::awaitable<void> release_late(std::shared_ptr<Impl> self, std::string jenkins,
                                       std::vector<std::string> ids);

    // A store call, bounded by store_timeout: the answer, or errc::store_timeout.
    template <class T, class Start>
    asio::awaitable<result<T>> ask(Start start) {
        auto answer = co_await await_callback<result<T>>(std::move(start), store_timeout);
        if (!answer) co_return make_error_code(errc::store_timeout);
        co_return std::move(*answer);
    }
};

RetryPolicy Dispatcher::Impl::retry_for(const StoredTrigger& t,
                                        const JenkinsConfig& jenkins) const {
    for (const auto& rule : config->rules) {
        if (rule.name == t.request.rule && rule.retry) return *rule.retry;
    }
    return jenkins.retry;
}

std::optional<Secret> Dispatcher::Impl::token_for(const StoredTrigger& t) const {
    // The store keeps no secrets: a job token is looked up in the current config.
    return job_token(*config, t.request);
}

std::size_t Dispatcher::Impl::free_slots(const Lane& lane) const {
    // A throttled Jenkins gets one request at a time: the first answer tells whether it still
    // throttles, without a burst of 429s.
    const std::size_t lane_limit =
        lane.throttled ? 1 : static_cast<std::size_t>(lane.target.config.max_in_flight);
    std::vector<LaneLoad> loads;
    loads.reserve(lanes.size());
    std::size_t index = 0;
    for (const auto& [name, other] : lanes) {
        if (other.get() == &lane) index = loads.size();
        loads.push_back({other->requests.load(), other->target.config.max_in_flight});
    }
    std::size_t n = 0;
    while (loads[index].in_flight < lane_limit &&
           dispatch::may_start(loads, index, options.max_in_flight)) {
        ++loads[index].in_flight;
        ++n;
    }
    return n;
}

void Dispatcher::Impl::set_held(Lane& lane, std::optional<JenkinsHold> hold) {
    const auto& name = lane.target.config.name;
    const bool was = lane.hold.has_value();
    const bool was_auth = auth_held(lane.hold);
    lane.hold = std::move(hold);
    {
        std::lock_guard lock(status_mutex);
        lane.held_reason = lane.hold ? lane.hold->reason : std::string();
    }
    const bool auth = auth_held(lane.hold);
    if (was == lane.hold.has_value() && was_auth == auth) return;
    lane.held_flag = lane.hold.has_value();
    lane.auth_failed_flag = auth;
    // Back from a hold, how fast it answers is known again from its first build request.
    if (lane.hold) lane.answers_fast = false;
    // Ended: a probe (this instance's or another's) found it answering.
    if (!lane.hold) lane.contacted = true;
    metrics->jenkins_held(name, lane.hold.has_value());
    if (was_auth != auth) metrics->jenkins_auth_failed(name, auth_key(lane.target.config), auth);
    if (auth) {
        log_auth_failed(lane);
    } else if (lane.hold) {
        // A hold found at start (an earlier run's, or another instance's) may be past its
        // probe time: the probe is then due now, not "in -22822 ms".
        const auto wait = until(lane.hold->next_probe_at, clock->now()).count();
        if (wait > 0) {
            spdlog::warn("jenkins={} is held ({}); its triggers wait, next probe in {} ms", name,
                         lane.hold->reason, wait);
        } else {
            spdlog::warn("jenkins={} is held ({}); its triggers wait, a probe is due now", name,
                         lane.hold->reason);
        }
    } else {
        spdlog::info("jenkins={} is no longer held; draining its backlog", name);
    }
}

void Dispatcher::Impl::log_auth_failed(Lane& lane) {
    const auto now = clock->now();
    const bool force = std::exchange(lane.force_auth_log, false);
    if (!force && lane.auth_logged != Time{} && now - lane.auth_logged < k_auth_log_interval) {
        return;
    }
    lane.auth_logged = now;
    const auto& jenkins = lane.target.config;
    std::string_view reason = lane.hold ? std::string_view(lane.hold->reason) : "";
    if (reason.starts_with(k_auth_failed_reason)) reason.remove_prefix(k_auth_failed_reason.size());
    const auto who = jenkins.user.empty()
                         ? std::string("anonymous access is refused: configure a user and token")
                         : fmt::format("user '{}'", jenkins.user);
    const auto entry = config && jenkins.where.line > 0
                           ? fmt::format(" (the entry at {}:{})", config->file, jenkins.where.line)
                           : std::string();
    spdlog::error(
        "jenkins={} refuses hookrelay's credentials ({}; {}): its triggers wait, none is dropped "
        "and no retry budget is used. Fix {}{} and reload (`hookrelay reload` or SIGHUP): the "
        "reload probes it at once",
        jenkins.name, reason, who, auth_key(jenkins), entry);
}

void Dispatcher::Impl::throttle(Lane& lane, const JenkinsOutcome& outcome) {
    const auto& jenkins = lane.target.config;
    const auto now = clock->now();
    // Requests already in flight when the first 429 came back may bring more 429s; they belong
    // to the same pause and do not lengthen the backoff.
    const bool paused = lane.throttled && now < lane.paused_until;
    if (!paused) ++lane.throttle_streak;
    const auto pause = throttle_pause(outcome, jenkins, lane.throttle_streak);
    lane.paused_until = std::max(lane.paused_until, now + pause);
    if (!lane.throttled) {
        spdlog::warn(
            "jenkins={} is throttling us ({}); pausing its triggers for {} ms, then one request "
            "at a time until it accepts them again",
            jenkins.name, outcome.detail, pause.count());
    } else if (!paused) {
        spdlog::info("jenkins={} still throttling ({}); pausing for {} ms", jenkins.name,
                     outcome.detail, pause.count());
    }
    lane.throttled = true;
    lane.throttled_flag = true;
}

asio::awaitable<void> Dispatcher::Impl::keep_lane(std::shared_ptr<Lane> lane) {
    auto self = shared_from_this();
    co_await run_restarting([&] { return run_lane(lane); }, [&] { return running; }, *clock,
                            *lane->timer, options.poll_interval,
                            "jenkins=" + lane->target.config.name + ": dispatcher: delivering");
}

asio::awaitable<void> Dispatcher::Impl::run_lane(std::shared_ptr<Lane> lane) {
    auto self = shared_from_this();
    const auto name = lane->target.config.name;
    while (running) {
        const auto now = clock->now();
        std::optional<Time> wake_at;
        lane->wants_slot = false;
        if (!lane->ready.empty()) {
            const bool stuck = now - lane->ready_at >= k_claim_ahead_max_wait;
            // Requests hanging: none ahead again until Jenkins answers one fast.
            if (stuck) lane->answers_fast = false;
            if (stuck || lane->hold || lane->throttled || !lane->answers_fast) {
                co_await give_back_ready(lane);
                if (!running) break;
            }
        }
        if (lane->throttled && now < lane->paused_until) {
            wake_at = lane->paused_until;
        } else {
            std::size_t free = free_slots(*lane);
            // Claimed ahead: these start first, in their order.
            while (free > 0 && !lane->ready.empty()) {
                auto claim = std::move(lane->ready.front());
                lane->ready.pop_front();
                lane->ready_at = now;
                const auto held = lane->in_flight.find(claim.claim_id);
                assert(held != lane->in_flight.end());  // erased only with its entry in ready
                // Lost since (taken over, or replayed once its lease ran out): the renewal said
                // so; not sent.
                if (held->second.lost) {
                    lane->in_flight.erase(held);
                    continue;
                }
                start_request(lane, std::move(claim));
                --free;
            }
            const std::size_t own_room = lane->target.config.max_in_flight > lane->requests ? 1 : 0;
            const std::size_t ahead = claim_ahead_room(*lane, free);
            // Claim what can start now, and what may wait ready. A held lane asks with no room
            // too: the answer says whether the hold still stands (another instance may have
            // ended it).
            if (free + ahead > 0 || lane->hold) {
                ClaimRequest request;
                request.jenkins = name;
                request.limit = lane->hold ? 0 : free + ahead;
                // The store counts the claims waiting ready as live: room for them besides.
                request.max_in_flight = lane->target.config.max_in_flight +
                                        (ahead > 0 ? lane->target.config.max_in_flight : 0);
                request.now = now;
                request.lease = options.claim_lease;
                auto late = std::make_shared<LateClaim>(weak_from_this(), name);
                auto batch = co_await ask<ClaimBatch>([&](auto done) {
                    queue->claim(std::move(request), forward_claim(late, std::move(done)));
                });
                if (!batch) {
                    log_fault("jenkins={}: cannot claim due triggers from the store: {}", name,
                              batch.error().message());
                    if (batch.error() == errc::store_timeout) give_back_late(late);
                }
                if (!running) {
                    // Stopped while the claim was on its way: nothing new goes to Jenkins, and
                    // the triggers are free for another instance (or this one's restart) at once.
                    std::vector<std::string> ids;
                    if (batch) {
                        for (const auto& claim : batch->claims) ids.push_back(claim.claim_id);
                    }
                    co_await give_back(name, std::move(ids), "claim(s) taken while stopping");
                    break;
                }
                if (batch) {
                    const bool was_held = lane->hold.has_value();
                    set_held(*lane, batch->hold);
                    if (was_held && !lane->hold) continue;  // another instance ended it: claim
                    // The limits as they are now. While the claim was on its way other lanes
                    // may have taken the overall limit's shared slots (they woke together), and
                    // a 429 may have paused this Jenkins: what may not start now waits ready
                    // (claimed ahead, and given back at the top of the loop if it must), or goes
                    // back to the store where nothing is claimed ahead.
                    const auto answered = clock->now();
                    const bool paused = lane->throttled && answered < lane->paused_until;
                    const std::size_t may_start =
                        paused || lane->hold ? 0 : std::min(free, free_slots(*lane));
                    std::size_t started = 0;
                    std::vector<std::string> surplus;
                    std::vector<std::string> kept;
                    for (auto& claim : batch->claims) {
                        if (started == may_start) {
                            if (!claim_ahead) {
                                surplus.push_back(claim.claim_id);
                                continue;
                            }
                            kept.push_back(claim.claim_id);
                            lane->in_flight.emplace(claim.claim_id, HeldClaim{claim.trigger.id});
                            if (lane->ready.empty()) lane->ready_at = answered;
                            lane->ready.push_back(std::move(claim));
                            continue;
                        }
                        kept.push_back(claim.claim_id);
                        lane->in_flight.emplace(claim.claim_id, HeldClaim{claim.trigger.id});
                        ++started;
                        start_request(lane, std::move(claim));
                    }
                    // Their leases run from `now`. A claim the store was slow to answer would
                    // wait for the next renewal, up to claim_renew_interval more, and that
                    // renewal's own answer: renewed at once instead.
                    if (!kept.empty() && answered - now >= options.claim_renew_interval) {
                        spawn_logged(strand, renew(std::move(kept)),
                                     "dispatcher: renewing claims answered late");
                    }
                    if (!surplus.empty()) {
                        co_await give_back(name, std::move(surplus),
                                           "trigger(s) claimed for slots taken meanwhile");
                        if (!running) break;
                    }
                    if (!batch->hold && started == free && batch->claims.size() == free + ahead &&
                        free + ahead > 0) {
                        continue;  // there may be more: claim again at once
                    }
                    // Fewer started than the claim was for: held back again (below).
                    if (started < free) free = 0;
                }
            }
            // Held back by the overall limit only: a slot freed by any Jenkins wakes us.
            lane->wants_slot = free == 0 && own_room > 0 && !lane->hold && !lane->throttled;
            if (!lane->hold) lane->reprobe = false;  // up again meanwhile
            const bool new_credentials =
                auth_held(lane->hold) && lane->refused != lane->target.client;
            if (lane->hold && !lane->probing && (new_credentials || lane->reprobe)) {
                lane->reprobe = false;
                if (new_credentials) lane->refused = lane->target.client;
                if (lane->hold->next_probe_at > now) {
                    // Credentials not tried yet (a reload, a start), or a reload while down: try
                    // now, for every instance.
                    auto sooner = *lane->hold;
                    sooner.next_probe_at = now;
                    auto moved = co_await ask<void>(
                        [&](auto done) { queue->hold(name, sooner, std::move(done)); });
                    if (moved) {
                        lane->hold->next_probe_at = now;
                        lane->force_auth_log = new_credentials;
                    } else {
                        log_fault(
                            "jenkins={}: cannot schedule the probe of the new settings in the "
                            "store: {}",
                            name, moved.error().message());
                    }
                }
            }
            if (lane->hold) {
                if (!lane->probing && lane->hold->next_probe_at <= now) {
                    // Renewed while the probe runs (renew_claims()).
                    auto granted = co_await ask<std::optional<JenkinsHold>>([&](auto done) {
                        queue->try_probe(name, now, options.claim_lease, std::move(done));
                    });
                    // Stopped meanwhile: no probe starts (its lease runs out).
                    if (!running) break;
                    if (granted && *granted) {
                        lane->probing = true;
                        spawn_logged(strand, probe(lane, **granted),
                                     "jenkins=" + name + ": dispatcher: probing");
                    }
                    // Not granted: another instance probes; look again after a poll.
                } else if (lane->hold->next_probe_at > now) {
                    wake_at = lane->hold->next_probe_at;
                }
            } else if (lane->in_flight.empty()) {
                // Idle: learn when the next trigger falls due. Busy: a completion wakes us.
                auto next = co_await ask<std::optional<Time>>(
                    [&](auto done) { queue->next_due(name, std::move(done)); });
                // Due already but not claimable (other instances hold this Jenkins'
                // max_in_flight): their completions are not announced, so poll.
                if (next && *next && **next > now) wake_at = **next;
            }
        }
        if (!running) break;
        // Sleep until the next trigger is due or the poll interval passes, whichever is first;
        // a commit, a finished request or a recovered Jenkins wakes the lane earlier.
        auto deadline = clock->now() + options.poll_interval;
        if (wake_at) deadline = std::min(deadline, *wake_at);
        if (!lane->ready.empty())
            deadline = std::min(deadline, lane->ready_at + k_claim_ahead_max_wait);
        co_await lane->timer->wait_until(deadline);
    }
}

void Dispatcher::Impl::start_request(const std::shared_ptr<Lane>& lane, Claim claim) {
    ++lane->requests;
    ++in_flight_total;
    spawn_logged(strand, deliver(lane, std::move(claim)),
                 "jenkins=" + lane->target.config.name + ": dispatcher: delivering");
}

std::size_t Dispatcher::Impl::claim_ahead_room(const Lane& lane, std::size_t free) const {
    if (!claim_ahead || !lane.answers_fast || lane.hold || lane.throttled) return 0;
    const std::size_t max = lane.target.config.max_in_flight;
    // Only when the Jenkins' own limit is what stops it: a slot the overall limit withholds
    // may be a long time coming.
    if (free != (max > lane.requests ? max - lane.requests : 0)) return 0;
    return max > lane.ready.size() ? max - lane.ready.size() : 0;
}

asio::awaitable<void> Dispatcher::Impl::give_back_ready(std::shared_ptr<Lane> lane) {
    std::vector<std::string> ids;
    for (const auto& claim : lane->ready) {
        ids.push_back(claim.claim_id);
        lane->in_flight.erase(claim.claim_id);
    }
    lane->ready.clear();
    co_await give_back(lane->target.config.name, std::move(ids), "trigger(s) claimed ahead");
}

asio::awaitable<bool> Dispatcher::Impl::give_back(std::string jenkins,
                                                  std::vector<std::string> claim_ids,
                                                  std::string what) {
    if (claim_ids.empty()) co_return true;
    const auto count = claim_ids.size();
    auto released = co_await ask<void>(
        [&](auto done) { queue->release(std::move(claim_ids), std::move(done)); });
    if (!released) {
        log_fault("jenkins={}: cannot give back the {} {}: {}; they expire after {} ms", jenkins,
                  count, what, released.error().message(), options.claim_lease.count());
    }
    co_return released.has_value();
}

void Dispatcher::Impl::give_back_late(const std::shared_ptr<LateClaim>& late) {
    // Answered after ask() looked for the answer, and before this: it reached nobody.
    late->give_back(late->answer.abandon());
}

asio::awaitable<void> Dispatcher::Impl::release_late(std::shared_ptr<Impl> self,
                                                     std::string jenkins,
                                                     std::vector<std::string> ids) {
    (void)self;  // keeps the dispatcher alive until this ends
    const auto count = ids.size();
    spdlog::warn(
        "jenkins={}: the store answered a claim of {} trigger(s) after store_timeout ({} ms); "
        "giving them back to be claimed again",
        jenkins, count, store_timeout.count());
    if (!co_await give_back(jenkins, std::move(ids), "claim(s) the store answered late")) {
        co_return;
    }
    if (auto it = lanes.find(jenkins); it != lanes.end()) poke(*it->second);
}

void Dispatcher::Impl::log_attempt(const StoredTrigger& trigger, const JenkinsOutcome& outcome,
                                   const TriggerUpdate& update, bool waiting_for_branch,
                                   Time now) const {
    switch (update.state) {
        case TriggerState::delivered:
            spdlog::info("{} delivered: {} {} ({} ms, attempt {})", describe(trigger),
                         update.last_outcome, outcome.queue_url, outcome.duration.count(),
                         trigger.attempts + 1);
            break;
        case TriggerState::dead:
            spdlog::warn("{} dead: {}", describe(trigger), update.last_outcome);
            break;
        default:
            if (outcome.maybe_queued) {
                spdlog::warn(
                    "{} not answered, will retry in {} ms once a probe finds Jenkins "
                    "answering: {}",
                    describe(trigger), until(update.next_attempt_at, now).count(),
                    update.last_outcome);
            } else if (outcome.kind == Kind::unavailable) {
                spdlog::warn("{} not delivered, Jenkins unavailable: {}", describe(trigger),
                             outcome.detail);
            } else if (outcome.kind == Kind::throttled) {
                spdlog::info("{} not delivered, Jenkins throttles us: {}", describe(trigger),
                             outcome.detail);
            } else if (outcome.kind == Kind::auth_failed) {
                spdlog::warn("{} not delivered, Jenkins refuses our credentials: {}",
                             describe(trigger), outcome.detail);
            } else if (waiting_for_branch) {
                spdlog::debug("{} {}", describe(trigger), update.last_outcome);
            } else {
                spdlog::info("{} will retry in {} ms: {}", describe(trigger),
                             until(update.next_attempt_at, now).count(), update.last_outcome);
            }
    }
}

asio::awaitable<void> Dispatcher::Impl::deliver(std::shared_ptr<Lane> lane, Claim claim) {
    auto self = shared_from_this();
    // The slot is given back however this ends, an exception included (the claim then runs out
    // and the trigger is attempted again).
    struct Slot {
        Impl& impl;
        std::shared_ptr<Lane> lane;
        std::string claim_id;
        HeldClaim& held;  // the lane's entry, erased only by ~Slot
        bool outcome_asked = false;
        // Jenkins answered (or the attempt ended): the request slot goes to the next trigger at
        // once, without waiting for this outcome's commit. The store still counts this claim
        // until the outcome is recorded, so max_in_flight holds over every instance; with the
        // outcome queued first, the next claim usually joins its transaction.
        void free_request() {
            if (std::exchange(held.answered, true)) return;
            --lane->requests;
            wake_lanes();
        }
        void wake_lanes() {
            impl.poke(*lane);
            for (auto& [name, other] : impl.lanes) {
                if (other->wants_slot) impl.poke(*other);
            }
        }
        ~Slot() {
            if (!outcome_asked) {
                // Ended by an exception before the outcome went to the store: give the trigger
                // back rather than keep it counted against max_in_flight until the lease runs
                // out. Once the outcome went, the claim is never released here: an outcome the
                // store has not answered (a timeout) may still commit, and a release committed
                // before it would let this trigger be claimed and sent again at once.
                impl.queue->release({claim_id}, [](result<void>) {});
            }
            free_request();
            lane->in_flight.erase(claim_id);
            --impl.in_flight_total;
            // Also after the outcome: a claim that ran before it was recorded (another
            // connection, another instance) may have found this Jenkins full.
            wake_lanes();
        }
    } slot{*this, lane, claim.claim_id, lane->in_flight.at(claim.claim_id)};
    const auto& trigger = claim.trigger;
    // Copies: a reload may replace the lane's target while this request runs.
    const auto jenkins = lane->target.config;
    const auto client = lane->target.client;
    Attempted attempted;
    try {
        attempted = co_await attempt(trigger, jenkins, client);
    } catch (const std::exception& e) {
        // A bug on our side, not Jenkins' answer: retried with backoff like a 500, so a request
        // that always fails this way cannot spin.
        spdlog::error("{}: internal error while requesting the build: {}", describe(trigger),
                      e.what());
        attempted = Attempted{};
        attempted.outcome.kind = Kind::server_error;
        attempted.outcome.detail = std::string("internal error: ") + e.what();
    }
    const auto& outcome = attempted.outcome;
    const auto now = clock->now();
    auto update = attempted.update
                      ? std::move(*attempted.update)
                      : decide(trigger, outcome, retry_for(trigger, jenkins), now, rng);
    if (trigger.request.scan_only && !attempted.update && update.state == TriggerState::delivered) {
        update.last_outcome = "scan of " + job_display_path(trigger.request.job) + " requested";
    }
    // Waiting for a branch job to appear: no retry budget used.
    const bool waiting_for_branch = update.state != TriggerState::dead &&
                                    update.state != TriggerState::delivered &&
                                    branch_job_missing(trigger.request, outcome);
    // The build to follow and the commit status the attempt calls for.
    follow::annotate_attempt(update, trigger, outcome, jenkins, now);
    if (waiting_for_branch && trigger.request.status) {
        auto wish = branch_status(jenkins.name, trigger.request);
        if (!(trigger.status.wanted == wish)) update.status = std::move(wish);
    }
    if (attempted.asked) {
        metrics->jenkins_request(jenkins.name, outcome.http_status,
                                 std::chrono::duration<double>(outcome.duration));
        lane->answers_fast = (outcome.kind == Kind::queued || outcome.kind == Kind::merged) &&
                             outcome.duration <= k_claim_ahead_answer_time;
    }
    const auto& rule = trigger.request.rule;
    if (!attempted.asked) {
        spdlog::debug("{}: {}", describe(trigger), update.last_outcome);
    } else if (waiting_for_branch) {
        metrics->trigger_outcome(rule, jenkins.name, "held");
    } else if (update.state == TriggerState::delivered) {
        metrics->trigger_outcome(rule, jenkins.name,
                                 outcome.kind == Kind::merged ? "merged" : "delivered");
        metrics->delivery_latency(jenkins.name,
                                  std::chrono::duration<double>(now - trigger.created_at));
    } else if (update.state == TriggerState::dead) {
        metrics->trigger_outcome(rule, jenkins.name, "dead");
    } else if ((outcome.kind == Kind::unavailable && !outcome.maybe_queued) ||
               outcome.kind == Kind::throttled || outcome.kind == Kind::auth_failed) {
        // Not counted against the trigger: the whole Jenkins waits (held or paused).
        metrics->trigger_outcome(rule, jenkins.name, "held");
    } else {
        metrics->trigger_outcome(rule, jenkins.name, "retried");
    }

    // When nothing went to Jenkins (a scan deferred or covered) it was logged above, at debug.
    if (attempted.asked) log_attempt(trigger, outcome, update, waiting_for_branch, now);
    if (!attempted.asked) {
        // Nothing went to Jenkins (a scan covered by another, or deferred): its lane state
        // stays as it was.
    } else if (outcome.kind == Kind::throttled) {
        throttle(*lane, outcome);
    } else if (outcome.kind != Kind::unavailable && outcome.kind != Kind::auth_failed &&
               lane->throttled) {
        lane->throttled = false;
        lane->throttled_flag = false;
        lane->throttle_streak = 0;
        spdlog::info("jenkins={} accepts requests again ({}); no longer throttled", jenkins.name,
                     outcome.detail);
    }
    if (attempted.asked && outcome.kind == Kind::unavailable && !lane->hold) {
        // Held for every instance: nobody claims its triggers until a probe finds it back.
        JenkinsHold hold;
        hold.reason = outcome.detail;
        hold.since = now;
        hold.next_probe_at = now + probe_delay(outcome, jenkins, jenkins.probe_initial);
        auto held = co_await ask<void>(
            [&](auto done) { queue->hold(jenkins.name, hold, std::move(done)); });
        if (!held) {
            log_fault("jenkins={}: cannot record the hold in the store: {}", jenkins.name,
                      held.error().message());
        }
        set_held(*lane, hold);
    }
    if (outcome.http_status != 0) lane->contacted = true;
    if (attempted.asked && outcome.kind == Kind::auth_failed) {
        // When a reload has replaced these credentials since, the new ones are tried at once.
        lane->refused = client;
        if (!auth_held(lane->hold)) {
            // Held for every instance, as auth-failed: probed slowly (probe_max), and at once
            // after a reload.
            JenkinsHold hold;
            hold.reason = std::string(k_auth_failed_reason) + outcome.detail;
            hold.since = now;
            hold.next_probe_at = now + jenkins.probe_max;
            auto held = co_await ask<void>(
                [&](auto done) { queue->hold(jenkins.name, hold, std::move(done)); });
            if (!held) {
                log_fault("jenkins={}: cannot record the hold in the store: {}", jenkins.name,
                          held.error().message());
            }
            if (lane->hold) hold.since = lane->hold->since;
            set_held(*lane, hold);
        }
    }

    const bool delivered = update.state == TriggerState::delivered;
    // The chores this outcome makes due, once it is recorded.
    const bool status_wished = update.status.has_value() && trigger.request.status.has_value();
    const bool follows = delivered && trigger.request.follow != FollowMode::none;
    const auto first_poll = update.next_attempt_at;
    // Said if the outcome is not recorded: what this attempt did at Jenkins.
    const std::string at_jenkins = delivered
                                       ? (update.attempt.queue_url.empty()
                                              ? std::string("Jenkins took it")
                                              : "Jenkins queued it as " + update.attempt.queue_url)
                                       : "its outcome: " + update.attempt.outcome;
    auto completed = co_await ask<Completion>([&](auto done) {
        queue->complete(claim.claim_id, std::move(update), std::move(done));
        slot.outcome_asked = true;
        slot.free_request();
    });
    if (completed && *completed == Completion::applied && chores_due) {
        if (status_wished) chores_due(Chore::status, trigger.source, now);
        if (follows) chores_due(Chore::follow, jenkins.name, first_poll);
    }
    if (completed && *completed == Completion::superseded) {
        metrics->trigger_outcome(rule, jenkins.name, "superseded");
        spdlog::info(
            "{}: superseded by a newer trigger with the same coalesce key (waiting, or already "
            "delivered); it will not be retried",
            describe(trigger));
    }
    if (completed && *completed == Completion::applied && delivered &&
        trigger.request.cancel_superseded && !trigger.request.coalesce.empty()) {
        spawn_logged(strand, cancel_superseded(trigger, jenkins, client),
                     "jenkins=" + jenkins.name + ": dispatcher: cancelling superseded queue items");
    }
    if (!completed) {
        // Unless the outcome commits after all, the trigger stays as it was in the store; its
        // claim runs out and it is attempted again: at-least-once.
        log_fault(
            "{}: the store did not record the outcome ({}); unless it still does, the trigger is "
            "attempted again once its claim runs out ({} ms)",
            describe(trigger), completed.error().message(), options.claim_lease.count());
    } else if (*completed == Completion::stale) {
        // The attempt is not in the trigger's history: this line is where it is told. When
        // Jenkins took it, whoever holds the trigger now may send it again: two builds.
        spdlog::warn(
            "{}: outcome not recorded: the trigger was replayed or taken over by another "
            "instance while this attempt ran ({}){}",
            describe(trigger), at_jenkins,
            delivered ? "; if it is sent again, the job builds twice for this event" : "");
    }
}

asio::awaitable<result<ScanGate>> Dispatcher::Impl::scan_gate(const StoredTrigger& trigger,
                                                              const JenkinsConfig& jenkins) {
    const auto project = job_display_path(project_of(trigger.request));
    co_return co_await ask<ScanGate>([&](auto done) {
        queue->request_scan(jenkins.name, project, trigger.created_at, clock->now(),
                            jenkins.scan_interval, std::move(done));
    });
}

asio::awaitable<void> Dispatcher::Impl::forget_scan(const JenkinsConfig& jenkins,
                                                    const std::string& project, Time granted_at) {
    auto forgotten = co_await ask<void>(
        [&](auto done) { queue->forget_scan(jenkins.name, project, granted_at, std::move(done)); });
    if (!forgotten) {
        log_fault("jenkins={}: cannot forget the scan of {} that did not happen: {}", jenkins.name,
                  project, forgotten.error().message());
    }
}

asio::awaitable<Dispatcher::Impl::Attempted> Dispatcher::Impl::attempt(
    const StoredTrigger& trigger, const JenkinsConfig& jenkins,
    std::shared_ptr<JenkinsClient> client) {
    Attempted a;
    const auto& request = trigger.request;
    if (request.scan_only) {
        const auto& project = request.job;
        const auto project_text = job_display_path(project);
        // At most one scan per project per scan_interval over every instance; one requested
        // after this trigger was created already covers it.
        auto gate = co_await scan_gate(trigger, jenkins);
        const auto now = clock->now();
        if (!gate) {
            a.asked = false;
            a.update = scan_deferred(trigger, now + jenkins.branch_poll, now);
            a.update->last_outcome = a.update->attempt.outcome =
                "the scan rate limit cannot be read from the store: " + gate.error().message();
            co_return a;
        }
        if (gate->verdict == ScanGate::Verdict::covered) {
            a.asked = false;
            a.update = scan_covered(trigger, gate->at, now);
        } else if (gate->verdict == ScanGate::Verdict::wait) {
            a.asked = false;
            a.update = scan_deferred(trigger, gate->at, now);
        } else {
            a.outcome = co_await client->scan(project);
            spdlog::info("{}: scan of {} requested: {}", describe(trigger), project_text,
                         a.outcome.detail);
            if (a.outcome.kind != Kind::queued && a.outcome.kind != Kind::merged) {
                co_await forget_scan(jenkins, project_text, gate->at);
            }
        }
        co_return a;
    }
    a.outcome = co_await client->trigger(request, token_for(trigger));
    if (!branch_job_missing(request, a.outcome)) co_return a;
    const auto project = project_of(request);
    const auto project_text = job_display_path(project);
    // The branch job does not exist (yet): a new branch Jenkins has not indexed. Ask for a scan
    // of its project (rate limited) and try the job again every branch_poll, until branch_wait
    // has passed since a scan that covers this push.
    std::string scan;
    std::optional<Time> covering;
    auto gate = co_await scan_gate(trigger, jenkins);
    if (!gate) {
        scan = "the scan rate limit cannot be read from the store: " + gate.error().message();
    } else if (gate->verdict == ScanGate::Verdict::covered) {
        scan = fmt::format("a scan of {} was requested since the push", project_text);
        covering = gate->at;
    } else if (gate->verdict == ScanGate::Verdict::wait) {
        scan = fmt::format("next scan of {} in {} (scan_interval)", project_text,
                           follow::human_duration(until(gate->at, clock->now())));
    } else {
        auto scanned = co_await client->scan(project);
        if (scanned.kind == Kind::queued || scanned.kind == Kind::merged) {
            scan = "scan of " + project_text + " requested";
            covering = gate->at;
            spdlog::info("{}: branch job not found; scan of {} requested", describe(trigger),
                         project_text);
        } else {
            // No scan happened: it must not cover anybody.
            co_await forget_scan(jenkins, project_text, gate->at);
            if (scanned.kind == Kind::permanent || scanned.kind == Kind::server_error) {
                a.update = branch_unscannable(trigger, a.outcome, scanned, clock->now());
                co_return a;
            }
            // Down, throttling or refusing us: the lane handles that answer as any other.
            a.outcome = std::move(scanned);
            co_return a;
        }
    }
    a.update = branch_pending(trigger, a.outcome, jenkins, clock->now(), scan, covering);
    co_return a;
}

asio::awaitable<void> Dispatcher::Impl::cancel_superseded(StoredTrigger trigger,
                                                          JenkinsConfig jenkins,
                                                          std::shared_ptr<JenkinsClient> client) {
    auto self = shared_from_this();
    // Older deliveries of the same coalesce key whose queue items have not been seen to start.
    auto older = co_await ask<std::vector<QueuedPredecessor>>([&](auto done) {
        queue->queued_predecessors(trigger.id, k_cancel_batch, std::move(done));
    });
    if (!older) {
        log_fault("{}: cannot look up the superseded queue items in the store: {}",
                  describe(trigger), older.error().message());
        co_return;
    }
    for (const auto& item : *older) {
        const auto answer = co_await client->cancel_item(item.queue_id);
        Attempt note;
        note.at = clock->now();
        note.http_status = answer.http_status;
        note.duration = answer.duration;
        note.queue_url = item.queue_url;
        note.counted = false;
        note.instance = "";
        if (answer.kind == Kind::queued || answer.kind == Kind::merged) {
            note.outcome = fmt::format(
                "queue item {} cancelled in Jenkins: superseded by trigger {} (delivery {})",
                item.queue_id, trigger.id, printable_word(trigger.delivery_id));
            metrics->trigger_outcome(trigger.request.rule, jenkins.name, "cancelled");
            spdlog::info("{}: cancelled queue item {} of the superseded trigger {} (delivery {})",
                         describe(trigger), item.queue_id, item.id,
                         printable_word(item.delivery_id));
        } else {
            note.outcome = fmt::format(
                "queue item {} not cancelled ({}): {}", item.queue_id, answer.detail,
                answer.http_status == 404 ? "it already left Jenkins' queue (started or gone)"
                                          : "superseded by trigger " + trigger.id);
            spdlog::info("{}: queue item {} of the superseded trigger {} not cancelled: {}",
                         describe(trigger), item.queue_id, item.id, answer.detail);
        }
        auto noted = co_await ask<void>(
            [&](auto done) { queue->add_note(item.id, std::move(note), std::move(done)); });
        if (!noted) {
            log_fault("{}: cannot record the cancel in the store: {}", describe(trigger),
                      noted.error().message());
        }
    }
}

asio::awaitable<void> Dispatcher::Impl::probe(std::shared_ptr<Lane> lane, JenkinsHold hold) {
    auto self = shared_from_this();
    struct Done {
        Lane& lane;
        ~Done() { lane.probing = false; }
    } done{*lane};
    const auto name = lane->target.config.name;
    const auto client = lane->target.client;  // a reload may replace it meanwhile
    auto outcome = co_await client->probe();
    if (!running) co_return;
    const auto now = clock->now();
    if (outcome.http_status != 0) lane->contacted = true;
    if (outcome.kind != Kind::unavailable && outcome.kind != Kind::auth_failed) {
        auto ended = co_await ask<void>([&](auto d) { queue->unhold(name, std::move(d)); });
        if (!ended) {
            log_fault("jenkins={}: answers again but the hold cannot be ended in the store: {}",
                      name, ended.error().message());
            co_return;
        }
        spdlog::info("jenkins={} answers again (HTTP {})", name, outcome.http_status);
        set_held(*lane, std::nullopt);
        // Answering, but asking us to wait: drain only after its Retry-After.
        if (outcome.kind == Kind::throttled) throttle(*lane, outcome);
        poke(*lane);
        co_return;
    }
    // Backoff over the probes of every instance: probe_initial doubling up to probe_max. Refused
    // credentials will not come right by themselves (a reload probes at once): probe_max.
    const auto& jenkins = lane->target.config;
    const bool auth = outcome.kind == Kind::auth_failed;
    auto backoff = jenkins.probe_initial;
    for (int i = 0; i <= hold.probes && backoff < jenkins.probe_max; ++i) backoff *= 2;
    backoff = std::min(backoff, jenkins.probe_max);
    const auto next = now + (auth ? jenkins.probe_max : probe_delay(outcome, jenkins, backoff));
    const auto reason = auth ? std::string(k_auth_failed_reason) + outcome.detail : outcome.detail;
    spdlog::debug("jenkins={} still {}: {}; next probe in {} ms", name,
                  auth ? "refuses our credentials" : "unavailable", outcome.detail,
                  until(next, now).count());
    // When a reload has replaced these credentials meanwhile, the new ones are tried at once.
    if (auth) lane->refused = client;
    auto recorded =
        co_await ask<void>([&](auto d) { queue->probe_failed(name, next, reason, std::move(d)); });
    if (!recorded) {
        log_fault("jenkins={}: cannot record the failed probe in the store: {}", name,
                  recorded.error().message());
    }
    if (lane->hold) {
        auto updated = *lane->hold;
        updated.next_probe_at = next;
        updated.probes = hold.probes + 1;
        updated.reason = reason;
        const bool was_auth = is_auth_failed(*lane->hold);
        set_held(*lane, updated);
        // Still refused (after a reload, say so at once; otherwise at most every few minutes).
        if (auth && was_auth) log_auth_failed(*lane);
    }
    poke(*lane);
}

// A claim the renewal did not find is lost only while its request is still at Jenkins. One whose
// outcome was recorded meanwhile (it committed before the renewal ran: on SQLite in the same
// transaction, on PostgreSQL possibly on another connection, its answer still on the way) is
// not, and for one being recorded complete() tells whether it was still ours.
void Dispatcher::Impl::report_lost_claims(const std::vector<std::string>& asked,
                                          const std::vector<std::string>& renewed) {
    // Given back after the stop's grace: a renewal asked before that commits after the release
    // (another connection) finds them gone, and nothing took them.
    if (claims_given_up) return;
    const std::set<std::string> kept(renewed.begin(), renewed.end());
    std::vector<std::string> lost;
    for (const auto& claim_id : asked) {
        if (kept.count(claim_id)) continue;
        for (const auto& [name, lane] : lanes) {
            auto it = lane->in_flight.find(claim_id);
            if (it != lane->in_flight.end() && !it->second.answered && !it->second.lost) {
                it->second.lost = true;
                lost.push_back(it->second.trigger_id);
            }
        }
    }
    if (lost.empty()) return;
    constexpr std::size_t k_named = 10;
    std::string named;
    for (std::size_t i = 0; i < std::min(lost.size(), k_named); ++i) {
        named += (i > 0 ? ", " : "") + lost[i];
    }
    if (lost.size() > k_named) named += " and " + std::to_string(lost.size() - k_named) + " more";
    spdlog::warn(
        "dispatcher: {} claim(s) in flight were lost (taken over by another instance or "
        "replayed): trigger {}; their outcomes will not be recorded",
        lost.size(), named);
}

asio::awaitable<void> Dispatcher::Impl::renew_claims() {
    auto self = shared_from_this();
    auto timer = clock->make_timer(strand);
    const auto wanted = [this] { return running || (in_flight_total > 0 && !claims_given_up); };
    while (wanted()) {
        co_await timer->wait_for(options.claim_renew_interval);
        if (!wanted()) break;
        std::vector<std::string> ids;
        std::vector<std::string> probing;
        for (const auto& [name, lane] : lanes) {
            for (const auto& [claim_id, held] : lane->in_flight) {
                if (!held.lost) ids.push_back(claim_id);
            }
            if (lane->probing) probing.push_back(name);
        }
        // On the interval however long the last renewal takes to be answered: a store slow to
        // answer each (a long transaction ahead of it, a busy pool) would otherwise push the next
        // past the leases, whose requests are still at Jenkins, and a claim of this or another
        // instance could take such a trigger over and send it again. A renewal answered after a
        // later one never shortens the lease in the store. Each is waited for up to
        // store_timeout, so a store that answers nothing has a few of them out at a time.
        if (!ids.empty()) {
            spawn_logged(strand, renew(std::move(ids)), "dispatcher: renewing claims");
        }
        // A probe may outlast a lease (a Jenkins that accepts connections and then hangs takes
        // up to its request_timeout): its lease is renewed like a claim, so no other instance
        // probes meanwhile, while the probe of an instance that died is taken over after a lease.
        // Each on its own: a store slow to answer one must not hold back the claims' next
        // renewals (their leases would run out under requests still at Jenkins, and a claim of
        // this instance could take such a trigger over and send it again). Unlike a claim's, a
        // probe's renewal waits for the last one to be answered: a lease that lapses under a
        // slow store lets two instances probe at once, which costs a request, not a build.
        for (const auto& name : probing) {
            const auto it = lanes.find(name);
            if (it == lanes.end() || !it->second->probing) continue;  // ended meanwhile
            if (it->second->probe_renewing) continue;                 // the last one still runs
            it->second->probe_renewing = true;
            spawn_logged(strand, renew_probe(it->second),
                         "jenkins=" + name + ": dispatcher: renewing the probe's lease");
        }
    }
}

asio::awaitable<void> Dispatcher::Impl::renew(std::vector<std::string> claim_ids) {
    auto self = shared_from_this();
    const auto asked = claim_ids;
    auto renewed = co_await ask<std::vector<std::string>>([&](auto done) {
        queue->renew(std::move(claim_ids), clock->now(), options.claim_lease, std::move(done));
    });
    if (renewed) {
        report_lost_claims(asked, *renewed);
    } else {
        log_fault("dispatcher: cannot renew {} claim(s) in the store: {}", asked.size(),
                  renewed.error().message());
    }
}

asio::awaitable<void> Dispatcher::Impl::renew_probe(std::shared_ptr<Lane> lane) {
    auto self = shared_from_this();
    const auto name = lane->target.config.name;
    auto renewed = co_await ask<std::optional<JenkinsHold>>([&](auto done) {
        queue->try_probe(name, clock->now(), options.claim_lease, std::move(done));
    });
    lane->probe_renewing = false;
    if (!renewed) {
        log_fault("jenkins={}: cannot renew the probe's lease in the store: {}", name,
                  renewed.error().message());
    }
}

Dispatcher::Dispatcher(asio::any_io_executor executor, std::shared_ptr<TriggerQueue> queue,
                       DispatchConfig options, milliseconds store_timeout,
                       std::shared_ptr<Metrics> metrics, std::shared_ptr<Clock> clock)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(queue), options, store_timeout,
                                   std::move(metrics), std::move(clock))) {}

void Dispatcher::reconfigure(std::shared_ptr<const Config> config, std::vector<Target> targets) {
    auto impl = impl_;
    asio::dispatch(
        impl->strand, [impl, config = std::move(config), targets = std::move(targets)]() mutable {
            std::lock_guard lock(impl->status_mutex);
            if (config && config->server.store_timeout != impl->store_timeout) {
                impl->store_timeout = config->server.store_timeout;
                impl->warn_if_leases_can_lapse();
            }
            impl->config = std::move(config);
            for (auto& t : targets) {
                auto it = impl->lanes.find(t.config.name);
                if (it != impl->lanes.end()) {
                    // Down, held, and the reload changed how it is reached: probed at
                    // once with that (a reload that changes none of it waits for the
                    // backoff, and for a Retry-After, as before).
                    const auto& was = it->second->target.config;
                    const bool reached_otherwise =
                        was.url != t.config.url || was.ca_file != t.config.ca_file ||
                        was.connect_timeout != t.config.connect_timeout ||
                        was.io_timeout != t.config.io_timeout ||
                        was.request_timeout != t.config.request_timeout;
                    if (it->second->hold && !auth_held(it->second->hold) && reached_otherwise) {
                        it->second->reprobe = true;
                    }
                    it->second->target = std::move(t);
                    impl->poke(*it->second);
                    continue;
                }
                auto name = t.config.name;
                auto lane = impl->make_lane(std::move(t));
                impl->lanes[name] = lane;
                if (impl->running) impl->spawn_lane(lane);
            }
        });
}

Dispatcher::~Dispatcher() = default;

void Dispatcher::configure(std::shared_ptr<const Config> config, std::vector<Target> targets) {
    std::lock_guard lock(impl_->status_mutex);
    impl_->config = std::move(config);
    for (auto& t : targets) {
        auto name = t.config.name;
        impl_->lanes[name] = impl_->make_lane(std::move(t));
    }
}

void Dispatcher::start() {
    auto impl = impl_;
    asio::dispatch(impl->strand, [impl] {
        impl->running = true;
        impl->warn_if_leases_can_lapse();
        for (auto& [name, lane] : impl->lanes) impl->spawn_lane(lane);
        spawn_logged(impl->strand, impl->renew_claims(), "dispatcher: renewing claims");
    });
}

void Dispatcher::on_chores_due(ChoresDue callback) {
    impl_->chores_due = std::move(callback);
}

void Dispatcher::wake() {
    auto impl = impl_;
    asio::post(impl->strand, [impl] {
        for (auto& [name, lane] : impl->lanes) impl->poke(*lane);
    });
}

namespace {

// Runs on the dispatcher's strand (co_spawned there): everything it touches belongs to it.
asio::awaitable<void> stop_on_strand(std::shared_ptr<Dispatcher::Impl> impl, milliseconds grace) {
    impl->running = false;
    const auto deadline = impl->clock->now() + grace;
    for (auto& [name, lane] : impl->lanes) impl->poke(*lane);
    // Claimed ahead and not started: free for another instance, or this one's restart, at once.
    std::vector<std::shared_ptr<Lane>> lanes;
    for (auto& [name, lane] : impl->lanes) lanes.push_back(lane);
    for (auto& lane : lanes) co_await impl->give_back_ready(lane);
    auto timer = impl->clock->make_timer(impl->strand);
    while (impl->in_flight_total > 0 && impl->clock->now() < deadline) {
        co_await timer->wait_for(k_drain_poll_interval);
    }
    if (impl->in_flight_total == 0) co_return;
    impl->claims_given_up = true;
    std::vector<std::string> claims;
    for (const auto& [name, lane] : impl->lanes) {
        for (const auto& [claim_id, held] : lane->in_flight) {
            // Answered: its outcome is on its way to the store under this claim. Released
            // first (another connection may commit the release before it), that outcome would
            // be refused as stale, and the build Jenkins accepted asked for again.
            if (!held.answered) claims.push_back(claim_id);
        }
    }
    if (claims.empty()) co_return;
    spdlog::warn(
        "dispatcher: {} Jenkins request(s) still in flight after the grace period; their "
        "triggers are released and stay pending (at-least-once: Jenkins may have them already)",
        claims.size());
    auto released = co_await impl->ask<void>(
        [&](auto done) { impl->queue->release(std::move(claims), std::move(done)); });
    if (!released) {
        spdlog::warn("dispatcher: cannot release the claims ({}); they expire after {} ms",
                     released.error().message(), impl->options.claim_lease.count());
    }
}

}  // namespace

asio::awaitable<void> Dispatcher::stop(milliseconds grace) {
    // co_await on a strand-bound operation would resume on this coroutine's own executor, not on
    // the strand; spawning the work onto the strand keeps it there.
    co_await asio::co_spawn(impl_->strand, stop_on_strand(impl_, grace), asio::use_awaitable);
}

std::vector<LaneStatus> Dispatcher::status() const {
    std::lock_guard lock(impl_->status_mutex);
    std::vector<LaneStatus> out;
    for (const auto& [name, lane] : impl_->lanes) {
        LaneStatus status;
        status.jenkins = name;
        status.held = lane->held_flag.load();
        status.held_reason = lane->held_reason;
        status.throttled = lane->throttled_flag.load();
        status.in_flight = lane->requests.load();
        status.auth_failed = lane->auth_failed_flag.load();
        status.auth_key = auth_key(lane->target.config);
        status.contacted = lane->contacted.load();
        out.push_back(std::move(status));
    }
    return out;
}

}  // namespace hookrelay::dispatch
