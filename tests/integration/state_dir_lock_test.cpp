// Starts refused, and how they end. One hookrelay per state directory (SQLite): a second daemon
// on the same directory refuses to start and names the owner (exit 1: a restart may get past
// it), the owner is unharmed, `check` is not held back, and the directory is free again once its
// owner has stopped. A start refused for what only the operator can put right exits 78
// (EX_CONFIG), the status the systemd unit does not restart on (RestartPreventExitStatus=78): a
// config with errors, a store written by a newer hookrelay.
#include "fakes/fake_jenkins.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <csignal>

namespace hookrelay::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* k_secret = "lock-test-secret-0c4f";

std::string config_for(const FakeJenkins& jenkins, const std::string& state_dir) {
    return R"(listen: 127.0.0.1:0
state_dir: )" +
           state_dir +
           R"(
admin: {listen: "127.0.0.1:0"}
sources:
  github: {provider: github, secret: "${env:GH_SECRET}"}
jenkins:
  ci: {url: ")" +
           jenkins.url() + R"(", user: hookrelay, api_token: "${env:JENKINS_TOKEN}"}
rules:
  - name: branches
    when: {event: push}
    trigger: {jenkins: ci, job: "{{ repository.namespace }}/{{ repository.name }}/{{ branch }}"}
)";
}

std::vector<std::pair<std::string, std::string>> env() {
    return {{"GH_SECRET", k_secret}, {"JENKINS_TOKEN", "fake-api-token"}};
}

Daemon::Options options(std::string config) {
    Daemon::Options o;
    o.config_yaml = std::move(config);
    o.env = env();
    return o;
}

unsigned post_push(const Daemon& daemon, const std::string& delivery) {
    const auto f = github_push(delivery);
    Headers h = f.headers;
    h.emplace_back("X-Hub-Signature-256", github_signature(k_secret, f.body));
    return http_request(daemon.port(), "POST", "/hooks/github", h, f.body).status;
}

class StateDirLock : public ::testing::Test {
  protected:
    StateDirLock() { jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}); }
    FakeJenkins jenkins{{}};
    TempDir state;
    TempDir elsewhere;  // where the second process runs and keeps its config
};

TEST_F(StateDirLock, ASecondDaemonOnTheSameStateDirectoryRefusesToStartNamingTheFirst) {
    const auto config = config_for(jenkins, state.path());
    Daemon first(options(config));

    const auto path = elsewhere.write("hookrelay.yaml", config);
    const auto second = run_hookrelay({"run", "--config", path}, env(), 20s);
    EXPECT_EQ(second.exit_code, 1) << second.err;  // not 78: a restart may get past it
    EXPECT_NE(
        second.err.find("state_dir " + state.path() + " is in use by another hookrelay (pid " +
                        std::to_string(first.pid()) + ")"),
        std::string::npos)
        << second.err;

    // The owner goes on as before.
    EXPECT_TRUE(first.running());
    EXPECT_EQ(post_push(first, "after-refusal"), 202u);
    ASSERT_TRUE(jenkins.wait_for_builds(1, 20s)) << first.log();
}

TEST_F(StateDirLock, CheckIsNotHeldBackByARunningDaemon) {
    const auto config = config_for(jenkins, state.path());
    Daemon first(options(config));
    const auto path = elsewhere.write("hookrelay.yaml", config);
    const auto check = run_hookrelay({"check", "--config", path}, env());
    EXPECT_EQ(check.exit_code, 0) << check.err;
}

TEST_F(StateDirLock, TheDirectoryIsFreeOnceItsOwnerHasStopped) {
    const auto config = config_for(jenkins, state.path());
    {
        Daemon first(options(config));
        ASSERT_EQ(post_push(first, "before-restart"), 202u);
        ASSERT_EQ(first.stop(SIGTERM), 0) << first.log();
    }
    Daemon second(options(config));
    EXPECT_EQ(post_push(second, "after-restart"), 202u);
}

constexpr int k_refused = 78;

// user_version of the store's database, read without hookrelay.
int user_version(const std::string& file) {
    sqlite3* db = nullptr;
    int version = -1;
    if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW) {
            version = sqlite3_column_int(stmt, 0);
        }
        sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return version;
}

TEST(RefusedStart, AConfigWithErrorsExits78WithEveryError) {
    FakeJenkins jenkins{{}};
    TempDir state;
    TempDir dir;
    // config_for's rules, and one more naming a Jenkins the config does not have.
    const auto path = dir.write("hookrelay.yaml", config_for(jenkins, state.path()) + R"(
  - name: elsewhere
    when: {event: push}
    trigger: {jenkins: nope, job: "{{ repository.name }}"}
)");
    const auto run = run_hookrelay({"run", "--config", path}, env());
    EXPECT_EQ(run.exit_code, k_refused) << run.err;
    EXPECT_NE(run.err.find("nope"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("not starting: 1 config error(s)"), std::string::npos) << run.err;
}

TEST(RefusedStart, AStoreWrittenByANewerHookrelayExits78AndIsLeftAsItWas) {
    FakeJenkins jenkins{{}};
    TempDir state;
    TempDir dir;
    const std::string db_file = state.path() + "/hookrelay.db";
    {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open(db_file.c_str(), &db), SQLITE_OK);
        ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE future (x); PRAGMA user_version = 999;", nullptr,
                               nullptr, nullptr),
                  SQLITE_OK);
        sqlite3_close(db);
    }
    const auto path = dir.write("hookrelay.yaml", config_for(jenkins, state.path()));
    const auto run = run_hookrelay({"run", "--config", path}, env());
    EXPECT_EQ(run.exit_code, k_refused) << run.err;
    EXPECT_NE(run.err.find("schema version 999 is newer than this hookrelay understands"),
              std::string::npos)
        << run.err;
    EXPECT_EQ(user_version(db_file), 999);
}

}  // namespace
}  // namespace hookrelay::test
