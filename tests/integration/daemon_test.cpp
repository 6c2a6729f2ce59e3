// Starts the real hookrelay binary on port 0 and talks to it over loopback with real, signed
// forge payloads from tests/data.
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <boost/json.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace hookrelay::test {
namespace {

namespace json = boost::json;

constexpr const char* k_github_secret = "it-github-secret-6b1d0f";
constexpr const char* k_github_old_secret = "it-github-old-secret-93ac";
constexpr const char* k_gitlab_token = "it-gitlab-token-5e27aa";
constexpr const char* k_jenkins_token = "it-jenkins-api-token-c4f1";

const char* k_config = R"(
listen: 127.0.0.1:0
state_dir: ./var
log: {level: debug}
server:
  body_limit: 64KiB
  header_timeout: 500ms
  idle_timeout: 2s
  max_connections: 8
sources:
  github:
    provider: github
    secrets: ["${env:GH_SECRET}", "${env:GH_OLD_SECRET}"]
  gitlab:
    provider: gitlab
    token: "${env:GL_TOKEN}"
jenkins:
  ci: {url: "http://127.0.0.1:9/", user: hookrelay, api_token: "${env:JENKINS_TOKEN}"}
rules:
  - name: main-builds
    when: {event: push, branch: [main, master]}
    trigger:
      jenkins: ci
      job: "{{ repository.namespace }}/{{ repository.name }}/{{ branch }}"
      parameters: {GIT_COMMIT: "{{ commit }}"}
  - name: pr-builds
    when: {event: pull_request, action: [opened, synchronize, reopened]}
    trigger: {jenkins: ci, job: "pr/{{ repository.name }}", parameters: {PR: "{{ pull_request.number }}"}}
)";

Daemon::Options options(std::string config = k_config) {
    Daemon::Options o;
    o.config_yaml = std::move(config);
    o.env = {{"GH_SECRET", k_github_secret},
             {"GH_OLD_SECRET", k_github_old_secret},
             {"GL_TOKEN", k_gitlab_token},
             {"JENKINS_TOKEN", k_jenkins_token}};
    return o;
}

Headers signed_github(const Fixture& f, const std::string& secret = k_github_secret) {
    Headers h = f.headers;
    h.emplace_back("X-Hub-Signature-256", github_signature(secret, f.body));
    return h;
}

Headers with_gitlab_token(const Fixture& f, const std::string& token = k_gitlab_token) {
    Headers h = f.headers;
    h.emplace_back("X-Gitlab-Token", token);
    return h;
}

json::object body_of(const HttpResult& r) {
    return json::parse(r.body).as_object();
}

class DaemonTest : public ::testing::Test {
  protected:
    Daemon daemon{options()};
};

TEST_F(DaemonTest, SignedGithubPushIsAcceptedWithItsTrigger) {
    const auto f = load_fixture("github", "push-branch-update");
    const auto r = http_request(daemon.port(), "POST", "/hooks/github", signed_github(f), f.body);
    ASSERT_EQ(r.status, 202u) << r.error << r.body;
    const auto body = body_of(r);
    EXPECT_EQ(body.at("status"), "accepted");
    EXPECT_EQ(body.at("delivery"), "42d9de75-72c0-558a-b67d-00b9a0e3ec66");
    EXPECT_EQ(body.at("matched_rules").as_array(), json::array({"main-builds"}));
    const auto& trigger = body.at("triggers").as_array().at(0).as_object();
    EXPECT_EQ(trigger.at("job"), "woodpecker-ci/woodpecker/main");
    EXPECT_EQ(trigger.at("jenkins"), "ci");
    EXPECT_FALSE(trigger.at("id").as_string().empty());
}

TEST_F(DaemonTest, RotatedSecretStillVerifies) {
    const auto f = load_fixture("github", "push-branch-update");
    const auto r = http_request(daemon.port(), "POST", "/hooks/github",
                                signed_github(f, k_github_old_secret), f.body);
    EXPECT_EQ(r.status, 202u) << r.body;
}

TEST_F(DaemonTest, FormEncodedGithubDeliveryIsAccepted) {
    const auto f = load_fixture("github", "push-branch-created-form");
    const auto r = http_request(daemon.port(), "POST", "/hooks/github", signed_github(f), f.body);
    ASSERT_EQ(r.status, 202u) << r.body;
    EXPECT_EQ(body_of(r).at("triggers").as_array().at(0).at("job"),
              "Codertocat/Hello-World/master");
}

TEST_F(DaemonTest, BadOrMissingSignatureIs401AndQueuesNothing) {
    const auto f = load_fixture("github", "push-branch-update");
    const auto bad = http_request(daemon.port(), "POST", "/hooks/github",
                                  signed_github(f, "not-the-secret"), f.body);
    EXPECT_EQ(bad.status, 401u);
    EXPECT_EQ(body_of(bad).at("status"), "rejected");
    const auto missing = http_request(daemon.port(), "POST", "/hooks/github", f.headers, f.body);
    EXPECT_EQ(missing.status, 401u);
    // The forge's admin reads which header is missing (a hook without a secret sends none).
    EXPECT_EQ(body_of(missing).at("error"),
              "signature or token missing: this github source checks X-Hub-Signature-256");
    // The same delivery, now properly signed, was never recorded, so it is not a duplicate.
    const auto good =
        http_request(daemon.port(), "POST", "/hooks/github", signed_github(f), f.body);
    EXPECT_EQ(good.status, 202u) << good.body;
}

TEST_F(DaemonTest, RepeatedDeliveryIsDuplicateAndQueuesNothing) {
    const auto f = load_fixture("github", "pull_request-opened");
    const auto first =
        http_request(daemon.port(), "POST", "/hooks/github", signed_github(f), f.body);
    ASSERT_EQ(first.status, 202u) << first.body;
    const auto again =
        http_request(daemon.port(), "POST", "/hooks/github", signed_github(f), f.body);
    EXPECT_EQ(again.status, 200u);
    EXPECT_EQ(body_of(again).at("status"), "duplicate");
    EXPECT_FALSE(body_of(again).contains("triggers"));
}

TEST_F(DaemonTest, DuplicateAnswerSaysHowToRunItAgain) {
    // GitHub's "Redeliver" button sends the same delivery id again.
    const auto f = load_fixture("github", "pull_request-opened");
    ASSERT_EQ(http_request(daemon.port(), "POST", "/hooks/github", signed_github(f), f.body).status,
              202u);
    const auto again =
        http_request(daemon.port(), "POST", "/hooks/github", signed_github(f), f.body);
    const auto id = std::string(body_of(again).at("delivery").as_string());
    EXPECT_EQ(std::string(body_of(again).at("hint").as_string()),
              "already recorded as " + id +
                  "; to run it through the current rules use hookrelay deliveries redeliver " + id)
        << again.body;
}

TEST_F(DaemonTest, PingIsAnswered200) {
    const auto f = load_fixture("github", "ping-repo-hook");
    const auto r = http_request(daemon.port(), "POST", "/hooks/github", signed_github(f), f.body);
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(body_of(r).at("status"), "pong");
}

TEST_F(DaemonTest, UnmatchedDeliveryIs200WithReasons) {
    const auto f = load_fixture("github", "release-published");
    const auto r = http_request(daemon.port(), "POST", "/hooks/github", signed_github(f), f.body);
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto body = body_of(r);
    EXPECT_EQ(body.at("status"), "no_match");
    EXPECT_TRUE(body.at("triggers").as_array().empty());
    EXPECT_EQ(body.at("skipped").as_array().size(), 2u);
}

TEST_F(DaemonTest, GitlabTokenIsChecked) {
    const auto f = load_fixture("gitlab", "push-branch-update");
    const auto good =
        http_request(daemon.port(), "POST", "/hooks/gitlab", with_gitlab_token(f), f.body);
    ASSERT_EQ(good.status, 202u) << good.body;
    EXPECT_EQ(body_of(good).at("triggers").as_array().at(0).at("job"), "test/woodpecker/main");
    const auto bad =
        http_request(daemon.port(), "POST", "/hooks/gitlab",
                     with_gitlab_token(load_fixture("gitlab", "push-docs"), "wrong"), f.body);
    EXPECT_EQ(bad.status, 401u);
}

TEST_F(DaemonTest, GitlabMergeRequestUpdateWithNewCommitsTriggersPrBuild) {
    const auto f = load_fixture("gitlab", "merge_request-update-push");
    const auto r =
        http_request(daemon.port(), "POST", "/hooks/gitlab", with_gitlab_token(f), f.body);
    ASSERT_EQ(r.status, 202u) << r.body;
    EXPECT_EQ(body_of(r).at("matched_rules").as_array(), json::array({"pr-builds"}));
}

TEST_F(DaemonTest, ProtocolErrorsGetTheirStatusCodes) {
    const auto f = load_fixture("github", "push-branch-update");
    EXPECT_EQ(
        http_request(daemon.port(), "POST", "/hooks/nowhere", signed_github(f), f.body).status,
        404u);
    const auto get = http_request(daemon.port(), "GET", "/hooks/github");
    EXPECT_EQ(get.status, 405u);
    EXPECT_EQ(get.header("Allow"), "POST");
    Headers text = signed_github(f);
    for (auto& [k, v] : text) {
        if (k == "Content-Type") v = "text/plain";
    }
    EXPECT_EQ(http_request(daemon.port(), "POST", "/hooks/github", text, f.body).status, 415u);
    const std::string junk = "{\"ref\": ";
    Headers junk_headers = f.headers;
    junk_headers.emplace_back("X-Hub-Signature-256", github_signature(k_github_secret, junk));
    const auto malformed = http_request(daemon.port(), "POST", "/hooks/github", junk_headers, junk);
    EXPECT_EQ(malformed.status, 400u);
    EXPECT_FALSE(body_of(malformed).at("error").as_string().empty());
    const std::string big(70 * 1024, 'x');
    EXPECT_EQ(http_request(daemon.port(), "POST", "/hooks/github", f.headers, big).status, 413u);

    // Without its event header: the answer names the header a GitHub source reads.
    Headers no_event;
    for (const auto& [k, v] : signed_github(f)) {
        if (k != "X-GitHub-Event") no_event.emplace_back(k, v);
    }
    const auto eventless = http_request(daemon.port(), "POST", "/hooks/github", no_event, f.body);
    EXPECT_EQ(eventless.status, 400u);
    EXPECT_EQ(body_of(eventless).at("error"),
              "event header missing: a github source takes the event from X-GitHub-Event")
        << eventless.body;

    // A push body sent as a pull request: the answer says which event it was read as.
    Headers as_pr;
    for (const auto& [k, v] : signed_github(f)) {
        as_pr.emplace_back(k, k == "X-GitHub-Event" ? "pull_request" : v);
    }
    const auto mislabelled = http_request(daemon.port(), "POST", "/hooks/github", as_pr, f.body);
    EXPECT_EQ(mislabelled.status, 400u);
    EXPECT_EQ(body_of(mislabelled).at("error"),
              "payload lacks a required field of a 'pull_request' event (a push needs its ref and "
              "repository, a pull request its number): does the event header name what the body "
              "is?")
        << mislabelled.body;
}

TEST_F(DaemonTest, KeepAliveServesSeveralRequestsOnOneConnection) {
    HttpConnection connection(daemon.port());
    const auto f = load_fixture("github", "push-branch-update");
    const auto first = connection.request("POST", "/hooks/github", signed_github(f), f.body);
    EXPECT_EQ(first.status, 202u);
    EXPECT_TRUE(first.keep_alive);
    const auto p = load_fixture("github", "ping-repo-hook");
    const auto second = connection.request("POST", "/hooks/github", signed_github(p), p.body);
    EXPECT_EQ(second.status, 200u);
}

TEST_F(DaemonTest, SlowClientIsDisconnectedAfterHeaderTimeout) {
    HttpConnection slow(daemon.port());
    slow.send_raw("POST /hooks/github HTTP/1.1\r\nHost: x\r\n");  // never finishes the headers
    EXPECT_TRUE(slow.closed_by_peer(std::chrono::seconds(5)));
}

TEST_F(DaemonTest, SecretsNeverReachTheLog) {
    const auto f = load_fixture("github", "push-branch-update");
    http_request(daemon.port(), "POST", "/hooks/github", signed_github(f), f.body);
    http_request(daemon.port(), "POST", "/hooks/github", signed_github(f, "wrong"), f.body);
    const auto g = load_fixture("gitlab", "push-branch-update");
    http_request(daemon.port(), "POST", "/hooks/gitlab", with_gitlab_token(g), g.body);
    http_request(daemon.port(), "POST", "/hooks/gitlab", with_gitlab_token(g, "wrong-token"),
                 g.body);
    ASSERT_EQ(daemon.stop(SIGTERM), 0);
    const auto log = daemon.log();
    EXPECT_NE(log.find("delivery="), std::string::npos) << log;  // the log did get written
    for (const char* secret :
         {k_github_secret, k_github_old_secret, k_gitlab_token, k_jenkins_token}) {
        EXPECT_EQ(log.find(secret), std::string::npos) << "secret leaked into the log:\n" << log;
    }
}

TEST_F(DaemonTest, SigtermStopsCleanly) {
    EXPECT_EQ(daemon.stop(SIGTERM), 0);
    EXPECT_NE(daemon.log().find("hookrelay stopped"), std::string::npos);
}

// `top -H -p $(pidof hookrelay)` and perf tell the store's thread from the network threads.
TEST_F(DaemonTest, ThreadsAreNamedForTopAndPerf) {
    const auto names = [&] {
        std::multiset<std::string> out;
        const auto tasks = "/proc/" + std::to_string(daemon.pid()) + "/task";
        for (const auto& task : std::filesystem::directory_iterator(tasks)) {
            std::ifstream comm(task.path() / "comm");
            std::string name;
            std::getline(comm, name);
            out.insert(name);
        }
        return out;
    };
    // A thread names itself once it runs, which may be just after the port opened.
    std::multiset<std::string> seen;
    EXPECT_TRUE(eventually([&] {
        seen = names();
        // hookrelay-out: Asio's resolver thread for it, made at its first lookup, has its name.
        return seen.count("hookrelay-store") == 1 && seen.count("hookrelay-io") >= 1 &&
               seen.count("hookrelay-out") >= 1;
    })) << "thread names: "
        << [&] {
               std::string all;
               for (const auto& n : seen) all += n + " ";
               return all;
           }();
    EXPECT_GE(seen.count("hookrelay"), 1u);  // the main thread keeps the process name
}

// Each thread of the daemon's process: its name and nice value (field 19 of
// /proc/<pid>/task/<tid>/stat), once the threads named `wanted` are there (a thread takes its
// name once its priority is lowered).
std::multimap<std::string, int> thread_priorities(const Daemon& daemon,
                                                  const std::vector<std::string>& wanted) {
    const auto threads = [&] {
        std::multimap<std::string, int> out;
        const auto tasks = "/proc/" + std::to_string(daemon.pid()) + "/task";
        for (const auto& task : std::filesystem::directory_iterator(tasks)) {
            std::ifstream comm(task.path() / "comm");
            std::string name;
            std::getline(comm, name);
            std::ifstream stat_file(task.path() / "stat");
            std::string stat((std::istreambuf_iterator<char>(stat_file)),
                             std::istreambuf_iterator<char>());
            std::istringstream fields(stat.substr(stat.rfind(')') + 1));
            std::string field;
            for (int i = 3; i <= 19 && fields >> field; ++i) {
            }
            if (!field.empty()) out.emplace(name, std::stoi(field));  // gone meanwhile: skip
        }
        return out;
    };
    std::multimap<std::string, int> seen;
    const bool all = eventually([&] {
        seen = threads();
        return std::all_of(wanted.begin(), wanted.end(),
                           [&](const std::string& name) { return seen.count(name) >= 1; });
    });
    EXPECT_TRUE(all) << "threads missing";
    return seen;
}

// The thread of requests to Jenkins runs 10 nice steps below the network threads, and with the
// intake log (the default) answering every delivery the store's thread 5 (docs/operations.md),
// so under contention for the CPU accepting webhooks comes first.
TEST_F(DaemonTest, TheThreadsBehindTheAnswersRunBelowTheNetworkThreads) {
    const auto seen = thread_priorities(
        daemon, {"hookrelay-out", "hookrelay-io", "hookrelay-store", "hookrelay-log"});
    // (Threads that never take a name of their own, as SQLite's or libc's helpers might, keep
    // the process's: "hookrelay" may be several.)
    for (const char* name : {"hookrelay", "hookrelay-io", "hookrelay-log", "hookrelay-store"}) {
        ASSERT_GE(seen.count(name), 1u) << name;
    }
    const int network = seen.find("hookrelay-io")->second;
    ASSERT_LT(network, 19) << "the test runs at the lowest priority already: nothing to see";
    EXPECT_EQ(seen.find("hookrelay")->second, network);
    EXPECT_EQ(seen.find("hookrelay-log")->second, network);
    EXPECT_EQ(seen.find("hookrelay-store")->second, std::min(network + 5, 19));
    EXPECT_NE(daemon.log().find("store: webhooks are answered from the intake log; "
                                "hookrelay-store runs below the network threads"),
              std::string::npos)
        << daemon.log();
    const auto [first, last] = seen.equal_range("hookrelay-out");
    for (auto it = first; it != last; ++it) EXPECT_EQ(it->second, std::min(network + 10, 19));
}

// Where answers wait for the store's thread it runs at the network threads' priority: without
// the intake log, and where a rule coalesces or a source compares bodies (such deliveries are
// answered after its commit).
TEST(DaemonThreads, WhereAnswersWaitForTheStoresThreadItRunsAtTheNetworkThreadsPriority) {
    // `rules:` is k_config's last key: a rule appended joins it.
    const std::string coalescing = std::string(k_config) + R"(
  - name: develop
    when: {event: push, branch: develop}
    coalesce: "{{ repository.name }}/{{ branch }}"
    trigger: {jenkins: ci, job: "dev"}
)";
    std::string body_window = k_config;
    const std::string github = "    provider: github\n";
    body_window.replace(body_window.find(github), github.size(),
                        github + "    duplicate_body_window: 1d\n");
    struct Case {
        const char* what;
        std::string config;
        bool log;
        const char* said;  ///< the start's log line says why
    };
    for (const Case& c : {Case{"without the intake log",
                               std::string(k_config) + "store: {intake_log: false}\n", false, ""},
                          Case{"with a coalescing rule", coalescing, true,
                               "hookrelay-store runs at the network threads' priority: rule "
                               "'develop' coalesces"},
                          Case{"with a body window", body_window, true,
                               "hookrelay-store runs at the network threads' priority: source "
                               "'github' compares bodies (duplicate_body_window)"}}) {
        SCOPED_TRACE(c.what);
        Daemon daemon(options(c.config));
        std::vector<std::string> wanted{"hookrelay-io", "hookrelay-store"};
        if (c.log) wanted.push_back("hookrelay-log");
        const auto seen = thread_priorities(daemon, wanted);
        EXPECT_EQ(seen.count("hookrelay-log"), c.log ? 1u : 0u);
        ASSERT_EQ(seen.count("hookrelay-io"), 1u);
        ASSERT_EQ(seen.count("hookrelay-store"), 1u);
        const int network = seen.find("hookrelay-io")->second;
        ASSERT_LT(network, 19) << "the test runs at the lowest priority already: nothing to see";
        EXPECT_EQ(seen.find("hookrelay-store")->second, network);
        if (*c.said) {
            EXPECT_NE(daemon.log().find(c.said), std::string::npos) << daemon.log();
        }
        EXPECT_EQ(daemon.log().find("runs below the network threads"), std::string::npos);
    }
}

TEST(DaemonLimits, ConnectionsOverTheCapGet503) {
    auto o = options();
    o.config_yaml += "\n";  // same config, smaller cap below
    const auto pos = o.config_yaml.find("max_connections: 8");
    o.config_yaml.replace(pos, 18, "max_connections: 2");
    // Keep the two idle connections open for the whole test.
    const auto timeout = o.config_yaml.find("header_timeout: 500ms");
    o.config_yaml.replace(timeout, 21, "header_timeout: 30s  ");
    Daemon daemon(o);
    HttpConnection a(daemon.port());
    HttpConnection b(daemon.port());
    // Both held connections are counted once the server has accepted them; the third is refused.
    HttpResult third;
    ASSERT_TRUE(eventually([&] {
        third = http_request(daemon.port(), "POST", "/hooks/github", {}, "{}");
        return third.status == 503u;
    })) << third.status
        << " " << third.error;
    EXPECT_EQ(json::parse(third.body).at("status"), "unavailable");
    EXPECT_EQ(json::parse(third.body).at("error"), "too many connections; retry later");
    EXPECT_EQ(third.header("Retry-After"), "1");
}

TEST(DaemonStartup, PortInUseIsAClearErrorAndNonZeroExit) {
    Daemon first(options());
    auto o = options();
    const auto pos = o.config_yaml.find("127.0.0.1:0");
    o.config_yaml.replace(pos, 11, "127.0.0.1:" + std::to_string(first.port()));
    TempDir dir;
    const auto path = dir.write("c.yaml", o.config_yaml);
    const auto r = run_hookrelay({"run", "--config", path}, o.env);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("cannot listen on 127.0.0.1:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("(the config's `listen`): "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("another process listens there"), std::string::npos) << r.err;
}

// Past the open-file limit accept() fails before max_connections can evict or answer 503, and
// systemd's default soft limit (1024) is the cap's default: the daemon raises its soft limit to
// what the caps need, and says when the hard limit keeps it short.
TEST(DaemonStartup, RaisesTheOpenFileLimitTheConnectionCapsNeed) {
    rlimit original{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &original), 0);
    if (original.rlim_max != RLIM_INFINITY && original.rlim_max < 2000) {
        GTEST_SKIP() << "hard open-file limit " << original.rlim_max << " under 2000";
    }
    struct Restore {
        rlimit limit;
        ~Restore() { ::setrlimit(RLIMIT_NOFILE, &limit); }
    } restore{original};
    rlimit low = original;
    low.rlim_cur = 128;  // the daemon inherits it
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);

    auto config = std::string(k_config);
    config.replace(config.find("max_connections: 8"), 18, "max_connections: 1000");
    Daemon daemon(options(config));
    ::setrlimit(RLIMIT_NOFILE, &original);
    std::ifstream limits("/proc/" + std::to_string(daemon.pid()) + "/limits");
    long soft = 0;
    for (std::string line; std::getline(limits, line);) {
        if (line.rfind("Max open files", 0) == 0) soft = std::stol(line.substr(26));
    }
    // 1,000 webhook connections, the admin listener's 64, 256 for everything else.
    EXPECT_EQ(soft, 1320);
    EXPECT_NE(daemon.log().find("open-file limit raised from 128 to 1320"), std::string::npos)
        << daemon.log();
    EXPECT_EQ(daemon.log().find("is below what server.max_connections"), std::string::npos);
}

}  // namespace
}  // namespace hookrelay::test
