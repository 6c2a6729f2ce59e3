// What the SQLite store does beyond the contract suite (tests/store/contract/): durability across
// kill -9, group commit, another connection holding the database, the errors and health that
// follow, its indexes, pruning on its own, and being released from its own callback.
#include "store/codec.hpp"
#include "store/contract/chores.hpp"
#include "store/sqlite/admin.hpp"
#include "store/sqlite/gathering_vfs.hpp"
#include "store/sqlite/prune.hpp"
#include "store/sqlite_test_support.hpp"
#include "support/daemon.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

namespace hookrelay::store::test {
namespace {

using SqliteStoreTest = SqliteFixture;

// A store released from one of its own answers: its threads let go of the state directory on
// their own. Polls until it opens again (nullptr, and a failure, when it does not in time).
std::shared_ptr<SqliteStore> open_once_released(const std::string& dir, const StoreConfig& config) {
    const auto deadline = std::chrono::steady_clock::now() + k_deadline;
    for (;;) {
        auto attempt = SqliteStore::open(dir, config);
        if (attempt) return *attempt;
        if (attempt.error() != make_error_code(errc::store_locked) ||
            std::chrono::steady_clock::now() >= deadline) {
            ADD_FAILURE() << "the store did not open again: " << attempt.error().message();
            return nullptr;
        }
        std::this_thread::sleep_for(5ms);  // poll interval
    }
}

/// Holds an exclusive lock on the store's database from a second connection while it lives.
class ExclusiveLock {
  public:
    explicit ExclusiveLock(const std::string& path) : db_(path) { db_.exec("BEGIN EXCLUSIVE"); }
    ~ExclusiveLock() {
        try {
            db_.exec("ROLLBACK");
        } catch (...) {
        }
    }

  private:
    RawDb db_;
};

/// `size` bytes with nothing for LZ4 to find (xorshift32 from `seed`): a body stored as is.
std::string incompressible(std::size_t size, std::uint32_t seed = 2463534242u) {
    std::string out(size, '\0');
    for (auto& c : out) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        c = static_cast<char>(seed & 0xff);
    }
    return out;
}

/// Holds the store thread in a callback while `queue` posts calls to the store: they then share
/// one transaction.
void while_the_store_thread_is_held(SqliteStore& store, const std::function<void()>& queue) {
    std::promise<void> gate;
    auto entered = std::make_shared<std::promise<void>>();
    store.backlog([opened = gate.get_future().share(), entered](result<Backlog>) {
        entered->set_value();
        opened.wait_for(k_deadline);
    });
    ASSERT_EQ(entered->get_future().wait_for(k_deadline), std::future_status::ready);
    queue();
    gate.set_value();
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
    const auto found = claim(*store, "ci", base_);
    ASSERT_EQ(found.claims.size(), 1u);
    EXPECT_EQ(found.claims[0].trigger.delivery_id, "d-kill");
}

// store.intake_log: every submission answered before the process was killed is in the store
// after it opens again, with the trigger id its answer gave, however far its indexing had got
// (the kill lands while hundreds are being logged and indexed). Six rounds over one directory;
// every other one opens the store again with the log off (an operator turning it off after a
// crash): the records the log held are indexed all the same. The store runs as the daemon opens
// it where every answer comes from the log (store_thread_yields); each body (packed: it
// compresses) and its digest read back as sent, after a replay too.
TEST_F(SqliteStoreTest, WithTheIntakeLogEveryAnsweredSubmissionSurvivesKill9) {
    config_.intake_log = true;
    const auto body_of = [](const std::string& id) {
        std::string body;
        for (int i = 0; i < 40; ++i) body += R"({"delivery": ")" + id + R"(", "n": 1}, )";
        return body;
    };
    std::map<std::string, std::string> answered;  // delivery id -> its trigger's id
    int reopened_off_with_records_in_the_log = 0;
    for (int round = 0; round < 6; ++round) {
        int pipe_fds[2];
        ASSERT_EQ(pipe(pipe_fds), 0);
        const pid_t child = fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            close(pipe_fds[0]);
            try {
                SqliteOptions options;
                options.store_thread_yields = true;
                auto store = SqliteStore::open(dir_.path(), config_, options);
                if (!store) _exit(1);
                // All at once: the answers come back as the log syncs each group. Each is one
                // line on the pipe, "<delivery id> <trigger id>\n", under PIPE_BUF.
                for (int i = 0; i < 3000; ++i) {
                    const std::string id = "r" + std::to_string(round) + "-" + std::to_string(i);
                    (*store)->submit(with_body(delivery(id, base_), body_of(id), 0ms), {trigger()},
                                     [fd = pipe_fds[1], id](result<Receipt> r) {
                                         if (!r || r->duplicate || r->trigger_ids.size() != 1) {
                                             _exit(2);
                                         }
                                         const std::string line =
                                             id + " " + r->trigger_ids[0] + "\n";
                                         if (write(fd, line.data(), line.size()) !=
                                             static_cast<ssize_t>(line.size())) {
                                             _exit(3);
                                         }
                                     });
                }
                for (;;) pause();
            } catch (...) {
                _exit(4);
            }
        }
        close(pipe_fds[1]);
        // Kill it once some of this round's answers are out.
        std::string text;
        const std::size_t wanted = 200 + 300 * static_cast<std::size_t>(round);
        const auto deadline = std::chrono::steady_clock::now() + k_deadline;
        while (static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) < wanted) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "too few answers";
            pollfd readable{pipe_fds[0], POLLIN, 0};
            if (poll(&readable, 1, 100) != 1) continue;
            char buffer[4096];
            const ssize_t n = read(pipe_fds[0], buffer, sizeof buffer);
            ASSERT_GT(n, 0) << "the child ended";
            text.append(buffer, static_cast<std::size_t>(n));
        }
        kill(child, SIGKILL);
        int status = 0;
        waitpid(child, &status, 0);
        ASSERT_TRUE(WIFSIGNALED(status)) << "the child ended by itself: " << status;
        char buffer[4096];
        for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
            text.append(buffer, static_cast<std::size_t>(n));
        }
        close(pipe_fds[0]);
        std::istringstream lines(text);
        for (std::string id, trigger_id; lines >> id >> trigger_id;) answered[id] = trigger_id;

        const bool log_off = round % 2 == 1;
        if (log_off) {
            std::set<std::string> indexed;
            for (auto& row : RawDb(db_path()).rows("SELECT delivery_id FROM deliveries")) {
                indexed.insert(std::move(row[0]));
            }
            if (std::any_of(answered.begin(), answered.end(),
                            [&](const auto& a) { return !indexed.contains(a.first); })) {
                ++reopened_off_with_records_in_the_log;
            }
        }
        StoreConfig reopen = config_;
        reopen.intake_log = !log_off;
        auto opened = SqliteStore::open(dir_.path(), reopen);
        ASSERT_TRUE(opened) << opened.error().message();
        auto store = *opened;
        std::map<std::string, std::string> stored;
        for (const auto& c : claim(*store, "ci", base_, 100'000, 0, 1ms).claims) {
            stored[c.trigger.delivery_id] = c.trigger.id;
        }
        for (const auto& [id, trigger_id] : answered) {
            const auto it = stored.find(id);
            ASSERT_NE(it, stored.end())
                << "round " << round << " (the log " << (log_off ? "off" : "on") << "): answered "
                << id << ", lost";
            EXPECT_EQ(it->second, trigger_id) << id;
        }
        // Shown as stored: each answered delivery's body, and its digest (computed from the
        // body as it is read: none was stored with it).
        std::vector<std::string> wrong;  // the delivery ids whose body or digest is not theirs
        for (const auto& [id, trigger_id] : answered) {
            const auto detail = get(*store, "github-main", id);
            if (!detail || detail->body != body_of(id) ||
                detail->body_sha256 != store::sha256_hex(body_of(id))) {
                wrong.push_back(id);
            }
        }
        EXPECT_TRUE(wrong.empty()) << "round " << round << ": " << wrong.size() << ", the first "
                                   << (wrong.empty() ? "" : wrong.front());
    }
    // The kills land while the index is behind the answers (the log waits for no index work).
    EXPECT_GT(reopened_off_with_records_in_the_log, 0);
}

// The store writes its WAL through a VFS that gathers a commit's frames into one write
// (gathering_vfs.hpp). Each commit must still be in the file when its call is answered: a second
// connection (the default VFS, as an operator's sqlite3 shell) sees it at once, both for submits
// (synced) and for queue operations (committed without a sync, published to readers at once).
TEST_F(SqliteStoreTest, EachCommitIsInTheWalWhenAnsweredWrittenInFewCalls) {
    auto store = open_store();
    RawDb raw(db_path());
    const auto before = sqlite::vfs_counts();
    for (int i = 1; i <= 20; ++i) {
        const std::string n = std::to_string(i);
        accept(*store, with_body(delivery("d-" + n, base_), std::string(9000, 'b') + n),
               {trigger()});
        EXPECT_EQ(raw.row("SELECT count(*) FROM deliveries"), (std::vector<std::string>{n}));
        const auto batch = claim(*store, "ci", base_);
        ASSERT_EQ(batch.claims.size(), 1u);
        EXPECT_EQ(raw.row("SELECT count(*) FROM triggers WHERE claim_id IS NOT NULL"),
                  (std::vector<std::string>{"1"}));
        ASSERT_EQ(complete(*store, batch.claims[0].claim_id,
                           finish(batch.claims[0].trigger.id, TriggerState::delivered, base_)),
                  Completion::applied);
        EXPECT_EQ(raw.row("SELECT count(*) FROM triggers WHERE state = 'delivered'"),
                  (std::vector<std::string>{n}));
    }
    const auto after = sqlite::vfs_counts();
    const auto asked = after.wal_asked - before.wal_asked;
    const auto made = after.wal_made - before.wal_made;
    // Each commit writes several frames (a 9,000-byte body alone takes three pages), two writes
    // each; gathered, a commit takes one.
    EXPECT_GE(asked, 60u * 2);
    EXPECT_LE(made, 60u + 10u) << asked << " writes asked for";
}

// A disk that fails the write of a commit's gathered WAL frames (EIO), or is full (ENOSPC): the
// submit is answered with the error, nothing of it is kept, and the store goes on. The WAL and the
// database file, copied as a kill -9 would leave them (without the wal-index, so SQLite recovers
// from the WAL alone), hold exactly the deliveries that were acknowledged: a failed commit's
// frames must never reach the file later, when something else makes the VFS write what it holds.
TEST_F(SqliteStoreTest, AFailedWalWriteFailsItsCommitAndTheFilesKeepOnlyWhatWasAcknowledged) {
    auto store = open_store();
    const auto body_of = [](const std::string& id) { return std::string(9000, 'b') + id; };
    const auto submit_one = [&](const std::string& id) {
        return submit(*store, with_body(delivery(id, base_), body_of(id)), {trigger()});
    };
    const auto recovered_ids = [&](const std::string& name) {
        RawDb recovered(copy_as_a_crash_leaves_it(db_path(), dir_.path() + "/" + name));
        EXPECT_EQ(recovered.row("PRAGMA integrity_check"), (std::vector<std::string>{"ok"}));
        std::vector<std::string> ids;
        for (const auto& r : recovered.rows("SELECT delivery_id FROM deliveries ORDER BY id")) {
            ids.push_back(r.at(0));
        }
        return ids;
    };
    // The error a submit is answered with when the disk fails its write with `error`.
    const auto refusal_on_a_failing_disk = [&](int error, const std::string& id) {
        FailingWrites disk("-wal", error, 1);
        const auto answer = submit_one(id);
        EXPECT_EQ(disk.failed(), 1) << id;
        return answer ? boost::system::error_code() : answer.error();
    };

    ASSERT_TRUE(submit_one("d-1"));
    EXPECT_EQ(refusal_on_a_failing_disk(EIO, "d-2"), make_error_code(errc::store_unavailable));
    // Reads of the store, then a copy of its files, before any later commit could write over
    // where the failed one's frames would have gone.
    EXPECT_FALSE(get(*store, "github-main", "d-2"));
    ASSERT_TRUE(get(*store, "github-main", "d-1"));
    EXPECT_EQ(recovered_ids("after-eio"), (std::vector<std::string>{"d-1"}));

    ASSERT_TRUE(submit_one("d-3"));
    EXPECT_EQ(refusal_on_a_failing_disk(ENOSPC, "d-4"), make_error_code(errc::store_full));
    ASSERT_TRUE(submit_one("d-5"));

    for (const std::string id : {"d-1", "d-3", "d-5"}) {
        const auto detail = get(*store, "github-main", id);
        ASSERT_TRUE(detail) << id;
        EXPECT_EQ(detail->body, body_of(id));
    }
    EXPECT_FALSE(get(*store, "github-main", "d-4"));
    EXPECT_EQ(claim(*store, "ci", base_).claims.size(), 3u);
    EXPECT_EQ(recovered_ids("after-enospc"), (std::vector<std::string>{"d-1", "d-3", "d-5"}));
}

// Checkpoints copy what the WAL holds into the database file, reading it through the store's
// VFS: every commit must get there. Another connection checks the file and counts the deliveries
// and the store reads bodies back; then the same once the store was closed and its WAL is gone,
// from the database file alone.
TEST_F(SqliteStoreTest, EveryCommitReachesTheDatabaseFileThroughCheckpoints) {
    auto store = open_store();
    constexpr int k_deliveries = 300;  // ~2,400 WAL pages: at least two checkpoints
    const auto body_of = [](int i) {
        return std::string(9000, static_cast<char>('a' + i % 26)) + std::to_string(i);
    };
    for (int i = 0; i < k_deliveries; ++i) {
        accept(*store, with_body(delivery("d-" + std::to_string(i), base_), body_of(i)),
               {trigger()});
    }

    const auto check = [&](RawDb& raw) {
        EXPECT_EQ(raw.row("PRAGMA integrity_check"), (std::vector<std::string>{"ok"}));
        EXPECT_EQ(raw.row("SELECT count(*) FROM deliveries"),
                  (std::vector<std::string>{std::to_string(k_deliveries)}));
        for (int i = 0; i < k_deliveries; i += 37) {
            const auto detail = get(*store, "github-main", "d-" + std::to_string(i));
            ASSERT_TRUE(detail);
            EXPECT_EQ(detail->body, body_of(i));
        }
    };
    {
        RawDb raw(db_path());
        check(raw);
    }
    store.reset();
    ASSERT_FALSE(std::filesystem::exists(db_path() + "-wal"));
    store = open_store();
    RawDb raw(db_path());
    check(raw);
}

// SQLite's own automatic checkpoint ignores a failure: the WAL then grows with every commit and
// nobody hears of it. The store checkpoints itself after its commits and reports a failure through
// on_error(), once however many commits try again (at most once a minute); the commits go on.
// A store opened on such a WAL while the disk still fails reports it to its first on_error()
// callback. Once the disk writes again, every delivery reaches the database file.
TEST_F(SqliteStoreTest, ACheckpointThatFailsIsReportedOnceAndTheCommitsGoOn) {
    struct Errors {
        std::mutex mutex;
        std::vector<std::string> lines;
        std::size_t checkpoint_lines() {
            std::lock_guard lock(mutex);
            return static_cast<std::size_t>(
                std::count_if(lines.begin(), lines.end(), [](const std::string& line) {
                    return line.find(
                               "checkpoint: cannot copy the WAL into the database file: "
                               "disk I/O error; the WAL holds every commit since the last "
                               "checkpoint (") != std::string::npos &&
                           line.ends_with(" pages) and grows until one succeeds");
                }));
        }
        std::size_t count() {
            std::lock_guard lock(mutex);
            return lines.size();
        }
        std::string all() {
            std::lock_guard lock(mutex);
            return ::testing::PrintToString(lines);
        }
    };
    const auto listen = [](SqliteStore& store, Errors& errors) {
        store.on_error([&errors](std::string_view e) {
            std::lock_guard lock(errors.mutex);
            errors.lines.emplace_back(e);
        });
    };
    // Bodies LZ4 cannot shrink: ~3 WAL pages each, so the WAL passes SQLite's threshold of 1,000
    // pages and every later commit tries its checkpoint again.
    std::mt19937 random(12);
    const auto body_of = [&](int i) {
        std::string body(9000, ' ');
        for (auto& c : body) c = static_cast<char>('!' + random() % 90);
        return body + std::to_string(i);
    };
    constexpr int k_deliveries = 600;
    std::vector<std::string> bodies;
    Errors before;
    Errors reopened;
    auto store = open_store();  // creating the file writes it
    listen(*store, before);
    {
        FailingWrites disk(".db", EIO, 1'000'000);
        for (int i = 0; i < k_deliveries; ++i) {
            bodies.push_back(body_of(i));
            accept(*store, with_body(delivery("d-" + std::to_string(i), base_), bodies.back()),
                   {trigger()});
        }
        EXPECT_GT(disk.failed(), 1) << "the checkpoints did not try to write the database file";
        EXPECT_EQ(before.checkpoint_lines(), 1u) << before.all();
        EXPECT_EQ(before.count(), 1u) << before.all();

        // Closed and opened again on the same disk: its first commit finds the WAL as full.
        store.reset();
        ASSERT_TRUE(std::filesystem::exists(db_path() + "-wal"));
        store = open_store();
        listen(*store, reopened);
        const auto deadline = std::chrono::steady_clock::now() + k_deadline;
        while (reopened.checkpoint_lines() == 0) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << reopened.all();
            std::this_thread::sleep_for(5ms);  // poll interval
        }
        EXPECT_EQ(reopened.checkpoint_lines(), 1u) << reopened.all();
        EXPECT_EQ(reopened.count(), 1u) << reopened.all();
        for (int i = 0; i < k_deliveries; i += 97) {
            const auto detail = get(*store, "github-main", "d-" + std::to_string(i));
            ASSERT_TRUE(detail);
            EXPECT_EQ(detail->body, bodies[static_cast<std::size_t>(i)]);
        }
    }

    // The disk writes again: closing the store copies the WAL back and removes it, and the
    // database file alone holds every delivery.
    accept(*store, delivery("after", base_), {trigger()});
    store.reset();
    ASSERT_FALSE(std::filesystem::exists(db_path() + "-wal"));
    RawDb raw(db_path());
    EXPECT_EQ(raw.row("PRAGMA integrity_check"), (std::vector<std::string>{"ok"}));
    EXPECT_EQ(raw.row("SELECT count(*) FROM deliveries"),
              (std::vector<std::string>{std::to_string(k_deliveries + 1)}));
}

// Each job of a group transaction runs under a savepoint, whose journal of the pages it changed
// SQLite would move to a temporary file past 64 KiB (and then write each page's image there with
// two system calls). The store keeps temporary files in memory: a burst of submits, claims and
// outcomes, each group in one transaction, opens none.
TEST_F(SqliteStoreTest, GroupTransactionsOpenNoTemporaryFiles) {
    auto store = open_store();
    const auto before = sqlite::vfs_counts();
    constexpr int k_burst = 200;
    std::vector<std::future<result<Receipt>>> receipts;
    while_the_store_thread_is_held(*store, [&] {
        for (int i = 0; i < k_burst; ++i) {
            auto promise = std::make_shared<std::promise<result<Receipt>>>();
            receipts.push_back(promise->get_future());
            const std::string n = std::to_string(i);
            store->submit(with_body(delivery("d-" + n, base_), std::string(9000, 'b') + n),
                          {trigger(), trigger("ci", "other")},
                          [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
        }
    });
    for (auto& receipt : receipts) {
        ASSERT_EQ(receipt.wait_for(k_deadline), std::future_status::ready);
        ASSERT_TRUE(receipt.get());
    }
    const auto batch = claim(*store, "ci", base_, 2 * k_burst);
    ASSERT_EQ(batch.claims.size(), 2u * k_burst);
    std::vector<std::future<result<Completion>>> completions;
    while_the_store_thread_is_held(*store, [&] {
        for (const auto& c : batch.claims) {
            auto promise = std::make_shared<std::promise<result<Completion>>>();
            completions.push_back(promise->get_future());
            store->complete(c.claim_id, finish(c.trigger.id, TriggerState::delivered, base_),
                            [promise](result<Completion> r) { promise->set_value(std::move(r)); });
        }
    });
    for (auto& completion : completions) {
        ASSERT_EQ(completion.wait_for(k_deadline), std::future_status::ready);
        ASSERT_TRUE(completion.get());
    }
    EXPECT_EQ(sqlite::vfs_counts().temporary_files - before.temporary_files, 0u);
}

TEST_F(SqliteStoreTest, SubmissionsWaitingTogetherShareOneTransaction) {
    auto store = open_store();
    auto batches = std::make_shared<std::vector<std::size_t>>();
    auto mutex = std::make_shared<std::mutex>();
    store->on_commit_stats([batches, mutex](std::chrono::duration<double> s, std::size_t n) {
        std::lock_guard lock(*mutex);
        if (s.count() > 0) batches->push_back(n);
    });
    const auto taken = [&] {
        std::lock_guard lock(*mutex);
        return *batches;
    };

    // The stats callback runs before the submit is answered.
    accept(*store, delivery("d-0", base_), {trigger()});
    ASSERT_EQ(taken(), (std::vector<std::size_t>{1}));

    // Five submissions queued while the store thread is held share one transaction.
    std::vector<std::future<result<Receipt>>> answers;
    while_the_store_thread_is_held(*store, [&] {
        for (int i = 1; i <= 5; ++i) {
            auto promise = std::make_shared<std::promise<result<Receipt>>>();
            answers.push_back(promise->get_future());
            store->submit(delivery("d-" + std::to_string(i), base_), {trigger()},
                          [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
        }
    });
    for (auto& answer : answers) {
        ASSERT_EQ(answer.wait_for(k_deadline), std::future_status::ready);
        ASSERT_TRUE(answer.get());
    }
    EXPECT_EQ(taken(), (std::vector<std::size_t>{1, 5}));

    // Admin writes and queue operations are not submit transactions.
    list(*store);
    replay(*store, {"nope"}, base_);
    claim(*store, "ci", base_);
    EXPECT_EQ(taken().size(), 2u);
}

TEST_F(SqliteStoreTest, SubmitFailsWithStoreBusyAndKeepsNothingWhileTheDatabaseIsLocked) {
    SqliteOptions options = quiet();
    options.busy_timeout = 50ms;
    auto store = open_store(options);
    std::mutex mutex;
    std::vector<std::string> errors;
    store->on_error([&](std::string_view e) {
        std::lock_guard lock(mutex);
        errors.emplace_back(e);
    });
    auto stats = std::make_shared<std::atomic<int>>(0);
    store->on_commit_stats([stats](std::chrono::duration<double>, std::size_t) { ++*stats; });

    result<Receipt> refused = Receipt{};
    {
        ExclusiveLock lock(db_path());
        refused = submit(*store, delivery("d-1", base_), {trigger()});
    }
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), make_error_code(errc::store_busy));
    EXPECT_TRUE(is_retryable(refused.error()));
    EXPECT_EQ(stats->load(), 1) << "a failed transaction is reported too";
    {
        std::lock_guard lock(mutex);
        ASSERT_EQ(errors.size(), 1u);
        EXPECT_NE(errors[0].find("locked"), std::string::npos) << errors[0];
    }

    EXPECT_TRUE(backlog(*store).empty());
    const auto accepted = accept(*store, delivery("d-1", base_), {trigger()});
    EXPECT_FALSE(accepted.duplicate);  // the failed attempt left no trace
}

TEST_F(SqliteStoreTest, QueueAndAdminWritesFailWithStoreBusyWhileLocked) {
    SqliteOptions options = quiet();
    options.busy_timeout = 50ms;
    auto store = open_store(options);
    const auto id = accept(*store, delivery("d-1", base_), {trigger()}).trigger_ids[0];

    result<Replayed> replayed = Replayed{};
    result<ClaimBatch> claimed = ClaimBatch{};
    {
        ExclusiveLock lock(db_path());
        replayed = wait_answer<result<Replayed>>(
            [&](auto done) { store->replay({id}, base_ + 1h, std::move(done)); });
        claimed = wait_answer<result<ClaimBatch>>([&](auto done) {
            store->claim(ClaimRequest{"ci", 10, 0, base_, k_lease}, std::move(done));
        });
    }
    ASSERT_FALSE(replayed);
    EXPECT_EQ(replayed.error(), make_error_code(errc::store_busy));
    ASSERT_FALSE(claimed);
    EXPECT_EQ(claimed.error(), make_error_code(errc::store_busy));
    // Nothing of either was kept.
    EXPECT_TRUE(history_of(*store, "d-1", id).attempts.empty());
    EXPECT_EQ(claim(*store, "ci", base_).claims.size(), 1u);
}

TEST_F(SqliteStoreTest, HealthTurnsBadAtAFailureAndGoodAtTheNextCommit) {
    SqliteOptions options = quiet();
    options.busy_timeout = 50ms;
    auto store = open_store(options);
    EXPECT_TRUE(store->health().ok);
    {
        ExclusiveLock lock(db_path());
        ASSERT_FALSE(submit(*store, delivery("d-1", base_), {trigger()}));
    }
    const auto bad = store->health();
    EXPECT_FALSE(bad.ok);
    EXPECT_NE(bad.detail.find("submit of 1 deliveries failed"), std::string::npos) << bad.detail;
    EXPECT_EQ(bad.detail.find('\n'), std::string::npos);
    list(*store);
    EXPECT_FALSE(store->health().ok) << "a read proves nothing about writes";
    accept(*store, delivery("d-1", base_), {trigger()});
    EXPECT_TRUE(store->health().ok);
}

TEST_F(SqliteStoreTest, HeartbeatRestoresHealthWithoutTraffic) {
    SqliteOptions options = quiet();
    options.busy_timeout = 50ms;
    options.heartbeat_interval = 20ms;
    auto store = open_store(options);
    {
        ExclusiveLock lock(db_path());
        ASSERT_FALSE(submit(*store, delivery("d-1", base_), {trigger()}));
        EXPECT_FALSE(store->health().ok);
    }
    const auto deadline = std::chrono::steady_clock::now() + k_deadline;
    while (!store->health().ok) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << store->health().detail;
        std::this_thread::sleep_for(5ms);  // poll interval
    }
}

TEST_F(SqliteStoreTest, HeartbeatKeepsTheInstanceListed) {
    SqliteOptions options = quiet();
    options.instance_id = "beating";
    options.heartbeat_interval = 10ms;
    auto store = open_store(options);
    const auto first = instances(*store).at(0).heartbeat_at;
    const auto deadline = std::chrono::steady_clock::now() + k_deadline;
    while (instances(*store).at(0).heartbeat_at <= first) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no heartbeat";
        std::this_thread::sleep_for(5ms);  // poll interval
    }
    EXPECT_EQ(instances(*store).at(0).id, "beating");
}

TEST_F(SqliteStoreTest, ReachingMaxSizeAnswersStoreFullUntilPruningMakesRoom) {
    config_.max_size = 192 * 1024;
    config_.retention = 0ms;
    auto store = open_store();
    accept(*store, delivery("d-small", base_), {trigger()});
    const std::string body = incompressible(32 * 1024);
    std::optional<boost::system::error_code> refusal;
    for (int i = 0; i < 20 && !refusal; ++i) {
        auto d = delivery("d-" + std::to_string(i), base_);
        d.body = body;
        if (auto r = submit(*store, d, {}); !r) refusal = r.error();
    }
    ASSERT_TRUE(refusal) << "never full";
    EXPECT_EQ(*refusal, make_error_code(errc::store_full));
    EXPECT_TRUE(is_retryable(*refusal));

    // Claims still fit in a full file, but only room for deliveries makes the store healthy.
    EXPECT_FALSE(store->health().ok);
    EXPECT_NE(store->health().detail.find("full"), std::string::npos) << store->health().detail;
    EXPECT_EQ(claim(*store, "ci", base_).claims.size(), 1u);
    EXPECT_FALSE(store->health().ok) << "a claim does not show that deliveries fit again";

    EXPECT_GT(prune(*store, Clock::now() + 1s), 0u);
    EXPECT_TRUE(store->health().ok);
    auto d = delivery("d-after", base_);
    d.body = body;
    EXPECT_TRUE(submit(*store, d, {trigger()}));
}

// The database's files, copied aside and back: a backup taken with the store closed, restored.
void copy_database(const std::string& from_dir, const std::string& to_dir) {
    std::filesystem::create_directories(to_dir);
    for (const char* suffix : {"", "-wal"}) {
        const std::string name = std::string("hookrelay.db") + suffix;
        std::filesystem::remove(to_dir + "/" + name);
        if (std::filesystem::exists(from_dir + "/" + name)) {
            std::filesystem::copy_file(from_dir + "/" + name, to_dir + "/" + name);
        }
    }
    std::filesystem::remove(to_dir + "/hookrelay.db-shm");
}

// The intake log and its database go together. A start on another database (a new file, after
// the old one was moved away as damaged) next to a log with records it has not indexed is
// refused, saying why and what to do: indexing them would queue every one of their builds
// again. <state_dir>/intake/adopt makes one start index them all the same.
TEST_F(SqliteStoreTest, WithTheIntakeLogANewDatabaseNextToTheLogIsRefusedUnlessAdopted) {
    config_.intake_log = true;
    {
        auto store = open_store();
        for (int i = 0; i < 3; ++i) {
            ASSERT_TRUE(submit(*store, delivery("d-" + std::to_string(i), base_), {trigger()}));
        }
    }
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db_path() + suffix);

    std::string why;
    auto refused = SqliteStore::open(dir_.path(), config_, quiet(), &why);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), make_error_code(errc::store_incompatible));
    const std::string intake = dir_.path() + "/intake";
    EXPECT_NE(
        why.find("the intake log in " + intake + " was written for another database (its id "),
        std::string::npos)
        << why;
    EXPECT_NE(why.find("the database's none: a new file, or a copy older than the log) and "
                       "holds 3 deliveries this database has not indexed"),
              std::string::npos)
        << why;
    EXPECT_NE(why.find("create the file " + intake + "/adopt and start again"), std::string::npos)
        << why;
    EXPECT_TRUE(RawDb(db_path()).rows("SELECT delivery_id FROM deliveries").empty());

    std::ofstream(intake + "/adopt").close();
    std::vector<std::string> warned;
    auto options = quiet();
    options.warn = [&](const std::string& line) { warned.push_back(line); };
    {
        auto adopted = SqliteStore::open(dir_.path(), config_, options, &why);
        ASSERT_TRUE(adopted) << why;
        EXPECT_EQ(claim(**adopted, "ci", base_).claims.size(), 3u);
    }
    ASSERT_EQ(warned.size(), 1u);
    EXPECT_NE(warned[0].find("intake log: indexing 3 deliveries of " + intake), std::string::npos)
        << warned[0];
    EXPECT_FALSE(std::filesystem::exists(intake + "/adopt"));
    // From then on the two go together; an adopt file made again is removed, and adopts nothing
    // later.
    std::ofstream(intake + "/adopt").close();
    warned.clear();
    auto again = SqliteStore::open(dir_.path(), config_, options, &why);
    EXPECT_TRUE(again) << why;
    EXPECT_FALSE(std::filesystem::exists(intake + "/adopt"));
    ASSERT_EQ(warned.size(), 1u);
    EXPECT_NE(warned[0].find("/adopt removed: the log and the database go together"),
              std::string::npos)
        << warned[0];
}

// The same for a log from before the ids (no intake/id) next to a new database.
TEST_F(SqliteStoreTest, WithTheIntakeLogALogFromBeforeTheIdsNextToANewDatabaseIsRefused) {
    config_.intake_log = true;
    {
        auto store = open_store();
        ASSERT_TRUE(submit(*store, delivery("d-old", base_), {trigger()}));
    }
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db_path() + suffix);
    std::filesystem::remove(dir_.path() + "/intake/id");

    std::string why;
    auto refused = SqliteStore::open(dir_.path(), config_, quiet(), &why);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), make_error_code(errc::store_incompatible));
    EXPECT_NE(why.find("was written for another database (its id none: older than the ids; the "
                       "database's none: a new file, or a copy older than the log) and holds 1 "
                       "deliveries"),
              std::string::npos)
        << why;
}

// A copy of the log's own database, restored from a backup, indexes what the log holds beyond
// it: the deliveries answered after the backup come back. Also with the log turned off.
TEST_F(SqliteStoreTest, WithTheIntakeLogACopyOfItsOwnDatabaseIndexesWhatTheLogHoldsBeyondIt) {
    for (const bool log_on_after : {true, false}) {
        SCOPED_TRACE(log_on_after ? "the log on after" : "the log off after");
        const std::string dir = dir_.path() + (log_on_after ? "/on" : "/off");
        const std::string backup = dir_.path() + (log_on_after ? "/backup-on" : "/backup-off");
        config_.intake_log = true;
        std::string why;
        auto open = [&] {
            auto store = SqliteStore::open(dir, config_, quiet(), &why);
            EXPECT_TRUE(store) << why;
            return store ? *store : nullptr;
        };
        ASSERT_TRUE(open());
        copy_database(dir, backup);
        {
            auto store = open();
            ASSERT_TRUE(store);
            ASSERT_TRUE(submit(*store, delivery("after-the-backup", base_), {trigger()}));
        }
        copy_database(backup, dir);
        config_.intake_log = log_on_after;
        auto restored = open();
        ASSERT_TRUE(restored);
        const auto found = claim(*restored, "ci", base_);
        ASSERT_EQ(found.claims.size(), 1u);
        EXPECT_EQ(found.claims[0].trigger.delivery_id, "after-the-backup");
    }
}

// A database and a log from before the ids (schema version 12, no intake/id) are tied together
// at their first start, which indexes what the log holds as before.
TEST_F(SqliteStoreTest, WithTheIntakeLogAPairFromBeforeTheIdsIsTiedTogetherAtItsFirstStart) {
    config_.intake_log = true;
    const std::string backup = dir_.path() + "/backup";
    std::string why;
    {
        auto store = SqliteStore::open(dir_.path(), config_, quiet(), &why);
        ASSERT_TRUE(store) << why;
    }
    copy_database(dir_.path(), backup);
    {
        auto store = open_store();
        ASSERT_TRUE(submit(*store, delivery("unindexed-before", base_), {trigger()}));
    }
    copy_database(backup, dir_.path());
    RawDb(db_path()).exec("DROP TABLE intake_log_identity; PRAGMA user_version = 12");
    const std::string id_file = dir_.path() + "/intake/id";
    std::filesystem::remove(id_file);

    {
        auto store = open_store();
        const auto found = claim(*store, "ci", base_);
        ASSERT_EQ(found.claims.size(), 1u);
        EXPECT_EQ(found.claims[0].trigger.delivery_id, "unindexed-before");
    }
    std::ifstream file(id_file);
    std::string log_id;
    file >> log_id;
    EXPECT_EQ(log_id.size(), 32u);
    EXPECT_EQ(RawDb(db_path()).rows("SELECT log_id FROM intake_log_identity"),
              (std::vector<std::vector<std::string>>{{log_id}}));
}

// store.intake_log: what is answered and waits to be indexed is held in memory, so the log waits
// for the index once records of ~16 MiB wait, long before 8 x max_batch of them (4,096) would:
// with the store's thread held, a 20 MiB delivery is answered, the next one only once the
// index has caught up.
TEST_F(SqliteStoreTest, WithTheIntakeLogLargeBodiesWaitingForTheIndexHoldBackTheNextAnswer) {
    config_.intake_log = true;
    auto store = open_store();
    std::promise<void> gate;
    auto entered = std::make_shared<std::promise<void>>();
    store->backlog([opened = gate.get_future().share(), entered](result<Backlog>) {
        entered->set_value();
        opened.wait_for(k_deadline);
    });
    ASSERT_EQ(entered->get_future().wait_for(k_deadline), std::future_status::ready);
    const auto answered = [&](const std::string& id, std::string body) {
        auto promise = std::make_shared<std::promise<result<Receipt>>>();
        store->submit(with_body(delivery(id, base_), std::move(body), 0ms), {trigger()},
                      [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
        return promise->get_future();
    };
    auto large = answered("d-large", incompressible(20u << 20));
    ASSERT_EQ(large.wait_for(k_deadline), std::future_status::ready);
    ASSERT_TRUE(large.get());
    auto next = answered("d-next", "{}");
    // Not answered while the large one waits for the held thread (it would be at once).
    EXPECT_EQ(next.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
    gate.set_value();
    ASSERT_EQ(next.wait_for(k_deadline), std::future_status::ready);
    const auto receipt = next.get();
    ASSERT_TRUE(receipt) << receipt.error().message();
    EXPECT_EQ(receipt->trigger_ids.size(), 1u);
    EXPECT_EQ(get(*store, "github-main", "d-large")->body, incompressible(20u << 20));
}

/// With the intake log: waits until what it answered is in the database (k_deadline at most).
void wait_indexed(const SqliteStore& store) {
    ASSERT_TRUE(hookrelay::test::eventually([&] { return store.unindexed() == 0; }, k_deadline))
        << "never indexed";
}

// The store that fill_until_refused() fills: the intake log, store.max_size 512 KiB, nothing kept
// past a prune. What is answered and not indexed when it fills stays small (one submission per
// transaction: 8 records at most wait for the index), so that a prune frees room for all of it.
void a_store_to_fill(StoreConfig& config) {
    config.intake_log = true;
    config.max_size = 512 * 1024;
    config.retention = 0ms;
    config.max_batch = 1;
}

// With the intake log and store.max_size: submits 4 KiB deliveries, every other one with a
// trigger, until one is refused; returns that refusal. `with_trigger` gets the ids answered with a
// trigger (not prunable while it is open).
std::optional<boost::system::error_code> fill_until_refused(Store& store, TimePoint at,
                                                            std::set<std::string>& with_trigger) {
    const std::string body = incompressible(4 * 1024);
    for (int i = 0; i < 2000; ++i) {
        auto d = delivery("d-" + std::to_string(i), at);
        d.body = body;
        // Every other one without a trigger: the prune's to remove.
        const bool triggered = i % 2 == 1;
        auto r = triggered ? submit(store, d, {trigger()}) : submit(store, d, {});
        if (!r) return r.error();
        if (triggered) with_trigger.insert(d.delivery_id);
    }
    return std::nullopt;
}

// Once the prune made room: submissions are taken again (the held index work is retried each
// second), the store is healthy, and the open triggers are those of `with_trigger` (and of the
// submission taken).
void expect_recovered(Store& store, TimePoint at, std::set<std::string> with_trigger) {
    int n = 0;
    ASSERT_TRUE(hookrelay::test::eventually(
        [&] {
            const std::string id = "d-after-" + std::to_string(n++);
            if (!submit(store, delivery(id, at), {trigger()})) return false;
            with_trigger.insert(id);
            return true;
        },
        k_deadline))
        << "still refused after the prune";
    EXPECT_TRUE(store.health().ok) << store.health().detail;
    std::set<std::string> open;
    for (const auto& c : claim(store, "ci", at, 100'000, 0, 1ms).claims) {
        open.insert(c.trigger.delivery_id);
    }
    EXPECT_EQ(open, with_trigger);
}

// With the intake log: once the index work no longer fits, new submissions are refused (not
// answered into a log that cannot be indexed), and a prune run while that work waits frees the
// room for it. Every trigger answered is in the store afterwards.
TEST_F(SqliteStoreTest, WithTheIntakeLogReachingMaxSizeRefusesUntilPruningMakesRoom) {
    a_store_to_fill(config_);
    auto store = open_store();
    std::set<std::string> with_trigger;
    const auto refusal = fill_until_refused(*store, base_, with_trigger);
    ASSERT_TRUE(refusal) << "never refused";
    EXPECT_EQ(*refusal, make_error_code(errc::store_full));
    EXPECT_FALSE(store->health().ok);
    // A prune that removes nothing frees nothing: still not healthy (answered webhooks wait).
    EXPECT_EQ(prune(*store, base_ - 24h), 0u);
    EXPECT_FALSE(store->health().ok);

    // The prune overtakes the index work it waits behind; then that work fits, and new
    // submissions are taken again.
    EXPECT_GT(prune(*store, Clock::now() + 1s), 0u);
    expect_recovered(*store, base_, with_trigger);
}

// With the intake log: while answered webhooks wait for room in a full store (for as long as it
// stays full: hours, until an operator acts), nothing piles up behind them. A claim is refused at
// once with the failure (the dispatcher asks again after its poll), and so are a chore claim and
// a submission the ordinary way (no delivery id: its webhook is answered 503 now, not after
// store_timeout); a renewal, a probe's lease and the next due time are answered, so a build
// request at Jenkins keeps its lease; an outcome waits, and is recorded once a prune has made
// room.
TEST_F(SqliteStoreTest, WithTheIntakeLogWaitingForRoomClaimsAreRefusedAndLeasesStillRenew) {
    a_store_to_fill(config_);
    auto store = open_store();
    accept(*store, delivery("d-in-flight", base_), {trigger()});
    ASSERT_NO_FATAL_FAILURE(wait_indexed(*store));
    const auto in_flight = claim(*store, "ci", base_, 1);
    ASSERT_EQ(in_flight.claims.size(), 1u);
    const auto& held = in_flight.claims[0];
    JenkinsHold down;
    down.reason = "connect 10.0.0.5:8080: Connection refused";
    down.since = base_;
    down.next_probe_at = base_;
    hold(*store, "other", down);
    std::set<std::string> with_trigger;
    const auto refusal = fill_until_refused(*store, base_, with_trigger);
    ASSERT_TRUE(refusal) << "never refused";
    ASSERT_EQ(*refusal, make_error_code(errc::store_full));

    ClaimRequest request;
    request.jenkins = "ci";
    request.limit = 100;
    request.now = base_;
    request.lease = k_lease;
    const auto claimed = wait_answer<result<ClaimBatch>>(
        [&](auto done) { store->claim(std::move(request), std::move(done)); });
    ASSERT_FALSE(claimed) << "claimed " << claimed->claims.size() << " while the store is full";
    EXPECT_EQ(claimed.error(), make_error_code(errc::store_full));
    const auto chores = wait_answer<result<ChoreBatch>>([&](auto done) {
        store->claim_chores(chore_request(Chore::status, "github-main", base_), std::move(done));
    });
    ASSERT_FALSE(chores);
    EXPECT_EQ(chores.error(), make_error_code(errc::store_full));
    const auto anonymous = submit(*store, delivery("", base_), {trigger()});
    ASSERT_FALSE(anonymous);
    EXPECT_EQ(anonymous.error(), make_error_code(errc::store_full));
    EXPECT_EQ(renew(*store, {held.claim_id}, Clock::now()), Ids{held.claim_id});
    EXPECT_TRUE(try_probe(*store, "other", base_));
    EXPECT_NO_THROW(next_due(*store, "ci"));

    auto outcome = std::make_shared<std::promise<result<Completion>>>();
    auto recorded = outcome->get_future();
    store->complete(held.claim_id, finish(held.trigger.id, TriggerState::delivered, now_ms()),
                    [outcome](result<Completion> r) { outcome->set_value(std::move(r)); });
    // Not before the index work it was posted after (tried again each second meanwhile).
    EXPECT_EQ(recorded.wait_for(1500ms), std::future_status::timeout);
    EXPECT_GT(prune(*store, Clock::now() + 1s), 0u);
    ASSERT_EQ(recorded.wait_for(k_deadline), std::future_status::ready);
    const auto completion = recorded.get();
    ASSERT_TRUE(completion) << completion.error().message();
    EXPECT_EQ(*completion, Completion::applied);
    expect_recovered(*store, base_, with_trigger);
}

// With the intake log: an outcome that joined the transaction of index work, which then failed
// (the database locked by another program), is not answered with that failure: it waits with the
// work, and is recorded once the work commits. Answered with the failure, its trigger would be
// sent again once its claim ran out: a second build.
TEST_F(SqliteStoreTest, WithTheIntakeLogAnOutcomeInAFailedIndexTransactionIsRecordedWithIt) {
    config_.intake_log = true;
    SqliteOptions options = quiet();
    options.busy_timeout = 50ms;
    auto store = open_store(options);
    accept(*store, delivery("d-1", base_), {trigger()});
    ASSERT_NO_FATAL_FAILURE(wait_indexed(*store));
    const auto batch = claim(*store, "ci", base_, 1);
    ASSERT_EQ(batch.claims.size(), 1u);
    const auto& held = batch.claims[0];

    auto outcome = std::make_shared<std::promise<result<Completion>>>();
    auto recorded = outcome->get_future();
    std::optional<ExclusiveLock> lock;
    while_the_store_thread_is_held(*store, [&] {
        lock.emplace(db_path());
        accept(*store, delivery("d-2", base_), {trigger()});  // answered by the log
        store->complete(held.claim_id, finish(held.trigger.id, TriggerState::delivered, now_ms()),
                        [outcome](result<Completion> r) { outcome->set_value(std::move(r)); });
    });
    ASSERT_TRUE(hookrelay::test::eventually([&] { return !store->health().ok; }, k_deadline))
        << "the index work never failed";
    lock.reset();
    ASSERT_EQ(recorded.wait_for(k_deadline), std::future_status::ready);
    const auto completion = recorded.get();
    ASSERT_TRUE(completion) << completion.error().message();
    EXPECT_EQ(*completion, Completion::applied);
    const auto next = claim(*store, "ci", base_ + 24h);
    ASSERT_EQ(next.claims.size(), 1u) << "d-1's trigger is delivered; d-2's is open";
    EXPECT_EQ(next.claims[0].trigger.delivery_id, "d-2");
}

// Submissions the store has not answered are bounded (what the daemon's listener can have
// waiting, SqliteOptions::max_unanswered): behind a store thread that does not come back (a disk
// that stopped answering), webhooks whose callers stopped waiting would otherwise pile up, each
// with its body. Beyond the bound a submission is refused at once with store_busy, and said so;
// once the store answers, submissions are taken again. With and without the intake log (there,
// deliveries without an id wait for the store's thread).
TEST_F(SqliteStoreTest, SubmissionsWaitingForTheStoreAreBounded) {
    for (const bool intake_log : {false, true}) {
        SCOPED_TRACE(intake_log ? "intake log" : "no intake log");
        config_.intake_log = intake_log;
        TempDir dir;
        SqliteOptions options = quiet();
        options.max_unanswered = 3;
        options.max_unanswered_bytes = 10 * 1024;
        std::vector<std::string> reported;  // before the store: it reports until it is closed
        std::mutex mutex;
        auto opened = SqliteStore::open(dir.path(), config_, options);
        ASSERT_TRUE(opened) << opened.error().message();
        auto store = *opened;
        store->on_error([&](std::string_view e) {
            std::lock_guard lock(mutex);
            reported.emplace_back(e);
        });
        std::vector<std::future<result<Receipt>>> waiting;
        const auto post = [&](std::size_t body_size) {
            auto answer = std::make_shared<std::promise<result<Receipt>>>();
            waiting.push_back(answer->get_future());
            auto d = delivery("", base_);  // no id: the store's thread answers it
            d.body = std::string(body_size, static_cast<char>('a' + waiting.size()));
            store->submit(std::move(d), {trigger()},
                          [answer](result<Receipt> r) { answer->set_value(std::move(r)); });
        };
        while_the_store_thread_is_held(*store, [&] {
            post(100);
            post(100);
            post(100);
            post(100);  // a fourth: over max_unanswered
            ASSERT_EQ(waiting[3].wait_for(k_deadline), std::future_status::ready);
            const auto refused = waiting[3].get();
            ASSERT_FALSE(refused);
            EXPECT_EQ(refused.error(), make_error_code(errc::store_busy));
            for (std::size_t i = 0; i < 3; ++i) {
                EXPECT_EQ(waiting[i].wait_for(0ms), std::future_status::timeout) << i;
            }
            const auto health = store->health();
            EXPECT_FALSE(health.ok);
            EXPECT_NE(health.detail.find("3 webhooks (300 bytes of bodies) wait for the store"),
                      std::string::npos)
                << health.detail;
        });
        for (std::size_t i = 0; i < 3; ++i) {
            ASSERT_EQ(waiting[i].wait_for(k_deadline), std::future_status::ready);
            const auto taken = waiting[i].get();
            EXPECT_TRUE(taken) << taken.error().message();
        }
        {
            std::lock_guard lock(mutex);
            ASSERT_FALSE(reported.empty());
            EXPECT_NE(reported[0].find("3 webhooks (300 bytes of bodies) wait for the store"),
                      std::string::npos)
                << reported[0];
        }
        // Their bodies too: 6 KiB waiting, and 6 KiB more would pass 10 KiB.
        waiting.clear();
        while_the_store_thread_is_held(*store, [&] {
            post(6 * 1024);
            post(6 * 1024);
            ASSERT_EQ(waiting[1].wait_for(k_deadline), std::future_status::ready);
            EXPECT_EQ(waiting[1].get().error(), make_error_code(errc::store_busy));
            EXPECT_FALSE(store->health().ok);
        });
        ASSERT_EQ(waiting[0].wait_for(k_deadline), std::future_status::ready);
        EXPECT_TRUE(waiting[0].get());
        // Healthy again once the store has caught up, before any webhook is taken again (a
        // load balancer sends none to an instance whose /readyz is 503).
        EXPECT_TRUE(store->health().ok) << store->health().detail;
        EXPECT_TRUE(submit(*store, delivery("d-after", base_), {trigger()}));
        EXPECT_TRUE(store->health().ok) << store->health().detail;
        if (!intake_log) continue;
        // A delivery the log answers stops counting at its answer, not when the store's thread
        // indexes it: with that thread held, many more than the bound are taken.
        while_the_store_thread_is_held(*store, [&] {
            for (int i = 0; i < 10; ++i) {
                const auto r =
                    submit(*store, delivery("d-" + std::to_string(i), base_), {trigger()});
                EXPECT_TRUE(r) << i << ": " << r.error().message();
            }
        });
    }
}

/// While it lives, files of the process cannot grow past `bytes` (RLIMIT_FSIZE): a write past it
/// fails with EFBIG (SIGXFSZ ignored meanwhile, as it would otherwise end the process).
class FileSizeLimit {
  public:
    explicit FileSizeLimit(rlim_t bytes) {
        previous_signal_ = ::signal(SIGXFSZ, SIG_IGN);
        ::getrlimit(RLIMIT_FSIZE, &previous_);
        rlimit limited = previous_;
        limited.rlim_cur = bytes;
        set_ = ::setrlimit(RLIMIT_FSIZE, &limited) == 0;
    }
    ~FileSizeLimit() {
        ::setrlimit(RLIMIT_FSIZE, &previous_);
        ::signal(SIGXFSZ, previous_signal_);
    }
    FileSizeLimit(const FileSizeLimit&) = delete;
    FileSizeLimit& operator=(const FileSizeLimit&) = delete;
    bool set() const { return set_; }

  private:
    rlimit previous_{};
    sighandler_t previous_signal_ = SIG_DFL;
    bool set_ = false;
};

// With the intake log: once a write of the log failed, what the kernel kept of it is unknown,
// and the log takes nothing more until a restart reads it back. The store says so for as long
// as that lasts, even after the database commits again, and the restart takes webhooks again.
TEST_F(SqliteStoreTest, WithTheIntakeLogAFailedLogWriteKeepsTheStoreUnhealthyUntilARestart) {
    config_.intake_log = true;
    SqliteOptions options = quiet();
    auto store = open_store(options);
    accept(*store, delivery("d-1", base_), {trigger()});
    ASSERT_NO_FATAL_FAILURE(wait_indexed(*store));
    {
        FileSizeLimit limit(1);
        ASSERT_TRUE(limit.set());
        const auto refused = submit(*store, delivery("d-2", base_), {trigger()});
        ASSERT_FALSE(refused);
        EXPECT_EQ(refused.error(), make_error_code(errc::store_unavailable));
    }
    // The database commits again (a claim), and the log still refuses: so does the health.
    EXPECT_EQ(claim(*store, "ci", base_).claims.size(), 1u);
    const auto health = store->health();
    EXPECT_FALSE(health.ok);
    EXPECT_NE(health.detail.find("intake log"), std::string::npos) << health.detail;
    EXPECT_NE(health.detail.find("File too large"), std::string::npos) << health.detail;
    EXPECT_NE(health.detail.find("restart"), std::string::npos) << health.detail;
    const auto again = submit(*store, delivery("d-3", base_), {trigger()});
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error(), make_error_code(errc::store_unavailable));
    EXPECT_FALSE(store->health().ok);

    store.reset();
    store = open_store(options);
    accept(*store, delivery("d-4", base_), {trigger()});
    EXPECT_TRUE(store->health().ok) << store->health().detail;
    EXPECT_TRUE(get(*store, "github-main", "d-1"));
    EXPECT_FALSE(get(*store, "github-main", "d-2"));
    EXPECT_FALSE(get(*store, "github-main", "d-3"));
}

// With the intake log: ids already indexed, posted again among new ones all at once (the log's
// thread looks a batch's ids up in one read transaction), are answered as duplicates; each new
// id is accepted once, and its repeat within the burst is a duplicate.
TEST_F(SqliteStoreTest, WithTheIntakeLogABurstTellsIndexedIdsFromNewOnes) {
    config_.intake_log = true;
    auto store = open_store();
    for (int i = 0; i < 50; ++i) {
        accept(*store, delivery("old-" + std::to_string(i), base_), {trigger()});
    }
    ASSERT_NO_FATAL_FAILURE(wait_indexed(*store));
    std::vector<std::string> ids;
    for (int i = 0; i < 100; ++i) {
        ids.push_back("new-" + std::to_string(i));
        if (i % 2 == 1) ids.push_back("old-" + std::to_string(i / 2));
        if (i % 10 == 9) ids.push_back("new-" + std::to_string(i));
    }
    std::vector<std::future<result<Receipt>>> answers;
    for (const std::string& id : ids) {
        auto promise = std::make_shared<std::promise<result<Receipt>>>();
        answers.push_back(promise->get_future());
        store->submit(delivery(id, base_), {trigger()},
                      [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
    }
    std::set<std::string> accepted;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        ASSERT_EQ(answers[i].wait_for(k_deadline), std::future_status::ready) << ids[i];
        const auto receipt = answers[i].get();
        ASSERT_TRUE(receipt) << ids[i] << ": " << receipt.error().message();
        const bool first = !ids[i].starts_with("old-") && accepted.insert(ids[i]).second;
        EXPECT_EQ(receipt->duplicate, !first) << ids[i];
    }
    EXPECT_EQ(accepted.size(), 100u);
    EXPECT_EQ(claim(*store, "ci", base_, 1000).claims.size(), 150u);
}

TEST_F(SqliteStoreTest, OpenFailsWithAClearReasonWhenTheDirectoryCannotBeCreated) {
    const std::string file = dir_.path() + "/a-file";
    std::ofstream(file) << "not a directory";
    std::string why;
    auto store = SqliteStore::open(file + "/state", config_, {}, &why);
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error(), make_error_code(errc::store_unavailable));
    EXPECT_EQ(why.rfind("cannot open " + file + "/state/hookrelay.db: ", 0), 0u) << why;
    EXPECT_NE(why.find("Not a directory"), std::string::npos) << why;
}

TEST_F(SqliteStoreTest, RefusesAFileThatIsNotADatabase) {
    std::ofstream(db_path()) << std::string(4096, 'z');
    std::string why;
    auto store = SqliteStore::open(dir_.path(), config_, {}, &why);
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error(), make_error_code(errc::store_incompatible));
    EXPECT_FALSE(is_retryable(store.error()));
    EXPECT_NE(why.find("not a database"), std::string::npos) << why;
}

TEST_F(SqliteStoreTest, StoreMayBeReleasedFromItsOwnCallback) {
    // The answer comes from the store's thread, or with the intake log from the log's.
    for (const bool intake_log : {false, true}) {
        SCOPED_TRACE(intake_log ? "with the intake log" : "without the intake log");
        config_.intake_log = intake_log;
        const std::string dir = dir_.path() + (intake_log ? "/with-log" : "/without-log");
        std::filesystem::create_directories(dir);
        auto opened = SqliteStore::open(dir, config_, quiet());
        ASSERT_TRUE(opened);
        auto store = std::move(*opened);  // the test's only reference
        // The answer waits until the test has given up its own reference, so that it surely
        // drops the last one.
        auto gate = std::make_shared<std::promise<void>>();
        auto holder = std::make_shared<std::shared_ptr<SqliteStore>>(store);
        auto answered = std::make_shared<std::promise<bool>>();
        store->submit(delivery("d-1", base_), {trigger()},
                      [holder, answered, let_go = gate->get_future().share()](result<Receipt> r) {
                          let_go.wait_for(k_deadline);
                          holder->reset();  // the last reference: destroyed on this thread
                          answered->set_value(static_cast<bool>(r));
                      });
        store.reset();
        holder.reset();
        gate->set_value();
        auto future = answered->get_future();
        ASSERT_EQ(future.wait_for(k_deadline), std::future_status::ready);
        EXPECT_TRUE(future.get());

        const auto reopened = open_once_released(dir, config_);
        ASSERT_TRUE(reopened);
        EXPECT_EQ(claim(*reopened, "ci", base_).claims.size(), 1u);
        EXPECT_FALSE(accept(*reopened, delivery("d-2", base_), {trigger()}).duplicate);
    }
}

// A caller's handler that throws is the caller's failure: the store thread goes on answering
// everyone else (a throw escaping it would end the process).
TEST_F(SqliteStoreTest, AHandlerThatThrowsLeavesTheStoreAnswering) {
    auto store = open_store();
    auto thrown = std::make_shared<std::promise<void>>();
    store->submit(delivery("d-1", base_), {trigger()}, [thrown](result<Receipt>) {
        thrown->set_value();
        throw std::runtime_error("the caller's own failure");
    });
    ASSERT_EQ(thrown->get_future().wait_for(k_deadline), std::future_status::ready);
    // An empty handler: nobody to answer, nothing to call.
    store->submit(delivery("d-2", base_), {trigger()}, {});
    accept(*store, delivery("d-3", base_), {trigger()});

    auto claimed = std::make_shared<std::promise<void>>();
    ClaimRequest request;
    request.jenkins = "ci";
    request.limit = 1;
    request.now = base_;
    request.lease = k_lease;
    store->claim(request, [claimed](result<ClaimBatch>) {
        claimed->set_value();
        throw std::runtime_error("the caller's own failure");
    });
    ASSERT_EQ(claimed->get_future().wait_for(k_deadline), std::future_status::ready);
    // The claim above committed; the two other triggers are still there to claim.
    EXPECT_EQ(claim(*store, "ci", base_).claims.size(), 2u);
}

TEST_F(SqliteStoreTest, PrunesOnItsOwnEveryInterval) {
    config_.retention = 0ms;
    config_.prune_interval = 10ms;
    auto store = open_store();
    const auto done = accept(*store, delivery("d-1", base_), {trigger()});
    accept(*store, delivery("d-2", base_), {trigger()});
    settle(*store, "ci", finish(done.trigger_ids[0], TriggerState::delivered, base_));

    const auto deadline = std::chrono::steady_clock::now() + k_deadline;
    while (get(*store, "", "d-1")) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no scheduled prune ran";
        std::this_thread::sleep_for(5ms);  // poll interval
    }
    EXPECT_TRUE(get(*store, "", "d-2"));
    EXPECT_EQ(open_count(*store, "ci"), 1u);
}

TEST_F(SqliteStoreTest, BodiesAreIndexedOnlyForDeliveriesWithAWindow) {
    auto store = open_store();
    accept(*store, with_body(delivery("d-1", base_), "push", 0ms), {trigger()});
    accept(*store, with_body(delivery("d-2", base_), "other", 10min), {trigger()});
    RawDb db(db_path());
    EXPECT_EQ(db.row("SELECT delivery_id FROM deliveries WHERE body_key IS NULL"),
              (std::vector<std::string>{"d-1"}));
}

// The plans of the store's hot statements, as written in src/store/sqlite/: a SCAN would make
// every submit or claim read a whole table.

TEST_F(SqliteStoreTest, BodyLookupSearchesTheBodyIndex) {
    auto store = open_store();
    RawDb db(db_path());
    EXPECT_EQ(
        db.plan(R"sql(
SELECT id, delivery_id FROM deliveries INDEXED BY deliveries_body
WHERE body_key = ?1 AND body_sha256 = ?2 AND source = ?3 AND received_at >= ?4
ORDER BY id DESC LIMIT 1)sql"),
        (std::vector<std::string>{"SEARCH deliveries USING INDEX deliveries_body (body_key=?)"}));
}

TEST_F(SqliteStoreTest, ClaimWalksTheOpenTriggerIndex) {
    auto store = open_store();
    RawDb db(db_path());
    const auto plan = db.plan(R"sql(
SELECT seq FROM triggers
WHERE jenkins = ?3 AND state IN ('pending', 'retrying') AND next_attempt_at <= ?4
    AND (claim_id IS NULL OR claim_expires_at <= ?4)
ORDER BY next_attempt_at, seq
LIMIT ?5)sql");
    EXPECT_EQ(plan,
              (std::vector<std::string>{
                  "SEARCH triggers USING INDEX triggers_due (jenkins=? AND next_attempt_at<?)"}));
}

TEST_F(SqliteStoreTest, CountingLiveClaimsReadsOnlyClaimedTriggers) {
    auto store = open_store();
    RawDb db(db_path());
    const auto plan = db.plan(R"sql(
SELECT COUNT(*) FROM triggers
WHERE jenkins = ?1 AND claim_id IS NOT NULL AND claim_expires_at > ?2)sql");
    EXPECT_EQ(plan,
              (std::vector<std::string>{"SEARCH triggers USING INDEX "
                                        "triggers_claimed (jenkins=? AND claim_expires_at>?)"}));
}

TEST_F(SqliteStoreTest, CountingTheBacklogWalksOnlyTheOpenTriggerIndex) {
    auto store = open_store();
    RawDb db(db_path());
    EXPECT_EQ(db.plan(R"sql(
SELECT MIN(jenkins) FROM triggers INDEXED BY triggers_due
WHERE state IN ('pending', 'retrying') AND jenkins > ?1)sql"),
              (std::vector<std::string>{"SEARCH triggers USING INDEX triggers_due (jenkins>?)"}));
    const std::vector<std::string> within_one_jenkins{
        "SEARCH triggers USING INDEX triggers_due (jenkins=? AND next_attempt_at>?)"};
    EXPECT_EQ(db.plan(R"sql(
SELECT next_attempt_at, seq FROM triggers INDEXED BY triggers_due
WHERE state IN ('pending', 'retrying') AND jenkins = ?1 AND (next_attempt_at, seq) > (?2, ?3)
ORDER BY next_attempt_at, seq
LIMIT 1 OFFSET ?4)sql"),
              within_one_jenkins);
    EXPECT_EQ(db.plan(R"sql(
SELECT COUNT(*) FROM triggers INDEXED BY triggers_due
WHERE state IN ('pending', 'retrying') AND jenkins = ?1 AND (next_attempt_at, seq) > (?2, ?3))sql"),
              within_one_jenkins);
}

// Counting the backlog (each /metrics scrape does) takes a bounded step at a time, with other
// work between the steps: a read posted after the count is answered before it.
TEST_F(SqliteStoreTest, WorkPostedAfterABacklogCountRunsBetweenItsSteps) {
    auto options = quiet();
    options.backlog_step = 2;
    auto store = open_store(options);
    accept(
        *store, delivery("d-1", base_),
        {trigger("alpha"), trigger("alpha"), trigger("alpha"), trigger("beta"), trigger("gamma")});
    std::mutex mutex;
    std::vector<std::string> answered;
    std::promise<result<Backlog>> counted;
    std::promise<void> read;
    while_the_store_thread_is_held(*store, [&] {
        store->backlog([&](result<Backlog> r) {
            {
                std::lock_guard lock(mutex);
                answered.emplace_back("backlog");
            }
            counted.set_value(std::move(r));
        });
        store->holds([&](result<std::map<std::string, JenkinsHold>>) {
            {
                std::lock_guard lock(mutex);
                answered.emplace_back("holds");
            }
            read.set_value();
        });
    });
    auto count = counted.get_future();
    ASSERT_EQ(count.wait_for(k_deadline), std::future_status::ready);
    ASSERT_EQ(read.get_future().wait_for(k_deadline), std::future_status::ready);
    const auto backlog = count.get();
    ASSERT_TRUE(backlog);
    EXPECT_EQ(*backlog, (Backlog{{"alpha", 3}, {"beta", 1}, {"gamma", 1}}));
    std::lock_guard lock(mutex);
    EXPECT_EQ(answered, (std::vector<std::string>{"holds", "backlog"}));
}

TEST_F(SqliteStoreTest, TheUnmatchedListingWalksTheUnmatchedTable) {
    auto store = open_store();
    RawDb db(db_path());
    EXPECT_EQ(db.plan(R"sql(
    SELECT d.id, d.source, d.provider, d.delivery_id, d.kind, d.forge_event, d.received_at,
           d.repository, d.ref
    FROM unmatched u CROSS JOIN deliveries d ON d.id = u.delivery
    WHERE u.delivery < ? AND d.source = ? AND d.received_at >= ?
    ORDER BY u.delivery DESC LIMIT ?)sql"),
              (std::vector<std::string>{"SEARCH u USING INTEGER PRIMARY KEY (rowid<?)",
                                        "SEARCH d USING INTEGER PRIMARY KEY (rowid=?)"}));
}

TEST_F(SqliteStoreTest, APruneStepReadsOnlyTheRangeOfDeliveriesItTakes) {
    auto store = open_store();
    RawDb db(db_path());
    EXPECT_EQ(db.plan("SELECT id, received_at FROM deliveries WHERE id > ?1 ORDER BY id LIMIT ?2"),
              (std::vector<std::string>{"SEARCH deliveries USING INTEGER PRIMARY KEY (rowid>?)"}));
    EXPECT_EQ(db.plan(R"sql(
DELETE FROM triggers INDEXED BY triggers_delivery
WHERE delivery > ?1 AND delivery <= ?2
    AND state IN ('delivered', 'dead', 'superseded') AND updated_at < ?3
    AND follow_due_at IS NULL AND status_wanted_seq <= status_posted_seq)sql"),
              (std::vector<std::string>{
                  "SEARCH triggers USING INDEX triggers_delivery (delivery>? AND delivery<?)"}));
    EXPECT_EQ(db.plan(R"sql(
DELETE FROM deliveries WHERE id > ?1 AND id <= ?2
    AND NOT EXISTS (SELECT 1 FROM triggers t WHERE t.delivery = deliveries.id))sql"),
              (std::vector<std::string>{
                  "SEARCH deliveries USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
                  "CORRELATED SCALAR SUBQUERY 1",
                  "SEARCH t USING COVERING INDEX triggers_delivery (delivery=?)"}));
}

// A long prune pass is done in steps, each a transaction of its own: a submission that arrives
// meanwhile is answered after the step under way, not after the whole pass. Each answered
// submission posts the next, so one is always waiting while the pass runs.
TEST_F(SqliteStoreTest, SubmissionsAreAnsweredBetweenTheStepsOfALongPrune) {
    config_.retention = 1h;
    auto store = open_store();
    constexpr std::size_t k_expired = 4 * sqlite::k_prune_step;
    std::vector<std::future<result<Receipt>>> fill;
    for (std::size_t i = 0; i < k_expired; ++i) {
        auto promise = std::make_shared<std::promise<result<Receipt>>>();
        fill.push_back(promise->get_future());
        store->submit(delivery("old-" + std::to_string(i), base_), {},
                      [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
    }
    for (auto& f : fill) {
        ASSERT_EQ(f.wait_for(k_deadline), std::future_status::ready);
        ASSERT_TRUE(f.get());
    }

    // All on the writer thread: the submissions' answers, the prune's.
    struct Race {
        SqliteStore* store = nullptr;
        TimePoint at;
        bool prune_posted = false;
        bool prune_done = false;
        int sent = 0;
        int during_prune = 0;
        std::promise<void> chain_ended;
    };
    auto race = std::make_shared<Race>();
    race->store = store.get();
    race->at = base_ + 2h;
    std::mutex mutex;  // prune_posted is set on the test's thread
    std::function<void()> send;
    send = [race, &mutex, &send] {
        const std::string id = "new-" + std::to_string(race->sent++);
        race->store->submit(delivery(id, race->at), {}, [race, &mutex, &send](result<Receipt> r) {
            if (!r) ADD_FAILURE() << "a submission failed: " << r.error().message();
            std::lock_guard lock(mutex);
            if (race->prune_done) {
                race->chain_ended.set_value();
                return;
            }
            if (race->prune_posted) ++race->during_prune;
            send();
        });
    };
    auto chain_ended = race->chain_ended.get_future();
    send();
    std::promise<result<std::size_t>> pruned;
    {
        std::lock_guard lock(mutex);
        race->prune_posted = true;
    }
    store->prune(Clock::now() + 2h, [race, &mutex, &pruned](result<std::size_t> r) {
        {
            std::lock_guard lock(mutex);
            race->prune_done = true;
        }
        pruned.set_value(r);
    });
    auto pruned_future = pruned.get_future();
    ASSERT_EQ(pruned_future.wait_for(k_deadline), std::future_status::ready);
    ASSERT_EQ(chain_ended.wait_for(k_deadline), std::future_status::ready);
    const auto removed = pruned_future.get();
    ASSERT_TRUE(removed);
    EXPECT_EQ(*removed, k_expired);
    // A single transaction would let at most the one submission waiting when it started through.
    EXPECT_GE(race->during_prune, 3);
    DeliveryQuery all;
    all.limit = sqlite::Admin::k_max_page;
    EXPECT_EQ(list(*store, all).items.size(), static_cast<std::size_t>(race->sent));
}

// `deliveries show <id>` without a source: the (source, delivery_id) index, one search per source
// (no index on delivery_id alone to update on every submit).
TEST_F(SqliteStoreTest, FindingADeliveryIdInEverySourceSearchesTheUniqueIndex) {
    auto store = open_store();
    RawDb db(db_path());
    const auto plan = db.plan(sqlite::k_find_delivery_anywhere_sql);
    ASSERT_FALSE(plan.empty());
    EXPECT_EQ(plan.front(),
              "SEARCH deliveries USING COVERING INDEX sqlite_autoindex_deliveries_1 "
              "(source=? AND delivery_id=?)");
    for (const auto& step : plan) EXPECT_EQ(step.find("SCAN deliveries"), std::string::npos);
    EXPECT_EQ(db.row("SELECT name FROM sqlite_schema WHERE name = 'deliveries_delivery_id'"),
              std::vector<std::string>{});
}

// A listing with `since` walks down from its cursor to the first delivery received_marks gives
// for the second of `since`, and no further: with a `since` later than most deliveries it reads
// the few received since, not every delivery below the cursor.
TEST_F(SqliteStoreTest, ListingSinceWalksOnlyDownToTheMarkOfItsSecond) {
    auto store = open_store();
    RawDb db(db_path());
    const auto plan_of = [&](sqlite::ListShape shape) {
        return db.plan(sqlite::listing_sql(shape).sql);
    };
    const auto has = [](const std::vector<std::string>& plan, const std::string& step) {
        return std::find(plan.begin(), plan.end(), step) != plan.end();
    };
    const std::string mark =
        "SEARCH received_marks USING COVERING INDEX received_marks_second "
        "(second>?)";
    sqlite::ListShape shape;
    shape.by_since = true;
    auto plan = plan_of(shape);
    EXPECT_TRUE(has(plan, mark)) << testing::PrintToString(plan);
    EXPECT_TRUE(has(plan, "SEARCH d USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"))
        << testing::PrintToString(plan);

    shape.by_source = true;
    plan = plan_of(shape);
    EXPECT_TRUE(has(plan, mark)) << testing::PrintToString(plan);
    EXPECT_TRUE(has(plan,
                    "SEARCH d USING INDEX deliveries_source (source=? AND rowid>? AND "
                    "rowid<?)"))
        << testing::PrintToString(plan);

    shape.by_source = false;
    shape.by_state = true;
    plan = plan_of(shape);
    EXPECT_TRUE(has(plan, mark)) << testing::PrintToString(plan);
    EXPECT_TRUE(has(plan,
                    "SEARCH s USING COVERING INDEX triggers_state (state=? AND delivery>? "
                    "AND delivery<?)"))
        << testing::PrintToString(plan);

    shape.by_state = false;
    shape.outcome = sqlite::OutcomeFilter::unmatched;
    plan = plan_of(shape);
    EXPECT_TRUE(has(plan, mark)) << testing::PrintToString(plan);
    EXPECT_TRUE(has(plan, "SEARCH u USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"))
        << testing::PrintToString(plan);
}

// A listing that checks a filter on every row it walks reads at most k_list_window deliveries
// of its walk per page: a "gitlab" delivery that no rule matched, under 30,000 newer unmatched
// ones of another source, is found by following next_cursor, the first page coming back empty.
// A combination that matches near the cursor fills its page at once.
TEST_F(SqliteStoreTest, AListingCheckingAFilterOnEveryRowReadsABoundedStretchPerPage) {
    auto store = open_store();
    accept(*store, delivery("old", base_, "gitlab"), {});
    {
        RawDb db(db_path());
        db.exec(R"sql(
INSERT INTO deliveries (source, provider, delivery_id, kind, forge_event, received_at, headers,
                        body_sha256)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000)
SELECT 'github-main', provider, 'bulk-' || i, kind, forge_event, received_at, headers, body_sha256
FROM deliveries, n WHERE id = 1;
INSERT INTO unmatched (delivery) SELECT id FROM deliveries WHERE id > 1)sql");
    }
    DeliveryQuery query;
    query.source = "gitlab";
    query.outcome = "unmatched";
    auto page = list(*store, query);
    EXPECT_TRUE(page.items.empty());
    ASSERT_TRUE(page.next_before_seq);
    // Read newest first: ids 30,001 down to 30,002 - k_list_window.
    EXPECT_EQ(*page.next_before_seq, 30'002 - sqlite::k_list_window);
    const auto rest = follow_pages(*store, query, page);
    EXPECT_EQ(rest.found, std::vector<std::string>{"old"});
    EXPECT_EQ(rest.pages, (30'001 + sqlite::k_list_window - 1) / sqlite::k_list_window);

    // Every such walk goes down its index in order, one row at a time: no sort reads it all first.
    RawDb db(db_path());
    const auto sorts = [&](sqlite::ListShape shape, const char* held_state = nullptr) {
        EXPECT_TRUE(sqlite::checks_every_row(shape));
        for (const auto& step : db.plan(sqlite::listing_sql(shape, held_state).sql)) {
            if (step.find("TEMP B-TREE") != std::string::npos) return true;
        }
        return false;
    };
    for (const auto outcome :
         {sqlite::OutcomeFilter::none, sqlite::OutcomeFilter::word,
          sqlite::OutcomeFilter::state_word, sqlite::OutcomeFilter::unmatched}) {
        sqlite::ListShape shape;
        shape.by_source = true;
        shape.by_state = outcome == sqlite::OutcomeFilter::none;
        shape.outcome = outcome;
        EXPECT_FALSE(sorts(shape)) << static_cast<int>(outcome);
        shape.by_since = true;
        EXPECT_FALSE(sorts(shape)) << static_cast<int>(outcome);
    }
    sqlite::ListShape held;
    held.outcome = sqlite::OutcomeFilter::held;
    EXPECT_FALSE(sorts(held, "pending"));
    EXPECT_FALSE(sorts(held, "retrying"));
    sqlite::ListShape both;
    both.by_state = true;
    both.outcome = sqlite::OutcomeFilter::word;
    EXPECT_FALSE(sorts(both));

    query = {};
    query.source = "github-main";
    query.outcome = "unmatched";
    query.limit = 3;
    page = list(*store, query);
    ASSERT_EQ(page.items.size(), 3u);
    EXPECT_EQ(page.items.front().delivery_id, "bulk-30000");
    ASSERT_TRUE(page.next_before_seq);
    EXPECT_EQ(*page.next_before_seq, page.items.back().seq);
}

// `outcome=held` with no Jenkins held answers at once, however many triggers are open: there is
// nothing to walk them for (a stepped walk would read them page after page, keeping none).
TEST_F(SqliteStoreTest, HeldWithNoJenkinsHeldAnswersAnEmptyPageWithoutACursor) {
    auto store = open_store();
    accept(*store, delivery("first", base_), {trigger()});
    {
        RawDb db(db_path());
        db.exec(R"sql(
INSERT INTO deliveries (source, provider, delivery_id, kind, forge_event, received_at, headers,
                        body_sha256)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12000)
SELECT source, provider, 'bulk-' || i, kind, forge_event, received_at, headers, body_sha256
FROM deliveries, n WHERE id = 1;
INSERT INTO triggers (id, delivery, rule, jenkins, job, parameters, cause, state, attempts,
                      created_at, next_attempt_at, updated_at, last_outcome, queue_url)
SELECT 'bulk-' || d.id, d.id, t.rule, t.jenkins, t.job, t.parameters, t.cause, t.state,
       t.attempts, t.created_at, t.next_attempt_at, t.updated_at, t.last_outcome, t.queue_url
FROM deliveries d, triggers t WHERE d.id > 1 AND t.delivery = 1)sql");
    }
    DeliveryQuery query;
    query.state = TriggerState::pending;
    EXPECT_EQ(list(*store, query).items.size(), 50u);  // 12,001 open triggers
    query = {};
    query.outcome = "held";
    const auto page = list(*store, query);
    EXPECT_TRUE(page.items.empty());
    EXPECT_FALSE(page.next_before_seq);
}

// received_marks holds a row per second the receive times reached, not one per delivery, and a
// prune takes the rows of what it removed.
TEST_F(SqliteStoreTest, ReceivedMarksKeepARowPerSecondAndGoWithThePrunedDeliveries) {
    config_.retention = 1h;
    auto store = open_store();
    for (int i = 0; i < 5; ++i) accept(*store, delivery("a-" + std::to_string(i), base_), {});
    for (int i = 0; i < 5; ++i) {
        accept(*store, delivery("b-" + std::to_string(i), base_ + 3s), {trigger()});
    }
    RawDb db(db_path());
    EXPECT_EQ(db.row("SELECT count(*) FROM received_marks"), (std::vector<std::string>{"2"}));
    EXPECT_EQ(prune(*store, Clock::now() + 2h), 5u);  // the a-*; the b-* have open triggers
    EXPECT_EQ(db.row("SELECT count(*) FROM received_marks"), (std::vector<std::string>{"1"}));
    DeliveryQuery query;
    query.since = base_;
    EXPECT_EQ(list(*store, query).items.size(), 5u);
}

// Bodies are kept compressed with LZ4 (schema version 10), read back as received.

std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(SqliteStoreTest, AKeptBodyIsStoredCompressedAndReadsBackAsReceived) {
    const auto push =
        read_text_file(std::string(HOOKRELAY_TEST_DATA_DIR) + "/github/push-branch-update.json");
    ASSERT_GT(push.size(), 8000u);
    auto store = open_store();
    accept(*store, with_body(delivery("d-1", base_), push), {trigger()});
    RawDb db(db_path());
    const auto stored =
        db.row("SELECT length(body), body_lz4_size FROM deliveries WHERE delivery_id = 'd-1'");
    ASSERT_EQ(stored.size(), 2u);
    EXPECT_EQ(stored[1], std::to_string(push.size()));
    EXPECT_LT(std::stoul(stored[0]), push.size() / 2)
        << "the push's 8.8 KB, stored in " << stored[0];
    const auto detail = get(*store, "", "d-1");
    ASSERT_TRUE(detail);
    EXPECT_EQ(detail->body, std::optional<std::string>(push));
}

TEST_F(SqliteStoreTest, ABodyCompressionWouldNotShrinkIsStoredAsReceived) {
    const std::string noise = incompressible(4096);
    auto store = open_store();
    accept(*store, with_body(delivery("noise", base_), noise), {});
    accept(*store, with_body(delivery("empty", base_), ""), {});
    RawDb db(db_path());
    EXPECT_EQ(
        db.rows("SELECT delivery_id, length(body), body_lz4_size FROM deliveries "
                "ORDER BY id"),
        (std::vector<std::vector<std::string>>{{"noise", "4096", "NULL"}, {"empty", "0", "NULL"}}));
    EXPECT_EQ(get(*store, "", "noise")->body, std::optional<std::string>(noise));
    EXPECT_EQ(get(*store, "", "empty")->body, std::optional<std::string>(""));
}

TEST_F(SqliteStoreTest, ADamagedCompressedBodyIsReportedAndTheRestOfItsDeliveryStillReads) {
    auto store = open_store();
    const std::string body(5000, 'y');
    // Damaged as a file could be: a block cut short, bytes overwritten, a size recorded wrong
    // (larger than the block could ever give, negative, one byte off).
    const std::vector<std::pair<std::string, std::string>> damages = {
        {"cut", "body = substr(body, 1, length(body) / 2)"},
        {"overwritten", "body = zeroblob(length(body))"},
        {"huge", "body_lz4_size = 2000000000"},
        {"negative", "body_lz4_size = -5000"},
        {"off-by-one", "body_lz4_size = body_lz4_size + 1"},
    };
    for (const auto& [id, damage] : damages) {
        accept(*store, with_body(delivery(id, base_), std::string(5000, 'x'), 0ms), {trigger()});
    }
    accept(*store, with_body(delivery("intact", base_), body), {trigger()});
    {
        RawDb db(db_path());
        for (const auto& [id, damage] : damages) {
            db.exec("UPDATE deliveries SET " + damage + " WHERE delivery_id = '" + id + "'");
        }
    }
    for (const auto& [id, damage] : damages) {
        const auto detail = get(*store, "", id);
        ASSERT_TRUE(detail) << id;
        EXPECT_EQ(detail->body, std::nullopt) << id;
        EXPECT_NE(detail->body_error.find("the stored body is damaged"), std::string::npos)
            << id << ": " << detail->body_error;
        EXPECT_EQ(detail->triggers.size(), 1u) << id;
        // The digest of a kept body is taken from it as it is read: unknown here.
        EXPECT_EQ(detail->body_sha256, "") << id;
    }
    EXPECT_TRUE(store->health().ok) << "a damaged row is not a store failure";
    const auto intact = get(*store, "", "intact");
    EXPECT_EQ(intact->body, std::optional<std::string>(body));
    EXPECT_EQ(intact->body_error, "");
    EXPECT_EQ(intact->body_sha256, store::sha256_hex(body));
    EXPECT_EQ(list(*store).items.size(), damages.size() + 1);
}

TEST_F(SqliteStoreTest, NoBodyIsStoredWithoutKeepBody) {
    config_.keep_body = false;
    auto store = open_store();
    accept(*store, with_body(delivery("d-1", base_), std::string(5000, 'x')), {trigger()});
    RawDb db(db_path());
    EXPECT_EQ(db.row("SELECT body, body_lz4_size FROM deliveries"),
              (std::vector<std::string>{"NULL", "NULL"}));
    EXPECT_EQ(get(*store, "", "d-1")->body, std::nullopt);
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

}  // namespace
}  // namespace hookrelay::store::test
