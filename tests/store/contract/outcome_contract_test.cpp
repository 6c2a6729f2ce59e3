// Contract: what the delivery listing shows of each trigger's outcome (trigger_outcome()) and the
// event's repository and ref, and the listing filtered by outcome ("held", "unmatched" included),
// with the other filters and the cursor.
#include "store/contract/chores.hpp"
#include "store/contract/contract.hpp"

#include <stdexcept>

namespace hookrelay::store::contract {
namespace {

using Outcomes = std::vector<std::pair<std::string, std::string>>;
using Names = std::vector<std::string>;

constexpr const char* k_queue_url = "http://jenkins/queue/item/7/";

Names delivery_ids(const DeliveryPage& page) {
    Names out;
    for (const auto& item : page.items) out.push_back(item.delivery_id);
    return out;
}

Names listed(Store& store, std::string outcome, std::size_t limit = 50) {
    DeliveryQuery query;
    query.outcome = std::move(outcome);
    query.limit = limit;
    return delivery_ids(list(store, query));
}

/// A followed trigger of a new delivery `id`, delivered at `at`, first poll due at `at`.
std::string deliver_followed(Store& store, const std::string& id, TimePoint at,
                             const std::string& source = "github-main") {
    const auto receipt = accept(store, delivery(id, at, source), {followed()});
    const std::string trigger_id = receipt.trigger_ids.at(0);
    settle(store, "ci", delivered(trigger_id, at, queued_build(k_queue_url, at), at));
    return trigger_id;
}

/// Polls the only follow chore due at `now` and records `build`; due again at `next_at`.
void follow_to(Store& store, const std::string& id, TimePoint now, BuildRecord build,
               std::optional<TimePoint> next_at) {
    const auto batch = claim_chores(store, Chore::follow, "ci", now);
    if (ids_of(batch) != Ids{id}) throw std::runtime_error("cannot claim the follow of " + id);
    ChoreUpdate u;
    u.id = id;
    u.next_at = next_at;
    u.build = std::move(build);
    if (complete_chore(store, Chore::follow, batch.claims[0].claim_id, u) != Completion::applied) {
        throw std::runtime_error("the follow of " + id + " was not recorded");
    }
}

BuildRecord build_with(TimePoint at, std::string result, std::string error = "") {
    BuildRecord b = queued_build(k_queue_url, at);
    b.number = 12;
    b.url = "http://jenkins/job/app/12/";
    b.started_at = at;
    b.result = std::move(result);
    b.error = std::move(error);
    return b;
}

/// One delivery per outcome, oldest first: d-unmatched (no trigger), d-pending, d-retrying,
/// d-dead, d-delivered (not followed), d-success, d-lost, d-building, d-queued, d-held (pending
/// for Jenkins "down", which is held).
void one_of_each(Store& store, TimePoint base) {
    accept(store, delivery("d-unmatched", base), {});
    accept(store, delivery("d-pending", base), {trigger()});
    const auto retrying = accept(store, delivery("d-retrying", base), {trigger()});
    settle(store, "ci", retry(retrying.trigger_ids[0], base + 1h, base));
    const auto dead = accept(store, delivery("d-dead", base), {trigger()});
    settle(store, "ci", finish(dead.trigger_ids[0], TriggerState::dead, base));
    const auto plain = accept(store, delivery("d-delivered", base), {followed(FollowMode::none)});
    settle(store, "ci",
           delivered(plain.trigger_ids[0], base, queued_build(k_queue_url, base), base));
    const std::string success = deliver_followed(store, "d-success", base);
    follow_to(store, success, base, build_with(base, "SUCCESS"), std::nullopt);
    const std::string lost = deliver_followed(store, "d-lost", base);
    follow_to(store, lost, base, build_with(base, "", "gave up after 24h"), std::nullopt);
    const std::string building = deliver_followed(store, "d-building", base);
    follow_to(store, building, base, build_with(base, ""), base + 1h);
    deliver_followed(store, "d-queued", base);
    accept(store, delivery("d-held", base), {trigger("down")});
    hold(store, "down", JenkinsHold{"connection refused", base, base + 1min, 0});
}

TEST_P(StoreContract, ListShowsEachTriggersOutcomeInCreationOrder) {
    DeliveryRecord d = delivery("d-1", base_);
    const auto receipt =
        accept(a(), std::move(d), {followed(), trigger("nightly"), followed(FollowMode::none)});
    settle(a(), "ci",
           delivered(receipt.trigger_ids[0], base_, queued_build(k_queue_url, base_), base_ + 1h));
    settle(a(), "ci", finish(receipt.trigger_ids[2], TriggerState::dead, base_));
    accept(a(), delivery("d-none", base_), {});

    EXPECT_EQ(outcomes_of(b(), "d-1"),
              (Outcomes{{"ci", "queued"}, {"nightly", "pending"}, {"ci", "dead"}}));
    EXPECT_EQ(outcomes_of(b(), "d-none"), Outcomes{});
    // Showing the delivery tells the same.
    const auto detail = get(b(), "", "d-1");
    ASSERT_TRUE(detail);
    EXPECT_EQ(detail->summary.outcomes,
              (Outcomes{{"ci", "queued"}, {"nightly", "pending"}, {"ci", "dead"}}));
}

// An update without a build record keeps the one stored (here left by a retry that carried
// one), and the trigger's outcome is then that record's.
TEST_P(StoreContract, ADeliveryWithoutABuildRecordShowsTheOutcomeOfTheRecordKept) {
    const std::string lost = accept(a(), delivery("d-lost", base_), {followed()}).trigger_ids.at(0);
    const std::string building =
        accept(a(), delivery("d-building", base_), {followed()}).trigger_ids.at(0);
    TriggerUpdate retried = retry(lost, base_, base_);
    retried.build = build_with(base_, "", "the queue item and its build could not be found");
    settle(a(), "ci", retried);
    retried = retry(building, base_, base_);
    retried.build = build_with(base_, "");
    settle(a(), "ci", retried);
    EXPECT_EQ(outcomes_of(b(), "d-lost"), (Outcomes{{"ci", "retrying"}}));
    // Under a claim it does not hold, such an update changes nothing.
    EXPECT_EQ(complete(a(), "not-a-claim", finish(lost, TriggerState::delivered, base_ + 1s)),
              Completion::stale);
    EXPECT_EQ(outcomes_of(b(), "d-lost"), (Outcomes{{"ci", "retrying"}}));

    settle(a(), "ci", finish(lost, TriggerState::delivered, base_ + 1s));
    settle(a(), "ci", finish(building, TriggerState::delivered, base_ + 1s));
    EXPECT_EQ(outcomes_of(b(), "d-lost"), (Outcomes{{"ci", "lost"}}));
    EXPECT_EQ(outcomes_of(b(), "d-building"), (Outcomes{{"ci", "building"}}));
    EXPECT_EQ(listed(b(), "lost"), (Names{"d-lost"}));
}

TEST_P(StoreContract, RepositoryAndRefOfADeliveryRoundTrip) {
    DeliveryRecord d = delivery("d-1", base_);
    d.repository = "acme/app";
    d.ref = "refs/heads/main";
    accept(a(), std::move(d), {trigger()});
    accept(a(), delivery("d-2", base_), {});

    const auto page = list(b());
    ASSERT_EQ(delivery_ids(page), (Names{"d-2", "d-1"}));
    EXPECT_EQ(page.items[1].repository, "acme/app");
    EXPECT_EQ(page.items[1].ref, "refs/heads/main");
    EXPECT_EQ(page.items[0].repository, "");
    EXPECT_EQ(page.items[0].ref, "");
    const auto detail = get(b(), "github-main", "d-1");
    ASSERT_TRUE(detail);
    EXPECT_EQ(detail->summary.repository, "acme/app");
    EXPECT_EQ(detail->summary.ref, "refs/heads/main");
}

TEST_P(StoreContract, ListFiltersByEachOutcome) {
    one_of_each(a(), base_);
    EXPECT_EQ(listed(b(), "pending"), (Names{"d-held", "d-pending"}));
    EXPECT_EQ(listed(b(), "retrying"), (Names{"d-retrying"}));
    EXPECT_EQ(listed(b(), "dead"), (Names{"d-dead"}));
    EXPECT_EQ(listed(b(), "delivered"), (Names{"d-delivered"}));
    EXPECT_EQ(listed(b(), "queued"), (Names{"d-queued"}));
    EXPECT_EQ(listed(b(), "building"), (Names{"d-building"}));
    EXPECT_EQ(listed(b(), "SUCCESS"), (Names{"d-success"}));
    EXPECT_EQ(listed(b(), "lost"), (Names{"d-lost"}));
    EXPECT_EQ(listed(b(), "held"), (Names{"d-held"}));
    EXPECT_EQ(listed(b(), "unmatched"), (Names{"d-unmatched"}));
    EXPECT_EQ(listed(b(), "FAILURE"), Names{});
    EXPECT_EQ(listed(b(), ""),
              (Names{"d-held", "d-queued", "d-building", "d-lost", "d-success", "d-delivered",
                     "d-dead", "d-retrying", "d-pending", "d-unmatched"}));
}

TEST_P(StoreContract, ListFilterHeldFollowsTheHoldAndTheTriggersState) {
    const auto receipt = accept(a(), delivery("d-1", base_), {trigger("down")});
    EXPECT_EQ(listed(a(), "held"), Names{});
    hold(a(), "down", JenkinsHold{"connection refused", base_, base_ + 1min, 0});
    EXPECT_EQ(listed(a(), "held"), (Names{"d-1"}));
    // Dead while held (an admin gave up on it): nothing held is waiting for it any more.
    unhold(a(), "down");
    settle(a(), "down", finish(receipt.trigger_ids[0], TriggerState::dead, base_));
    hold(a(), "down", JenkinsHold{"connection refused", base_, base_ + 1min, 0});
    EXPECT_EQ(listed(a(), "held"), Names{});
}

TEST_P(StoreContract, ListFilterByOutcomeFollowsTheTriggersChanges) {
    const std::string id = deliver_followed(a(), "d-1", base_);
    EXPECT_EQ(listed(a(), "queued"), (Names{"d-1"}));
    follow_to(a(), id, base_, build_with(base_, "FAILURE"), std::nullopt);
    EXPECT_EQ(listed(a(), "queued"), Names{});
    EXPECT_EQ(listed(a(), "FAILURE"), (Names{"d-1"}));
    replay(a(), {id}, base_ + 1s);
    EXPECT_EQ(listed(a(), "FAILURE"), Names{});
    EXPECT_EQ(listed(a(), "pending"), (Names{"d-1"}));
}

TEST_P(StoreContract, ListPagesThroughAnOutcomeWithTheCursor) {
    for (int i = 0; i < 5; ++i) {
        const std::string id = deliver_followed(a(), "s-" + std::to_string(i), base_);
        follow_to(a(), id, base_, build_with(base_, "SUCCESS"), std::nullopt);
        accept(a(), delivery("u-" + std::to_string(i), base_), {});
    }
    for (const std::string outcome : {"SUCCESS", "unmatched"}) {
        const std::string prefix = outcome == "SUCCESS" ? "s-" : "u-";
        DeliveryQuery query;
        query.outcome = outcome;
        query.limit = 2;
        Names seen;
        for (int page = 0; page < 4; ++page) {
            const auto answer = list(b(), query);
            for (const auto& name : delivery_ids(answer)) seen.push_back(name);
            if (!answer.next_before_seq) break;
            query.before_seq = answer.next_before_seq;
        }
        EXPECT_EQ(seen,
                  (Names{prefix + "4", prefix + "3", prefix + "2", prefix + "1", prefix + "0"}))
            << outcome;
    }
}

TEST_P(StoreContract, ListCombinesTheOutcomeFilterWithTheOthers) {
    for (const char* source : {"github", "gitlab"}) {
        for (int i = 0; i < 2; ++i) {
            const std::string name = std::string(source) + "-" + std::to_string(i);
            const std::string id = deliver_followed(a(), name, base_ + i * 1min, source);
            follow_to(a(), id, base_ + 1h, build_with(base_, "SUCCESS"), std::nullopt);
        }
    }
    const auto mixed =
        accept(a(), delivery("github-mixed", base_ + 1min, "github"), {followed(), trigger()});
    settle(a(), "ci",
           delivered(mixed.trigger_ids[0], base_, queued_build(k_queue_url, base_), base_ + 1h));

    DeliveryQuery query;
    query.outcome = "SUCCESS";
    query.source = "github";
    EXPECT_EQ(delivery_ids(list(a(), query)), (Names{"github-1", "github-0"}));
    query.since = base_ + 1min;
    EXPECT_EQ(delivery_ids(list(a(), query)), (Names{"github-1"}));
    query.outcome = "queued";
    query.state = TriggerState::pending;
    EXPECT_EQ(delivery_ids(list(a(), query)), (Names{"github-mixed"}));
    query.state = TriggerState::dead;
    EXPECT_EQ(delivery_ids(list(a(), query)), Names{});
}

TEST_P(StoreContract, ADeliveryGivenATriggerLaterIsNoLongerUnmatched) {
    accept(a(), delivery("d-1", base_), {});
    accept(a(), delivery("d-2", base_), {});
    EXPECT_EQ(listed(b(), "unmatched"), (Names{"d-2", "d-1"}));
    // A redelivery through rules that now match adds a trigger to the stored delivery.
    ASSERT_EQ(add_triggers(a(), "", "d-1", {trigger()}).size(), 1u);
    EXPECT_EQ(listed(b(), "unmatched"), (Names{"d-2"}));
    EXPECT_EQ(listed(b(), "pending"), (Names{"d-1"}));
    EXPECT_EQ(listed(b(), ""), (Names{"d-2", "d-1"}));
}

TEST_P(StoreContract, ListFilterUnmatchedCombinesWithSourceAndSinceAndNotWithAState) {
    accept(a(), delivery("github-old", base_, "github"), {});
    accept(a(), delivery("gitlab-new", base_ + 1min, "gitlab"), {});
    accept(a(), delivery("github-new", base_ + 1min, "github"), {});
    accept(a(), delivery("github-matched", base_ + 1min, "github"), {trigger()});
    DeliveryQuery query;
    query.outcome = "unmatched";
    query.source = "github";
    EXPECT_EQ(delivery_ids(list(b(), query)), (Names{"github-new", "github-old"}));
    query.since = base_ + 1min;
    EXPECT_EQ(delivery_ids(list(b(), query)), (Names{"github-new"}));
    // A delivery without a trigger has none in any state.
    query.state = TriggerState::pending;
    EXPECT_EQ(delivery_ids(list(b(), query)), Names{});
}

}  // namespace
}  // namespace hookrelay::store::contract
