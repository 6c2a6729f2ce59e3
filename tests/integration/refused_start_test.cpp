// A start refused for what only the operator can put right exits 78 (EX_CONFIG), the status the
// systemd unit does not restart on (RestartPreventExitStatus=78): a config with errors, a store
// written by a newer hookrelay. What a restart may get past (a state directory still held:
// state_dir_lock_test.cpp) exits 1.
#include "fakes/fake_jenkins.hpp"
#include "support/daemon.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

namespace hookrelay::test {
namespace {

constexpr int k_refused = 78;

std::string config_for(const FakeJenkins& jenkins, const std::string& state_dir,
                       const std::string& jenkins_name) {
    return R"(listen: 127.0.0.1:0
state_dir: )" +
           state_dir + R"(
sources:
  github: {provider: github, secret: "${env:GH_SECRET}"}
jenkins:
  ci: {url: ")" +
           jenkins.url() + R"(", user: hookrelay, api_token: "${env:JENKINS_TOKEN}"}
rules:
  - name: branches
    when: {event: push}
    trigger: {jenkins: )" +
           jenkins_name + R"(, job: "{{ repository.name }}"}
)";
}

const std::vector<std::pair<std::string, std::string>> k_env = {
    {"GH_SECRET", "refused-start-secret"}, {"JENKINS_TOKEN", "fake-api-token"}};

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
    const auto path = dir.write("hookrelay.yaml", config_for(jenkins, state.path(), "nope"));
    const auto run = run_hookrelay({"run", "--config", path}, k_env);
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
    const auto path = dir.write("hookrelay.yaml", config_for(jenkins, state.path(), "ci"));
    const auto run = run_hookrelay({"run", "--config", path}, k_env);
    EXPECT_EQ(run.exit_code, k_refused) << run.err;
    EXPECT_NE(run.err.find("schema version 999 is newer than this hookrelay understands"),
              std::string::npos)
        << run.err;
    EXPECT_EQ(user_version(db_file), 999);
}

}  // namespace
}  // namespace hookrelay::test
