// Contract: the trigger queue. Claims (due only, oldest first, limit, max_in_flight over every
// instance, never the same trigger twice, expired claims taken over), renewals, outcomes
// recorded only under the claim (fencing), releases and due times.
#include "store/contract/contract.hpp"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <set>
#include <thread>

namespace hookrelay::store::contract {
namespace {

/// Submits one delivery per trigger of `jenkins`, received (and due) `step` apart from base.
Ids queue_triggers(Store& store, const std::string& prefix, int n, TimePoint base,
                   std::chrono::milliseconds step = 1s, const std::string& jenkins = "ci") {
    Ids ids;
    for (int i = 0; i < n; ++i) {
        const auto receipt = accept(store, delivery(prefix + std::to_string(i), base + i * step),
                                    {trigger(jenkins)});
        ids.push_back(receipt.trigger_ids.at(0));
    }
    return ids;
}

TEST_P(StoreContract, ClaimTakesDueTriggersOldestFirst) {
    const Ids ids = queue_triggers(a(), "d-", 3, base_);
    EXPECT_TRUE(claim(a(), "ci", base_ - 1ms).claims.empty());
    EXPECT_EQ(ids_of(claim(a(), "ci", base_ + 1s)), (Ids{ids[0], ids[1]}));
    EXPECT_EQ(ids_of(claim(a(), "ci", base_ + 10s)), (Ids{ids[2]}));
}

TEST_P(StoreContract, ClaimOrdersByDueTimeThenCreation) {
    const Ids ids = queue_triggers(a(), "d-", 3, base_);
    // Due earlier than the others: a retry that was scheduled before them comes first.
    settle(a(), "ci", retry(ids[2], base_ - 1s, base_));
    const auto many = accept(a(), delivery("d-many", base_ + 1s), {trigger(), trigger()});
    EXPECT_EQ(ids_of(claim(a(), "ci", base_ + 10s)),
              (Ids{ids[2], ids[0], ids[1], many.trigger_ids[0], many.trigger_ids[1]}));
}

TEST_P(StoreContract, ClaimTakesAtMostTheLimit) {
    const Ids ids = queue_triggers(a(), "d-", 3, base_);
    EXPECT_EQ(ids_of(claim(a(), "ci", base_ + 10s, 2)), (Ids{ids[0], ids[1]}));
    EXPECT_TRUE(claim(a(), "ci", base_ + 10s, 0).claims.empty());
    EXPECT_EQ(ids_of(claim(a(), "ci", base_ + 10s, 2)), (Ids{ids[2]}));
}

TEST_P(StoreContract, ClaimTakesOnlyTheNamedJenkins) {
    queue_triggers(a(), "ci-", 2, base_);
    const Ids other = queue_triggers(a(), "other-", 1, base_, 1s, "other");
    EXPECT_EQ(ids_of(claim(a(), "other", base_ + 10s)), other);
    EXPECT_TRUE(claim(a(), "nobody", base_ + 10s).claims.empty());
}

TEST_P(StoreContract, ClaimGivesEachTriggerAFreshClaimIdAndTheLease) {
    queue_triggers(a(), "d-", 2, base_);
    const auto batch = claim(a(), "ci", base_, 10, 0, 30s);
    ASSERT_EQ(batch.claims.size(), 1u);
    const Claim& c = batch.claims[0];
    EXPECT_EQ(c.claim_id.size(), 32u);
    EXPECT_TRUE(std::all_of(c.claim_id.begin(), c.claim_id.end(), [](char ch) {
        return std::isxdigit(static_cast<unsigned char>(ch));
    })) << c.claim_id;
    EXPECT_EQ(c.expires_at, base_ + 30s);
    EXPECT_FALSE(batch.hold);

    // Taken over after expiry: a new claim id.
    const auto again = claim(b(), "ci", base_ + 30s, 10, 0, 30s);
    ASSERT_EQ(again.claims.size(), 2u);
    EXPECT_EQ(again.claims[0].trigger.id, c.trigger.id);
    EXPECT_NE(again.claims[0].claim_id, c.claim_id);
    EXPECT_NE(again.claims[0].claim_id, again.claims[1].claim_id);
}

TEST_P(StoreContract, ClaimedTriggerIsNotClaimedAgainWhileItsLeaseLasts) {
    const Ids ids = queue_triggers(a(), "d-", 2, base_);
    EXPECT_EQ(ids_of(claim(a(), "ci", base_ + 1s, 1)), (Ids{ids[0]}));
    EXPECT_EQ(ids_of(claim(a(), "ci", base_ + 1s)), (Ids{ids[1]}));
    EXPECT_TRUE(claim(a(), "ci", base_ + 1s).claims.empty());
    EXPECT_TRUE(claim(b(), "ci", base_ + 1s + k_lease - 1ms).claims.empty());
}

TEST_P(StoreContract, ExpiredClaimIsTakenOverByAnotherInstance) {
    const Ids ids = queue_triggers(a(), "d-", 1, base_);
    const auto first = claim(a(), "ci", base_, 10, 0, 10s);
    ASSERT_EQ(first.claims.size(), 1u);
    EXPECT_TRUE(claim(b(), "ci", base_ + 10s - 1ms).claims.empty());
    const auto taken = claim(b(), "ci", base_ + 10s);
    EXPECT_EQ(ids_of(taken), ids);
}

TEST_P(StoreContract, MaxInFlightCapsLiveClaimsOverEveryInstance) {
    queue_triggers(a(), "d-", 5, base_);
    EXPECT_EQ(claim(a(), "ci", base_ + 10s, 10, 2).claims.size(), 2u);
    EXPECT_TRUE(claim(b(), "ci", base_ + 10s, 10, 2).claims.empty());
    EXPECT_TRUE(claim(a(), "ci", base_ + 10s, 10, 2).claims.empty());
    EXPECT_EQ(claim(b(), "ci", base_ + 10s, 10, 3).claims.size(), 1u);
    // Expired claims do not count: at their expiry the cap has room again.
    EXPECT_EQ(claim(b(), "ci", base_ + 10s + k_lease, 10, 2).claims.size(), 2u);
}

TEST_P(StoreContract, ConcurrentClaimsFromTwoInstancesNeverOverlapNorExceedTheCap) {
    constexpr int k_triggers = 60;
    constexpr std::size_t k_cap = 25;
    queue_triggers(a(), "d-", k_triggers, base_, 1ms);
    const auto now = base_ + 1s;
    std::mutex mutex;
    std::vector<std::string> claimed;
    std::vector<std::thread> threads;
    Store* stores[] = {&a(), &b()};
    std::vector<std::string> failures;
    for (int n = 0; n < 4; ++n) {
        threads.emplace_back([&, n] {
            for (int i = 0; i < 5; ++i) {
                try {
                    const auto batch = claim(*stores[n % 2], "ci", now, 3, k_cap);
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
    EXPECT_TRUE(failures.empty()) << failures.front();
    const std::set<std::string> distinct(claimed.begin(), claimed.end());
    EXPECT_EQ(distinct.size(), claimed.size()) << "a trigger was claimed twice";
    EXPECT_EQ(claimed.size(), k_cap);
}

TEST_P(StoreContract, FinishedTriggerIsNeverClaimed) {
    const Ids ids = queue_triggers(a(), "d-", 2, base_);
    settle(a(), "ci", finish(ids[0], TriggerState::delivered, base_));
    settle(a(), "ci", finish(ids[1], TriggerState::dead, base_));
    EXPECT_TRUE(claim(a(), "ci", base_ + 1000h).claims.empty());
    EXPECT_EQ(next_due(a(), "ci"), std::nullopt);
}

// --- complete --------------------------------------------------------------------------------

TEST_P(StoreContract, CompleteRecordsTheOutcomeUnderTheClaim) {
    const Ids ids = queue_triggers(a(), "d-", 1, base_);
    const std::string& id = ids[0];
    auto first = retry(id, base_ + 60s, base_ + 1s);
    first.attempt.queue_url = "http://jenkins/queue/item/6/";
    EXPECT_EQ(complete(a(), claim(a(), "ci", base_).claims.at(0).claim_id, first),
              Completion::applied);

    EXPECT_TRUE(claim(a(), "ci", base_ + 59s).claims.empty());
    auto found = claim(a(), "ci", base_ + 60s);
    ASSERT_EQ(found.claims.size(), 1u);
    const StoredTrigger& t = found.claims[0].trigger;
    EXPECT_EQ(t.state, TriggerState::retrying);
    EXPECT_EQ(t.attempts, 1);
    EXPECT_EQ(t.next_attempt_at, base_ + 60s);
    EXPECT_EQ(t.last_outcome, "HTTP 503");
    EXPECT_EQ(t.queue_url, "http://jenkins/queue/item/6/");
    EXPECT_EQ(t.created_at, base_);

    // An attempt without a queue URL keeps the one recorded before.
    EXPECT_EQ(complete(a(), found.claims[0].claim_id, retry(id, base_ + 120s, base_ + 61s)),
              Completion::applied);
    found = claim(a(), "ci", base_ + 120s);
    ASSERT_EQ(found.claims.size(), 1u);
    EXPECT_EQ(found.claims[0].trigger.attempts, 2);
    EXPECT_EQ(found.claims[0].trigger.queue_url, "http://jenkins/queue/item/6/");

    EXPECT_EQ(
        complete(a(), found.claims[0].claim_id, finish(id, TriggerState::delivered, base_ + 121s)),
        Completion::applied);
    EXPECT_TRUE(claim(a(), "ci", base_ + 1000h).claims.empty());

    const auto h = history_of(a(), "d-0", id);
    EXPECT_EQ(h.trigger.state, TriggerState::delivered);
    EXPECT_EQ(h.trigger.attempts, 3);
    EXPECT_EQ(h.claimed_by, "");
    ASSERT_EQ(h.attempts.size(), 3u);
    EXPECT_EQ(h.attempts[0].at, base_ + 1s);
    EXPECT_EQ(h.attempts[0].http_status, 503);
    EXPECT_EQ(h.attempts[0].outcome, "HTTP 503");
    EXPECT_EQ(h.attempts[0].duration, 120ms);
    EXPECT_EQ(h.attempts[0].queue_url, "http://jenkins/queue/item/6/");
    EXPECT_TRUE(h.attempts[0].counted);
    EXPECT_EQ(h.attempts[1].at, base_ + 61s);
    EXPECT_EQ(h.attempts[2].at, base_ + 121s);
    EXPECT_EQ(h.attempts[2].http_status, 201);
    EXPECT_EQ(h.attempts[2].outcome, "queued");
    EXPECT_EQ(h.attempts[2].queue_url, "http://jenkins/queue/item/7/");
}

TEST_P(StoreContract, UncountedAttemptDoesNotUseTheBudget) {
    const Ids ids = queue_triggers(a(), "d-", 1, base_);
    complete(a(), claim(a(), "ci", base_).claims.at(0).claim_id,
             retry(ids[0], base_ + 5s, base_ + 1s, /*counted=*/false));
    const auto found = claim(a(), "ci", base_ + 5s);
    ASSERT_EQ(found.claims.size(), 1u);
    EXPECT_EQ(found.claims[0].trigger.attempts, 0);
    EXPECT_EQ(found.claims[0].trigger.state, TriggerState::retrying);
    const auto h = history_of(a(), "d-0", ids[0]);
    ASSERT_EQ(h.attempts.size(), 1u);
    EXPECT_FALSE(h.attempts[0].counted);
}

TEST_P(StoreContract, HistoryNamesTheInstanceThatMadeTheAttempt) {
    const Ids ids = queue_triggers(a(), "d-", 1, base_);
    complete(b(), claim(b(), "ci", base_).claims.at(0).claim_id,
             retry(ids[0], base_ + 5s, base_ + 1s));
    auto named = finish(ids[0], TriggerState::delivered, base_ + 6s);
    named.attempt.instance = "named-explicitly";
    complete(a(), claim(a(), "ci", base_ + 5s).claims.at(0).claim_id, named);
    const auto h = history_of(a(), "d-0", ids[0]);
    ASSERT_EQ(h.attempts.size(), 2u);
    EXPECT_EQ(h.attempts[0].instance, k_instance_b);  // left empty: the completing instance
    EXPECT_EQ(h.attempts[1].instance, "named-explicitly");
}

TEST_P(StoreContract, CompleteAfterATakeoverIsStaleAndChangesNothing) {
    const Ids ids = queue_triggers(a(), "d-", 1, base_);
    const auto mine = claim(a(), "ci", base_, 10, 0, 10s).claims.at(0);
    const auto theirs = claim(b(), "ci", base_ + 10s).claims.at(0);

    EXPECT_EQ(complete(a(), mine.claim_id, finish(ids[0], TriggerState::dead, base_ + 11s)),
              Completion::stale);
    auto h = history_of(a(), "d-0", ids[0]);
    EXPECT_EQ(h.trigger.state, TriggerState::pending);
    EXPECT_TRUE(h.attempts.empty());
    EXPECT_EQ(h.claimed_by, k_instance_b);

    EXPECT_EQ(complete(b(), theirs.claim_id, finish(ids[0], TriggerState::delivered, base_ + 12s)),
              Completion::applied);
    h = history_of(a(), "d-0", ids[0]);
    EXPECT_EQ(h.trigger.state, TriggerState::delivered);
    EXPECT_EQ(h.attempts.size(), 1u);
}

// A claimed trigger's build request may be on its way: a replay then would send it twice.
TEST_P(StoreContract, AReplayLeavesATriggerClaimedNowAsItWas) {
    const Ids ids = queue_triggers(a(), "d-", 2, base_);
    const auto mine = claim(a(), "ci", base_, 1).claims.at(0);
    ASSERT_EQ(mine.trigger.id, ids[0]);

    const auto replayed = replay_all(b(), {ids[0], ids[1]}, base_ + 1s);
    EXPECT_EQ(replayed.ids, (Ids{ids[1]}));
    EXPECT_EQ(replayed.in_flight, (Ids{ids[0]}));
    auto h = history_of(a(), "d-0", ids[0]);
    EXPECT_TRUE(h.attempts.empty());  // no "replayed" entry
    EXPECT_EQ(h.claimed_by, k_instance_a);

    EXPECT_EQ(complete(a(), mine.claim_id, finish(ids[0], TriggerState::delivered, base_ + 2s)),
              Completion::applied);
    h = history_of(a(), "d-0", ids[0]);
    EXPECT_EQ(h.trigger.state, TriggerState::delivered);
    // Once its outcome is in, it replays.
    EXPECT_EQ(replay(b(), {ids[0]}, base_ + 3s), (Ids{ids[0]}));
}

TEST_P(StoreContract, ABulkReplayLeavesTriggersClaimedNowAsTheyWere) {
    const Ids ids = queue_triggers(a(), "d-", 3, base_);
    const auto mine = claim(a(), "ci", base_, 1).claims.at(0);
    ASSERT_EQ(mine.trigger.id, ids[0]);

    ReplayQuery query;
    query.state = TriggerState::pending;
    query.dry_run = true;
    auto replayed = replay_matching_all(b(), query, base_ + 1s);
    EXPECT_EQ(replayed.ids, (Ids{ids[1], ids[2]}));
    EXPECT_EQ(replayed.in_flight, (Ids{ids[0]}));
    query.dry_run = false;
    query.limit = 2;  // the claimed one counts against the limit: oldest first
    replayed = replay_matching_all(b(), query, base_ + 1s);
    EXPECT_EQ(replayed.ids, (Ids{ids[1]}));
    EXPECT_EQ(replayed.in_flight, (Ids{ids[0]}));
    EXPECT_EQ(history_of(a(), "d-0", ids[0]).claimed_by, k_instance_a);
    EXPECT_EQ(complete(a(), mine.claim_id, finish(ids[0], TriggerState::delivered, base_ + 2s)),
              Completion::applied);
}

TEST_P(StoreContract, CompleteAfterAReplayOfAnExpiredClaimIsStale) {
    const Ids ids = queue_triggers(a(), "d-", 1, base_);
    const auto mine = claim(a(), "ci", base_).claims.at(0);
    const auto after = base_ + k_lease + 1s;
    EXPECT_EQ(replay(b(), {ids[0]}, after), ids);

    EXPECT_EQ(complete(a(), mine.claim_id, finish(ids[0], TriggerState::dead, after + 1s)),
              Completion::stale);
    const auto h = history_of(a(), "d-0", ids[0]);
    EXPECT_EQ(h.trigger.state, TriggerState::pending);
    EXPECT_EQ(h.trigger.last_outcome, "replayed");
    // The replay ended the claim: the trigger is claimable at once.
    EXPECT_EQ(ids_of(claim(b(), "ci", after)), ids);
}

TEST_P(StoreContract, CompleteAfterTheLeaseExpiredIsAppliedWhileNobodyTookItOver) {
    const Ids ids = queue_triggers(a(), "d-", 1, base_);
    const auto mine = claim(a(), "ci", base_, 10, 0, 1s).claims.at(0);
    EXPECT_EQ(complete(a(), mine.claim_id, finish(ids[0], TriggerState::delivered, base_ + 1h)),
              Completion::applied);
    EXPECT_EQ(history_of(a(), "d-0", ids[0]).trigger.state, TriggerState::delivered);
}

TEST_P(StoreContract, CompleteWithAnUnknownClaimIsStale) {
    const Ids ids = queue_triggers(a(), "d-", 1, base_);
    EXPECT_EQ(complete(a(), "no-such-claim", finish(ids[0], TriggerState::dead, base_)),
              Completion::stale);
    EXPECT_EQ(complete(a(), "no-such-claim", finish("no-such-trigger", TriggerState::dead, base_)),
              Completion::stale);
    const auto h = history_of(a(), "d-0", ids[0]);
    EXPECT_EQ(h.trigger.state, TriggerState::pending);
    EXPECT_TRUE(h.attempts.empty());
}

TEST_P(StoreContract, ACompletedClaimCannotBeCompletedAgain) {
    const Ids ids = queue_triggers(a(), "d-", 1, base_);
    const auto mine = claim(a(), "ci", base_).claims.at(0);
    EXPECT_EQ(complete(a(), mine.claim_id, retry(ids[0], base_ + 1min, base_)),
              Completion::applied);
    EXPECT_EQ(complete(a(), mine.claim_id, finish(ids[0], TriggerState::dead, base_)),
              Completion::stale);
    EXPECT_EQ(history_of(a(), "d-0", ids[0]).trigger.state, TriggerState::retrying);
}

TEST_P(StoreContract, DueTimesAndLeasesNeverReadBackEarlierThanAsked) {
    const Ids ids = queue_triggers(a(), "d-", 1, base_);
    const auto due = base_ + 1s + 500us;  // finer than a store may keep
    complete(a(), claim(a(), "ci", base_).claims.at(0).claim_id, retry(ids[0], due, base_));
    const auto next = next_due(a(), "ci");
    ASSERT_TRUE(next);
    EXPECT_GE(*next, due);
    EXPECT_TRUE(claim(a(), "ci", base_ + 1s).claims.empty());

    const auto now = base_ + 1s + 1500us;
    const auto batch = claim(a(), "ci", now, 10, 0, 10s);
    ASSERT_EQ(batch.claims.size(), 1u);
    EXPECT_GE(batch.claims[0].trigger.next_attempt_at, due);
    EXPECT_GE(batch.claims[0].expires_at, now + 10s);
    EXPECT_TRUE(claim(b(), "ci", now + 10s).claims.empty());
}

// --- renew and release -------------------------------------------------------------------

TEST_P(StoreContract, RenewKeepsAClaimFromBeingTakenOver) {
    queue_triggers(a(), "d-", 1, base_);
    const auto mine = claim(a(), "ci", base_, 10, 0, 10s).claims.at(0);
    EXPECT_EQ(renew(a(), {mine.claim_id}, base_ + 8s, 10s), (Ids{mine.claim_id}));
    EXPECT_TRUE(claim(b(), "ci", base_ + 17s).claims.empty());
    EXPECT_EQ(claim(b(), "ci", base_ + 18s).claims.size(), 1u);
}

// Renewals are asked on the interval without waiting for the last one's answer, so one can
// commit after a later one (PostgreSQL's connections, a renewal the dispatcher stopped waiting
// for): the lease it set stays.
TEST_P(StoreContract, ARenewalCommittedAfterALaterOneNeverShortensTheLease) {
    queue_triggers(a(), "d-", 1, base_);
    const auto mine = claim(a(), "ci", base_, 10, 0, 10s).claims.at(0);
    EXPECT_EQ(renew(a(), {mine.claim_id}, base_ + 4s, 10s), (Ids{mine.claim_id}));
    EXPECT_EQ(renew(a(), {mine.claim_id}, base_ + 2s, 10s), (Ids{mine.claim_id}));
    EXPECT_TRUE(claim(b(), "ci", base_ + 13s).claims.empty());
    EXPECT_EQ(claim(b(), "ci", base_ + 14s).claims.size(), 1u);
}

TEST_P(StoreContract, RenewAnswersOnlyTheClaimsStillHeld) {
    queue_triggers(a(), "d-", 4, base_);
    const auto batch = claim(a(), "ci", base_ + 10s, 10, 0, 10s);
    ASSERT_EQ(batch.claims.size(), 4u);
    const auto& c = batch.claims;
    // c[0]: taken over once expired. c[1]: expired but still held. c[2]: completed. c[3]:
    // released.
    const auto taken = claim(b(), "ci", base_ + 20s, 1);
    ASSERT_EQ(ids_of(taken), (Ids{c[0].trigger.id}));
    complete(a(), c[2].claim_id, finish(c[2].trigger.id, TriggerState::delivered, base_));
    release(a(), {c[3].claim_id});
    const Ids held =
        renew(a(), {c[0].claim_id, c[1].claim_id, c[2].claim_id, c[3].claim_id, "no-such-claim"},
              base_ + 21s);
    EXPECT_EQ(held, (Ids{c[1].claim_id}));
    // Another instance cannot renew a claim it does not own.
    EXPECT_TRUE(renew(b(), {c[1].claim_id}, base_ + 21s).empty());
    EXPECT_EQ(renew(b(), {taken.claims[0].claim_id}, base_ + 21s), (Ids{taken.claims[0].claim_id}));
}

TEST_P(StoreContract, ReleaseMakesTriggersClaimableAtOnceAndWakesTheDispatcher) {
    const Ids ids = queue_triggers(a(), "d-", 2, base_);
    const auto batch = claim(a(), "ci", base_ + 10s);
    ASSERT_EQ(batch.claims.size(), 2u);
    CommitCounter committed(a());
    release(a(), {batch.claims[0].claim_id, batch.claims[1].claim_id, "no-such-claim"});
    EXPECT_TRUE(committed.first_arrives());
    const auto again = claim(b(), "ci", base_ + 10s);
    EXPECT_EQ(ids_of(again), ids);
    const auto h = history_of(a(), "d-0", ids[0]);
    EXPECT_TRUE(h.attempts.empty());
    EXPECT_EQ(h.trigger.attempts, 0);
}

TEST_P(StoreContract, ReleaseOfNothingHeldChangesNothing) {
    const Ids ids = queue_triggers(a(), "d-", 1, base_);
    release(a(), {});
    release(a(), {"no-such-claim"});
    EXPECT_EQ(ids_of(claim(a(), "ci", base_)), ids);
}

// --- next_due ------------------------------------------------------------------------------

TEST_P(StoreContract, NextDueIsTheEarliestOpenTrigger) {
    EXPECT_EQ(next_due(a(), "ci"), std::nullopt);
    const auto late = accept(a(), delivery("d-late", base_ + 5s), {trigger()});
    const auto early = accept(a(), delivery("d-early", base_ + 2s), {trigger()});
    EXPECT_EQ(next_due(a(), "ci"), base_ + 2s);
    EXPECT_EQ(next_due(a(), "other"), std::nullopt);

    settle(a(), "ci", finish(early.trigger_ids.at(0), TriggerState::delivered, base_ + 3s));
    EXPECT_EQ(next_due(a(), "ci"), base_ + 5s);
    settle(a(), "ci", retry(late.trigger_ids.at(0), base_ + 9s, base_ + 5s));
    EXPECT_EQ(next_due(b(), "ci"), base_ + 9s);
}

TEST_P(StoreContract, NextDueOfAClaimedTriggerIsItsLeaseExpiry) {
    queue_triggers(a(), "d-", 1, base_);
    claim(a(), "ci", base_, 10, 0, 30s);
    EXPECT_EQ(next_due(b(), "ci"), base_ + 30s);
    accept(a(), delivery("d-later", base_ + 10s), {trigger()});
    EXPECT_EQ(next_due(b(), "ci"), base_ + 10s);
}

}  // namespace
}  // namespace hookrelay::store::contract
