// Helpers of the SQLite-specific store tests: the database file opened directly (as an
// operator's sqlite3 shell would), and a fixture that opens the store in a temporary directory.
#pragma once

#include "store/sqlite/sqlite_store.hpp"
#include "store/store_test_support.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <stdexcept>
#include <string>
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

/// Opens SQLite stores on one temporary state directory.
class SqliteFixture : public ::testing::Test {
  protected:
    SqliteFixture() { config_.prune_interval = std::chrono::milliseconds(0); }

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
