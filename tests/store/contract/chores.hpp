// Helpers of the contract tests of the chore queue (following builds, posting commit statuses):
// the chore calls made synchronous, and the triggers, builds and wishes those tests record.
#pragma once

#include "store/store_test_support.hpp"

#include <hookrelay/store.hpp>

#include <optional>
#include <string>
#include <utility>

namespace hookrelay::store::test {

/// What claim_chores() asks for: up to `limit` chores of `chore` for `key` due at `now`.
inline ChoreRequest chore_request(Chore chore, const std::string& key, TimePoint now,
                                  std::size_t limit = 100, std::size_t max_in_flight = 0,
                                  std::chrono::milliseconds lease = k_lease) {
    ChoreRequest request;
    request.chore = chore;
    request.key = key;
    request.limit = limit;
    request.max_in_flight = max_in_flight;
    request.now = now;
    request.lease = lease;
    return request;
}

inline ChoreBatch claim_chores(Store& store, Chore chore, const std::string& key, TimePoint now,
                               std::size_t limit = 100, std::size_t max_in_flight = 0,
                               std::chrono::milliseconds lease = k_lease) {
    auto request = chore_request(chore, key, now, limit, max_in_flight, lease);
    return value_of(wait_answer<result<ChoreBatch>>([&](auto done) {
                        store.claim_chores(std::move(request), std::move(done));
                    }),
                    "claim_chores");
}

inline Completion complete_chore(Store& store, Chore chore, std::string claim_id,
                                 ChoreUpdate update) {
    return value_of(wait_answer<result<Completion>>([&](auto done) {
                        store.complete_chore(chore, std::move(claim_id), std::move(update),
                                             std::move(done));
                    }),
                    "complete_chore");
}

/// complete_chore(), then claim_chores() of `chore` for `key` at `now`, in one store call.
inline CompletionAndClaims complete_and_claim(Store& store, Chore chore, std::string claim_id,
                                              ChoreUpdate update, const std::string& key,
                                              TimePoint now, std::size_t limit = 100,
                                              std::size_t max_in_flight = 0) {
    auto next = chore_request(chore, key, now, limit, max_in_flight);
    return value_of(wait_answer<result<CompletionAndClaims>>([&](auto done) {
                        store.complete_and_claim(chore, std::move(claim_id), std::move(update),
                                                 std::move(next), std::move(done));
                    }),
                    "complete_and_claim");
}

inline void release_chores(Store& store, Chore chore, std::vector<std::string> claim_ids) {
    value_of(wait_answer<result<void>>([&](auto done) {
                 store.release_chores(chore, std::move(claim_ids), std::move(done));
             }),
             "release_chores");
}

/// The ids of the triggers whose chores a batch claimed, in its order.
inline Ids ids_of(const ChoreBatch& batch) {
    Ids out;
    for (const auto& c : batch.claims) out.push_back(c.trigger.id);
    return out;
}

/// Where the statuses of the tests' triggers go.
inline StatusTarget status_target() {
    return StatusTarget{"acme/app", std::string(40, 'a'), "hookrelay/build", "feature/x"};
}

/// trigger() followed as far as `mode`, with statuses posted when `with_status`.
inline TriggerRequest followed(FollowMode mode = FollowMode::finished, bool with_status = false,
                               std::string jenkins = "ci") {
    TriggerRequest t = trigger(std::move(jenkins));
    t.follow = mode;
    if (with_status) t.status = status_target();
    return t;
}

/// What the dispatcher knows of a build when Jenkins queued the trigger.
inline BuildRecord queued_build(std::string queue_url, TimePoint at, bool merged = false) {
    BuildRecord b;
    b.queue_url = std::move(queue_url);
    b.queue_id = 7;
    b.merged = merged;
    b.queued_at = at;
    return b;
}

/// Delivered at `at` with `build` (its queue URL the attempt's too); the first poll due at
/// `first_poll`.
inline TriggerUpdate delivered(const std::string& id, TimePoint at, BuildRecord build,
                               TimePoint first_poll) {
    TriggerUpdate u = finish(id, TriggerState::delivered, at);
    u.attempt.queue_url = build.queue_url;
    u.next_attempt_at = first_poll;
    u.build = std::move(build);
    return u;
}

inline StatusWish wish(std::string state, std::string description = "") {
    return StatusWish{std::move(state), std::move(description), "http://jenkins/job/app/12/"};
}

/// The trigger as get_delivery() shows it.
inline StoredTrigger stored(Store& store, const std::string& delivery_id,
                            const std::string& trigger_id) {
    return history_of(store, delivery_id, trigger_id).trigger;
}

/// The (jenkins, outcome) pairs list_deliveries() shows for `delivery_id`; fails the test when
/// it is not on the first page.
inline std::vector<std::pair<std::string, std::string>> outcomes_of(
    Store& store, const std::string& delivery_id) {
    DeliveryQuery query;
    query.limit = 1000;
    for (const auto& item : list(store, query).items) {
        if (item.delivery_id == delivery_id) return item.outcomes;
    }
    throw std::runtime_error("no delivery " + delivery_id + " listed");
}

}  // namespace hookrelay::store::test
