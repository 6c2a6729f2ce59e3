// Helpers shared by the store tests: a temporary directory, waiting for a callback, the store's
// calls made synchronous, and the deliveries, triggers and outcomes the tests record.
#pragma once

#include <hookrelay/store.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace hookrelay::store::test {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;
using Ids = std::vector<std::string>;
using Pairs = std::vector<std::pair<std::string, std::string>>;
using Backlog = std::vector<std::pair<std::string, std::size_t>>;

/// How long a test waits for the store to answer one call.
constexpr std::chrono::seconds k_deadline{20};
/// The lease tests claim with unless they test leases.
constexpr std::chrono::milliseconds k_lease = 60s;

/// A fresh directory under /tmp, removed with everything in it.
class TempDir {
  public:
    TempDir() {
        std::string pattern = "/tmp/hookrelay-store-XXXXXX";
        if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

/// Starts an asynchronous call with a handler and waits, with a deadline, for its answer.
template <class T, class Start>
T wait_answer(Start&& start) {
    auto promise = std::make_shared<std::promise<T>>();
    auto future = promise->get_future();
    start([promise](T value) { promise->set_value(std::move(value)); });
    if (future.wait_for(k_deadline) != std::future_status::ready) {
        throw std::runtime_error("the store did not answer in time");
    }
    return future.get();
}

/// The value of a successful answer; throws (failing the test) on an error.
template <class T>
T value_of(result<T> answer, const char* what) {
    if (!answer) {
        throw std::runtime_error(std::string(what) + " failed: " + answer.error().message());
    }
    if constexpr (!std::is_void_v<T>) return std::move(*answer);
}

/// Now, at the millisecond resolution the stores keep.
inline TimePoint now_ms() {
    return std::chrono::time_point_cast<Clock::duration>(
        std::chrono::floor<std::chrono::milliseconds>(Clock::now()));
}

/// A GitHub push delivery as the webhook handler would record it.
inline DeliveryRecord delivery(std::string id, TimePoint received_at,
                               std::string source = "github-main") {
    DeliveryRecord d;
    d.source = std::move(source);
    d.provider = Provider::github;
    d.delivery_id = std::move(id);
    d.kind = EventKind::push;
    d.forge_event = "push";
    d.received_at = received_at;
    d.headers = {{"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", d.delivery_id}};
    d.body = R"({"ref":"refs/heads/main"})";
    return d;
}

/// `d` with `body`, deduplicated by body within `window`.
inline DeliveryRecord with_body(DeliveryRecord d, std::string body,
                                std::chrono::milliseconds window = 10min) {
    d.body = std::move(body);
    d.duplicate_body_window = window;
    return d;
}

/// A trigger for job acme/app/feature/x (a '/' inside a segment: a multibranch branch) with two
/// parameters.
inline TriggerRequest trigger(std::string jenkins = "ci", std::string rule = "build") {
    TriggerRequest t;
    t.rule = std::move(rule);
    t.jenkins = std::move(jenkins);
    t.job = {"acme", "app", "feature/x"};
    t.parameters = {{"BRANCH", "main"}, {"SHA", "abc123"}};
    t.cause = "push to acme/app";
    return t;
}

/// An outcome that retries at `next`: HTTP 503, 120 ms, counted unless said otherwise.
inline TriggerUpdate retry(const std::string& id, TimePoint next, TimePoint at,
                           bool counted = true) {
    TriggerUpdate u;
    u.id = id;
    u.state = TriggerState::retrying;
    u.next_attempt_at = next;
    u.attempt.at = at;
    u.attempt.http_status = 503;
    u.attempt.outcome = "HTTP 503";
    u.attempt.duration = 120ms;
    u.attempt.counted = counted;
    u.last_outcome = "HTTP 503";
    return u;
}

/// A final outcome: delivered (201, a queue URL) or dead (404).
inline TriggerUpdate finish(const std::string& id, TriggerState state, TimePoint at) {
    TriggerUpdate u;
    u.id = id;
    u.state = state;
    u.next_attempt_at = at;
    u.attempt.at = at;
    u.attempt.http_status = state == TriggerState::delivered ? 201 : 404;
    u.attempt.outcome = state == TriggerState::delivered ? "queued" : "HTTP 404";
    u.attempt.duration = 15ms;
    u.attempt.queue_url = state == TriggerState::delivered ? "http://jenkins/queue/item/7/" : "";
    u.last_outcome = u.attempt.outcome;
    return u;
}

// --- The store's calls, waited for -------------------------------------------------------

inline result<Receipt> submit(Store& store, DeliveryRecord d, std::vector<TriggerRequest> t) {
    return wait_answer<result<Receipt>>(
        [&](auto done) { store.submit(std::move(d), std::move(t), std::move(done)); });
}

/// submit() that must succeed.
inline Receipt accept(Store& store, DeliveryRecord d, std::vector<TriggerRequest> t) {
    return value_of(submit(store, std::move(d), std::move(t)), "submit");
}

inline ClaimBatch claim(Store& store, const std::string& jenkins, TimePoint now,
                        std::size_t limit = 100, std::size_t max_in_flight = 0,
                        std::chrono::milliseconds lease = k_lease) {
    ClaimRequest request;
    request.jenkins = jenkins;
    request.limit = limit;
    request.max_in_flight = max_in_flight;
    request.now = now;
    request.lease = lease;
    return value_of(wait_answer<result<ClaimBatch>>(
                        [&](auto done) { store.claim(std::move(request), std::move(done)); }),
                    "claim");
}

/// The ids of claimed triggers, in the order claimed.
inline Ids ids_of(const ClaimBatch& batch) {
    Ids out;
    for (const auto& c : batch.claims) out.push_back(c.trigger.id);
    return out;
}

inline Ids renew(Store& store, Ids claim_ids, TimePoint now,
                 std::chrono::milliseconds lease = k_lease) {
    return value_of(wait_answer<result<Ids>>([&](auto done) {
                        store.renew(std::move(claim_ids), now, lease, std::move(done));
                    }),
                    "renew");
}

inline Completion complete(Store& store, std::string claim_id, TriggerUpdate update) {
    return value_of(wait_answer<result<Completion>>([&](auto done) {
                        store.complete(std::move(claim_id), std::move(update), std::move(done));
                    }),
                    "complete");
}

inline void release(Store& store, Ids claim_ids) {
    value_of(wait_answer<result<void>>(
                 [&](auto done) { store.release(std::move(claim_ids), std::move(done)); }),
             "release");
}

inline std::optional<TimePoint> next_due(Store& store, const std::string& jenkins) {
    return value_of(wait_answer<result<std::optional<TimePoint>>>(
                        [&](auto done) { store.next_due(jenkins, std::move(done)); }),
                    "next_due");
}

inline void hold(Store& store, const std::string& jenkins, JenkinsHold h) {
    value_of(wait_answer<result<void>>(
                 [&](auto done) { store.hold(jenkins, std::move(h), std::move(done)); }),
             "hold");
}

inline std::optional<JenkinsHold> try_probe(Store& store, const std::string& jenkins, TimePoint now,
                                            std::chrono::milliseconds lease = k_lease) {
    return value_of(wait_answer<result<std::optional<JenkinsHold>>>(
                        [&](auto done) { store.try_probe(jenkins, now, lease, std::move(done)); }),
                    "try_probe");
}

inline void probe_failed(Store& store, const std::string& jenkins, TimePoint next,
                         std::string reason) {
    value_of(wait_answer<result<void>>([&](auto done) {
                 store.probe_failed(jenkins, next, std::move(reason), std::move(done));
             }),
             "probe_failed");
}

inline void unhold(Store& store, const std::string& jenkins) {
    value_of(wait_answer<result<void>>([&](auto done) { store.unhold(jenkins, std::move(done)); }),
             "unhold");
}

inline DeliveryPage list(Store& store, DeliveryQuery query = {}) {
    return value_of(wait_answer<result<DeliveryPage>>([&](auto done) {
                        store.list_deliveries(std::move(query), std::move(done));
                    }),
                    "list_deliveries");
}

/// The delivery ids of the pages after `page` (the answer to `query`), following next_cursor
/// to the end, and how many pages that took in all.
struct FollowedPages {
    std::vector<std::string> found;
    int pages = 1;
};
inline FollowedPages follow_pages(Store& store, DeliveryQuery query, DeliveryPage page) {
    FollowedPages out;
    while (page.next_before_seq) {
        query.before_seq = page.next_before_seq;
        page = list(store, query);
        ++out.pages;
        for (const auto& d : page.items) out.found.push_back(d.delivery_id);
    }
    return out;
}

inline std::optional<DeliveryDetail> get(Store& store, std::string source, std::string id) {
    return value_of(wait_answer<result<std::optional<DeliveryDetail>>>([&](auto done) {
                        store.get_delivery(std::move(source), std::move(id), std::move(done));
                    }),
                    "get_delivery");
}

inline std::optional<DeliveryDetail> get_of_trigger(Store& store, std::string trigger_id) {
    return value_of(wait_answer<result<std::optional<DeliveryDetail>>>([&](auto done) {
                        store.get_delivery_of_trigger(std::move(trigger_id), std::move(done));
                    }),
                    "get_delivery_of_trigger");
}

inline Replayed replay_all(Store& store, Ids ids, TimePoint now) {
    return value_of(wait_answer<result<Replayed>>(
                        [&](auto done) { store.replay(std::move(ids), now, std::move(done)); }),
                    "replay");
}

/// The re-queued ids.
inline Ids replay(Store& store, Ids ids, TimePoint now) {
    return replay_all(store, std::move(ids), now).ids;
}

inline Replayed replay_matching_all(Store& store, ReplayQuery query, TimePoint now) {
    return value_of(wait_answer<result<Replayed>>([&](auto done) {
                        store.replay_matching(std::move(query), now, std::move(done));
                    }),
                    "replay_matching");
}

/// The re-queued ids (with query.dry_run: those that would be).
inline Ids replay_matching(Store& store, ReplayQuery query, TimePoint now) {
    return replay_matching_all(store, std::move(query), now).ids;
}

inline Ids add_triggers(Store& store, std::string source, std::string id,
                        std::vector<TriggerRequest> triggers) {
    return value_of(wait_answer<result<Ids>>([&](auto done) {
                        store.add_triggers(std::move(source), std::move(id), std::move(triggers),
                                           std::move(done));
                    }),
                    "add_triggers");
}

inline Backlog backlog(Store& store) {
    return value_of(
        wait_answer<result<Backlog>>([&](auto done) { store.backlog(std::move(done)); }),
        "backlog");
}

inline std::vector<InstanceInfo> instances(Store& store) {
    return value_of(wait_answer<result<std::vector<InstanceInfo>>>(
                        [&](auto done) { store.instances(std::move(done)); }),
                    "instances");
}

inline std::map<std::string, JenkinsHold> holds(Store& store) {
    return value_of(wait_answer<result<std::map<std::string, JenkinsHold>>>(
                        [&](auto done) { store.holds(std::move(done)); }),
                    "holds");
}

inline std::size_t prune(Store& store, TimePoint now) {
    return value_of(
        wait_answer<result<std::size_t>>([&](auto done) { store.prune(now, std::move(done)); }),
        "prune");
}

/// Open triggers of `jenkins` (the backlog's count for it).
inline std::size_t open_count(Store& store, const std::string& jenkins) {
    for (const auto& [name, n] : backlog(store)) {
        if (name == jenkins) return n;
    }
    return 0;
}

/// The trigger `id` as get_delivery() shows it (with its history); fails the test when absent.
inline TriggerHistory history_of(Store& store, const std::string& delivery_id,
                                 const std::string& trigger_id) {
    const auto detail = get(store, "", delivery_id);
    if (!detail) throw std::runtime_error("no delivery " + delivery_id);
    for (const auto& h : detail->triggers) {
        if (h.trigger.id == trigger_id) return h;
    }
    throw std::runtime_error("no trigger " + trigger_id + " in " + delivery_id);
}

/// Records `update` for its trigger the way the dispatcher does: claims it (whenever it is
/// due), completes it under that claim, and releases whatever else the claim took.
inline void settle(Store& store, const std::string& jenkins, const TriggerUpdate& update) {
    const auto batch = claim(store, jenkins, Clock::now() + 24h * 365, 1000);
    Ids others;
    std::optional<std::string> mine;
    for (const auto& c : batch.claims) {
        if (c.trigger.id == update.id) {
            mine = c.claim_id;
        } else {
            others.push_back(c.claim_id);
        }
    }
    release(store, others);
    if (!mine) throw std::runtime_error("trigger " + update.id + " could not be claimed");
    if (complete(store, *mine, update) != Completion::applied) {
        throw std::runtime_error("the outcome of " + update.id + " was not applied");
    }
}

/// Counts the calls of an on_committed callback; first() becomes ready at the first one.
class CommitCounter {
  public:
    explicit CommitCounter(Store& store) {
        store.on_committed([state = state_] {
            if (state->calls.fetch_add(1) == 0) state->first.set_value();
        });
        first_ = state_->first.get_future();
    }

    bool first_arrives() { return first_.wait_for(k_deadline) == std::future_status::ready; }
    int calls() const { return state_->calls.load(); }

  private:
    struct State {
        std::atomic<int> calls{0};
        std::promise<void> first;
    };
    std::shared_ptr<State> state_ = std::make_shared<State>();
    std::future<void> first_;
};

}  // namespace hookrelay::store::test
