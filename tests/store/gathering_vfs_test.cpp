// The store's gathering VFS (src/store/sqlite/gathering_vfs.hpp) with two connections to one
// file: one through the VFS, the other through SQLite's default one, as a second store on the
// file or an operator's sqlite3 shell would be.
#include "store/sqlite/gathering_vfs.hpp"
#include "store/sqlite_test_support.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <vector>

namespace hookrelay::store::test {
namespace {

/// A connection through the gathering VFS.
class GatheringDb : public RawDb {
  public:
    explicit GatheringDb(const std::string& path) : RawDb(path, sqlite::gathering_vfs()) {}
    std::string scalar(const std::string& sql) { return row(sql).at(0); }
};

// n rows of 3,000 bytes: one page each.
std::string insert_rows(int n) {
    return "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < " +
           std::to_string(n) + ") INSERT INTO t SELECT randomblob(3000) FROM c";
}

// A transaction larger than the page cache writes frames before its commit ("spills"); the VFS
// gathers them. Rolled back, they must never reach the file: once the write lock is released,
// another connection writes its own frames at the same offsets.
TEST(GatheringVfs, ARolledBackTransactionsFramesNeverOverwriteAnotherConnectionsCommit) {
    TempDir dir;
    const std::string path = dir.path() + "/db";
    GatheringDb gathering(path);
    gathering.exec("PRAGMA journal_mode = WAL");
    gathering.exec("PRAGMA cache_size = 10");
    gathering.exec("CREATE TABLE t (x BLOB)");
    gathering.exec("PRAGMA wal_checkpoint(TRUNCATE)");  // the next frames start the WAL over

    gathering.exec("BEGIN");
    gathering.exec(insert_rows(25));  // spills ~15 frames, fewer than one gathered write holds
    gathering.exec("ROLLBACK");

    RawDb other(path);
    other.exec(insert_rows(50));
    const auto sum = other.row("SELECT count(*), sum(length(x)) FROM t");
    ASSERT_EQ(sum, (std::vector<std::string>{"50", "150000"}));

    // The gathering connection reads the other's frames, then writes after them.
    EXPECT_EQ(gathering.scalar("SELECT count(*) FROM t"), "50");
    gathering.exec(insert_rows(1));
    EXPECT_EQ(gathering.scalar("SELECT count(*) FROM t"), "51");
    EXPECT_EQ(other.row("PRAGMA integrity_check"), (std::vector<std::string>{"ok"}));
    EXPECT_EQ(other.row("SELECT count(*) FROM t"), (std::vector<std::string>{"51"}));
}

// A transaction that changes again a page it already spilled overwrites that frame in place, and
// at its commit rewrites the checksums of its frames, each header alone. With synchronous = NORMAL
// nothing syncs the WAL: the commit must still be whole in the file once COMMIT returns, as a
// process killed then would leave it. Copies of the database and the WAL (without the wal-index,
// so SQLite recovers from the WAL alone) must hold it.
TEST(GatheringVfs, ACommitThatRewroteItsChecksumsIsWholeInTheFileWhenItReturns) {
    TempDir dir;
    const std::string path = dir.path() + "/db";
    GatheringDb gathering(path);
    gathering.exec("PRAGMA journal_mode = WAL");
    gathering.exec("PRAGMA synchronous = NORMAL");
    gathering.exec("PRAGMA cache_size = 10");
    gathering.exec("CREATE TABLE t (x BLOB)");
    gathering.exec("PRAGMA wal_checkpoint(TRUNCATE)");

    gathering.exec("BEGIN");
    gathering.exec(insert_rows(40));  // spills the first rows' pages
    gathering.exec("UPDATE t SET x = randomblob(3000) WHERE rowid = 1");
    gathering.exec("COMMIT");

    RawDb recovered(copy_as_a_crash_leaves_it(path, dir.path() + "/copy"));
    EXPECT_EQ(recovered.row("SELECT count(*) FROM t"), (std::vector<std::string>{"40"}));
    EXPECT_EQ(recovered.row("PRAGMA integrity_check"), (std::vector<std::string>{"ok"}));
}

// A commit larger than one gathered write (128 KiB) goes out in several; the disk fails the
// second (EIO) after the first reached the file. The commit fails whole: neither this connection,
// nor another, nor a copy recovered from the WAL alone (as a kill -9 would leave it) sees any of
// it, even once a read made the VFS write out anything it still held; and the next commit, written
// where its frames were, is kept.
TEST(GatheringVfs, ACommitWhoseSecondWriteFailsIsNotInTheFileAndTheNextOneIs) {
    TempDir dir;
    const std::string path = dir.path() + "/db";
    const auto recovered_count = [&](const std::string& name) {
        RawDb recovered(copy_as_a_crash_leaves_it(path, dir.path() + "/" + name));
        EXPECT_EQ(recovered.row("PRAGMA integrity_check"), (std::vector<std::string>{"ok"}));
        return recovered.row("SELECT count(*) FROM t").at(0);
    };
    GatheringDb gathering(path);
    gathering.exec("PRAGMA journal_mode = WAL");
    gathering.exec("PRAGMA synchronous = FULL");
    gathering.exec("CREATE TABLE t (x BLOB)");
    gathering.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    gathering.exec(insert_rows(3));
    {
        FailingWrites disk("-wal", EIO, 1, 1);
        EXPECT_THROW(gathering.exec(insert_rows(60)), std::runtime_error);  // ~250 KB of frames
        EXPECT_EQ(disk.failed(), 1);
    }
    EXPECT_EQ(gathering.scalar("SELECT count(*) FROM t"), "3");
    EXPECT_EQ(recovered_count("after-failure"), "3");

    gathering.exec(insert_rows(2));
    EXPECT_EQ(recovered_count("after-next"), "5");
    RawDb other(path);
    EXPECT_EQ(other.row("SELECT count(*) FROM t"), (std::vector<std::string>{"5"}));
    EXPECT_EQ(gathering.scalar("SELECT count(*) FROM t"), "5");
}

}  // namespace
}  // namespace hookrelay::store::test
