#include "store/sqlite_store.hpp"
#include "store/store_test_support.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using hookrelay::Attempt;
using hookrelay::DeliveryRecord;
using hookrelay::errc;
using hookrelay::Receipt;
using hookrelay::result;
using hookrelay::StoreConfig;
using hookrelay::StoredTrigger;
using hookrelay::TriggerRequest;
using hookrelay::TriggerState;
using hookrelay::TriggerUpdate;
using hookrelay::store::SqliteOptions;
using hookrelay::store::SqliteStore;
using Clock = std::chrono::system_clock;
using Counts = std::array<std::size_t, 4>;

using hookrelay::store::test::delivery;
using hookrelay::store::test::k_deadline;
using hookrelay::store::test::now_ms;
using hookrelay::store::test::TempDir;
using hookrelay::store::test::trigger;
using hookrelay::store::test::wait_answer;

result<Receipt> submit(SqliteStore& store, DeliveryRecord delivery,
                       std::vector<TriggerRequest> triggers) {
    return wait_answer<result<Receipt>>([&](auto done) {
        store.submit(std::move(delivery), std::move(triggers), std::move(done));
    });
}

std::vector<StoredTrigger> due(SqliteStore& store, const std::string& jenkins,
                               Clock::time_point now, std::size_t limit = 100,
                               std::vector<std::string> exclude = {}) {
    auto answer = wait_answer<result<std::vector<StoredTrigger>>>(
        [&](auto done) { store.due(jenkins, now, limit, std::move(exclude), std::move(done)); });
    if (!answer) throw std::runtime_error("due failed: " + answer.error().message());
    return *answer;
}

result<void> update(SqliteStore& store, TriggerUpdate u) {
    return wait_answer<result<void>>(
        [&](auto done) { store.update(std::move(u), std::move(done)); });
}

std::optional<Clock::time_point> next_due(SqliteStore& store, const std::string& jenkins) {
    auto answer = wait_answer<result<std::optional<Clock::time_point>>>(
        [&](auto done) { store.next_due(jenkins, std::move(done)); });
    if (!answer) throw std::runtime_error("next_due failed: " + answer.error().message());
    return *answer;
}

Counts counts(SqliteStore& store, const std::string& jenkins) {
    auto answer =
        wait_answer<result<Counts>>([&](auto done) { store.counts(jenkins, std::move(done)); });
    if (!answer) throw std::runtime_error("counts failed: " + answer.error().message());
    return *answer;
}

std::vector<Attempt> attempts(SqliteStore& store, const std::string& id) {
    auto answer = wait_answer<result<std::vector<Attempt>>>(
        [&](auto done) { store.attempts(id, std::move(done)); });
    if (!answer) throw std::runtime_error("attempts failed: " + answer.error().message());
    return *answer;
}

std::size_t prune(SqliteStore& store, Clock::time_point now) {
    auto answer =
        wait_answer<result<std::size_t>>([&](auto done) { store.prune(now, std::move(done)); });
    if (!answer) throw std::runtime_error("prune failed: " + answer.error().message());
    return *answer;
}

TriggerUpdate retry(const std::string& id, Clock::time_point next, Clock::time_point at,
                    bool counted = true) {
    TriggerUpdate u;
    u.id = id;
    u.state = TriggerState::retrying;
    u.next_attempt_at = next;
    u.attempt.at = at;
    u.attempt.http_status = 503;
    u.attempt.outcome = "HTTP 503";
    u.attempt.duration = 120ms;
    u.attempt.counted = counted;
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

/// Opens the store's database file directly, as an operator's sqlite3 shell would.
class RawDb {
  public:
    explicit RawDb(const std::string& path) {
        if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
            throw std::runtime_error("cannot open " + path);
        }
        sqlite3_busy_timeout(db_, static_cast<int>(std::chrono::milliseconds(k_deadline).count()));
    }
    ~RawDb() { sqlite3_close(db_); }
    RawDb(const RawDb&) = delete;
    RawDb& operator=(const RawDb&) = delete;

    void exec(const char* sql) {
        char* message = nullptr;
        if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
            std::string text = message ? message : "?";
            sqlite3_free(message);
            throw std::runtime_error(std::string(sql) + ": " + text);
        }
    }

    /// The first row of a query, each column as text ("NULL" for NULL).
    std::vector<std::string> row(const char* sql) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) {
            throw std::runtime_error(sqlite3_errmsg(db_));
        }
        std::vector<std::string> out;
        if (sqlite3_step(stmt) == SQLITE_ROW) {
            for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
                const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
                out.emplace_back(text ? std::string(text, sqlite3_column_bytes(stmt, i)) : "NULL");
            }
        }
        sqlite3_finalize(stmt);
        return out;
    }

  private:
    sqlite3* db_ = nullptr;
};

class SqliteStoreTest : public ::testing::Test {
  protected:
    std::shared_ptr<SqliteStore> open_store(SqliteOptions options = {}) {
        std::string why;
        auto store = SqliteStore::open(dir_.path(), config_, &why, options);
        if (!store) throw std::runtime_error("open failed: " + why);
        return *store;
    }

    std::string db_path() const { return dir_.path() + "/hookrelay.db"; }

    TempDir dir_;
    StoreConfig config_;
    const Clock::time_point base_ = now_ms();
};

TEST_F(SqliteStoreTest, SubmitThenDueRoundTripsEveryField) {
    auto store = open_store();
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

    auto receipt = submit(*store, delivery("d-1", base_), {first, second});
    ASSERT_TRUE(receipt) << receipt.error().message();
    EXPECT_FALSE(receipt->duplicate);
    ASSERT_EQ(receipt->trigger_ids.size(), 2u);
    EXPECT_NE(receipt->trigger_ids[0], receipt->trigger_ids[1]);
    EXPECT_EQ(receipt->trigger_ids[0].size(), 36u);
    EXPECT_EQ(receipt->trigger_ids[0][14], '4');  // UUID version 4

    const auto found = due(*store, "ci", base_);
    ASSERT_EQ(found.size(), 2u);
    const StoredTrigger& t = found[0];
    EXPECT_EQ(t.id, receipt->trigger_ids[0]);
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
    EXPECT_EQ(found[1].id, receipt->trigger_ids[1]);
    EXPECT_EQ(found[1].request.job, second.job);
    EXPECT_TRUE(found[1].request.parameters.empty());
}

TEST_F(SqliteStoreTest, DuplicateDeliveryIdIsReportedAndQueuesNothing) {
    auto store = open_store();
    ASSERT_TRUE(submit(*store, delivery("d-1", base_), {trigger()}));

    auto again = submit(*store, delivery("d-1", base_ + 1s), {trigger(), trigger()});
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_TRUE(again->duplicate);
    EXPECT_TRUE(again->trigger_ids.empty());
    EXPECT_EQ(counts(*store, "ci"), (Counts{1, 0, 0, 0}));

    // The key is (source, delivery id): another source may reuse the id.
    auto other = delivery("d-1", base_);
    other.source = "gitlab-main";
    auto elsewhere = submit(*store, other, {trigger()});
    ASSERT_TRUE(elsewhere);
    EXPECT_FALSE(elsewhere->duplicate);
    EXPECT_EQ(counts(*store, "ci"), (Counts{2, 0, 0, 0}));
}

TEST_F(SqliteStoreTest, ConcurrentSubmissionsOfOneIdAcceptExactlyOne) {
    auto store = open_store();
    constexpr int k_threads = 4;
    constexpr int k_ids = 50;
    std::vector<std::vector<std::pair<int, std::future<result<Receipt>>>>> answers(k_threads);
    std::vector<std::thread> threads;
    for (int n = 0; n < k_threads; ++n) {
        threads.emplace_back([&, n] {
            for (int i = 0; i < k_ids; ++i) {
                auto promise = std::make_shared<std::promise<result<Receipt>>>();
                answers[n].emplace_back(i, promise->get_future());
                store->submit(delivery("id-" + std::to_string(i), base_), {trigger()},
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
    EXPECT_EQ(counts(*store, "ci"), (Counts{k_ids, 0, 0, 0}));
}

TEST_F(SqliteStoreTest, EmptyDeliveryIdsNeverDeduplicate) {
    auto store = open_store();
    auto first = submit(*store, delivery("", base_), {trigger()});
    auto second = submit(*store, delivery("", base_), {trigger()});
    ASSERT_TRUE(first);
    ASSERT_TRUE(second);
    EXPECT_FALSE(first->duplicate);
    EXPECT_FALSE(second->duplicate);
    EXPECT_EQ(counts(*store, "ci"), (Counts{2, 0, 0, 0}));
    EXPECT_EQ(due(*store, "ci", base_)[0].delivery_id, "");
}

TEST_F(SqliteStoreTest, DeliveryWithoutTriggersIsRecordedAndDeduplicated) {
    auto store = open_store();
    auto first = submit(*store, delivery("d-1", base_), {});
    ASSERT_TRUE(first);
    EXPECT_FALSE(first->duplicate);
    EXPECT_TRUE(first->trigger_ids.empty());
    auto again = submit(*store, delivery("d-1", base_), {trigger()});
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->duplicate);
    EXPECT_EQ(counts(*store, "ci"), (Counts{0, 0, 0, 0}));
}

TEST_F(SqliteStoreTest, TriggersSurviveReopening) {
    std::vector<std::string> ids;
    {
        auto store = open_store();
        auto receipt = submit(*store, delivery("d-1", base_), {trigger(), trigger("other")});
        ASSERT_TRUE(receipt);
        ids = receipt->trigger_ids;
    }
    auto store = open_store();
    const auto found = due(*store, "ci", base_);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].id, ids[0]);
    EXPECT_EQ(found[0].request.parameters, trigger().parameters);
    EXPECT_EQ(due(*store, "other", base_).at(0).id, ids[1]);
    auto again = submit(*store, delivery("d-1", base_), {trigger()});
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->duplicate);
}

TEST_F(SqliteStoreTest, AcceptedDeliverySurvivesKill9) {
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // The child answers through the pipe only once the store acknowledged the submit.
        // Never return into GoogleTest from the child.
        close(pipe_fds[0]);
        try {
            auto store = SqliteStore::open(dir_.path(), config_);
            if (!store) _exit(1);
            auto receipt = submit(**store, delivery("d-kill", base_), {trigger()});
            if (!receipt || receipt->duplicate) _exit(2);
            const char ok = 'k';
            if (write(pipe_fds[1], &ok, 1) != 1) _exit(3);
            for (;;) pause();
        } catch (...) {
            _exit(4);
        }
    }
    close(pipe_fds[1]);
    pollfd readable{pipe_fds[0], POLLIN, 0};
    const int ready =
        poll(&readable, 1, static_cast<int>(std::chrono::milliseconds(k_deadline).count()));
    char got = 0;
    const bool acknowledged = ready == 1 && read(pipe_fds[0], &got, 1) == 1 && got == 'k';
    close(pipe_fds[0]);
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(acknowledged);

    auto store = open_store();
    const auto found = due(*store, "ci", base_);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].delivery_id, "d-kill");
}

TEST_F(SqliteStoreTest, UpdateRecordsStateAttemptsAndHistory) {
    auto store = open_store();
    auto receipt = submit(*store, delivery("d-1", base_), {trigger()});
    ASSERT_TRUE(receipt);
    const std::string id = receipt->trigger_ids.at(0);

    auto first = retry(id, base_ + 60s, base_ + 1s);
    first.attempt.queue_url = "http://jenkins/queue/item/6/";
    ASSERT_TRUE(update(*store, first));
    EXPECT_TRUE(due(*store, "ci", base_ + 59s).empty());
    auto found = due(*store, "ci", base_ + 60s);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].state, TriggerState::retrying);
    EXPECT_EQ(found[0].attempts, 1);
    EXPECT_EQ(found[0].next_attempt_at, base_ + 60s);
    EXPECT_EQ(found[0].last_outcome, "HTTP 503");
    EXPECT_EQ(found[0].queue_url, "http://jenkins/queue/item/6/");
    EXPECT_EQ(found[0].created_at, base_);

    // An attempt without a queue URL keeps the one recorded before.
    ASSERT_TRUE(update(*store, retry(id, base_ + 120s, base_ + 61s)));
    found = due(*store, "ci", base_ + 120s);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].attempts, 2);
    EXPECT_EQ(found[0].queue_url, "http://jenkins/queue/item/6/");

    ASSERT_TRUE(update(*store, finish(id, TriggerState::delivered, base_ + 121s)));
    EXPECT_TRUE(due(*store, "ci", base_ + 1000h).empty());
    EXPECT_EQ(counts(*store, "ci"), (Counts{0, 0, 1, 0}));

    const auto history = attempts(*store, id);
    ASSERT_EQ(history.size(), 3u);
    EXPECT_EQ(history[0].at, base_ + 1s);
    EXPECT_EQ(history[0].http_status, 503);
    EXPECT_EQ(history[0].outcome, "HTTP 503");
    EXPECT_EQ(history[0].duration, 120ms);
    EXPECT_EQ(history[0].queue_url, "http://jenkins/queue/item/6/");
    EXPECT_TRUE(history[0].counted);
    EXPECT_EQ(history[1].at, base_ + 61s);
    EXPECT_EQ(history[2].at, base_ + 121s);
    EXPECT_EQ(history[2].http_status, 201);
    EXPECT_EQ(history[2].outcome, "queued");
    EXPECT_EQ(history[2].queue_url, "http://jenkins/queue/item/7/");
}

TEST_F(SqliteStoreTest, UncountedAttemptDoesNotIncrementAttempts) {
    auto store = open_store();
    auto receipt = submit(*store, delivery("d-1", base_), {trigger()});
    ASSERT_TRUE(receipt);
    const std::string id = receipt->trigger_ids.at(0);

    ASSERT_TRUE(update(*store, retry(id, base_ + 5s, base_ + 1s, /*counted=*/false)));
    const auto found = due(*store, "ci", base_ + 5s);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].attempts, 0);
    EXPECT_EQ(found[0].state, TriggerState::retrying);
    const auto history = attempts(*store, id);
    ASSERT_EQ(history.size(), 1u);
    EXPECT_FALSE(history[0].counted);
}

TEST_F(SqliteStoreTest, UpdateOfUnknownTriggerFails) {
    auto store = open_store();
    auto answer = update(*store, retry("no-such-id", base_, base_));
    ASSERT_FALSE(answer);
    EXPECT_EQ(answer.error(), make_error_code(errc::store_unavailable));
    EXPECT_TRUE(attempts(*store, "no-such-id").empty());
}

TEST_F(SqliteStoreTest, AnUnknownIdDoesNotFailTheUpdatesQueuedWithIt) {
    auto store = open_store();
    auto receipt = submit(*store, delivery("d-1", base_), {trigger(), trigger()});
    ASSERT_TRUE(receipt);
    // Posted back to back, so the store may apply them in one transaction.
    std::vector<std::future<result<void>>> answers;
    for (const std::string& id :
         {receipt->trigger_ids[0], std::string("no-such-id"), receipt->trigger_ids[1]}) {
        auto promise = std::make_shared<std::promise<result<void>>>();
        answers.push_back(promise->get_future());
        store->update(finish(id, TriggerState::delivered, base_),
                      [promise](result<void> r) { promise->set_value(r); });
    }
    for (auto& answer : answers) {
        ASSERT_EQ(answer.wait_for(k_deadline), std::future_status::ready);
    }
    EXPECT_TRUE(answers[0].get());
    EXPECT_FALSE(answers[1].get());
    EXPECT_TRUE(answers[2].get());
    EXPECT_EQ(counts(*store, "ci"), (Counts{0, 0, 2, 0}));
}

TEST_F(SqliteStoreTest, DueRespectsDueTimeExcludeLimitAndJenkins) {
    auto store = open_store();
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        auto receipt =
            submit(*store, delivery("d-" + std::to_string(i), base_ + i * 1s), {trigger("ci")});
        ASSERT_TRUE(receipt);
        ids.push_back(receipt->trigger_ids.at(0));
    }
    ASSERT_TRUE(submit(*store, delivery("d-other", base_), {trigger("other")}));

    const auto ids_of = [](const std::vector<StoredTrigger>& found) {
        std::vector<std::string> out;
        for (const auto& t : found) out.push_back(t.id);
        return out;
    };
    EXPECT_TRUE(due(*store, "ci", base_ - 1ms).empty());
    EXPECT_EQ(ids_of(due(*store, "ci", base_ + 1s)), (std::vector{ids[0], ids[1]}));
    EXPECT_EQ(ids_of(due(*store, "ci", base_ + 10s, 2)), (std::vector{ids[0], ids[1]}));
    EXPECT_EQ(ids_of(due(*store, "ci", base_ + 10s, 2, {ids[0]})), (std::vector{ids[1], ids[2]}));
    EXPECT_EQ(ids_of(due(*store, "ci", base_ + 10s, 10, {ids[1], "unknown"})),
              (std::vector{ids[0], ids[2]}));
    EXPECT_TRUE(due(*store, "ci", base_ + 10s, 0).empty());
    EXPECT_EQ(due(*store, "other", base_ + 10s).size(), 1u);
    EXPECT_TRUE(due(*store, "nobody", base_ + 10s).empty());

    // A retry due earlier than a fresh trigger comes first; equal due times keep created order.
    ASSERT_TRUE(update(*store, retry(ids[2], base_ - 1s, base_)));
    EXPECT_EQ(ids_of(due(*store, "ci", base_ + 10s)), (std::vector{ids[2], ids[0], ids[1]}));
    auto many = submit(*store, delivery("d-many", base_ + 20s), {trigger(), trigger(), trigger()});
    ASSERT_TRUE(many);
    const auto later = due(*store, "ci", base_ + 20s, 3, {ids[0], ids[1], ids[2]});
    EXPECT_EQ(ids_of(later), many->trigger_ids);
}

TEST_F(SqliteStoreTest, NextDueIsTheEarliestPendingOrRetrying) {
    auto store = open_store();
    EXPECT_EQ(next_due(*store, "ci"), std::nullopt);
    auto late = submit(*store, delivery("d-late", base_ + 5s), {trigger()});
    auto early = submit(*store, delivery("d-early", base_ + 2s), {trigger()});
    ASSERT_TRUE(late);
    ASSERT_TRUE(early);
    EXPECT_EQ(next_due(*store, "ci"), base_ + 2s);
    EXPECT_EQ(next_due(*store, "other"), std::nullopt);

    ASSERT_TRUE(
        update(*store, finish(early->trigger_ids.at(0), TriggerState::delivered, base_ + 3s)));
    EXPECT_EQ(next_due(*store, "ci"), base_ + 5s);
    ASSERT_TRUE(update(*store, retry(late->trigger_ids.at(0), base_ + 9s, base_ + 5s)));
    EXPECT_EQ(next_due(*store, "ci"), base_ + 9s);
}

TEST_F(SqliteStoreTest, PruneRemovesOldFinishedRecordsAndKeepsPendingOnes) {
    config_.retention = 1h;
    auto store = open_store();
    auto delivered = submit(*store, delivery("d-delivered", base_), {trigger()});
    auto dead = submit(*store, delivery("d-dead", base_), {trigger()});
    auto pending = submit(*store, delivery("d-pending", base_), {trigger()});
    auto mixed = submit(*store, delivery("d-mixed", base_), {trigger(), trigger()});
    auto empty = submit(*store, delivery("d-empty", base_), {});
    ASSERT_TRUE(delivered && dead && pending && mixed && empty);
    const auto now = Clock::now();
    ASSERT_TRUE(update(*store, finish(delivered->trigger_ids[0], TriggerState::delivered, now)));
    ASSERT_TRUE(update(*store, finish(dead->trigger_ids[0], TriggerState::dead, now)));
    ASSERT_TRUE(update(*store, finish(mixed->trigger_ids[0], TriggerState::delivered, now)));

    EXPECT_EQ(prune(*store, now), 0u);  // nothing is older than the retention yet
    EXPECT_EQ(counts(*store, "ci"), (Counts{2, 0, 2, 1}));

    // Gone: d-delivered, d-dead and d-empty; d-mixed stays for its pending trigger.
    EXPECT_EQ(prune(*store, now + 2h), 3u);
    EXPECT_EQ(counts(*store, "ci"), (Counts{2, 0, 0, 0}));
    EXPECT_TRUE(attempts(*store, delivered->trigger_ids[0]).empty());
    EXPECT_EQ(due(*store, "ci", base_).size(), 2u);

    auto redelivered = submit(*store, delivery("d-delivered", base_), {});
    ASSERT_TRUE(redelivered);
    EXPECT_FALSE(redelivered->duplicate);  // the pruned delivery no longer deduplicates
    auto still = submit(*store, delivery("d-mixed", base_), {});
    ASSERT_TRUE(still);
    EXPECT_TRUE(still->duplicate);
}

TEST_F(SqliteStoreTest, PrunesOnItsOwnEveryInterval) {
    config_.retention = 0ms;
    config_.prune_interval = 10ms;
    auto store = open_store();
    auto done = submit(*store, delivery("d-1", base_), {trigger()});
    auto waiting = submit(*store, delivery("d-2", base_), {trigger()});
    ASSERT_TRUE(done && waiting);
    ASSERT_TRUE(update(*store, finish(done->trigger_ids[0], TriggerState::delivered, base_)));

    const auto deadline = std::chrono::steady_clock::now() + k_deadline;
    while (counts(*store, "ci")[static_cast<std::size_t>(TriggerState::delivered)] != 0) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no scheduled prune ran";
        std::this_thread::sleep_for(5ms);  // poll interval
    }
    EXPECT_EQ(counts(*store, "ci"), (Counts{1, 0, 0, 0}));
}

TEST_F(SqliteStoreTest, BodyIsKeptOnlyWhenConfiguredButItsHashAlways) {
    constexpr const char* k_hello_sha256 =
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    auto with_body = delivery("d-kept", base_);
    with_body.body = "hello";
    auto without_body = delivery("d-dropped", base_);
    without_body.body = "hello";
    {
        auto store = open_store();
        ASSERT_TRUE(submit(*store, with_body, {}));
    }
    config_.keep_body = false;
    {
        auto store = open_store();
        ASSERT_TRUE(submit(*store, without_body, {}));
    }
    RawDb db(db_path());
    EXPECT_EQ(db.row("SELECT body, body_sha256 FROM deliveries WHERE delivery_id = 'd-kept'"),
              (std::vector<std::string>{"hello", k_hello_sha256}));
    EXPECT_EQ(db.row("SELECT body, body_sha256 FROM deliveries WHERE delivery_id = 'd-dropped'"),
              (std::vector<std::string>{"NULL", k_hello_sha256}));
    EXPECT_EQ(db.row("SELECT headers FROM deliveries WHERE delivery_id = 'd-kept'"),
              (std::vector<std::string>{
                  R"([["X-GitHub-Event","push"],["X-GitHub-Delivery","d-kept"]])"}));
}

TEST_F(SqliteStoreTest, DatabaseHoldingWebhookBodiesIsReadableByItsOwnerOnly) {
    const auto old_umask = ::umask(022);  // the usual umask, which would give 0644
    auto store = open_store();
    ::umask(old_umask);
    ASSERT_TRUE(submit(*store, delivery("d-1", base_), {trigger()}));
    namespace fs = std::filesystem;
    const auto others = fs::perms::group_all | fs::perms::others_all;
    EXPECT_EQ(fs::status(db_path()).permissions() & others, fs::perms::none);
    EXPECT_EQ(fs::status(db_path() + "-wal").permissions() & others, fs::perms::none);
}

TEST_F(SqliteStoreTest, SubmitFailsAndKeepsNothingWhileTheDatabaseIsLocked) {
    config_.prune_interval = 0ms;  // no scheduled prune competing for the lock or reporting
    SqliteOptions options;
    options.busy_timeout = 50ms;
    auto store = open_store(options);
    std::mutex mutex;
    std::vector<std::string> errors;
    store->on_error([&](std::string_view e) {
        std::lock_guard lock(mutex);
        errors.emplace_back(e);
    });

    RawDb other(db_path());
    other.exec("BEGIN EXCLUSIVE");
    auto refused = submit(*store, delivery("d-1", base_), {trigger()});
    other.exec("ROLLBACK");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), make_error_code(errc::store_unavailable));
    {
        std::lock_guard lock(mutex);
        ASSERT_EQ(errors.size(), 1u);
        EXPECT_NE(errors[0].find("locked"), std::string::npos) << errors[0];
    }

    EXPECT_EQ(counts(*store, "ci"), (Counts{0, 0, 0, 0}));
    auto accepted = submit(*store, delivery("d-1", base_), {trigger()});
    ASSERT_TRUE(accepted) << accepted.error().message();
    EXPECT_FALSE(accepted->duplicate);  // the failed attempt left no trace
}

TEST_F(SqliteStoreTest, OpenFailsWithAClearReasonWhenTheDirectoryCannotBeCreated) {
    const std::string file = dir_.path() + "/a-file";
    std::ofstream(file) << "not a directory";
    std::string why;
    auto store = SqliteStore::open(file + "/state", config_, &why);
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error(), make_error_code(errc::store_unavailable));
    EXPECT_EQ(why.rfind("cannot open " + file + "/state/hookrelay.db: ", 0), 0u) << why;
    EXPECT_NE(why.find("Not a directory"), std::string::npos) << why;
}

TEST_F(SqliteStoreTest, RefusesADatabaseFromANewerVersion) {
    {
        RawDb db(db_path());
        db.exec("PRAGMA user_version = 3");
    }
    std::string why;
    auto store = SqliteStore::open(dir_.path(), config_, &why);
    ASSERT_FALSE(store);
    EXPECT_NE(why.find("schema version 3 is newer"), std::string::npos) << why;
}

TEST_F(SqliteStoreTest, CreatesTheStateDirectoryAndSchemaVersion) {
    const std::string nested = dir_.path() + "/a/b/state";
    {
        auto store = SqliteStore::open(nested, config_);
        ASSERT_TRUE(store);
        EXPECT_EQ((*store)->kind(), "sqlite");
        EXPECT_TRUE((*store)->durable());
    }
    RawDb db(nested + "/hookrelay.db");
    EXPECT_EQ(db.row("PRAGMA user_version"), (std::vector<std::string>{"2"}));
    EXPECT_EQ(db.row("PRAGMA journal_mode"), (std::vector<std::string>{"wal"}));
}

TEST_F(SqliteStoreTest, OnCommittedRunsOnlyAfterTriggersWereCommitted) {
    auto store = open_store();
    std::atomic<int> calls{0};
    auto first = std::make_shared<std::promise<void>>();
    store->on_committed([&calls, first] {
        if (calls.fetch_add(1) == 0) first->set_value();
    });

    ASSERT_TRUE(submit(*store, delivery("d-none", base_), {}));
    ASSERT_TRUE(submit(*store, delivery("d-none", base_), {trigger()}));  // duplicate
    counts(*store, "ci");  // the store thread has finished the submits' notifications
    EXPECT_EQ(calls.load(), 0);

    ASSERT_TRUE(submit(*store, delivery("d-1", base_), {trigger()}));
    ASSERT_EQ(first->get_future().wait_for(k_deadline), std::future_status::ready);
    EXPECT_EQ(calls.load(), 1);
}

TEST_F(SqliteStoreTest, GroupCommitStoresEverySubmissionFromManyThreads) {
    config_.max_batch = 64;
    auto store = open_store();
    constexpr int k_threads = 4;
    constexpr int k_per_thread = 250;
    std::vector<std::vector<std::future<result<Receipt>>>> answers(k_threads);
    std::vector<std::thread> threads;
    for (int n = 0; n < k_threads; ++n) {
        threads.emplace_back([&, n] {
            for (int i = 0; i < k_per_thread; ++i) {
                auto promise = std::make_shared<std::promise<result<Receipt>>>();
                answers[n].push_back(promise->get_future());
                store->submit(delivery("t" + std::to_string(n) + "-" + std::to_string(i), base_),
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
    EXPECT_EQ(counts(*store, "ci"), (Counts{k_total, 0, 0, 0}));
    EXPECT_EQ(due(*store, "ci", base_, 2 * k_total).size(), k_total);
}

TEST_F(SqliteStoreTest, StoreMayBeReleasedFromItsOwnCallback) {
    auto store = open_store();
    // Hold the store thread in a callback until the test has given up its own reference, so the
    // submit's callback below surely drops the last one.
    auto gate = std::make_shared<std::promise<void>>();
    store->counts("ci", [opened = gate->get_future().share()](result<Counts>) {
        opened.wait_for(k_deadline);
    });
    auto holder = std::make_shared<std::shared_ptr<SqliteStore>>(store);
    auto answered = std::make_shared<std::promise<bool>>();
    store->submit(delivery("d-1", base_), {trigger()}, [holder, answered](result<Receipt> r) {
        holder->reset();  // the last reference: destroys the store on its own thread
        answered->set_value(static_cast<bool>(r));
    });
    store.reset();
    holder.reset();
    gate->set_value();
    auto future = answered->get_future();
    ASSERT_EQ(future.wait_for(k_deadline), std::future_status::ready);
    EXPECT_TRUE(future.get());

    auto reopened = open_store();
    EXPECT_EQ(due(*reopened, "ci", base_).size(), 1u);
}

// --- Duplicate bodies (duplicate_body_window) -------------------------------------------------

DeliveryRecord with_body(DeliveryRecord d, std::string body,
                         std::chrono::milliseconds window = 10min) {
    d.body = std::move(body);
    d.duplicate_body_window = window;
    return d;
}

TEST_F(SqliteStoreTest, SameBodyWithinTheWindowIsADuplicateOfTheEarlierDelivery) {
    auto store = open_store();
    ASSERT_TRUE(submit(*store, with_body(delivery("d-1", base_), "old push"), {trigger()}));

    // A replay: the old signed body under a new delivery id, nine minutes later.
    auto replay = submit(*store, with_body(delivery("d-2", base_ + 9min), "old push"), {trigger()});
    ASSERT_TRUE(replay) << replay.error().message();
    EXPECT_TRUE(replay->duplicate);
    EXPECT_TRUE(replay->same_body);
    EXPECT_EQ(replay->duplicate_of, "d-1");
    EXPECT_TRUE(replay->trigger_ids.empty());
    EXPECT_EQ(counts(*store, "ci"), (Counts{1, 0, 0, 0}));
    RawDb db(db_path());
    EXPECT_EQ(db.row("SELECT COUNT(*) FROM deliveries"), (std::vector<std::string>{"1"}));
}

TEST_F(SqliteStoreTest, SameBodyOlderThanTheWindowIsAccepted) {
    auto store = open_store();
    ASSERT_TRUE(submit(*store, with_body(delivery("d-1", base_), "push"), {trigger()}));
    auto later = submit(*store, with_body(delivery("d-2", base_ + 11min), "push"), {trigger()});
    ASSERT_TRUE(later);
    EXPECT_FALSE(later->duplicate);
    EXPECT_EQ(counts(*store, "ci"), (Counts{2, 0, 0, 0}));
}

TEST_F(SqliteStoreTest, WithoutAWindowBodiesAreNotCompared) {
    auto store = open_store();
    ASSERT_TRUE(submit(*store, with_body(delivery("d-1", base_), "push", 0ms), {trigger()}));
    auto other = submit(*store, with_body(delivery("d-2", base_), "push", 0ms), {trigger()});
    ASSERT_TRUE(other);
    EXPECT_FALSE(other->duplicate);
}

TEST_F(SqliteStoreTest, SameBodyInAnotherSourceIsNoDuplicate) {
    auto store = open_store();
    ASSERT_TRUE(submit(*store, with_body(delivery("d-1", base_), "push"), {trigger()}));
    auto elsewhere = submit(*store, with_body(delivery("d-2", base_, "gitlab-main"), "push"), {});
    ASSERT_TRUE(elsewhere);
    EXPECT_FALSE(elsewhere->duplicate);
}

TEST_F(SqliteStoreTest, DeliveryWithoutIdIsNamedBySeqAsTheEarlierOne) {
    auto store = open_store();
    ASSERT_TRUE(submit(*store, with_body(delivery("", base_), "push"), {trigger()}));
    auto again = submit(*store, with_body(delivery("", base_ + 1s), "push"), {trigger()});
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->duplicate);
    EXPECT_TRUE(again->same_body);
    RawDb db(db_path());
    EXPECT_EQ(again->duplicate_of, "#" + db.row("SELECT id FROM deliveries")[0]);
}

TEST_F(SqliteStoreTest, RedeliveryUnderTheSameIdIsAnIdDuplicateWithOrWithoutAWindow) {
    auto store = open_store();
    ASSERT_TRUE(submit(*store, with_body(delivery("d-1", base_), "push"), {trigger()}));
    for (const auto window : {10min, 0min}) {
        auto again =
            submit(*store, with_body(delivery("d-1", base_ + 1min), "push", window), {trigger()});
        ASSERT_TRUE(again);
        EXPECT_TRUE(again->duplicate);
        EXPECT_FALSE(again->same_body);
        EXPECT_EQ(again->duplicate_of, "d-1");
    }
}

TEST_F(SqliteStoreTest, SameBodySubmittedConcurrentlyIsAcceptedOnce) {
    auto store = open_store();
    constexpr int k_copies = 8;
    std::vector<std::future<result<Receipt>>> answers;
    for (int i = 0; i < k_copies; ++i) {
        auto promise = std::make_shared<std::promise<result<Receipt>>>();
        answers.push_back(promise->get_future());
        store->submit(with_body(delivery("d-" + std::to_string(i), base_), "push"), {trigger()},
                      [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
    }
    int accepted = 0;
    for (auto& answer : answers) {
        ASSERT_EQ(answer.wait_for(k_deadline), std::future_status::ready);
        const auto r = answer.get();
        ASSERT_TRUE(r);
        if (!r->duplicate) ++accepted;
    }
    EXPECT_EQ(accepted, 1);
    EXPECT_EQ(counts(*store, "ci"), (Counts{1, 0, 0, 0}));
}

TEST_F(SqliteStoreTest, BodyDigestGivenBySubmitterIsStoredAndCompared) {
    constexpr const char* k_hello_sha256 =
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    auto store = open_store();
    auto computed = with_body(delivery("d-computed", base_), "hello");
    ASSERT_TRUE(submit(*store, computed, {}));
    auto given = with_body(delivery("d-given", base_ + 1s), "hello");
    given.body_sha256 = k_hello_sha256;
    auto answer = submit(*store, given, {});
    ASSERT_TRUE(answer);
    EXPECT_TRUE(answer->duplicate);
    EXPECT_EQ(answer->duplicate_of, "d-computed");
    RawDb db(db_path());
    EXPECT_EQ(db.row("SELECT body_sha256 FROM deliveries WHERE delivery_id = 'd-computed'"),
              (std::vector<std::string>{k_hello_sha256}));
}

TEST_F(SqliteStoreTest, BodiesAreRememberedOnlyFromDeliveriesWithAWindow) {
    auto store = open_store();
    // A delivery with an id and no window is not indexed by its body: it costs nothing extra.
    ASSERT_TRUE(submit(*store, with_body(delivery("d-1", base_), "push", 0ms), {trigger()}));
    auto later = submit(*store, with_body(delivery("d-2", base_ + 1s), "push"), {trigger()});
    ASSERT_TRUE(later);
    EXPECT_FALSE(later->duplicate);
    RawDb db(db_path());
    EXPECT_EQ(db.row("SELECT COUNT(*) FROM deliveries WHERE body_key IS NULL"),
              (std::vector<std::string>{"1"}));
}

TEST_F(SqliteStoreTest, BodyLookupSearchesTheBodyIndex) {
    auto store = open_store();
    ASSERT_TRUE(submit(*store, with_body(delivery("d-1", base_), "push"), {trigger()}));
    RawDb db(db_path());
    // The store's statement (find_body_), as written there: a SCAN would make every submit
    // read all deliveries of its source.
    const auto plan = db.row(R"sql(EXPLAIN QUERY PLAN
SELECT id, delivery_id FROM deliveries INDEXED BY deliveries_body
WHERE body_key = ?1 AND body_sha256 = ?2 AND source = ?3 AND received_at >= ?4
ORDER BY id DESC LIMIT 1)sql");
    ASSERT_EQ(plan.size(), 4u);
    EXPECT_EQ(plan[3], "SEARCH deliveries USING INDEX deliveries_body (body_key=?)");
}

TEST_F(SqliteStoreTest, UpgradesAVersion1DatabaseInPlace) {
    {
        auto store = open_store();
        ASSERT_TRUE(submit(*store, delivery("d-1", base_), {trigger()}));
    }
    {
        // What hookrelay 1 left behind: the same tables, without the body key and its index.
        RawDb db(db_path());
        db.exec(
            "DROP INDEX deliveries_body; ALTER TABLE deliveries DROP COLUMN body_key;"
            "PRAGMA user_version = 1;");
    }
    auto store = open_store();
    EXPECT_EQ(due(*store, "ci", base_).size(), 1u);
    ASSERT_TRUE(submit(*store, with_body(delivery("d-2", base_ + 1s), "push"), {trigger()}));
    auto replay = submit(*store, with_body(delivery("d-3", base_ + 2s), "push"), {trigger()});
    ASSERT_TRUE(replay);
    EXPECT_TRUE(replay->duplicate);
    EXPECT_EQ(replay->duplicate_of, "d-2");
    RawDb db(db_path());
    EXPECT_EQ(db.row("PRAGMA user_version"), (std::vector<std::string>{"2"}));
}

}  // namespace
