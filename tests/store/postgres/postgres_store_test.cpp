// The PostgreSQL backend against a real server: what only this backend does (bytes in bytea,
// concurrent instances on one database, migrations, server restarts, the URL's password). The
// behaviour every backend shares is proven by the contract suite (tests/store/contract/), which
// runs against PostgreSQL through postgres_backend_test.cpp.
#include "pg_test_support.hpp"
#include "store/codec.hpp"
#include "store/contract/chores.hpp"
#include "store/postgres/bodies.hpp"
#include "store/postgres/connection.hpp"
#include "store/postgres/statements.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

namespace hookrelay::store::test {
namespace {

std::shared_ptr<PostgresStore> open_or_throw(const StoreConfig& config, std::string id) {
    std::string why;
    auto store = PostgresStore::open(config, pg_options(std::move(id)), &why);
    if (!store) throw std::runtime_error("cannot open the store: " + why);
    return *store;
}

/// Submits `d` through every store at once; answers every receipt.
std::vector<result<Receipt>> submit_everywhere(const std::vector<Store*>& stores,
                                               const std::vector<DeliveryRecord>& deliveries) {
    std::vector<std::future<result<Receipt>>> answers;
    for (const DeliveryRecord& d : deliveries) {
        for (Store* store : stores) {
            auto promise = std::make_shared<std::promise<result<Receipt>>>();
            answers.push_back(promise->get_future());
            store->submit(d, {trigger()},
                          [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
        }
    }
    std::vector<result<Receipt>> out;
    for (auto& f : answers) {
        if (f.wait_for(k_deadline) != std::future_status::ready) {
            throw std::runtime_error("the store did not answer in time");
        }
        out.push_back(f.get());
    }
    return out;
}

/// The schema version this build migrates to (postgres::k_schema_version).
const std::string k_current_version = "11";

/// What a plan read, from EXPLAIN (ANALYZE, FORMAT JSON): the most rows any node returned, the
/// rows its filters removed, and whether it scanned a table whole.
struct PlanReads {
    long most_rows = 0;
    long removed = 0;
    bool seq_scan = false;
};

PlanReads reads_of(const std::string& plan) {
    PlanReads out;
    const std::regex rows(R"("Actual Rows": (\d+))");
    for (std::sregex_iterator it(plan.begin(), plan.end(), rows), end; it != end; ++it) {
        out.most_rows = std::max(out.most_rows, std::stol((*it)[1]));
    }
    const std::regex filtered(R"re("Rows Removed by (?:Join )?Filter": (\d+))re");
    for (std::sregex_iterator it(plan.begin(), plan.end(), filtered), end; it != end; ++it) {
        out.removed += std::stol((*it)[1]);
    }
    out.seq_scan = plan.find("Seq Scan") != std::string::npos;
    return out;
}

/// Expects `plan` to have read at most `most` rows in any node and through its filters, and no
/// table whole.
void expect_reads_at_most(const std::string& plan, long most, const std::string& what = {}) {
    const PlanReads reads = reads_of(plan);
    EXPECT_LE(reads.most_rows, most) << what << "\n" << plan;
    EXPECT_LE(reads.removed, most) << what << "\n" << plan;
    EXPECT_FALSE(reads.seq_scan) << what << "\n" << plan;
}

/// Takes a database back to what version 9 was: rule reasons compressed with pglz, the default.
void downgrade_to_version_9(Sql& sql) {
    sql.exec(
        "ALTER TABLE deliveries ALTER COLUMN rule_reasons SET COMPRESSION pglz; "
        "UPDATE hookrelay_schema SET version = 9");
}

/// Takes a database back to what version 7 was: every body in its delivery's row, no bodies table.
void downgrade_to_version_7(Sql& sql) {
    downgrade_to_version_9(sql);
    sql.exec(
        "UPDATE deliveries d SET body = b.body FROM bodies b WHERE b.delivery = d.seq; "
        "DROP TABLE bodies; UPDATE hookrelay_schema SET version = 7");
}

/// Stores a delivery without triggers as instances of versions 1 to 7 did: its body in its row.
void store_like_version_7(Sql& sql, const std::string& id, const std::string& body,
                          TimePoint received_at) {
    const auto quoted = [](const std::string& text) {
        std::string out = "'";
        for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
        return out + "'";
    };
    sql.exec(
        "INSERT INTO deliveries (source, provider, delivery_id, kind, forge_event, received_at, "
        "headers, body, body_sha256) VALUES ('github-main', 'github', convert_to(" +
        quoted(id) + ", 'UTF8'), 'push', convert_to('push', 'UTF8'), " +
        std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(received_at.time_since_epoch())
                .count()) +
        ", convert_to('[]', 'UTF8'), convert_to(" + quoted(body) + ", 'UTF8'), " +
        quoted(sha256_hex(body)) + ")");
}

/// Takes a database back to what version 6 was: without the indexes version 7 added.
void downgrade_to_version_6(Sql& sql) {
    downgrade_to_version_7(sql);
    sql.exec(
        "DROP INDEX deliveries_received_at; DROP INDEX triggers_outcome_stale; "
        "UPDATE hookrelay_schema SET version = 6");
}

/// Takes a database back to what version 5 was: bodies compressed with pglz, the default.
void downgrade_to_version_5(Sql& sql) {
    downgrade_to_version_6(sql);
    sql.exec(
        "ALTER TABLE deliveries ALTER COLUMN body SET COMPRESSION pglz; "
        "UPDATE hookrelay_schema SET version = 5");
}

/// Takes a database back to what version 4 was: without what versions 5 to 7 added.
void downgrade_to_version_4(Sql& sql) {
    downgrade_to_version_5(sql);
    sql.exec("DROP TABLE unmatched; UPDATE hookrelay_schema SET version = 4");
}

/// Takes a database back to what version 3 was: without what versions 4 to 7 added.
void downgrade_to_version_3(Sql& sql) {
    downgrade_to_version_4(sql);
    sql.exec(
        "DROP TABLE scans; "
        "DROP INDEX triggers_coalesce_open; DROP INDEX triggers_coalesce_delivered; "
        "ALTER TABLE triggers DROP COLUMN coalesce, DROP COLUMN coalesce_scope, "
        "DROP COLUMN cancel_superseded, DROP COLUMN multibranch, DROP COLUMN scan_only, "
        "DROP COLUMN superseded_by, DROP CONSTRAINT triggers_state_check; "
        "ALTER TABLE triggers ADD CONSTRAINT triggers_state_check "
        "CHECK (state IN ('pending', 'retrying', 'delivered', 'dead')); "
        "UPDATE hookrelay_schema SET version = 3");
}

/// Takes a database back to what version 2 was: without what versions 3 to 7 added.
void downgrade_to_version_2(Sql& sql) {
    downgrade_to_version_3(sql);
    sql.exec(
        "DROP INDEX triggers_queue_url; "
        "ALTER TABLE deliveries DROP COLUMN repository, DROP COLUMN ref; "
        "ALTER TABLE triggers DROP COLUMN follow, DROP COLUMN status_target, DROP COLUMN build, "
        "DROP COLUMN outcome, DROP COLUMN follow_due_at, DROP COLUMN follow_claim_id, "
        "DROP COLUMN follow_owner, DROP COLUMN follow_expires_at, DROP COLUMN follow_tries, "
        "DROP COLUMN status_wanted, DROP COLUMN status_wanted_seq, "
        "DROP COLUMN status_posted_seq, DROP COLUMN status_posted, DROP COLUMN status_tries, "
        "DROP COLUMN status_error, DROP COLUMN status_due_at, DROP COLUMN status_claim_id, "
        "DROP COLUMN status_owner, DROP COLUMN status_expires_at; "
        "UPDATE hookrelay_schema SET version = 2");
}

/// The lines a store reports through on_error(), as they come.
class Reported {
  public:
    explicit Reported(PostgresStore& store) : state_(std::make_shared<State>()) {
        store.on_error([state = state_](std::string_view line) {
            std::lock_guard lock(state->mutex);
            state->lines.emplace_back(line);
        });
    }
    std::vector<std::string> lines() const {
        std::lock_guard lock(state_->mutex);
        return state_->lines;
    }

  private:
    struct State {
        std::mutex mutex;
        std::vector<std::string> lines;
    };
    std::shared_ptr<State> state_;
};

/// The instance-a pool's connections to this test's database (other tests on the shared server
/// use the same instance id).
const std::string k_pool_a =
    "application_name = 'hookrelay instance-a' AND datname = current_database()";
std::string pool_connections(Sql& sql) {
    return sql.value("SELECT count(*) FROM pg_stat_activity WHERE " + k_pool_a);
}

/// The numbers the deliveries' identity column has drawn (rolled-back inserts count too).
std::string delivery_numbers_drawn(Sql& sql) {
    return sql.value("SELECT last_value FROM " +
                     sql.value("SELECT pg_get_serial_sequence('deliveries', 'seq')"));
}

/// The seq of the n-th delivery stored (the pool's warm-up at open drew the first numbers).
std::function<std::int64_t(std::int64_t)> nth_delivery(Sql& sql) {
    const std::int64_t before_first = std::stoll(sql.value("SELECT min(seq) FROM deliveries")) - 1;
    return [before_first](std::int64_t n) { return before_first + n; };
}

class PostgresStoreTest : public ::testing::Test {
  protected:
    std::shared_ptr<PostgresStore> open(std::string id = "instance-a") {
        return open_or_throw(pg_config(db_.conninfo()), std::move(id));
    }
    /// instance-a keeping deliveries for an hour: a prune pass removes what came before.
    std::shared_ptr<PostgresStore> open_keeping_an_hour() {
        StoreConfig config = pg_config(db_.conninfo());
        config.retention = 1h;
        return open_or_throw(config, "instance-a");
    }

    TestDatabase db_;
    const TimePoint base_ = now_ms();
};

TEST_F(PostgresStoreTest, BytesThatAreNotUtf8ComeBackUnchangedFromEveryColumn) {
    auto store = open();
    TriggerRequest t = trigger();
    t.parameters = {{"RAW", std::string("\xff\xfe", 2)}, {"NUL", std::string("a\0b", 3)}};
    t.cause = std::string("cause \xc3\x28", 8);
    DeliveryRecord d = delivery(std::string("id-\xff", 4), base_);
    d.forge_event = std::string("push\xfe", 5);
    d.body = std::string("{\"x\":\"\xfe\"}");
    d.headers.emplace_back("X-Raw", std::string("\xc3\x28", 2));
    accept(*store, d, {t});

    const auto batch = claim(*store, "ci", base_);
    ASSERT_EQ(batch.claims.size(), 1u);
    EXPECT_EQ(batch.claims[0].trigger.delivery_id, d.delivery_id);
    EXPECT_EQ(batch.claims[0].trigger.request.parameters, t.parameters);
    EXPECT_EQ(batch.claims[0].trigger.request.cause, t.cause);
    TriggerUpdate u = finish(batch.claims[0].trigger.id, TriggerState::dead, base_);
    u.attempt.outcome = std::string("HTTP 500 \xff", 10);
    u.last_outcome = u.attempt.outcome;
    u.attempt.queue_url = std::string("http://j/\xfe", 10);
    EXPECT_EQ(complete(*store, batch.claims[0].claim_id, u), Completion::applied);

    const auto detail = get(*store, "github-main", d.delivery_id);
    ASSERT_TRUE(detail);
    EXPECT_EQ(detail->summary.forge_event, d.forge_event);
    EXPECT_EQ(detail->body, d.body);
    EXPECT_EQ(detail->headers, d.headers);
    ASSERT_EQ(detail->triggers.size(), 1u);
    EXPECT_EQ(detail->triggers[0].trigger.last_outcome, u.last_outcome);
    EXPECT_EQ(detail->triggers[0].trigger.queue_url, u.attempt.queue_url);
    ASSERT_EQ(detail->triggers[0].attempts.size(), 1u);
    EXPECT_EQ(detail->triggers[0].attempts[0].outcome, u.attempt.outcome);

    JenkinsHold h;
    h.reason = std::string("reset \xff", 7);
    h.since = h.next_probe_at = base_;
    hold(*store, "ci", h);
    EXPECT_EQ(holds(*store).at("ci").reason, h.reason);
}

TEST_F(PostgresStoreTest, ManyDeliveriesPostedToTwoInstancesAtOnceAreEachAcceptedOnce) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    constexpr int k_deliveries = 40;
    std::vector<DeliveryRecord> deliveries;
    for (int i = 0; i < k_deliveries; ++i) {
        deliveries.push_back(delivery("d-" + std::to_string(i), base_));
    }
    int accepted = 0, duplicates = 0;
    for (auto& r : submit_everywhere({a.get(), b.get()}, deliveries)) {
        ASSERT_TRUE(r) << r.error().message();
        (r->duplicate ? duplicates : accepted) += 1;
    }
    EXPECT_EQ(accepted, k_deliveries);
    EXPECT_EQ(duplicates, k_deliveries);
    EXPECT_EQ(Sql(db_.conninfo()).value("SELECT count(*) FROM triggers"),
              std::to_string(k_deliveries));
}

TEST_F(PostgresStoreTest, TheSameBodyPostedToTwoInstancesAtOnceIsAcceptedOnce) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    constexpr int k_bodies = 20;
    std::vector<DeliveryRecord> deliveries;
    for (int i = 0; i < k_bodies; ++i) {
        deliveries.push_back(with_body(delivery("", base_), "body " + std::to_string(i)));
    }
    int accepted = 0;
    for (auto& r : submit_everywhere({a.get(), b.get()}, deliveries)) {
        ASSERT_TRUE(r) << r.error().message();
        if (!r->duplicate) ++accepted;
    }
    EXPECT_EQ(accepted, k_bodies);
}

TEST_F(PostgresStoreTest, MaxInFlightHoldsRoundAfterRoundOfClaimsFromTwoInstancesAtOnce) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    for (int i = 0; i < 30; ++i) accept(*a, delivery("d-" + std::to_string(i), base_), {trigger()});
    Sql sql(db_.conninfo());
    for (int round = 0; round < 10; ++round) {
        std::atomic<std::size_t> claimed{0};
        std::thread ta([&] { claimed += claim(*a, "ci", base_, 5, 3).claims.size(); });
        std::thread tb([&] { claimed += claim(*b, "ci", base_, 5, 3).claims.size(); });
        ta.join();
        tb.join();
        EXPECT_EQ(claimed.load(), 3u) << "round " << round;
        sql.exec(
            "UPDATE triggers SET claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL");
    }
}

TEST_F(PostgresStoreTest, FollowMaxInFlightHoldsRoundAfterRoundOfChoreClaimsFromTwoInstances) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    for (int i = 0; i < 30; ++i) {
        accept(*a, delivery("d-" + std::to_string(i), base_), {followed()});
    }
    for (const auto& c : claim(*a, "ci", base_, 100).claims) {
        const BuildRecord build = queued_build("http://jenkins/queue/item/7/", base_);
        ASSERT_EQ(complete(*a, c.claim_id, delivered(c.trigger.id, base_, build, base_)),
                  Completion::applied);
    }
    Sql sql(db_.conninfo());
    for (int round = 0; round < 10; ++round) {
        std::atomic<std::size_t> claimed{0};
        std::thread ta(
            [&] { claimed += claim_chores(*a, Chore::follow, "ci", base_, 5, 3).claims.size(); });
        std::thread tb(
            [&] { claimed += claim_chores(*b, Chore::follow, "ci", base_, 5, 3).claims.size(); });
        ta.join();
        tb.join();
        EXPECT_EQ(claimed.load(), 3u) << "round " << round;
        sql.exec(
            "UPDATE triggers SET follow_claim_id = NULL, follow_owner = NULL, "
            "follow_expires_at = NULL");
    }
}

TEST_F(PostgresStoreTest, AConnectionTheServerClosedWhileIdleIsReplacedBeforeUse) {
    PostgresOptions options = pg_options("instance-a");
    options.heartbeat_interval = 1h;  // nothing but the submit below touches the pool
    std::string why;
    auto opened = PostgresStore::open(pg_config(db_.conninfo()), options, &why);
    ASSERT_TRUE(opened) << why;
    auto store = *opened;
    accept(*store, delivery("before", base_), {trigger()});
    // As a server restart or pg_terminate_backend does: the idle connection is told goodbye.
    Sql sql(db_.conninfo());
    EXPECT_NE(sql.value("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE " +
                        k_pool_a),
              "0");
    ASSERT_TRUE(eventually([&] { return pool_connections(sql) == "0"; }));
    auto after = submit(*store, delivery("after", base_), {trigger()});
    EXPECT_TRUE(after) << after.error().message();
}

// A server process reads the catalog and plans a statement the first time it runs it: the first
// webhooks after a start would each wait for that on a connection of their own. The pool's
// connections are made at open, each having run every kind of submit, and nothing of it stays.
TEST_F(PostgresStoreTest, EveryConnectionOfThePoolHasRunEachKindOfSubmitBeforeTheStoreOpens) {
    auto store = open();
    Sql sql(db_.conninfo());
    EXPECT_EQ(pool_connections(sql), "4");  // pg_config()'s pool_size
    // Rolled back, the submits still drew their numbers: four kinds on each connection.
    EXPECT_EQ(delivery_numbers_drawn(sql), "16");
    for (const char* table : {"deliveries", "triggers", "unmatched", "bodies"}) {
        EXPECT_EQ(sql.value(std::string("SELECT count(*) FROM ") + table), "0") << table;
    }
    EXPECT_TRUE(list(*store, {}).items.empty());
    const auto r = submit(*store, delivery("first", base_), {trigger()});
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->trigger_ids.size(), 1u);
}

// Up to four connections are made at start, whatever pool_size allows beyond; a pool of one (the
// smallest pool_size) opens too: the migration's connection is given back before the steps after
// it take theirs (before, open() waited for a second connection and failed with store_busy).
TEST(PostgresStorePool, MakesUpToFourConnectionsAtStartAndOpensWithOne) {
    for (const unsigned size : {1u, 2u, 6u}) {
        TestDatabase db;
        StoreConfig config = pg_config(db.conninfo());
        config.postgres.pool_size = size;
        auto store = open_or_throw(config, "instance-a");
        Sql sql(db.conninfo());
        const unsigned made = std::min(size, 4u);
        EXPECT_EQ(pool_connections(sql), std::to_string(made)) << "pool_size " << size;
        EXPECT_EQ(delivery_numbers_drawn(sql), std::to_string(4 * made)) << "pool_size " << size;
        const auto r = submit(*store, delivery("first", now_ms()), {trigger()});
        ASSERT_TRUE(r) << "pool_size " << size << ": " << r.error().message();
        const auto batch = claim(*store, "ci", now_ms());
        EXPECT_EQ(batch.claims.size(), 1u) << "pool_size " << size;
    }
}

TEST_F(PostgresStoreTest, AWarmUpThatFailsIsReportedAndTheStoreStillAcceptsWebhooks) {
    open().reset();  // the schema
    Sql sql(db_.conninfo());
    sql.exec(R"sql(
CREATE FUNCTION refuse_warm_up() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.source = 'hookrelay-warm-up' THEN RAISE EXCEPTION 'no warm-ups here'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_warm_up BEFORE INSERT ON deliveries
    FOR EACH ROW EXECUTE FUNCTION refuse_warm_up())sql");
    auto store = open();
    const Reported reported(*store);  // registered after open: told what open() reported
    ASSERT_TRUE(eventually([&] { return !reported.lines().empty(); }));
    const std::string error = reported.lines().front();
    EXPECT_NE(error.find("warming a connection up"), std::string::npos) << error;
    EXPECT_NE(error.find("no warm-ups here"), std::string::npos) << error;
    const auto r = submit(*store, delivery("first", base_), {trigger()});
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->trigger_ids.size(), 1u);
}

/// Starts complete() for each (claim id, update) without waiting for any; the answers, in order.
std::vector<std::future<result<Completion>>> complete_at_once(
    Store& store, std::vector<std::pair<std::string, TriggerUpdate>> work) {
    std::vector<std::future<result<Completion>>> answers;
    for (auto& [claim_id, update] : work) {
        auto promise = std::make_shared<std::promise<result<Completion>>>();
        answers.push_back(promise->get_future());
        store.complete(claim_id, std::move(update),
                       [promise](result<Completion> r) { promise->set_value(std::move(r)); });
    }
    return answers;
}

/// Holds the row lock of one trigger, so that a transaction writing it waits until release().
class RowLock {
  public:
    RowLock(const std::string& conninfo, const std::string& trigger_id) : sql_(conninfo) {
        sql_.exec("BEGIN");
        sql_.exec("SELECT 1 FROM triggers WHERE id = '" + trigger_id + "' FOR UPDATE");
    }
    void release() { sql_.exec("COMMIT"); }

  private:
    Sql sql_;
};

/// Whether some statement of this database waits for a row lock.
bool a_statement_waits_for_a_lock(Sql& sql) {
    return sql.value(
               "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
               "AND datname = current_database()") != "0";
}

/// `n` triggers claimed, and the answer to the first one's outcome (dead), which the store is
/// recording while `lock` holds its row: outcomes sent now arrive while it waits.
struct FirstOutcomeWaiting {
    ClaimBatch batch;
    std::future<result<Completion>> first_answer;
};
FirstOutcomeWaiting first_outcome_waiting(Store& store, const std::string& conninfo, int n,
                                          TimePoint at, std::optional<RowLock>& lock) {
    for (int i = 0; i < n; ++i) accept(store, delivery("d-" + std::to_string(i), at), {trigger()});
    FirstOutcomeWaiting out;
    out.batch = claim(store, "ci", at, static_cast<std::size_t>(n));
    if (out.batch.claims.size() != static_cast<std::size_t>(n)) {
        throw std::runtime_error("claimed " + std::to_string(out.batch.claims.size()));
    }
    const Claim& first = out.batch.claims.front();
    lock.emplace(conninfo, first.trigger.id);
    std::vector<std::pair<std::string, TriggerUpdate>> work{
        {first.claim_id, finish(first.trigger.id, TriggerState::dead, at)}};
    out.first_answer = std::move(complete_at_once(store, std::move(work)).front());
    Sql sql(conninfo);
    if (!eventually([&] { return a_statement_waits_for_a_lock(sql); })) {
        throw std::runtime_error("the first outcome never waited for the row lock");
    }
    return out;
}

TEST_F(PostgresStoreTest, OutcomesThatArriveWhileOneIsRecordedShareOneTransaction) {
    auto store = open();
    Sql sql(db_.conninfo());
    // The first outcome goes alone and waits for a lock; the other 15 arrive meanwhile.
    std::optional<RowLock> lock;
    auto [batch, first_answer] = first_outcome_waiting(*store, db_.conninfo(), 16, base_, lock);
    std::vector<std::pair<std::string, TriggerUpdate>> rest;
    for (std::size_t i = 1; i < batch.claims.size(); ++i) {
        const Claim& c = batch.claims[i];
        rest.emplace_back(c.claim_id, finish(c.trigger.id, TriggerState::dead, base_));
    }
    auto answers = complete_at_once(*store, std::move(rest));
    lock->release();

    answers.insert(answers.begin(), std::move(first_answer));
    for (auto& answer : answers) {
        ASSERT_EQ(answer.wait_for(k_deadline), std::future_status::ready);
        EXPECT_EQ(value_of(answer.get(), "complete"), Completion::applied);
    }
    EXPECT_EQ(sql.value("SELECT count(*) FROM triggers WHERE state = 'dead' AND claim_id IS NULL"),
              "16");
    // Each transaction's attempts carry its id: one for the first, one for the 15 others.
    EXPECT_EQ(sql.value("SELECT count(DISTINCT xmin::text) FROM attempts"), "2");
}

TEST_F(PostgresStoreTest, AnOutcomeThatFailsInASharedTransactionFailsAloneAndTheOthersAreRecorded) {
    auto store = open();
    Sql sql(db_.conninfo());
    sql.exec(R"sql(
CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF convert_from(NEW.outcome, 'UTF8') = 'poison' THEN RAISE EXCEPTION 'no poison here'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_poison BEFORE INSERT ON attempts
    FOR EACH ROW EXECUTE FUNCTION refuse_poison())sql");
    std::optional<RowLock> lock;
    auto [batch, first_answer] = first_outcome_waiting(*store, db_.conninfo(), 8, base_, lock);
    // Seven arrive while the first waits, and go together; the fourth of them is refused.
    std::vector<std::pair<std::string, TriggerUpdate>> rest;
    for (std::size_t i = 1; i < batch.claims.size(); ++i) {
        const Claim& c = batch.claims[i];
        TriggerUpdate u = finish(c.trigger.id, TriggerState::dead, base_);
        if (i == 4) u.attempt.outcome = "poison";
        rest.emplace_back(c.claim_id, std::move(u));
    }
    auto answers = complete_at_once(*store, std::move(rest));
    lock->release();

    ASSERT_EQ(first_answer.wait_for(k_deadline), std::future_status::ready);
    EXPECT_EQ(value_of(first_answer.get(), "complete"), Completion::applied);
    for (std::size_t i = 0; i < answers.size(); ++i) {
        ASSERT_EQ(answers[i].wait_for(k_deadline), std::future_status::ready);
        const result<Completion> r = answers[i].get();
        if (i + 1 == 4) {
            EXPECT_FALSE(r) << "the refused outcome was answered as recorded";
        } else {
            ASSERT_TRUE(r) << "outcome " << i + 1 << ": " << r.error().message();
            EXPECT_EQ(*r, Completion::applied) << "outcome " << i + 1;
        }
    }
    EXPECT_EQ(sql.value("SELECT count(*) FROM triggers WHERE state = 'dead'"), "7");
    // The refused one keeps its claim: it is tried again once the claim runs out.
    EXPECT_EQ(sql.value("SELECT state || ' ' || (claim_id IS NOT NULL) FROM triggers WHERE id = '" +
                        batch.claims[4].trigger.id + "'"),
              "pending true");
}

TEST_F(PostgresStoreTest, PruneRunsOnOneInstanceAtATime) {
    StoreConfig config = pg_config(db_.conninfo());
    config.retention = 1h;
    auto a = open_or_throw(config, "instance-a");
    accept(*a, delivery("old", base_ - 2h), {});
    // Another instance pruning holds the lock: this one skips.
    Sql other(db_.conninfo());
    other.value("SELECT pg_advisory_lock(x'68726c61'::integer, 2)");
    EXPECT_EQ(prune(*a, base_), 0u);
    EXPECT_TRUE(get(*a, "github-main", "old"));
    other.value("SELECT pg_advisory_unlock(x'68726c61'::integer, 2)");
    EXPECT_EQ(prune(*a, base_), 1u);
    EXPECT_FALSE(get(*a, "github-main", "old"));
}

// A prune pass runs on a connection of its own: with a pool of one, webhooks are still accepted
// while a pass runs (here one that waits for a row lock of the delivery it removes).
TEST_F(PostgresStoreTest, WebhooksAreAcceptedWhileAPrunePassRunsWithAPoolOfOne) {
    StoreConfig config = pg_config(db_.conninfo());
    config.retention = 1h;
    config.postgres.pool_size = 1;
    auto a = open_or_throw(config, "instance-a");
    accept(*a, delivery("old", base_ - 2h), {});
    Sql sql(db_.conninfo());
    Sql locker(db_.conninfo());
    locker.exec("BEGIN");
    locker.exec("SELECT 1 FROM deliveries WHERE delivery_id = 'old' FOR UPDATE");
    auto promise = std::make_shared<std::promise<result<std::size_t>>>();
    auto pruned = promise->get_future();
    a->prune(base_, [promise](result<std::size_t> r) { promise->set_value(std::move(r)); });
    ASSERT_TRUE(eventually([&] { return a_statement_waits_for_a_lock(sql); }));

    const auto r = submit(*a, delivery("new", base_), {trigger()});
    ASSERT_TRUE(r) << "refused while the pass ran: " << r.error().message();
    EXPECT_EQ(claim(*a, "ci", base_).claims.size(), 1u);

    locker.exec("COMMIT");
    ASSERT_EQ(pruned.wait_for(k_deadline), std::future_status::ready);
    EXPECT_EQ(value_of(pruned.get(), "prune"), 1u);
    EXPECT_FALSE(get(*a, "github-main", "old"));
    EXPECT_TRUE(get(*a, "github-main", "new"));
}

// --- Schema -----------------------------------------------------------------------------------

TEST_F(PostgresStoreTest, RefusesASchemaNewerThanItKnows) {
    open()->close();
    Sql(db_.conninfo()).exec("UPDATE hookrelay_schema SET version = 99");
    std::string why;
    auto store = PostgresStore::open(pg_config(db_.conninfo()), pg_options("instance-a"), &why);
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error(), make_error_code(errc::store_incompatible));
    EXPECT_FALSE(is_retryable(store.error()));
    EXPECT_NE(why.find("schema version 99 is newer than this hookrelay knows (" +
                       k_current_version + ")"),
              std::string::npos)
        << why;
}

TEST_F(PostgresStoreTest, UpgradesAVersion1DatabaseAtStartKeepingItsDeliveries) {
    {
        auto store = open();
        accept(*store, delivery("old-1", base_), {trigger()});
        store->close();
    }
    // Back to what version 1 was: deliveries without rule_reasons.
    Sql sql(db_.conninfo());
    downgrade_to_version_2(sql);
    sql.exec(
        "ALTER TABLE deliveries DROP COLUMN rule_reasons; "
        "UPDATE hookrelay_schema SET version = 1");

    auto store = open();
    EXPECT_EQ(Sql(db_.conninfo()).value("SELECT version FROM hookrelay_schema"), k_current_version);
    const auto old = get(*store, "", "old-1");
    ASSERT_TRUE(old);
    EXPECT_EQ(old->triggers.size(), 1u);
    // Recorded before rule reasons were kept: unknown, not "none".
    EXPECT_FALSE(old->rule_reasons);

    auto skipped = delivery("new-1", base_);
    const std::vector<RuleReason> why = {{"prs", "event: 'push' matches none of [pull_request]"}};
    skipped.rule_reasons = rule_reasons_json(why);
    accept(*store, skipped, {});
    const auto reasons = get(*store, "", "new-1");
    ASSERT_TRUE(reasons && reasons->rule_reasons);
    EXPECT_EQ(*reasons->rule_reasons, why);
}

TEST_F(PostgresStoreTest, UpgradesAVersion2DatabaseAtStartGivingItsTriggersTheirOutcomes) {
    {
        auto store = open();
        accept(*store, delivery("d-pending", base_), {trigger()});
        const auto delivered = accept(*store, delivery("d-delivered", base_), {trigger()});
        settle(*store, "ci", finish(delivered.trigger_ids[0], TriggerState::delivered, base_));
        const auto dead = accept(*store, delivery("d-dead", base_), {trigger()});
        settle(*store, "ci", finish(dead.trigger_ids[0], TriggerState::dead, base_));
        accept(*store, delivery("d-unmatched", base_), {});
        store->close();
    }
    Sql sql(db_.conninfo());
    downgrade_to_version_2(sql);

    auto store = open();
    EXPECT_EQ(sql.value("SELECT version FROM hookrelay_schema"), k_current_version);
    const std::vector<std::pair<std::string, std::string>> none;
    EXPECT_EQ(outcomes_of(*store, "d-pending"), (decltype(none){{"ci", "pending"}}));
    EXPECT_EQ(outcomes_of(*store, "d-delivered"), (decltype(none){{"ci", "delivered"}}));
    EXPECT_EQ(outcomes_of(*store, "d-dead"), (decltype(none){{"ci", "dead"}}));
    EXPECT_EQ(outcomes_of(*store, "d-unmatched"), none);
    DeliveryQuery query;
    query.outcome = "dead";
    const auto page = list(*store, query);
    ASSERT_EQ(page.items.size(), 1u);
    EXPECT_EQ(page.items[0].delivery_id, "d-dead");
    const auto old = get(*store, "", "d-delivered");
    ASSERT_TRUE(old);
    EXPECT_EQ(old->summary.repository, "");
    EXPECT_EQ(old->triggers.at(0).trigger.request.follow, FollowMode::none);
    EXPECT_FALSE(old->triggers.at(0).trigger.request.status);
    EXPECT_EQ(old->triggers.at(0).trigger.build, BuildRecord{});
    EXPECT_FALSE(old->triggers.at(0).trigger.following);

    // New triggers are followed.
    const auto receipt = accept(*store, delivery("d-new", base_), {followed()});
    settle(*store, "ci",
           delivered(receipt.trigger_ids[0], base_,
                     queued_build("http://jenkins/queue/item/7/", base_), base_));
    EXPECT_EQ(ids_of(claim_chores(*store, Chore::follow, "ci", base_)), receipt.trigger_ids);
}

TEST_F(PostgresStoreTest, TriggersThatVersion2InstancesFinishAfterTheMigrationGetTheirOutcome) {
    auto store = open();
    accept(*store, delivery("d-1", base_), {});
    // What an instance of version 2, still running during the rollout, writes: the columns it
    // knows.
    const std::string at = std::to_string(
        std::chrono::duration_cast<std::chrono::milliseconds>(base_.time_since_epoch()).count());
    Sql sql(db_.conninfo());
    for (const char* id : {"old-1", "old-2"}) {
        sql.exec(
            "INSERT INTO triggers (id, delivery, rule, jenkins, job, parameters, cause, state, "
            "attempts, created_at, next_attempt_at, updated_at, last_outcome, queue_url) "
            "SELECT '" +
            std::string(id) + "', seq, 'push', 'ci', '[]', '[]', '', 'pending', 0, " + at + ", " +
            at + ", " + at + ", '', '' FROM deliveries");
    }
    using Outcomes = std::vector<std::pair<std::string, std::string>>;
    EXPECT_EQ(outcomes_of(*store, "d-1"), (Outcomes{{"ci", "pending"}, {"ci", "pending"}}));
    sql.exec("UPDATE triggers SET state = 'delivered' WHERE id = 'old-1'");
    sql.exec("UPDATE triggers SET state = 'dead' WHERE id = 'old-2'");

    prune(*store, base_);
    EXPECT_EQ(outcomes_of(*store, "d-1"), (Outcomes{{"ci", "delivered"}, {"ci", "dead"}}));
}

TEST_F(PostgresStoreTest, RefusesADatabaseWhoseTablesAreNotHookrelays) {
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
    EXPECT_EQ(sql.value("SELECT version FROM hookrelay_schema"), k_current_version);
    ASSERT_TRUE(stores[0]);
    accept(*stores[0], delivery("d-1", base_), {trigger()});
    EXPECT_EQ(instances(*stores[0]).size(), static_cast<std::size_t>(k_instances));
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

// A '/' in the password, not percent-encoded as a URI needs it: libpq then takes the password's
// first part for the port and its rest for the database name, and its message quotes them.
TEST(PostgresStorePassword, IsNotInTheErrorForAUrlWhosePasswordHoldsASlash) {
    StoreConfig config =
        pg_config("postgresql://hookrelay:Sup3r/s3cret@/hookrelay?host=/nonexistent-dir");
    std::string why;
    auto store = PostgresStore::open(config, pg_options("instance-a"), &why);
    ASSERT_FALSE(store);
    EXPECT_EQ(why.find("Sup3r"), std::string::npos) << why;
    EXPECT_EQ(why.find("s3cret"), std::string::npos) << why;
}

TEST(PostgresStorePassword, IsNotInTheErrorForAKeyValueString) {
    StoreConfig config =
        pg_config("host=/nonexistent-dir password='Sup3r-s3cret' dbname=hookrelay");
    std::string why;
    auto store = PostgresStore::open(config, pg_options("instance-a"), &why);
    ASSERT_FALSE(store);
    EXPECT_EQ(why.find(k_password), std::string::npos) << why;
}

// A password of a few letters is hidden where it stands as a word of its own, not inside every
// word of libpq's message that holds its letters ("***rver" for "server" with "se").
TEST(PostgresStorePassword, AShortOneDoesNotGarbleTheMessageAndIsStillHidden) {
    {
        StoreConfig config =
            pg_config("postgresql://hookrelay:se@/hookrelay?host=/nonexistent-dir&port=5432");
        std::string why;
        auto store = PostgresStore::open(config, pg_options("instance-a"), &why);
        ASSERT_FALSE(store);
        EXPECT_NE(why.find("connection to server on socket \"/nonexistent-dir/.s.PGSQL.5432\""),
                  std::string::npos)
            << why;
        EXPECT_EQ(why.find("***"), std::string::npos) << why;
        // The server named in a fixed order (libpq lists user first), as the docs quote it.
        EXPECT_NE(why.find("PostgreSQL at host=/nonexistent-dir port=5432 dbname=hookrelay "
                           "user=hookrelay: "),
                  std::string::npos)
            << why;
    }
    {
        // libpq's own message quotes the password: invalid percent-encoded token: "se%zz"
        StoreConfig config = pg_config("postgresql://hookrelay:se%zz@/hookrelay");
        std::string why;
        auto store = PostgresStore::open(config, pg_options("instance-a"), &why);
        ASSERT_FALSE(store);
        EXPECT_EQ(why.find("se%zz"), std::string::npos) << why;
        EXPECT_NE(why.find("invalid percent-encoded token: \"***\""), std::string::npos) << why;
    }
    {
        // Where it stands alone in a key/value string's message, it is hidden too.
        StoreConfig config = pg_config("host=/nonexistent-dir password=se dbname=se");
        std::string why;
        auto store = PostgresStore::open(config, pg_options("instance-a"), &why);
        ASSERT_FALSE(store);
        EXPECT_NE(why.find("dbname=***"), std::string::npos) << why;
        EXPECT_NE(why.find("server on socket"), std::string::npos) << why;
    }
}

// The scrub itself: a short password hidden where it is a word of its own, wherever that is in the
// text and however often; a password of characters that are no word characters hidden anywhere.
TEST(PostgresStorePassword, AShortOneIsHiddenWhereverItStandsAsAWord) {
    std::string why;
    const auto pg = postgres::ConnInfo::parse("postgresql://u:pg@/db?host=/nowhere", &why);
    ASSERT_TRUE(pg) << why;
    EXPECT_EQ(pg->scrub("pg at the start, 'pg' quoted, :pg@ in a URL, pg_hba.conf, pgpass, pg"),
              "*** at the start, '***' quoted, :***@ in a URL, pg_hba.conf, pgpass, ***");
    const auto common = postgres::ConnInfo::parse("postgresql://u:postgres@/db", &why);
    ASSERT_TRUE(common) << why;
    EXPECT_EQ(common->scrub("postgresql://u:postgres@/db"), "postgresql://u:***@/db");
    const auto marks = postgres::ConnInfo::parse("postgresql://u:!!@/db", &why);
    ASSERT_TRUE(marks) << why;
    EXPECT_EQ(marks->scrub("a!!b and !!"), "a***b and ***");
    // Eight characters and more: hidden inside words too.
    const auto longer = postgres::ConnInfo::parse("postgresql://u:Sup3rs3cret@/db", &why);
    ASSERT_TRUE(longer) << why;
    EXPECT_EQ(longer->scrub("xSup3rs3cretx"), "x***x");
}

// --- Coalescing across instances ------------------------------------------------------------

TriggerRequest coalesced(std::string jenkins = "ci", std::string key = "acme/app:main") {
    TriggerRequest t = trigger(std::move(jenkins));
    t.coalesce = std::move(key);
    return t;
}

TEST_F(PostgresStoreTest, TwoInstancesSubmittingOneScopeAtOnceLeaveOneOpenTrigger) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    constexpr int k_deliveries = 50;
    // Each thread submits its half through its instance, one delivery at a time (a transaction
    // each, so the two instances' transactions overlap as often as they can), interleaved.
    std::atomic<std::size_t> listed{0};
    std::mutex mutex;
    std::vector<std::string> failures;
    const auto submit_half = [&](Store& store, int first) {
        for (int i = first; i < k_deliveries; i += 2) {
            const auto r = submit(store, delivery("c-" + std::to_string(i), base_), {coalesced()});
            if (r) {
                listed += r->superseded.size();
            } else {
                std::lock_guard lock(mutex);
                failures.push_back(r.error().message());
            }
        }
    };
    std::thread ta([&] { submit_half(*a, 0); });
    std::thread tb([&] { submit_half(*b, 1); });
    ta.join();
    tb.join();
    EXPECT_TRUE(failures.empty()) << failures.front();

    EXPECT_EQ(open_count(*a, "ci"), 1u);
    EXPECT_EQ(claim(*b, "ci", base_).claims.size(), 1u);
    Sql sql(db_.conninfo());
    EXPECT_EQ(sql.value("SELECT count(*) FROM triggers WHERE state = 'superseded'"), "49");
    EXPECT_EQ(listed.load(), 49u);
    // Each was superseded by a trigger of a later delivery.
    EXPECT_EQ(sql.value("SELECT count(*) FROM triggers o WHERE o.state = 'superseded' AND NOT "
                        "EXISTS (SELECT 1 FROM triggers n WHERE n.id = o.superseded_by AND "
                        "n.delivery > o.delivery)"),
              "0");
}

TEST_F(PostgresStoreTest, TwoInstancesWhoseSubmissionsOverlapLeaveOneOpenTrigger) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    const auto old = accept(*a, delivery("old", base_), {coalesced()});
    // A row lock on the old trigger keeps both submissions inside their transactions, each
    // having inserted its trigger, until both are waiting: they overlap for certain.
    Sql blocker(db_.conninfo());
    blocker.exec("BEGIN; SELECT 1 FROM triggers WHERE id = '" + old.trigger_ids[0] +
                 "' FOR UPDATE");
    std::optional<result<Receipt>> ra, rb;
    std::thread ta([&] { ra = submit(*a, delivery("new-a", base_), {coalesced()}); });
    std::thread tb([&] { rb = submit(*b, delivery("new-b", base_), {coalesced()}); });
    Sql watcher(db_.conninfo());
    const bool both_waiting = eventually([&] {
        return watcher.value(
                   "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                   "'Lock' AND datname = current_database()") == "2";
    });
    blocker.exec("COMMIT");
    ta.join();
    tb.join();
    ASSERT_TRUE(both_waiting);
    ASSERT_TRUE(ra && *ra && rb && *rb);

    EXPECT_EQ(open_count(*a, "ci"), 1u);
    EXPECT_EQ((*ra)->superseded.size() + (*rb)->superseded.size(), 2u);
}

TEST_F(PostgresStoreTest, AClaimAndASupersedeAtOnceNeverBothTakeATrigger) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    for (int round = 0; round < 20; ++round) {
        // A Jenkins of its own per round: the claim sees only this round's triggers.
        const std::string jenkins = "ci-" + std::to_string(round);
        const auto old =
            accept(*a, delivery("old-" + std::to_string(round), base_), {coalesced(jenkins)});
        ClaimBatch claimed;
        Receipt newer;
        std::thread tc([&] { claimed = claim(*a, jenkins, base_); });
        std::thread ts([&] {
            newer =
                accept(*b, delivery("new-" + std::to_string(round), base_), {coalesced(jenkins)});
        });
        tc.join();
        ts.join();
        const std::string& id = old.trigger_ids.at(0);
        const bool taken = std::any_of(claimed.claims.begin(), claimed.claims.end(),
                                       [&](const Claim& c) { return c.trigger.id == id; });
        const bool superseded = newer.superseded.size() == 1 && newer.superseded[0].first == id;
        EXPECT_NE(taken, superseded) << "round " << round;
        const auto h = history_of(*a, "old-" + std::to_string(round), id);
        EXPECT_EQ(h.trigger.state == TriggerState::superseded, superseded) << "round " << round;
    }
}

TEST_F(PostgresStoreTest, ARetryOnOneInstanceIsSupersededByATriggerSubmittedOnAnother) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    const auto old = accept(*a, delivery("old", base_), {coalesced()});
    const auto batch = claim(*a, "ci", base_);
    ASSERT_EQ(batch.claims.size(), 1u);
    // In flight: the newer trigger leaves it alone.
    const auto newer = accept(*b, delivery("new", base_), {coalesced()});
    EXPECT_TRUE(newer.superseded.empty());
    EXPECT_EQ(
        complete(*a, batch.claims[0].claim_id, retry(old.trigger_ids[0], base_ + 1min, base_)),
        Completion::superseded);
    const auto h = history_of(*b, "old", old.trigger_ids[0]);
    EXPECT_EQ(h.trigger.state, TriggerState::superseded);
    EXPECT_EQ(h.trigger.superseded_by, newer.trigger_ids[0]);
    EXPECT_EQ(h.trigger.last_outcome, superseded_outcome(newer.trigger_ids[0], "new"));
    EXPECT_EQ(h.attempts.size(), 1u);
    EXPECT_EQ(open_count(*b, "ci"), 1u);
}

TEST_F(PostgresStoreTest, ConcurrentScanRequestsOfTwoInstancesAreGrantedOnce) {
    auto a = open("instance-a");
    auto b = open("instance-b");
    for (int round = 0; round < 10; ++round) {
        const std::string project = "acme/app-" + std::to_string(round);
        const auto ask = [&](Store& store) {
            return value_of(wait_answer<result<ScanGate>>([&](auto done) {
                                store.request_scan("ci", project, base_, base_, 1min,
                                                   std::move(done));
                            }),
                            "request_scan");
        };
        ScanGate ga, gb;
        std::thread ta([&] { ga = ask(*a); });
        std::thread tb([&] { gb = ask(*b); });
        ta.join();
        tb.join();
        const int granted = (ga.verdict == ScanGate::Verdict::granted ? 1 : 0) +
                            (gb.verdict == ScanGate::Verdict::granted ? 1 : 0);
        EXPECT_EQ(granted, 1) << "round " << round;
        // The other one asked for a scan since base_: the granted one covers it.
        const auto& other = ga.verdict == ScanGate::Verdict::granted ? gb : ga;
        EXPECT_EQ(other.verdict, ScanGate::Verdict::covered) << "round " << round;
    }
}

TEST_F(PostgresStoreTest, UpgradesAVersion3DatabaseSoTriggersCanBeSuperseded) {
    {
        auto store = open();
        accept(*store, delivery("before", base_), {trigger()});
        store->close();
    }
    Sql sql(db_.conninfo());
    downgrade_to_version_3(sql);
    auto store = open();
    EXPECT_EQ(sql.value("SELECT version FROM hookrelay_schema"), k_current_version);
    const auto first = accept(*store, delivery("c-1", base_), {coalesced()});
    const auto second = accept(*store, delivery("c-2", base_), {coalesced()});
    ASSERT_EQ(second.superseded.size(), 1u);
    EXPECT_EQ(second.superseded[0], std::make_pair(first.trigger_ids[0], second.trigger_ids[0]));
    EXPECT_EQ(open_count(*store, "ci"), 2u);  // "before" and c-2
}

TEST_F(PostgresStoreTest, UpgradesAVersion4DatabaseListingItsDeliveriesWithoutTriggers) {
    {
        auto store = open();
        accept(*store, delivery("matched", base_), {trigger()});
        accept(*store, delivery("unmatched-1", base_), {});
        accept(*store, delivery("unmatched-2", base_), {});
        store->close();
    }
    Sql sql(db_.conninfo());
    downgrade_to_version_4(sql);
    auto store = open();
    EXPECT_EQ(sql.value("SELECT version FROM hookrelay_schema"), k_current_version);
    DeliveryQuery query;
    query.outcome = "unmatched";
    const auto names = [&] {
        std::vector<std::string> out;
        for (const auto& item : list(*store, query).items) out.push_back(item.delivery_id);
        return out;
    };
    EXPECT_EQ(names(), (std::vector<std::string>{"unmatched-2", "unmatched-1"}));
    accept(*store, delivery("unmatched-3", base_), {});
    ASSERT_EQ(add_triggers(*store, "", "unmatched-1", {trigger()}).size(), 1u);
    EXPECT_EQ(names(), (std::vector<std::string>{"unmatched-3", "unmatched-2"}));
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
    accept(*store, delivery("before", base_), {trigger()});
    server_.restart();
    // Every connection was cut. A connection found dead in the pool is replaced before use;
    // while the server still starts up, submits fail retryably; then they succeed again.
    int i = 0;
    ASSERT_TRUE(eventually([&] {
        auto r = submit(*store, delivery("after-" + std::to_string(i++), base_), {trigger()});
        if (!r) {
            EXPECT_TRUE(is_retryable(r.error())) << r.error().message();
        }
        return r.has_value();
    }));
    EXPECT_TRUE(store->health().ok);
    // Nothing answered as accepted was lost.
    std::set<std::string> ids;
    for (const Claim& c : claim(*store, "ci", base_).claims) ids.insert(c.trigger.delivery_id);
    EXPECT_TRUE(ids.contains("before"));
    EXPECT_TRUE(ids.contains("after-" + std::to_string(i - 1)));
}

TEST_F(PostgresStoreServerTrouble, FailsQuicklyWhileTheServerIsDownAndRecoversWhenItIsBack) {
    auto store = open();
    accept(*store, delivery("before", base_), {trigger()});
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
    // While the reconnect backoff runs, at once.
    auto quick = submit(*store, delivery("while-down-2", base_), {trigger()});
    ASSERT_FALSE(quick);
    EXPECT_EQ(quick.error(), make_error_code(errc::store_unavailable));

    server_.start_again();
    EXPECT_TRUE(eventually([&] { return store->health().ok; }))
        << "the heartbeat did not reconnect: " << store->health().detail;
    auto after = submit(*store, delivery("after", base_), {trigger()});
    ASSERT_TRUE(after) << after.error().message();
    EXPECT_FALSE(after->duplicate);
    EXPECT_FALSE(errors().empty());
    for (const std::string& line : errors()) {
        EXPECT_EQ(line.find(k_password), std::string::npos) << line;
    }
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

// A body over ~2 KB is compressed where PostgreSQL stores it: from version 6 on with lz4, where
// the server has it (Debian's PostgreSQL 15 does), at a fraction of pglz's CPU. A database
// upgraded from version 5 keeps its pglz bodies readable beside the new ones.
TEST_F(PostgresStoreTest, UpgradesAVersion5DatabaseToCompressNewBodiesWithLz4) {
    const auto push = [](const std::string& name) {
        std::string out = "{\"ref\":\"refs/heads/" + name + "\",\"commits\":[";
        for (int i = 0; i < 300; ++i) out += "{\"id\":" + std::to_string(i) + ",\"added\":[]},";
        return out + "{}]}";
    };
    Sql sql(db_.conninfo());
    const std::string offered = sql.value(
        "SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'");
    const std::string lz4_or_pglz = offered == "t" ? "lz4" : "pglz";
    const auto compression = [&](const std::string& id) {
        return sql.value(
            "SELECT pg_column_compression(body) FROM deliveries WHERE delivery_id = '" + id +
            "'::bytea");
    };
    open()->close();
    downgrade_to_version_5(sql);
    store_like_version_7(sql, "old", push("old"), base_);
    EXPECT_EQ(compression("old"), "pglz");

    auto store = open();
    EXPECT_EQ(sql.value("SELECT version FROM hookrelay_schema"), k_current_version);
    accept(*store, with_body(delivery("new", base_), push("new")), {trigger()});
    // Since version 8 a body is stored in the bodies table, its column compressed the same way.
    EXPECT_EQ(sql.value("SELECT pg_column_compression(b.body) FROM bodies b JOIN deliveries d ON "
                        "d.seq = b.delivery WHERE d.delivery_id = 'new'::bytea"),
              lz4_or_pglz);
    for (const std::string id : {"old", "new"}) {
        const auto detail = get(*store, "", id);
        ASSERT_TRUE(detail && detail->body) << id;
        EXPECT_EQ(*detail->body, push(id));
    }
}

// Version 10 does for the rule reasons what version 6 did for the body: with many rules they are
// most of a row (~86 bytes a rule).
TEST_F(PostgresStoreTest, UpgradesAVersion9DatabaseToCompressNewRuleReasonsWithLz4) {
    Sql sql(db_.conninfo());
    const std::string offered = sql.value(
        "SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'");
    std::vector<RuleReason> reasons;
    for (int i = 0; i < 1000; ++i) {
        reasons.push_back(
            {"rule-" + std::to_string(i),
             "repository: 'acme/app' matches none of [org/svc-" + std::to_string(i) + "]"});
    }
    const auto compression = [&](const std::string& id) {
        return sql.value(
            "SELECT pg_column_compression(rule_reasons) FROM deliveries WHERE delivery_id = '" +
            id + "'::bytea");
    };
    // The column's setting: 'p' pglz, 'l' lz4, '' the server's default (pglz).
    const auto setting = [&] {
        return sql.value(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = 'deliveries'::regclass "
            "AND attname = 'rule_reasons'");
    };
    open()->close();
    downgrade_to_version_9(sql);
    EXPECT_EQ(setting(), "p");
    auto store = open();
    EXPECT_EQ(setting(), offered == "t" ? "l" : "p");
    EXPECT_EQ(sql.value("SELECT version FROM hookrelay_schema"), k_current_version);
    auto d = delivery("many-reasons", base_);
    d.rule_reasons = rule_reasons_json(reasons);
    accept(*store, d, {});
    EXPECT_EQ(compression("many-reasons"), offered == "t" ? "lz4" : "pglz");
    const auto detail = get(*store, "", "many-reasons");
    ASSERT_TRUE(detail && detail->rule_reasons);
    EXPECT_EQ(*detail->rule_reasons, reasons);
}

// Version 7 adds two indexes to a stored database, in the migration's transaction, and drops
// none (dropping one would lock instances still running out of the table: schema.cpp).
TEST_F(PostgresStoreTest, UpgradesAVersion6DatabaseIndexingWhenDeliveriesWereReceived) {
    {
        auto store = open();
        accept(*store, delivery("early", base_ - 1h), {trigger()});
        accept(*store, delivery("late", base_), {trigger()});
        store->close();
    }
    Sql sql(db_.conninfo());
    downgrade_to_version_6(sql);
    auto store = open();
    EXPECT_EQ(sql.value("SELECT version FROM hookrelay_schema"), k_current_version);
    EXPECT_EQ(sql.value("SELECT string_agg(indexname, ' ' ORDER BY indexname) FROM pg_indexes "
                        "WHERE indexname IN ('deliveries_delivery_id', 'deliveries_received_at', "
                        "'triggers_outcome_stale')"),
              "deliveries_delivery_id deliveries_received_at triggers_outcome_stale");
    DeliveryQuery since;
    since.since = base_ - 1min;
    const auto page = list(*store, since);
    ASSERT_EQ(page.items.size(), 1u);
    EXPECT_EQ(page.items[0].delivery_id, "late");
    const auto found = get(*store, "", "early");
    ASSERT_TRUE(found);
    EXPECT_EQ(found->summary.delivery_id, "early");
}

// Each prune pass first corrects the outcomes instances of schema version 2 left stale. It read
// every dead and retrying trigger to find none (585 ms at 450,000); version 7 keeps the stale
// ones in a partial index of their own.
TEST_F(PostgresStoreTest, APrunePassFindsTheStaleOutcomesWithoutReadingEveryDeadTrigger) {
    auto store = open();
    std::vector<DeliveryRecord> deliveries;
    for (int i = 0; i < 4000; ++i) deliveries.push_back(delivery("o-" + std::to_string(i), base_));
    for (const auto& r : submit_everywhere({store.get()}, deliveries)) ASSERT_TRUE(r);
    Sql sql(db_.conninfo());
    const auto seq = nth_delivery(sql);
    const auto nth = [&](std::int64_t n) { return std::to_string(seq(n)); };
    sql.exec("UPDATE triggers SET state = 'dead', outcome = 'dead' WHERE delivery <= " + nth(2000));
    // As a version 2 instance finishes a trigger: the state only.
    sql.exec("UPDATE triggers SET state = 'dead' WHERE delivery = " + nth(3000));
    sql.exec("ANALYZE");
    sql.exec("BEGIN");
    const std::string plan = sql.value("EXPLAIN (ANALYZE, FORMAT JSON) " +
                                       std::string(postgres::correct_outcomes_sql()));
    const std::string corrected =
        sql.value("SELECT string_agg(outcome, ',') FROM triggers WHERE delivery = " + nth(3000));
    sql.exec("ROLLBACK");
    EXPECT_EQ(corrected, "dead");
    expect_reads_at_most(plan, 10);
}

// A state with an outcome checks every trigger of the outcome for a trigger of its delivery in
// the state; when few match that read all of them (29-52 ms at 450,000, growing with the store).
// A page reads at most a window of 10,000 and answers a cursor: a delivery with a dead and a
// pending trigger, under 25,000 newer ones with a dead trigger only (and over 12,000 with a
// pending one only), is found by following next_cursor, the first pages coming back empty.
TEST_F(PostgresStoreTest, AStateWithAnOutcomeReadsABoundedWindowOfTheWalkPerPage) {
    auto store = open();
    // 12,000 older deliveries with a pending trigger only (Jenkins "down"): what a hash over the
    // pending triggers would read whole.
    std::vector<DeliveryRecord> backlog;
    for (int i = 0; i < 12000; ++i) backlog.push_back(delivery("p-" + std::to_string(i), base_));
    for (const auto& r : submit_everywhere({store.get()}, backlog)) ASSERT_TRUE(r);
    Sql sql(db_.conninfo());
    sql.exec("UPDATE triggers SET jenkins = 'down'");
    accept(*store, delivery("old", base_), {trigger("ci"), trigger("ci2")});
    std::vector<DeliveryRecord> deliveries;
    for (int i = 0; i < 25000; ++i) deliveries.push_back(delivery("w-" + std::to_string(i), base_));
    for (const auto& r : submit_everywhere({store.get()}, deliveries)) ASSERT_TRUE(r);
    sql.exec("UPDATE triggers SET state = 'dead', outcome = 'dead' WHERE jenkins = 'ci'");
    sql.exec("ANALYZE");
    const auto nth = nth_delivery(sql);
    DeliveryQuery query;
    query.state = TriggerState::pending;
    query.outcome = "dead";
    auto page = list(*store, query);
    EXPECT_TRUE(page.items.empty());
    ASSERT_TRUE(page.next_before_seq);
    // Newest first: deliveries 37,001 down to 27,002.
    EXPECT_EQ(*page.next_before_seq, nth(27'002));
    const auto rest = follow_pages(*store, query, page);
    EXPECT_EQ(rest.found, std::vector<std::string>{"old"});
    EXPECT_EQ(rest.pages, 3);

    // With a source and a time as well (the statement's other parameters).
    DeliveryQuery narrower = query;
    narrower.before_seq.reset();
    narrower.source = "github-main";
    narrower.since = base_ - 1h;
    const auto first = list(*store, narrower);
    EXPECT_TRUE(first.items.empty());
    EXPECT_EQ(follow_pages(*store, narrower, first).found, std::vector<std::string>{"old"});

    // A page reads its window and looks each delivery up: nothing reads the pending triggers
    // whole.
    sql.exec("PREPARE window_plan (text, bigint, text, bigint) AS " +
             postgres::list_by_state_and_outcome_sql());
    sql.exec("BEGIN");
    sql.exec(postgres::list_settings_sql());
    const std::string plan = sql.value(
        "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE window_plan ('dead', 9223372036854775807, "
        "'pending', 50)");
    sql.exec("ROLLBACK");
    const PlanReads reads = reads_of(plan);
    EXPECT_LE(reads.most_rows, 10000) << plan;
    EXPECT_FALSE(reads.seq_scan) << plan;

    // A combination that matches near the cursor fills its page at once.
    sql.exec(
        "UPDATE triggers SET state = 'pending', outcome = 'pending' WHERE jenkins = 'ci' "
        "AND delivery > " +
        std::to_string(nth(36'990)));
    sql.exec(
        "INSERT INTO triggers (id, delivery, rule, jenkins, job, parameters, cause, state, "
        "attempts, created_at, next_attempt_at, updated_at, last_outcome, queue_url, outcome) "
        "SELECT id || '-dead', delivery, rule, 'ci3', job, parameters, cause, 'dead', 0, "
        "created_at, next_attempt_at, updated_at, last_outcome, queue_url, 'dead' "
        "FROM triggers WHERE jenkins = 'ci' AND delivery > " +
        std::to_string(nth(36'990)));
    DeliveryQuery near;
    near.state = TriggerState::pending;
    near.outcome = "dead";
    near.limit = 5;
    const auto full = list(*store, near);
    ASSERT_EQ(full.items.size(), 5u);
    EXPECT_EQ(full.items.front().seq, nth(37'001));
    ASSERT_TRUE(full.next_before_seq);
    EXPECT_EQ(*full.next_before_seq, nth(36'997));
}

// A claim under max_in_flight counts the live claims of its Jenkins, and must not read the
// backlog to find them. It did: after an outage (a backlog, no claim yet, the table not yet
// analyzed) the planner took the index of open triggers, which the count's state filter matches,
// and read every open trigger of the Jenkins for each claim (~10 ms a claim at 18,000, growing
// with the backlog). Asserted on the rows the claim reads, from EXPLAIN ANALYZE.
TEST_F(PostgresStoreTest, AClaimDoesNotReadTheBacklogToCountTheLiveClaims) {
    auto store = open();
    std::vector<DeliveryRecord> deliveries;
    for (int i = 0; i < 10000; ++i) deliveries.push_back(delivery("b-" + std::to_string(i), base_));
    for (const auto& r : submit_everywhere({store.get()}, deliveries)) ASSERT_TRUE(r);
    Sql sql(db_.conninfo());
    sql.exec("PREPARE claim_plan (text, bigint, bigint, bigint, text, bigint, text[]) AS " +
             postgres::claim_sql());
    const auto now =
        std::chrono::duration_cast<std::chrono::milliseconds>((base_ + 1min).time_since_epoch())
            .count();
    sql.exec("BEGIN");
    const std::string plan = sql.value(
        "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim_plan ('ci', " + std::to_string(now) +
        ", 16, 32, 'plan', " + std::to_string(now + 10000) +
        ", ARRAY['p1','p2','p3','p4','p5','p6','p7','p8','p9','p10','p11','p12','p13','p14',"
        "'p15','p16'])");
    sql.exec("ROLLBACK");
    EXPECT_LT(reads_of(plan).removed, 100) << plan;
    EXPECT_NE(plan.find("\"Actual Rows\": 16"), std::string::npos) << plan;  // it claimed 16
}

TEST_F(PostgresStoreTest, AListingByStateReadsItsPageNotEveryNewerDelivery) {
    // The oldest half of the deliveries have a dead trigger (Jenkins refused them back then), the
    // newer half a pending one. A page of 50 dead ones should read about 50 deliveries, not walk
    // the deliveries' key down past the 2,000 newer ones to reach them (a merge join).
    auto store = open();
    std::vector<DeliveryRecord> deliveries;
    for (int i = 0; i < 4000; ++i) deliveries.push_back(delivery("l-" + std::to_string(i), base_));
    for (const auto& r : submit_everywhere({store.get()}, deliveries)) ASSERT_TRUE(r);
    Sql sql(db_.conninfo());
    sql.exec("UPDATE triggers SET state = 'dead', outcome = 'dead' WHERE delivery <= 2000");
    sql.exec("ANALYZE");
    sql.exec("PREPARE list_plan (text, bigint, bigint) AS " + postgres::list_by_state_sql());
    sql.exec("BEGIN");
    sql.exec(postgres::list_settings_sql());
    const std::string plan = sql.value(
        "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE list_plan ('dead', 9223372036854775807, 50)");
    sql.exec("ROLLBACK");
    const PlanReads reads = reads_of(plan);
    EXPECT_LE(reads.most_rows, 100) << plan;
    EXPECT_FALSE(reads.seq_scan) << plan;
}

// A `since` later than most deliveries walked every older one to find the few received since
// (515 ms at 1,000,000). With the index on received_at (schema version 7) the listing reads the
// deliveries received since then, alone or with a state.
TEST_F(PostgresStoreTest, AListingSinceATimeReadsWhatWasReceivedSinceNotEveryOlderDelivery) {
    auto store = open();
    std::vector<DeliveryRecord> deliveries;
    for (int i = 0; i < 4000; ++i) {
        deliveries.push_back(delivery("s-" + std::to_string(i), base_ + std::chrono::seconds(i)));
    }
    for (const auto& r : submit_everywhere({store.get()}, deliveries)) ASSERT_TRUE(r);
    Sql sql(db_.conninfo());
    sql.exec("ANALYZE");
    sql.exec("PREPARE since_plan (bigint, bigint, bigint) AS " +
             postgres::list_by_since_sql(false));
    sql.exec("PREPARE state_since_plan (text, bigint, bigint, bigint) AS " +
             postgres::list_by_since_sql(true));
    const auto ms = [&](std::chrono::seconds after) {
        return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  (base_ + after).time_since_epoch())
                                  .count());
    };
    const std::string cursor = "9223372036854775807";
    const auto explain = [&](const std::string& execute) {
        sql.exec("BEGIN");
        sql.exec(postgres::list_settings_sql());
        const std::string plan = sql.value("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE " + execute);
        sql.exec("ROLLBACK");
        return plan;
    };
    for (const auto& [since, found] : {std::pair{ms(4000s), 0L}, std::pair{ms(3990s), 10L}}) {
        for (const std::string& execute :
             {"since_plan (" + cursor + ", " + since + ", 50)",
              "state_since_plan ('pending', " + cursor + ", " + since + ", 50)"}) {
            const std::string plan = explain(execute);
            expect_reads_at_most(plan, 20, execute);
            // The statement's answer, the plan's first node: a row per delivery found (one
            // trigger each).
            std::smatch top;
            ASSERT_TRUE(std::regex_search(plan, top, std::regex(R"("Actual Rows": (\d+))")));
            EXPECT_EQ(std::stol(top[1]), found) << execute << "\n" << plan;
        }
    }
}

// --- The bodies table (schema version 8) ---------------------------------------------------------

/// The milliseconds since the epoch of `t`.
std::int64_t ms_of(TimePoint t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

/// The table of the bodies received in the hour of `t` (bodies_YYYYMMDDHH).
std::string hour_table(TimePoint t) {
    return postgres::body_hour_table(postgres::body_hour(ms_of(t)));
}

/// The table of the bodies that holds delivery `id`'s body: one of its hour's (bodies_..._3),
/// or the hour's own when that is one table (version 8); "" when none does.
std::string body_part(Sql& sql, const std::string& id) {
    return sql.value(
        "SELECT COALESCE((SELECT b.tableoid::regclass::text FROM bodies b JOIN deliveries d ON "
        "d.seq = b.delivery WHERE d.delivery_id = convert_to('" +
        id + "', 'UTF8')), '')");
}

/// Where the body of delivery `id` is stored: "row" (deliveries.body), the name of the hour's
/// table of the bodies that holds it, or "" when neither does.
std::string where_is_body(Sql& sql, const std::string& id) {
    if (sql.value("SELECT count(*) FROM deliveries WHERE delivery_id = convert_to('" + id +
                  "', 'UTF8') AND body IS NOT NULL") != "0") {
        return "row";
    }
    const std::string part = body_part(sql, id);
    // One of the hour's tables: bodies_YYYYMMDDHH_N.
    return std::regex_replace(part, std::regex("_[0-9]$"), "");
}

/// The tables whose name starts with `prefix` (an hour's table and its own).
int tables_named(Sql& sql, const std::string& prefix) {
    return std::stoi(
        sql.value("SELECT count(*) FROM pg_class WHERE relkind IN ('r', 'p') AND starts_with("
                  "relname, '" +
                  prefix + "')"));
}

bool table_exists(Sql& sql, const std::string& name) {
    return sql.value("SELECT to_regclass('" + name + "') IS NOT NULL") == "t";
}

/// Leaves the hour `table` as a prune pass that ended while it dropped its tables: detached,
/// two of its eight tables gone.
void leave_half_dropped(Sql& sql, const std::string& table) {
    sql.exec("ALTER TABLE bodies DETACH PARTITION " + table + "; DROP TABLE " + table +
             "_0; DROP TABLE " + table + "_5");
}

/// Accepts deliveries `prefix`-0, -1, ... received at `when`, with that body and no trigger,
/// until one's body is stored in its hour's table (the store adds a missing one in the
/// background, and stores bodies in their rows meanwhile). Answers how many it accepted.
int accept_until_in_its_hour(Store& store, Sql& sql, const std::string& prefix, TimePoint when) {
    int accepted = 0;
    const bool landed = eventually([&] {
        const std::string id = prefix + "-" + std::to_string(accepted++);
        accept(store, with_body(delivery(id, when), "body of " + id), {});
        return where_is_body(sql, id) == hour_table(when);
    });
    if (!landed) throw std::runtime_error("no body of " + prefix + " reached its hour's table");
    return accepted;
}

// A body is stored in the partition of the bodies table for the hour it was received: the store
// adds this hour's and the next one's when it opens. An hour without one (a delivery received
// three days ago) keeps its first body in the delivery's row while the hour's partition is added
// in the background; the next body of that hour goes there. Every body reads back the same.
TEST_F(PostgresStoreTest, ABodyIsStoredInThePartitionOfTheHourItWasReceived) {
    const TimePoint before = now_ms();
    auto store = open();
    const TimePoint now = now_ms();
    Sql sql(db_.conninfo());
    // open() added its hour and the next; the hour may have turned before or after it.
    EXPECT_TRUE(table_exists(sql, hour_table(now)));
    EXPECT_TRUE(table_exists(sql, hour_table(before + 1h)));

    accept(*store, with_body(delivery("now", now), "body of now"), {trigger()});
    EXPECT_EQ(where_is_body(sql, "now"), hour_table(now));

    const TimePoint earlier = now - 72h;
    ASSERT_FALSE(table_exists(sql, hour_table(earlier)));
    accept(*store, with_body(delivery("first", earlier), "first body"), {});
    EXPECT_EQ(where_is_body(sql, "first"), "row");
    const int more = accept_until_in_its_hour(*store, sql, "more", earlier);

    std::vector<std::pair<std::string, std::string>> all = {{"now", "body of now"},
                                                            {"first", "first body"}};
    for (int i = 0; i < more; ++i) {
        const std::string id = "more-" + std::to_string(i);
        all.emplace_back(id, "body of " + id);
    }
    for (const auto& [id, body] : all) {
        const auto detail = get(*store, "", id);
        ASSERT_TRUE(detail && detail->body) << id;
        EXPECT_EQ(*detail->body, body) << id;
    }
}

// A prune pass drops an hour's partition of the bodies once no delivery of that hour is stored:
// not while one is kept (its trigger still open), whose body still reads back.
TEST_F(PostgresStoreTest, APrunePassDropsTheBodiesOfAnHourWholeOnceItsDeliveriesAreGone) {
    auto store = open_keeping_an_hour();
    const TimePoint now = now_ms();
    Sql sql(db_.conninfo());
    const TimePoint earlier = now - 72h;
    const std::string table = hour_table(earlier);
    const int unmatched = accept_until_in_its_hour(*store, sql, "unmatched", earlier);
    accept(*store, with_body(delivery("open", earlier), "open body"), {trigger()});
    ASSERT_EQ(where_is_body(sql, "open"), table);

    EXPECT_EQ(prune(*store, now), static_cast<std::size_t>(unmatched));
    EXPECT_TRUE(table_exists(sql, table));
    const auto kept = get(*store, "", "open");
    ASSERT_TRUE(kept && kept->body);
    EXPECT_EQ(*kept->body, "open body");

    // Its trigger finished long ago: the delivery goes, and the hour's bodies with it.
    sql.exec("UPDATE triggers SET state = 'dead', outcome = 'dead', updated_at = 0");
    EXPECT_EQ(prune(*store, now), 1u);
    EXPECT_FALSE(table_exists(sql, table));
    EXPECT_FALSE(get(*store, "", "open"));
    // This hour's bodies are untouched, and new ones still stored in their partition.
    accept(*store, with_body(delivery("now", now), "now"), {trigger()});
    EXPECT_EQ(where_is_body(sql, "now"), hour_table(now));
}

// An hour's bodies are spread by their delivery over eight tables of the hour's own (schema
// version 9), each read back through the hour; the prune pass drops them all with the hour.
TEST_F(PostgresStoreTest, AnHoursBodiesAreSpreadOverEightTablesThatGoWithTheHour) {
    auto store = open_keeping_an_hour();
    const TimePoint now = now_ms();
    Sql sql(db_.conninfo());
    const TimePoint earlier = now - 72h;
    const std::string table = hour_table(earlier);
    int accepted = accept_until_in_its_hour(*store, sql, "first", earlier);
    for (int i = 0; i < 40; ++i) {
        const std::string id = "more-" + std::to_string(i);
        accept(*store, with_body(delivery(id, earlier), "body of " + id), {});
        ++accepted;
    }
    EXPECT_EQ(
        sql.value("SELECT count(*) FROM pg_inherits WHERE inhparent = '" + table + "'::regclass"),
        "8");
    std::set<std::string> parts;
    for (int i = 0; i < 40; ++i) {
        const std::string id = "more-" + std::to_string(i);
        EXPECT_EQ(where_is_body(sql, id), table) << id;
        parts.insert(body_part(sql, id));
        const auto detail = get(*store, "", id);
        ASSERT_TRUE(detail && detail->body) << id;
        EXPECT_EQ(*detail->body, "body of " + id);
    }
    EXPECT_GE(parts.size(), 4u);  // 40 deliveries over 8 tables

    // Which transaction dropped each table of the hour: one each, so that no commit waits for
    // the whole hour's files to be freed at once, and the hour's own last.
    sql.exec(R"sql(
CREATE TABLE dropped (at serial, xact bigint, name text);
CREATE FUNCTION note_dropped() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dropped (xact, name)
    SELECT txid_current(), object_name FROM pg_event_trigger_dropped_objects()
    WHERE object_type = 'table';
END$$;
CREATE EVENT TRIGGER note_dropped ON sql_drop EXECUTE FUNCTION note_dropped())sql");
    EXPECT_EQ(prune(*store, now), static_cast<std::size_t>(accepted));
    EXPECT_EQ(tables_named(sql, table), 0);
    const std::string prefix = "starts_with(name, '" + table + "')";
    EXPECT_EQ(sql.value("SELECT count(DISTINCT xact) FROM dropped WHERE " + prefix), "9");
    EXPECT_EQ(sql.value("SELECT name FROM dropped WHERE " + prefix + " ORDER BY at DESC LIMIT 1"),
              table);
    EXPECT_EQ(tables_named(sql, hour_table(now)), 9);  // this hour's, untouched
}

// A pass that ended while it dropped an hour's tables (detached, some of them dropped) leaves
// the rest to the next pass, which drops them and the hour without failing.
TEST_F(PostgresStoreTest, AnHourLeftHalfDroppedIsDroppedByTheNextPass) {
    auto store = open_keeping_an_hour();
    const Reported reported(*store);
    const TimePoint now = now_ms();
    Sql sql(db_.conninfo());
    const TimePoint earlier = now - 72h;
    const std::string table = hour_table(earlier);
    const int accepted = accept_until_in_its_hour(*store, sql, "old", earlier);
    leave_half_dropped(sql, table);
    ASSERT_EQ(tables_named(sql, table), 7);

    EXPECT_EQ(prune(*store, now), static_cast<std::size_t>(accepted));
    EXPECT_EQ(tables_named(sql, table), 0);
    const auto errors = reported.lines();
    EXPECT_TRUE(errors.empty()) << errors.front();
}

// An hour left half dropped is attached again, made whole first, when one of its deliveries is
// stored after all (an instance whose clock is behind by more than the retention): its bodies go
// to its tables again, and the next pass keeps it while that delivery is kept.
TEST_F(PostgresStoreTest, AnHourLeftHalfDroppedIsMadeWholeAgainForADeliveryOfItsHour) {
    auto store = open_keeping_an_hour();
    const TimePoint now = now_ms();
    Sql sql(db_.conninfo());
    const TimePoint earlier = now - 72h;
    const std::string table = hour_table(earlier);
    accept_until_in_its_hour(*store, sql, "before", earlier);
    leave_half_dropped(sql, table);
    sql.exec("DELETE FROM unmatched; DELETE FROM deliveries");  // as a pass left it

    const int late = accept_until_in_its_hour(*store, sql, "late", earlier);
    EXPECT_EQ(tables_named(sql, table), 9);
    EXPECT_EQ(sql.value("SELECT count(*) FROM pg_inherits WHERE inhrelid = '" + table +
                        "'::regclass AND inhparent = 'bodies'::regclass"),
              "1");
    // Every table of the hour takes bodies again.
    for (int i = 0; i < 40; ++i) {
        const std::string id = "more-" + std::to_string(i);
        accept(*store, with_body(delivery(id, earlier), "body of " + id), {trigger()});
        EXPECT_EQ(where_is_body(sql, id), table) << id;
    }
    EXPECT_EQ(prune(*store, now), static_cast<std::size_t>(late));
    EXPECT_EQ(tables_named(sql, table), 9);  // the deliveries with an open trigger keep it
}

// An hour made by version 8 is one table: a left-over one is attached as it is, its bodies read
// back from it, and the prune pass drops it whole.
TEST_F(PostgresStoreTest, AnHourOfOneTableAsVersion8MadeItIsReadAndDroppedAsBefore) {
    auto store = open_keeping_an_hour();
    const TimePoint now = now_ms();
    Sql sql(db_.conninfo());
    const TimePoint earlier = now - 96h;
    const std::string table = hour_table(earlier);
    sql.exec("CREATE TABLE " + table + " (LIKE bodies INCLUDING ALL)");
    const int accepted = accept_until_in_its_hour(*store, sql, "old", earlier);
    EXPECT_EQ(body_part(sql, "old-" + std::to_string(accepted - 1)), table);
    EXPECT_EQ(tables_named(sql, table), 1);
    const auto detail = get(*store, "", "old-" + std::to_string(accepted - 1));
    ASSERT_TRUE(detail && detail->body);
    EXPECT_EQ(*detail->body, "body of old-" + std::to_string(accepted - 1));

    EXPECT_EQ(prune(*store, now), static_cast<std::size_t>(accepted));
    EXPECT_EQ(tables_named(sql, table), 0);
}

// A pass that ends during DETACH PARTITION ... CONCURRENTLY (here at its statement timeout,
// waiting for a reader of the bodies table, as a long pg_dump would hold it up) leaves the detach
// half done, and while it is, no other partition can be detached. The next pass finishes it
// first, then drops an earlier hour whose last delivery has gone meanwhile; neither pass fails.
TEST_F(PostgresStoreTest, ADetachLeftHalfDoneIsFinishedByTheNextPassBeforeTheOtherHours) {
    StoreConfig config = pg_config(db_.conninfo());
    config.retention = 1h;
    config.postgres.statement_timeout = 1s;
    auto store = open_or_throw(config, "instance-a");
    const TimePoint now = now_ms();
    Sql sql(db_.conninfo());
    const TimePoint first = now - 72h;
    const TimePoint second = now - 70h;
    const int unmatched = accept_until_in_its_hour(*store, sql, "first", first) +
                          accept_until_in_its_hour(*store, sql, "second", second);
    accept(*store, with_body(delivery("open", first), "open body"), {trigger()});
    // A submit also adds the next hour's table: the hour after `first`, empty, comes first by name.
    ASSERT_TRUE(eventually([&] { return table_exists(sql, hour_table(first + 1h)); }));

    Sql reader(db_.conninfo());
    reader.exec("BEGIN");
    reader.value("SELECT count(*) FROM bodies");
    EXPECT_EQ(prune(*store, now), static_cast<std::size_t>(unmatched));
    EXPECT_EQ(sql.value("SELECT string_agg(inhrelid::regclass::text, ',') FROM pg_inherits "
                        "WHERE inhdetachpending"),
              hour_table(first + 1h));
    EXPECT_TRUE(table_exists(sql, hour_table(first)));   // "open" keeps it
    EXPECT_TRUE(table_exists(sql, hour_table(second)));  // not detached while another one is
    reader.exec("COMMIT");

    sql.exec("UPDATE triggers SET state = 'dead', outcome = 'dead', updated_at = 0");
    EXPECT_EQ(prune(*store, now), 1u);
    EXPECT_FALSE(table_exists(sql, hour_table(first)));
    EXPECT_FALSE(table_exists(sql, hour_table(second)));
    EXPECT_EQ(sql.value("SELECT count(*) FROM pg_inherits WHERE inhdetachpending"), "0");
    EXPECT_TRUE(table_exists(sql, hour_table(now)));
}

// Another instance's prune pass may drop an hour's partition this instance still takes for
// there (its clock far behind, say): the submission is not refused for it. Its body is kept with
// its delivery, and reads back.
TEST_F(PostgresStoreTest, ABodyWhoseHourWasDroppedElsewhereIsKeptWithItsDelivery) {
    auto store = open();
    const TimePoint now = now_ms();
    Sql sql(db_.conninfo());
    accept(*store, with_body(delivery("before", now), "before"), {trigger()});
    const std::string table = hour_table(now);
    ASSERT_EQ(where_is_body(sql, "before"), table);
    sql.exec("ALTER TABLE bodies DETACH PARTITION " + table + "; DROP TABLE " + table);

    accept(*store, with_body(delivery("after", now), "after the drop"), {trigger()});
    EXPECT_EQ(where_is_body(sql, "after"), "row");
    const auto detail = get(*store, "", "after");
    ASSERT_TRUE(detail && detail->body);
    EXPECT_EQ(*detail->body, "after the drop");
    // The delivery whose body went with the table is still shown, without it.
    const auto gone = get(*store, "", "before");
    ASSERT_TRUE(gone);
    EXPECT_FALSE(gone->body);
}

// An hour whose partition cannot be added (here a view holds its name) keeps its bodies with
// their deliveries, and says why.
TEST_F(PostgresStoreTest, AnHourWhosePartitionCannotBeAddedKeepsItsBodiesWithTheirDeliveries) {
    auto store = open();
    const Reported reported(*store);
    Sql sql(db_.conninfo());
    const TimePoint earlier = base_ - 96h;
    const std::string table = hour_table(earlier);
    sql.exec("CREATE VIEW " + table + " AS SELECT 1 AS x");

    accept(*store, with_body(delivery("one", earlier), "one"), {});
    ASSERT_TRUE(eventually([&] { return !reported.lines().empty(); }));
    const std::string error = reported.lines().front();
    EXPECT_NE(error.find("adding " + table), std::string::npos) << error;
    accept(*store, with_body(delivery("two", earlier), "two"), {});
    EXPECT_EQ(where_is_body(sql, "two"), "row");
    const auto detail = get(*store, "", "two");
    ASSERT_TRUE(detail && detail->body);
    EXPECT_EQ(*detail->body, "two");
}

// Version 8 adds the bodies table; the bodies stored before stay in their rows, read back, and
// go with their deliveries.
TEST_F(PostgresStoreTest, UpgradesAVersion7DatabaseKeepingItsBodiesInTheirRows) {
    open()->close();
    Sql sql(db_.conninfo());
    downgrade_to_version_7(sql);
    store_like_version_7(sql, "old", "old body", base_ - 2h);

    auto store = open_keeping_an_hour();
    const TimePoint now = now_ms();
    EXPECT_EQ(sql.value("SELECT version FROM hookrelay_schema"), k_current_version);
    accept(*store, with_body(delivery("new", now), "new body"), {trigger()});
    EXPECT_EQ(where_is_body(sql, "old"), "row");
    EXPECT_EQ(where_is_body(sql, "new"), hour_table(now));
    for (const auto& [id, body] : std::vector<std::pair<std::string, std::string>>{
             {"old", "old body"}, {"new", "new body"}}) {
        const auto detail = get(*store, "", id);
        ASSERT_TRUE(detail && detail->body) << id;
        EXPECT_EQ(*detail->body, body) << id;
    }
    EXPECT_EQ(prune(*store, now), 1u);
    EXPECT_FALSE(get(*store, "", "old"));
}

TEST(PostgresBodyHours, NameTheirTablesByTheDateAndHourAndReadItBack) {
    const std::int64_t hour = 20423LL * 24 + 13;  // 2025-12-01 13:00 UTC
    EXPECT_EQ(postgres::body_hour_table(0), "bodies_1970010100");
    EXPECT_EQ(postgres::body_hour_table(hour), "bodies_2025120113");
    EXPECT_EQ(postgres::body_hour_of_table("bodies_2025120113"), hour);
    EXPECT_EQ(postgres::body_hour_of_table("bodies_1970010100"), 0);
    EXPECT_EQ(postgres::body_hour(hour * 3'600'000 + 3'599'999), hour);
    EXPECT_EQ(postgres::body_hour(-5), 0);
    EXPECT_FALSE(postgres::body_hour_of_table("bodies_2025120124"));
    EXPECT_FALSE(postgres::body_hour_of_table("bodies_2025130113"));
    EXPECT_FALSE(postgres::body_hour_of_table("bodies_202512011"));
    EXPECT_FALSE(postgres::body_hour_of_table("bodies_202512011x"));
    EXPECT_FALSE(postgres::body_hour_of_table("deliveries"));
}

}  // namespace
}  // namespace hookrelay::store::test
