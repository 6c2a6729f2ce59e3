// The SQLite store's connection (src/store/sqlite/connection.hpp): what its transactions
// promise about durability.
#include "store/sqlite/connection.hpp"
#include "store/sqlite_test_support.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace hookrelay::store::test {
namespace {

/// A connection to a new WAL database in `dir`, as the store opens it (synchronous = FULL).
sqlite::Connection open_connection(const TempDir& dir) {
    sqlite3* raw = nullptr;
    const std::string path = dir.path() + "/db";
    if (sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
        sqlite3_close(raw);
        throw std::runtime_error("cannot open " + path);
    }
    sqlite::DbPtr db(raw);
    sqlite::exec(db.get(),
                 "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                 "CREATE TABLE t (x INTEGER)");
    return sqlite::Connection(std::move(db));
}

/// Refuses `PRAGMA synchronous = FULL` while `refuse` is set (as a failure to set it would).
int refuse_full(void* refuse, int action, const char* name, const char* value, const char*,
                const char*) {
    const bool refusing = *static_cast<bool*>(refuse);
    if (refusing && action == SQLITE_PRAGMA && name && std::strcmp(name, "synchronous") == 0 &&
        value && std::strcmp(value, "FULL") == 0) {
        return SQLITE_DENY;
    }
    return SQLITE_OK;
}

std::int64_t synchronous(sqlite::Connection& c) {
    return sqlite::query_int(c.get(), "PRAGMA synchronous");
}

// A webhook's commit must sync: if the unsynced part (claims, outcomes) could not set FULL back,
// the next transaction does, or fails rather than commit without it.
TEST(SqliteConnection, ATransactionAfterFullCouldNotBeSetBackSetsItOrFails) {
    TempDir dir;
    auto c = open_connection(dir);
    bool refuse = false;
    sqlite3_set_authorizer(c.get(), refuse_full, &refuse);
    c.unsynced([&] {
        c.transaction([&] { sqlite::exec(c.get(), "INSERT INTO t VALUES (1)"); });
        refuse = true;  // from here on, setting FULL fails
    });
    EXPECT_EQ(synchronous(c), 1) << "NORMAL, as FULL was refused";

    EXPECT_THROW(c.transaction([&] { sqlite::exec(c.get(), "INSERT INTO t VALUES (2)"); }),
                 std::exception);
    EXPECT_EQ(sqlite::query_int(c.get(), "SELECT count(*) FROM t"), 1) << "committed unsynced";

    refuse = false;
    c.transaction([&] {
        EXPECT_EQ(synchronous(c), 2) << "the commit would not sync";
        sqlite::exec(c.get(), "INSERT INTO t VALUES (3)");
    });
    EXPECT_EQ(sqlite::query_int(c.get(), "SELECT count(*) FROM t"), 2);
    sqlite3_set_authorizer(c.get(), nullptr, nullptr);
}

}  // namespace
}  // namespace hookrelay::store::test
