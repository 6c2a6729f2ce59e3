// Contract: pruning, closing (work queued before is answered, nothing runs after), health and
// identity.
#include "store/contract/contract.hpp"

namespace hookrelay::store::contract {
namespace {

TEST_P(StoreContract, PruneRemovesOldFinishedRecordsAndKeepsOpenOnes) {
    config_.store.retention = 1h;
    const auto delivered = accept(a(), delivery("d-delivered", base_), {trigger()});
    const auto dead = accept(a(), delivery("d-dead", base_), {trigger()});
    accept(a(), delivery("d-pending", base_), {trigger()});
    const auto mixed = accept(a(), delivery("d-mixed", base_), {trigger(), trigger()});
    accept(a(), delivery("d-empty", base_), {});
    const auto now = Clock::now();
    settle(a(), "ci", finish(delivered.trigger_ids[0], TriggerState::delivered, now));
    settle(a(), "ci", finish(dead.trigger_ids[0], TriggerState::dead, now));
    settle(a(), "ci", finish(mixed.trigger_ids[0], TriggerState::delivered, now));

    EXPECT_EQ(prune(a(), now), 0u);  // nothing is older than the retention yet
    EXPECT_EQ(list(a()).items.size(), 5u);

    // Gone: d-delivered, d-dead and d-empty; d-mixed stays for its pending trigger.
    EXPECT_EQ(prune(a(), now + 2h), 3u);
    std::vector<std::string> left;
    for (const auto& item : list(a()).items) left.push_back(item.delivery_id);
    EXPECT_EQ(left, (std::vector<std::string>{"d-mixed", "d-pending"}));
    const auto d_mixed = get(a(), "", "d-mixed");
    ASSERT_TRUE(d_mixed);
    ASSERT_EQ(d_mixed->triggers.size(), 1u);  // its delivered trigger went
    EXPECT_EQ(d_mixed->triggers[0].trigger.id, mixed.trigger_ids[1]);
    EXPECT_EQ(open_count(a(), "ci"), 2u);

    EXPECT_FALSE(accept(a(), delivery("d-delivered", base_), {}).duplicate)
        << "a pruned delivery no longer deduplicates";
    EXPECT_TRUE(accept(a(), delivery("d-mixed", base_), {}).duplicate);
}

// A retention longer than a clock in nanoseconds reaches ("keep forever": 1,000 years) keeps
// everything; it once wrapped around to a cutoff in the future, and the prune took every
// finished trigger.
TEST_P(StoreContract, PruneUnderARetentionBeyondTheClocksReachKeepsEverything) {
    config_.store.retention = std::chrono::days(365'000);
    const auto delivered = accept(a(), delivery("d-delivered", base_), {trigger()});
    accept(a(), delivery("d-empty", base_), {});
    const auto now = Clock::now();
    settle(a(), "ci", finish(delivered.trigger_ids[0], TriggerState::delivered, now));
    EXPECT_EQ(prune(a(), now), 0u);
    EXPECT_EQ(prune(a(), now + 2h), 0u);
    EXPECT_EQ(list(a()).items.size(), 2u);
}

// Once everything expired and went, a delivery received in the same second as the newest pruned
// one (the clock stepped back) is listed by `since` like any other.
TEST_P(StoreContract, ListSinceFindsWhatIsSubmittedAfterTheWholeStoreWasPruned) {
    config_.store.retention = 1h;
    accept(a(), delivery("d-old-1", base_ - 5s), {});
    accept(a(), delivery("d-old-2", base_), {});
    EXPECT_EQ(prune(a(), Clock::now() + 2h), 2u);
    accept(a(), delivery("d-new", base_), {});
    DeliveryQuery query;
    query.since = base_;
    ASSERT_EQ(list(a(), query).items.size(), 1u);
    EXPECT_EQ(list(a(), query).items[0].delivery_id, "d-new");
}

TEST_P(StoreContract, PruneOfAThousandExpiredDeliveriesRemovesEachAndKeepsTheOpenOnes) {
    // More than one prune step of either backend.
    constexpr std::size_t k_count = 1000;
    config_.store.retention = 1h;
    std::vector<std::future<result<Receipt>>> answers;
    std::size_t open = 0;
    for (std::size_t i = 0; i < k_count; ++i) {
        auto promise = std::make_shared<std::promise<result<Receipt>>>();
        answers.push_back(promise->get_future());
        // Every third one queued nothing; every tenth one's trigger (for a Jenkins nothing
        // claims from) stays pending; the others are delivered below.
        std::vector<TriggerRequest> triggers;
        if (i % 10 == 1) {
            triggers.push_back(trigger("down"));
            ++open;
        } else if (i % 3 != 0) {
            triggers.push_back(trigger());
        }
        a().submit(delivery("d-" + std::to_string(i), base_), std::move(triggers),
                   [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
    }
    for (auto& answer : answers) {
        ASSERT_EQ(answer.wait_for(k_deadline), std::future_status::ready);
        ASSERT_TRUE(answer.get());
    }
    for (auto batch = claim(a(), "ci", base_); !batch.claims.empty();
         batch = claim(a(), "ci", base_)) {
        for (const auto& c : batch.claims) {
            ASSERT_EQ(
                complete(a(), c.claim_id, finish(c.trigger.id, TriggerState::delivered, base_)),
                Completion::applied);
        }
    }
    accept(a(), delivery("d-recent", Clock::now() + 2h), {});

    EXPECT_EQ(prune(b(), Clock::now() + 2h), k_count - open);
    DeliveryQuery all;
    all.limit = k_count;
    const auto left = list(a(), all).items;
    ASSERT_EQ(left.size(), open + 1);
    EXPECT_EQ(left.front().delivery_id, "d-recent");
    EXPECT_EQ(left.back().delivery_id, "d-1");
    EXPECT_EQ(open_count(a(), "down"), open);
    DeliveryQuery unmatched;
    unmatched.outcome = "unmatched";
    const auto still_unmatched = list(a(), unmatched).items;
    ASSERT_EQ(still_unmatched.size(), 1u);
    EXPECT_EQ(still_unmatched[0].delivery_id, "d-recent");
}

TEST_P(StoreContract, PruneKeepsTriggersThatAreBeingAttempted) {
    config_.store.retention = 0ms;
    accept(a(), delivery("d-1", base_), {trigger()});
    claim(a(), "ci", base_);
    EXPECT_EQ(prune(b(), Clock::now() + 1h), 0u);
    EXPECT_EQ(open_count(a(), "ci"), 1u);
    EXPECT_TRUE(get(a(), "", "d-1"));
}

TEST_P(StoreContract, WorkQueuedBeforeCloseIsAnsweredBeforeCloseReturns) {
    auto store = open("instance-c");
    std::vector<std::future<result<Receipt>>> answers;
    for (int i = 0; i < 20; ++i) {
        auto promise = std::make_shared<std::promise<result<Receipt>>>();
        answers.push_back(promise->get_future());
        store->submit(delivery("d-" + std::to_string(i), base_), {trigger()},
                      [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
    }
    store->close();
    std::size_t accepted = 0;
    for (auto& answer : answers) {
        ASSERT_EQ(answer.wait_for(std::chrono::seconds(0)), std::future_status::ready);
        const auto receipt = answer.get();
        // Finished or failed, but answered; what was accepted is stored.
        if (receipt && !receipt->duplicate) ++accepted;
    }
    EXPECT_EQ(open_count(a(), "ci"), accepted);
}

TEST_P(StoreContract, NoCallbackRunsAfterClose) {
    auto store = open("instance-c");
    auto called = std::make_shared<std::atomic<int>>(0);
    store->on_committed([called] { ++*called; });
    store->close();

    auto sentinel = std::make_shared<int>(0);
    std::weak_ptr<int> watch = sentinel;
    store->submit(delivery("d-late", base_), {trigger()},
                  [called, sentinel](result<Receipt>) { ++*called; });
    store->claim(ClaimRequest{"ci", 10, 0, base_, k_lease},
                 [called, sentinel](result<ClaimBatch>) { ++*called; });
    store->backlog([called, sentinel](result<Backlog>) { ++*called; });
    sentinel.reset();
    store->close();  // idempotent
    store.reset();   // the last reference: whatever the store kept of the calls is gone now

    EXPECT_TRUE(watch.expired()) << "the store kept a handler after it was destroyed";
    EXPECT_EQ(called->load(), 0);
    EXPECT_FALSE(get(a(), "", "d-late"));
}

TEST_P(StoreContract, IsHealthyWithItsIdentityOnceOpen) {
    EXPECT_TRUE(a().health().ok);
    EXPECT_EQ(a().instance_id(), k_instance_a);
    EXPECT_EQ(b().instance_id(), k_instance_b);
    EXPECT_EQ(a().kind(), GetParam().kind.empty() ? GetParam().name : GetParam().kind);
}

TEST_P(StoreContract, ReopenedInstanceFindsItsRecordsButNoClaims) {
    const auto receipt = accept(a(), delivery("d-1", base_), {trigger()});
    ASSERT_EQ(claim(a(), "ci", base_).claims.size(), 1u);
    reopen_a();  // closing released the claim
    EXPECT_EQ(ids_of(claim(a(), "ci", base_)), receipt.trigger_ids);
}

}  // namespace
}  // namespace hookrelay::store::contract
