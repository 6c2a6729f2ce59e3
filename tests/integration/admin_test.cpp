// The admin listener and the CLI that calls it, against the real binary and the fake Jenkins:
// health, metrics, deliveries, replays, redelivery, reload (API, SIGHUP, symlink swap).
#include "fakes/fake_jenkins.hpp"
#include "store/factory.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <gtest/gtest.h>

#include <sqlite3.h>
#include <sys/resource.h>
#include <algorithm>
#include <boost/json.hpp>

#include <cctype>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <map>
#include <mutex>

namespace hookrelay::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* k_secret = "admin-test-secret-31c9";
constexpr const char* k_admin_token = "admin-test-token-8d2e";
constexpr std::chrono::seconds k_deadline{20};

std::string config_for(const FakeJenkins& jenkins, const std::string& rules) {
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
           jenkins.url() + R"("
    user: hookrelay
    api_token: "${env:JENKINS_TOKEN}"
    retry: {initial: 50ms, max_delay: 100ms, max_age: 1h}
)" + rules;
}

const char* k_branch_rule = R"(
rules:
  - name: branches
    when: {event: push}
    trigger:
      jenkins: ci
      job: "{{ repository.namespace }}/{{ repository.name }}/{{ branch }}"
      parameters: {GIT_COMMIT: "{{ commit }}"}
)";

const char* k_pr_rule_only = R"(
rules:
  - name: prs
    when: {event: pull_request}
    trigger: {jenkins: ci, job: "pr", parameters: {PR: "{{ pull_request.number }}"}}
)";

std::vector<std::pair<std::string, std::string>> env() {
    return {{"GH_SECRET", k_secret},
            {"JENKINS_TOKEN", "fake-api-token"},
            {"ADMIN_TOKEN", k_admin_token}};
}

Daemon::Options options(std::string config) {
    Daemon::Options o;
    o.config_yaml = std::move(config);
    o.env = env();
    return o;
}

Fixture push(const std::string& delivery, const std::string& branch = "main") {
    return github_push(delivery, branch);
}

HttpResult post_webhook(const Daemon& daemon, const Fixture& f) {
    Headers h = f.headers;
    h.emplace_back("X-Hub-Signature-256", github_signature(k_secret, f.body));
    return http_request(daemon.port(), "POST", "/hooks/github", h, f.body);
}

HttpResult admin(const Daemon& daemon, const std::string& method, const std::string& target,
                 const std::string& token = k_admin_token) {
    Headers h;
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    return http_request(daemon.admin_port(), method, target, h);
}

json::value body(const HttpResult& r) {
    return json::parse(r.body);
}

// Polls a delivery until its first trigger reaches `state`.
bool trigger_state_is(const Daemon& daemon, const std::string& delivery, const std::string& state) {
    return eventually(
        [&] {
            auto r = admin(daemon, "GET", "/api/v1/deliveries/" + delivery);
            if (r.status != 200) return false;
            const auto delivery = body(r);
            const auto& triggers = delivery.at("triggers").as_array();
            return !triggers.empty() && triggers.at(0).at("state") == state.c_str();
        },
        k_deadline);
}

// The id of a delivery's first trigger.
std::string first_trigger_id(const Daemon& daemon, const std::string& delivery) {
    const auto d = body(admin(daemon, "GET", "/api/v1/deliveries/" + delivery));
    return std::string(d.at("triggers").as_array().at(0).at("id").as_string());
}

class Admin : public ::testing::Test {
  protected:
    Admin() { jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT"}); }
    FakeJenkins jenkins{{}};
};

TEST_F(Admin, HealthAndReadinessNeedNoToken) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    EXPECT_EQ(admin(daemon, "GET", "/healthz", "").status, 200u);
    const auto ready = admin(daemon, "GET", "/readyz", "");
    EXPECT_EQ(ready.status, 200u);
    EXPECT_EQ(body(ready).at("status"), "ready");
}

TEST_F(Admin, EverythingElseNeedsTheBearerToken) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    for (const char* target : {"/metrics", "/api/v1/deliveries", "/api/v1/status"}) {
        EXPECT_EQ(admin(daemon, "GET", target, "").status, 401u) << target;
        EXPECT_EQ(admin(daemon, "GET", target, "wrong-token").status, 401u) << target;
    }
    EXPECT_EQ(admin(daemon, "POST", "/api/v1/reload", "").status, 401u);
    EXPECT_EQ(admin(daemon, "GET", "/api/v1/nothing-here").status, 404u);
    // The scheme's name is case-insensitive; the token is not.
    for (const char* scheme : {"bearer ", "BEARER "}) {
        const auto r = http_request(daemon.admin_port(), "GET", "/api/v1/status",
                                    {{"Authorization", std::string(scheme) + k_admin_token}});
        EXPECT_EQ(r.status, 200u) << scheme;
    }
    std::string shouted = k_admin_token;
    for (auto& c : shouted) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(admin(daemon, "GET", "/api/v1/status", shouted).status, 401u);
}

TEST_F(Admin, AdminApiIsOffWithoutAToken) {
    auto config = config_for(jenkins, k_pr_rule_only);
    config.replace(config.find(", token: \"${env:ADMIN_TOKEN}\""), 29, "");
    Daemon daemon(options(config));
    EXPECT_EQ(admin(daemon, "GET", "/api/v1/status").status, 403u);
    EXPECT_EQ(admin(daemon, "GET", "/healthz", "").status, 200u);
}

TEST_F(Admin, MetricsCountWhatHappened) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    ASSERT_EQ(post_webhook(daemon, push("m-1")).status, 202u);
    ASSERT_EQ(post_webhook(daemon, push("m-1")).status, 200u);  // duplicate
    Headers bad = push("m-2").headers;
    bad.emplace_back("X-Hub-Signature-256", "sha256=00");
    ASSERT_EQ(http_request(daemon.port(), "POST", "/hooks/github", bad, push("m-2").body).status,
              401u);
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline));
    ASSERT_TRUE(trigger_state_is(daemon, "m-1", "delivered"));
    const auto r = admin(daemon, "GET", "/metrics");
    ASSERT_EQ(r.status, 200u);
    const auto& text = r.body;
    EXPECT_NE(
        text.find(
            R"(hookrelay_webhooks_received_total{code="202",provider="github",source="github"} 1)"),
        std::string::npos)
        << text;
    EXPECT_NE(text.find(R"(hookrelay_duplicates_total{source="github"} 1)"), std::string::npos)
        << text;
    EXPECT_NE(text.find(R"(hookrelay_signature_failures_total{source="github"} 1)"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find(R"(hookrelay_triggers_delivered_total{jenkins="ci"} 1)"), std::string::npos)
        << text;
    EXPECT_NE(text.find("hookrelay_build_info{version="), std::string::npos);
    EXPECT_NE(text.find(R"(hookrelay_backlog{jenkins="ci"} 0)"), std::string::npos) << text;
    EXPECT_NE(text.find("hookrelay_store_commit_duration_seconds_count"), std::string::npos);
}

// A Jenkins entry a reload removes keeps its lane until the restart, and sends its open
// triggers: its backlog gauge follows them down to 0 instead of keeping the last count (an alert
// on it would fire until the restart).
TEST_F(Admin, BacklogGaugeOfAJenkinsAReloadRemovedFollowsItsLaneToZero) {
    jenkins.add_job({"app"});
    const char* k_old_rule = R"(
rules:
  - name: to-old
    when: {event: push}
    trigger: {jenkins: old, job: "app"}
)";
    const auto with_old = config_for(jenkins, "  old:\n    url: \"" + jenkins.url() +
                                                  "\"\n    user: hookrelay\n    api_token: "
                                                  "\"${env:JENKINS_TOKEN}\"\n    probe_initial: "
                                                  "50ms\n    probe_max: 200ms\n" +
                                                  k_old_rule);
    jenkins.set_restarting(true);
    Daemon daemon(options(with_old));
    ASSERT_EQ(post_webhook(daemon, push("old-1")).status, 202u);
    const auto backlog_of_old = [&] {
        const auto text = admin(daemon, "GET", "/metrics").body;
        const std::string series = R"(hookrelay_backlog{jenkins="old"} )";
        const auto at = text.find(series);
        return at == std::string::npos ? std::string("absent") : text.substr(at + series.size(), 1);
    };
    ASSERT_TRUE(eventually([&] { return backlog_of_old() == "1"; }, k_deadline)) << daemon.log();

    write_file(daemon.config_path(), config_for(jenkins, k_branch_rule));
    ASSERT_EQ(admin(daemon, "POST", "/api/v1/reload").status, 200u);
    jenkins.set_restarting(false);
    ASSERT_TRUE(trigger_state_is(daemon, "old-1", "delivered")) << daemon.log();
    EXPECT_TRUE(eventually([&] { return backlog_of_old() == "0"; }, k_deadline))
        << backlog_of_old();
}

TEST_F(Admin, DeliveriesListFiltersAndPages) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(post_webhook(daemon, push("l-" + std::to_string(i))).status, 202u);
    }
    auto first = admin(daemon, "GET", "/api/v1/deliveries?limit=2");
    ASSERT_EQ(first.status, 200u) << first.body;
    const auto page = body(first).as_object();
    ASSERT_EQ(page.at("deliveries").as_array().size(), 2u);
    EXPECT_EQ(page.at("deliveries").as_array().at(0).at("delivery_id"), "l-2");  // newest first
    const auto cursor = std::string(page.at("next_cursor").as_string());
    auto second = admin(daemon, "GET", "/api/v1/deliveries?limit=2&cursor=" + cursor);
    ASSERT_EQ(second.status, 200u);
    EXPECT_EQ(body(second).at("deliveries").as_array().size(), 1u);
    EXPECT_EQ(body(second).at("deliveries").as_array().at(0).at("delivery_id"), "l-0");

    EXPECT_EQ(body(admin(daemon, "GET", "/api/v1/deliveries?source=gitlab"))
                  .at("deliveries")
                  .as_array()
                  .size(),
              0u);
    EXPECT_EQ(admin(daemon, "GET", "/api/v1/deliveries?state=sleeping").status, 400u);
    EXPECT_EQ(admin(daemon, "GET", "/api/v1/deliveries?since=yesterday").status, 400u);
    EXPECT_EQ(admin(daemon, "GET", "/api/v1/deliveries?limit=0").status, 400u);
    EXPECT_EQ(admin(daemon, "GET", "/api/v1/deliveries?since=1h").status, 200u);
    EXPECT_EQ(admin(daemon, "GET", "/api/v1/deliveries/no-such-delivery").status, 404u);

    // By ref, paged as any listing: the page ends at its limit with a cursor below it.
    ASSERT_EQ(post_webhook(daemon, push("l-dev", "dev")).status, 202u);
    const auto by_ref = body(admin(daemon, "GET", "/api/v1/deliveries?ref=main&limit=2"));
    ASSERT_EQ(by_ref.at("deliveries").as_array().size(), 2u) << by_ref;
    EXPECT_EQ(by_ref.at("deliveries").at(0).at("delivery_id"), "l-2");
    const auto rest = body(admin(daemon, "GET",
                                 "/api/v1/deliveries?ref=main&limit=2&cursor=" +
                                     std::string(by_ref.at("next_cursor").as_string())));
    ASSERT_EQ(rest.at("deliveries").as_array().size(), 1u) << rest;
    EXPECT_EQ(rest.at("deliveries").at(0).at("delivery_id"), "l-0");
    EXPECT_FALSE(rest.as_object().contains("next_cursor")) << rest;
    // The newest, alone with its ref: no cursor to an empty page after it.
    const auto dev = body(admin(daemon, "GET", "/api/v1/deliveries?ref=refs/heads/dev&limit=1"));
    ASSERT_EQ(dev.at("deliveries").as_array().size(), 1u) << dev;
    EXPECT_EQ(dev.at("deliveries").at(0).at("delivery_id"), "l-dev");
    EXPECT_FALSE(dev.as_object().contains("next_cursor")) << dev;
}

TEST_F(Admin, DeliveryShowsEventAndEveryAttempt) {
    jenkins.fail_next(1, 500);
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    ASSERT_EQ(post_webhook(daemon, push("s-1")).status, 202u);
    ASSERT_TRUE(trigger_state_is(daemon, "s-1", "delivered")) << daemon.log();
    const auto d = body(admin(daemon, "GET", "/api/v1/deliveries/s-1"));
    EXPECT_EQ(d.at("event"), "push");
    EXPECT_EQ(d.at("normalized").at("repository").at("full_name"), "woodpecker-ci/woodpecker");
    const auto& t = d.at("triggers").as_array().at(0);
    EXPECT_EQ(t.at("job"), "woodpecker-ci/woodpecker/main");
    const auto& history = t.at("history").as_array();
    ASSERT_EQ(history.size(), 2u);
    EXPECT_EQ(history.at(0).at("http_status"), 500);
    EXPECT_EQ(history.at(1).at("http_status"), 201);
    EXPECT_NE(std::string(history.at(1).at("queue_url").as_string()).find("/queue/item/"),
              std::string::npos);
    EXPECT_EQ(d.at("headers").as_object().count("X-Hub-Signature-256"), 0u)
        << "secret header stored";
}

TEST_F(Admin, ReplayBringsDeadTriggersBackWithAFreshBudget) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    ASSERT_EQ(post_webhook(daemon, push("r-1", "missing")).status, 202u);  // no such job: 404
    ASSERT_EQ(post_webhook(daemon, push("r-2", "missing2")).status, 202u);
    ASSERT_EQ(post_webhook(daemon, push("r-3", "missing3")).status, 202u);
    ASSERT_TRUE(trigger_state_is(daemon, "r-1", "dead"));
    ASSERT_TRUE(trigger_state_is(daemon, "r-2", "dead"));
    ASSERT_TRUE(trigger_state_is(daemon, "r-3", "dead"));
    jenkins.add_job({"woodpecker-ci", "woodpecker", "missing"}, {"GIT_COMMIT"});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "missing2"}, {"GIT_COMMIT"});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "missing3"}, {"GIT_COMMIT"});

    const auto id = first_trigger_id(daemon, "r-1");
    const auto one = admin(daemon, "POST", "/api/v1/triggers/" + id + "/replay");
    ASSERT_EQ(one.status, 200u) << one.body;
    ASSERT_TRUE(trigger_state_is(daemon, "r-1", "delivered")) << daemon.log();
    const auto t =
        body(admin(daemon, "GET", "/api/v1/deliveries/r-1")).at("triggers").as_array().at(0);
    EXPECT_EQ(t.at("attempts"), 1);  // the budget started over

    const auto bulk = admin(daemon, "POST", "/api/v1/triggers/replay?state=dead&since=1h");
    ASSERT_EQ(bulk.status, 200u) << bulk.body;
    EXPECT_EQ(body(bulk).at("replayed").as_array().size(), 2u);
    ASSERT_TRUE(jenkins.wait_for_builds(3, k_deadline)) << daemon.log();

    EXPECT_EQ(admin(daemon, "POST", "/api/v1/triggers/no-such-trigger/replay").status, 404u);
    EXPECT_EQ(admin(daemon, "POST", "/api/v1/triggers/replay?state=bogus").status, 400u);
    EXPECT_EQ(admin(daemon, "GET", "/api/v1/triggers/replay").status, 405u);
}

// A trigger whose build request is on its way to Jenkins is left alone by a replay (it could
// build twice), one at a time or in bulk; once Jenkins has answered, it replays.
TEST_F(Admin, ATriggerBeingDeliveredIsNotReplayedUntilItsOutcomeIsIn) {
    jenkins.set_build_answer_delay(3s);
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    ASSERT_EQ(post_webhook(daemon, push("f-1")).status, 202u);
    ASSERT_TRUE(eventually([&] { return jenkins.in_flight() == 1; }, k_deadline)) << daemon.log();
    const auto id = first_trigger_id(daemon, "f-1");

    const auto one = admin(daemon, "POST", "/api/v1/triggers/" + id + "/replay");
    EXPECT_EQ(one.status, 409u) << one.body;
    EXPECT_NE(one.body.find("is being delivered right now"), std::string::npos) << one.body;
    const auto bulk = admin(daemon, "POST", "/api/v1/triggers/replay?state=pending");
    ASSERT_EQ(bulk.status, 200u) << bulk.body;
    EXPECT_TRUE(body(bulk).at("replayed").as_array().empty()) << bulk.body;
    EXPECT_EQ(body(bulk).at("in_flight"), (json::array{json::string(id)})) << bulk.body;
    jenkins.set_build_answer_delay(0ms);  // for the requests after the one held

    ASSERT_TRUE(trigger_state_is(daemon, "f-1", "delivered")) << daemon.log();
    const auto again = admin(daemon, "POST", "/api/v1/triggers/" + id + "/replay");
    EXPECT_EQ(again.status, 200u) << again.body;
    auto build_requests = [&] {
        const auto seen = jenkins.requests();
        return std::count_if(seen.begin(), seen.end(), [](const ReceivedRequest& r) {
            return r.endpoint == "build" || r.endpoint == "buildWithParameters";
        });
    };
    ASSERT_TRUE(eventually([&] { return build_requests() == 2; }, k_deadline)) << daemon.log();
    ASSERT_TRUE(trigger_state_is(daemon, "f-1", "delivered")) << daemon.log();
    EXPECT_EQ(build_requests(), 2);  // the first, and the replay after its outcome
}

TEST_F(Admin, FixTheRuleReloadAndRedeliver) {
    jenkins.add_job({"pr"}, {"PR"});
    Daemon daemon(options(config_for(jenkins, k_pr_rule_only)));
    const auto missed = post_webhook(daemon, push("fix-1"));
    ASSERT_EQ(missed.status, 200u);  // no rule for pushes yet
    EXPECT_EQ(body(missed).at("status"), "no_match");

    // A broken config is refused and the running one stays.
    write_file(daemon.config_path(), config_for(jenkins, "rules: [{name: x}]\n"));
    const auto rejected = admin(daemon, "POST", "/api/v1/reload");
    EXPECT_EQ(rejected.status, 422u);
    EXPECT_FALSE(body(rejected).at("errors").as_array().empty());
    EXPECT_EQ(post_webhook(daemon, push("fix-2")).status, 200u);

    // Fix the rule, reload, redeliver the delivery that was missed.
    write_file(daemon.config_path(), config_for(jenkins, k_branch_rule));
    ASSERT_EQ(admin(daemon, "POST", "/api/v1/reload").status, 200u);
    const auto again = admin(daemon, "POST", "/api/v1/redeliver?delivery=fix-1");
    ASSERT_EQ(again.status, 200u) << again.body;
    EXPECT_EQ(body(again).at("matched_rules").as_array(), json::array({"branches"}));
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    EXPECT_EQ(jenkins.builds().at(0).job,
              (std::vector<std::string>{"woodpecker-ci", "woodpecker", "main"}));
    EXPECT_EQ(admin(daemon, "POST", "/api/v1/redeliver?delivery=nope").status, 404u);
    EXPECT_EQ(admin(daemon, "POST", "/api/v1/redeliver").status, 400u);
}

// A redeliver the store answers only after server.store_timeout (here: another program holds the
// database's write lock meanwhile) may still be queued: the answer says so and how to look, since
// a second redeliver would queue the build twice. And it is queued, once the lock is gone.
TEST_F(Admin, ARedeliverTheStoreAnswersTooLateSaysItMayBeQueuedAllTheSame) {
    // Nothing else writes while the lock is held (no follow polls, no idle claims or heartbeats
    // inside the hour; new triggers wake the dispatcher themselves):
    // the redeliver's read of the delivery must not wait behind another write.
    auto config = config_for(jenkins, k_branch_rule) + "server: {store_timeout: 1s}\n";
    config.replace(config.find("dispatch: {poll_interval: 200ms}"), 32,
                   "dispatch: {poll_interval: 1h, claim_lease: 2h, claim_renew_interval: 1h}");
    config.replace(config.find("    retry: {"), 0, "    follow: none\n");
    Daemon daemon(options(config));
    ASSERT_EQ(post_webhook(daemon, push("late-1")).status, 202u);
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    ASSERT_TRUE(trigger_state_is(daemon, "late-1", "delivered"));

    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((daemon.dir().path() + "/var/hookrelay.db").c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    // The redeliver's read of the delivery may still queue behind the dispatcher's last store
    // call after the build (its claim, which waits for the lock too): then the read is what runs
    // out of time, nothing is queued ("the store did not answer"), and the lock is taken again
    // once that call is through. That claim, answered late, wakes the dispatcher to claim again
    // as soon as the lock is gone: taken again at once, the lock would hold that claim too, and
    // the next read behind it. So the store answers two reads in a row first (the second queued
    // after that claim). A few tries at most.
    const auto store_answers = [&] {
        return admin(daemon, "GET", "/api/v1/deliveries/late-1").status == 200u;
    };
    HttpResult late;
    for (int attempt = 0; attempt < 8; ++attempt) {
        ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
        late = admin(daemon, "POST", "/api/v1/redeliver?delivery=late-1");
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        if (late.body.find("the store did not answer\"") == std::string::npos) break;
        ASSERT_TRUE(eventually(store_answers, k_deadline)) << daemon.log();
        ASSERT_TRUE(eventually(store_answers, k_deadline)) << daemon.log();
    }
    sqlite3_close(db);

    EXPECT_EQ(late.status, 503u) << late.body;
    EXPECT_NE(late.body.find("may be queued all the same"), std::string::npos) << late.body;
    EXPECT_NE(late.body.find("hookrelay deliveries show late-1"), std::string::npos) << late.body;
    // The store took it once the lock was gone: the build runs again.
    EXPECT_TRUE(jenkins.wait_for_builds(2, k_deadline)) << daemon.log();
}

TEST_F(Admin, SighupReloadsASymlinkSwappedConfig) {
    jenkins.add_job({"pr"}, {"PR"});
    Daemon daemon(options(config_for(jenkins, k_pr_rule_only)));
    // Kubernetes mounts a ConfigMap as a symlink that is swapped atomically.
    namespace fs = std::filesystem;
    TempDir dir;
    const auto v1 = dir.write("v1.yaml", config_for(jenkins, k_pr_rule_only));
    const auto v2 = dir.write("v2.yaml", config_for(jenkins, k_branch_rule));
    fs::remove(daemon.config_path());
    fs::create_symlink(v1, daemon.config_path());
    daemon.signal(SIGHUP);
    fs::create_symlink(v2, dir.path() + "/next");
    fs::rename(dir.path() + "/next", daemon.config_path());
    daemon.signal(SIGHUP);
    int n = 0;
    ASSERT_TRUE(eventually(
        [&] { return post_webhook(daemon, push("hup-" + std::to_string(n++))).status == 202u; },
        k_deadline))
        << daemon.log();
}

TEST_F(Admin, StatusShowsEachJenkins) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    const auto r = admin(daemon, "GET", "/api/v1/status");
    ASSERT_EQ(r.status, 200u);
    const auto s = body(r);
    EXPECT_TRUE(s.at("ready").as_bool());
    EXPECT_EQ(s.at("jenkins").as_array().at(0).at("name"), "ci");
    // Nothing was sent to it yet: not "up" before anything answered.
    EXPECT_EQ(s.at("jenkins").as_array().at(0).at("state"), "unknown");

    ASSERT_EQ(post_webhook(daemon, push("status-1")).status, 202u);
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    EXPECT_TRUE(eventually([&] {
        return body(admin(daemon, "GET", "/api/v1/status")).at("jenkins").at(0).at("state") == "up";
    })) << daemon.log();
}

// --- the CLI ------------------------------------------------------------------------------------

class AdminCli : public Admin {
  protected:
    std::vector<std::pair<std::string, std::string>> cli_env() {
        return {{"HOOKRELAY_ADMIN_TOKEN", k_admin_token}};
    }
    std::string address(const Daemon& d) { return "127.0.0.1:" + std::to_string(d.admin_port()); }
};

// A rejected request is never stored, so `deliveries list` cannot show it: `status` says, per
// source, how many were turned away since start and why the last one was (a forge whose secret
// is not hookrelay's, or that posts to a wrong URL), without either secret.
TEST_F(AdminCli, StatusSaysWhyRequestsWereTurnedAway) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    const std::string wrong_secret = "not-the-secret-5f2a";
    const auto f = push("signed-wrong");
    Headers h = f.headers;
    h.emplace_back("X-Hub-Signature-256", github_signature(wrong_secret, f.body));
    ASSERT_EQ(http_request(daemon.port(), "POST", "/hooks/github", h, f.body).status, 401u);
    ASSERT_EQ(http_request(daemon.port(), "POST", "/hooks/github", h, f.body).status, 401u);
    // Someone else's unsigned request: its own entry, not the last word on the forge's.
    ASSERT_EQ(http_request(daemon.port(), "POST", "/hooks/github", f.headers, f.body).status, 401u);
    ASSERT_EQ(http_request(daemon.port(), "POST", "/hooks/gihtub", f.headers, f.body).status, 404u);
    ASSERT_EQ(post_webhook(daemon, push("signed-right")).status, 202u);

    const auto s = body(admin(daemon, "GET", "/api/v1/status"));
    const auto& rejections = s.at("rejections").as_array();
    ASSERT_EQ(rejections.size(), 3u) << s;
    std::map<std::string, json::object> by_reason;
    for (const auto& r : rejections) {
        const auto& o = r.as_object();
        EXPECT_EQ(o.at("last_client"), "127.0.0.1") << r;
        for (const std::string& secret : {std::string(k_secret), wrong_secret}) {
            EXPECT_EQ(json::serialize(r).find(secret), std::string::npos);
        }
        by_reason[std::string(o.at("source").as_string()) + " " +
                  std::string(o.at("last_reason").as_string())] = o;
    }
    const auto mismatch = by_reason.find("github signature or token does not match");
    ASSERT_NE(mismatch, by_reason.end()) << s;
    EXPECT_EQ(mismatch->second.at("status").to_number<int>(), 401);
    EXPECT_EQ(mismatch->second.at("count").to_number<int>(), 2);
    const auto missing = std::find_if(by_reason.begin(), by_reason.end(), [](const auto& e) {
        return e.first.starts_with("github ") && e.first.find("missing") != std::string::npos;
    });
    ASSERT_NE(missing, by_reason.end()) << s;
    EXPECT_EQ(missing->second.at("count").to_number<int>(), 1);
    const auto wrong_url = by_reason.find("none no webhook source at /hooks/gihtub");
    ASSERT_NE(wrong_url, by_reason.end()) << s;
    EXPECT_EQ(wrong_url->second.at("status").to_number<int>(), 404);

    auto status = run_hookrelay({"status", "--admin", address(daemon)}, cli_env());
    EXPECT_EQ(status.exit_code, 0) << status.err;
    EXPECT_NE(status.out.find("turned away since start"), std::string::npos) << status.out;
    EXPECT_NE(status.out.find("signature or token does not match"), std::string::npos)
        << status.out;
    EXPECT_NE(status.out.find("no webhook source at /hooks/gihtub"), std::string::npos)
        << status.out;
    for (const std::string& secret : {std::string(k_secret), wrong_secret}) {
        EXPECT_EQ(status.out.find(secret), std::string::npos);
    }

    // Past four reasons of one source and status, the one seen least recently makes room and is
    // counted on a shared line: the forge's wrong URL, posted again, is back on a line of its own.
    for (const char* path : {"/x1", "/x2", "/x3", "/x4", "/hooks/gihtub"}) {
        ASSERT_EQ(http_request(daemon.port(), "POST", path, f.headers, f.body).status, 404u);
    }
    std::map<std::string, json::object> none;
    const auto after = body(admin(daemon, "GET", "/api/v1/status"));
    for (const auto& r : after.at("rejections").as_array()) {
        if (r.at("source") == "none")
            none[std::string(r.at("last_reason").as_string())] = r.as_object();
    }
    ASSERT_EQ(none.size(), 5u);
    EXPECT_EQ(none.at("no webhook source at /hooks/gihtub").at("count").to_number<int>(), 1);
    EXPECT_EQ(none.count("no webhook source at /x1"), 0u);
    const auto other = none.find("(other reasons; the last) no webhook source at /x1");
    ASSERT_NE(other, none.end());
    EXPECT_EQ(other->second.at("count").to_number<int>(), 2);  // the first /hooks/gihtub, /x1
}

// After a restart without the Jenkins entry its open triggers were for, nothing sends them: the
// status lists that name with its backlog instead of leaving it out.
TEST_F(AdminCli, StatusListsTheBacklogOfAJenkinsNoLongerConfigured) {
    TempDir state;
    const char* k_gone_rule = R"(
rules:
  - name: to-gone
    when: {event: push}
    trigger: {jenkins: gone, job: "app"}
)";
    auto with_gone =
        config_for(jenkins, std::string("  gone: {url: \"http://127.0.0.1:9/\"}\n") + k_gone_rule);
    auto without = config_for(jenkins, k_branch_rule);
    const std::string relative = "state_dir: ./var";
    for (auto* config : {&with_gone, &without}) {
        config->replace(config->find(relative), relative.size(), "state_dir: " + state.path());
    }
    {
        Daemon first(options(with_gone));
        ASSERT_EQ(post_webhook(first, push("for-gone")).status, 202u);
        ASSERT_TRUE(trigger_state_is(first, "for-gone", "pending")) << first.log();
        ASSERT_EQ(first.stop(SIGTERM), 0) << first.log();
    }
    Daemon daemon(options(without));
    json::value gone;
    ASSERT_TRUE(eventually(
        [&] {
            const auto status = body(admin(daemon, "GET", "/api/v1/status"));
            for (const auto& j : status.at("jenkins").as_array()) {
                if (j.at("name") == "gone") gone = j;
            }
            return !gone.is_null();
        },
        k_deadline))
        << daemon.log();
    EXPECT_EQ(gone.at("state"), "not-configured");
    EXPECT_EQ(gone.at("backlog").to_number<int>(), 1);
    auto status = run_hookrelay({"status", "--admin", address(daemon)}, cli_env());
    EXPECT_EQ(status.exit_code, 0) << status.err;
    EXPECT_NE(status.out.find("not-configured"), std::string::npos) << status.out;
    EXPECT_NE(status.out.find("no jenkins entry of this name"), std::string::npos) << status.out;

    // A replay of it is taken, and says that nothing here sends it.
    auto replay = run_hookrelay(
        {"deliveries", "replay", first_trigger_id(daemon, "for-gone"), "--admin", address(daemon)},
        cli_env());
    EXPECT_EQ(replay.exit_code, 0) << replay.err;
    EXPECT_NE(replay.out.find("re-queued 1 trigger(s)"), std::string::npos) << replay.out;
    EXPECT_NE(replay.err.find("warning: open triggers for Jenkins this instance's configuration "
                              "has no entry for: gone (1 open); it sends none of them"),
              std::string::npos)
        << replay.err;
    auto bulk = run_hookrelay(
        {"deliveries", "replay", "--state", "pending", "--admin", address(daemon)}, cli_env());
    EXPECT_EQ(bulk.exit_code, 0) << bulk.err;
    EXPECT_NE(bulk.err.find("gone (1 open)"), std::string::npos) << bulk.err;
}

// Submits `count` deliveries of source `source` that no rule matched straight into the store in
// `state_dir` (the daemon stopped), many at once so that they group-commit.
void fill_unmatched(const std::string& state_dir, const std::string& source, std::size_t count) {
    Config config;
    config.state_dir = state_dir;
    config.store.prune_interval = std::chrono::milliseconds(0);
    store::OpenOptions open_options;
    open_options.version = "integration-test";
    std::string why;
    auto opened = store::open_store(config, open_options, &why);
    ASSERT_TRUE(opened) << why;
    auto store = *opened;
    std::mutex mutex;
    std::condition_variable changed;
    std::size_t outstanding = 0;
    std::size_t failed = 0;
    for (std::size_t i = 0; i < count; ++i) {
        {
            std::unique_lock lock(mutex);
            changed.wait(lock, [&] { return outstanding < 1024; });
            ++outstanding;
        }
        DeliveryRecord d;
        d.source = source;
        d.provider = Provider::github;
        d.delivery_id = "bulk-" + std::to_string(i);
        d.kind = EventKind::push;
        d.forge_event = "push";
        d.received_at = std::chrono::system_clock::now();
        d.body = "{}";
        store->submit(std::move(d), {}, [&](result<Receipt> r) {
            std::lock_guard lock(mutex);
            if (!r || r->duplicate) ++failed;
            --outstanding;
            changed.notify_all();
        });
    }
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, 4 * k_deadline, [&] { return outstanding == 0; }));
    EXPECT_EQ(failed, 0u);
    lock.unlock();
    store->close();
}

// A misspelt --source lists nothing, as a quiet source does: the list says which it is.
TEST_F(AdminCli, ListOfASourceTheConfigDoesNotHaveSaysSo) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    ASSERT_EQ(post_webhook(daemon, push("listed-1")).status, 202u);
    auto typo = run_hookrelay(
        {"deliveries", "list", "--source", "gihtub", "--admin", address(daemon)}, cli_env());
    EXPECT_EQ(typo.exit_code, 0) << typo.err;
    EXPECT_NE(typo.out.find("(no deliveries match)"), std::string::npos) << typo.out;
    EXPECT_NE(typo.err.find("no source of the running config is named 'gihtub' (its sources: "
                            "github"),
              std::string::npos)
        << typo.err;
    auto right = run_hookrelay(
        {"deliveries", "list", "--source", "github", "--admin", address(daemon)}, cli_env());
    EXPECT_NE(right.out.find("listed-1"), std::string::npos) << right.out;
    EXPECT_EQ(right.err.find("no source"), std::string::npos) << right.err;
}

// A pull request's ref is listed by its number, not cut short ("refs/pull/12/…"), and --ref finds
// it by what the list shows as well as by the ref.
TEST_F(AdminCli, ListShowsAPullRequestByItsNumberAndFindsItSo) {
    Daemon daemon(options(config_for(jenkins, k_pr_rule_only)));
    auto pr = load_fixture("github", "pull_request-opened");
    auto payload = json::parse(pr.body);
    payload.at("number") = 12;
    payload.at("pull_request").at("number") = 12;
    pr.body = json::serialize(payload);
    ASSERT_EQ(post_webhook(daemon, pr).status, 202u);
    ASSERT_EQ(post_webhook(daemon, push("beside-it")).status, 200u);
    const auto addr = address(daemon);
    auto list = run_hookrelay({"deliveries", "list", "--admin", addr}, cli_env());
    ASSERT_EQ(list.exit_code, 0) << list.err;
    const auto row = list.out.find("4f77f653-0e53-5873-b92e-4fbc160a52a6");
    ASSERT_NE(row, std::string::npos) << list.out;
    const auto line_start = list.out.rfind('\n', row) + 1;
    const auto line = list.out.substr(line_start, row - line_start);
    EXPECT_NE(line.find(" PR #12 "), std::string::npos) << list.out;
    EXPECT_EQ(line.find("refs/pull"), std::string::npos) << list.out;
    for (const std::string ref : {"PR #12", "refs/pull/12/head"}) {
        const auto found = run_hookrelay(
            {"deliveries", "list", "--admin", addr, "--ref", ref, "--json"}, cli_env());
        ASSERT_EQ(found.exit_code, 0) << found.err;
        const auto items = json::parse(found.out).at("deliveries").as_array();
        ASSERT_EQ(items.size(), 1u) << ref << ": " << found.out;
        EXPECT_EQ(items.at(0).at("delivery_id"), "4f77f653-0e53-5873-b92e-4fbc160a52a6");
    }
}

// A listing whose filter the store checks on every row it walks (here the source, over the
// deliveries no rule matched) reads a bounded stretch of deliveries per request, so that it never
// holds up accepting: under 25,000 newer unmatched deliveries of another source the API's first
// page comes back empty with a cursor, and the CLI follows the cursor to the delivery and prints
// it as one page.
TEST_F(AdminCli, ListFollowsTheCursorOfABoundedWalkToWhatItLooksFor) {
    TempDir state;
    auto config = config_for(jenkins, k_pr_rule_only);
    const std::string relative = "state_dir: ./var";
    config.replace(config.find(relative), relative.size(), "state_dir: " + state.path());
    {
        Daemon first(options(config));
        ASSERT_EQ(post_webhook(first, push("old-push")).status, 200u);  // no rule matched
        ASSERT_EQ(first.stop(SIGTERM), 0) << first.log();
    }
    fill_unmatched(state.path(), "elsewhere", 25'000);
    Daemon daemon(options(config));
    const auto page = admin(daemon, "GET", "/api/v1/deliveries?source=github&outcome=unmatched");
    ASSERT_EQ(page.status, 200u) << page.body;
    const auto first_page = body(page);
    EXPECT_TRUE(first_page.at("deliveries").as_array().empty()) << page.body;
    EXPECT_TRUE(first_page.as_object().contains("next_cursor")) << page.body;

    const auto addr = address(daemon);
    auto list = run_hookrelay(
        {"deliveries", "list", "--admin", addr, "--source", "github", "--outcome", "unmatched"},
        cli_env());
    EXPECT_EQ(list.exit_code, 0) << list.err;
    EXPECT_NE(list.out.find("old-push"), std::string::npos) << list.out;
    EXPECT_EQ(list.out.find("more:"), std::string::npos) << list.out;
    auto as_json = run_hookrelay({"deliveries", "list", "--admin", addr, "--source", "github",
                                  "--outcome", "unmatched", "--json"},
                                 cli_env());
    const auto listed = json::parse(as_json.out);
    ASSERT_EQ(listed.at("deliveries").as_array().size(), 1u) << as_json.out;
    EXPECT_EQ(listed.at("deliveries").at(0).at("delivery_id"), "old-push");
    EXPECT_FALSE(listed.as_object().contains("next_cursor"));

    // By repository or ref the daemon checks the store's pages itself, a bounded stretch per
    // request: under the 25,000 newer deliveries (no repository) the first page is empty with a
    // cursor, and the CLI follows it to the one push.
    const auto by_repo =
        admin(daemon, "GET", "/api/v1/deliveries?repository=Woodpecker-CI/woodpecker");
    ASSERT_EQ(by_repo.status, 200u) << by_repo.body;
    EXPECT_TRUE(body(by_repo).at("deliveries").as_array().empty()) << by_repo.body;
    EXPECT_TRUE(body(by_repo).as_object().contains("next_cursor")) << by_repo.body;
    for (const std::vector<std::string>& filter :
         {std::vector<std::string>{"--repo", "woodpecker-ci/woodpecker"},
          std::vector<std::string>{"--ref", "main"},
          std::vector<std::string>{"--ref", "refs/heads/main", "--repo",
                                   "woodpecker-ci/woodpecker"}}) {
        std::vector<std::string> args{"deliveries", "list", "--admin", addr, "--json"};
        args.insert(args.end(), filter.begin(), filter.end());
        const auto found = run_hookrelay(args, cli_env());
        ASSERT_EQ(found.exit_code, 0) << found.err;
        const auto pushes = json::parse(found.out).at("deliveries").as_array();
        ASSERT_EQ(pushes.size(), 1u) << found.out;
        EXPECT_EQ(pushes.at(0).at("delivery_id"), "old-push");
    }
    const auto elsewhere = run_hookrelay(
        {"deliveries", "list", "--admin", addr, "--ref", "release/2.4", "--json"}, cli_env());
    EXPECT_TRUE(json::parse(elsewhere.out).at("deliveries").as_array().empty()) << elsewhere.out;

    // A combination that matches near the cursor fills its page at once.
    auto newest = run_hookrelay({"deliveries", "list", "--admin", addr, "--source", "elsewhere",
                                 "--outcome", "unmatched", "--limit", "3", "--json"},
                                cli_env());
    const auto three = json::parse(newest.out);
    ASSERT_EQ(three.at("deliveries").as_array().size(), 3u) << newest.out;
    EXPECT_EQ(three.at("deliveries").at(0).at("delivery_id"), "bulk-24999");
    EXPECT_TRUE(three.as_object().contains("next_cursor"));
}

TEST_F(AdminCli, StatusListShowReplayRedeliver) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    ASSERT_EQ(post_webhook(daemon, push("cli-1", "gone")).status, 202u);
    ASSERT_TRUE(trigger_state_is(daemon, "cli-1", "dead"));
    const auto addr = address(daemon);

    auto status = run_hookrelay({"status", "--admin", addr}, cli_env());
    EXPECT_EQ(status.exit_code, 0) << status.err;
    EXPECT_NE(status.out.find("JENKINS"), std::string::npos) << status.out;
    EXPECT_NE(status.out.find("ci"), std::string::npos);

    auto list =
        run_hookrelay({"deliveries", "list", "--admin", addr, "--state", "dead"}, cli_env());
    EXPECT_EQ(list.exit_code, 0) << list.err;
    EXPECT_NE(list.out.find("cli-1"), std::string::npos) << list.out;

    auto json_list = run_hookrelay({"deliveries", "list", "--admin", addr, "--json"}, cli_env());
    EXPECT_EQ(json::parse(json_list.out).at("deliveries").as_array().size(), 1u);
    // The table names it #seq, as show takes it; a bare number is not a forge id here, and the
    // answer says how to write it.
    EXPECT_NE(list.out.find("\n#1 "), std::string::npos) << list.out;
    auto by_seq = run_hookrelay({"deliveries", "show", "#1", "--admin", addr}, cli_env());
    EXPECT_EQ(by_seq.exit_code, 0) << by_seq.err;
    EXPECT_NE(by_seq.out.find("delivery cli-1  #1  source github"), std::string::npos)
        << by_seq.out;
    auto bare = run_hookrelay({"deliveries", "show", "1", "--admin", addr}, cli_env());
    EXPECT_NE(bare.exit_code, 0);
    EXPECT_NE(bare.err.find("no delivery '1' (a SEQ from `deliveries list` is written #1, quoted "
                            "in a shell)"),
              std::string::npos)
        << bare.err;
    EXPECT_NE(bare.err.find("a request that was turned away was never stored"), std::string::npos);

    auto show = run_hookrelay({"deliveries", "show", "cli-1", "--admin", addr}, cli_env());
    EXPECT_EQ(show.exit_code, 0) << show.err;
    EXPECT_NE(show.out.find("state dead"), std::string::npos) << show.out;
    EXPECT_NE(show.out.find("event push (push)"), std::string::npos) << show.out;
    EXPECT_NE(show.out.find("repository woodpecker-ci/woodpecker"), std::string::npos) << show.out;
    EXPECT_NE(show.out.find("404"), std::string::npos) << show.out;

    // A dry run names what the replay would re-queue, and changes nothing.
    auto dry = run_hookrelay(
        {"deliveries", "replay", "--state", "dead", "--dry-run", "--admin", addr}, cli_env());
    EXPECT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_NE(dry.out.find("would re-queue 1 trigger(s) (dry run: nothing changed)\n  " +
                           first_trigger_id(daemon, "cli-1")),
              std::string::npos)
        << dry.out;
    EXPECT_TRUE(trigger_state_is(daemon, "cli-1", "dead"));
    auto dry_by_id = run_hookrelay(
        {"deliveries", "replay", first_trigger_id(daemon, "cli-1"), "--dry-run", "--admin", addr},
        cli_env());
    EXPECT_EQ(dry_by_id.exit_code, 2);
    EXPECT_NE(dry_by_id.err.find("--dry-run is for a bulk replay"), std::string::npos);

    jenkins.add_job({"woodpecker-ci", "woodpecker", "gone"}, {"GIT_COMMIT"});
    auto replay = run_hookrelay(
        {"deliveries", "replay", "--state", "dead", "--since", "1h", "--admin", addr}, cli_env());
    EXPECT_EQ(replay.exit_code, 0) << replay.err;
    EXPECT_NE(replay.out.find("re-queued 1 trigger(s)"), std::string::npos) << replay.out;
    ASSERT_TRUE(trigger_state_is(daemon, "cli-1", "delivered"));

    auto redeliver =
        run_hookrelay({"deliveries", "redeliver", "cli-1", "--admin", addr}, cli_env());
    EXPECT_EQ(redeliver.exit_code, 0) << redeliver.err;
    EXPECT_NE(redeliver.out.find("1 trigger(s) queued"), std::string::npos) << redeliver.out;
}

// Replay answers with trigger ids; show --trigger finds the delivery that holds one, marks it,
// and --body reads that delivery's body. GET /api/v1/triggers/{id} says which trigger was asked.
TEST_F(AdminCli, ShowTriggerFindsItsDeliveryFromTheIdReplayPrints) {
    // Two triggers per push: the one asked for is the one marked.
    jenkins.add_job({"also"});
    Daemon daemon(options(config_for(jenkins, std::string(k_branch_rule) + R"(  - name: also
    when: {event: push}
    trigger: {jenkins: ci, job: "also"}
)")));
    const auto payload = push("trig-1", "gone");
    ASSERT_EQ(post_webhook(daemon, payload).status, 202u);
    ASSERT_EQ(post_webhook(daemon, push("trig-2", "gone")).status, 202u);
    ASSERT_TRUE(trigger_state_is(daemon, "trig-1", "dead"));
    ASSERT_TRUE(trigger_state_is(daemon, "trig-2", "dead"));
    const auto addr = address(daemon);
    const auto id = first_trigger_id(daemon, "trig-1");

    jenkins.add_job({"woodpecker-ci", "woodpecker", "gone"}, {"GIT_COMMIT"});
    auto replay = run_hookrelay({"deliveries", "replay", id, "--admin", addr}, cli_env());
    EXPECT_EQ(replay.exit_code, 0) << replay.err;
    EXPECT_NE(replay.out.find("re-queued 1 trigger(s)\n  " + id + "\n"), std::string::npos)
        << replay.out;
    EXPECT_NE(replay.out.find("deliveries show --trigger ID"), std::string::npos) << replay.out;
    ASSERT_TRUE(trigger_state_is(daemon, "trig-1", "delivered"));

    auto show = run_hookrelay({"deliveries", "show", "--trigger", id, "--admin", addr}, cli_env());
    EXPECT_EQ(show.exit_code, 0) << show.err;
    EXPECT_NE(show.out.find("delivery trig-1  #1  source github"), std::string::npos) << show.out;
    EXPECT_NE(show.out.find("trigger " + id + "  rule "), std::string::npos) << show.out;
    const auto marked = show.out.find("(asked for)");
    ASSERT_NE(marked, std::string::npos) << show.out;
    EXPECT_EQ(show.out.find("(asked for)", marked + 1), std::string::npos) << show.out;
    const auto line = show.out.rfind('\n', marked);
    EXPECT_NE(show.out.substr(line, marked - line).find("trigger " + id), std::string::npos)
        << show.out;
    EXPECT_NE(show.out.find("rule also"), std::string::npos) << show.out;
    EXPECT_NE(show.out.find("state delivered"), std::string::npos) << show.out;
    EXPECT_NE(show.out.find("replayed"), std::string::npos) << show.out;

    const auto api = admin(daemon, "GET", "/api/v1/triggers/" + id);
    ASSERT_EQ(api.status, 200u) << api.body;
    const auto detail = body(api);
    EXPECT_EQ(detail.at("trigger").as_string(), id);
    EXPECT_EQ(detail.at("delivery_id").as_string(), "trig-1");

    auto raw = run_hookrelay({"deliveries", "show", "--trigger", id, "--body", "--admin", addr},
                             cli_env());
    EXPECT_EQ(raw.exit_code, 0) << raw.err;
    EXPECT_EQ(raw.out, payload.body);

    // A delivery id given where a trigger id goes, and the other way round: the answer says what
    // it is.
    auto swapped = run_hookrelay({"deliveries", "replay", "trig-2", "--admin", addr}, cli_env());
    EXPECT_EQ(swapped.exit_code, 1);
    EXPECT_NE(swapped.err.find("no trigger 'trig-2': that is a delivery's id; replay takes the ids "
                               "of its triggers, which hookrelay deliveries show trig-2 lists"),
              std::string::npos)
        << swapped.err;
    auto mixed = run_hookrelay({"deliveries", "show", id, "--admin", addr}, cli_env());
    EXPECT_EQ(mixed.exit_code, 1);
    EXPECT_NE(mixed.err.find("that is the id of a trigger of delivery 'trig-1' (hookrelay "
                             "deliveries show --trigger " +
                             id + ")"),
              std::string::npos)
        << mixed.err;

    const std::string unknown = "0190b2c4-0000-7000-8000-000000000000";
    auto missing =
        run_hookrelay({"deliveries", "show", "--trigger", unknown, "--admin", addr}, cli_env());
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("no trigger '" + unknown + "'"), std::string::npos) << missing.err;

    auto neither = run_hookrelay({"deliveries", "show", "--admin", addr}, cli_env());
    EXPECT_EQ(neither.exit_code, 2);
    EXPECT_NE(neither.err.find("--trigger"), std::string::npos) << neither.err;
    auto both = run_hookrelay({"deliveries", "show", "trig-1", "--trigger", id, "--admin", addr},
                              cli_env());
    EXPECT_NE(both.exit_code, 0);
    EXPECT_NE(both.err.find("excludes"), std::string::npos) << both.err;
    // Bytes no trigger id has: not found, without asking the store.
    EXPECT_EQ(admin(daemon, "GET", "/api/v1/triggers/%FF").status, 404u);
    EXPECT_EQ(admin(daemon, "POST", "/api/v1/triggers/%FF%00/replay").status, 404u);
    EXPECT_EQ(admin(daemon, "GET", "/readyz", "").status, 200u);
    EXPECT_EQ(admin(daemon, "POST", "/api/v1/triggers/" + id).status, 405u);
}

TEST_F(AdminCli, BulkReplayOfDeliveredTriggersNeedsYes) {
    jenkins.add_job({"woodpecker-ci", "woodpecker", "other"}, {"GIT_COMMIT"});
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    ASSERT_EQ(post_webhook(daemon, push("done-1")).status, 202u);
    ASSERT_EQ(post_webhook(daemon, push("done-2", "other")).status, 202u);
    ASSERT_TRUE(trigger_state_is(daemon, "done-1", "delivered"));
    ASSERT_TRUE(trigger_state_is(daemon, "done-2", "delivered"));
    const auto history_size = [&](const std::string& delivery) {
        const auto d = body(admin(daemon, "GET", "/api/v1/deliveries/" + delivery));
        return d.at("triggers").as_array().at(0).at("history").as_array().size();
    };
    const auto before = history_size("done-1");
    const auto addr = address(daemon);

    // No terminal to ask on (the test's stdin is /dev/null) and no --yes: refused, with the count.
    auto refused = run_hookrelay(
        {"deliveries", "replay", "--state", "delivered", "--since", "1h", "--admin", addr},
        cli_env());
    EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
    EXPECT_NE(refused.err.find("2 delivered trigger(s) match"), std::string::npos) << refused.err;
    EXPECT_NE(refused.err.find("--yes"), std::string::npos) << refused.err;
    EXPECT_EQ(history_size("done-1"), before) << "re-queued without confirmation";
    EXPECT_EQ(jenkins.builds().size(), 2u);

    auto confirmed = run_hookrelay(
        {"deliveries", "replay", "--state", "delivered", "--since", "1h", "--yes", "--admin", addr},
        cli_env());
    EXPECT_EQ(confirmed.exit_code, 0) << confirmed.err;
    EXPECT_NE(confirmed.out.find("re-queued 2 trigger(s)"), std::string::npos) << confirmed.out;
    EXPECT_EQ(confirmed.out.find("the limit"), std::string::npos) << confirmed.out;
    EXPECT_TRUE(jenkins.wait_for_builds(4, k_deadline)) << daemon.log();
    ASSERT_TRUE(trigger_state_is(daemon, "done-1", "delivered"));
    ASSERT_TRUE(trigger_state_is(daemon, "done-2", "delivered"));

    // A Jenkins the config does not have: refused, not "re-queued 0".
    auto typo = run_hookrelay({"deliveries", "replay", "--state", "delivered", "--since", "1h",
                               "--jenkins", "cj", "--yes", "--admin", addr},
                              cli_env());
    EXPECT_EQ(typo.exit_code, 1) << typo.out;
    EXPECT_NE(typo.err.find("no jenkins 'cj' in the config (known: ci)"), std::string::npos)
        << typo.err;

    // At the limit, more may match: the command says so instead of leaving the rest unnoticed.
    auto limited = run_hookrelay({"deliveries", "replay", "--state", "delivered", "--since", "1h",
                                  "--limit", "1", "--yes", "--admin", addr},
                                 cli_env());
    EXPECT_EQ(limited.exit_code, 0) << limited.err;
    EXPECT_NE(limited.out.find("re-queued 1 trigger(s)"), std::string::npos) << limited.out;
    EXPECT_NE(limited.out.find("the limit of 1 was reached, so more delivered triggers may match: "
                               "run the same command again"),
              std::string::npos)
        << limited.out;
}

TEST_F(AdminCli, WrongTokenFailsClearly) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    auto r =
        run_hookrelay({"status", "--admin", address(daemon)}, {{"HOOKRELAY_ADMIN_TOKEN", "nope"}});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("401"), std::string::npos) << r.err;
    // Says which token was sent, never what it is.
    EXPECT_NE(r.err.find("the token sent, from $HOOKRELAY_ADMIN_TOKEN, is not the running "
                         "daemon's admin.token"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find(k_admin_token), std::string::npos);
    EXPECT_EQ(r.err.find("nope"), std::string::npos);
}

TEST_F(AdminCli, ReadsAddressAndTokenFromTheConfig) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    // A config pointing at the running daemon's admin port.
    TempDir dir;
    auto config = config_for(jenkins, k_pr_rule_only);
    config.replace(config.find("listen: \"127.0.0.1:0\""), 21,
                   "listen: \"" + address(daemon) + "\"");
    const auto path = dir.write("c.yaml", config);
    auto r = run_hookrelay({"status", "--config", path, "--json"}, env());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(json::parse(r.out).at("ready").as_bool());
    auto unreachable = run_hookrelay({"status", "--admin", "127.0.0.1:1"}, cli_env());
    EXPECT_EQ(unreachable.exit_code, 2);
    EXPECT_NE(unreachable.err.find("connect"), std::string::npos);
}

// A config naming the running daemon's admin listener, as an installed one would.
std::string config_at(const FakeJenkins& jenkins, const std::string& admin_address) {
    auto config = config_for(jenkins, k_pr_rule_only);
    config.replace(config.find("listen: \"127.0.0.1:0\""), 21, "listen: \"" + admin_address + "\"");
    return config;
}

TEST_F(AdminCli, FindsTheDaemonThroughHookrelayConfigWithoutAnyOption) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    TempDir dir;
    const auto path = dir.write("c.yaml", config_at(jenkins, address(daemon)));
    auto with_env = env();
    with_env.emplace_back("HOOKRELAY_CONFIG", path);
    auto r = run_hookrelay({"status"}, with_env);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("JENKINS"), std::string::npos) << r.out;
}

TEST_F(AdminCli, NamesTheAdminTokenReferenceThatIsNotSet) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    TempDir dir;
    const auto path = dir.write("c.yaml", config_at(jenkins, address(daemon)));
    auto r = run_hookrelay({"status"}, {{"HOOKRELAY_CONFIG", path}});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("admin.token in " + path +
                         " is ${env:ADMIN_TOKEN}, which cannot be read here: environment "
                         "variable ADMIN_TOKEN is not set"),
              std::string::npos)
        << r.err;
}

TEST_F(AdminCli, HealthAsksTheProbesWithoutAToken) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    TempDir dir;
    const auto path = dir.write("c.yaml", config_at(jenkins, address(daemon)));
    auto live = run_hookrelay({"health", "--config", path});
    EXPECT_EQ(live.exit_code, 0) << live.err;
    auto ready = run_hookrelay({"health", "--ready", "--config", path});
    EXPECT_EQ(ready.exit_code, 0) << ready.err;
    EXPECT_EQ(run_hookrelay({"health", "--admin", "127.0.0.1:1"}).exit_code, 2);
}

// The file was edited since the daemon loaded it, and a mistake crept in outside `admin:`: the
// probes (the container's HEALTHCHECK, Kubernetes) and the admin commands still reach the running
// daemon, which keeps what it loaded; only `admin:` is read for them.
TEST_F(AdminCli, AMistakeOutsideTheAdminSectionDoesNotFailTheProbes) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    TempDir dir;
    const auto path = dir.write(
        "c.yaml", config_at(jenkins, address(daemon)) + "  - name: typo\n    trigerr: {}\n");
    ASSERT_NE(run_hookrelay({"check", "--config", path}, env()).exit_code, 0);
    auto ready = run_hookrelay({"health", "--ready", "--config", path});
    EXPECT_EQ(ready.exit_code, 0) << ready.err;
    auto status = run_hookrelay({"status", "--config", path}, env());
    EXPECT_EQ(status.exit_code, 0) << status.err;
    EXPECT_NE(status.out.find("JENKINS"), std::string::npos) << status.out;
}

}  // namespace
}  // namespace hookrelay::test

namespace hookrelay::test {
namespace {

// With the intake log (the default) and without it: once the database is full, webhooks are
// refused, not answered into a log that cannot be indexed.
void full_store_answers_503_and_turns_not_ready(const FakeJenkins& jenkins, bool intake_log) {
    auto config = config_for(jenkins, k_pr_rule_only);
    config += std::string("store: {max_size: 160KiB, intake_log: ") +
              (intake_log ? "true" : "false") + "}\n";
    Daemon daemon(options(config));
    // Bounded by count, not time: each webhook waits for a sync, which a disk busy with other
    // tests can make slow.
    HttpResult last;
    int n = 0;
    while (n < 200) {
        last = post_webhook(daemon, push("full-" + std::to_string(n++)));
        if (last.status == 503u) break;
        ASSERT_TRUE(last.status >= 200u && last.status < 300u)
            << last.status << " " << last.error << last.body;
    }
    ASSERT_EQ(last.status, 503u) << "the store never filled up: " << n << " deliveries";
    EXPECT_EQ(body(last).at("status"), "unavailable");
    EXPECT_EQ(admin(daemon, "GET", "/readyz", "").status, 503u);
    // An operator can still look: reads do not wait behind index work that cannot be done.
    EXPECT_EQ(admin(daemon, "GET", "/api/v1/deliveries?limit=5").status, 200u);
    const auto metrics = admin(daemon, "GET", "/metrics").body;
    // With the log, the webhook whose index work failed was answered: it waits in the log.
    const std::string unindexed_series = "\nhookrelay_store_unindexed ";
    const auto unindexed = metrics.find(unindexed_series);
    ASSERT_NE(unindexed, std::string::npos) << metrics;
    const double waiting = std::stod(metrics.substr(unindexed + unindexed_series.size()));
    if (intake_log) {
        EXPECT_GE(waiting, 1.0) << metrics;
    } else {
        EXPECT_EQ(waiting, 0.0) << metrics;
    }
    EXPECT_NE(metrics.find("hookrelay_store_failures_total 1"), std::string::npos) << metrics;
    // The failed commit is a store fault too (and so may be a heartbeat in the full file since).
    const std::string errors_series = "\nhookrelay_store_errors_total ";
    const auto errors = metrics.find(errors_series);
    ASSERT_NE(errors, std::string::npos) << metrics;
    EXPECT_GE(std::stod(metrics.substr(errors + errors_series.size())), 1.0) << metrics;
    EXPECT_NE(daemon.log().find("database or disk is full"), std::string::npos) << daemon.log();
    // SQLite's message alone does not say which: the log names the limit.
    EXPECT_NE(daemon.log().find("the database reached store.max_size, 163840 bytes"),
              std::string::npos)
        << daemon.log();
    // Not stored: `status` lists it with the requests turned away.
    const auto status = body(admin(daemon, "GET", "/api/v1/status"));
    const auto& rejections = status.at("rejections").as_array();
    ASSERT_EQ(rejections.size(), 1u) << status;
    EXPECT_EQ(rejections.at(0).at("status").to_number<int>(), 503);
    EXPECT_TRUE(rejections.at(0)
                    .at("last_reason")
                    .as_string()
                    .starts_with("the store did not accept the delivery"))
        << status;
}

TEST_F(Admin, FullStoreAnswers503AndTurnsNotReady) {
    full_store_answers_503_and_turns_not_ready(jenkins, true);
}

TEST_F(Admin, FullStoreWithoutTheIntakeLogAnswers503AndTurnsNotReady) {
    full_store_answers_503_and_turns_not_ready(jenkins, false);
}

// A file-size limit (systemd's LimitFSIZE=, a quota set with prlimit) that the intake log's next
// write passes: the write fails, and the daemon lives on to say so. The webhook is answered 503,
// /readyz turns 503 and the status names the cause, instead of the process ending with SIGXFSZ
// (and, under systemd, starting again into the same limit).
TEST_F(Admin, AFileSizeLimitIsAnswered503AndExplainedWithoutEndingTheDaemon) {
    Daemon daemon(options(config_for(jenkins, k_pr_rule_only)));
    const auto first = post_webhook(daemon, push("before-the-limit"));
    ASSERT_EQ(first.status, 200u) << first.error << first.body;  // stored, no rule matched
    ASSERT_TRUE(eventually(
        [&] { return admin(daemon, "GET", "/api/v1/deliveries/before-the-limit").status == 200u; },
        k_deadline));

    rlimit previous{};
    ASSERT_EQ(::prlimit(daemon.pid(), RLIMIT_FSIZE, nullptr, &previous), 0) << errno;
    rlimit limited = previous;
    limited.rlim_cur = 1;
    ASSERT_EQ(::prlimit(daemon.pid(), RLIMIT_FSIZE, &limited, nullptr), 0) << errno;
    const auto refused = post_webhook(daemon, push("past-the-limit"));
    ASSERT_EQ(::prlimit(daemon.pid(), RLIMIT_FSIZE, &previous, nullptr), 0) << errno;

    EXPECT_EQ(refused.status, 503u) << refused.error << refused.body;
    ASSERT_TRUE(daemon.running()) << daemon.log();
    EXPECT_EQ(admin(daemon, "GET", "/readyz", "").status, 503u);
    const auto status = admin(daemon, "GET", "/api/v1/status");
    ASSERT_EQ(status.status, 200u) << status.body;
    const std::string detail(body(status).at("store_detail").as_string());
    EXPECT_NE(detail.find("File too large"), std::string::npos) << detail;
    EXPECT_NE(detail.find("restart"), std::string::npos) << detail;
    // What was answered before stays readable.
    EXPECT_EQ(admin(daemon, "GET", "/api/v1/deliveries/before-the-limit").status, 200u);
    EXPECT_EQ(admin(daemon, "GET", "/api/v1/deliveries/past-the-limit").status, 404u);
    EXPECT_EQ(daemon.stop(SIGTERM), 0) << daemon.log();
}

// A config with errors: each error on a line of its own, as check prints them, and that the
// running configuration stays.
TEST_F(AdminCli, ReloadOfAConfigWithErrorsPrintsThemAndSaysTheRunningOneStays) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    write_file(daemon.config_path(), config_for(jenkins, "rules: [{name: x}]\n") + "bogus: 1\n");
    auto r = run_hookrelay({"reload", "--admin", address(daemon)}, cli_env());
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.err.find(daemon.config_path() + ":"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("unknown key 'bogus'"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("{\"status\""), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(" errors; the running configuration stays\n"), std::string::npos) << r.err;
    EXPECT_EQ(post_webhook(daemon, push("still-1")).status, 202u);
}

TEST_F(AdminCli, ReloadNamesTheSettingsThatWaitForARestart) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    write_file(daemon.config_path(),
               config_for(jenkins, k_branch_rule) + "server: {body_limit: 1MiB}\n");
    auto api = run_hookrelay({"reload", "--admin", address(daemon), "--json"}, cli_env());
    EXPECT_EQ(api.exit_code, 0) << api.err;
    EXPECT_EQ(json::parse(api.out).at("restart_needed"), json::array{"server.body_limit"})
        << api.out;
    EXPECT_NE(daemon.log().find("server.body_limit"), std::string::npos) << daemon.log();

    write_file(daemon.config_path(), config_for(jenkins, k_branch_rule) +
                                         "server: {body_limit: 1MiB, max_connections: 100}\n");
    auto table = run_hookrelay({"reload", "--admin", address(daemon)}, cli_env());
    EXPECT_EQ(table.exit_code, 0) << table.err;
    // Compared with what the daemon started with: the body limit still waits too.
    EXPECT_NE(table.out.find("these changes take effect only after a restart: "
                             "server.body_limit, server.max_connections\n"),
              std::string::npos)
        << table.out;

    // Back to the start's configuration: nothing waits.
    write_file(daemon.config_path(), config_for(jenkins, k_branch_rule));
    auto back = run_hookrelay({"reload", "--admin", address(daemon), "--json"}, cli_env());
    EXPECT_EQ(back.exit_code, 0) << back.err;
    EXPECT_FALSE(json::parse(back.out).as_object().contains("restart_needed")) << back.out;
}

// The listener took body_limit at start: until the restart a reload's lower limit does not turn
// away what the listener reads whole (nor would a higher one let in more than it reads).
TEST_F(AdminCli, ReloadKeepsTheBodyLimitUntilARestart) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    const auto before = push("limit-1");
    ASSERT_GT(before.body.size(), 4096u);
    // (parse_memory_limit is taken at once: given, so that its default, 4 × body_limit, does
    // not shrink with it.)
    write_file(daemon.config_path(), config_for(jenkins, k_branch_rule) +
                                         "server: {body_limit: 4KiB, parse_memory_limit: 1MiB}\n");
    auto api = run_hookrelay({"reload", "--admin", address(daemon), "--json"}, cli_env());
    EXPECT_EQ(api.exit_code, 0) << api.err;
    EXPECT_EQ(json::parse(api.out).at("restart_needed"), json::array{"server.body_limit"})
        << api.out;
    EXPECT_EQ(post_webhook(daemon, push("limit-2")).status, 202u) << daemon.log();
}

TEST_F(AdminCli, ReloadSaysTheStoresIntakeLogWaitsForARestart) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    write_file(daemon.config_path(),
               config_for(jenkins, k_branch_rule) + "store: {intake_log: false}\n");
    auto api = run_hookrelay({"reload", "--admin", address(daemon), "--json"}, cli_env());
    EXPECT_EQ(api.exit_code, 0) << api.err;
    EXPECT_EQ(json::parse(api.out).at("restart_needed"), json::array{"store.*"}) << api.out;
}

// The store's thread gets its priority at start: a reload that adds a coalescing rule (whose
// deliveries are answered after that thread's commit) says it waits for a restart, and so does
// one that takes the rule away again; a reload that changes neither says nothing of it.
TEST_F(AdminCli, ReloadSaysTheStoresThreadKeepsItsPriorityUntilARestart) {
    const std::string coalescing = std::string(k_branch_rule) + R"(  - name: develop
    when: {event: push, branch: develop}
    coalesce: "{{ repository.name }}/{{ branch }}"
    trigger: {jenkins: ci, job: "dev"}
)";
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    write_file(daemon.config_path(), config_for(jenkins, coalescing));
    auto added = run_hookrelay({"reload", "--admin", address(daemon), "--json"}, cli_env());
    EXPECT_EQ(added.exit_code, 0) << added.err;
    EXPECT_EQ(json::parse(added.out).at("restart_needed"),
              json::array{"hookrelay-store's priority"})
        << added.out;
    EXPECT_NE(daemon.log().find("reload: rule 'develop' coalesces: such webhooks are answered "
                                "after hookrelay-store's commit, and that thread runs below the "
                                "network threads until a restart"),
              std::string::npos)
        << daemon.log();

    // Back to the start's configuration: the thread's priority fits it again.
    write_file(daemon.config_path(), config_for(jenkins, k_branch_rule));
    auto back = run_hookrelay({"reload", "--admin", address(daemon), "--json"}, cli_env());
    EXPECT_EQ(back.exit_code, 0) << back.err;
    EXPECT_FALSE(json::parse(back.out).as_object().contains("restart_needed")) << back.out;

    Daemon waiting(options(config_for(jenkins, coalescing)));
    write_file(waiting.config_path(), config_for(jenkins, k_branch_rule));
    auto removed = run_hookrelay({"reload", "--admin", address(waiting)}, cli_env());
    EXPECT_EQ(removed.exit_code, 0) << removed.err;
    EXPECT_NE(removed.out.find("these changes take effect only after a restart: "
                               "hookrelay-store's priority\n(the new rules and sources apply "
                               "already; only the store thread's priority waits"),
              std::string::npos)
        << removed.out;
    EXPECT_NE(waiting.log().find("reload: every webhook can now be answered from the intake "
                                 "log: hookrelay-store runs at the network threads' priority "
                                 "until a restart"),
              std::string::npos)
        << waiting.log();
}

// log.level and server.shutdown_grace are the running configuration's: a reload changes them at
// once (log.format waits for a restart, and says so).
TEST_F(AdminCli, ReloadTakesTheLogLevelAndTheShutdownGraceAtOnce) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));  // log: {level: debug}
    std::string quiet = config_for(jenkins, k_branch_rule);
    const std::string level = "log: {level: debug}";
    // `text` where the daemon's stderr is a file: `auto` (the default) means `json` there.
    quiet.replace(quiet.find(level), level.size(), "log: {level: warn, format: text}");
    write_file(daemon.config_path(), quiet + "server: {shutdown_grace: 1500ms}\n");
    auto warn = run_hookrelay({"reload", "--admin", address(daemon), "--json"}, cli_env());
    EXPECT_EQ(warn.exit_code, 0) << warn.err;
    EXPECT_EQ(json::parse(warn.out).at("restart_needed"), json::array{"log.format"}) << warn.out;
    // Its own info line was not written: the new level took over first.
    EXPECT_EQ(daemon.log().find("configuration reloaded from"), std::string::npos) << daemon.log();

    write_file(daemon.config_path(),
               config_for(jenkins, k_branch_rule) + "server: {shutdown_grace: 1500ms}\n");
    auto info = run_hookrelay({"reload", "--admin", address(daemon), "--json"}, cli_env());
    EXPECT_EQ(info.exit_code, 0) << info.err;
    EXPECT_NE(daemon.log().find("configuration reloaded from"), std::string::npos) << daemon.log();

    ASSERT_EQ(daemon.stop(SIGTERM), 0);
    EXPECT_NE(daemon.log().find("finishing 0 open connection(s) within 1500 ms"), std::string::npos)
        << daemon.log();
}

TEST_F(AdminCli, ReloadCommand) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    auto ok = run_hookrelay({"reload", "--admin", address(daemon)}, cli_env());
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_NE(ok.out.find("reloaded"), std::string::npos);
    write_file(daemon.config_path(), "sources: {}\n");
    auto bad = run_hookrelay({"reload", "--admin", address(daemon)}, cli_env());
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("hookrelay: reload refused: "), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace hookrelay::test

// --- deliveries show: rule reasons, --body/--headers for explain, parameters; redeliver
// --dry-run ---------------------------------------------------------------------------------------

namespace hookrelay::test {
namespace {

// Neither rule matches the push fixture (a push to main).
const char* k_rules_missing_main = R"(
rules:
  - name: prs
    when: {event: pull_request}
    trigger: {jenkins: ci, job: "pr", parameters: {PR: "{{ pull_request.number }}"}}
  - name: releases
    when: {event: push, branch: "release/*"}
    trigger: {jenkins: ci, job: "release"}
)";

// The commit the push fixture pushed ("after").
std::string fixture_commit() {
    return std::string(json::parse(push("x").body).at("after").as_string());
}

// After a rule fix and a redeliver the reasons stay as the forge was answered; show says which of
// those rules has a trigger since, rather than print a reason next to the trigger it contradicts.
TEST_F(AdminCli, AfterARedeliverShowSaysWhichRuleQueuedATriggerSince) {
    Daemon daemon(options(config_for(jenkins, k_rules_missing_main)));
    ASSERT_EQ(post_webhook(daemon, push("why-2")).status, 200u);
    std::string fixed = k_rules_missing_main;
    const std::string narrow = R"(branch: "release/*")";
    fixed.replace(fixed.find(narrow), narrow.size(), R"(branch: "*")");
    // And a rule that matches but cannot render its job for a push: the redeliver says why it
    // queued nothing.
    fixed += R"(  - name: broken
    when: {event: [push, pull_request]}
    trigger: {jenkins: ci, job: "pr-{{ pull_request.number }}"}
)";
    write_file(daemon.config_path(), config_for(jenkins, fixed));
    ASSERT_EQ(admin(daemon, "POST", "/api/v1/reload").status, 200u);
    auto again =
        run_hookrelay({"deliveries", "redeliver", "why-2", "--admin", address(daemon)}, cli_env());
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_NE(again.out.find("1 trigger(s) queued"), std::string::npos) << again.out;
    EXPECT_NE(again.out.find("rule broken matched, but its trigger could not be rendered: "),
              std::string::npos)
        << again.out;

    auto show =
        run_hookrelay({"deliveries", "show", "why-2", "--admin", address(daemon)}, cli_env());
    EXPECT_EQ(show.exit_code, 0) << show.err;
    EXPECT_NE(show.out.find("rules that queued nothing when it was received:\n"), std::string::npos)
        << show.out;
    EXPECT_NE(show.out.find("    rule releases: branch: 'main' matches none of [release/*] (it "
                            "has a trigger since: above)\n"),
              std::string::npos)
        << show.out;
    EXPECT_NE(show.out.find("    rule prs: event: 'push' matches none of [pull_request]\n"),
              std::string::npos)
        << show.out;
}

// Fixing one rule and redelivering with --rule queues that rule's trigger only: the rules that
// built the delivery when it came do not build it again.
TEST_F(AdminCli, RedeliverOfOneRuleLeavesTheOthersBuildsAlone) {
    jenkins.add_job({"every-push"});
    jenkins.add_job({"release"});
    std::string rules = k_rules_missing_main;
    rules += R"(  - name: every-push
    when: {event: push}
    trigger: {jenkins: ci, job: "every-push"}
)";
    Daemon daemon(options(config_for(jenkins, rules)));
    ASSERT_EQ(post_webhook(daemon, push("why-3")).status, 202u);
    std::string fixed = rules;
    const std::string narrow = R"(branch: "release/*")";
    fixed.replace(fixed.find(narrow), narrow.size(), R"(branch: "*")");
    write_file(daemon.config_path(), config_for(jenkins, fixed));
    ASSERT_EQ(admin(daemon, "POST", "/api/v1/reload").status, 200u);

    auto dry = run_hookrelay({"deliveries", "redeliver", "why-3", "--rule", "releases", "--dry-run",
                              "--admin", address(daemon)},
                             cli_env());
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_NE(dry.out.find("would queue 1 trigger(s)"), std::string::npos) << dry.out;
    EXPECT_NE(dry.out.find("  only rule releases: 1 trigger(s) of other rules left out\n"),
              std::string::npos)
        << dry.out;

    auto again = run_hookrelay(
        {"deliveries", "redeliver", "why-3", "--rule", "releases", "--admin", address(daemon)},
        cli_env());
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_NE(again.out.find("1 trigger(s) queued"), std::string::npos) << again.out;
    EXPECT_NE(again.out.find("rule releases  → ci release"), std::string::npos) << again.out;
    EXPECT_EQ(again.out.find("every-push  →"), std::string::npos) << again.out;

    auto unknown = run_hookrelay(
        {"deliveries", "redeliver", "why-3", "--rule", "relases", "--admin", address(daemon)},
        cli_env());
    EXPECT_NE(unknown.exit_code, 0);
    EXPECT_NE(unknown.err.find("no rule named 'relases' in the running config of instance "),
              std::string::npos)
        << unknown.err;
    EXPECT_NE(unknown.err.find(" (its rules: prs, releases, every-push)"), std::string::npos)
        << unknown.err;

    // What Jenkins received: the first push's every-push build, then releases' only.
    ASSERT_TRUE(eventually([&] { return jenkins.builds().size() >= 2; }, 10s));
    const auto builds = jenkins.builds();
    ASSERT_EQ(builds.size(), 2u);
    EXPECT_EQ(builds[0].job, (std::vector<std::string>{"every-push"}));
    EXPECT_EQ(builds[1].job, (std::vector<std::string>{"release"}));
    EXPECT_NE(daemon.log().find("redelivered by admin: 1 trigger(s) (rule releases only, 1 of "
                                "other rules left out)"),
              std::string::npos)
        << daemon.log();

    // The API takes the rule in a JSON body too.
    Headers h{{"Authorization", std::string("Bearer ") + k_admin_token},
              {"Content-Type", "application/json"}};
    const auto by_body = http_request(daemon.admin_port(), "POST", "/api/v1/redeliver", h,
                                      R"({"delivery":"why-3","rule":"releases"})");
    ASSERT_EQ(by_body.status, 200u) << by_body.body;
    EXPECT_EQ(body(by_body).at("left_out").as_int64(), 1) << by_body.body;
}

// A trigger of a held Jenkins is pending, with no attempt of its own to show why: show says it
// waits for its Jenkins, and why that is held.
TEST_F(AdminCli, ShowSaysATriggerWaitsForItsHeldJenkins) {
    jenkins.set_restarting(true);  // 503 to everything
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    ASSERT_EQ(post_webhook(daemon, push("held-1")).status, 202u);
    const auto shown = [&] {
        return run_hookrelay({"deliveries", "show", "held-1", "--admin", address(daemon)},
                             cli_env())
            .out;
    };
    ASSERT_TRUE(eventually(
        [&] { return shown().find("    held: jenkins ci is held (") != std::string::npos; },
        k_deadline))
        << shown() << daemon.log();
    EXPECT_NE(shown().find("HTTP 503"), std::string::npos) << shown();

    jenkins.set_restarting(false);
    ASSERT_TRUE(trigger_state_is(daemon, "held-1", "delivered")) << daemon.log();
    EXPECT_EQ(shown().find("held:"), std::string::npos) << shown();
}

TEST_F(AdminCli, ShowSaysWhyEachRuleQueuedNothing) {
    Daemon daemon(options(config_for(jenkins, k_rules_missing_main)));
    const auto answer = post_webhook(daemon, push("why-1"));
    ASSERT_EQ(answer.status, 200u) << answer.body;
    const auto skipped = body(answer).at("skipped").as_array();
    ASSERT_EQ(skipped.size(), 2u) << answer.body;

    // The API keeps what the forge was told.
    const auto detail = body(admin(daemon, "GET", "/api/v1/deliveries/why-1"));
    EXPECT_EQ(detail.at("skipped").as_array(), skipped) << detail;

    auto show =
        run_hookrelay({"deliveries", "show", "why-1", "--admin", address(daemon)}, cli_env());
    EXPECT_EQ(show.exit_code, 0) << show.err;
    EXPECT_NE(show.out.find("no triggers: no rule matched\n"), std::string::npos) << show.out;
    EXPECT_NE(show.out.find("    rule prs: event: 'push' matches none of [pull_request]\n"),
              std::string::npos)
        << show.out;
    EXPECT_NE(show.out.find("    rule releases: branch: 'main' matches none of [release/*]\n"),
              std::string::npos)
        << show.out;
    for (const auto& s : skipped) {
        EXPECT_NE(show.out.find("    rule " + std::string(s.at("rule").as_string()) + ": " +
                                std::string(s.at("reason").as_string()) + "\n"),
                  std::string::npos)
            << show.out;
    }
}

// With many rules the answer lists the first 50 that queued nothing and counts the others (it went
// back to the forge with every delivery); the store keeps every reason, packed, for the API and
// `deliveries show`.
TEST_F(AdminCli, WithManyRulesTheAnswerListsFiftyAndShowListsEveryReason) {
    std::string rules = "\nrules:\n";
    for (int i = 0; i < 300; ++i) {
        const auto n = std::to_string(i);
        rules += "  - name: svc-" + n + "\n    when: {event: push, repository: org/svc-" + n +
                 "}\n    trigger: {jenkins: ci, job: \"svc-" + n + "\"}\n";
    }
    Daemon daemon(options(config_for(jenkins, rules)));
    const auto answer = post_webhook(daemon, push("many-1"));
    ASSERT_EQ(answer.status, 200u) << answer.body.substr(0, 300);
    const auto a = body(answer);
    const auto& skipped = a.at("skipped").as_array();
    ASSERT_EQ(skipped.size(), 50u);
    EXPECT_EQ(skipped.at(49).at("rule"), "svc-49");
    EXPECT_EQ(a.at("skipped_not_listed"), 250);
    EXPECT_NE(std::string(a.at("hint").as_string()).find("hookrelay deliveries show many-1"),
              std::string::npos)
        << a;

    const auto detail = body(admin(daemon, "GET", "/api/v1/deliveries/many-1"));
    const auto& stored = detail.at("skipped").as_array();
    ASSERT_EQ(stored.size(), 300u) << detail.at("skipped");
    for (std::size_t i = 0; i < skipped.size(); ++i) EXPECT_EQ(stored.at(i), skipped.at(i));
    EXPECT_EQ(stored.at(299).at("rule"), "svc-299");
    const std::string_view last = stored.at(299).at("reason").as_string();
    EXPECT_TRUE(last.ends_with("matches none of [org/svc-299]")) << last;
    // The store writes their shared beginning once ("repository: '…' matches none of "); every
    // reason reads back whole.
    const std::string_view first = stored.at(0).at("reason").as_string();
    const auto head = std::string(first.substr(0, first.find('[')));
    EXPECT_TRUE(head.starts_with("repository: '") && head.ends_with("' matches none of ")) << head;
    for (std::size_t i = 0; i < stored.size(); ++i) {
        EXPECT_EQ(std::string_view(stored.at(i).at("reason").as_string()),
                  head + "[org/svc-" + std::to_string(i) + "]");
    }

    auto show =
        run_hookrelay({"deliveries", "show", "many-1", "--admin", address(daemon)}, cli_env());
    EXPECT_EQ(show.exit_code, 0) << show.err;
    EXPECT_NE(show.out.find("    rule svc-299: repository: "), std::string::npos) << show.out;
}

TEST_F(AdminCli, ShowBodyAndHeadersFeedExplainToTheSameDecision) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    const auto sent = push("exp-1");
    ASSERT_EQ(post_webhook(daemon, sent).status, 202u);
    const auto addr = address(daemon);

    auto stored_body =
        run_hookrelay({"deliveries", "show", "exp-1", "--body", "--admin", addr}, cli_env());
    EXPECT_EQ(stored_body.exit_code, 0) << stored_body.err;
    EXPECT_TRUE(stored_body.out == sent.body) << "not the bytes received";

    auto stored_headers =
        run_hookrelay({"deliveries", "show", "exp-1", "--headers", "--admin", addr}, cli_env());
    EXPECT_EQ(stored_headers.exit_code, 0) << stored_headers.err;
    EXPECT_NE(stored_headers.out.find("X-GitHub-Event: push\n"), std::string::npos)
        << stored_headers.out;
    EXPECT_NE(stored_headers.out.find("X-GitHub-Delivery: exp-1\n"), std::string::npos)
        << stored_headers.out;
    // The signature was sent, and is not stored, so not shown.
    const auto signature = github_signature(k_secret, sent.body);
    EXPECT_EQ(stored_headers.out.find("X-Hub-Signature-256"), std::string::npos)
        << stored_headers.out;
    EXPECT_EQ(stored_headers.out.find(signature.substr(7)), std::string::npos);

    // explain on what show printed decides as explain on what the forge sent.
    TempDir dir;
    std::string sent_headers;
    for (const auto& [k, v] : sent.headers) sent_headers += k + ": " + v + "\n";
    sent_headers += "X-Hub-Signature-256: " + signature + "\n";
    const auto explain = [&](const std::string& body_file, const std::string& headers_file) {
        return run_hookrelay({"explain", "--config", daemon.config_path(), "--source", "github",
                              "--body", body_file, "--headers-file", headers_file, "--json"},
                             env());
    };
    const auto original =
        explain(dir.write("sent.json", sent.body), dir.write("sent.headers", sent_headers));
    const auto replayed = explain(dir.write("stored.json", stored_body.out),
                                  dir.write("stored.headers", stored_headers.out));
    ASSERT_EQ(original.exit_code, 0) << original.err;
    ASSERT_EQ(replayed.exit_code, 0) << replayed.err;
    EXPECT_EQ(json::parse(replayed.out), json::parse(original.out));
    EXPECT_EQ(json::parse(replayed.out).at("triggers").as_array().size(), 1u) << replayed.out;

    // The raw body is behind the token like the rest of the API.
    EXPECT_EQ(admin(daemon, "GET", "/api/v1/deliveries/exp-1/body", "").status, 401u);
    EXPECT_EQ(admin(daemon, "GET", "/api/v1/deliveries/nope/body").status, 404u);
}

TEST_F(AdminCli, ShowBodyOfADeliveryWhoseBodyWasNotKeptFailsClearly) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule) + "store: {keep_body: false}\n"));
    ASSERT_EQ(post_webhook(daemon, push("nobody-1")).status, 202u);
    auto r = run_hookrelay({"deliveries", "show", "nobody-1", "--body", "--admin", address(daemon)},
                           cli_env());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("the daemon answered 409: the body of delivery 'nobody-1' was not "
                         "stored (store.keep_body: false)"),
              std::string::npos)
        << r.err;
    // Without the body there is no event to read, but the delivery's summary still says which
    // repository and ref it was, and its #seq.
    auto show =
        run_hookrelay({"deliveries", "show", "nobody-1", "--admin", address(daemon)}, cli_env());
    EXPECT_EQ(show.exit_code, 0) << show.err;
    EXPECT_NE(show.out.find("delivery nobody-1  #1  source github"), std::string::npos) << show.out;
    EXPECT_NE(show.out.find("repository woodpecker-ci/woodpecker  ref refs/heads/main"),
              std::string::npos)
        << show.out;
}

TEST_F(AdminCli, ADeliveryWhoseStoredBodyIsDamagedSaysWhyAndTheDaemonStaysReady) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    ASSERT_EQ(post_webhook(daemon, push("damaged-1")).status, 202u);
    // Answered from the intake log: the API's read waits for it to be in the database.
    ASSERT_EQ(admin(daemon, "GET", "/api/v1/deliveries/damaged-1").status, 200u);
    {
        // Cut the stored (compressed) body short from a second connection, as a damaged disk
        // would leave it.
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open((daemon.dir().path() + "/var/hookrelay.db").c_str(), &db),
                  SQLITE_OK);
        sqlite3_busy_timeout(db, 10000);
        char* error = nullptr;
        const int rc = sqlite3_exec(db,
                                    "UPDATE deliveries SET body = substr(body, 1, 100) "
                                    "WHERE delivery_id = 'damaged-1' AND body_lz4_size > 0",
                                    nullptr, nullptr, &error);
        const int changed = sqlite3_changes(db);
        const std::string why = error ? error : "";
        sqlite3_free(error);
        sqlite3_close(db);
        ASSERT_EQ(rc, SQLITE_OK) << why;
        ASSERT_EQ(changed, 1) << "the push is stored compressed";
    }
    const auto addr = address(daemon);
    auto show = run_hookrelay({"deliveries", "show", "damaged-1", "--admin", addr}, cli_env());
    EXPECT_EQ(show.exit_code, 0) << show.err;
    EXPECT_NE(show.out.find("  body cannot be read: the stored body is damaged: its 100 "
                            "compressed bytes do not decompress to the 8"),
              std::string::npos)
        << show.out;
    EXPECT_NE(show.out.find("→ ci"), std::string::npos) << "its trigger still shows: " << show.out;
    // The API says the same; the body's digest, taken from the body as it is read, is unknown.
    const auto detail = body(admin(daemon, "GET", "/api/v1/deliveries/damaged-1"));
    EXPECT_TRUE(detail.at("body_sha256").is_null()) << detail;
    EXPECT_EQ(detail.at("body_stored"), true) << detail;
    EXPECT_NE(std::string(detail.at("body_error").as_string()).find("the stored body is damaged"),
              std::string::npos)
        << detail;
    auto body =
        run_hookrelay({"deliveries", "show", "damaged-1", "--body", "--admin", addr}, cli_env());
    EXPECT_EQ(body.exit_code, 1);
    EXPECT_NE(body.err.find("the daemon answered 409: the body of delivery 'damaged-1' cannot "
                            "be read: the stored body is damaged"),
              std::string::npos)
        << body.err;
    EXPECT_EQ(admin(daemon, "GET", "/readyz", "").status, 200u);
    EXPECT_NE(daemon.log().find("the stored body is damaged"), std::string::npos);
}

TEST_F(AdminCli, ShowPrintsEachTriggersParameters) {
    Daemon daemon(options(config_for(jenkins, k_branch_rule)));
    ASSERT_EQ(post_webhook(daemon, push("params-1")).status, 202u);
    auto show =
        run_hookrelay({"deliveries", "show", "params-1", "--admin", address(daemon)}, cli_env());
    EXPECT_EQ(show.exit_code, 0) << show.err;
    EXPECT_NE(show.out.find("    parameters\n      GIT_COMMIT=" + fixture_commit() + "\n"),
              std::string::npos)
        << show.out;
}

TEST_F(AdminCli, RedeliverDryRunPrintsWhatWouldBeQueuedAndQueuesNothing) {
    Daemon daemon(options(config_for(jenkins, k_rules_missing_main)));
    ASSERT_EQ(post_webhook(daemon, push("dry-1")).status, 200u);
    // The rule is fixed; before running it for real, see what it would do.
    write_file(daemon.config_path(), config_for(jenkins, k_branch_rule));
    ASSERT_EQ(admin(daemon, "POST", "/api/v1/reload").status, 200u);
    const auto addr = address(daemon);

    auto dry = run_hookrelay({"deliveries", "redeliver", "dry-1", "--dry-run", "--admin", addr},
                             cli_env());
    EXPECT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_NE(dry.out.find("delivery dry-1 through the current rules would queue 1 trigger(s) "
                           "(dry run: nothing queued)\n"),
              std::string::npos)
        << dry.out;
    EXPECT_NE(dry.out.find("  rule branches  → ci woodpecker-ci/woodpecker/main\n"
                           "      GIT_COMMIT=" +
                           fixture_commit() + "\n"),
              std::string::npos)
        << dry.out;
    // Nothing stored: the delivery still has no trigger.
    const auto after = body(admin(daemon, "GET", "/api/v1/deliveries/dry-1"));
    EXPECT_TRUE(after.at("triggers").as_array().empty()) << after;

    // The real redelivery reaches Jenkins once: the dry run sent nothing before it.
    auto real = run_hookrelay({"deliveries", "redeliver", "dry-1", "--admin", addr}, cli_env());
    EXPECT_EQ(real.exit_code, 0) << real.err;
    ASSERT_TRUE(trigger_state_is(daemon, "dry-1", "delivered")) << daemon.log();
    EXPECT_EQ(jenkins.builds().size(), 1u);
    EXPECT_EQ(
        body(admin(daemon, "GET", "/api/v1/deliveries/dry-1")).at("triggers").as_array().size(),
        1u);
}

}  // namespace
}  // namespace hookrelay::test
