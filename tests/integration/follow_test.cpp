// End to end: a push travels webhook → 202 → Jenkins queue → build #N → result, hookrelay follows
// it there (surviving its own restart and Jenkins forgetting the queue item), shows every step in
// `deliveries show`, `deliveries list` and the API, and tells the commit on GitHub, GitLab, Gitea
// and both Bitbuckets (fake status APIs, each checking its forge's path, token, fields and
// states) what became of it, also when the forge API was down for a while. The real binary
// against the fake Jenkins (which models the queue) and the fake forge APIs.
#include "fakes/fake_forge_api.hpp"
#include "fakes/fake_jenkins.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <csignal>
#include <optional>

namespace hookrelay::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* k_secret = "follow-test-secret-7c1e";
constexpr const char* k_gitlab_token = "follow-test-gitlab-token-2b8d";
constexpr const char* k_admin_token = "follow-test-admin-5a90";
constexpr const char* k_status_token = "follow-test-status-token-0f3a";
constexpr const char* k_github_sha = "366701fde727cb7a9e7f21eb88264f59f6f9b89c";
constexpr const char* k_gitlab_sha = "16862e368d8ab812e48833b741dad720d6e2cb7f";
// The commits of tests/data's Gitea, Bitbucket Cloud and Bitbucket Data Center pushes.
constexpr const char* k_gitea_sha = "ef98532add3b2feb7a137426bba1248724367df5";
constexpr const char* k_cloud_sha = "e42fac24456e4a56f1b7f9358afc3070e3b7ddec";
constexpr const char* k_server_sha = "76797d54bca87db6d1e3e82ee40622c7908aa514";
constexpr std::chrono::seconds k_deadline{20};

struct Knobs {
    std::string state_dir = "./var";
    std::string follow_poll_initial = "100ms";
    std::string poll_interval = "100ms";
};

// A status: block for a source: posts to the fake under `api_path`, retried quickly.
std::string status_to(const FakeForgeApi& forge, const std::string& api_path,
                      const std::string& context = "") {
    return "\n    status:\n      token: \"${env:STATUS_TOKEN}\"\n      api_url: \"" + forge.url() +
           api_path + "\"\n      retry_initial: 100ms\n      retry_max: 300ms\n" +
           (context.empty() ? "" : "      context: \"" + context + "\"\n");
}

// Longer than the 40 characters Bitbucket Cloud takes for a key.
constexpr const char* k_long_context = "hookrelay/build-pull-requests/app/app-unit-tests";

// A config with `sources` (YAML under `sources:`), one Jenkins that follows quickly and one rule
// that builds every push as {namespace}/{name}/{branch}.
std::string config_with(const std::string& sources, const FakeJenkins& jenkins, Knobs knobs) {
    return "listen: 127.0.0.1:0\nstate_dir: " + knobs.state_dir + R"(
log: {level: debug}
admin: {listen: "127.0.0.1:0", token: "${env:ADMIN_TOKEN}"}
dispatch: {poll_interval: )" +
           knobs.poll_interval + R"(}
sources:
)" + sources +
           R"(jenkins:
  ci:
    url: ")" +
           jenkins.url() +
           R"("
    user: hookrelay
    api_token: "${env:JENKINS_TOKEN}"
    follow_poll_initial: )" +
           knobs.follow_poll_initial + R"(
    follow_poll_max: 300ms
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

std::string config_for(const FakeJenkins& jenkins, const FakeForgeApi& forge, Knobs knobs = {}) {
    return config_with("  github:\n    provider: github\n    secret: \"${env:GH_SECRET}\"" +
                           status_to(forge, "") +
                           "  gitlab:\n    provider: gitlab\n    token: \"${env:GL_TOKEN}\"" +
                           status_to(forge, "api/v4"),
                       jenkins, knobs);
}

// Gitea, Bitbucket Cloud and Bitbucket Data Center, each posting statuses to the fake in its own
// forge's API.
std::string other_forges_config(const FakeJenkins& jenkins, const FakeForgeApi& forge) {
    return config_with(
        "  gitea:\n    provider: gitea\n    secret: \"${env:GH_SECRET}\"" +
            status_to(forge, "api/v1") +
            "  bitbucket:\n    provider: bitbucket-cloud\n    secret: \"${env:GH_SECRET}\"" +
            status_to(forge, "2.0", k_long_context) +
            "  bitbucket-dc:\n    provider: bitbucket-server\n    secret: \"${env:GH_SECRET}\"" +
            status_to(forge, "bitbucket"),
        jenkins, Knobs{});
}

Daemon::Options options(std::string config) {
    Daemon::Options o;
    o.config_yaml = std::move(config);
    o.env = {{"GH_SECRET", k_secret},
             {"GL_TOKEN", k_gitlab_token},
             {"ADMIN_TOKEN", k_admin_token},
             {"STATUS_TOKEN", k_status_token},
             {"JENKINS_TOKEN", "fake-api-token"}};
    return o;
}

HttpResult push_github(const Daemon& daemon, const std::string& delivery) {
    const auto f = github_push(delivery);
    Headers h = f.headers;
    h.emplace_back("X-Hub-Signature-256", github_signature(k_secret, f.body));
    return http_request(daemon.port(), "POST", "/hooks/github", h, f.body);
}

HttpResult push_gitlab(const Daemon& daemon) {
    const auto f = load_fixture("gitlab", "push-branch-update");
    Headers h = f.headers;
    h.emplace_back("X-Gitlab-Token", k_gitlab_token);
    return http_request(daemon.port(), "POST", "/hooks/gitlab", h, f.body);
}

// A tests/data push of `forge`, signed with `header: prefix<hex HMAC-SHA256>`.
HttpResult push_signed(const Daemon& daemon, const std::string& path, const std::string& forge,
                       const std::string& fixture, const std::string& header,
                       const std::string& prefix) {
    const auto f = load_fixture(forge, fixture);
    Headers h = f.headers;
    h.emplace_back(header, prefix + to_hex(hmac_sha256(k_secret, f.body)));
    return http_request(daemon.port(), "POST", path, h, f.body);
}

HttpResult admin(const Daemon& daemon, const std::string& target) {
    return http_request(daemon.admin_port(), "GET", target,
                        {{"Authorization", std::string("Bearer ") + k_admin_token}});
}

// The first trigger of a delivery as GET /api/v1/deliveries/{id} shows it; null if none yet.
json::value trigger_of(const Daemon& daemon, const std::string& delivery) {
    const auto r = admin(daemon, "/api/v1/deliveries/" + delivery);
    if (r.status != 200) return nullptr;
    const auto d = json::parse(r.body);
    const auto& triggers = d.at("triggers").as_array();
    return triggers.empty() ? json::value(nullptr) : triggers.at(0);
}

std::string text(const json::value& v, std::initializer_list<std::string_view> path) {
    const json::value* at = &v;
    for (auto key : path) {
        if (!at->is_object()) return "";
        at = at->as_object().if_contains(key);
        if (at == nullptr) return "";
    }
    if (at->is_string()) return std::string(at->as_string());
    return json::serialize(*at);
}

std::string outcome_of(const Daemon& daemon, const std::string& delivery) {
    return text(trigger_of(daemon, delivery), {"outcome"});
}

CommandResult cli(const Daemon& daemon, std::vector<std::string> args) {
    args.insert(args.end(), {"--admin", "127.0.0.1:" + std::to_string(daemon.admin_port())});
    return run_hookrelay(args, {{"HOOKRELAY_ADMIN_TOKEN", k_admin_token}});
}

// The states and descriptions the fake forge took for `sha`, in order.
std::vector<PostedStatus> statuses_for(const FakeForgeApi& forge, const std::string& sha) {
    std::vector<PostedStatus> out;
    for (auto& s : forge.statuses()) {
        if (s.sha == sha) out.push_back(s);
    }
    return out;
}

std::vector<std::string> states(const std::vector<PostedStatus>& posted) {
    std::vector<std::string> out;
    for (const auto& s : posted) out.push_back(s.state);
    return out;
}

FakeJenkins::Options elsewhere() {
    FakeJenkins::Options o;
    o.root_url = "https://jenkins.example.com/";  // Jenkins' own root URL: nobody can reach it
    return o;
}

FakeForgeApi::Options forge_options() {
    FakeForgeApi::Options o;
    o.token = k_status_token;
    return o;
}

class FollowBuilds : public ::testing::Test {
  protected:
    FollowBuilds() {
        jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
        jenkins.add_job({"test", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    }
    FakeJenkins jenkins{elsewhere()};
    FakeForgeApi forge{forge_options()};
};

TEST_F(FollowBuilds, PushTravelsToItsBuildResultAndGithubIsToldEveryStep) {
    jenkins.set_quiet_period(200ms);
    Daemon daemon(options(config_for(jenkins, forge)));
    ASSERT_EQ(push_github(daemon, "follow-1").status, 202u);

    // Queued, then started (the fake runs it until told to finish).
    ASSERT_TRUE(
        eventually([&] { return outcome_of(daemon, "follow-1") == "building"; }, k_deadline))
        << daemon.log();
    const std::string build_url =
        "https://jenkins.example.com/job/woodpecker-ci/job/woodpecker/job/main/1/";
    auto t = trigger_of(daemon, "follow-1");
    EXPECT_EQ(text(t, {"build", "number"}), "1");
    EXPECT_EQ(text(t, {"build", "url"}), build_url);
    EXPECT_EQ(text(t, {"following"}), "true");

    jenkins.finish_builds();
    ASSERT_TRUE(eventually([&] { return outcome_of(daemon, "follow-1") == "SUCCESS"; }, k_deadline))
        << daemon.log();
    t = trigger_of(daemon, "follow-1");
    EXPECT_EQ(text(t, {"following"}), "false");
    const auto queued = text(t, {"build", "queued_at"});
    const auto started = text(t, {"build", "started_at"});
    const auto finished = text(t, {"build", "finished_at"});
    ASSERT_FALSE(queued.empty());
    ASSERT_FALSE(started.empty());
    ASSERT_FALSE(finished.empty());
    EXPECT_LE(queued, started);  // ISO 8601 UTC: text order is time order
    EXPECT_LE(started, finished);

    // The CLI's build line and the listing's outcome column.
    const auto shown = cli(daemon, {"deliveries", "show", "follow-1"});
    ASSERT_EQ(shown.exit_code, 0) << shown.err;
    EXPECT_NE(shown.out.find("→ build #1 SUCCESS in "), std::string::npos) << shown.out;
    EXPECT_NE(shown.out.find(build_url), std::string::npos) << shown.out;
    const auto listed = cli(daemon, {"deliveries", "list"});
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    EXPECT_NE(listed.out.find("woodpecker-ci/woodpecker"), std::string::npos) << listed.out;
    EXPECT_NE(listed.out.find("SUCCESS"), std::string::npos) << listed.out;
    const auto filtered = cli(daemon, {"deliveries", "list", "--outcome", "FAILURE"});
    EXPECT_NE(filtered.out.find("(no deliveries match)"), std::string::npos) << filtered.out;

    // GitHub has no `running`: pending (queued), pending (running, linking the build), success.
    ASSERT_TRUE(forge.wait_for_statuses(3, k_deadline)) << daemon.log();
    const auto posted = statuses_for(forge, k_github_sha);
    ASSERT_EQ(states(posted), (std::vector<std::string>{"pending", "pending", "success"}));
    EXPECT_EQ(posted[0].description, "Queued in Jenkins ci");
    EXPECT_EQ(posted[1].description, "Build #1 running");
    EXPECT_EQ(posted[1].target_url, build_url);
    EXPECT_TRUE(posted[2].description.starts_with("Build #1 SUCCESS in ")) << posted[2].description;
    for (const auto& s : posted) {
        EXPECT_EQ(s.repository, "woodpecker-ci/woodpecker");
        EXPECT_EQ(s.context, "hookrelay/branches");
    }
    // Nothing was ever asked of the root URL's host, and no token leaked into the log.
    EXPECT_EQ(daemon.log().find(k_status_token), std::string::npos);

    const auto metrics = admin(daemon, "/metrics").body;
    EXPECT_NE(metrics.find("hookrelay_builds_total{"), std::string::npos);
    EXPECT_NE(metrics.find("result=\"SUCCESS\""), std::string::npos);
    EXPECT_NE(metrics.find("hookrelay_build_queue_wait_seconds_count{jenkins=\"ci\"} 1"),
              std::string::npos)
        << metrics;
}

// What this instance commits tells its workers when to look: the pull request hears of the queued
// build, the build's start and its result as soon as they are known, not at the next poll.
TEST_F(FollowBuilds, EveryStepReachesTheCommitWithoutWaitingForThePoll) {
    jenkins.set_quiet_period(200ms);
    Knobs knobs;
    knobs.poll_interval = "1h";
    Daemon daemon(options(config_for(jenkins, forge, knobs)));
    ASSERT_EQ(push_github(daemon, "follow-prompt").status, 202u);
    ASSERT_TRUE(forge.wait_for_statuses(1, k_deadline)) << daemon.log();
    EXPECT_EQ(statuses_for(forge, k_github_sha).at(0).description, "Queued in Jenkins ci");
    ASSERT_TRUE(forge.wait_for_statuses(2, k_deadline)) << daemon.log();
    EXPECT_EQ(statuses_for(forge, k_github_sha).at(1).description, "Build #1 running");
    jenkins.finish_builds();
    ASSERT_TRUE(forge.wait_for_statuses(3, k_deadline)) << daemon.log();
    const auto posted = statuses_for(forge, k_github_sha);
    EXPECT_TRUE(posted[2].description.starts_with("Build #1 SUCCESS in ")) << posted[2].description;
    EXPECT_EQ(outcome_of(daemon, "follow-prompt"), "SUCCESS");
}

TEST_F(FollowBuilds, GitlabSawPendingRunningFailed) {
    jenkins.set_quiet_period(100ms);
    jenkins.set_build_duration(300ms);
    jenkins.set_next_results({"FAILURE"});
    Daemon daemon(options(config_for(jenkins, forge)));
    const auto answer = push_gitlab(daemon);
    ASSERT_EQ(answer.status, 202u) << answer.body;
    const auto delivery = text(json::parse(answer.body), {"delivery"});
    ASSERT_FALSE(delivery.empty()) << answer.body;
    ASSERT_TRUE(eventually([&] { return outcome_of(daemon, delivery) == "FAILURE"; }, k_deadline))
        << daemon.log();
    ASSERT_TRUE(forge.wait_for_statuses(3, k_deadline)) << daemon.log();
    const auto posted = statuses_for(forge, k_gitlab_sha);
    ASSERT_EQ(states(posted), (std::vector<std::string>{"pending", "running", "failed"}));
    EXPECT_EQ(posted[0].forge, "gitlab");
    EXPECT_EQ(posted[2].context, "hookrelay/branches");
    EXPECT_TRUE(posted[2].description.starts_with("Build #1 FAILURE in ")) << posted[2].description;
}

TEST_F(FollowBuilds, DeadTriggerTellsTheCommitItWasNotDelivered) {
    FakeJenkins empty{FakeJenkins::Options{}};  // no jobs: every trigger is a 404
    Daemon daemon(options(config_for(empty, forge)));
    ASSERT_EQ(push_github(daemon, "dead-1").status, 202u);
    ASSERT_TRUE(eventually([&] { return outcome_of(daemon, "dead-1") == "dead"; }, k_deadline));
    ASSERT_TRUE(forge.wait_for_statuses(1, k_deadline)) << daemon.log();
    const auto posted = statuses_for(forge, k_github_sha);
    ASSERT_EQ(posted.size(), 1u);
    EXPECT_EQ(posted[0].state, "error");
    EXPECT_TRUE(posted[0].description.starts_with("Not delivered: ")) << posted[0].description;
    EXPECT_NE(posted[0].description.find("404"), std::string::npos) << posted[0].description;
    const auto listed = cli(daemon, {"deliveries", "list", "--outcome", "dead"});
    EXPECT_NE(listed.out.find("dead-1"), std::string::npos) << listed.out;
}

TEST_F(FollowBuilds, ForgottenQueueItemIsFoundByItsQueueId) {
    // The item leaves the queue and is forgotten long before hookrelay first looks.
    jenkins.set_quiet_period(50ms);
    jenkins.set_left_item_ttl(100ms);
    Knobs knobs;
    knobs.follow_poll_initial = "1500ms";
    Daemon daemon(options(config_for(jenkins, forge, knobs)));
    ASSERT_EQ(push_github(daemon, "forgotten-1").status, 202u);
    ASSERT_TRUE(
        eventually([&] { return outcome_of(daemon, "forgotten-1") == "building"; }, k_deadline))
        << daemon.log();
    // It really was gone: the item answered 404 before hookrelay found the build.
    const auto items = jenkins.queue_items();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_TRUE(items[0].forgotten);
    jenkins.finish_builds();
    ASSERT_TRUE(
        eventually([&] { return outcome_of(daemon, "forgotten-1") == "SUCCESS"; }, k_deadline))
        << daemon.log();
}

TEST_F(FollowBuilds, MergedDeliveryNamesTheOneItJoinedAndSharesItsBuild) {
    // Queued until drained: the second identical trigger merges into the first's item (303).
    Daemon daemon(options(config_for(jenkins, forge)));
    ASSERT_EQ(push_github(daemon, "merge-1").status, 202u);
    ASSERT_TRUE(eventually([&] { return outcome_of(daemon, "merge-1") == "queued"; }, k_deadline));
    ASSERT_EQ(push_github(daemon, "merge-2").status, 202u);
    ASSERT_TRUE(eventually([&] { return outcome_of(daemon, "merge-2") == "queued"; }, k_deadline));
    const auto second = trigger_of(daemon, "merge-2");
    EXPECT_EQ(text(second, {"build", "merged"}), "true");
    EXPECT_EQ(text(second, {"build", "merged_with"}), "merge-1");
    EXPECT_EQ(text(second, {"build", "queue_id"}),
              text(trigger_of(daemon, "merge-1"), {"build", "queue_id"}));
    // Once polled, Jenkins' reason for the wait is shown.
    EXPECT_TRUE(eventually(
        [&] {
            return !text(trigger_of(daemon, "merge-2"), {"build", "why"}).empty();
        },
        k_deadline));

    jenkins.drain_queue();
    jenkins.finish_builds();
    ASSERT_TRUE(eventually(
        [&] {
            return outcome_of(daemon, "merge-1") == "SUCCESS" &&
                   outcome_of(daemon, "merge-2") == "SUCCESS";
        },
        k_deadline))
        << daemon.log();
    EXPECT_EQ(jenkins.runs().size(), 1u);
    EXPECT_EQ(text(trigger_of(daemon, "merge-2"), {"build", "number"}), "1");
    const auto shown = cli(daemon, {"deliveries", "show", "merge-2"});
    EXPECT_NE(shown.out.find("merged it into an item already queued by delivery merge-1"),
              std::string::npos)
        << shown.out;
}

TEST_F(FollowBuilds, CancelledQueueItemEndsCancelled) {
    Daemon daemon(options(config_for(jenkins, forge)));
    ASSERT_EQ(push_github(daemon, "cancel-1").status, 202u);
    ASSERT_TRUE(eventually([&] { return outcome_of(daemon, "cancel-1") == "queued"; }, k_deadline));
    ASSERT_TRUE(jenkins.cancel_item(1));
    ASSERT_TRUE(
        eventually([&] { return outcome_of(daemon, "cancel-1") == "CANCELLED"; }, k_deadline))
        << daemon.log();
    ASSERT_TRUE(eventually(
        [&] {
            const auto posted = statuses_for(forge, k_github_sha);
            return !posted.empty() && posted.back().state == "error";
        },
        k_deadline));
    EXPECT_EQ(statuses_for(forge, k_github_sha).back().description,
              "Cancelled in Jenkins' queue before it started");
}

TEST_F(FollowBuilds, RestartInTheMiddleOfFollowingStillReportsTheResult) {
    jenkins.set_quiet_period(100ms);
    TempDir state;
    Knobs knobs;
    knobs.state_dir = state.path() + "/var";
    {
        Daemon first(options(config_for(jenkins, forge, knobs)));
        ASSERT_EQ(push_github(first, "restart-1").status, 202u);
        ASSERT_TRUE(
            eventually([&] { return outcome_of(first, "restart-1") == "building"; }, k_deadline))
            << first.log();
        EXPECT_EQ(first.stop(SIGTERM), 0);
    }
    jenkins.finish_builds();  // while no hookrelay runs
    Daemon second(options(config_for(jenkins, forge, knobs)));
    ASSERT_TRUE(
        eventually([&] { return outcome_of(second, "restart-1") == "SUCCESS"; }, k_deadline))
        << second.log();
    ASSERT_TRUE(eventually(
        [&] {
            const auto posted = statuses_for(forge, k_github_sha);
            return !posted.empty() && posted.back().state == "success";
        },
        k_deadline))
        << second.log();
    EXPECT_EQ(jenkins.builds().size(), 1u);  // delivered once, not again after the restart
}

TEST_F(FollowBuilds, ForgeApiDownThenBackGetsTheFinalStatus) {
    jenkins.set_quiet_period(50ms);
    jenkins.set_build_duration(100ms);
    forge.set_down(true);
    Daemon daemon(options(config_for(jenkins, forge)));
    ASSERT_EQ(push_github(daemon, "forge-down-1").status, 202u);
    ASSERT_TRUE(
        eventually([&] { return outcome_of(daemon, "forge-down-1") == "SUCCESS"; }, k_deadline))
        << daemon.log();
    // The build is known; the forge has been told nothing and hookrelay keeps trying.
    ASSERT_TRUE(eventually(
        [&] {
            const auto t = trigger_of(daemon, "forge-down-1");
            return text(t, {"status", "up_to_date"}) == "false" &&
                   !text(t, {"status", "error"}).empty();
        },
        k_deadline));
    EXPECT_TRUE(forge.statuses().empty());
    forge.set_down(false);
    ASSERT_TRUE(eventually(
        [&] {
            const auto posted = statuses_for(forge, k_github_sha);
            return !posted.empty() && posted.back().state == "success";
        },
        k_deadline))
        << daemon.log();
    EXPECT_TRUE(eventually(
        [&] {
            return text(trigger_of(daemon, "forge-down-1"), {"status", "up_to_date"}) == "true";
        },
        k_deadline));
    // Only the newest status was posted once the forge was back: never a pending after success.
    const auto posted = statuses_for(forge, k_github_sha);
    EXPECT_EQ(posted.back().state, "success");
    EXPECT_EQ(std::count_if(posted.begin(), posted.end(),
                            [](const auto& s) { return s.state == "success"; }),
              1);
}

TEST_F(FollowBuilds, RefusedStatusTokenIsLoggedOnceAndDeliveriesGoOn) {
    jenkins.set_quiet_period(50ms);
    jenkins.set_build_duration(50ms);
    forge.set_token("another-token");  // hookrelay's token is refused (401)
    Daemon daemon(options(config_for(jenkins, forge)));
    ASSERT_EQ(push_github(daemon, "refused-1").status, 202u);
    ASSERT_TRUE(
        eventually([&] { return outcome_of(daemon, "refused-1") == "SUCCESS"; }, k_deadline))
        << daemon.log();
    ASSERT_TRUE(eventually(
        [&] {
            return admin(daemon, "/metrics").body.find("outcome=\"refused\"") != std::string::npos;
        },
        k_deadline));
    const auto log = daemon.log();
    const auto first = log.find("refuses hookrelay's commit statuses");
    ASSERT_NE(first, std::string::npos) << log;
    EXPECT_EQ(log.find("refuses hookrelay's commit statuses", first + 1), std::string::npos);
    EXPECT_EQ(log.find(k_status_token), std::string::npos);
    EXPECT_TRUE(forge.statuses().empty());
    // A refused status is not on its way: `show` does not say "yet".
    const auto shown = cli(daemon, {"deliveries", "show", "refused-1"});
    EXPECT_NE(shown.out.find(": none posted [refused: HTTP 401"), std::string::npos) << shown.out;
    EXPECT_EQ(shown.out.find("none posted yet"), std::string::npos) << shown.out;
}

// Each kind of refusal is said once: a token revoked after the forge called some statuses
// invalid is still said, naming the token, what it needs and the api_url posted to.
TEST_F(FollowBuilds, ARevokedTokenIsSaidAfterARefusalOfAnotherKind) {
    jenkins.set_quiet_period(50ms);
    jenkins.set_build_duration(50ms);
    forge.fail_next(3, 422, "", R"({"message":"Validation Failed"})");
    Daemon daemon(options(config_for(jenkins, forge)));
    ASSERT_EQ(push_github(daemon, "invalid-1").status, 202u);
    ASSERT_TRUE(eventually(
        [&] { return daemon.log().find("called the status invalid") != std::string::npos; },
        k_deadline))
        << daemon.log();
    forge.set_token("a-rotated-token");  // hookrelay's is refused from now on (401)
    ASSERT_EQ(push_github(daemon, "revoked-1").status, 202u);
    ASSERT_TRUE(
        eventually([&] { return daemon.log().find("HTTP 401") != std::string::npos; }, k_deadline))
        << daemon.log();
    const auto log = daemon.log();
    const auto invalid = log.find("called the status invalid");
    EXPECT_EQ(log.find("called the status invalid", invalid + 1), std::string::npos) << log;
    const auto revoked = log.find("Check sources.github.status.token");
    ASSERT_NE(revoked, std::string::npos) << log;
    const auto line = log.substr(revoked, log.find('\n', revoked) - revoked);
    EXPECT_NE(line.find("GitHub: repo:status"), std::string::npos) << line;
    auto api_url = forge.url();
    api_url.pop_back();  // as written, less its trailing '/'
    EXPECT_NE(line.find("api_url (" + api_url + ")"), std::string::npos) << line;
    EXPECT_EQ(log.find(k_status_token), std::string::npos);
}

TEST_F(FollowBuilds, GiteaAndBothBitbucketsAreToldWhatBecameOfTheirPushes) {
    jenkins.set_quiet_period(100ms);
    jenkins.set_build_duration(300ms);
    jenkins.add_job({"gordon", "hello-world", "main"}, {"GIT_COMMIT", "BRANCH"});
    jenkins.add_job({"cloudbeers", "temp", "master"}, {"GIT_COMMIT", "BRANCH"});
    // No job for the Data Center push: its trigger goes dead, and the commit is told so.
    Daemon daemon(options(other_forges_config(jenkins, forge)));

    auto r =
        push_signed(daemon, "/hooks/gitea", "gitea", "push-branch-update", "X-Gitea-Signature", "");
    ASSERT_EQ(r.status, 202u) << r.body;
    r = push_signed(daemon, "/hooks/bitbucket", "bitbucket-cloud", "repo_push-branch-update",
                    "X-Hub-Signature", "sha256=");
    ASSERT_EQ(r.status, 202u) << r.body;
    r = push_signed(daemon, "/hooks/bitbucket-dc", "bitbucket-server", "refs_changed-branch-update",
                    "X-Hub-Signature", "sha256=");
    ASSERT_EQ(r.status, 202u) << r.body;

    ASSERT_TRUE(eventually(
        [&] {
            return statuses_for(forge, k_gitea_sha).size() >= 3 &&
                   statuses_for(forge, k_cloud_sha).size() >= 3 &&
                   !statuses_for(forge, k_server_sha).empty();
        },
        k_deadline))
        << daemon.log();

    // Gitea: GitHub's states under /api/v1, its token scheme.
    const auto gitea = statuses_for(forge, k_gitea_sha);
    EXPECT_EQ(states(gitea), (std::vector<std::string>{"pending", "pending", "success"}));
    EXPECT_EQ(gitea[0].forge, "gitea");
    EXPECT_EQ(gitea[0].repository, "gordon/hello-world");
    EXPECT_EQ(gitea[0].context, "hookrelay/branches");
    EXPECT_EQ(gitea[0].header("Authorization"), std::string("token ") + k_status_token);
    EXPECT_EQ(gitea[1].description, "Build #1 running");
    EXPECT_EQ(gitea[2].target_url,
              "https://jenkins.example.com/job/gordon/job/hello-world/job/main/1/");

    // Bitbucket Cloud: one key for every post, its context over 40 characters hashed into one;
    // queued links to the commit (no build yet).
    const auto cloud = statuses_for(forge, k_cloud_sha);
    EXPECT_EQ(states(cloud), (std::vector<std::string>{"INPROGRESS", "INPROGRESS", "SUCCESSFUL"}));
    EXPECT_EQ(cloud[0].forge, "bitbucket-cloud");
    EXPECT_EQ(cloud[0].repository, "cloudbeers/temp");
    EXPECT_EQ(cloud[0].context, k_long_context);
    EXPECT_TRUE(cloud[0].key.starts_with("hookrelay-")) << cloud[0].key;
    EXPECT_EQ(cloud[1].key, cloud[0].key);
    EXPECT_EQ(cloud[2].key, cloud[0].key);
    EXPECT_EQ(cloud[0].header("Authorization"), std::string("Bearer ") + k_status_token);
    EXPECT_EQ(cloud[0].target_url,
              std::string("https://bitbucket.org/cloudbeers/temp/commits/") + k_cloud_sha);
    EXPECT_TRUE(cloud[0].description.starts_with("Queued in Jenkins ci")) << cloud[0].description;
    EXPECT_EQ(cloud[2].target_url,
              "https://jenkins.example.com/job/cloudbeers/job/temp/job/master/1/");

    // Bitbucket Data Center: not delivered, said as FAILED, linked to the commit's page under
    // the server's context path.
    const auto server = statuses_for(forge, k_server_sha);
    ASSERT_EQ(states(server), (std::vector<std::string>{"FAILED"}));
    EXPECT_EQ(server[0].forge, "bitbucket-server");
    EXPECT_EQ(server[0].repository, "DEV/deployment-automation");
    EXPECT_EQ(
        server[0].target_url,
        forge.url() + "bitbucket/projects/DEV/repos/deployment-automation/commits/" + k_server_sha);
    EXPECT_TRUE(server[0].description.starts_with("Not delivered: ")) << server[0].description;
    // Every post was accepted: none was refused for a missing field or an unknown state.
    for (const auto& p : forge.posts()) EXPECT_LT(p.status, 300) << p.target << ": " << p.answer;
    EXPECT_EQ(daemon.log().find(k_status_token), std::string::npos);
}

}  // namespace
}  // namespace hookrelay::test
