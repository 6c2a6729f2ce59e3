// One hookrelay per state directory: the exclusive lock on <state_dir>/hookrelay.lock, what a
// second store is told, and the claims a dead owner left behind.
#include "store/sqlite_test_support.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>

namespace hookrelay::store::test {
namespace {

using SqliteLock = SqliteFixture;

/// A child process that runs `work` and then stays alive until killed; `work` returns false to
/// make the child exit at once instead. The parent waits until the work has been done.
class Child {
  public:
    explicit Child(const std::function<bool()>& work) {
        int fds[2];
        if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
        pid_ = fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            // Never return into GoogleTest from the child.
            close(fds[0]);
            bool ok = false;
            try {
                ok = work();
            } catch (...) {
            }
            if (!ok) _exit(1);
            const char done = 'k';
            if (write(fds[1], &done, 1) != 1) _exit(2);
            for (;;) pause();
        }
        close(fds[1]);
        pollfd readable{fds[0], POLLIN, 0};
        const int ready =
            poll(&readable, 1, static_cast<int>(std::chrono::milliseconds(k_deadline).count()));
        char got = 0;
        ready_ = ready == 1 && read(fds[0], &got, 1) == 1 && got == 'k';
        close(fds[0]);
    }
    ~Child() { kill9(); }

    bool ready() const { return ready_; }
    pid_t pid() const { return pid_; }
    /// kill -9 and reap.
    void kill9() {
        if (pid_ <= 0) return;
        kill(pid_, SIGKILL);
        int status = 0;
        waitpid(pid_, &status, 0);
        pid_ = -1;
    }

  private:
    pid_t pid_ = -1;
    bool ready_ = false;
};

TEST_F(SqliteLock, ASecondStoreOnTheDirectoryIsRefusedNamingTheOwner) {
    auto first = open_store();
    std::string why;
    auto second = SqliteStore::open(dir_.path(), config_, quiet(), &why);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error(), make_error_code(errc::store_locked));
    EXPECT_FALSE(is_retryable(second.error()));
    EXPECT_EQ(why, "state_dir " + dir_.path() + " is in use by another hookrelay (pid " +
                       std::to_string(getpid()) + ")");
}

TEST_F(SqliteLock, AnotherProcessOwningTheDirectoryIsNamedByItsPid) {
    Child owner([&] {
        auto store = SqliteStore::open(dir_.path(), config_, quiet());
        if (!store) return false;
        new std::shared_ptr<SqliteStore>(*store);  // kept until the kill
        return true;
    });
    ASSERT_TRUE(owner.ready());
    std::string why;
    auto refused = SqliteStore::open(dir_.path(), config_, quiet(), &why);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), make_error_code(errc::store_locked));
    EXPECT_EQ(why, "state_dir " + dir_.path() + " is in use by another hookrelay (pid " +
                       std::to_string(owner.pid()) + ")");
}

TEST_F(SqliteLock, TheDirectoryOfAKilledOwnerIsFreeAtOnce) {
    Child owner([&] {
        auto store = SqliteStore::open(dir_.path(), config_, quiet());
        if (!store) return false;
        new std::shared_ptr<SqliteStore>(*store);  // kept until the kill
        return true;
    });
    ASSERT_TRUE(owner.ready());
    owner.kill9();
    EXPECT_NO_THROW(open_store());
}

TEST_F(SqliteLock, ClosingReleasesTheDirectory) {
    auto first = open_store();
    first->close();
    EXPECT_NO_THROW(open_store());
}

TEST_F(SqliteLock, OpeningWithoutTheLockIsAllowedWhileOwned) {
    auto owner = open_store();
    auto options = quiet();
    options.lock_state_dir = false;
    options.instance_id = "a-tool";
    auto tool = open_store(options);
    accept(*owner, delivery("d-1", base_), {trigger()});
    EXPECT_TRUE(get(*tool, "", "d-1"));
}

TEST_F(SqliteLock, TheNewOwnerReleasesTheClaimsOfAKilledOne) {
    Child owner([&] {
        auto options = quiet();
        options.instance_id = "killed";
        auto store = SqliteStore::open(dir_.path(), config_, options);
        if (!store) return false;
        if (!submit(**store, delivery("d-1", base_), {trigger()})) return false;
        if (claim(**store, "ci", base_, 10, 0, 1h).claims.size() != 1) return false;
        new std::shared_ptr<SqliteStore>(*store);  // kept until the kill
        return true;
    });
    ASSERT_TRUE(owner.ready());
    owner.kill9();

    // A tool opening the file without the lock leaves the dead owner's claim alone...
    {
        auto options = quiet();
        options.lock_state_dir = false;
        auto tool = open_store(options);
        EXPECT_TRUE(claim(*tool, "ci", base_).claims.empty());
        EXPECT_EQ(get(*tool, "", "d-1")->triggers.at(0).claimed_by, "killed");
    }
    // ...the next owner of the directory ends it at once, and forgets the dead instance.
    auto options = quiet();
    options.instance_id = "next";
    auto store = open_store(options);
    EXPECT_EQ(claim(*store, "ci", base_).claims.size(), 1u);
    const auto listed = instances(*store);
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].id, "next");
}

TEST_F(SqliteLock, TheLockFileHoldsTheOwnersPid) {
    auto store = open_store();
    std::ifstream file(dir_.path() + "/hookrelay.lock");
    std::string pid;
    file >> pid;
    EXPECT_EQ(pid, std::to_string(getpid()));
}

}  // namespace
}  // namespace hookrelay::store::test
