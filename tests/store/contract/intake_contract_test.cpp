// Contract: accepting deliveries. Every field round-trips, duplicates by delivery id (also across
// instances and at once) and by body window, bodies kept or only hashed, notifications.
#include "store/contract/contract.hpp"

#include <mutex>
#include <set>
#include <thread>

namespace hookrelay::store::contract {
namespace {

constexpr const char* k_hello_sha256 =
    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

TEST_P(StoreContract, SubmittedTriggersComeBackWithEveryField) {
    TriggerRequest first = trigger("ci", "build-main");
    first.job = {"acme", "app", "feature/x", "ünïcode"};
    first.parameters = {{"Z", "last"},
                        {"A", "quote \" backslash \\ newline \n"},
                        {"EMPTY", ""},
                        {"RAW", std::string("not utf-8: \xff\xfe", 14)}};
    first.cause = "GitHub push to acme/app (delivery d-1)";
    TriggerRequest second = trigger("ci", "lint");
    second.job = {"lint"};
    second.parameters = {};

    const auto receipt = accept(a(), delivery("d-1", base_), {first, second});
    EXPECT_FALSE(receipt.duplicate);
    ASSERT_EQ(receipt.trigger_ids.size(), 2u);
    EXPECT_NE(receipt.trigger_ids[0], receipt.trigger_ids[1]);

    const auto batch = claim(a(), "ci", base_);
    ASSERT_EQ(batch.claims.size(), 2u);
    const StoredTrigger& t = batch.claims[0].trigger;
    EXPECT_EQ(t.id, receipt.trigger_ids[0]);
    EXPECT_EQ(t.source, "github-main");
    EXPECT_EQ(t.delivery_id, "d-1");
    EXPECT_EQ(t.request.rule, first.rule);
    EXPECT_EQ(t.request.jenkins, "ci");
    EXPECT_EQ(t.request.job, first.job);
    EXPECT_EQ(t.request.parameters, first.parameters);
    EXPECT_EQ(t.request.cause, first.cause);
    EXPECT_EQ(t.state, TriggerState::pending);
    EXPECT_EQ(t.attempts, 0);
    EXPECT_EQ(t.created_at, base_);
    EXPECT_EQ(t.next_attempt_at, base_);
    EXPECT_EQ(t.last_outcome, "");
    EXPECT_EQ(t.queue_url, "");
    EXPECT_EQ(batch.claims[1].trigger.id, receipt.trigger_ids[1]);
    EXPECT_EQ(batch.claims[1].trigger.request.job, second.job);
    EXPECT_TRUE(batch.claims[1].trigger.request.parameters.empty());
}

TEST_P(StoreContract, DuplicateDeliveryIdIsReportedAndQueuesNothing) {
    accept(a(), delivery("d-1", base_), {trigger()});

    const auto again = accept(a(), delivery("d-1", base_ + 1s), {trigger(), trigger()});
    EXPECT_TRUE(again.duplicate);
    EXPECT_FALSE(again.same_body);
    EXPECT_EQ(again.duplicate_of, "d-1");
    EXPECT_TRUE(again.trigger_ids.empty());
    EXPECT_EQ(open_count(a(), "ci"), 1u);

    // The key is (source, delivery id): another source may reuse the id.
    const auto elsewhere = accept(a(), delivery("d-1", base_, "gitlab-main"), {trigger()});
    EXPECT_FALSE(elsewhere.duplicate);
    EXPECT_EQ(open_count(a(), "ci"), 2u);
}

TEST_P(StoreContract, ConcurrentSubmissionsOfOneIdAcceptExactlyOne) {
    constexpr int k_threads = 4;
    constexpr int k_ids = 50;
    std::vector<std::vector<std::pair<int, std::future<result<Receipt>>>>> answers(k_threads);
    std::vector<std::thread> threads;
    Store& store = a();
    for (int n = 0; n < k_threads; ++n) {
        threads.emplace_back([&, n] {
            for (int i = 0; i < k_ids; ++i) {
                auto promise = std::make_shared<std::promise<result<Receipt>>>();
                answers[n].emplace_back(i, promise->get_future());
                store.submit(delivery("id-" + std::to_string(i), base_), {trigger()},
                             [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
            }
        });
    }
    for (auto& thread : threads) thread.join();

    std::map<int, int> accepted;
    for (auto& per_thread : answers) {
        for (auto& [id, future] : per_thread) {
            ASSERT_EQ(future.wait_for(k_deadline), std::future_status::ready);
            auto receipt = future.get();
            ASSERT_TRUE(receipt) << receipt.error().message();
            if (!receipt->duplicate) {
                EXPECT_EQ(receipt->trigger_ids.size(), 1u);
                ++accepted[id];
            }
        }
    }
    ASSERT_EQ(accepted.size(), std::size_t{k_ids});
    for (const auto& [id, n] : accepted) EXPECT_EQ(n, 1) << "id-" << id;
    EXPECT_EQ(open_count(a(), "ci"), std::size_t{k_ids});
}

TEST_P(StoreContract, SameDeliveryThroughTwoInstancesAtOnceIsAcceptedOnce) {
    if (capabilities().one_intake_per_file) {
        GTEST_SKIP() << GetParam().name << " takes deliveries through one instance at a time";
    }
    constexpr int k_ids = 40;
    Store* stores[] = {&a(), &b()};
    std::vector<std::future<result<Receipt>>> answers;
    std::vector<std::thread> threads;
    std::mutex mutex;
    for (Store* store : stores) {
        threads.emplace_back([&, store] {
            for (int i = 0; i < k_ids; ++i) {
                auto promise = std::make_shared<std::promise<result<Receipt>>>();
                {
                    std::lock_guard lock(mutex);
                    answers.push_back(promise->get_future());
                }
                store->submit(delivery("both-" + std::to_string(i), base_), {trigger()},
                              [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
            }
        });
    }
    for (auto& thread : threads) thread.join();
    int accepted = 0;
    int duplicates = 0;
    for (auto& answer : answers) {
        ASSERT_EQ(answer.wait_for(k_deadline), std::future_status::ready);
        const auto receipt = answer.get();
        ASSERT_TRUE(receipt) << receipt.error().message();
        ++(receipt->duplicate ? duplicates : accepted);
    }
    EXPECT_EQ(accepted, k_ids);
    EXPECT_EQ(duplicates, k_ids);
    EXPECT_EQ(open_count(b(), "ci"), std::size_t{k_ids});
}

TEST_P(StoreContract, EmptyDeliveryIdsNeverDeduplicate) {
    const auto first = accept(a(), delivery("", base_), {trigger()});
    const auto second = accept(a(), delivery("", base_), {trigger()});
    EXPECT_FALSE(first.duplicate);
    EXPECT_FALSE(second.duplicate);
    EXPECT_EQ(open_count(a(), "ci"), 2u);
    EXPECT_EQ(claim(a(), "ci", base_).claims.at(0).trigger.delivery_id, "");
}

TEST_P(StoreContract, DeliveryWithoutTriggersIsRecordedAndDeduplicated) {
    const auto first = accept(a(), delivery("d-1", base_), {});
    EXPECT_FALSE(first.duplicate);
    EXPECT_TRUE(first.trigger_ids.empty());
    EXPECT_TRUE(get(a(), "", "d-1"));
    EXPECT_TRUE(accept(a(), delivery("d-1", base_), {trigger()}).duplicate);
    EXPECT_TRUE(backlog(a()).empty());
}

TEST_P(StoreContract, TriggersSurviveClosingAndOpeningAgain) {
    const auto receipt = accept(a(), delivery("d-1", base_), {trigger(), trigger("other")});
    reopen_a();
    const auto ci = claim(a(), "ci", base_);
    ASSERT_EQ(ids_of(ci), (Ids{receipt.trigger_ids[0]}));
    EXPECT_EQ(ci.claims[0].trigger.request.parameters, trigger().parameters);
    EXPECT_EQ(ids_of(claim(a(), "other", base_)), (Ids{receipt.trigger_ids[1]}));
    EXPECT_TRUE(accept(a(), delivery("d-1", base_), {trigger()}).duplicate);
}

TEST_P(StoreContract, BodyIsKeptOnlyWhenConfiguredButItsHashAlways) {
    auto kept = delivery("d-kept", base_);
    kept.body = "hello";
    accept(a(), kept, {});
    config_.store.keep_body = false;
    auto dropped = delivery("d-dropped", base_);
    dropped.body = "hello";
    accept(b(), dropped, {});

    const auto with_body = get(a(), "", "d-kept");
    ASSERT_TRUE(with_body);
    EXPECT_EQ(with_body->body, std::optional<std::string>("hello"));
    EXPECT_EQ(with_body->body_sha256, k_hello_sha256);
    EXPECT_EQ(with_body->headers,
              (Pairs{{"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", "d-kept"}}));
    const auto without_body = get(a(), "", "d-dropped");
    ASSERT_TRUE(without_body);
    EXPECT_FALSE(without_body->body);
    EXPECT_EQ(without_body->body_sha256, k_hello_sha256);
}

// A body that compresses (kept packed by SQLite, which computes its digest only when it is shown,
// unless a body window compares it as it is stored): its digest is still the body's own, with a
// window and without.
TEST_P(StoreContract, ACompressibleBodysDigestIsTheBodysOwn) {
    std::string body;
    for (int i = 0; i < 200; ++i) body += R"({"ref": "refs/heads/main", "n": 1}, )";
    constexpr const char* k_body_sha256 =
        "fc24fa271512e03c64524ee6e0050d5af64b91140cd6fe4b8eaa0b29d6ac81ce";
    auto packed = delivery("d-packed", base_);
    packed.body = body;
    EXPECT_FALSE(accept(a(), packed, {trigger()}).duplicate);
    EXPECT_FALSE(accept(a(), with_body(delivery("d-windowed", base_), body), {}).duplicate);
    const auto answer = accept(a(), with_body(delivery("d-again", base_ + 1s), body), {});
    EXPECT_TRUE(answer.duplicate);
    EXPECT_EQ(answer.duplicate_of, "d-windowed");
    for (const char* id : {"d-packed", "d-windowed"}) {
        SCOPED_TRACE(id);
        const auto stored = get(a(), "", id);
        ASSERT_TRUE(stored);
        EXPECT_EQ(stored->body, std::optional<std::string>(body));
        EXPECT_EQ(stored->body_sha256, k_body_sha256);
    }
}

TEST_P(StoreContract, BodyDigestGivenBySubmitterIsStoredAndCompared) {
    accept(a(), with_body(delivery("d-computed", base_), "hello"), {});
    auto given = with_body(delivery("d-given", base_ + 1s), "hello");
    given.body_sha256 = k_hello_sha256;
    const auto answer = accept(a(), given, {});
    EXPECT_TRUE(answer.duplicate);
    EXPECT_EQ(answer.duplicate_of, "d-computed");
    EXPECT_EQ(get(a(), "", "d-computed")->body_sha256, k_hello_sha256);
}

TEST_P(StoreContract, OnCommittedRunsOnlyAfterTriggersWereCommitted) {
    CommitCounter committed(a());
    accept(a(), delivery("d-none", base_), {});
    accept(a(), delivery("d-none", base_), {trigger()});  // a duplicate
    backlog(a());  // answered after the notifications of the submits before it would have run
    EXPECT_EQ(committed.calls(), 0);

    accept(a(), delivery("d-1", base_), {trigger()});
    EXPECT_TRUE(committed.first_arrives());
}

TEST_P(StoreContract, OnCommittedRunsForOtherInstancesCommitsWhereSupported) {
    if (!capabilities().notifies_across_instances) {
        GTEST_SKIP() << GetParam().name << " notifies only its own instance";
    }
    CommitCounter committed(a());
    accept(b(), delivery("d-1", base_), {trigger()});
    EXPECT_TRUE(committed.first_arrives());
}

TEST_P(StoreContract, ManySubmissionsFromManyThreadsAreAllStored) {
    config_.store.max_batch = 64;
    Store& store = a();
    constexpr int k_threads = 4;
    constexpr int k_per_thread = 250;
    std::vector<std::vector<std::future<result<Receipt>>>> answers(k_threads);
    std::vector<std::thread> threads;
    for (int n = 0; n < k_threads; ++n) {
        threads.emplace_back([&, n] {
            for (int i = 0; i < k_per_thread; ++i) {
                auto promise = std::make_shared<std::promise<result<Receipt>>>();
                answers[n].push_back(promise->get_future());
                store.submit(delivery("t" + std::to_string(n) + "-" + std::to_string(i), base_),
                             {trigger()},
                             [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
            }
        });
    }
    for (auto& thread : threads) thread.join();

    std::set<std::string> ids;
    for (auto& per_thread : answers) {
        for (auto& future : per_thread) {
            ASSERT_EQ(future.wait_for(k_deadline), std::future_status::ready);
            auto receipt = future.get();
            ASSERT_TRUE(receipt) << receipt.error().message();
            ASSERT_FALSE(receipt->duplicate);
            ASSERT_EQ(receipt->trigger_ids.size(), 1u);
            ids.insert(receipt->trigger_ids[0]);
        }
    }
    constexpr std::size_t k_total = k_threads * k_per_thread;
    EXPECT_EQ(ids.size(), k_total);
    EXPECT_EQ(open_count(store, "ci"), k_total);
    EXPECT_EQ(claim(store, "ci", base_, 2 * k_total).claims.size(), k_total);
}

TEST_P(StoreContract, CommitStatsCoverEverySubmission) {
    auto batches = std::make_shared<std::vector<std::size_t>>();
    auto mutex = std::make_shared<std::mutex>();
    a().on_commit_stats([batches, mutex](std::chrono::duration<double> seconds, std::size_t n) {
        std::lock_guard lock(*mutex);
        if (seconds.count() >= 0) batches->push_back(n);
    });
    for (int i = 0; i < 3; ++i) accept(a(), delivery("d-" + std::to_string(i), base_), {});
    std::lock_guard lock(*mutex);
    std::size_t total = 0;
    for (auto n : *batches) total += n;
    EXPECT_EQ(total, 3u);  // reported before each submit is answered
}

// --- Duplicate bodies (duplicate_body_window) ---------------------------------------------

TEST_P(StoreContract, SameBodyWithinTheWindowIsADuplicateOfTheEarlierDelivery) {
    accept(a(), with_body(delivery("d-1", base_), "old push"), {trigger()});

    // A replay: the old signed body under a new delivery id, nine minutes later.
    const auto replayed =
        accept(a(), with_body(delivery("d-2", base_ + 9min), "old push"), {trigger()});
    EXPECT_TRUE(replayed.duplicate);
    EXPECT_TRUE(replayed.same_body);
    EXPECT_EQ(replayed.duplicate_of, "d-1");
    EXPECT_TRUE(replayed.trigger_ids.empty());
    EXPECT_EQ(open_count(a(), "ci"), 1u);
    EXPECT_EQ(list(a()).items.size(), 1u);
}

TEST_P(StoreContract, SameBodyThroughAnotherInstanceIsADuplicateToo) {
    accept(a(), with_body(delivery("d-1", base_), "push"), {trigger()});
    const auto replayed = accept(b(), with_body(delivery("d-2", base_ + 1s), "push"), {trigger()});
    EXPECT_TRUE(replayed.duplicate);
    EXPECT_EQ(replayed.duplicate_of, "d-1");
}

TEST_P(StoreContract, SameBodyOlderThanTheWindowIsAccepted) {
    accept(a(), with_body(delivery("d-1", base_), "push"), {trigger()});
    const auto later = accept(a(), with_body(delivery("d-2", base_ + 11min), "push"), {trigger()});
    EXPECT_FALSE(later.duplicate);
    EXPECT_EQ(open_count(a(), "ci"), 2u);
}

TEST_P(StoreContract, WithoutAWindowBodiesAreNotCompared) {
    accept(a(), with_body(delivery("d-1", base_), "push", 0ms), {trigger()});
    EXPECT_FALSE(
        accept(a(), with_body(delivery("d-2", base_), "push", 0ms), {trigger()}).duplicate);
}

TEST_P(StoreContract, BodiesAreComparedOnlyWithDeliveriesSubmittedWithAWindow) {
    accept(a(), with_body(delivery("d-1", base_), "push", 0ms), {trigger()});
    EXPECT_FALSE(
        accept(a(), with_body(delivery("d-2", base_ + 1s), "push"), {trigger()}).duplicate);
}

TEST_P(StoreContract, SameBodyInAnotherSourceIsNoDuplicate) {
    accept(a(), with_body(delivery("d-1", base_), "push"), {trigger()});
    EXPECT_FALSE(
        accept(a(), with_body(delivery("d-2", base_, "gitlab-main"), "push"), {}).duplicate);
}

TEST_P(StoreContract, DeliveryWithoutIdIsNamedBySeqAsTheEarlierOne) {
    accept(a(), with_body(delivery("", base_), "push"), {trigger()});
    const auto again = accept(a(), with_body(delivery("", base_ + 1s), "push"), {trigger()});
    EXPECT_TRUE(again.duplicate);
    EXPECT_TRUE(again.same_body);
    const auto page = list(a());
    ASSERT_EQ(page.items.size(), 1u);
    EXPECT_EQ(again.duplicate_of, "#" + std::to_string(page.items[0].seq));
    EXPECT_TRUE(get(a(), "", again.duplicate_of));
}

TEST_P(StoreContract, RedeliveryUnderTheSameIdIsAnIdDuplicateWithOrWithoutAWindow) {
    accept(a(), with_body(delivery("d-1", base_), "push"), {trigger()});
    for (const auto window : {10min, 0min}) {
        const auto again =
            accept(a(), with_body(delivery("d-1", base_ + 1min), "push", window), {trigger()});
        EXPECT_TRUE(again.duplicate);
        EXPECT_FALSE(again.same_body);
        EXPECT_EQ(again.duplicate_of, "d-1");
    }
}

TEST_P(StoreContract, SameBodySubmittedConcurrentlyIsAcceptedOnce) {
    constexpr int k_copies = 8;
    std::vector<std::future<result<Receipt>>> answers;
    for (int i = 0; i < k_copies; ++i) {
        auto promise = std::make_shared<std::promise<result<Receipt>>>();
        answers.push_back(promise->get_future());
        a().submit(with_body(delivery("d-" + std::to_string(i), base_), "push"), {trigger()},
                   [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
    }
    int accepted = 0;
    for (auto& answer : answers) {
        ASSERT_EQ(answer.wait_for(k_deadline), std::future_status::ready);
        const auto r = answer.get();
        ASSERT_TRUE(r) << r.error().message();
        if (!r->duplicate) ++accepted;
    }
    EXPECT_EQ(accepted, 1);
    EXPECT_EQ(open_count(a(), "ci"), 1u);
}

}  // namespace
}  // namespace hookrelay::store::contract
