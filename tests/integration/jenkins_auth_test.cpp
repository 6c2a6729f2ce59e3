// End to end: a Jenkins whose API token was rotated (or is wrong) is held as auth-failed, its
// triggers wait without using up their budgets, and a reload with the new token releases them;
// `status` tells unknown, up, held and auth-failed apart. The real binary against the fake
// Jenkins.
#include "fakes/fake_jenkins.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/stored_triggers.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <csignal>

namespace hookrelay::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* k_secret = "auth-test-secret-4f0a";
constexpr const char* k_admin_token = "auth-test-admin-9b3c";
constexpr std::chrono::seconds k_deadline{20};

// The Jenkins entry reads its API token from `token_file`. probe_max is an hour: the slow probe
// of an auth-failed Jenkins never comes within a test, so only a reload can release it.
std::string config_for(const FakeJenkins& jenkins, const std::string& token_file) {
    return R"(listen: 127.0.0.1:0
state_dir: ./var
log: {level: debug}
admin: {listen: "127.0.0.1:0", token: "${env:ADMIN_TOKEN}"}
dispatch: {poll_interval: 200ms}
sources:
  github: {provider: github, secret: "${env:GH_SECRET}"}
jenkins:
  ci:
    url: ")" +
           jenkins.url() +
           R"("
    user: hookrelay
    api_token: "${file:)" +
           token_file +
           R"(}"
    probe_initial: 50ms
    probe_max: 1h
    retry: {initial: 50ms, max_delay: 200ms, max_age: 1h}
rules:
  - name: branches
    when: {event: push}
    trigger:
      jenkins: ci
      job: "{{ repository.namespace }}/{{ repository.name }}/{{ branch }}"
      parameters: {GIT_COMMIT: "{{ commit }}", BRANCH: "{{ branch }}"}
)";
}

Daemon::Options daemon_options(std::string config) {
    Daemon::Options o;
    o.config_yaml = std::move(config);
    o.env = {{"GH_SECRET", k_secret}, {"ADMIN_TOKEN", k_admin_token}};
    return o;
}

HttpResult post(const Daemon& daemon, const std::string& delivery) {
    const auto f = github_push(delivery);
    Headers h = f.headers;
    h.emplace_back("X-Hub-Signature-256", github_signature(k_secret, f.body));
    return http_request(daemon.port(), "POST", "/hooks/github", h, f.body);
}

HttpResult admin(const Daemon& daemon, const std::string& method, const std::string& target) {
    return http_request(daemon.admin_port(), method, target,
                        {{"Authorization", std::string("Bearer ") + k_admin_token}});
}

// The Jenkins "ci" as /api/v1/status shows it; null when not answered.
json::value jenkins_status(const Daemon& daemon) {
    const auto r = admin(daemon, "GET", "/api/v1/status");
    if (r.status != 200) return nullptr;
    const auto status = json::parse(r.body);
    for (const auto& j : status.at("jenkins").as_array()) {
        if (j.at("name") == "ci") return j;
    }
    return nullptr;
}

std::string state_of(const Daemon& daemon) {
    const auto j = jenkins_status(daemon);
    return j.is_object() ? std::string(j.at("state").as_string()) : std::string();
}

std::size_t probes(const FakeJenkins& jenkins) {
    const auto all = jenkins.requests();
    return static_cast<std::size_t>(std::count_if(all.begin(), all.end(), [](const auto& r) {
        return r.endpoint == "api" && r.job.empty();
    }));
}

bool all_in_state(const std::vector<TriggerRow>& rows, std::size_t n, const std::string& state) {
    return rows.size() == n &&
           std::all_of(rows.begin(), rows.end(), [&](const auto& r) { return r.state == state; });
}

class JenkinsAuth : public ::testing::Test {
  protected:
    JenkinsAuth() {
        jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    }
    FakeJenkins jenkins{FakeJenkins::Options{}};
    TempDir secrets;
};

TEST_F(JenkinsAuth, RotatedTokenHoldsTriggersUntilAReloadWithTheNewTokenDeliversThem) {
    const auto token_file = secrets.write("jenkins_token", "fake-api-token\n");
    jenkins.set_api_token("rotated-token");  // rotated in Jenkins, not yet in hookrelay
    Daemon daemon(daemon_options(config_for(jenkins, token_file)));
    for (int i = 0; i < 3; ++i) ASSERT_EQ(post(daemon, "rot-" + std::to_string(i)).status, 202u);

    ASSERT_TRUE(eventually([&] { return state_of(daemon) == "auth-failed"; }, k_deadline))
        << daemon.log();
    const auto status = jenkins_status(daemon);
    EXPECT_EQ(status.at("fix"), "jenkins.ci.api_token");
    EXPECT_EQ(status.at("held_reason"), "HTTP 401 Unauthorized") << status;
    // The status answers from the store's hold, which the dispatcher records before it sets
    // the gauge: the gauge follows within moments.
    std::string metrics;
    EXPECT_TRUE(eventually(
        [&] {
            metrics = admin(daemon, "GET", "/metrics").body;
            return metrics.find(R"(hookrelay_jenkins_auth_failed{jenkins="ci",)"
                                R"(key="jenkins.ci.api_token"} 1)") != std::string::npos;
        },
        k_deadline))
        << metrics;
    // Waiting, not dead, and no retry budget used.
    const auto rows = read_triggers(daemon, k_admin_token);
    ASSERT_TRUE(all_in_state(rows, 3, "pending")) << daemon.log();
    for (const auto& row : rows) EXPECT_EQ(row.attempts, 0) << row.last_outcome;
    EXPECT_TRUE(jenkins.builds().empty());

    // The admin puts the new token where the config reads it, and reloads.
    write_file(token_file, "rotated-token\n");
    daemon.signal(SIGHUP);
    ASSERT_TRUE(jenkins.wait_for_builds(3, k_deadline)) << daemon.log();
    ASSERT_TRUE(eventually([&] {
        return all_in_state(read_triggers(daemon, k_admin_token), 3, "delivered");
    })) << daemon.log();
    for (const auto& row : read_triggers(daemon, k_admin_token)) {
        EXPECT_EQ(row.attempts, 1) << "the refused attempts must not count: " << row.last_outcome;
    }
    EXPECT_EQ(state_of(daemon), "up");
}

TEST_F(JenkinsAuth, ReloadWithATokenStillRefusedStaysAuthFailed) {
    const auto token_file = secrets.write("jenkins_token", "wrong-token\n");
    Daemon daemon(daemon_options(config_for(jenkins, token_file)));
    ASSERT_EQ(post(daemon, "still-1").status, 202u);
    ASSERT_TRUE(eventually([&] { return state_of(daemon) == "auth-failed"; }, k_deadline))
        << daemon.log();
    const auto before = probes(jenkins);

    write_file(token_file, "another-wrong-token\n");
    const auto reload =
        run_hookrelay({"reload", "--admin", "127.0.0.1:" + std::to_string(daemon.admin_port())},
                      {{"HOOKRELAY_ADMIN_TOKEN", k_admin_token}});
    ASSERT_EQ(reload.exit_code, 0) << reload.err;
    // The reload probes the new token at once; Jenkins refuses it too.
    ASSERT_TRUE(eventually([&] { return probes(jenkins) > before; }, k_deadline)) << daemon.log();
    EXPECT_EQ(state_of(daemon), "auth-failed");
    const auto rows = read_triggers(daemon, k_admin_token);
    ASSERT_TRUE(all_in_state(rows, 1, "pending")) << daemon.log();
    EXPECT_EQ(rows.front().attempts, 0);
    EXPECT_TRUE(jenkins.builds().empty());
    EXPECT_NE(daemon.log().find("Fix jenkins.ci.api_token"), std::string::npos);
    EXPECT_EQ(daemon.log().find("another-wrong-token"), std::string::npos);
}

TEST_F(JenkinsAuth, StatusIsUnknownBeforeAnythingWasSentAndHeldWhenThePortIsClosed) {
    const auto token_file = secrets.write("jenkins_token", "fake-api-token\n");
    jenkins.stop();  // connection refused
    Daemon daemon(daemon_options(config_for(jenkins, token_file)));
    EXPECT_EQ(state_of(daemon), "unknown");
    const auto cli =
        run_hookrelay({"status", "--admin", "127.0.0.1:" + std::to_string(daemon.admin_port())},
                      {{"HOOKRELAY_ADMIN_TOKEN", k_admin_token}});
    EXPECT_NE(cli.out.find("unknown"), std::string::npos) << cli.out << cli.err;
    ASSERT_EQ(post(daemon, "closed-1").status, 202u);
    EXPECT_TRUE(eventually([&] { return state_of(daemon) == "held"; }, k_deadline)) << daemon.log();
}

}  // namespace
}  // namespace hookrelay::test
