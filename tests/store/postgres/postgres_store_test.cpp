// The PostgreSQL backend against a real server: what only this backend does (several instances
// on one database, NOTIFY, migrations, server restarts, the URL's password). The behaviour both
// backends share is proven by the contract suite (tests/store/contract/).
#include "pg_test_support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

namespace hookrelay::store::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

TimePoint now_ms() {
    return std::chrono::time_point_cast<Clock::duration>(
        std::chrono::floor<std::chrono::milliseconds>(Clock::now()));
}

DeliveryRecord delivery(std::string id, TimePoint received_at, std::string source = "github") {
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

TriggerRequest trigger(std::string jenkins = "ci") {
    TriggerRequest t;
    t.rule = "build";
    t.jenkins = std::move(jenkins);
    t.job = {"acme", "app", "main"};
    t.parameters = {{"BRANCH", "main"}};
    t.cause = "push to acme/app";
    return t;
}

std::shared_ptr<PostgresStore> open_or_throw(const StoreConfig& config, std::string id) {
    std::string why;
    auto store = PostgresStore::open(config, pg_options(std::move(id)), &why);
    if (!store) throw std::runtime_error("cannot open the store: " + why);
    return *store;
}

result<Receipt> submit(Store& store, DeliveryRecord d, std::vector<TriggerRequest> t) {
    return wait_answer<result<Receipt>>(
        [&](auto done) { store.submit(std::move(d), std::move(t), std::move(done)); });
}

result<ClaimBatch> claim(Store& store, std::string jenkins, TimePoint now, std::size_t limit,
                         std::size_t max_in_flight = 0, std::chrono::milliseconds lease = 10s) {
    ClaimRequest r;
    r.jenkins = std::move(jenkins);
    r.limit = limit;
    r.max_in_flight = max_in_flight;
    r.now = now;
    r.lease = lease;
    return wait_answer<result<ClaimBatch>>(
        [&](auto done) { store.claim(std::move(r), std::move(done)); });
}

result<Completion> complete(Store& store, const Claim& c, TriggerState state, TimePoint at) {
    TriggerUpdate u;
    u.id = c.trigger.id;
    u.state = state;
    u.next_attempt_at = at;
    u.attempt.at = at;
    u.attempt.http_status = 201;
    u.attempt.outcome = "queued";
    return wait_answer<result<Completion>>(
        [&](auto done) { store.complete(c.claim_id, std::move(u), std::move(done)); });
}

class PostgresStoreTest : public ::testing::Test {
  protected:
    std::shared_ptr<PostgresStore> open(std::string id = "instance-a") {
        return open_or_throw(pg_config(db_.conninfo()), std::move(id));
    }

    TestDatabase db_;
    const TimePoint base_ = now_ms();
};

TEST_F(PostgresStoreTest, SubmitThenClaimRoundTripsEveryFieldIncludingBytesThatAreNotUtf8) {
    auto store = open();
    TriggerRequest t = trigger();
    t.job = {"acme", "app", "feature/x", "ünïcode"};
    t.parameters = {{"A", "quote \" backslash \\ newline \n"},
                    {"RAW", std::string("not utf-8: \xff\xfe", 14)},
                    {"NUL", std::string("a\0b", 3)}};
    DeliveryRecord d = delivery(std::string("id-\xff", 4), base_);
    d.body = std::string("{\"x\":\"\xfe\"}");
    d.headers.emplace_back("X-Raw", std::string("\xc3\x28", 2));

    auto receipt = submit(*store, d, {t});
    ASSERT_TRUE(receipt) << receipt.error().message();
    ASSERT_EQ(receipt->trigger_ids.size(), 1u);
    EXPECT_EQ(receipt->trigger_ids[0].size(), 36u);

    auto batch = claim(*store, "ci", base_, 10);
    ASSERT_TRUE(batch) << batch.error().message();
    ASSERT_EQ(batch->claims.size(), 1u);
    const StoredTrigger& got = batch->claims[0].trigger;
    EXPECT_EQ(got.id, receipt->trigger_ids[0]);
    EXPECT_EQ(got.source, "github");
    EXPECT_EQ(got.delivery_id, d.delivery_id);
    EXPECT_EQ(got.request.job, t.job);
    EXPECT_EQ(got.request.parameters, t.parameters);
    EXPECT_EQ(got.request.cause, t.cause);
    EXPECT_EQ(got.state, TriggerState::pending);
    EXPECT_EQ(got.next_attempt_at, base_);
    EXPECT_EQ(batch->claims[0].claim_id.size(), 32u);
    EXPECT_EQ(batch->claims[0].expires_at, base_ + 10s);

    auto detail = wait_answer<result<std::optional<DeliveryDetail>>>(
        [&](auto done) { store->get_delivery("github", d.delivery_id, std::move(done)); });
    ASSERT_TRUE(detail && *detail);
    EXPECT_EQ((*detail)->body, d.body);
    EXPECT_EQ((*detail)->headers, d.headers);
    ASSERT_EQ((*detail)->triggers.size(), 1u);
    EXPECT_EQ((*detail)->triggers[0].claimed_by, "instance-a");
}

TEST_F(PostgresStoreTest, TheSameDeliveryThroughTwoInstancesAtOnceIsAcceptedOnce) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    constexpr int k_deliveries = 40;
    std::vector<std::future<result<Receipt>>> answers;
    for (int i = 0; i < k_deliveries; ++i) {
        for (Store* store : {static_cast<Store*>(a.get()), static_cast<Store*>(b.get())}) {
            auto promise = std::make_shared<std::promise<result<Receipt>>>();
            answers.push_back(promise->get_future());
            store->submit(delivery("d-" + std::to_string(i), base_), {trigger()},
                          [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
        }
    }
    int accepted = 0, duplicates = 0;
    for (auto& f : answers) {
        ASSERT_EQ(f.wait_for(k_pg_deadline), std::future_status::ready);
        auto r = f.get();
        ASSERT_TRUE(r) << r.error().message();
        (r->duplicate ? duplicates : accepted) += 1;
    }
    EXPECT_EQ(accepted, k_deliveries);
    EXPECT_EQ(duplicates, k_deliveries);
    EXPECT_EQ(Sql(db_.conninfo()).value("SELECT count(*) FROM triggers"),
              std::to_string(k_deliveries));
}

TEST_F(PostgresStoreTest, TheSameBodyThroughTwoInstancesAtOnceIsAcceptedOnce) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    constexpr int k_bodies = 20;
    std::vector<std::future<result<Receipt>>> answers;
    for (int i = 0; i < k_bodies; ++i) {
        for (Store* store : {static_cast<Store*>(a.get()), static_cast<Store*>(b.get())}) {
            DeliveryRecord d = delivery("", base_);
            d.body = "body " + std::to_string(i);
            d.duplicate_body_window = 60s;
            auto promise = std::make_shared<std::promise<result<Receipt>>>();
            answers.push_back(promise->get_future());
            store->submit(std::move(d), {trigger()},
                          [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
        }
    }
    int accepted = 0;
    for (auto& f : answers) {
        ASSERT_EQ(f.wait_for(k_pg_deadline), std::future_status::ready);
        auto r = f.get();
        ASSERT_TRUE(r) << r.error().message();
        if (!r->duplicate) ++accepted;
    }
    EXPECT_EQ(accepted, k_bodies);
}

TEST_F(PostgresStoreTest, ConcurrentClaimsFromTwoInstancesNeverTakeTheSameTrigger) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    constexpr int k_triggers = 60;
    for (int i = 0; i < k_triggers; ++i) {
        ASSERT_TRUE(submit(*a, delivery("d-" + std::to_string(i), base_), {trigger()}));
    }
    std::vector<std::string> taken_a, taken_b;
    std::thread ta([&] {
        for (int i = 0; i < 20; ++i) {
            auto r = claim(*a, "ci", base_, 3);
            if (r) {
                for (auto& c : r->claims) taken_a.push_back(c.trigger.id);
            }
        }
    });
    std::thread tb([&] {
        for (int i = 0; i < 20; ++i) {
            auto r = claim(*b, "ci", base_, 3);
            if (r) {
                for (auto& c : r->claims) taken_b.push_back(c.trigger.id);
            }
        }
    });
    ta.join();
    tb.join();
    std::set<std::string> all(taken_a.begin(), taken_a.end());
    for (const auto& id : taken_b) EXPECT_TRUE(all.insert(id).second) << id << " taken twice";
    EXPECT_EQ(all.size(), static_cast<std::size_t>(k_triggers));
}

TEST_F(PostgresStoreTest, MaxInFlightIsNeverExceededByTwoInstancesClaimingAtOnce) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    for (int i = 0; i < 30; ++i) {
        ASSERT_TRUE(submit(*a, delivery("d-" + std::to_string(i), base_), {trigger()}));
    }
    for (int round = 0; round < 10; ++round) {
        std::atomic<std::size_t> claimed{0};
        std::thread ta([&] {
            if (auto r = claim(*a, "ci", base_, 5, 3)) claimed += r->claims.size();
        });
        std::thread tb([&] {
            if (auto r = claim(*b, "ci", base_, 5, 3)) claimed += r->claims.size();
        });
        ta.join();
        tb.join();
        EXPECT_EQ(claimed.load(), 3u) << "round " << round;
        Sql sql(db_.conninfo());
        sql.exec(
            "UPDATE triggers SET claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL");
    }
}

TEST_F(PostgresStoreTest, AnExpiredClaimIsTakenOverAndTheOldOwnersOutcomeIsStale) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    ASSERT_TRUE(submit(*a, delivery("d-1", base_), {trigger()}));
    auto first = claim(*a, "ci", base_, 1, 0, 5s);
    ASSERT_TRUE(first && first->claims.size() == 1);
    auto early = claim(*b, "ci", base_ + 4s, 1);
    ASSERT_TRUE(early);
    EXPECT_TRUE(early->claims.empty()) << "a live claim was taken";
    auto taken = claim(*b, "ci", base_ + 5s, 1);
    ASSERT_TRUE(taken && taken->claims.size() == 1);

    auto stale = complete(*a, first->claims[0], TriggerState::delivered, base_ + 6s);
    ASSERT_TRUE(stale);
    EXPECT_EQ(*stale, Completion::stale);
    auto applied = complete(*b, taken->claims[0], TriggerState::delivered, base_ + 6s);
    ASSERT_TRUE(applied);
    EXPECT_EQ(*applied, Completion::applied);
}

TEST_F(PostgresStoreTest, ACommitOnOneInstanceWakesAnother) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    std::atomic<int> woken{0};
    b->on_committed([&] { ++woken; });
    // The LISTEN connection of b may still be connecting: submit until b hears of one.
    int i = 0;
    ASSERT_TRUE(eventually([&] {
        if (!submit(*a, delivery("d-" + std::to_string(i++), base_), {trigger()})) return false;
        return eventually([&] { return woken.load() > 0; }, 300ms);
    }));
}

TEST_F(PostgresStoreTest, InstancesListsEveryLiveInstanceWithItsClaims) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    ASSERT_TRUE(submit(*a, delivery("d-1", base_), {trigger(), trigger()}));
    ASSERT_TRUE(claim(*b, "ci", now_ms(), 2));
    auto list = wait_answer<result<std::vector<InstanceInfo>>>(
        [&](auto done) { a->instances(std::move(done)); });
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 2u);
    std::map<std::string, InstanceInfo> by_id;
    for (auto& i : *list) by_id[i.id] = i;
    EXPECT_EQ(by_id["instance-a"].claims, 0u);
    EXPECT_EQ(by_id["instance-b"].claims, 2u);
    EXPECT_EQ(by_id["instance-b"].host, "test-host");
    EXPECT_EQ(by_id["instance-b"].version, "0.0.test");
}

TEST_F(PostgresStoreTest, CloseReleasesTheInstancesClaimsAndDeregistersIt) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    ASSERT_TRUE(submit(*a, delivery("d-1", base_), {trigger()}));
    auto held = claim(*a, "ci", base_, 1);
    ASSERT_TRUE(held && held->claims.size() == 1);
    a->close();
    auto taken = claim(*b, "ci", base_, 1);
    ASSERT_TRUE(taken);
    EXPECT_EQ(taken->claims.size(), 1u) << "the closed instance's claim was not released";
    auto list = wait_answer<result<std::vector<InstanceInfo>>>(
        [&](auto done) { b->instances(std::move(done)); });
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 1u);
    EXPECT_EQ(list->front().id, "instance-b");
}

TEST_F(PostgresStoreTest, NoCallbackRunsAfterClose) {
    auto a = open();
    a->close();
    std::atomic<bool> called{false};
    a->backlog([&](auto) { called = true; });
    a->submit(delivery("d-1", base_), {trigger()}, [&](auto) { called = true; });
    // The backend's thread has ended: whatever was going to be called would have been by now.
    EXPECT_FALSE(called.load());
}

TEST_F(PostgresStoreTest, PruneRunsOnOneInstanceAtATime) {
    StoreConfig config = pg_config(db_.conninfo());
    config.retention = 1h;
    auto a = open_or_throw(config, "instance-a");
    ASSERT_TRUE(submit(*a, delivery("old", base_ - 2h), {}));
    // Another instance pruning holds the lock: this one skips.
    Sql other(db_.conninfo());
    other.value("SELECT pg_advisory_lock(x'68726c61'::integer, 2)");
    auto skipped =
        wait_answer<result<std::size_t>>([&](auto done) { a->prune(base_, std::move(done)); });
    ASSERT_TRUE(skipped);
    EXPECT_EQ(*skipped, 0u);
    other.value("SELECT pg_advisory_unlock(x'68726c61'::integer, 2)");
    auto pruned =
        wait_answer<result<std::size_t>>([&](auto done) { a->prune(base_, std::move(done)); });
    ASSERT_TRUE(pruned);
    EXPECT_EQ(*pruned, 1u);
}

// --- Schema -----------------------------------------------------------------------------------

TEST_F(PostgresStoreTest, RefusesASchemaNewerThanItKnows) {
    open()->close();
    Sql(db_.conninfo()).exec("UPDATE hookrelay_schema SET version = 99");
    std::string why;
    auto store = PostgresStore::open(pg_config(db_.conninfo()), pg_options("instance-a"), &why);
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error(), make_error_code(errc::store_incompatible));
    EXPECT_NE(why.find("schema version 99 is newer than this hookrelay knows (1)"),
              std::string::npos)
        << why;
}

TEST_F(PostgresStoreTest, RefusesADatabaseWithOtherTablesOfTheSameNames) {
    Sql(db_.conninfo()).exec("CREATE TABLE deliveries (x integer)");
    std::string why;
    auto store = PostgresStore::open(pg_config(db_.conninfo()), pg_options("instance-a"), &why);
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error(), make_error_code(errc::store_incompatible));
    EXPECT_NE(why.find("not a hookrelay store"), std::string::npos) << why;
}

TEST_F(PostgresStoreTest, ManyInstancesOpeningANewDatabaseAtOnceMigrateItOnce) {
    constexpr int k_instances = 6;
    std::vector<std::thread> threads;
    std::vector<std::shared_ptr<PostgresStore>> stores(k_instances);
    std::vector<std::string> failures(k_instances);
    for (int i = 0; i < k_instances; ++i) {
        threads.emplace_back([&, i] {
            std::string why;
            auto s = PostgresStore::open(pg_config(db_.conninfo()),
                                         pg_options("instance-" + std::to_string(i)), &why);
            if (s) {
                stores[i] = *s;
            } else {
                failures[i] = why.empty() ? "failed" : why;
            }
        });
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < k_instances; ++i) EXPECT_EQ(failures[i], "") << "instance " << i;
    Sql sql(db_.conninfo());
    EXPECT_EQ(sql.value("SELECT count(*) FROM hookrelay_schema"), "1");
    EXPECT_EQ(sql.value("SELECT version FROM hookrelay_schema"), "1");
    ASSERT_TRUE(stores[0]);
    ASSERT_TRUE(submit(*stores[0], delivery("d-1", base_), {trigger()}));
}

// --- The URL's password -----------------------------------------------------------------------

constexpr std::string_view k_password = "Sup3r-s3cret";

TEST(PostgresStorePassword, IsNotInTheErrorWhenTheServerCannotBeReached) {
    StoreConfig config =
        pg_config("postgresql://hookrelay:Sup3r-s3cret@/hookrelay?host=/nonexistent-dir&port=5432");
    std::string why;
    auto store = PostgresStore::open(config, pg_options("instance-a"), &why);
    ASSERT_FALSE(store);
    EXPECT_TRUE(is_retryable(store.error()));
    EXPECT_EQ(why.find(k_password), std::string::npos) << why;
    EXPECT_NE(why.find("host=/nonexistent-dir"), std::string::npos) << why;
}

TEST(PostgresStorePassword, IsNotInTheErrorForAMalformedUrlThatQuotesIt) {
    // libpq's own message for this URL is: invalid percent-encoded token: "Sup3r%zzs3cret"
    StoreConfig config = pg_config("postgresql://hookrelay:Sup3r%zzs3cret@/hookrelay");
    std::string why;
    auto store = PostgresStore::open(config, pg_options("instance-a"), &why);
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error(), make_error_code(errc::bad_config));
    EXPECT_EQ(why.find("Sup3r"), std::string::npos) << why;
    EXPECT_EQ(why.find("s3cret"), std::string::npos) << why;
    EXPECT_NE(why.find("invalid percent-encoded token"), std::string::npos) << why;
}

TEST(PostgresStorePassword, IsNotInTheErrorForAKeyValueString) {
    StoreConfig config =
        pg_config("host=/nonexistent-dir password='Sup3r-s3cret' dbname=hookrelay");
    std::string why;
    auto store = PostgresStore::open(config, pg_options("instance-a"), &why);
    ASSERT_FALSE(store);
    EXPECT_EQ(why.find(k_password), std::string::npos) << why;
}

// --- A server that goes away ------------------------------------------------------------------

class PostgresStoreServerTrouble : public ::testing::Test {
  protected:
    PostgresStoreServerTrouble() : db_(server_.conninfo()) {}

    std::shared_ptr<PostgresStore> open(std::string id = "instance-a") {
        // A password in the URL (the server trusts local connections and never asks for it):
        // it must not show in any error, health detail or log line.
        auto store = open_or_throw(
            pg_config(db_.conninfo() + " password=" + std::string(k_password)), std::move(id));
        store->on_error([this](std::string_view line) {
            std::lock_guard lock(mutex_);
            errors_.emplace_back(line);
        });
        return store;
    }

    std::vector<std::string> errors() {
        std::lock_guard lock(mutex_);
        return errors_;
    }

    PrivateServer server_;
    TestDatabase db_;
    const TimePoint base_ = now_ms();
    std::mutex mutex_;
    std::vector<std::string> errors_;
};

TEST_F(PostgresStoreServerTrouble, RecoversByItselfAfterTheServerRestarts) {
    auto store = open();
    ASSERT_TRUE(submit(*store, delivery("before", base_), {trigger()}));
    server_.restart();
    // Every connection was cut: the next submits fail (retryably) or succeed on a new connection;
    // within the reconnect backoff they succeed again, and health says so.
    int i = 0;
    ASSERT_TRUE(eventually([&] {
        auto r = submit(*store, delivery("after-" + std::to_string(i++), base_), {trigger()});
        if (!r) {
            EXPECT_TRUE(is_retryable(r.error())) << r.error().message();
        }
        return r.has_value();
    }));
    EXPECT_TRUE(store->health().ok);
    // Nothing answered as accepted was lost: "before" and the last one are there.
    auto batch = claim(*store, "ci", base_, 100);
    ASSERT_TRUE(batch);
    std::set<std::string> ids;
    for (const Claim& c : batch->claims) ids.insert(c.trigger.delivery_id);
    EXPECT_TRUE(ids.contains("before"));
    EXPECT_TRUE(ids.contains("after-" + std::to_string(i - 1)));
}

TEST_F(PostgresStoreServerTrouble, FailsQuicklyWhileTheServerIsDownAndRecoversWhenItIsBack) {
    auto store = open();
    std::atomic<int> woken{0};
    store->on_committed([&] { ++woken; });
    ASSERT_TRUE(submit(*store, delivery("before", base_), {trigger()}));
    server_.halt();

    const auto started = std::chrono::steady_clock::now();
    auto down = submit(*store, delivery("while-down", base_), {trigger()});
    const auto took = std::chrono::steady_clock::now() - started;
    ASSERT_FALSE(down);
    EXPECT_TRUE(is_retryable(down.error())) << down.error().message();
    // Within the statement and connect deadlines (2 s each in these tests), not a hang.
    EXPECT_LT(took, 5s);
    EXPECT_FALSE(store->health().ok);
    EXPECT_EQ(store->health().detail.find(k_password), std::string::npos) << store->health().detail;
    auto quick = submit(*store, delivery("while-down-2", base_), {trigger()});
    ASSERT_FALSE(quick);
    EXPECT_EQ(quick.error(), make_error_code(errc::store_unavailable));

    server_.start_again();
    EXPECT_TRUE(eventually([&] { return store->health().ok; }))
        << "the heartbeat did not reconnect: " << store->health().detail;
    auto after = submit(*store, delivery("after", base_), {trigger()});
    ASSERT_TRUE(after) << after.error().message();
    EXPECT_FALSE(after->duplicate);
    for (const std::string& line : errors()) {
        EXPECT_EQ(line.find(k_password), std::string::npos) << line;
    }
    EXPECT_FALSE(errors().empty());
}

TEST_F(PostgresStoreServerTrouble, TheListenConnectionComesBackAfterARestart) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    std::atomic<int> woken{0};
    b->on_committed([&] { ++woken; });
    server_.restart();
    int i = 0;
    ASSERT_TRUE(eventually([&] {
        const int before = woken.load();
        if (!submit(*a, delivery("d-" + std::to_string(i++), base_), {trigger()})) return false;
        return eventually([&] { return woken.load() > before; }, 300ms);
    }));
}

}  // namespace
}  // namespace hookrelay::store::test
