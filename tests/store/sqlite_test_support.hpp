// Helpers of the SQLite-specific store tests: the database file opened directly (as an
// operator's sqlite3 shell would), and a fixture that opens the store in a temporary directory.
#pragma once

#include "store/sqlite/sqlite_store.hpp"
#include "store/store_test_support.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <unistd.h>

#include <sys/types.h>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::store::test {

using sqlite::SqliteOptions;
using sqlite::SqliteStore;

/// A second connection to a store's database file, through SQLite's default VFS unless `vfs`
/// names another.
class RawDb {
  public:
    explicit RawDb(const std::string& path, const char* vfs = nullptr) {
        if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) !=
            SQLITE_OK) {
            throw std::runtime_error("cannot open " + path);
        }
        sqlite3_busy_timeout(db_, static_cast<int>(std::chrono::milliseconds(k_deadline).count()));
    }
    ~RawDb() { sqlite3_close(db_); }
    RawDb(const RawDb&) = delete;
    RawDb& operator=(const RawDb&) = delete;

    void exec(const std::string& sql) {
        char* message = nullptr;
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
            std::string text = message ? message : "?";
            sqlite3_free(message);
            throw std::runtime_error(sql + ": " + text);
        }
    }

    /// The first row of a query, each column as text ("NULL" for NULL).
    std::vector<std::string> row(const std::string& sql) {
        auto all = rows(sql);
        return all.empty() ? std::vector<std::string>{} : all.front();
    }

    /// Every row of a query, each column as text ("NULL" for NULL).
    std::vector<std::vector<std::string>> rows(const std::string& sql) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
            throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
        }
        std::vector<std::vector<std::string>> out;
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            std::vector<std::string> columns;
            for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
                const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
                columns.emplace_back(text ? std::string(text, sqlite3_column_bytes(stmt, i))
                                          : "NULL");
            }
            out.push_back(std::move(columns));
        }
        sqlite3_finalize(stmt);
        return out;
    }

    /// The plan of `sql` as EXPLAIN QUERY PLAN reports it, one detail line per step.
    std::vector<std::string> plan(const std::string& sql) {
        std::vector<std::string> out;
        for (const auto& r : rows("EXPLAIN QUERY PLAN " + sql)) out.push_back(r.at(3));
        return out;
    }

  private:
    sqlite3* db_ = nullptr;
};

/// Copies the database file at `path` and its WAL to `copy` and `copy`-wal, as a kill -9 would
/// leave them but without the wal-index: opening the copy recovers it from the WAL alone. Returns
/// `copy`.
inline std::string copy_as_a_crash_leaves_it(const std::string& path, const std::string& copy) {
    std::filesystem::copy_file(path, copy);
    std::filesystem::copy_file(path + "-wal", copy + "-wal");
    return copy;
}

/// While it lives, writes to the files whose path ends in `suffix` ("-wal": the WAL; ".db": the
/// database file, which only checkpoints write) fail with `error` (EIO, ENOSPC), as a failing or
/// full disk would fail them: the first `skip` such writes succeed, the next `count` fail. It
/// swaps the unix VFS's system calls (sqlite3_vfs::xSetSystemCall), which every connection in the
/// process uses, and restores them when it goes. One at a time.
class FailingWrites {
  public:
    FailingWrites(std::string suffix, int error, int count, int skip = 0)
        : vfs_(sqlite3_vfs_find("unix")) {
        if (vfs_ == nullptr || vfs_->iVersion < 3) throw std::runtime_error("no unix VFS");
        state().suffix = std::move(suffix);  // set before the calls are swapped, read after
        state().error = error;
        state().skip = skip;
        state().fail = count;
        state().failed = 0;
        state().pwrite = vfs_->xGetSystemCall(vfs_, "pwrite");
        state().pwrite64 = vfs_->xGetSystemCall(vfs_, "pwrite64");
        state().write = vfs_->xGetSystemCall(vfs_, "write");
        try {
            swap("pwrite", state().pwrite, reinterpret_cast<sqlite3_syscall_ptr>(&failing_pwrite));
            swap("pwrite64", state().pwrite64,
                 reinterpret_cast<sqlite3_syscall_ptr>(&failing_pwrite64));
            swap("write", state().write, reinterpret_cast<sqlite3_syscall_ptr>(&failing_write));
        } catch (...) {
            vfs_->xSetSystemCall(vfs_, nullptr, nullptr);
            throw;
        }
    }
    ~FailingWrites() { vfs_->xSetSystemCall(vfs_, nullptr, nullptr); }  // all back to default
    FailingWrites(const FailingWrites&) = delete;
    FailingWrites& operator=(const FailingWrites&) = delete;

    /// How many writes it made fail so far.
    int failed() const { return state().failed.load(); }

  private:
    struct State {
        std::string suffix;
        std::atomic<int> error{0}, skip{0}, fail{0}, failed{0};
        sqlite3_syscall_ptr pwrite = nullptr, pwrite64 = nullptr, write = nullptr;
    };
    static State& state() {
        static State s;
        return s;
    }
    void swap(const char* name, sqlite3_syscall_ptr real, sqlite3_syscall_ptr failing) {
        // A call this build of SQLite does not use has no entry to swap.
        if (real != nullptr && vfs_->xSetSystemCall(vfs_, name, failing) != SQLITE_OK) {
            throw std::runtime_error(std::string("cannot replace ") + name);
        }
    }
    static bool fails(int fd) {
        char link[64];
        char target[4096];
        std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        const ssize_t n = readlink(link, target, sizeof target);
        if (n < 0 ||
            !std::string_view(target, static_cast<std::size_t>(n)).ends_with(state().suffix)) {
            return false;
        }
        if (state().skip.fetch_sub(1) > 0) return false;
        if (state().fail.fetch_sub(1) <= 0) return false;
        ++state().failed;
        errno = state().error.load();
        return true;
    }
    static ssize_t failing_pwrite(int fd, const void* data, size_t n, off_t offset) {
        if (fails(fd)) return -1;
        using Call = ssize_t (*)(int, const void*, size_t, off_t);
        return reinterpret_cast<Call>(state().pwrite)(fd, data, n, offset);
    }
    static ssize_t failing_pwrite64(int fd, const void* data, size_t n, off64_t offset) {
        if (fails(fd)) return -1;
        using Call = ssize_t (*)(int, const void*, size_t, off64_t);
        return reinterpret_cast<Call>(state().pwrite64)(fd, data, n, offset);
    }
    static ssize_t failing_write(int fd, const void* data, size_t n) {
        if (fails(fd)) return -1;
        using Call = ssize_t (*)(int, const void*, size_t);
        return reinterpret_cast<Call>(state().write)(fd, data, n);
    }

    sqlite3_vfs* vfs_;
};

/// Opens SQLite stores on one temporary state directory.
class SqliteFixture : public ::testing::Test {
  protected:
    // The store without the intake log unless a test turns it on: these tests are about the
    // database's own path (the log's tests set config_.intake_log).
    SqliteFixture() {
        config_.prune_interval = std::chrono::milliseconds(0);
        config_.intake_log = false;
    }

    /// Without the heartbeat (a write every few seconds that would interleave with what a test
    /// does to the file); a test of the heartbeat sets it.
    static SqliteOptions quiet() {
        SqliteOptions options;
        options.heartbeat_interval = std::chrono::milliseconds(0);
        return options;
    }

    std::shared_ptr<SqliteStore> open_store(SqliteOptions options = quiet()) {
        std::string why;
        auto store = SqliteStore::open(dir_.path(), config_, options, &why);
        if (!store) throw std::runtime_error("open failed: " + why);
        return *store;
    }

    std::string db_path() const { return dir_.path() + "/hookrelay.db"; }

    TempDir dir_;
    StoreConfig config_;
    const TimePoint base_ = now_ms();
};

}  // namespace hookrelay::store::test
