// Contract: the chore queue. Following a delivered trigger's build (when the chore starts, due
// times, holds, max_in_flight over every instance, takeover and fencing, replays), the merged
// build's partner, commit status wishes (coalescing, wishes during a post, retries), pruning and
// closing with chores.
#include "store/contract/chores.hpp"
#include "store/contract/contract.hpp"

#include <mutex>
#include <set>
#include <thread>

namespace hookrelay::store::contract {
namespace {

using Outcomes = std::vector<std::pair<std::string, std::string>>;

constexpr const char* k_queue_url = "http://jenkins/queue/item/7/";

/// One delivery `id` received at `at` with one trigger `request`; its trigger id.
std::string submit_one(Store& store, const std::string& id, TimePoint at, TriggerRequest request) {
    return accept(store, delivery(id, at), {std::move(request)}).trigger_ids.at(0);
}

/// A followed trigger of delivery `id`, delivered at `at` (queue item k_queue_url), its first
/// poll due at `first_poll`.
std::string delivered_followed(Store& store, const std::string& id, TimePoint at,
                               TimePoint first_poll, bool with_status = false,
                               const std::string& jenkins = "ci") {
    const std::string trigger_id =
        submit_one(store, id, at, followed(FollowMode::finished, with_status, jenkins));
    settle(store, jenkins, delivered(trigger_id, at, queued_build(k_queue_url, at), first_poll));
    return trigger_id;
}

/// A build that started as number 12.
BuildRecord started_build(TimePoint queued_at, TimePoint started_at) {
    BuildRecord b = queued_build(k_queue_url, queued_at);
    b.number = 12;
    b.url = "http://jenkins/job/app/12/";
    b.started_at = started_at;
    return b;
}

ChoreUpdate follow_update(const std::string& id, std::optional<TimePoint> next_at,
                          std::optional<BuildRecord> build, int tries = 0) {
    ChoreUpdate u;
    u.id = id;
    u.next_at = next_at;
    u.build = std::move(build);
    u.tries = tries;
    return u;
}

ChoreUpdate status_update(const std::string& id, std::int64_t posted_seq,
                          std::optional<StatusWish> posted, std::optional<TimePoint> next_at = {},
                          int tries = 0, std::string error = "") {
    ChoreUpdate u;
    u.id = id;
    u.posted_seq = posted_seq;
    u.posted = std::move(posted);
    u.next_at = next_at;
    u.tries = tries;
    u.error = std::move(error);
    return u;
}

// --- Following ---------------------------------------------------------------------------

TEST_P(StoreContract, FollowStartsWhenAFollowedTriggerIsDeliveredWithABuildRecord) {
    const std::string id = submit_one(a(), "d-1", base_, followed(FollowMode::finished, true));
    const BuildRecord build = queued_build(k_queue_url, base_ + 1s);
    settle(a(), "ci", delivered(id, base_ + 1s, build, base_ + 3s));

    const StoredTrigger t = stored(b(), "d-1", id);
    EXPECT_TRUE(t.following);
    EXPECT_EQ(t.build, build);
    EXPECT_EQ(outcomes_of(b(), "d-1"), (Outcomes{{"ci", "queued"}}));

    const auto batch = claim_chores(b(), Chore::follow, "ci", base_ + 3s);
    ASSERT_EQ(batch.claims.size(), 1u);
    const ChoreClaim& c = batch.claims[0];
    EXPECT_EQ(c.trigger.id, id);
    EXPECT_EQ(c.tries, 0);
    EXPECT_FALSE(c.claim_id.empty());
    EXPECT_EQ(c.expires_at, base_ + 3s + k_lease);
    EXPECT_EQ(c.trigger.build, build);
    EXPECT_TRUE(c.trigger.following);
    EXPECT_EQ(c.trigger.state, TriggerState::delivered);
    EXPECT_EQ(c.trigger.request.follow, FollowMode::finished);
    EXPECT_EQ(c.trigger.request.status, std::optional<StatusTarget>(status_target()));
    EXPECT_EQ(c.trigger.request.job, trigger().job);
    EXPECT_EQ(c.trigger.source, "github-main");
    EXPECT_EQ(c.trigger.delivery_id, "d-1");
    EXPECT_FALSE(batch.hold);
}

TEST_P(StoreContract, FollowDoesNotStartForATriggerNotFollowed) {
    const std::string id = submit_one(a(), "d-1", base_, followed(FollowMode::none));
    settle(a(), "ci", delivered(id, base_, queued_build(k_queue_url, base_), base_));

    EXPECT_FALSE(stored(a(), "d-1", id).following);
    EXPECT_TRUE(claim_chores(a(), Chore::follow, "ci", base_ + 24h).claims.empty());
    EXPECT_EQ(outcomes_of(a(), "d-1"), (Outcomes{{"ci", "delivered"}}));
}

TEST_P(StoreContract, FollowDoesNotStartWithoutABuildRecord) {
    const std::string id = submit_one(a(), "d-1", base_, followed());
    settle(a(), "ci", finish(id, TriggerState::delivered, base_));

    EXPECT_FALSE(stored(a(), "d-1", id).following);
    EXPECT_TRUE(claim_chores(a(), Chore::follow, "ci", base_ + 24h).claims.empty());
}

TEST_P(StoreContract, FollowDoesNotStartForADeadTrigger) {
    const std::string id = submit_one(a(), "d-1", base_, followed());
    TriggerUpdate dead = finish(id, TriggerState::dead, base_);
    dead.build = queued_build(k_queue_url, base_);
    settle(a(), "ci", dead);

    EXPECT_FALSE(stored(a(), "d-1", id).following);
    EXPECT_TRUE(claim_chores(a(), Chore::follow, "ci", base_ + 24h).claims.empty());
}

TEST_P(StoreContract, FollowChoreIsClaimableOnlyOnceDue) {
    const std::string id = delivered_followed(a(), "d-1", base_, base_ + 5s);
    EXPECT_TRUE(claim_chores(a(), Chore::follow, "ci", base_ + 5s - 1ms).claims.empty());
    EXPECT_TRUE(claim_chores(a(), Chore::follow, "other", base_ + 5s).claims.empty());
    EXPECT_EQ(ids_of(claim_chores(a(), Chore::follow, "ci", base_ + 5s)), (Ids{id}));
    // Claimed: not again while the lease lasts, from any instance.
    EXPECT_TRUE(claim_chores(a(), Chore::follow, "ci", base_ + 5s).claims.empty());
    EXPECT_TRUE(claim_chores(b(), Chore::follow, "ci", base_ + 5s + k_lease - 1ms).claims.empty());
}

TEST_P(StoreContract, FollowChoresAreClaimedEarliestDueFirstUpToTheLimit) {
    const std::string late = delivered_followed(a(), "d-1", base_, base_ + 3s);
    const std::string early = delivered_followed(a(), "d-2", base_, base_ + 1s);
    const std::string middle = delivered_followed(a(), "d-3", base_, base_ + 2s);
    EXPECT_EQ(ids_of(claim_chores(a(), Chore::follow, "ci", base_ + 10s, 2)), (Ids{early, middle}));
    EXPECT_EQ(ids_of(claim_chores(a(), Chore::follow, "ci", base_ + 10s, 2)), (Ids{late}));
}

TEST_P(StoreContract, HeldJenkinsGivesItsHoldAndNoFollowChore) {
    const std::string id = delivered_followed(a(), "d-1", base_, base_);
    hold(a(), "ci", JenkinsHold{"connection refused", base_, base_ + 1min, 0});

    const auto held = claim_chores(b(), Chore::follow, "ci", base_ + 1s);
    EXPECT_TRUE(held.claims.empty());
    ASSERT_TRUE(held.hold);
    EXPECT_EQ(held.hold->reason, "connection refused");

    unhold(a(), "ci");
    EXPECT_EQ(ids_of(claim_chores(b(), Chore::follow, "ci", base_ + 1s)), (Ids{id}));
}

TEST_P(StoreContract, FollowMaxInFlightCountsClaimsOfEveryInstance) {
    for (int i = 0; i < 4; ++i) delivered_followed(a(), "d-" + std::to_string(i), base_, base_);
    EXPECT_EQ(claim_chores(a(), Chore::follow, "ci", base_ + 1s, 10, 2).claims.size(), 2u);
    EXPECT_TRUE(claim_chores(b(), Chore::follow, "ci", base_ + 1s, 10, 2).claims.empty());
    EXPECT_EQ(claim_chores(b(), Chore::follow, "ci", base_ + 1s, 10, 3).claims.size(), 1u);
    // Trigger claims are not chore claims: a Jenkins' deliveries do not use up its follows.
    accept(a(), delivery("d-open", base_), {trigger()});
    EXPECT_EQ(claim(a(), "ci", base_ + 1s, 10, 1).claims.size(), 1u);
    // Expired claims do not count.
    EXPECT_EQ(claim_chores(b(), Chore::follow, "ci", base_ + 1s + k_lease, 10, 2).claims.size(),
              2u);
}

TEST_P(StoreContract, ConcurrentFollowClaimsFromTwoInstancesNeverOverlapNorExceedTheCap) {
    constexpr int k_triggers = 30;
    constexpr std::size_t k_cap = 12;
    for (int i = 0; i < k_triggers; ++i) {
        delivered_followed(a(), "d-" + std::to_string(i), base_, base_);
    }
    std::mutex mutex;
    std::vector<std::string> claimed;
    std::vector<std::string> failures;
    Store* stores[] = {&a(), &b()};
    std::vector<std::thread> threads;
    for (int n = 0; n < 4; ++n) {
        threads.emplace_back([&, n] {
            for (int i = 0; i < 5; ++i) {
                try {
                    const auto batch =
                        claim_chores(*stores[n % 2], Chore::follow, "ci", base_ + 1s, 2, k_cap);
                    std::lock_guard lock(mutex);
                    for (const auto& c : batch.claims) claimed.push_back(c.trigger.id);
                } catch (const std::exception& e) {
                    std::lock_guard lock(mutex);
                    failures.emplace_back(e.what());
                }
            }
        });
    }
    for (auto& thread : threads) thread.join();
    ASSERT_TRUE(failures.empty()) << failures.front();
    const std::set<std::string> distinct(claimed.begin(), claimed.end());
    EXPECT_EQ(distinct.size(), claimed.size()) << "a follow was claimed twice";
    EXPECT_EQ(claimed.size(), k_cap);
}

TEST_P(StoreContract, ExpiredFollowClaimIsTakenOverAndTheOldClaimIsStale) {
    const std::string id = delivered_followed(a(), "d-1", base_, base_);
    const auto first = claim_chores(a(), Chore::follow, "ci", base_, 10, 0, 10s);
    ASSERT_EQ(first.claims.size(), 1u);
    EXPECT_TRUE(claim_chores(b(), Chore::follow, "ci", base_ + 10s - 1ms).claims.empty());
    const auto taken = claim_chores(b(), Chore::follow, "ci", base_ + 10s);
    ASSERT_EQ(ids_of(taken), (Ids{id}));
    EXPECT_NE(taken.claims[0].claim_id, first.claims[0].claim_id);

    const BuildRecord build = started_build(base_, base_ + 5s);
    EXPECT_EQ(complete_chore(a(), Chore::follow, first.claims[0].claim_id,
                             follow_update(id, std::nullopt, build)),
              Completion::stale);
    EXPECT_TRUE(stored(a(), "d-1", id).following);
    EXPECT_EQ(stored(a(), "d-1", id).build, queued_build(k_queue_url, base_));
    EXPECT_EQ(complete_chore(b(), Chore::follow, taken.claims[0].claim_id,
                             follow_update(id, base_ + 20s, build)),
              Completion::applied);
}

TEST_P(StoreContract, FollowCompletionRecordsTheBuildAndItsOutcome) {
    const std::string id = delivered_followed(a(), "d-1", base_, base_);
    auto batch = claim_chores(a(), Chore::follow, "ci", base_);
    ASSERT_EQ(batch.claims.size(), 1u);

    // Still waiting in Jenkins' queue: due again, tries kept.
    BuildRecord waiting = queued_build(k_queue_url, base_);
    waiting.why = "In the quiet period.";
    EXPECT_EQ(complete_chore(a(), Chore::follow, batch.claims[0].claim_id,
                             follow_update(id, base_ + 2s, waiting, 3)),
              Completion::applied);
    EXPECT_EQ(stored(a(), "d-1", id).build, waiting);
    EXPECT_TRUE(claim_chores(a(), Chore::follow, "ci", base_ + 2s - 1ms).claims.empty());
    batch = claim_chores(a(), Chore::follow, "ci", base_ + 2s);
    ASSERT_EQ(batch.claims.size(), 1u);
    EXPECT_EQ(batch.claims[0].tries, 3);
    EXPECT_EQ(batch.claims[0].trigger.build, waiting);
    EXPECT_EQ(outcomes_of(a(), "d-1"), (Outcomes{{"ci", "queued"}}));

    // Started.
    const BuildRecord running = started_build(base_, base_ + 3s);
    EXPECT_EQ(complete_chore(a(), Chore::follow, batch.claims[0].claim_id,
                             follow_update(id, base_ + 10s, running)),
              Completion::applied);
    EXPECT_EQ(outcomes_of(a(), "d-1"), (Outcomes{{"ci", "building"}}));

    // Finished: following ends.
    batch = claim_chores(a(), Chore::follow, "ci", base_ + 10s);
    ASSERT_EQ(batch.claims.size(), 1u);
    BuildRecord done = running;
    done.result = "SUCCESS";
    done.finished_at = base_ + 9s;
    EXPECT_EQ(complete_chore(a(), Chore::follow, batch.claims[0].claim_id,
                             follow_update(id, std::nullopt, done)),
              Completion::applied);
    const StoredTrigger t = stored(a(), "d-1", id);
    EXPECT_FALSE(t.following);
    EXPECT_EQ(t.build, done);
    EXPECT_EQ(outcomes_of(a(), "d-1"), (Outcomes{{"ci", "SUCCESS"}}));
    EXPECT_TRUE(claim_chores(a(), Chore::follow, "ci", base_ + 24h).claims.empty());
    // The claim ended with the completion.
    EXPECT_EQ(complete_chore(a(), Chore::follow, batch.claims[0].claim_id,
                             follow_update(id, base_ + 1h, running)),
              Completion::stale);
}

TEST_P(StoreContract, CompletingAChoreClaimsTheNextDueOnesInTheSameCall) {
    const std::string first = delivered_followed(a(), "d-1", base_, base_);
    const std::string second = delivered_followed(a(), "d-2", base_, base_ + 1s);
    const std::string third = delivered_followed(a(), "d-3", base_, base_ + 5s);
    // One follow at a time for this Jenkins, over every instance.
    auto batch = claim_chores(a(), Chore::follow, "ci", base_ + 2s, 10, 1);
    ASSERT_EQ(ids_of(batch), (Ids{first}));

    // The finished build is recorded, and its slot goes to the next due chore: the third is not
    // due yet.
    BuildRecord done = started_build(base_, base_ + 1s);
    done.result = "SUCCESS";
    done.finished_at = base_ + 2s;
    auto answer =
        complete_and_claim(a(), Chore::follow, batch.claims[0].claim_id,
                           follow_update(first, std::nullopt, done), "ci", base_ + 2s, 10, 1);
    EXPECT_EQ(answer.completion, Completion::applied);
    ASSERT_EQ(ids_of(answer.next), (Ids{second}));
    EXPECT_FALSE(answer.next.hold);
    EXPECT_EQ(answer.next.claims[0].trigger.build, queued_build(k_queue_url, base_));
    EXPECT_EQ(stored(a(), "d-1", first).build, done);
    EXPECT_FALSE(stored(a(), "d-1", first).following);
    EXPECT_EQ(outcomes_of(a(), "d-1"), (Outcomes{{"ci", "SUCCESS"}}));
    // The claim counts against the cap like any other.
    EXPECT_TRUE(claim_chores(b(), Chore::follow, "ci", base_ + 6s, 10, 1).claims.empty());

    // Due again later: the chore goes on, and the third (due by now) takes the slot.
    answer = complete_and_claim(a(), Chore::follow, answer.next.claims[0].claim_id,
                                follow_update(second, base_ + 20s, std::nullopt, 1), "ci",
                                base_ + 6s, 10, 1);
    EXPECT_EQ(answer.completion, Completion::applied);
    ASSERT_EQ(ids_of(answer.next), (Ids{third}));
    EXPECT_TRUE(stored(a(), "d-2", second).following);

    // Nothing due: the completion is recorded and nothing is claimed.
    answer = complete_and_claim(a(), Chore::follow, answer.next.claims[0].claim_id,
                                follow_update(third, base_ + 30s, std::nullopt), "ci", base_ + 6s,
                                10, 1);
    EXPECT_EQ(answer.completion, Completion::applied);
    EXPECT_TRUE(answer.next.claims.empty());
    EXPECT_EQ(ids_of(claim_chores(b(), Chore::follow, "ci", base_ + 20s, 10, 1)), (Ids{second}));
}

TEST_P(StoreContract, AStaleCompletionRecordsNothingAndStillClaimsTheNextDueChore) {
    const std::string first = delivered_followed(a(), "d-1", base_, base_);
    const auto old = claim_chores(a(), Chore::follow, "ci", base_, 1, 0, 10s);
    ASSERT_EQ(ids_of(old), (Ids{first}));
    const auto taken = claim_chores(b(), Chore::follow, "ci", base_ + 10s, 1);
    ASSERT_EQ(ids_of(taken), (Ids{first}));
    const std::string second = delivered_followed(a(), "d-2", base_, base_ + 10s);

    const auto answer = complete_and_claim(
        a(), Chore::follow, old.claims[0].claim_id,
        follow_update(first, std::nullopt, started_build(base_, base_ + 1s)), "ci", base_ + 10s);
    EXPECT_EQ(answer.completion, Completion::stale);
    EXPECT_EQ(ids_of(answer.next), (Ids{second}));
    EXPECT_TRUE(stored(a(), "d-1", first).following);
    EXPECT_EQ(stored(a(), "d-1", first).build, queued_build(k_queue_url, base_));
    // The other instance's claim still holds.
    EXPECT_EQ(complete_chore(b(), Chore::follow, taken.claims[0].claim_id,
                             follow_update(first, std::nullopt, std::nullopt)),
              Completion::applied);
}

TEST_P(StoreContract, CompletingAFollowWhileTheJenkinsIsHeldRecordsItAndAnswersTheHold) {
    const std::string first = delivered_followed(a(), "d-1", base_, base_);
    delivered_followed(a(), "d-2", base_, base_);
    const auto batch = claim_chores(a(), Chore::follow, "ci", base_, 1);
    ASSERT_EQ(ids_of(batch), (Ids{first}));
    hold(a(), "ci", JenkinsHold{"connection refused", base_, base_ + 1min, 0});

    const auto answer =
        complete_and_claim(a(), Chore::follow, batch.claims[0].claim_id,
                           follow_update(first, base_ + 5s, std::nullopt, 1), "ci", base_ + 1s);
    EXPECT_EQ(answer.completion, Completion::applied);
    EXPECT_TRUE(answer.next.claims.empty());
    ASSERT_TRUE(answer.next.hold);
    EXPECT_EQ(answer.next.hold->reason, "connection refused");
    unhold(a(), "ci");
    const auto after = claim_chores(a(), Chore::follow, "ci", base_ + 5s);
    ASSERT_EQ(after.claims.size(), 2u);
    EXPECT_EQ(after.claims[1].trigger.id, first);  // due last
    EXPECT_EQ(after.claims[1].tries, 1);
}

TEST_P(StoreContract, CompletingAStatusPostClaimsTheNextWishToPost) {
    std::vector<std::string> ids;
    for (int i = 0; i < 2; ++i) {
        const std::string d = "d-" + std::to_string(i);
        ids.push_back(submit_one(a(), d, base_, followed(FollowMode::none, true)));
        TriggerUpdate update =
            delivered(ids.back(), base_, queued_build(k_queue_url, base_), base_);
        update.status = wish("success");
        settle(a(), "ci", update);
    }
    const auto batch = claim_chores(a(), Chore::status, "github-main", base_, 1);
    ASSERT_EQ(ids_of(batch), (Ids{ids[0]}));
    const auto answer =
        complete_and_claim(a(), Chore::status, batch.claims[0].claim_id,
                           status_update(ids[0], 1, wish("success")), "github-main", base_, 1);
    EXPECT_EQ(answer.completion, Completion::applied);
    EXPECT_EQ(ids_of(answer.next), (Ids{ids[1]}));
    EXPECT_EQ(stored(a(), "d-0", ids[0]).status.posted, wish("success"));
    EXPECT_EQ(stored(a(), "d-0", ids[0]).status.posted_seq, 1);
}

TEST_P(StoreContract, ReleasedChoreClaimsAreDueAgainAtOnceForAnyInstance) {
    const std::string first = delivered_followed(a(), "d-1", base_, base_);
    // One follow at a time for this Jenkins, over every instance.
    const auto batch = claim_chores(a(), Chore::follow, "ci", base_, 10, 1);
    ASSERT_EQ(ids_of(batch), (Ids{first}));
    const std::string claim = batch.claims[0].claim_id;
    // Another instance's claims, other kinds and unknown ids are not released.
    release_chores(b(), Chore::follow, {claim, "no-such-claim"});
    release_chores(a(), Chore::status, {claim});
    EXPECT_TRUE(claim_chores(b(), Chore::follow, "ci", base_ + 1s, 10, 1).claims.empty());

    release_chores(a(), Chore::follow, {claim});
    const auto again = claim_chores(b(), Chore::follow, "ci", base_ + 1s, 10, 1);
    ASSERT_EQ(ids_of(again), (Ids{first}));
    EXPECT_EQ(again.claims[0].tries, 0);  // nothing was recorded
    EXPECT_EQ(stored(a(), "d-1", first).build, queued_build(k_queue_url, base_));
    EXPECT_EQ(
        complete_chore(a(), Chore::follow, claim, follow_update(first, std::nullopt, std::nullopt)),
        Completion::stale);

    // The same for a status to post.
    const std::string posted = submit_one(a(), "d-2", base_, followed(FollowMode::none, true));
    TriggerUpdate update = delivered(posted, base_, queued_build(k_queue_url, base_), base_);
    update.status = wish("success");
    settle(a(), "ci", update);
    const auto status = claim_chores(a(), Chore::status, "github-main", base_);
    ASSERT_EQ(ids_of(status), (Ids{posted}));
    release_chores(a(), Chore::status, {status.claims[0].claim_id});
    const auto reposted = claim_chores(b(), Chore::status, "github-main", base_);
    ASSERT_EQ(ids_of(reposted), (Ids{posted}));
    EXPECT_EQ(reposted.claims[0].trigger.status.wanted, wish("success"));
}

TEST_P(StoreContract, FollowCompletionWithoutABuildKeepsTheStoredOne) {
    const std::string id = delivered_followed(a(), "d-1", base_, base_);
    const auto batch = claim_chores(a(), Chore::follow, "ci", base_);
    ASSERT_EQ(batch.claims.size(), 1u);
    EXPECT_EQ(complete_chore(a(), Chore::follow, batch.claims[0].claim_id,
                             follow_update(id, base_ + 5s, std::nullopt, 1)),
              Completion::applied);
    EXPECT_EQ(stored(a(), "d-1", id).build, queued_build(k_queue_url, base_));
    EXPECT_EQ(claim_chores(a(), Chore::follow, "ci", base_ + 5s).claims.at(0).tries, 1);
}

TEST_P(StoreContract, FollowThatGaveUpShowsTheTriggerLost) {
    const std::string id = delivered_followed(a(), "d-1", base_, base_);
    const auto batch = claim_chores(a(), Chore::follow, "ci", base_);
    ASSERT_EQ(batch.claims.size(), 1u);
    BuildRecord lost = queued_build(k_queue_url, base_);
    lost.error = "the queue item and its build could not be found";
    EXPECT_EQ(complete_chore(a(), Chore::follow, batch.claims[0].claim_id,
                             follow_update(id, std::nullopt, lost)),
              Completion::applied);
    EXPECT_EQ(outcomes_of(a(), "d-1"), (Outcomes{{"ci", "lost"}}));
}

TEST_P(StoreContract, FollowedOnlyUntilStartedShowsStartedOnceFollowingEnds) {
    const std::string id = submit_one(a(), "d-1", base_, followed(FollowMode::started));
    settle(a(), "ci", delivered(id, base_, queued_build(k_queue_url, base_), base_));
    const auto batch = claim_chores(a(), Chore::follow, "ci", base_);
    ASSERT_EQ(batch.claims.size(), 1u);
    EXPECT_EQ(complete_chore(a(), Chore::follow, batch.claims[0].claim_id,
                             follow_update(id, std::nullopt, started_build(base_, base_ + 1s))),
              Completion::applied);
    EXPECT_EQ(outcomes_of(a(), "d-1"), (Outcomes{{"ci", "started"}}));
}

TEST_P(StoreContract, ReplayEndsFollowingAndMakesALateFollowCompletionStale) {
    const std::string id = delivered_followed(a(), "d-1", base_, base_, true);
    auto batch = claim_chores(a(), Chore::follow, "ci", base_);
    ASSERT_EQ(batch.claims.size(), 1u);
    ChoreUpdate with_wish = follow_update(id, base_ + 1s, std::nullopt);
    with_wish.status = wish("pending");
    ASSERT_EQ(complete_chore(a(), Chore::follow, batch.claims[0].claim_id, with_wish),
              Completion::applied);
    batch = claim_chores(a(), Chore::follow, "ci", base_ + 1s);
    ASSERT_EQ(batch.claims.size(), 1u);

    EXPECT_EQ(replay(b(), {id}, base_ + 2s), (Ids{id}));
    const StoredTrigger t = stored(a(), "d-1", id);
    EXPECT_FALSE(t.following);
    EXPECT_EQ(t.build, BuildRecord{});
    EXPECT_EQ(t.state, TriggerState::pending);
    EXPECT_EQ(t.status.wanted, wish("pending"));  // the status progress stays
    EXPECT_EQ(t.status.wanted_seq, 1);
    EXPECT_EQ(outcomes_of(a(), "d-1"), (Outcomes{{"ci", "pending"}}));

    EXPECT_EQ(complete_chore(a(), Chore::follow, batch.claims[0].claim_id,
                             follow_update(id, base_ + 5s, started_build(base_, base_ + 1s))),
              Completion::stale);
    EXPECT_EQ(stored(a(), "d-1", id).build, BuildRecord{});
    EXPECT_TRUE(claim_chores(a(), Chore::follow, "ci", base_ + 24h).claims.empty());
}

TEST_P(StoreContract, ReplayMatchingEndsFollowingToo) {
    const std::string id = delivered_followed(a(), "d-1", base_, base_);
    ReplayQuery query;
    query.state = TriggerState::delivered;
    EXPECT_EQ(replay_matching(a(), query, base_ + 1s), (Ids{id}));
    EXPECT_FALSE(stored(a(), "d-1", id).following);
    EXPECT_EQ(stored(a(), "d-1", id).build, BuildRecord{});
    EXPECT_TRUE(claim_chores(a(), Chore::follow, "ci", base_ + 24h).claims.empty());
}

TEST_P(StoreContract, MergedBuildNamesTheDeliveryWhoseTriggerGotTheSameQueueItem) {
    const std::string shared = "http://jenkins/queue/item/40/";
    const std::string first = submit_one(a(), "d-first", base_, followed());
    settle(a(), "ci", delivered(first, base_, queued_build(shared, base_), base_));
    const std::string other = submit_one(a(), "d-other", base_, followed());
    settle(a(), "ci",
           delivered(other, base_, queued_build("http://jenkins/queue/item/41/", base_), base_));
    const std::string merged = submit_one(a(), "d-merged", base_ + 1s, followed());
    settle(a(), "ci", delivered(merged, base_ + 1s, queued_build(shared, base_ + 1s, true), base_));
    EXPECT_EQ(stored(a(), "d-merged", merged).build.merged_with, "d-first");

    // The newest other trigger with that queue item, named by "#<seq>" when it has no id.
    const auto anonymous = accept(a(), delivery("", base_ + 2s), {followed()});
    settle(a(), "ci",
           delivered(anonymous.trigger_ids[0], base_ + 2s, queued_build(shared, base_ + 2s, true),
                     base_));
    const auto later = accept(a(), delivery("d-later", base_ + 3s), {followed()});
    settle(
        a(), "ci",
        delivered(later.trigger_ids[0], base_ + 3s, queued_build(shared, base_ + 3s, true), base_));
    DeliveryQuery query;
    query.limit = 10;
    std::int64_t anonymous_seq = 0;
    for (const auto& item : list(a(), query).items) {
        if (item.delivery_id.empty()) anonymous_seq = item.seq;
    }
    ASSERT_NE(anonymous_seq, 0);
    EXPECT_EQ(stored(a(), "d-later", later.trigger_ids[0]).build.merged_with,
              "#" + std::to_string(anonymous_seq));

    // None other: unknown.
    const std::string alone = submit_one(a(), "d-alone", base_, followed());
    settle(
        a(), "ci",
        delivered(alone, base_, queued_build("http://jenkins/queue/item/99/", base_, true), base_));
    EXPECT_EQ(stored(a(), "d-alone", alone).build.merged_with, "");
}

// --- Commit statuses ---------------------------------------------------------------------

TEST_P(StoreContract, StatusWishOfADeliveryMakesTheStatusChoreDueAtOnce) {
    const std::string id = submit_one(a(), "d-1", base_, followed(FollowMode::finished, true));
    TriggerUpdate update = delivered(id, base_, queued_build(k_queue_url, base_), base_ + 1h);
    update.status = wish("pending", "queued in Jenkins");
    settle(a(), "ci", update);

    const StoredTrigger t = stored(a(), "d-1", id);
    EXPECT_EQ(t.status.wanted, wish("pending", "queued in Jenkins"));
    EXPECT_EQ(t.status.wanted_seq, 1);
    EXPECT_EQ(t.status.posted_seq, 0);

    EXPECT_TRUE(claim_chores(a(), Chore::status, "gitlab", base_).claims.empty());
    const auto batch = claim_chores(a(), Chore::status, "github-main", base_ - 1h);
    ASSERT_EQ(ids_of(batch), (Ids{id}));
    EXPECT_EQ(batch.claims[0].tries, 0);
    EXPECT_EQ(batch.claims[0].trigger.status.wanted, wish("pending", "queued in Jenkins"));
    EXPECT_EQ(batch.claims[0].trigger.request.status, std::optional<StatusTarget>(status_target()));
    EXPECT_FALSE(batch.hold);
}

TEST_P(StoreContract, StatusWishesCoalesceIntoOnePostOfTheNewest) {
    const std::string id = submit_one(a(), "d-1", base_, followed(FollowMode::finished, true));
    TriggerUpdate update = delivered(id, base_, queued_build(k_queue_url, base_), base_);
    update.status = wish("pending");
    settle(a(), "ci", update);
    const auto follow = claim_chores(a(), Chore::follow, "ci", base_);
    ASSERT_EQ(follow.claims.size(), 1u);
    ChoreUpdate started = follow_update(id, base_ + 5s, started_build(base_, base_ + 1s));
    started.status = wish("running");
    ASSERT_EQ(complete_chore(a(), Chore::follow, follow.claims[0].claim_id, started),
              Completion::applied);

    const auto batch = claim_chores(b(), Chore::status, "github-main", base_ + 1s);
    ASSERT_EQ(batch.claims.size(), 1u);
    EXPECT_EQ(batch.claims[0].trigger.status.wanted, wish("running"));
    EXPECT_EQ(batch.claims[0].trigger.status.wanted_seq, 2);
    EXPECT_EQ(batch.claims[0].trigger.status.posted_seq, 0);

    EXPECT_EQ(complete_chore(b(), Chore::status, batch.claims[0].claim_id,
                             status_update(id, 2, wish("running"))),
              Completion::applied);
    const StoredTrigger t = stored(a(), "d-1", id);
    EXPECT_EQ(t.status.posted_seq, 2);
    EXPECT_EQ(t.status.posted, wish("running"));
    EXPECT_EQ(t.status.error, "");
    EXPECT_TRUE(claim_chores(a(), Chore::status, "github-main", base_ + 24h).claims.empty());
}

TEST_P(StoreContract, StatusWishDuringAPostMakesItDueAgainAfterThePost) {
    const std::string id = submit_one(a(), "d-1", base_, followed(FollowMode::finished, true));
    TriggerUpdate update = delivered(id, base_, queued_build(k_queue_url, base_), base_);
    update.status = wish("pending");
    settle(a(), "ci", update);
    const auto post = claim_chores(a(), Chore::status, "github-main", base_);
    ASSERT_EQ(post.claims.size(), 1u);
    ASSERT_EQ(post.claims[0].trigger.status.wanted_seq, 1);

    // The build started while the first status was being posted.
    const auto follow = claim_chores(a(), Chore::follow, "ci", base_);
    ASSERT_EQ(follow.claims.size(), 1u);
    ChoreUpdate started = follow_update(id, base_ + 5s, started_build(base_, base_ + 1s));
    started.status = wish("running");
    ASSERT_EQ(complete_chore(a(), Chore::follow, follow.claims[0].claim_id, started),
              Completion::applied);
    EXPECT_TRUE(claim_chores(b(), Chore::status, "github-main", base_ + 1s).claims.empty());

    // The first post had failed twice before it went through.
    EXPECT_EQ(complete_chore(a(), Chore::status, post.claims[0].claim_id,
                             status_update(id, 1, wish("pending"), std::nullopt, 2)),
              Completion::applied);
    const auto again = claim_chores(b(), Chore::status, "github-main", base_ + 1s);
    ASSERT_EQ(again.claims.size(), 1u);
    EXPECT_EQ(again.claims[0].tries, 0);
    EXPECT_EQ(again.claims[0].trigger.status.wanted, wish("running"));
    EXPECT_EQ(again.claims[0].trigger.status.wanted_seq, 2);
    EXPECT_EQ(again.claims[0].trigger.status.posted_seq, 1);
    EXPECT_EQ(again.claims[0].trigger.status.posted, wish("pending"));
}

TEST_P(StoreContract, FailedStatusPostIsRetriedAtItsNextTime) {
    const std::string id = submit_one(a(), "d-1", base_, followed(FollowMode::finished, true));
    TriggerUpdate update = delivered(id, base_, queued_build(k_queue_url, base_), base_);
    update.status = wish("pending");
    settle(a(), "ci", update);
    const auto post = claim_chores(a(), Chore::status, "github-main", base_);
    ASSERT_EQ(post.claims.size(), 1u);

    EXPECT_EQ(complete_chore(a(), Chore::status, post.claims[0].claim_id,
                             status_update(id, 1, std::nullopt, base_ + 10s, 1, "HTTP 502")),
              Completion::applied);
    const StoredTrigger t = stored(a(), "d-1", id);
    EXPECT_EQ(t.status.tries, 1);
    EXPECT_EQ(t.status.error, "HTTP 502");
    EXPECT_EQ(t.status.posted_seq, 0);
    EXPECT_TRUE(claim_chores(a(), Chore::status, "github-main", base_ + 10s - 1ms).claims.empty());
    const auto retry = claim_chores(b(), Chore::status, "github-main", base_ + 10s);
    ASSERT_EQ(retry.claims.size(), 1u);
    EXPECT_EQ(retry.claims[0].tries, 1);
    EXPECT_EQ(retry.claims[0].trigger.status.error, "HTTP 502");
    // The retry's claim is the one that counts now.
    EXPECT_EQ(complete_chore(a(), Chore::status, post.claims[0].claim_id,
                             status_update(id, 1, wish("pending"))),
              Completion::stale);
}

TEST_P(StoreContract, StatusMaxInFlightCountsClaimsOfEveryInstance) {
    for (int i = 0; i < 3; ++i) {
        const std::string d = "d-" + std::to_string(i);
        const std::string id = submit_one(a(), d, base_, followed(FollowMode::none, true));
        TriggerUpdate update = delivered(id, base_, queued_build(k_queue_url, base_), base_);
        update.status = wish("success");
        settle(a(), "ci", update);
    }
    EXPECT_EQ(claim_chores(a(), Chore::status, "github-main", base_, 10, 2).claims.size(), 2u);
    EXPECT_TRUE(claim_chores(b(), Chore::status, "github-main", base_, 10, 2).claims.empty());
    EXPECT_EQ(claim_chores(b(), Chore::status, "github-main", base_, 10, 3).claims.size(), 1u);
}

TEST_P(StoreContract, StatusIsPostedWhileTheJenkinsIsHeld) {
    const std::string id = submit_one(a(), "d-1", base_, followed(FollowMode::finished, true));
    TriggerUpdate update = delivered(id, base_, queued_build(k_queue_url, base_), base_);
    update.status = wish("pending");
    settle(a(), "ci", update);
    hold(a(), "ci", JenkinsHold{"connection refused", base_, base_ + 1min, 0});
    const auto batch = claim_chores(a(), Chore::status, "github-main", base_);
    EXPECT_EQ(ids_of(batch), (Ids{id}));
    EXPECT_FALSE(batch.hold);
}

TEST_P(StoreContract, StatusWishForATriggerWithoutATargetIsIgnored) {
    const std::string id = submit_one(a(), "d-1", base_, followed(FollowMode::finished, false));
    TriggerUpdate update = delivered(id, base_, queued_build(k_queue_url, base_), base_);
    update.status = wish("pending");
    settle(a(), "ci", update);
    EXPECT_EQ(stored(a(), "d-1", id).status, StatusProgress{});
    EXPECT_TRUE(claim_chores(a(), Chore::status, "github-main", base_ + 24h).claims.empty());
}

// --- Pruning and closing -----------------------------------------------------------------

TEST_P(StoreContract, PruneKeepsTriggersStillFollowedOrWithAStatusToPost) {
    config_.store.retention = 0ms;
    delivered_followed(a(), "d-following", base_, base_ + 1h);
    const std::string posting =
        submit_one(a(), "d-posting", base_, followed(FollowMode::none, true));
    TriggerUpdate update = delivered(posting, base_, queued_build(k_queue_url, base_), base_);
    update.status = wish("success");
    settle(a(), "ci", update);
    const std::string plain = submit_one(a(), "d-plain", base_, followed(FollowMode::none));
    settle(a(), "ci", delivered(plain, base_, queued_build(k_queue_url, base_), base_));

    EXPECT_EQ(prune(a(), Clock::now() + 1h), 1u);
    EXPECT_FALSE(get(a(), "", "d-plain"));
    EXPECT_TRUE(get(a(), "", "d-following"));
    EXPECT_TRUE(get(a(), "", "d-posting"));

    // Once posted, it goes too.
    const auto post = claim_chores(a(), Chore::status, "github-main", base_);
    ASSERT_EQ(post.claims.size(), 1u);
    ASSERT_EQ(complete_chore(a(), Chore::status, post.claims[0].claim_id,
                             status_update(posting, 1, wish("success"))),
              Completion::applied);
    EXPECT_EQ(prune(a(), Clock::now() + 1h), 1u);
    EXPECT_FALSE(get(a(), "", "d-posting"));
    EXPECT_TRUE(get(a(), "", "d-following"));
}

TEST_P(StoreContract, CloseReleasesThisInstancesChoreClaims) {
    const std::string id = submit_one(a(), "d-1", base_, followed(FollowMode::finished, true));
    TriggerUpdate update = delivered(id, base_, queued_build(k_queue_url, base_), base_);
    update.status = wish("pending");
    settle(a(), "ci", update);
    ASSERT_EQ(claim_chores(a(), Chore::follow, "ci", base_).claims.size(), 1u);
    ASSERT_EQ(claim_chores(a(), Chore::status, "github-main", base_).claims.size(), 1u);
    ASSERT_TRUE(claim_chores(b(), Chore::follow, "ci", base_).claims.empty());

    reopen_a();
    EXPECT_EQ(ids_of(claim_chores(b(), Chore::follow, "ci", base_)), (Ids{id}));
    EXPECT_EQ(ids_of(claim_chores(b(), Chore::status, "github-main", base_)), (Ids{id}));
}

}  // namespace
}  // namespace hookrelay::store::contract
