// Contract: coalescing (a newer trigger with the same coalesce scope supersedes an older one that
// still waits), the queued predecessors cancel_superseded looks at, notes in a trigger's history,
// and the shared rate limit on multibranch scans.
#include "store/contract/chores.hpp"
#include "store/contract/contract.hpp"

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hookrelay::store::contract {
namespace {

using Superseded = std::vector<std::pair<std::string, std::string>>;

/// trigger() coalesced under `key` (the rendered `coalesce:` of its rule).
TriggerRequest coalesced(std::string key = "acme/app:main", std::string jenkins = "ci",
                         std::string rule = "build") {
    TriggerRequest t = trigger(std::move(jenkins), std::move(rule));
    t.coalesce = std::move(key);
    return t;
}

std::vector<QueuedPredecessor> queued_predecessors(Store& store, std::string id,
                                                   std::size_t limit = 100) {
    return value_of(wait_answer<result<std::vector<QueuedPredecessor>>>([&](auto done) {
                        store.queued_predecessors(std::move(id), limit, std::move(done));
                    }),
                    "queued_predecessors");
}

void add_note(Store& store, std::string id, Attempt note) {
    value_of(wait_answer<result<void>>([&](auto done) {
                 store.add_note(std::move(id), std::move(note), std::move(done));
             }),
             "add_note");
}

ScanGate request_scan(Store& store, std::string jenkins, std::string project, TimePoint since,
                      TimePoint now, std::chrono::milliseconds interval) {
    return value_of(wait_answer<result<ScanGate>>([&](auto done) {
                        store.request_scan(std::move(jenkins), std::move(project), since, now,
                                           interval, std::move(done));
                    }),
                    "request_scan");
}

void forget_scan(Store& store, std::string jenkins, std::string project, TimePoint at) {
    value_of(wait_answer<result<void>>([&](auto done) {
                 store.forget_scan(std::move(jenkins), std::move(project), at, std::move(done));
             }),
             "forget_scan");
}

/// The one trigger of a receipt.
std::string only(const Receipt& receipt) {
    if (receipt.trigger_ids.size() != 1) throw std::runtime_error("expected one trigger");
    return receipt.trigger_ids[0];
}

/// A coalesced trigger of delivery "d-1" at `at`, claimed by `store`: its id and its claim's.
struct Claimed {
    std::string id;
    std::string claim_id;
};
Claimed claimed_older(Store& store, TimePoint at) {
    const auto older = only(accept(store, delivery("d-1", at), {coalesced()}));
    const auto batch = claim(store, "ci", at);
    if (ids_of(batch) != Ids{older}) throw std::runtime_error("expected to claim " + older);
    return {older, batch.claims[0].claim_id};
}

/// A coalesced trigger of a new delivery `id` at `at`, claimed by `store` and finished there as
/// `end` a second later.
std::string finished_newer(Store& store, const std::string& id, TimePoint at, TriggerState end) {
    const auto newer = only(accept(store, delivery(id, at), {coalesced()}));
    const auto batch = claim(store, "ci", at);
    if (ids_of(batch) != Ids{newer}) throw std::runtime_error("expected to claim " + newer);
    if (complete(store, batch.claims[0].claim_id, finish(newer, end, at + 1s)) !=
        Completion::applied) {
        throw std::runtime_error("expected the outcome of " + newer + " to be applied");
    }
    return newer;
}

// --- Superseding at submit ------------------------------------------------------------------

TEST_P(StoreContract, NewerSubmitSupersedesAnOlderPendingTrigger) {
    const auto older = only(accept(a(), delivery("d-1", base_), {coalesced()}));
    const auto receipt = accept(b(), delivery("d-2", base_ + 1s), {coalesced()});
    const auto newer = only(receipt);

    EXPECT_EQ(receipt.superseded, (Superseded{{older, newer}}));
    const auto t = stored(a(), "d-1", older);
    EXPECT_EQ(t.state, TriggerState::superseded);
    EXPECT_EQ(t.superseded_by, newer);
    EXPECT_EQ(t.last_outcome, superseded_outcome(newer, "d-2"));
    EXPECT_EQ(t.attempts, 0);
    EXPECT_EQ(stored(a(), "d-2", newer).state, TriggerState::pending);
    EXPECT_EQ(stored(a(), "d-2", newer).superseded_by, "");
    EXPECT_EQ(ids_of(claim(a(), "ci", base_ + 1h)), (Ids{newer}));
    EXPECT_EQ(open_count(a(), "ci"), 1u);
}

TEST_P(StoreContract, SupersedingNamesADeliveryWithoutIdByItsSequence) {
    const auto older = only(accept(a(), delivery("d-1", base_), {coalesced()}));
    const auto receipt = accept(a(), delivery("", base_ + 1s), {coalesced()});
    const auto t = stored(a(), "d-1", older);
    ASSERT_EQ(t.state, TriggerState::superseded);
    const auto page = list(a());
    ASSERT_FALSE(page.items.empty());
    const auto seq = page.items.front().seq;  // newest first: the delivery without an id
    EXPECT_EQ(t.last_outcome, superseded_outcome(only(receipt), "#" + std::to_string(seq)));
}

TEST_P(StoreContract, NewCoalesceFieldsAreStoredWithTheTrigger) {
    TriggerRequest t = coalesced("acme/app:feature");
    t.cancel_superseded = true;
    t.multibranch = 2;
    TriggerRequest scan = trigger();
    scan.scan_only = true;
    const auto receipt = accept(a(), delivery("d-1", base_), {t, scan});

    const auto first = stored(a(), "d-1", receipt.trigger_ids[0]);
    EXPECT_EQ(first.request.coalesce, "acme/app:feature");
    EXPECT_TRUE(first.request.cancel_superseded);
    EXPECT_EQ(first.request.multibranch, 2u);
    EXPECT_FALSE(first.request.scan_only);
    const auto second = stored(a(), "d-1", receipt.trigger_ids[1]);
    EXPECT_EQ(second.request.coalesce, "");
    EXPECT_FALSE(second.request.cancel_superseded);
    EXPECT_EQ(second.request.multibranch, 0u);
    EXPECT_TRUE(second.request.scan_only);

    const auto batch = claim(b(), "ci", base_);
    ASSERT_EQ(batch.claims.size(), 2u);
    for (const auto& c : batch.claims) {
        const bool is_first = c.trigger.id == receipt.trigger_ids[0];
        EXPECT_EQ(c.trigger.request.coalesce, is_first ? "acme/app:feature" : "");
        EXPECT_EQ(c.trigger.request.cancel_superseded, is_first);
        EXPECT_EQ(c.trigger.request.multibranch, is_first ? 2u : 0u);
        EXPECT_EQ(c.trigger.request.scan_only, !is_first);
    }
}

TEST_P(StoreContract, TriggerInFlightIsNotSuperseded) {
    const auto older = only(accept(a(), delivery("d-1", base_), {coalesced()}));
    ASSERT_EQ(ids_of(claim(a(), "ci", base_, 100, 0, 60s)), (Ids{older}));
    const auto receipt = accept(b(), delivery("d-2", base_ + 1s), {coalesced()});

    EXPECT_TRUE(receipt.superseded.empty());
    const auto t = stored(a(), "d-1", older);
    EXPECT_EQ(t.state, TriggerState::pending);
    EXPECT_EQ(t.superseded_by, "");
    EXPECT_EQ(open_count(a(), "ci"), 2u);
}

TEST_P(StoreContract, TriggerUnderAnExpiredClaimIsSupersededAndItsHolderIsStale) {
    const auto older = only(accept(a(), delivery("d-1", base_), {coalesced()}));
    const auto batch = claim(a(), "ci", base_, 100, 0, 10s);
    ASSERT_EQ(ids_of(batch), (Ids{older}));
    const auto receipt = accept(b(), delivery("d-2", base_ + 10s), {coalesced()});

    EXPECT_EQ(receipt.superseded, (Superseded{{older, only(receipt)}}));
    EXPECT_EQ(stored(a(), "d-1", older).state, TriggerState::superseded);
    EXPECT_NE(complete(a(), batch.claims[0].claim_id,
                       finish(older, TriggerState::delivered, base_ + 11s)),
              Completion::applied);
    EXPECT_EQ(stored(a(), "d-1", older).state, TriggerState::superseded);
}

TEST_P(StoreContract, OnlyTheSameRuleJenkinsJobAndKeySupersede) {
    TriggerRequest other_job = coalesced();
    other_job.job = {"acme", "app", "feature/y"};
    const auto older = accept(a(), delivery("d-1", base_),
                              {coalesced(), coalesced("acme/app:main", "other"),
                               coalesced("acme/app:main", "ci", "nightly"), other_job});
    const auto receipt =
        accept(a(), delivery("d-2", base_ + 1s), {coalesced("acme/app:dev"), coalesced()});

    EXPECT_EQ(receipt.superseded, (Superseded{{older.trigger_ids[0], receipt.trigger_ids[1]}}));
    EXPECT_EQ(stored(a(), "d-1", older.trigger_ids[0]).state, TriggerState::superseded);
    for (std::size_t i = 1; i < older.trigger_ids.size(); ++i) {
        EXPECT_EQ(stored(a(), "d-1", older.trigger_ids[i]).state, TriggerState::pending) << i;
    }
}

TEST_P(StoreContract, TriggersWithoutACoalesceKeyNeverSupersede) {
    const auto older = only(accept(a(), delivery("d-1", base_), {trigger()}));
    const auto receipt = accept(a(), delivery("d-2", base_ + 1s), {trigger()});
    EXPECT_TRUE(receipt.superseded.empty());
    EXPECT_EQ(stored(a(), "d-1", older).state, TriggerState::pending);
    EXPECT_EQ(open_count(a(), "ci"), 2u);
}

TEST_P(StoreContract, TriggersOfOneSubmissionNeverSupersedeEachOther) {
    const auto receipt = accept(a(), delivery("d-1", base_), {coalesced(), coalesced()});
    EXPECT_TRUE(receipt.superseded.empty());
    EXPECT_EQ(open_count(a(), "ci"), 2u);

    // A later delivery supersedes both.
    const auto later = accept(a(), delivery("d-2", base_ + 1s), {coalesced()});
    EXPECT_EQ(later.superseded.size(), 2u);
    EXPECT_EQ(open_count(a(), "ci"), 1u);
}

TEST_P(StoreContract, ManyConcurrentSubmitsLeaveExactlyOneOpenTrigger) {
    constexpr int k_submits = 50;
    std::vector<std::future<result<Receipt>>> answers;
    Store* stores[] = {&a(), &b()};
    for (int i = 0; i < k_submits; ++i) {
        auto promise = std::make_shared<std::promise<result<Receipt>>>();
        answers.push_back(promise->get_future());
        stores[i % 2]->submit(delivery("d-" + std::to_string(i), base_), {coalesced()},
                              [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
    }
    std::size_t superseded = 0;
    for (auto& answer : answers) {
        ASSERT_EQ(answer.wait_for(k_deadline), std::future_status::ready);
        const auto receipt = value_of(answer.get(), "submit");
        ASSERT_EQ(receipt.trigger_ids.size(), 1u);
        superseded += receipt.superseded.size();
    }
    EXPECT_EQ(open_count(a(), "ci"), 1u);
    EXPECT_EQ(superseded, static_cast<std::size_t>(k_submits - 1));
    DeliveryQuery query;
    query.state = TriggerState::superseded;
    query.limit = 1000;
    EXPECT_EQ(list(b(), query).items.size(), static_cast<std::size_t>(k_submits - 1));
}

TEST_P(StoreContract, SupersededTriggerWithAStatusTargetGetsACanceledStatus) {
    const auto older = only(accept(a(), delivery("d-1", base_), {[] {
                                       TriggerRequest t = coalesced();
                                       t.status = status_target();
                                       return t;
                                   }()}));
    TriggerRequest newer_request = coalesced();
    newer_request.status =
        StatusTarget{"acme/app", std::string(40, 'b'), "hookrelay/build", "main"};
    const auto newer = only(accept(a(), delivery("d-2", base_ + 1s), {newer_request}));

    const auto t = stored(a(), "d-1", older);
    EXPECT_EQ(t.status.wanted_seq, 1);
    EXPECT_EQ(t.status.tries, 0);
    EXPECT_EQ(t.status.wanted.state, "canceled");
    EXPECT_EQ(t.status.wanted.description, superseded_wish(newer_request, newer).description);
    const auto batch = claim_chores(b(), Chore::status, "github-main", base_ - 1h);
    EXPECT_EQ(ids_of(batch), (Ids{older}));
}

TEST_P(StoreContract, SupersededTriggerWithoutAStatusTargetWishesNothing) {
    const auto older = only(accept(a(), delivery("d-1", base_), {coalesced()}));
    accept(a(), delivery("d-2", base_ + 1s), {coalesced()});
    EXPECT_EQ(stored(a(), "d-1", older).status.wanted_seq, 0);
    EXPECT_TRUE(claim_chores(a(), Chore::status, "github-main", base_ + 1h).claims.empty());
}

// --- Superseding at complete ----------------------------------------------------------------

TEST_P(StoreContract, RetryWhileANewerTriggerWaitsSupersedesInstead) {
    const auto older = only(accept(a(), delivery("d-1", base_), {coalesced()}));
    const auto batch = claim(a(), "ci", base_);
    ASSERT_EQ(ids_of(batch), (Ids{older}));
    const auto newer = only(accept(b(), delivery("d-2", base_ + 1s), {coalesced()}));

    EXPECT_EQ(complete(a(), batch.claims[0].claim_id, retry(older, base_ + 1min, base_ + 2s)),
              Completion::superseded);
    const auto h = history_of(a(), "d-1", older);
    EXPECT_EQ(h.trigger.state, TriggerState::superseded);
    EXPECT_EQ(h.trigger.superseded_by, newer);
    EXPECT_EQ(h.trigger.last_outcome, superseded_outcome(newer, "d-2"));
    EXPECT_EQ(h.trigger.attempts, 1);  // the attempt is recorded
    ASSERT_EQ(h.attempts.size(), 1u);
    EXPECT_EQ(h.attempts[0].outcome, "HTTP 503");
    EXPECT_EQ(ids_of(claim(b(), "ci", base_ + 1h)), (Ids{newer}));
    EXPECT_EQ(open_count(a(), "ci"), 1u);
}

TEST_P(StoreContract, RetryWhileANewerTriggerIsInFlightSupersedesTheRetry) {
    const auto older = only(accept(a(), delivery("d-1", base_), {coalesced()}));
    const auto first = claim(a(), "ci", base_);
    const auto newer = only(accept(a(), delivery("d-2", base_ + 1s), {coalesced()}));
    ASSERT_EQ(ids_of(claim(b(), "ci", base_ + 1s)), (Ids{newer}));

    EXPECT_EQ(complete(a(), first.claims[0].claim_id, retry(older, base_ + 1min, base_ + 2s)),
              Completion::superseded);
    EXPECT_EQ(stored(a(), "d-1", older).superseded_by, newer);
}

// The newer commit went to Jenkins while the older one's attempt failed: retrying the older one
// would build it after the newer one.
TEST_P(StoreContract, RetryAfterANewerTriggerWasDeliveredSupersedesTheRetry) {
    const auto [older, first] = claimed_older(a(), base_);
    const auto newer = finished_newer(b(), "d-2", base_ + 1s, TriggerState::delivered);

    EXPECT_EQ(complete(a(), first, retry(older, base_ + 1min, base_ + 3s)), Completion::superseded);
    const auto h = history_of(a(), "d-1", older);
    EXPECT_EQ(h.trigger.state, TriggerState::superseded);
    EXPECT_EQ(h.trigger.superseded_by, newer);
    EXPECT_EQ(h.trigger.last_outcome, superseded_outcome(newer, "d-2"));
    EXPECT_EQ(h.attempts.size(), 1u);
    EXPECT_TRUE(claim(a(), "ci", base_ + 1h).claims.empty());
    EXPECT_EQ(open_count(a(), "ci"), 0u);
}

// An open newer trigger (here one in flight) is preferred to a delivered one, even a newer one.
TEST_P(StoreContract, RetrySupersededWhileANewerTriggerIsOpenNamesItBeforeADeliveredOne) {
    const auto [older, first] = claimed_older(a(), base_);
    const auto in_flight = only(accept(a(), delivery("d-2", base_ + 1s), {coalesced()}));
    ASSERT_EQ(ids_of(claim(b(), "ci", base_ + 1s)), (Ids{in_flight}));
    finished_newer(b(), "d-3", base_ + 2s, TriggerState::delivered);

    ASSERT_EQ(complete(a(), first, retry(older, base_ + 1min, base_ + 4s)), Completion::superseded);
    EXPECT_EQ(stored(a(), "d-1", older).superseded_by, in_flight);
}

// A replay asks for that build: a retry of the replayed trigger is not superseded by a delivered
// one, whether it was delivered before the replay or after it.
TEST_P(StoreContract, ARetryOfAReplayedTriggerIsNotSupersededByADeliveredOne) {
    const auto [older, first] = claimed_older(a(), base_);
    finished_newer(b(), "d-2", base_ + 1s, TriggerState::delivered);
    ASSERT_EQ(complete(a(), first, retry(older, base_ + 1min, base_ + 3s)), Completion::superseded);
    ASSERT_EQ(replay(a(), {older}, base_ + 1h), (Ids{older}));

    const auto again = claim(a(), "ci", base_ + 1h);
    ASSERT_EQ(ids_of(again), (Ids{older}));
    EXPECT_EQ(complete(a(), again.claims[0].claim_id, retry(older, base_ + 2h, base_ + 1h + 1s)),
              Completion::applied);

    const auto last = claim(a(), "ci", base_ + 2h);
    ASSERT_EQ(ids_of(last), (Ids{older}));
    finished_newer(b(), "d-3", base_ + 2h + 1s, TriggerState::delivered);
    EXPECT_EQ(complete(a(), last.claims[0].claim_id, retry(older, base_ + 3h, base_ + 2h + 3s)),
              Completion::applied);
    const auto t = stored(a(), "d-1", older);
    EXPECT_EQ(t.state, TriggerState::retrying);
    EXPECT_EQ(t.superseded_by, "");
}

// So does a redelivery: triggers added to a stored delivery through the current rules.
TEST_P(StoreContract, ARetryOfARedeliveredTriggerIsNotSupersededByADeliveredOne) {
    accept(a(), delivery("d-1", base_), {});
    finished_newer(b(), "d-2", base_ + 1s, TriggerState::delivered);
    const auto added = add_triggers(a(), "github-main", "d-1", {coalesced()});
    ASSERT_EQ(added.size(), 1u);
    // Redelivered triggers are due at the wall clock's now.
    const auto later = std::max(base_, TimePoint(std::chrono::system_clock::now())) + 1h;
    const auto batch = claim(a(), "ci", later);
    ASSERT_EQ(ids_of(batch), added);

    EXPECT_EQ(complete(a(), batch.claims[0].claim_id, retry(added[0], later + 1h, later)),
              Completion::applied);
    EXPECT_EQ(stored(a(), "d-1", added[0]).state, TriggerState::retrying);
}

// A newer trigger that died never built: the older one is retried.
TEST_P(StoreContract, RetryAfterANewerTriggerDiedIsApplied) {
    const auto [older, first] = claimed_older(a(), base_);
    finished_newer(b(), "d-2", base_ + 1s, TriggerState::dead);

    EXPECT_EQ(complete(a(), first, retry(older, base_ + 1min, base_ + 3s)), Completion::applied);
    const auto t = stored(a(), "d-1", older);
    EXPECT_EQ(t.state, TriggerState::retrying);
    EXPECT_EQ(t.superseded_by, "");
}

TEST_P(StoreContract, RetryWithAStatusTargetWhenSupersededWishesCanceled) {
    TriggerRequest t = coalesced();
    t.status = status_target();
    const auto older = only(accept(a(), delivery("d-1", base_), {t}));
    const auto batch = claim(a(), "ci", base_);
    const auto newer = only(accept(a(), delivery("d-2", base_ + 1s), {t}));
    ASSERT_EQ(complete(a(), batch.claims[0].claim_id, retry(older, base_ + 1min, base_ + 2s)),
              Completion::superseded);
    const auto s = stored(a(), "d-1", older);
    EXPECT_EQ(s.status.wanted.state, "canceled");
    EXPECT_EQ(s.status.wanted.description, superseded_wish(t, newer).description);
    EXPECT_GE(s.status.wanted_seq, 1);
}

TEST_P(StoreContract, RetryWithoutANewerTriggerIsApplied) {
    const auto older = only(accept(a(), delivery("d-1", base_), {coalesced()}));
    const auto batch = claim(a(), "ci", base_);
    // Same submission, another key, and an earlier delivery do not count as newer.
    accept(a(), delivery("d-2", base_ + 1s), {coalesced("acme/app:dev")});
    EXPECT_EQ(complete(a(), batch.claims[0].claim_id, retry(older, base_ + 1min, base_ + 2s)),
              Completion::applied);
    EXPECT_EQ(stored(a(), "d-1", older).state, TriggerState::retrying);
}

TEST_P(StoreContract, DeliveredOutcomeIsNotAffectedByANewerTrigger) {
    const auto older = only(accept(a(), delivery("d-1", base_), {coalesced()}));
    const auto batch = claim(a(), "ci", base_);
    const auto newer = only(accept(a(), delivery("d-2", base_ + 1s), {coalesced()}));
    EXPECT_EQ(
        complete(a(), batch.claims[0].claim_id, finish(older, TriggerState::delivered, base_ + 2s)),
        Completion::applied);
    const auto t = stored(a(), "d-1", older);
    EXPECT_EQ(t.state, TriggerState::delivered);
    EXPECT_EQ(t.superseded_by, "");
    EXPECT_EQ(stored(a(), "d-2", newer).state, TriggerState::pending);
}

// --- Admin ----------------------------------------------------------------------------------

TEST_P(StoreContract, ListingFiltersByStateAndOutcomeSuperseded) {
    accept(a(), delivery("d-1", base_), {coalesced()});
    accept(a(), delivery("d-2", base_ + 1s), {coalesced()});
    accept(a(), delivery("d-3", base_ + 2s), {trigger("other")});

    DeliveryQuery by_state;
    by_state.state = TriggerState::superseded;
    const auto page = list(b(), by_state);
    ASSERT_EQ(page.items.size(), 1u);
    EXPECT_EQ(page.items[0].delivery_id, "d-1");

    DeliveryQuery by_outcome;
    by_outcome.outcome = "superseded";
    const auto outcome_page = list(b(), by_outcome);
    ASSERT_EQ(outcome_page.items.size(), 1u);
    EXPECT_EQ(outcome_page.items[0].delivery_id, "d-1");
    EXPECT_EQ(outcomes_of(b(), "d-1"), (Pairs{{"ci", "superseded"}}));
    EXPECT_EQ(outcomes_of(b(), "d-2"), (Pairs{{"ci", "pending"}}));
}

TEST_P(StoreContract, ReplayOfASupersededTriggerMakesItPendingAndSupersedesNothing) {
    const auto older = only(accept(a(), delivery("d-1", base_), {coalesced()}));
    const auto newer = only(accept(a(), delivery("d-2", base_ + 1s), {coalesced()}));
    ASSERT_EQ(stored(a(), "d-1", older).superseded_by, newer);

    EXPECT_EQ(replay(b(), {older}, base_ + 2s), (Ids{older}));
    const auto t = stored(a(), "d-1", older);
    EXPECT_EQ(t.state, TriggerState::pending);
    EXPECT_EQ(t.superseded_by, "");
    EXPECT_EQ(stored(a(), "d-2", newer).state, TriggerState::pending);
    EXPECT_EQ(open_count(a(), "ci"), 2u);
}

TEST_P(StoreContract, ReplayMatchingTakesSupersededTriggers) {
    const auto older = only(accept(a(), delivery("d-1", base_), {coalesced()}));
    accept(a(), delivery("d-2", base_ + 1s), {coalesced()});
    ReplayQuery query;
    query.state = TriggerState::superseded;
    query.dry_run = true;
    EXPECT_EQ(replay_matching(a(), query, base_ + 2s), (Ids{older}));
    query.dry_run = false;
    EXPECT_EQ(replay_matching(a(), query, base_ + 2s), (Ids{older}));
    EXPECT_EQ(stored(a(), "d-1", older).state, TriggerState::pending);
}

TEST_P(StoreContract, BacklogDoesNotCountSupersededTriggers) {
    accept(a(), delivery("d-1", base_), {coalesced()});
    accept(a(), delivery("d-2", base_ + 1s), {coalesced()});
    EXPECT_EQ(backlog(a()), (Backlog{{"ci", 1u}}));
}

TEST_P(StoreContract, PruneRemovesOldSupersededTriggers) {
    config_.store.retention = 1h;
    const auto older = only(accept(a(), delivery("d-1", base_), {coalesced()}));
    accept(a(), delivery("d-2", base_), {coalesced()});
    ASSERT_EQ(stored(a(), "d-1", older).state, TriggerState::superseded);

    EXPECT_EQ(prune(a(), base_), 0u);
    EXPECT_EQ(prune(a(), Clock::now() + 2h), 1u);
    EXPECT_FALSE(get(a(), "", "d-1"));
    EXPECT_TRUE(get(a(), "", "d-2"));
    EXPECT_EQ(open_count(a(), "ci"), 1u);
}

// --- Queued predecessors --------------------------------------------------------------------

TEST_P(StoreContract, QueuedPredecessorsAreTheDeliveredOnesStillQueuedNewestFirst) {
    auto submit_delivered = [&](const std::string& id, int offset, BuildRecord build,
                                TriggerRequest t = coalesced()) {
        const auto trigger_id =
            only(accept(a(), delivery(id, base_ + std::chrono::seconds(offset)), {t}));
        TriggerUpdate u = delivered(trigger_id, base_ + std::chrono::seconds(offset), build,
                                    base_ + std::chrono::seconds(offset + 1));
        settle(a(), "ci", u);
        return trigger_id;
    };
    auto build = [&](std::int64_t queue_id) {
        BuildRecord b =
            queued_build("http://jenkins/queue/item/" + std::to_string(queue_id) + "/", base_);
        b.queue_id = queue_id;
        return b;
    };
    const auto t1 = submit_delivered("d-1", 1, build(11));
    const auto t2 = submit_delivered("d-2", 2, build(12));
    BuildRecord started = build(13);
    started.number = 5;
    started.url = "http://jenkins/job/app/5/";
    submit_delivered("d-3", 3, started);
    BuildRecord cancelled = build(14);
    cancelled.result = "CANCELLED";
    submit_delivered("d-4", 4, cancelled);
    BuildRecord lost = build(15);
    lost.error = "the queue item and the build could not be found";
    submit_delivered("d-5", 5, lost);
    submit_delivered("d-6", 6, build(20));                       // merged with t7's item
    submit_delivered("d-7o", 7, build(30), coalesced("other"));  // another scope
    submit_delivered("d-7p", 7, build(31), trigger());           // no scope
    BuildRecord merged = build(20);
    merged.merged = true;
    const auto t7 = submit_delivered("d-7", 8, merged);
    const auto t8 = only(accept(a(), delivery("d-8", base_ + 9s), {coalesced()}));

    const auto before_t7 = queued_predecessors(b(), t7);
    ASSERT_EQ(before_t7.size(), 2u);
    EXPECT_EQ(before_t7[0].id, t2);
    EXPECT_EQ(before_t7[0].delivery_id, "d-2");
    EXPECT_EQ(before_t7[0].queue_id, 12);
    EXPECT_EQ(before_t7[0].queue_url, "http://jenkins/queue/item/12/");
    EXPECT_EQ(before_t7[1].id, t1);

    const auto limited = queued_predecessors(b(), t7, 1);
    ASSERT_EQ(limited.size(), 1u);
    EXPECT_EQ(limited[0].id, t2);
    EXPECT_TRUE(queued_predecessors(b(), t1).empty());
    // A trigger not delivered yet: every queued one before it, t7's item included.
    EXPECT_EQ(queued_predecessors(b(), t8).size(), 4u);
    EXPECT_TRUE(queued_predecessors(b(), "no-such-trigger").empty());
}

TEST_P(StoreContract, QueuedPredecessorsOfATriggerWithoutScopeAreNone) {
    const auto t1 = only(accept(a(), delivery("d-1", base_), {trigger()}));
    BuildRecord b = queued_build("http://jenkins/queue/item/11/", base_);
    b.queue_id = 11;
    settle(a(), "ci", delivered(t1, base_, b, base_ + 1s));
    const auto t2 = only(accept(a(), delivery("d-2", base_ + 1s), {trigger()}));
    EXPECT_TRUE(queued_predecessors(a(), t2).empty());
}

// --- Notes ----------------------------------------------------------------------------------

TEST_P(StoreContract, NoteAppearsInTheHistoryAndChangesNothingElse) {
    const auto id = only(accept(a(), delivery("d-1", base_), {coalesced()}));
    const auto before = stored(a(), "d-1", id);
    Attempt note;
    note.at = base_ + 1s;
    note.outcome = "cancelled queue item 12 of superseded trigger t-0";
    note.counted = true;  // ignored
    add_note(b(), id, note);
    add_note(b(), "no-such-trigger", note);  // ignored

    const auto h = history_of(a(), "d-1", id);
    ASSERT_EQ(h.attempts.size(), 1u);
    EXPECT_EQ(h.attempts[0].outcome, note.outcome);
    EXPECT_EQ(h.attempts[0].at, note.at);
    EXPECT_EQ(h.attempts[0].instance, "");
    EXPECT_EQ(h.trigger.attempts, 0);
    EXPECT_EQ(h.trigger.state, before.state);
    EXPECT_EQ(h.trigger.last_outcome, before.last_outcome);
    EXPECT_EQ(h.trigger.next_attempt_at, before.next_attempt_at);
    EXPECT_EQ(ids_of(claim(a(), "ci", base_)), (Ids{id}));
}

// --- Multibranch scans ----------------------------------------------------------------------

TEST_P(StoreContract, ScanIsGrantedThenCoversThenWaitsForTheInterval) {
    const auto first = request_scan(a(), "ci", "acme/app", base_ - 1s, base_, 60s);
    EXPECT_EQ(first.verdict, ScanGate::Verdict::granted);
    EXPECT_EQ(first.at, base_);

    // Asked for before that scan: it covers the caller.
    const auto covered = request_scan(b(), "ci", "acme/app", base_, base_ + 1s, 60s);
    EXPECT_EQ(covered.verdict, ScanGate::Verdict::covered);
    EXPECT_EQ(covered.at, base_);

    // Needed after it, within the interval: wait.
    const auto wait = request_scan(b(), "ci", "acme/app", base_ + 10s, base_ + 10s, 60s);
    EXPECT_EQ(wait.verdict, ScanGate::Verdict::wait);
    EXPECT_EQ(wait.at, base_ + 60s);
    EXPECT_EQ(request_scan(a(), "ci", "acme/app", base_ + 10s, base_ + 60s - 1ms, 60s).verdict,
              ScanGate::Verdict::wait);

    const auto again = request_scan(a(), "ci", "acme/app", base_ + 10s, base_ + 60s, 60s);
    EXPECT_EQ(again.verdict, ScanGate::Verdict::granted);
    EXPECT_EQ(again.at, base_ + 60s);
    EXPECT_EQ(request_scan(b(), "ci", "acme/app", base_ + 10s, base_ + 61s, 60s).verdict,
              ScanGate::Verdict::covered);
}

TEST_P(StoreContract, AForgottenScanCoversNobodyAndTheNextOneIsGranted) {
    ASSERT_EQ(request_scan(a(), "ci", "acme/app", base_, base_, 60s).verdict,
              ScanGate::Verdict::granted);
    // Jenkins never took it (down, throttling, refusing us).
    forget_scan(a(), "ci", "acme/app", base_);
    const auto again = request_scan(b(), "ci", "acme/app", base_, base_ + 5s, 60s);
    EXPECT_EQ(again.verdict, ScanGate::Verdict::granted);
    EXPECT_EQ(again.at, base_ + 5s);
    // Forgetting an older grant leaves a newer one alone.
    forget_scan(a(), "ci", "acme/app", base_);
    EXPECT_EQ(request_scan(a(), "ci", "acme/app", base_, base_ + 6s, 60s).verdict,
              ScanGate::Verdict::covered);
}

TEST_P(StoreContract, ScansOfOtherProjectsOrJenkinsAreIndependent) {
    ASSERT_EQ(request_scan(a(), "ci", "acme/app", base_, base_, 60s).verdict,
              ScanGate::Verdict::granted);
    EXPECT_EQ(request_scan(a(), "ci", "acme/lib", base_ + 1s, base_ + 1s, 60s).verdict,
              ScanGate::Verdict::granted);
    EXPECT_EQ(request_scan(a(), "other", "acme/app", base_ + 1s, base_ + 1s, 60s).verdict,
              ScanGate::Verdict::granted);
}

TEST_P(StoreContract, ConcurrentScanRequestsAreGrantedOnce) {
    constexpr int k_requests = 20;
    std::vector<std::future<result<ScanGate>>> answers;
    Store* stores[] = {&a(), &b()};
    for (int i = 0; i < k_requests; ++i) {
        auto promise = std::make_shared<std::promise<result<ScanGate>>>();
        answers.push_back(promise->get_future());
        stores[i % 2]->request_scan("ci", "acme/app", base_, base_, 60s,
                                    [promise](result<ScanGate> g) { promise->set_value(g); });
    }
    int granted = 0;
    for (auto& answer : answers) {
        ASSERT_EQ(answer.wait_for(k_deadline), std::future_status::ready);
        const auto gate = value_of(answer.get(), "request_scan");
        if (gate.verdict == ScanGate::Verdict::granted) ++granted;
        EXPECT_NE(gate.verdict, ScanGate::Verdict::wait);
    }
    EXPECT_EQ(granted, 1);
}

}  // namespace
}  // namespace hookrelay::store::contract
