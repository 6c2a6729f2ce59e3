// Coalescing end to end (`coalesce:`): while Jenkins is down, pushes to one branch supersede the
// older ones still waiting; when Jenkins is back exactly one build starts, of the newest commit,
// and every superseded delivery says so in `deliveries show`, the API, `deliveries list` and the
// metrics. `cancel_superseded` cancels an older queue item that has not started. The real
// binary against the fake Jenkins.
#include "fakes/fake_jenkins.hpp"
#include "support/admin_api.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <set>

namespace hookrelay::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* k_secret = "coalesce-test-secret-51ad";
constexpr const char* k_admin_token = "coalesce-test-admin-7e02";
constexpr std::chrono::seconds k_deadline{20};

std::string config_for(const FakeJenkins& jenkins, const std::string& rule_extra) {
    return R"(listen: 127.0.0.1:0
state_dir: ./var
log: {level: debug}
admin: {listen: "127.0.0.1:0", token: "${env:ADMIN_TOKEN}"}
dispatch: {poll_interval: 100ms}
sources:
  github: {provider: github, secret: "${env:GH_SECRET}"}
jenkins:
  ci:
    url: ")" +
           jenkins.url() + R"("
    user: hookrelay
    api_token: "${env:JENKINS_TOKEN}"
    probe_initial: 50ms
    probe_max: 200ms
    follow_poll_initial: 100ms
    follow_poll_max: 200ms
    retry: {initial: 50ms, max_delay: 200ms, max_age: 1h}
rules:
  - name: main
    when: {event: push, branch: main}
    coalesce: "{{ repository }}:{{ branch }}"
)" + rule_extra +
           R"(    trigger:
      jenkins: ci
      job: acme/app
      parameters: {GIT_COMMIT: "{{ commit }}"}
)";
}

Daemon::Options options(std::string config) {
    Daemon::Options o;
    o.config_yaml = std::move(config);
    o.env = {{"GH_SECRET", k_secret},
             {"ADMIN_TOKEN", k_admin_token},
             {"JENKINS_TOKEN", "fake-api-token"}};
    return o;
}

// The n-th commit: 40 hex digits.
std::string sha(int n) {
    auto s = std::to_string(n);
    return std::string(40 - s.size(), 'a') + s;
}

// A push of commit sha(n) to main, delivery "push-<n>".
HttpResult push(std::uint16_t port, int n) {
    const auto f = github_push_of("push-" + std::to_string(n), sha(n));
    Headers h = f.headers;
    h.emplace_back("X-Hub-Signature-256", github_signature(k_secret, f.body));
    return http_request(port, "POST", "/hooks/github", h, f.body);
}

HttpResult admin(const Daemon& daemon, const std::string& target) {
    return http_request(daemon.admin_port(), "GET", target,
                        {{"Authorization", std::string("Bearer ") + k_admin_token}});
}

json::value trigger_of(const Daemon& daemon, const std::string& delivery) {
    return first_trigger(daemon.admin_port(), k_admin_token, delivery);
}

std::string field(const json::value& v, std::string_view key) {
    return json_text(v, key);
}

CommandResult cli(const Daemon& daemon, std::vector<std::string> args) {
    args.insert(args.end(), {"--admin", "127.0.0.1:" + std::to_string(daemon.admin_port())});
    return run_hookrelay(args, {{"HOOKRELAY_ADMIN_TOKEN", k_admin_token}});
}

TEST(Coalescing, JenkinsDownManyPushesToMainThenOneBuildOfTheLastCommit) {
    FakeJenkins jenkins({});
    jenkins.add_job({"acme", "app"}, {"GIT_COMMIT"});
    jenkins.stop();
    Daemon daemon(options(config_for(jenkins, "")));
    constexpr int k_pushes = 20;
    for (int n = 1; n <= k_pushes; ++n) ASSERT_EQ(push(daemon.port(), n).status, 202u) << n;
    // Every push but the last is superseded (one may still be in flight when the next comes:
    // its failed attempt supersedes it then).
    ASSERT_TRUE(eventually(
        [&] {
            for (int n = 1; n < k_pushes; ++n) {
                if (field(trigger_of(daemon, "push-" + std::to_string(n)), "state") !=
                    "superseded") {
                    return false;
                }
            }
            return true;
        },
        k_deadline))
        << daemon.log();
    jenkins.start();
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    ASSERT_TRUE(eventually(
        [&] { return field(trigger_of(daemon, "push-20"), "state") == "delivered"; }, k_deadline))
        << daemon.log();
    const auto builds = jenkins.builds();
    ASSERT_EQ(builds.size(), 1u);
    EXPECT_EQ(builds[0].param("GIT_COMMIT"), sha(k_pushes));

    // Each superseded delivery names the trigger that took its place, everywhere.
    const auto last = field(trigger_of(daemon, "push-20"), "id");
    const auto first = trigger_of(daemon, "push-1");
    EXPECT_EQ(field(first, "outcome"), "superseded");
    EXPECT_EQ(field(first, "coalesce"), "woodpecker-ci/woodpecker:main");
    const auto newer = field(first, "superseded_by");
    EXPECT_FALSE(newer.empty());
    const auto shown = cli(daemon, {"deliveries", "show", "push-19"});
    EXPECT_EQ(shown.exit_code, 0) << shown.err;
    EXPECT_NE(shown.out.find("state superseded"), std::string::npos) << shown.out;
    EXPECT_NE(shown.out.find("superseded by trigger " + last + " (delivery push-20)"),
              std::string::npos)
        << shown.out;
    const auto listed = cli(daemon, {"deliveries", "list", "--outcome", "superseded"});
    EXPECT_EQ(listed.exit_code, 0) << listed.err;
    std::size_t rows = 0;
    for (auto at = listed.out.find("superseded"); at != std::string::npos;
         at = listed.out.find("superseded", at + 1)) {
        ++rows;
    }
    EXPECT_EQ(rows, static_cast<std::size_t>(k_pushes - 1)) << listed.out;
    const auto metrics = admin(daemon, "/metrics");
    EXPECT_NE(metrics.body.find(R"(hookrelay_triggers_superseded_total{jenkins="ci"} 19)"),
              std::string::npos)
        << metrics.body;
}

TEST(Coalescing, TriggersWithDifferentKeysAllGoOut) {
    FakeJenkins jenkins({});
    jenkins.add_job({"acme", "app"}, {"GIT_COMMIT"});
    jenkins.stop();
    Daemon daemon(options(config_for(jenkins, "")));
    ASSERT_EQ(push(daemon.port(), 1).status, 202u);
    // Another repository: another key.
    auto f = github_push("other-repo");
    auto body = json::parse(f.body);
    body.as_object()["repository"].as_object()["full_name"] = "acme/other";
    const auto text = json::serialize(body);
    Headers h = f.headers;
    h.emplace_back("X-Hub-Signature-256", github_signature(k_secret, text));
    ASSERT_EQ(http_request(daemon.port(), "POST", "/hooks/github", h, text).status, 202u);
    jenkins.start();
    ASSERT_TRUE(jenkins.wait_for_builds(2, k_deadline)) << daemon.log();
    // Neither superseded the other: both are delivered.
    EXPECT_TRUE(eventually(
        [&] {
            return field(trigger_of(daemon, "push-1"), "state") == "delivered" &&
                   field(trigger_of(daemon, "other-repo"), "state") == "delivered";
        },
        k_deadline))
        << daemon.log();
}

TEST(Coalescing, CancelSupersededCancelsTheOlderBuildStillInJenkinsQueue) {
    FakeJenkins jenkins({});
    jenkins.add_job({"acme", "app"}, {"GIT_COMMIT"});
    jenkins.set_quiet_period(1h);  // every item waits in the queue until drained
    Daemon daemon(options(config_for(jenkins, "    cancel_superseded: true\n")));
    ASSERT_EQ(push(daemon.port(), 1).status, 202u);
    ASSERT_TRUE(eventually(
        [&] { return field(trigger_of(daemon, "push-1"), "outcome") == "queued"; }, k_deadline))
        << daemon.log();
    ASSERT_EQ(push(daemon.port(), 2).status, 202u);
    // The older item is cancelled in Jenkins; following it ends CANCELLED.
    ASSERT_TRUE(eventually(
        [&] { return field(trigger_of(daemon, "push-1"), "outcome") == "CANCELLED"; }, k_deadline))
        << daemon.log();
    const auto items = jenkins.queue_items();
    ASSERT_EQ(items.size(), 2u);
    EXPECT_TRUE(items[0].cancelled);
    EXPECT_FALSE(items[1].cancelled);
    const auto shown = cli(daemon, {"deliveries", "show", "push-1"});
    EXPECT_NE(shown.out.find("cancelled in Jenkins: superseded by trigger"), std::string::npos)
        << shown.out;
    jenkins.drain_queue();
    jenkins.finish_builds();
    ASSERT_TRUE(eventually(
        [&] { return field(trigger_of(daemon, "push-2"), "outcome") == "SUCCESS"; }, k_deadline))
        << daemon.log();
    EXPECT_EQ(jenkins.runs().size(), 1u);
}

}  // namespace
}  // namespace hookrelay::test
