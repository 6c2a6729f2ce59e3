#include "dispatch/dispatcher.hpp"

#include "dispatch/fair_share.hpp"
#include "dispatch/retry.hpp"
#include "util/bridge.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>

namespace hookrelay::dispatch {

namespace asio = boost::asio;
using Clock = std::chrono::system_clock;
using Steady = std::chrono::steady_clock;
using Kind = JenkinsOutcome::Kind;

namespace {

// How often stop() looks whether the last request in flight has finished.
constexpr std::chrono::milliseconds k_drain_poll_interval{20};

std::string describe(const StoredTrigger& t) {
    return fmt::format("delivery={} trigger={} rule={} jenkins={} job={}", t.delivery_id, t.id,
                       t.request.rule, t.request.jenkins, job_display_path(t.request.job));
}

}  // namespace

// Due triggers are fetched this many times the lane's in-flight limit at once and handed out
// as slots free up, so the store is asked once per batch rather than once per trigger.
constexpr std::size_t k_prefetch_factor = 8;

struct Lane {
    Lane(asio::any_io_executor ex, Dispatcher::Target t) : target(std::move(t)), timer(ex) {}
    Dispatcher::Target target;
    asio::steady_timer timer;  // the loop sleeps on it; wake() and completions cancel it
    std::set<std::string> in_flight;
    std::deque<StoredTrigger> ready;  // fetched, due, not yet started
    bool dirty = false;               // woken while not sleeping: skip the next sleep
    bool held = false;
    // Throttled: Jenkins answered 429. No request starts before paused_until; after that one
    // at a time, until an answer that is not a 429 ends it.
    bool throttled = false;
    Steady::time_point paused_until{};
    int throttle_streak = 0;  // 429s in a row, for the pause without Retry-After
    bool wants_slot = false;  // has due triggers, but the overall limit left it none
    std::atomic<bool> held_flag{false};
    std::atomic<bool> throttled_flag{false};
    std::atomic<std::size_t> in_flight_count{0};
};

struct Dispatcher::Impl : std::enable_shared_from_this<Dispatcher::Impl> {
    Impl(asio::any_io_executor ex, std::shared_ptr<Store> s, DispatchConfig o,
         std::chrono::milliseconds st, std::shared_ptr<Metrics> m)
        : strand(asio::make_strand(ex)),
          store(std::move(s)),
          metrics(std::move(m)),
          options(o),
          store_timeout(st),
          rng(std::random_device{}()) {}

    asio::strand<asio::any_io_executor> strand;
    std::shared_ptr<Store> store;
    std::shared_ptr<Metrics> metrics;
    DispatchConfig options;
    std::chrono::milliseconds store_timeout;
    std::shared_ptr<const Config> config;
    std::map<std::string, std::shared_ptr<Lane>> lanes;
    std::size_t in_flight_total = 0;
    bool running = false;
    std::mt19937_64 rng;
    mutable std::mutex status_mutex;  // guards lanes' identity for status() from other threads

    asio::awaitable<void> run_lane(std::shared_ptr<Lane> lane);
    asio::awaitable<void> deliver(std::shared_ptr<Lane> lane, StoredTrigger trigger);
    asio::awaitable<void> probe(std::shared_ptr<Lane> lane, std::chrono::milliseconds first);
    void poke(Lane& lane) {
        lane.dirty = true;
        lane.timer.cancel();
    }
    bool may_start(const Lane& lane) const;
    void throttle(Lane& lane, const JenkinsOutcome& outcome);
    RetryPolicy retry_for(const StoredTrigger& t, const JenkinsConfig& jenkins) const;
    std::optional<Secret> token_for(const StoredTrigger& t) const;
};

RetryPolicy Dispatcher::Impl::retry_for(const StoredTrigger& t,
                                        const JenkinsConfig& jenkins) const {
    for (const auto& rule : config->rules) {
        if (rule.name == t.request.rule && rule.retry) return *rule.retry;
    }
    return jenkins.retry;
}

std::optional<Secret> Dispatcher::Impl::token_for(const StoredTrigger& t) const {
    // The store keeps no secrets: a job token is looked up in the current config by rule and
    // Jenkins.
    for (const auto& rule : config->rules) {
        if (rule.name != t.request.rule) continue;
        for (const auto& spec : rule.triggers) {
            if (spec.jenkins == t.request.jenkins && spec.token) return spec.token;
        }
    }
    return std::nullopt;
}

bool Dispatcher::Impl::may_start(const Lane& lane) const {
    // A throttled Jenkins gets one request at a time: the first answer tells whether it still
    // throttles, without a burst of 429s.
    if (lane.throttled && !lane.in_flight.empty()) return false;
    std::vector<LaneLoad> loads;
    loads.reserve(lanes.size());
    std::size_t index = 0;
    for (const auto& [name, other] : lanes) {
        if (other.get() == &lane) index = loads.size();
        loads.push_back({other->in_flight.size(), other->target.config.max_in_flight});
    }
    return dispatch::may_start(loads, index, options.max_in_flight);
}

void Dispatcher::Impl::throttle(Lane& lane, const JenkinsOutcome& outcome) {
    const auto& jenkins = lane.target.config;
    const auto now = Steady::now();
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

asio::awaitable<void> Dispatcher::Impl::run_lane(std::shared_ptr<Lane> lane) {
    auto self = shared_from_this();
    const auto& name = lane->target.config.name;
    while (running) {
        const std::size_t lane_limit = lane->target.config.max_in_flight;
        std::optional<Clock::time_point> wake_at;
        std::optional<Steady::time_point> resume_at;
        lane->wants_slot = false;
        if (lane->throttled && Steady::now() < lane->paused_until) {
            // Paused by a 429: what was fetched waits in the store, as when held.
            lane->ready.clear();
            resume_at = lane->paused_until;
        } else if (!lane->held) {
            if (lane->ready.empty()) {
                // Refill: everything due now, up to a few batches, minus what is in flight.
                std::vector<std::string> exclude(lane->in_flight.begin(), lane->in_flight.end());
                auto due = co_await await_callback<result<std::vector<StoredTrigger>>>(
                    [&](auto done) {
                        store->due(name, Clock::now(), lane_limit * k_prefetch_factor,
                                   std::move(exclude), std::move(done));
                    },
                    store_timeout);
                if (!due || !*due) {
                    spdlog::error("jenkins={}: cannot read due triggers from the store: {}", name,
                                  due ? due->error().message() : "timed out");
                } else {
                    for (auto& t : due->value()) lane->ready.push_back(std::move(t));
                }
            }
            // Start as many as the per-Jenkins limit and this Jenkins' share of the overall limit
            // allow.
            while (running && !lane->held && !lane->ready.empty() && may_start(*lane)) {
                auto t = std::move(lane->ready.front());
                lane->ready.pop_front();
                lane->in_flight.insert(t.id);
                ++lane->in_flight_count;
                ++in_flight_total;
                asio::co_spawn(strand, deliver(lane, std::move(t)), asio::detached);
            }
            // Held back by the overall limit only: a slot freed by any Jenkins wakes us.
            lane->wants_slot = !lane->ready.empty() && !lane->held && !lane->throttled &&
                               lane->in_flight.size() < lane_limit;
            // Idle: learn when the next retry falls due. Busy: the next completion wakes us.
            if (lane->ready.empty() && lane->in_flight.empty()) {
                auto next = co_await await_callback<result<std::optional<Clock::time_point>>>(
                    [&](auto done) { store->next_due(name, std::move(done)); }, store_timeout);
                if (next && *next && next->value()) wake_at = *next->value();
            }
        } else {
            // Held: what was fetched waits in the store, where a restart would find it too.
            lane->ready.clear();
        }
        if (!running) break;
        if (lane->dirty) {
            lane->dirty = false;
            continue;
        }
        // Sleep until the next trigger is due or the poll interval passes, whichever is first;
        // a commit, a finished request or a recovered Jenkins wakes the lane earlier.
        auto sleep = options.poll_interval;
        if (wake_at) {
            const auto until =
                std::chrono::duration_cast<std::chrono::milliseconds>(*wake_at - Clock::now());
            sleep = std::max(std::chrono::milliseconds(0), std::min(sleep, until));
        }
        if (resume_at) {
            // Rounded up: waking a millisecond early would only go back to sleep.
            const auto until =
                std::chrono::ceil<std::chrono::milliseconds>(*resume_at - Steady::now());
            sleep = std::max(std::chrono::milliseconds(0), std::min(sleep, until));
        }
        lane->timer.expires_after(sleep);
        co_await lane->timer.async_wait(asio::as_tuple(asio::use_awaitable));
        lane->dirty = false;
    }
}

asio::awaitable<void> Dispatcher::Impl::deliver(std::shared_ptr<Lane> lane, StoredTrigger trigger) {
    auto self = shared_from_this();
    // Copies: a reload may replace the lane's target while this request runs.
    const auto jenkins = lane->target.config;
    const auto client = lane->target.client;
    auto outcome = co_await client->trigger(trigger.request, token_for(trigger));
    const auto now = Clock::now();
    auto update = decide(trigger, outcome, retry_for(trigger, jenkins), now, rng);
    metrics->jenkins_request(jenkins.name, outcome.http_status,
                             std::chrono::duration<double>(outcome.duration));
    const auto& rule = trigger.request.rule;
    if (update.state == TriggerState::delivered) {
        metrics->trigger_outcome(
            rule, jenkins.name,
            outcome.kind == JenkinsOutcome::Kind::merged ? "merged" : "delivered");
        metrics->delivery_latency(jenkins.name,
                                  std::chrono::duration<double>(now - trigger.created_at));
    } else if (update.state == TriggerState::dead) {
        metrics->trigger_outcome(rule, jenkins.name, "dead");
    } else if (outcome.kind == Kind::unavailable || outcome.kind == Kind::throttled) {
        // Not counted against the trigger: the whole Jenkins waits (held or paused).
        metrics->trigger_outcome(rule, jenkins.name, "held");
    } else {
        metrics->trigger_outcome(rule, jenkins.name, "retried");
    }

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
            if (outcome.kind == Kind::unavailable) {
                spdlog::warn("{} not delivered, Jenkins unavailable: {}", describe(trigger),
                             outcome.detail);
            } else if (outcome.kind == Kind::throttled) {
                spdlog::info("{} not delivered, Jenkins throttles us: {}", describe(trigger),
                             outcome.detail);
            } else {
                spdlog::info("{} will retry in {} ms: {}", describe(trigger),
                             std::chrono::duration_cast<std::chrono::milliseconds>(
                                 update.next_attempt_at - now)
                                 .count(),
                             update.last_outcome);
            }
    }
    if (outcome.kind == Kind::throttled) {
        throttle(*lane, outcome);
    } else if (outcome.kind != Kind::unavailable && lane->throttled) {
        lane->throttled = false;
        lane->throttled_flag = false;
        lane->throttle_streak = 0;
        spdlog::info("jenkins={} accepts requests again ({}); no longer throttled", jenkins.name,
                     outcome.detail);
    }
    if (outcome.kind == Kind::unavailable && !lane->held) {
        lane->held = true;
        lane->held_flag = true;
        metrics->jenkins_held(jenkins.name, true);
        const auto first = probe_delay(outcome, jenkins, jenkins.probe_initial);
        spdlog::warn(
            "jenkins={} is unavailable ({}); holding its triggers and probing it (first probe in "
            "{} ms)",
            jenkins.name, outcome.detail, first.count());
        asio::co_spawn(strand, probe(lane, first), asio::detached);
    }

    auto recorded = co_await await_callback<result<void>>(
        [&](auto done) { store->update(std::move(update), std::move(done)); }, store_timeout);
    if (!recorded || !*recorded) {
        // The trigger stays as it was in the store and will be attempted again: at-least-once.
        spdlog::error("{}: cannot record the outcome in the store ({}); it will be retried",
                      describe(trigger), recorded ? recorded->error().message() : "timed out");
    }
    lane->in_flight.erase(trigger.id);
    --lane->in_flight_count;
    --in_flight_total;
    poke(*lane);
    for (auto& [name, other] : lanes) {
        if (other->wants_slot) poke(*other);
    }
}

asio::awaitable<void> Dispatcher::Impl::probe(std::shared_ptr<Lane> lane,
                                              std::chrono::milliseconds first) {
    auto self = shared_from_this();
    const auto name = lane->target.config.name;
    auto backoff = lane->target.config.probe_initial;
    auto delay = first;
    asio::steady_timer timer(strand);
    while (running) {
        timer.expires_after(delay);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (!running) break;
        const auto client = lane->target.client;  // a reload may replace it meanwhile
        auto outcome = co_await client->probe();
        if (outcome.kind != Kind::unavailable) {
            lane->held = false;
            lane->held_flag = false;
            metrics->jenkins_held(name, false);
            spdlog::info("jenkins={} answers again (HTTP {}); draining its backlog", name,
                         outcome.http_status);
            // Answering, but asking us to wait: drain only after its Retry-After.
            if (outcome.kind == Kind::throttled) throttle(*lane, outcome);
            poke(*lane);
            co_return;
        }
        spdlog::debug("jenkins={} still unavailable: {}", name, outcome.detail);
        backoff = std::min(backoff * 2, lane->target.config.probe_max);
        delay = probe_delay(outcome, lane->target.config, backoff);
    }
}

Dispatcher::Dispatcher(asio::any_io_executor executor, std::shared_ptr<Store> store,
                       DispatchConfig options, std::chrono::milliseconds store_timeout,
                       std::shared_ptr<Metrics> metrics)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(store), options, store_timeout,
                                   std::move(metrics))) {}

void Dispatcher::reconfigure(std::shared_ptr<const Config> config, std::vector<Target> targets) {
    auto impl = impl_;
    asio::dispatch(impl->strand,
                   [impl, config = std::move(config), targets = std::move(targets)]() mutable {
                       std::lock_guard lock(impl->status_mutex);
                       impl->config = std::move(config);
                       for (auto& t : targets) {
                           auto it = impl->lanes.find(t.config.name);
                           if (it != impl->lanes.end()) {
                               it->second->target = std::move(t);
                               impl->poke(*it->second);
                               continue;
                           }
                           auto name = t.config.name;
                           auto lane = std::make_shared<Lane>(impl->strand, std::move(t));
                           impl->lanes[name] = lane;
                           if (impl->running) {
                               asio::co_spawn(impl->strand, impl->run_lane(lane), asio::detached);
                           }
                       }
                   });
}

Dispatcher::~Dispatcher() = default;

void Dispatcher::configure(std::shared_ptr<const Config> config, std::vector<Target> targets) {
    std::lock_guard lock(impl_->status_mutex);
    impl_->config = std::move(config);
    for (auto& t : targets) {
        auto name = t.config.name;
        impl_->lanes[name] = std::make_shared<Lane>(impl_->strand, std::move(t));
    }
}

void Dispatcher::start() {
    auto impl = impl_;
    asio::dispatch(impl->strand, [impl] {
        impl->running = true;
        for (auto& [name, lane] : impl->lanes) {
            asio::co_spawn(impl->strand, impl->run_lane(lane), asio::detached);
        }
    });
}

void Dispatcher::wake() {
    auto impl = impl_;
    asio::post(impl->strand, [impl] {
        for (auto& [name, lane] : impl->lanes) impl->poke(*lane);
    });
}

namespace {

// Runs on the dispatcher's strand (co_spawned there): everything it touches belongs to it.
asio::awaitable<void> stop_on_strand(std::shared_ptr<Dispatcher::Impl> impl,
                                     std::chrono::milliseconds grace) {
    impl->running = false;
    for (auto& [name, lane] : impl->lanes) lane->timer.cancel();
    const auto deadline = std::chrono::steady_clock::now() + grace;
    asio::steady_timer timer(impl->strand);
    while (impl->in_flight_total > 0 && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(k_drain_poll_interval);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (impl->in_flight_total > 0) {
        spdlog::warn(
            "dispatcher: {} Jenkins request(s) still in flight after the grace period; "
            "their triggers stay pending and will be delivered after restart",
            impl->in_flight_total);
    }
}

}  // namespace

asio::awaitable<void> Dispatcher::stop(std::chrono::milliseconds grace) {
    // co_await on a strand-bound operation would resume on this coroutine's own executor, not on
    // the strand; spawning the work onto the strand keeps it there.
    co_await asio::co_spawn(impl_->strand, stop_on_strand(impl_, grace), asio::use_awaitable);
}

std::vector<LaneStatus> Dispatcher::status() const {
    std::lock_guard lock(impl_->status_mutex);
    std::vector<LaneStatus> out;
    for (const auto& [name, lane] : impl_->lanes) {
        out.push_back({name, lane->held_flag.load(), lane->throttled_flag.load(),
                       lane->in_flight_count.load()});
    }
    return out;
}

}  // namespace hookrelay::dispatch
