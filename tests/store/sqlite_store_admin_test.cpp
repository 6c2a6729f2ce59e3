// The SQLite store's admin queries: listing, showing, replaying and adding triggers, backlog, and
// the commit statistics hook.
#include "store/sqlite_store.hpp"
#include "store/store_test_support.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using hookrelay::Attempt;
using hookrelay::DeliveryDetail;
using hookrelay::DeliveryPage;
using hookrelay::DeliveryQuery;
using hookrelay::DeliveryRecord;
using hookrelay::DeliverySummary;
using hookrelay::errc;
using hookrelay::Receipt;
using hookrelay::ReplayQuery;
using hookrelay::result;
using hookrelay::StoreConfig;
using hookrelay::StoredTrigger;
using hookrelay::TriggerRequest;
using hookrelay::TriggerState;
using hookrelay::TriggerUpdate;
using hookrelay::store::SqliteOptions;
using hookrelay::store::SqliteStore;
using Clock = std::chrono::system_clock;
using Ids = std::vector<std::string>;
using Backlog = std::vector<std::pair<std::string, std::size_t>>;

using hookrelay::store::test::delivery;
using hookrelay::store::test::k_deadline;
using hookrelay::store::test::now_ms;
using hookrelay::store::test::TempDir;
using hookrelay::store::test::wait_answer;

/// The shared trigger, with a '/' inside a job segment (a multibranch branch) to round-trip.
TriggerRequest trigger(std::string jenkins = "ci", std::string rule = "build") {
    auto t = hookrelay::store::test::trigger(std::move(jenkins), std::move(rule));
    t.job = {"acme", "app", "feature/x"};
    return t;
}

/// The value of a successful answer; throws (failing the test) on an error.
template <class T>
T value_of(result<T> answer, const char* what) {
    if (!answer)
        throw std::runtime_error(std::string(what) + " failed: " + answer.error().message());
    return std::move(*answer);
}

Receipt submit(SqliteStore& store, DeliveryRecord delivery, std::vector<TriggerRequest> triggers) {
    return value_of(wait_answer<result<Receipt>>([&](auto done) {
                        store.submit(std::move(delivery), std::move(triggers), std::move(done));
                    }),
                    "submit");
}

std::vector<StoredTrigger> due(SqliteStore& store, const std::string& jenkins,
                               Clock::time_point now) {
    return value_of(wait_answer<result<std::vector<StoredTrigger>>>(
                        [&](auto done) { store.due(jenkins, now, 100, {}, std::move(done)); }),
                    "due");
}

void update(SqliteStore& store, TriggerUpdate u) {
    auto answer =
        wait_answer<result<void>>([&](auto done) { store.update(std::move(u), std::move(done)); });
    if (!answer) throw std::runtime_error("update failed: " + answer.error().message());
}

DeliveryPage list(SqliteStore& store, DeliveryQuery query) {
    return value_of(wait_answer<result<DeliveryPage>>([&](auto done) {
                        store.list_deliveries(std::move(query), std::move(done));
                    }),
                    "list_deliveries");
}

std::optional<DeliveryDetail> get(SqliteStore& store, std::string source, std::string id) {
    return value_of(wait_answer<result<std::optional<DeliveryDetail>>>([&](auto done) {
                        store.get_delivery(std::move(source), std::move(id), std::move(done));
                    }),
                    "get_delivery");
}

Ids replay(SqliteStore& store, Ids ids, Clock::time_point now) {
    return value_of(wait_answer<result<Ids>>(
                        [&](auto done) { store.replay(std::move(ids), now, std::move(done)); }),
                    "replay");
}

Ids replay_matching(SqliteStore& store, ReplayQuery query, Clock::time_point now) {
    return value_of(wait_answer<result<Ids>>([&](auto done) {
                        store.replay_matching(std::move(query), now, std::move(done));
                    }),
                    "replay_matching");
}

Ids add_triggers(SqliteStore& store, std::string source, std::string id,
                 std::vector<TriggerRequest> triggers) {
    return value_of(wait_answer<result<Ids>>([&](auto done) {
                        store.add_triggers(std::move(source), std::move(id), std::move(triggers),
                                           std::move(done));
                    }),
                    "add_triggers");
}

Backlog backlog(SqliteStore& store) {
    return value_of(
        wait_answer<result<Backlog>>([&](auto done) { store.backlog(std::move(done)); }),
        "backlog");
}

TriggerUpdate retry(const std::string& id, Clock::time_point next, Clock::time_point at) {
    TriggerUpdate u;
    u.id = id;
    u.state = TriggerState::retrying;
    u.next_attempt_at = next;
    u.attempt.at = at;
    u.attempt.http_status = 503;
    u.attempt.outcome = "HTTP 503";
    u.attempt.duration = 120ms;
    u.last_outcome = "HTTP 503";
    return u;
}

TriggerUpdate finish(const std::string& id, TriggerState state, Clock::time_point at) {
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

/// The delivery ids of a page, in its order.
std::vector<std::string> ids_of(const DeliveryPage& page) {
    std::vector<std::string> out;
    for (const auto& item : page.items) out.push_back(item.delivery_id);
    return out;
}

/// Holds an exclusive lock on the store's database from a second connection while it lives.
class ExclusiveLock {
  public:
    explicit ExclusiveLock(const std::string& path) {
        if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK ||
            sqlite3_exec(db_, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) != SQLITE_OK) {
            sqlite3_close(db_);
            throw std::runtime_error("cannot lock " + path);
        }
    }
    ~ExclusiveLock() {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        sqlite3_close(db_);
    }
    ExclusiveLock(const ExclusiveLock&) = delete;
    ExclusiveLock& operator=(const ExclusiveLock&) = delete;

  private:
    sqlite3* db_ = nullptr;
};

/// Counts the calls of an on_committed callback; first() becomes ready at the first one.
class CommitCounter {
  public:
    explicit CommitCounter(SqliteStore& store) {
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

class SqliteStoreAdmin : public ::testing::Test {
  protected:
    std::shared_ptr<SqliteStore> open_store(SqliteOptions options = {}) {
        std::string why;
        auto store = SqliteStore::open(dir_.path(), config_, &why, options);
        if (!store) throw std::runtime_error("open failed: " + why);
        return *store;
    }

    std::string db_path() const { return dir_.path() + "/hookrelay.db"; }

    /// Three deliveries, oldest first: d-1 (delivered + dead), d-2 (pending + retrying), d-3
    /// (no triggers). Returns the trigger ids of d-1 and d-2, in that order.
    Ids three_deliveries(SqliteStore& store) {
        auto first = submit(store, delivery("d-1", base_), {trigger(), trigger("ci", "test")});
        auto second = submit(store, delivery("d-2", base_ + 1s), {trigger(), trigger("nightly")});
        submit(store, delivery("d-3", base_ + 2s), {});
        update(store, finish(first.trigger_ids[0], TriggerState::delivered, base_ + 10s));
        update(store, finish(first.trigger_ids[1], TriggerState::dead, base_ + 11s));
        update(store, retry(second.trigger_ids[1], base_ + 1min, base_ + 12s));
        return {first.trigger_ids[0], first.trigger_ids[1], second.trigger_ids[0],
                second.trigger_ids[1]};
    }

    TempDir dir_;
    StoreConfig config_ = [] {
        StoreConfig c;
        c.prune_interval = 0ms;  // nothing removed behind the tests' backs
        return c;
    }();
    const Clock::time_point base_ = now_ms();
};

TEST_F(SqliteStoreAdmin, ListsNewestFirstWithCountsPerState) {
    auto store = open_store();
    three_deliveries(*store);

    const auto page = list(*store, {});
    ASSERT_EQ(ids_of(page), (std::vector<std::string>{"d-3", "d-2", "d-1"}));
    EXPECT_FALSE(page.next_before_seq);
    EXPECT_GT(page.items[0].seq, page.items[1].seq);
    EXPECT_GT(page.items[1].seq, page.items[2].seq);

    const DeliverySummary& d3 = page.items[0];
    EXPECT_EQ(d3.source, "github-main");
    EXPECT_EQ(d3.provider, hookrelay::Provider::github);
    EXPECT_EQ(d3.kind, hookrelay::EventKind::push);
    EXPECT_EQ(d3.forge_event, "push");
    EXPECT_EQ(d3.received_at, base_ + 2s);
    EXPECT_EQ((std::array{d3.pending, d3.delivered, d3.dead}),
              (std::array<std::size_t, 3>{0, 0, 0}));

    const DeliverySummary& d2 = page.items[1];
    EXPECT_EQ((std::array{d2.pending, d2.delivered, d2.dead}),
              (std::array<std::size_t, 3>{2, 0, 0}));
    const DeliverySummary& d1 = page.items[2];
    EXPECT_EQ((std::array{d1.pending, d1.delivered, d1.dead}),
              (std::array<std::size_t, 3>{0, 1, 1}));
}

TEST_F(SqliteStoreAdmin, ListsADeliveryWithoutForgeIdWithAnEmptyId) {
    auto store = open_store();
    submit(*store, delivery("", base_), {trigger()});
    const auto page = list(*store, {});
    ASSERT_EQ(page.items.size(), 1u);
    EXPECT_EQ(page.items[0].delivery_id, "");
    EXPECT_EQ(page.items[0].pending, 1u);
}

TEST_F(SqliteStoreAdmin, FiltersBySourceExactly) {
    auto store = open_store();
    submit(*store, delivery("a", base_, "github"), {});
    submit(*store, delivery("b", base_, "github-main"), {});
    submit(*store, delivery("c", base_, "gitlab"), {});
    submit(*store, delivery("d", base_, "github"), {});

    DeliveryQuery query;
    query.source = "github";
    EXPECT_EQ(ids_of(list(*store, query)), (std::vector<std::string>{"d", "a"}));
    query.source = "git";
    EXPECT_TRUE(list(*store, query).items.empty());
}

TEST_F(SqliteStoreAdmin, FiltersByExactTriggerState) {
    auto store = open_store();
    three_deliveries(*store);

    DeliveryQuery query;
    query.state = TriggerState::pending;
    EXPECT_EQ(ids_of(list(*store, query)), (std::vector<std::string>{"d-2"}));
    query.state = TriggerState::retrying;
    EXPECT_EQ(ids_of(list(*store, query)), (std::vector<std::string>{"d-2"}));
    query.state = TriggerState::delivered;
    EXPECT_EQ(ids_of(list(*store, query)), (std::vector<std::string>{"d-1"}));
    query.state = TriggerState::dead;
    const auto dead = list(*store, query);
    ASSERT_EQ(ids_of(dead), (std::vector<std::string>{"d-1"}));
    // The counts still cover every trigger of the delivery, not only the matching ones.
    EXPECT_EQ(dead.items[0].delivered, 1u);
    EXPECT_EQ(dead.items[0].dead, 1u);

    // Pending means pending only: once d-2's pending trigger is delivered, only a retrying one
    // is left.
    const auto d2 = get(*store, "", "d-2");
    ASSERT_TRUE(d2);
    update(*store, finish(d2->triggers[0].trigger.id, TriggerState::delivered, base_ + 20s));
    query.state = TriggerState::pending;
    EXPECT_TRUE(list(*store, query).items.empty());
    query.state = TriggerState::retrying;
    EXPECT_EQ(ids_of(list(*store, query)), (std::vector<std::string>{"d-2"}));
}

TEST_F(SqliteStoreAdmin, FiltersBySinceInclusively) {
    auto store = open_store();
    three_deliveries(*store);

    DeliveryQuery query;
    query.since = base_ + 1s;
    EXPECT_EQ(ids_of(list(*store, query)), (std::vector<std::string>{"d-3", "d-2"}));
    query.since = base_ + 1h;
    EXPECT_TRUE(list(*store, query).items.empty());
}

TEST_F(SqliteStoreAdmin, CombinesFilters) {
    auto store = open_store();
    submit(*store, delivery("old", base_, "github"), {trigger()});
    submit(*store, delivery("other-source", base_ + 1s, "gitlab"), {trigger()});
    submit(*store, delivery("no-triggers", base_ + 1s, "github"), {});
    submit(*store, delivery("match", base_ + 1s, "github"), {trigger()});

    DeliveryQuery query;
    query.source = "github";
    query.state = TriggerState::pending;
    query.since = base_ + 1s;
    EXPECT_EQ(ids_of(list(*store, query)), (std::vector<std::string>{"match"}));
}

TEST_F(SqliteStoreAdmin, PagesThroughEverythingWithTheCursor) {
    auto store = open_store();
    std::vector<std::string> all;
    for (int i = 0; i < 7; ++i) {
        all.push_back("d-" + std::to_string(i));
        submit(*store, delivery(all.back(), base_), {trigger()});
    }
    std::reverse(all.begin(), all.end());

    for (const bool by_state : {false, true}) {
        SCOPED_TRACE(by_state ? "filtered by state" : "unfiltered");
        DeliveryQuery query;
        query.limit = 3;
        if (by_state) query.state = TriggerState::pending;
        std::vector<std::string> seen;
        std::vector<std::size_t> sizes;
        for (;;) {
            const auto page = list(*store, query);
            sizes.push_back(page.items.size());
            for (const auto& item : page.items) seen.push_back(item.delivery_id);
            if (!page.next_before_seq) break;
            ASSERT_EQ(*page.next_before_seq, page.items.back().seq);
            query.before_seq = page.next_before_seq;
        }
        EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 3, 1}));
        EXPECT_EQ(seen, all);
    }
}

TEST_F(SqliteStoreAdmin, AFullLastPageIsFollowedByAnEmptyOne) {
    auto store = open_store();
    submit(*store, delivery("d-1", base_), {});
    submit(*store, delivery("d-2", base_), {});
    DeliveryQuery query;
    query.limit = 2;
    const auto page = list(*store, query);
    ASSERT_EQ(page.items.size(), 2u);
    ASSERT_TRUE(page.next_before_seq);
    query.before_seq = page.next_before_seq;
    const auto next = list(*store, query);
    EXPECT_TRUE(next.items.empty());
    EXPECT_FALSE(next.next_before_seq);
}

TEST_F(SqliteStoreAdmin, LimitZeroAnswersAnEmptyPage) {
    auto store = open_store();
    submit(*store, delivery("d-1", base_), {});
    DeliveryQuery query;
    query.limit = 0;
    const auto page = list(*store, query);
    EXPECT_TRUE(page.items.empty());
    EXPECT_FALSE(page.next_before_seq);
}

TEST_F(SqliteStoreAdmin, CapsThePageAtAThousand) {
    auto store = open_store();
    constexpr std::size_t k_total = SqliteStore::k_max_page + 5;
    // Submitted without waiting in between, so they share a few group commits.
    std::vector<std::future<result<Receipt>>> answers;
    for (std::size_t i = 0; i < k_total; ++i) {
        auto promise = std::make_shared<std::promise<result<Receipt>>>();
        answers.push_back(promise->get_future());
        store->submit(delivery("d-" + std::to_string(i), base_), {},
                      [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
    }
    for (auto& answer : answers) {
        ASSERT_EQ(answer.wait_for(k_deadline), std::future_status::ready);
        ASSERT_TRUE(answer.get());
    }

    DeliveryQuery query;
    query.limit = 5000;
    const auto page = list(*store, query);
    EXPECT_EQ(page.items.size(), SqliteStore::k_max_page);
    ASSERT_TRUE(page.next_before_seq);
    query.before_seq = page.next_before_seq;
    EXPECT_EQ(list(*store, query).items.size(), 5u);
}

TEST_F(SqliteStoreAdmin, GetsEverythingStoredAboutADelivery) {
    auto store = open_store();
    const Ids ids = three_deliveries(*store);

    const auto detail = get(*store, "github-main", "d-1");
    ASSERT_TRUE(detail);
    EXPECT_EQ(detail->summary.delivery_id, "d-1");
    EXPECT_EQ(detail->summary.source, "github-main");
    EXPECT_EQ(detail->summary.received_at, base_);
    EXPECT_EQ(detail->summary.delivered, 1u);
    EXPECT_EQ(detail->summary.dead, 1u);
    EXPECT_EQ(detail->summary.pending, 0u);
    EXPECT_EQ(detail->headers, (std::vector<std::pair<std::string, std::string>>{
                                   {"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", "d-1"}}));
    EXPECT_EQ(detail->body, std::optional<std::string>(R"({"ref":"refs/heads/main"})"));
    EXPECT_EQ(detail->body_sha256.size(), 64u);

    ASSERT_EQ(detail->triggers.size(), 2u);
    const auto& delivered = detail->triggers[0];
    EXPECT_EQ(delivered.trigger.id, ids[0]);
    EXPECT_EQ(delivered.trigger.source, "github-main");
    EXPECT_EQ(delivered.trigger.delivery_id, "d-1");
    EXPECT_EQ(delivered.trigger.request.rule, "build");
    EXPECT_EQ(delivered.trigger.request.jenkins, "ci");
    EXPECT_EQ(delivered.trigger.request.job,
              (std::vector<std::string>{"acme", "app", "feature/x"}));
    EXPECT_EQ(
        delivered.trigger.request.parameters,
        (std::vector<std::pair<std::string, std::string>>{{"BRANCH", "main"}, {"SHA", "abc123"}}));
    EXPECT_EQ(delivered.trigger.request.cause, "push to acme/app");
    EXPECT_EQ(delivered.trigger.state, TriggerState::delivered);
    EXPECT_EQ(delivered.trigger.attempts, 1);
    EXPECT_EQ(delivered.trigger.created_at, base_);
    EXPECT_EQ(delivered.trigger.last_outcome, "queued");
    EXPECT_EQ(delivered.trigger.queue_url, "http://jenkins/queue/item/7/");
    // updated_at is the store's wall clock at the update.
    EXPECT_GE(delivered.updated_at, base_);
    EXPECT_LE(delivered.updated_at, Clock::now());
    ASSERT_EQ(delivered.attempts.size(), 1u);
    EXPECT_EQ(delivered.attempts[0].outcome, "queued");
    EXPECT_EQ(delivered.attempts[0].http_status, 201);
    EXPECT_EQ(delivered.attempts[0].at, base_ + 10s);
    EXPECT_EQ(delivered.attempts[0].duration, 15ms);

    const auto& dead = detail->triggers[1];
    EXPECT_EQ(dead.trigger.id, ids[1]);
    EXPECT_EQ(dead.trigger.request.rule, "test");
    EXPECT_EQ(dead.trigger.state, TriggerState::dead);
    ASSERT_EQ(dead.attempts.size(), 1u);
    EXPECT_EQ(dead.attempts[0].outcome, "HTTP 404");
}

TEST_F(SqliteStoreAdmin, HistoryIsOldestFirst) {
    auto store = open_store();
    const auto id = submit(*store, delivery("d-1", base_), {trigger()}).trigger_ids[0];
    update(*store, retry(id, base_ + 1min, base_ + 1s));
    update(*store, retry(id, base_ + 2min, base_ + 1min));
    update(*store, finish(id, TriggerState::delivered, base_ + 2min));

    const auto detail = get(*store, "", "d-1");
    ASSERT_TRUE(detail);
    ASSERT_EQ(detail->triggers.size(), 1u);
    const auto& history = detail->triggers[0].attempts;
    ASSERT_EQ(history.size(), 3u);
    EXPECT_EQ(history[0].at, base_ + 1s);
    EXPECT_EQ(history[1].at, base_ + 1min);
    EXPECT_EQ(history[2].outcome, "queued");
    EXPECT_EQ(detail->triggers[0].trigger.attempts, 3);
}

TEST_F(SqliteStoreAdmin, GetWithoutSourceTakesTheNewestOfThatId) {
    auto store = open_store();
    submit(*store, delivery("same", base_, "github"), {});
    submit(*store, delivery("same", base_ + 1s, "gitlab"), {});

    const auto newest = get(*store, "", "same");
    ASSERT_TRUE(newest);
    EXPECT_EQ(newest->summary.source, "gitlab");
    const auto older = get(*store, "github", "same");
    ASSERT_TRUE(older);
    EXPECT_EQ(older->summary.source, "github");
    EXPECT_EQ(older->summary.received_at, base_);
}

TEST_F(SqliteStoreAdmin, GetsByStoreSeq) {
    auto store = open_store();
    three_deliveries(*store);
    const auto page = list(*store, {});
    ASSERT_EQ(page.items.size(), 3u);
    const std::string seq = "#" + std::to_string(page.items[1].seq);

    const auto by_seq = get(*store, "", seq);
    ASSERT_TRUE(by_seq);
    EXPECT_EQ(by_seq->summary.delivery_id, "d-2");
    EXPECT_EQ(by_seq->triggers.size(), 2u);
    EXPECT_TRUE(get(*store, "github-main", seq));
    EXPECT_FALSE(get(*store, "gitlab", seq));  // a given source must match
    EXPECT_FALSE(get(*store, "", "#999999"));
}

TEST_F(SqliteStoreAdmin, GetOfAnUnknownDeliveryIsNullopt) {
    auto store = open_store();
    three_deliveries(*store);
    EXPECT_FALSE(get(*store, "", "nope"));
    EXPECT_FALSE(get(*store, "gitlab", "d-1"));
    EXPECT_FALSE(get(*store, "", ""));
    EXPECT_FALSE(get(*store, "", "#"));
    EXPECT_FALSE(get(*store, "", "#1x"));
}

TEST_F(SqliteStoreAdmin, GetWithoutKeptBodyAnswersNoBodyButItsHash) {
    config_.keep_body = false;
    auto store = open_store();
    auto d = delivery("d-1", base_);
    d.body = "hello";
    submit(*store, d, {});
    const auto detail = get(*store, "", "d-1");
    ASSERT_TRUE(detail);
    EXPECT_FALSE(detail->body);
    EXPECT_EQ(detail->body_sha256,
              "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
}

TEST_F(SqliteStoreAdmin, ReplayGivesAFreshBudgetAHistoryEntryAndMakesTheTriggerDue) {
    auto store = open_store();
    const auto id = submit(*store, delivery("d-1", base_), {trigger()}).trigger_ids[0];
    update(*store, retry(id, base_ + 1min, base_ + 1s));
    update(*store, finish(id, TriggerState::dead, base_ + 2min));
    EXPECT_TRUE(due(*store, "ci", base_ + 1h).empty());
    CommitCounter committed(*store);

    const auto now = base_ + 1h;
    EXPECT_EQ(replay(*store, {id}, now), (Ids{id}));
    ASSERT_TRUE(committed.first_arrives());

    const auto detail = get(*store, "", "d-1");
    ASSERT_TRUE(detail);
    const auto& h = detail->triggers.at(0);
    EXPECT_EQ(h.trigger.state, TriggerState::pending);
    EXPECT_EQ(h.trigger.attempts, 0);
    EXPECT_EQ(h.trigger.created_at, now);
    EXPECT_EQ(h.trigger.next_attempt_at, now);
    EXPECT_EQ(h.updated_at, now);
    EXPECT_EQ(h.trigger.last_outcome, "replayed");
    ASSERT_EQ(h.attempts.size(), 3u);
    const Attempt& entry = h.attempts.back();
    EXPECT_EQ(entry.outcome, "replayed by admin");
    EXPECT_EQ(entry.http_status, 0);
    EXPECT_EQ(entry.at, now);
    EXPECT_FALSE(entry.counted);
    EXPECT_EQ(detail->summary.pending, 1u);
    EXPECT_EQ(detail->summary.dead, 0u);

    EXPECT_TRUE(due(*store, "ci", now - 1ms).empty());
    const auto ready = due(*store, "ci", now);
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0].id, id);
    EXPECT_EQ(ready[0].attempts, 0);
    EXPECT_EQ(ready[0].created_at, now);
}

TEST_F(SqliteStoreAdmin, ReplaySkipsUnknownAndRepeatedIds) {
    auto store = open_store();
    const Ids ids = three_deliveries(*store);
    const auto now = base_ + 1h;
    EXPECT_EQ(replay(*store, {"nope", ids[1], ids[0], ids[1]}, now), (Ids{ids[1], ids[0]}));
    const auto detail = get(*store, "", "d-1");
    ASSERT_TRUE(detail);
    EXPECT_EQ(detail->triggers[0].attempts.size(), 2u);  // one replay entry, not two
    EXPECT_EQ(detail->triggers[1].attempts.size(), 2u);
}

TEST_F(SqliteStoreAdmin, ReplayOfNothingKnownDoesNotWakeTheDispatcher) {
    auto store = open_store();
    CommitCounter committed(*store);
    EXPECT_TRUE(replay(*store, {"nope"}, base_).empty());
    EXPECT_TRUE(replay(*store, {}, base_).empty());
    backlog(*store);  // runs after the replays' notifications would have
    EXPECT_EQ(committed.calls(), 0);
}

TEST_F(SqliteStoreAdmin, ReplayMatchingTakesTheGivenState) {
    auto store = open_store();
    const Ids ids = three_deliveries(*store);
    const auto now = base_ + 1h;

    ReplayQuery query;  // dead
    EXPECT_EQ(replay_matching(*store, query, now), (Ids{ids[1]}));
    EXPECT_TRUE(replay_matching(*store, query, now).empty());  // none dead any more
    query.state = TriggerState::retrying;
    EXPECT_EQ(replay_matching(*store, query, now), (Ids{ids[3]}));
    query.state = TriggerState::delivered;
    EXPECT_EQ(replay_matching(*store, query, now), (Ids{ids[0]}));
    query.state = TriggerState::pending;  // all four are pending now
    query.limit = 10;
    EXPECT_EQ(replay_matching(*store, query, now), (Ids{ids[0], ids[1], ids[2], ids[3]}));
}

TEST_F(SqliteStoreAdmin, ReplayMatchingDryRunListsButChangesNothing) {
    auto store = open_store();
    const Ids ids = three_deliveries(*store);
    const auto now = base_ + 1h;
    CommitCounter committed(*store);

    ReplayQuery query;
    query.state = TriggerState::delivered;
    query.dry_run = true;
    EXPECT_EQ(replay_matching(*store, query, now), (Ids{ids[0]}));
    EXPECT_EQ(replay_matching(*store, query, now), (Ids{ids[0]}));  // still delivered
    const auto detail = get(*store, "", "d-1");
    ASSERT_TRUE(detail);
    EXPECT_EQ(detail->triggers[0].trigger.state, TriggerState::delivered);
    EXPECT_EQ(detail->triggers[0].attempts.size(), 1u);  // no "replayed" entry
    backlog(*store);                                     // runs after a notification would have
    EXPECT_EQ(committed.calls(), 0);
}

TEST_F(SqliteStoreAdmin, ReplayMatchingFiltersBySinceJenkinsAndLimitOldestFirst) {
    auto store = open_store();
    Ids dead;
    for (const char* jenkins : {"ci", "nightly", "ci", "ci"}) {
        const auto id =
            submit(*store, delivery("d-" + std::to_string(dead.size()), base_), {trigger(jenkins)})
                .trigger_ids[0];
        update(*store, finish(id, TriggerState::dead, base_));
        dead.push_back(id);
    }
    const auto now = base_ + 1h;
    CommitCounter committed(*store);

    ReplayQuery query;
    query.since = Clock::now() + 1h;  // updated_at is the store's clock at the update
    EXPECT_TRUE(replay_matching(*store, query, now).empty());
    query.since = base_;
    query.jenkins = "ci";
    query.limit = 2;
    EXPECT_EQ(replay_matching(*store, query, now), (Ids{dead[0], dead[2]}));
    ASSERT_TRUE(committed.first_arrives());
    EXPECT_EQ(due(*store, "ci", now).size(), 2u);

    query.limit = 0;
    EXPECT_TRUE(replay_matching(*store, query, now).empty());
    query.limit = 1000;
    query.jenkins = "";
    query.since.reset();
    EXPECT_EQ(replay_matching(*store, query, now), (Ids{dead[1], dead[3]}));
}

TEST_F(SqliteStoreAdmin, AddTriggersQueuesNewTriggersOnAStoredDelivery) {
    auto store = open_store();
    const auto first = submit(*store, delivery("d-1", base_), {trigger()}).trigger_ids[0];
    CommitCounter committed(*store);

    const auto before = now_ms();
    const Ids added =
        add_triggers(*store, "github-main", "d-1", {trigger("nightly", "a"), trigger("ci", "b")});
    const auto after = Clock::now();
    ASSERT_EQ(added.size(), 2u);
    EXPECT_NE(added[0], added[1]);
    EXPECT_NE(added[0], first);
    ASSERT_TRUE(committed.first_arrives());

    const auto detail = get(*store, "", "d-1");
    ASSERT_TRUE(detail);
    ASSERT_EQ(detail->triggers.size(), 3u);
    EXPECT_EQ(detail->triggers[0].trigger.id, first);
    EXPECT_EQ(detail->triggers[1].trigger.id, added[0]);
    EXPECT_EQ(detail->triggers[2].trigger.id, added[1]);
    const auto& t = detail->triggers[1].trigger;
    EXPECT_EQ(t.state, TriggerState::pending);
    EXPECT_EQ(t.attempts, 0);
    EXPECT_EQ(t.request.rule, "a");
    EXPECT_EQ(t.request.jenkins, "nightly");
    EXPECT_GE(t.created_at, before);
    EXPECT_LE(t.created_at, after);
    EXPECT_EQ(t.next_attempt_at, t.created_at);
    EXPECT_TRUE(detail->triggers[1].attempts.empty());

    const auto nightly = due(*store, "nightly", Clock::now());
    ASSERT_EQ(nightly.size(), 1u);
    EXPECT_EQ(nightly[0].id, added[0]);
    EXPECT_EQ(nightly[0].delivery_id, "d-1");
}

TEST_F(SqliteStoreAdmin, AddTriggersFindsTheDeliveryLikeGet) {
    auto store = open_store();
    submit(*store, delivery("d-1", base_), {});
    const auto seq = list(*store, {}).items.at(0).seq;
    EXPECT_EQ(add_triggers(*store, "", "d-1", {trigger()}).size(), 1u);
    EXPECT_EQ(add_triggers(*store, "", "#" + std::to_string(seq), {trigger()}).size(), 1u);
    EXPECT_EQ(list(*store, {}).items.at(0).pending, 2u);
}

TEST_F(SqliteStoreAdmin, AddTriggersToAnUnknownDeliveryAnswersNoIds) {
    auto store = open_store();
    submit(*store, delivery("d-1", base_), {});
    CommitCounter committed(*store);
    EXPECT_TRUE(add_triggers(*store, "", "nope", {trigger()}).empty());
    EXPECT_TRUE(add_triggers(*store, "gitlab", "d-1", {trigger()}).empty());
    EXPECT_TRUE(add_triggers(*store, "", "d-1", {}).empty());
    backlog(*store);  // runs after the notifications would have
    EXPECT_EQ(committed.calls(), 0);
    EXPECT_TRUE(backlog(*store).empty());
}

TEST_F(SqliteStoreAdmin, BacklogCountsOpenTriggersPerJenkins) {
    auto store = open_store();
    EXPECT_TRUE(backlog(*store).empty());
    const auto a = submit(*store, delivery("d-1", base_),
                          {trigger("alpha"), trigger("alpha"), trigger("alpha"), trigger("beta"),
                           trigger("beta"), trigger("gamma")})
                       .trigger_ids;
    update(*store, retry(a[1], base_ + 1min, base_));
    update(*store, finish(a[4], TriggerState::delivered, base_));
    update(*store, finish(a[5], TriggerState::dead, base_));
    EXPECT_EQ(backlog(*store), (Backlog{{"alpha", 3}, {"beta", 1}}));
}

TEST_F(SqliteStoreAdmin, CommitStatsReportEachSubmitTransactionWithItsBatchSize) {
    auto store = open_store();
    struct Stat {
        double seconds;
        std::size_t batch;
    };
    auto stats = std::make_shared<std::vector<Stat>>();
    auto mutex = std::make_shared<std::mutex>();
    store->on_commit_stats([stats, mutex](std::chrono::duration<double> s, std::size_t batch) {
        std::lock_guard lock(*mutex);
        stats->push_back({s.count(), batch});
    });
    const auto taken = [&] {
        std::lock_guard lock(*mutex);
        return *stats;
    };

    // The stats callback runs before the submit is answered.
    submit(*store, delivery("d-0", base_), {trigger()});
    auto seen = taken();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].batch, 1u);
    EXPECT_GT(seen[0].seconds, 0.0);

    // Hold the store thread in a callback while five submissions queue up: they then share one
    // transaction.
    std::promise<void> gate;
    auto entered = std::make_shared<std::promise<void>>();
    store->backlog([opened = gate.get_future().share(), entered](result<Backlog>) {
        entered->set_value();
        opened.wait_for(k_deadline);
    });
    ASSERT_EQ(entered->get_future().wait_for(k_deadline), std::future_status::ready);
    std::vector<std::future<result<Receipt>>> answers;
    for (int i = 1; i <= 5; ++i) {
        auto promise = std::make_shared<std::promise<result<Receipt>>>();
        answers.push_back(promise->get_future());
        store->submit(delivery("d-" + std::to_string(i), base_), {trigger()},
                      [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
    }
    gate.set_value();
    for (auto& answer : answers) {
        ASSERT_EQ(answer.wait_for(k_deadline), std::future_status::ready);
        ASSERT_TRUE(answer.get());
    }
    seen = taken();
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[1].batch, 5u);

    // Admin writes are not submit transactions.
    list(*store, {});
    replay(*store, {"nope"}, base_);
    EXPECT_EQ(taken().size(), 2u);
}

TEST_F(SqliteStoreAdmin, CommitStatsReportFailedTransactionsToo) {
    SqliteOptions options;
    options.busy_timeout = 50ms;
    auto store = open_store(options);
    auto calls = std::make_shared<std::atomic<int>>(0);
    store->on_commit_stats([calls](std::chrono::duration<double>, std::size_t batch) {
        if (batch == 1) ++*calls;
    });

    result<Receipt> refused = Receipt{};
    {
        ExclusiveLock lock(db_path());
        refused = wait_answer<result<Receipt>>([&](auto done) {
            store->submit(delivery("d-1", base_), {trigger()}, std::move(done));
        });
    }
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), make_error_code(errc::store_unavailable));
    EXPECT_EQ(calls->load(), 1);
}

TEST_F(SqliteStoreAdmin, AdminQueriesFailWithStoreUnavailableWhileLocked) {
    SqliteOptions options;
    options.busy_timeout = 50ms;
    auto store = open_store(options);
    const auto id = submit(*store, delivery("d-1", base_), {trigger()}).trigger_ids[0];
    auto errors = std::make_shared<std::atomic<int>>(0);
    store->on_error([errors](std::string_view) { ++*errors; });

    result<Ids> refused = Ids{};
    {
        ExclusiveLock lock(db_path());
        refused = wait_answer<result<Ids>>(
            [&](auto done) { store->replay({id}, base_ + 1h, std::move(done)); });
    }
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), make_error_code(errc::store_unavailable));
    EXPECT_EQ(errors->load(), 1);
    // Nothing of the failed replay was kept.
    const auto detail = get(*store, "", "d-1");
    ASSERT_TRUE(detail);
    EXPECT_TRUE(detail->triggers.at(0).attempts.empty());
}

}  // namespace
