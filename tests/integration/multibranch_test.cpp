// Multibranch projects end to end: a push of a branch whose job Jenkins has not created yet asks
// for a scan (branch indexing), waits for the job and builds it; a branch that never appears is
// dead after branch_wait; a project that cannot be scanned says so; a `scan:` rule only scans,
// within scan_interval. The real binary against the fake Jenkins' multibranch model.
#include "fakes/fake_jenkins.hpp"
#include "support/admin_api.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace hookrelay::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* k_secret = "multibranch-test-secret-08be";
constexpr const char* k_admin_token = "multibranch-test-admin-c4d1";
constexpr std::chrono::seconds k_deadline{20};
const std::vector<std::string> k_project{"acme", "app"};

std::string config_for(const FakeJenkins& jenkins, const std::string& jenkins_extra,
                       const std::string& rules) {
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
    follow: none
    branch_poll: 200ms
)" + jenkins_extra +
           "rules:\n" + rules;
}

constexpr const char* k_branch_rule = R"(  - name: app-branches
    when: {event: push}
    trigger:
      jenkins: ci
      multibranch: acme/app
      branch: "{{ branch }}"
      parameters: {GIT_COMMIT: "{{ commit }}"}
)";

Daemon::Options options(std::string config) {
    Daemon::Options o;
    o.config_yaml = std::move(config);
    o.env = {{"GH_SECRET", k_secret},
             {"ADMIN_TOKEN", k_admin_token},
             {"JENKINS_TOKEN", "fake-api-token"}};
    return o;
}

HttpResult push(const Daemon& daemon, const std::string& delivery, const std::string& branch) {
    const auto f = github_push(delivery, branch);
    Headers h = f.headers;
    h.emplace_back("X-Hub-Signature-256", github_signature(k_secret, f.body));
    return http_request(daemon.port(), "POST", "/hooks/github", h, f.body);
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

TEST(MultibranchProjects, ANewBranchIsScannedForAndBuiltOnceItsJobAppears) {
    FakeJenkins jenkins({});
    jenkins.add_multibranch(k_project, {"main"}, {"GIT_COMMIT"});
    jenkins.add_branch_on_scan(k_project, "feature/x", {"GIT_COMMIT"});
    jenkins.set_scan_duration(600ms);  // the branch job appears a while after the scan
    Daemon daemon(options(config_for(jenkins, "", k_branch_rule)));
    ASSERT_EQ(push(daemon, "new-branch", "feature/x").status, 202u);
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    const auto builds = jenkins.builds();
    ASSERT_EQ(builds.size(), 1u);
    EXPECT_EQ(builds[0].job, (std::vector<std::string>{
                                 "acme", "app", FakeJenkins::branch_item_name("feature/x")}));
    EXPECT_EQ(jenkins.scans(k_project), 1u);
    ASSERT_TRUE(
        eventually([&] { return field(trigger_of(daemon, "new-branch"), "state") == "delivered"; },
                   k_deadline))
        << daemon.log();
    const auto t = trigger_of(daemon, "new-branch");
    EXPECT_EQ(field(t, "attempts"), "1");  // the waits used none of the retry budget
    EXPECT_EQ(field(t, "multibranch"), "acme/app");
    EXPECT_EQ(field(t, "branch"), "feature/x");
    const auto shown = cli(daemon, {"deliveries", "show", "new-branch"});
    EXPECT_NE(shown.out.find("branch job not created yet; scan of acme/app requested (not "
                             "counted)"),
              std::string::npos)
        << shown.out;
}

TEST(MultibranchProjects, AnExistingBranchIsBuiltWithoutAScan) {
    FakeJenkins jenkins({});
    jenkins.add_multibranch(k_project, {"main"}, {"GIT_COMMIT"});
    Daemon daemon(options(config_for(jenkins, "", k_branch_rule)));
    ASSERT_EQ(push(daemon, "old-branch", "main").status, 202u);
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    EXPECT_EQ(jenkins.scans(k_project), 0u);
}

TEST(MultibranchProjects, ABranchThatNeverAppearsIsDeadAfterBranchWaitWithTheReason) {
    FakeJenkins jenkins({});
    jenkins.add_multibranch(k_project, {"main"});
    Daemon daemon(options(config_for(jenkins, "    branch_wait: 1s\n", k_branch_rule)));
    ASSERT_EQ(push(daemon, "filtered", "wip/never").status, 202u);
    ASSERT_TRUE(eventually([&] { return field(trigger_of(daemon, "filtered"), "state") == "dead"; },
                           k_deadline))
        << daemon.log();
    EXPECT_NE(field(trigger_of(daemon, "filtered"), "last_outcome")
                  .find("the job of branch 'wip/never' did not appear in multibranch project "
                        "'acme/app' within 1s"),
              std::string::npos);
    EXPECT_EQ(jenkins.scans(k_project), 1u);
    EXPECT_TRUE(jenkins.builds().empty());
}

TEST(MultibranchProjects, AProjectThatIsNotMultibranchIsDeadAtOnceSayingItCannotBeScanned) {
    FakeJenkins jenkins({});
    jenkins.add_job({"acme", "app", "main"});  // acme/app is a plain folder
    Daemon daemon(options(config_for(jenkins, "", k_branch_rule)));
    ASSERT_EQ(push(daemon, "wrong-project", "feature/y").status, 202u);
    ASSERT_TRUE(eventually(
        [&] { return field(trigger_of(daemon, "wrong-project"), "state") == "dead"; }, k_deadline))
        << daemon.log();
    EXPECT_NE(field(trigger_of(daemon, "wrong-project"), "last_outcome")
                  .find("multibranch project 'acme/app' cannot be scanned"),
              std::string::npos)
        << field(trigger_of(daemon, "wrong-project"), "last_outcome");
}

TEST(MultibranchProjects, AScanRuleScansWithinTheIntervalAndBuildsNothing) {
    FakeJenkins jenkins({});
    jenkins.add_multibranch(k_project, {"main"});
    Daemon daemon(options(config_for(jenkins, "    scan_interval: 1h\n", R"(  - name: app-scan
    when: {event: push}
    trigger: {jenkins: ci, scan: acme/app}
)")));
    ASSERT_EQ(push(daemon, "scan-1", "main").status, 202u);
    ASSERT_TRUE(eventually(
        [&] { return field(trigger_of(daemon, "scan-1"), "state") == "delivered"; }, k_deadline))
        << daemon.log();
    EXPECT_EQ(field(trigger_of(daemon, "scan-1"), "last_outcome"), "scan of acme/app requested");
    EXPECT_EQ(jenkins.scans(k_project), 1u);
    // Another push within scan_interval waits for the interval's end (one more scan then, not
    // one per push).
    ASSERT_EQ(push(daemon, "scan-2", "main").status, 202u);
    ASSERT_TRUE(eventually(
        [&] {
            return field(trigger_of(daemon, "scan-2"), "last_outcome").find("next one at") !=
                   std::string::npos;
        },
        k_deadline))
        << daemon.log();
    EXPECT_EQ(field(trigger_of(daemon, "scan-2"), "state"), "pending");
    EXPECT_EQ(jenkins.scans(k_project), 1u);
    EXPECT_TRUE(jenkins.builds().empty());
}

}  // namespace
}  // namespace hookrelay::test
