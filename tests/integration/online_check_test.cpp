// End to end: the config checked against a Jenkins (`check --online`, `jenkins test`, and the
// daemon's background check shown by `status`). The real binary against the fake Jenkins.
#include "fakes/fake_jenkins.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <csignal>

namespace hookrelay::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* k_secret = "online-check-secret-71c2";
constexpr const char* k_admin_token = "online-check-admin-5e0d";
constexpr std::chrono::seconds k_deadline{20};

// The API tokens the entries read: the right one, and one Jenkins no longer takes.
const std::vector<std::pair<std::string, std::string>> k_env = {
    {"GH_SECRET", k_secret},
    {"ADMIN_TOKEN", k_admin_token},
    {"GOOD_TOKEN", "fake-api-token"},
    {"ROTATED_TOKEN", "a-rotated-token"}};

// A Jenkins entry whose API token is the environment variable `token_env`.
std::string jenkins_entry(const std::string& name, const std::string& url,
                          const std::string& token_env) {
    return "  " + name + ":\n    url: \"" + url +
           "\"\n    user: hookrelay\n    api_token: \"${env:" + token_env + "}\"" +
           "\n    request_timeout: 2s\n    io_timeout: 1s\n    connect_timeout: 1s\n";
}

std::string head(const std::string& jenkins) {
    return R"(listen: 127.0.0.1:0
state_dir: ./var
admin: {listen: "127.0.0.1:0", token: "${env:ADMIN_TOKEN}"}
sources:
  github: {provider: github, secret: "${env:GH_SECRET}"}
jenkins:
)" + jenkins;
}

// "file:line:column" of the first occurrence of `text` in the config (1-based). A trigger's job
// and parameters are located at their text, inside the quotes.
std::string at(const std::string& file, const std::string& config, const std::string& text) {
    const auto offset = config.find(text);
    EXPECT_NE(offset, std::string::npos) << text;
    const auto line_start = config.rfind('\n', offset);
    const auto line = std::count(config.begin(), config.begin() + offset, '\n') + 1;
    const auto column = offset - (line_start == std::string::npos ? 0 : line_start + 1) + 1;
    return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

class OnlineCheck : public ::testing::Test {
  protected:
    OnlineCheck() {
        jenkins.add_job({"acme", "app"}, {"GIT_COMMIT", "BRANCH"});
        jenkins.add_job({"acme", "docs"});
        jenkins.add_job({"acme", "multi", "main"}, {"GIT_COMMIT"});
    }
    FakeJenkins jenkins{FakeJenkins::Options{}};
    TempDir dir;
};

const std::string k_good_rules = R"(rules:
  - name: app
    when: {event: push}
    trigger:
      jenkins: ci
      job: "acme/app"
      parameters: {GIT_COMMIT: "{{ commit }}", BRANCH: "{{ branch }}"}
  - name: docs
    when: {event: push}
    trigger: {jenkins: ci, job: "acme/docs"}
  - name: multi
    when: {event: push}
    trigger: {jenkins: ci, job: "acme/multi/{{ branch }}", parameters: {GIT_COMMIT: "{{ commit }}"}}
)";

TEST_F(OnlineCheck, CorrectConfigExitsZeroWithASummaryPerJenkins) {
    const auto path = dir.write(
        "hookrelay.yaml", head(jenkins_entry("ci", jenkins.url(), "GOOD_TOKEN")) + k_good_rules);
    const auto r = run_hookrelay({"check", "--online", "--config", path}, k_env);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("jenkins ci (" + jenkins.url() +
                         "): authenticated as hookrelay; CSRF protection on; 3 job path(s) "
                         "checked: OK"),
              std::string::npos)
        << r.out << r.err;
    EXPECT_TRUE(jenkins.builds().empty());  // a check never triggers anything
}

TEST_F(OnlineCheck, ReportsEveryProblemAtOnceWithFileLineColumn) {
    const std::string rules = R"(rules:
  - name: missing
    when: {event: push}
    trigger: {jenkins: ci, job: "acme/nope"}
  - name: near
    when: {event: push}
    trigger: {jenkins: ci, job: "acme/ap"}
  - name: near-folder
    when: {event: push}
    trigger:
      jenkins: ci
      job: "acmee/multi/{{ branch }}"
  - name: typo
    when: {event: push}
    trigger:
      jenkins: ci
      job: "acme/app"
      parameters: {GIT_COMMIT: "{{ commit }}", BRANHC: "{{ branch }}"}
  - name: bare
    when: {event: push}
    trigger: {jenkins: ci, job: "acme/app"}
  - name: extra
    when: {event: push}
    trigger: {jenkins: ci, job: "acme/docs", parameters: {X: "1"}}
  - name: folder
    when: {event: push}
    trigger: {jenkins: ci, job: "gone/{{ branch }}"}
  - name: wrong-token
    when: {event: push}
    trigger: {jenkins: old, job: "acme/app"}
)";
    const std::string config = head(jenkins_entry("ci", jenkins.url(), "GOOD_TOKEN") +
                                    jenkins_entry("old", jenkins.url(), "ROTATED_TOKEN")) +
                               rules;
    const auto path = dir.write("hookrelay.yaml", config);
    const auto r = run_hookrelay({"check", "--online", "--config", path}, k_env);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    const auto& e = r.err;
    EXPECT_NE(e.find(at(path, config, "acme/nope\"") +
                     ": rule missing: job 'acme/nope' does not exist on jenkins ci: folder 'acme' "
                     "has no item 'nope' (its items: app, docs, multi)"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find(at(path, config, "acme/ap\"") +
                     ": rule near: job 'acme/ap' does not exist on jenkins ci: folder 'acme' has "
                     "no item 'ap' (did you mean 'app'?)"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find(at(path, config, "acmee/") +
                     ": rule near-folder: folder 'acmee/multi' (the static part of job "
                     "'acmee/multi/{{ branch }}') does not exist on jenkins ci: there is no "
                     "top-level item 'acmee' (did you mean 'acme'?)"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find(at(path, config, "{{ branch }}\"}") +
                     ": rule typo: parameter 'BRANHC' is not declared by job 'acme/app' on "
                     "jenkins ci (did you mean 'BRANCH'?)"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find(at(path, config, "acme/app\"}") + ": rule bare: "), std::string::npos) << e;
    EXPECT_NE(e.find("rule bare: job 'acme/app' on jenkins ci is parameterized (GIT_COMMIT, "
                     "BRANCH), but the trigger sends no parameters"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find("rule extra: job 'acme/docs' on jenkins ci declares no parameters, but the "
                     "trigger sends X"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find(at(path, config, "gone/{{") +
                     ": rule folder: folder 'gone' (the static part of job 'gone/{{ branch }}') "
                     "does not exist on jenkins ci"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find(at(path, config, "old:") +
                     ": jenkins old refuses hookrelay's credentials (HTTP 401"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find("fix jenkins.old.api_token"), std::string::npos) << e;
    EXPECT_EQ(e.find("ROTATED_TOKEN"), std::string::npos) << e;  // never the secret
    EXPECT_NE(e.find("8 problems found"), std::string::npos) << e;
}

TEST_F(OnlineCheck, JenkinsTestChecksOnlyTheNamedJenkins) {
    const std::string config = head(jenkins_entry("ci", jenkins.url(), "GOOD_TOKEN") +
                                    jenkins_entry("old", jenkins.url(), "ROTATED_TOKEN")) +
                               k_good_rules;
    const auto path = dir.write("hookrelay.yaml", config);
    const auto r = run_hookrelay({"jenkins", "test", "ci", "--config", path}, k_env);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("jenkins ci (" + jenkins.url() + "): authenticated as hookrelay"),
              std::string::npos)
        << r.out;
    EXPECT_EQ(r.out.find("jenkins old"), std::string::npos) << r.out;

    const auto all = run_hookrelay({"jenkins", "test", "--config", path}, k_env);
    EXPECT_EQ(all.exit_code, 1) << all.out << all.err;
    EXPECT_NE(all.err.find("fix jenkins.old.api_token"), std::string::npos) << all.err;

    const auto unknown = run_hookrelay({"jenkins", "test", "nope", "--config", path}, k_env);
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_NE(unknown.err.find("no jenkins named 'nope'"), std::string::npos) << unknown.err;
}

TEST_F(OnlineCheck, UnreachableJenkinsIsAProblemNotAHang) {
    const auto url = jenkins.url();
    jenkins.stop();
    const auto path =
        dir.write("hookrelay.yaml", head(jenkins_entry("ci", url, "GOOD_TOKEN")) + k_good_rules);
    const auto r = run_hookrelay({"check", "--online", "--config", path}, k_env, 15s);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("jenkins ci cannot be reached: "), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("jenkins ci (" + url + "): not reachable"), std::string::npos) << r.out;
}

HttpResult admin(const Daemon& daemon, const std::string& target) {
    return http_request(daemon.admin_port(), "GET", target,
                        {{"Authorization", std::string("Bearer ") + k_admin_token}});
}

// The findings of Jenkins "ci" in /api/v1/status; empty when none (or no answer).
std::vector<std::string> findings(const Daemon& daemon, const std::string& jenkins = "ci") {
    std::vector<std::string> out;
    const auto r = admin(daemon, "/api/v1/status");
    if (r.status != 200) return out;
    const auto status = json::parse(r.body);
    for (const auto& j : status.at("jenkins").as_array()) {
        if (j.at("name").as_string() != jenkins) continue;
        for (const auto& f : j.at("findings").as_array()) out.emplace_back(f.as_string());
    }
    return out;
}

// Whether /metrics shows hookrelay_config_findings{jenkins="<jenkins>"} <count>.
bool metrics_show_findings(const Daemon& daemon, const std::string& jenkins, int count) {
    return admin(daemon, "/metrics")
               .body.find("hookrelay_config_findings{jenkins=\"" + jenkins + "\"} " +
                          std::to_string(count) + "\n") != std::string::npos;
}

Daemon::Options daemon_options(std::string config) {
    Daemon::Options o;
    o.config_yaml = std::move(config);
    o.env = k_env;
    return o;
}

TEST_F(OnlineCheck, DaemonShowsFindingsInStatusAndMetricsAndAReloadClearsThem) {
    const std::string bad = R"(rules:
  - name: app
    when: {event: push}
    trigger: {jenkins: ci, job: "acme/ap", parameters: {GIT_COMMIT: "{{ commit }}"}}
)";
    const auto config = head(jenkins_entry("ci", jenkins.url(), "GOOD_TOKEN")) + bad;
    Daemon daemon(daemon_options(config));
    ASSERT_TRUE(eventually([&] { return findings(daemon).size() == 1; }, k_deadline))
        << daemon.log();
    EXPECT_NE(findings(daemon)[0].find(at(daemon.config_path(), config, "acme/ap\"") +
                                       ": rule app: job 'acme/ap' does not exist on jenkins ci"),
              std::string::npos)
        << findings(daemon)[0];
    EXPECT_TRUE(metrics_show_findings(daemon, "ci", 1));
    const auto status =
        run_hookrelay({"status", "--admin", "127.0.0.1:" + std::to_string(daemon.admin_port())},
                      {{"HOOKRELAY_ADMIN_TOKEN", k_admin_token}});
    EXPECT_NE(status.out.find("config check of jenkins ci:"), std::string::npos)
        << status.out << status.err;

    write_file(daemon.config_path(),
               head(jenkins_entry("ci", jenkins.url(), "GOOD_TOKEN")) + k_good_rules);
    daemon.signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return metrics_show_findings(daemon, "ci", 0); }, k_deadline))
        << daemon.log();
    EXPECT_TRUE(findings(daemon).empty());
}

// A Jenkins entry taken out by a reload takes its findings with it: its lane lives on while its
// triggers go out, but what was found wrong with its entry and rules no longer applies.
TEST_F(OnlineCheck, AReloadThatRemovesAJenkinsClearsItsFindings) {
    const std::string old_rule = R"(  - name: old
    when: {event: push}
    trigger: {jenkins: old, job: "acme/gone"}
)";
    const auto config = head(jenkins_entry("ci", jenkins.url(), "GOOD_TOKEN") +
                             jenkins_entry("old", jenkins.url(), "GOOD_TOKEN")) +
                        k_good_rules + old_rule;
    Daemon daemon(daemon_options(config));
    ASSERT_TRUE(eventually([&] { return findings(daemon, "old").size() == 1; }, k_deadline))
        << daemon.log();
    EXPECT_TRUE(metrics_show_findings(daemon, "old", 1));

    write_file(daemon.config_path(),
               head(jenkins_entry("ci", jenkins.url(), "GOOD_TOKEN")) + k_good_rules);
    daemon.signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return metrics_show_findings(daemon, "old", 0); }, k_deadline))
        << daemon.log();
    EXPECT_TRUE(findings(daemon, "old").empty());
}

TEST_F(OnlineCheck, DaemonStartsAndAcceptsWebhooksWhileJenkinsHangs) {
    jenkins.set_hanging(true);
    // Deadlines long enough that the check is still waiting while the daemon answers below.
    auto config = head(jenkins_entry("ci", jenkins.url(), "GOOD_TOKEN")) + k_good_rules;
    config.replace(config.find("request_timeout: 2s"), 19, "request_timeout: 5s");
    config.replace(config.find("io_timeout: 1s"), 14, "io_timeout: 4s");
    Daemon daemon(daemon_options(config));
    // Up and accepting while the check's first request still waits for Jenkins.
    const auto f = github_push("hang-1");
    Headers h = f.headers;
    h.emplace_back("X-Hub-Signature-256", github_signature(k_secret, f.body));
    EXPECT_EQ(http_request(daemon.port(), "POST", "/hooks/github", h, f.body).status, 202u);
    EXPECT_TRUE(findings(daemon).empty());
    // The check gives up at the Jenkins entry's request_timeout and says so.
    ASSERT_TRUE(eventually([&] { return findings(daemon).size() == 1; }, k_deadline))
        << daemon.log();
    EXPECT_NE(findings(daemon)[0].find("jenkins ci cannot be reached: "), std::string::npos)
        << findings(daemon)[0];
}

// Jenkins restarting when the daemon starts: the check says it cannot reach it, and once Jenkins
// answers again the check is done again by itself, so that an outage is not left in `status`
// and the findings gauge as a problem of the config until the next reload.
TEST_F(OnlineCheck, ACheckAnOutageCutShortIsDoneAgainOnceJenkinsAnswers) {
    jenkins.set_restarting(true);
    const auto config = head(jenkins_entry("ci", jenkins.url(), "GOOD_TOKEN") +
                             "    probe_initial: 50ms\n    probe_max: 200ms\n") +
                        k_good_rules;
    Daemon daemon(daemon_options(config));
    ASSERT_TRUE(eventually([&] { return findings(daemon).size() == 1; }, k_deadline))
        << daemon.log();
    EXPECT_NE(findings(daemon)[0].find("jenkins ci cannot be reached: "), std::string::npos)
        << findings(daemon)[0];
    EXPECT_TRUE(metrics_show_findings(daemon, "ci", 1));

    jenkins.set_restarting(false);
    ASSERT_TRUE(eventually([&] { return metrics_show_findings(daemon, "ci", 0); }, k_deadline))
        << daemon.log();
    EXPECT_TRUE(findings(daemon).empty());
    EXPECT_NE(daemon.log().find("config check: jenkins ci: no problems found"), std::string::npos)
        << daemon.log();
    // While it was down, the same finding was said once, however often it was looked at.
    const auto log = daemon.log();
    const std::string said = "jenkins ci cannot be reached: ";
    EXPECT_EQ(log.find(said), log.rfind(said)) << log;
}

}  // namespace
}  // namespace hookrelay::test
