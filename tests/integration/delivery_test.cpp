// End to end: the real hookrelay binary, a fake Jenkins of our own on loopback (written from the
// Jenkins source reference), and signed real payloads. Asserts what Jenkins received.
#include "fakes/fake_jenkins.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/stored_triggers.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <csignal>
#include <memory>
#include <set>

namespace hookrelay::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* k_secret = "delivery-test-secret-77d0";
constexpr const char* k_admin_token = "delivery-test-admin-5e1b";
constexpr std::chrono::seconds k_deadline{20};

// A config whose Jenkins is the fake. `extra_jenkins` goes into the jenkins entry, `rules`
// replaces the default rules.
std::string config_for(const FakeJenkins& jenkins, const std::string& extra_jenkins = "",
                       const std::string& rules = "", const std::string& state_dir = "./var") {
    std::string out = R"(listen: 127.0.0.1:0
state_dir: )" + state_dir +
                      R"(
log: {level: debug}
admin: {listen: "127.0.0.1:0", token: "${env:ADMIN_TOKEN}"}
dispatch: {poll_interval: 200ms}
sources:
  github: {provider: github, secret: "${env:GH_SECRET}"}
jenkins:
  ci:
    url: ")" + jenkins.url() +
                      R"("
    user: hookrelay
    api_token: "${env:JENKINS_TOKEN}"
    probe_initial: 50ms
    probe_max: 100ms
    retry: {initial: 50ms, max_delay: 200ms, max_age: 1h}
)" + extra_jenkins;
    out += rules.empty() ? R"(
rules:
  - name: branches
    when: {event: push}
    trigger:
      jenkins: ci
      job: "{{ repository.namespace }}/{{ repository.name }}/{{ branch }}"
      parameters: {GIT_COMMIT: "{{ commit }}", BRANCH: "{{ branch }}"}
)"
                         : rules;
    return out;
}

Daemon::Options daemon_options(std::string config) {
    Daemon::Options o;
    o.config_yaml = std::move(config);
    o.env = {{"GH_SECRET", k_secret},
             {"JENKINS_TOKEN", "fake-api-token"},
             {"ADMIN_TOKEN", k_admin_token}};
    return o;
}

Fixture push(const std::string& delivery, const std::string& branch = "main") {
    return github_push(delivery, branch);
}

HttpResult post(const Daemon& daemon, const Fixture& f) {
    Headers h = f.headers;
    h.emplace_back("X-Hub-Signature-256", github_signature(k_secret, f.body));
    return http_request(daemon.port(), "POST", "/hooks/github", h, f.body);
}

// The daemon's triggers, as its admin API shows them.
std::vector<TriggerRow> triggers_of(const Daemon& daemon) {
    return read_triggers(daemon, k_admin_token);
}

// "up", "held" or "throttled", as `hookrelay status` shows the Jenkins; "" when not answered.
std::string jenkins_state(const Daemon& daemon, const std::string& name) {
    const auto r = http_request(daemon.admin_port(), "GET", "/api/v1/status",
                                {{"Authorization", std::string("Bearer ") + k_admin_token}});
    if (r.status != 200) return "";
    const auto status = json::parse(r.body);
    for (const auto& j : status.at("jenkins").as_array()) {
        if (j.at("name") == name.c_str()) return std::string(j.at("state").as_string());
    }
    return "";
}

std::vector<ReceivedRequest> probes(const FakeJenkins& jenkins) {
    std::vector<ReceivedRequest> out;
    for (auto& r : jenkins.requests()) {
        if (r.endpoint == "api" && r.job.empty()) out.push_back(r);  // not the config check's
    }
    return out;
}

TEST(Delivery, JenkinsReceivesJobPathParametersAuthAndCause) {
    FakeJenkins jenkins({});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    Daemon daemon(daemon_options(config_for(jenkins)));
    const auto r = post(daemon, push("d-1"));
    ASSERT_EQ(r.status, 202u) << r.body;

    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    const auto b = jenkins.builds().at(0);
    EXPECT_EQ(b.method, "POST");
    EXPECT_EQ(b.endpoint, "buildWithParameters");
    EXPECT_EQ(b.job, (std::vector<std::string>{"woodpecker-ci", "woodpecker", "main"}));
    EXPECT_EQ(b.param("GIT_COMMIT"), "366701fde727cb7a9e7f21eb88264f59f6f9b89c");
    EXPECT_EQ(b.param("BRANCH"), "main");
    EXPECT_TRUE(b.authenticated);
    EXPECT_EQ(b.user, "hookrelay");
    EXPECT_NE(b.cause.find("d-1"), std::string::npos) << b.cause;
    for (const auto& [k, v] : b.query)
        EXPECT_NE(k, "GIT_COMMIT") << "parameters belong in the body";
    EXPECT_EQ(b.status, 201);

    // The queue item Jenkins returned is recorded with the trigger.
    ASSERT_TRUE(eventually([&] {
        auto rows = triggers_of(daemon);
        return rows.size() == 1 && rows[0].state == "delivered";
    }));
    const auto row = triggers_of(daemon).at(0);
    EXPECT_NE(row.queue_url.find("/queue/item/"), std::string::npos);
    EXPECT_EQ(row.attempts, 1);
}

TEST(Delivery, MultibranchBranchWithSlashIsOneItem) {
    FakeJenkins jenkins({});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "feature%2Fx"}, {"GIT_COMMIT", "BRANCH"});
    Daemon daemon(daemon_options(config_for(jenkins)));
    ASSERT_EQ(post(daemon, push("d-mb", "feature/x")).status, 202u);
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    const auto b = jenkins.builds().at(0);
    EXPECT_EQ(b.job, (std::vector<std::string>{"woodpecker-ci", "woodpecker", "feature%2Fx"}));
    EXPECT_NE(b.target.find("/job/feature%252Fx/"), std::string::npos) << b.target;
    EXPECT_EQ(b.param("BRANCH"), "feature/x");
}

TEST(Delivery, JobWithoutParametersUsesBuild) {
    FakeJenkins jenkins({});
    jenkins.add_job({"plain"});
    const auto rules = R"(
rules:
  - name: plain
    when: {event: push}
    trigger: {jenkins: ci, job: plain}
)";
    Daemon daemon(daemon_options(config_for(jenkins, "", rules)));
    ASSERT_EQ(post(daemon, push("d-plain")).status, 202u);
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    EXPECT_EQ(jenkins.builds().at(0).endpoint, "build");
}

TEST(Delivery, JenkinsDownThenBackGetsEverythingWithBudgetsIntact) {
    FakeJenkins jenkins({});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    jenkins.stop();  // connection refused
    Daemon daemon(daemon_options(config_for(jenkins)));
    for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(post(daemon, push("down-" + std::to_string(i))).status, 202u);
    }
    ASSERT_TRUE(eventually([&] { return jenkins_state(daemon, "ci") == "held"; }, k_deadline))
        << daemon.log();
    jenkins.start();
    ASSERT_TRUE(jenkins.wait_for_builds(5, k_deadline)) << daemon.log();
    std::set<std::string> causes;
    for (const auto& b : jenkins.builds()) causes.insert(b.cause);
    EXPECT_EQ(causes.size(), 5u);
    ASSERT_TRUE(eventually([&] {
        auto rows = triggers_of(daemon);
        return rows.size() == 5 && std::all_of(rows.begin(), rows.end(),
                                               [](auto& r) { return r.state == "delivered"; });
    }));
    for (const auto& row : triggers_of(daemon)) {
        EXPECT_EQ(row.attempts, 1) << "an outage must not burn retry budget: " << row.last_outcome;
    }
}

TEST(Delivery, ServiceUnavailableStormHoldsJenkinsWithoutKillingTriggers) {
    FakeJenkins jenkins({});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    jenkins.set_restarting(true);  // 503 to everything
    // A retry budget this small would run out during the storm if the outage counted.
    const auto rules = R"(
rules:
  - name: branches
    retry: {initial: 50ms, max_delay: 100ms, max_age: 300ms}
    when: {event: push}
    trigger:
      jenkins: ci
      job: "{{ repository.namespace }}/{{ repository.name }}/{{ branch }}"
      parameters: {GIT_COMMIT: "{{ commit }}", BRANCH: "{{ branch }}"}
)";
    Daemon daemon(daemon_options(config_for(jenkins, "", rules)));
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(post(daemon, push("storm-" + std::to_string(i))).status, 202u);
    }
    // Probes go out every 50-100 ms; after 8 of them the outage has outlasted max_age (300 ms).
    ASSERT_TRUE(eventually([&] { return probes(jenkins).size() >= 8; }, k_deadline))
        << daemon.log();
    jenkins.set_restarting(false);
    ASSERT_TRUE(jenkins.wait_for_builds(3, k_deadline)) << daemon.log();
    ASSERT_TRUE(eventually([&] {
        auto rows = triggers_of(daemon);
        return rows.size() == 3 && std::all_of(rows.begin(), rows.end(),
                                               [](auto& r) { return r.state == "delivered"; });
    })) << daemon.log();
}

std::vector<ReceivedRequest> build_requests(const FakeJenkins& jenkins) {
    std::vector<ReceivedRequest> out;
    for (auto& r : jenkins.requests()) {
        if (r.endpoint == "build" || r.endpoint == "buildWithParameters") out.push_back(r);
    }
    return out;
}

// config_for() with room for a Retry-After of a few seconds: it is honoured up to the Jenkins'
// retry.max_delay.
std::string config_with_max_delay(const FakeJenkins& jenkins, const std::string& max_delay) {
    auto config = config_for(jenkins);
    const std::string from = "max_delay: 200ms";
    config.replace(config.find(from), from.size(), "max_delay: " + max_delay);
    return config;
}

TEST(Delivery, TooManyRequestsPausesForRetryAfterThenDeliversWithBudgetIntact) {
    FakeJenkins jenkins({});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    jenkins.fail_next(2, 429, "1");  // a rate limiter: 429, Retry-After: 1 (second), twice
    Daemon daemon(daemon_options(config_with_max_delay(jenkins, "10s")));
    ASSERT_EQ(post(daemon, push("d-429")).status, 202u);

    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    const auto requests = build_requests(jenkins);
    ASSERT_EQ(requests.size(), 3u) << daemon.log();
    EXPECT_EQ(requests[0].status, 429);
    EXPECT_EQ(requests[1].status, 429);
    EXPECT_EQ(requests[2].status, 201);
    // Each retry came only after the Retry-After of the 429 before it.
    EXPECT_GE(requests[1].at - requests[0].at, 1s);
    EXPECT_GE(requests[2].at - requests[1].at, 1s);
    ASSERT_TRUE(eventually([&] {
        auto rows = triggers_of(daemon);
        return rows.size() == 1 && rows[0].state == "delivered";
    })) << daemon.log();
    EXPECT_EQ(triggers_of(daemon).at(0).attempts, 1) << "a 429 must not use up the retry budget";
}

TEST(Delivery, ThrottledTriggerIsNotOvertakenByLaterOnes) {
    FakeJenkins jenkins({});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "later"}, {"GIT_COMMIT", "BRANCH"});
    jenkins.fail_next(1, 429, "1");
    Daemon daemon(daemon_options(config_with_max_delay(jenkins, "10s")));
    ASSERT_EQ(post(daemon, push("first", "main")).status, 202u);
    // The first trigger got its 429 (not just any request: the config check's come too), and
    // the daemon has taken it in: the Jenkins is paused. (Posting on the 429 alone raced the
    // daemon's reading of it on a busy machine: the second trigger went out before the pause.)
    ASSERT_TRUE(eventually([&] { return !build_requests(jenkins).empty(); }, k_deadline))
        << daemon.log();
    ASSERT_TRUE(eventually([&] { return jenkins_state(daemon, "ci") == "throttled"; }, k_deadline))
        << daemon.log();
    ASSERT_EQ(post(daemon, push("second", "later")).status, 202u);  // queued during the pause

    ASSERT_TRUE(jenkins.wait_for_builds(2, k_deadline)) << daemon.log();
    const auto builds = jenkins.builds();
    EXPECT_EQ(builds[0].param("BRANCH"), "main");
    EXPECT_EQ(builds[1].param("BRANCH"), "later");
}

TEST(Delivery, ServiceUnavailableWithRetryAfterIsNotProbedSooner) {
    FakeJenkins jenkins({});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    jenkins.fail_next(1, 503, "1");  // a proxy's maintenance page: 503, Retry-After: 1
    Daemon daemon(daemon_options(config_with_max_delay(jenkins, "10s")));  // probe_initial 50ms
    ASSERT_EQ(post(daemon, push("d-503")).status, 202u);

    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    const auto builds = build_requests(jenkins);
    ASSERT_GE(builds.size(), 2u);
    EXPECT_EQ(builds[0].status, 503);
    const auto probe_requests = probes(jenkins);
    ASSERT_FALSE(probe_requests.empty()) << daemon.log();
    EXPECT_GE(probe_requests[0].at - builds[0].at, 1s)
        << "probed before the Retry-After of the 503 had passed";
}

TEST(Delivery, AJenkinsThatTakesBuildsButAnswersTooLateIsSentEachTriggerTwiceAtMost) {
    // Each build request is queued when it arrives and answered after io_timeout, while the
    // API (the probe) answers at once: every resend would be another build.
    FakeJenkins jenkins({});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    jenkins.set_build_answer_delay(1500ms);
    Daemon daemon(daemon_options(config_for(jenkins, "    io_timeout: 300ms\n")));
    ASSERT_EQ(post(daemon, push("d-slow")).status, 202u);

    ASSERT_TRUE(eventually(
        [&] {
            auto rows = triggers_of(daemon);
            return rows.size() == 1 && rows[0].state == "dead";
        },
        k_deadline))
        << "sent " << build_requests(jenkins).size() << " times\n"
        << daemon.log();
    const auto row = triggers_of(daemon).at(0);
    EXPECT_EQ(row.attempts, 2);
    EXPECT_EQ(row.last_outcome.rfind("no answer twice in a row: read: timeout after 300 ms (the "
                                     "request was sent: Jenkins may have queued the build)",
                                     0),
              0u)
        << row.last_outcome;
    EXPECT_EQ(build_requests(jenkins).size(), 2u);
}

TEST(Delivery, HangingJenkinsDoNotStarveAHealthyOne) {
    // Four Jenkins accept connections and never answer; a fifth is healthy. Together they could
    // fill the overall limit of 5 many times over; each is guaranteed its share of it.
    constexpr auto k_request_timeout = 5s;
    std::vector<std::unique_ptr<FakeJenkins>> hanging;
    for (int i = 0; i < 4; ++i) {
        hanging.push_back(std::make_unique<FakeJenkins>(FakeJenkins::Options{}));
        hanging.back()->set_hanging(true);
    }
    FakeJenkins healthy({});
    healthy.add_job({"woodpecker-ci", "woodpecker", "healthy"}, {"GIT_COMMIT"});

    std::string config = R"(listen: 127.0.0.1:0
state_dir: ./var
log: {level: debug}
server: {shutdown_grace: 200ms}
dispatch: {poll_interval: 200ms, max_in_flight: 5}
sources:
  github: {provider: github, secret: "${env:GH_SECRET}"}
jenkins:
)";
    auto entry = [](const std::string& name, const FakeJenkins& fake) {
        return "  " + name + ": {url: \"" + fake.url() +
               "\", user: hookrelay, api_token: \"${env:JENKINS_TOKEN}\", max_in_flight: 2, "
               "request_timeout: 5s, probe_initial: 1s}\n";
    };
    for (std::size_t i = 0; i < hanging.size(); ++i) {
        config += entry("hang" + std::to_string(i), *hanging[i]);
    }
    config += entry("ok", healthy);
    config += R"(rules:
  - name: fan-out
    when: {event: push, branch: main}
    trigger:
)";
    for (std::size_t i = 0; i < hanging.size(); ++i) {
        config += "      - {jenkins: hang" + std::to_string(i) +
                  ", job: \"{{ repository.namespace }}/{{ repository.name }}/{{ branch }}\", "
                  "parameters: {N: \"" +
                  std::to_string(i) + "\"}}\n";
    }
    config += R"(  - name: healthy
    when: {event: push, branch: healthy}
    trigger: {jenkins: ok, job: "{{ repository.namespace }}/{{ repository.name }}/{{ branch }}", parameters: {GIT_COMMIT: "{{ commit }}"}}
)";
    Daemon daemon(daemon_options(config));

    // Two triggers for every hanging Jenkins: more than the overall limit in total.
    ASSERT_EQ(post(daemon, push("hang-1")).status, 202u);
    ASSERT_EQ(post(daemon, push("hang-2")).status, 202u);
    ASSERT_TRUE(eventually(
        [&] {
            return std::all_of(hanging.begin(), hanging.end(),
                               [](const auto& h) { return !h->requests().empty(); });
        },
        k_deadline))
        << daemon.log();
    auto first_hang = hanging[0]->requests().at(0).at;
    for (const auto& h : hanging) first_hang = std::min(first_hang, h->requests().at(0).at);

    ASSERT_EQ(post(daemon, push("healthy-1", "healthy")).status, 202u);
    ASSERT_TRUE(healthy.wait_for_builds(1, k_deadline)) << daemon.log();
    // Had it waited for a slot a hanging request holds, it could not have gone out before that
    // request's request_timeout.
    EXPECT_LT(healthy.builds().at(0).at, first_hang + k_request_timeout)
        << "the healthy Jenkins waited for a hanging one to time out";
}

TEST(Delivery, NotFoundIsDeadWithTheReasonAndNotRetried) {
    FakeJenkins jenkins({});  // no jobs at all: 404
    Daemon daemon(daemon_options(config_for(jenkins)));
    ASSERT_EQ(post(daemon, push("d-404")).status, 202u);
    ASSERT_TRUE(eventually(
        [&] {
            auto rows = triggers_of(daemon);
            return rows.size() == 1 && rows[0].state == "dead";
        },
        k_deadline))
        << daemon.log();
    const auto row = triggers_of(daemon).at(0);
    EXPECT_NE(row.last_outcome.find("404"), std::string::npos) << row.last_outcome;
    EXPECT_EQ(row.attempts, 1);
    std::size_t build_requests = 0;
    for (const auto& r : jenkins.requests()) {
        if (r.endpoint == "buildWithParameters") ++build_requests;
    }
    EXPECT_EQ(build_requests, 1u);
}

TEST(Delivery, RefusedByQueueIsDead) {
    FakeJenkins jenkins({});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    jenkins.fail_next(1, 302);
    Daemon daemon(daemon_options(config_for(jenkins)));
    ASSERT_EQ(post(daemon, push("d-302")).status, 202u);
    ASSERT_TRUE(eventually(
        [&] {
            auto rows = triggers_of(daemon);
            return rows.size() == 1 && rows[0].state == "dead";
        },
        k_deadline))
        << daemon.log();
    EXPECT_NE(triggers_of(daemon).at(0).last_outcome.find("302"), std::string::npos);
}

TEST(Delivery, ServerErrorIsRetriedOnce) {
    FakeJenkins jenkins({});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    jenkins.fail_next(1, 500);
    Daemon daemon(daemon_options(config_for(jenkins)));
    ASSERT_EQ(post(daemon, push("d-500")).status, 202u);
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    ASSERT_TRUE(eventually([&] {
        auto rows = triggers_of(daemon);
        return rows.size() == 1 && rows[0].state == "delivered";
    })) << daemon.log();
    EXPECT_EQ(triggers_of(daemon).at(0).attempts, 2);
}

TEST(Delivery, MergedIntoQueuedItemIsRecorded) {
    FakeJenkins jenkins({});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    Daemon daemon(daemon_options(config_for(jenkins)));
    ASSERT_EQ(post(daemon, push("d-m1")).status, 202u);
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline));
    ASSERT_EQ(post(daemon, push("d-m2")).status, 202u);  // same job, same parameters, still queued
    ASSERT_TRUE(jenkins.wait_for_builds(2, k_deadline));
    EXPECT_EQ(jenkins.builds().at(1).status, 303);
    ASSERT_TRUE(eventually([&] {
        auto rows = triggers_of(daemon);
        return rows.size() == 2 && rows[1].state == "delivered";
    })) << daemon.log();
    const auto rows = triggers_of(daemon);
    EXPECT_EQ(rows[1].last_outcome, "merged into a queued item");
    EXPECT_EQ(rows[0].queue_url, rows[1].queue_url);
}

TEST(Delivery, DuplicateDeliveryTriggersOnce) {
    FakeJenkins jenkins({});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "other"}, {"GIT_COMMIT", "BRANCH"});
    Daemon daemon(daemon_options(config_for(jenkins)));
    ASSERT_EQ(post(daemon, push("dup-1")).status, 202u);
    const auto again = post(daemon, push("dup-1"));
    EXPECT_EQ(again.status, 200u);
    EXPECT_EQ(json::parse(again.body).at("status"), "duplicate");
    ASSERT_EQ(post(daemon, push("dup-2", "other")).status, 202u);
    ASSERT_TRUE(jenkins.wait_for_builds(2, k_deadline));
    EXPECT_EQ(triggers_of(daemon).size(), 2u);
    EXPECT_EQ(jenkins.builds().size(), 2u);
}

TEST(Delivery, JobTokenWithCrumbAndSessionCookieSurvivesSessionLoss) {
    FakeJenkins jenkins({});
    jenkins.add_job({"tokened"}, {"GIT_COMMIT"}, "job-token-123");
    // No user/api_token: anonymous + job token, which needs a crumb bound to a session cookie.
    std::string config = R"(listen: 127.0.0.1:0
state_dir: ./var
dispatch: {poll_interval: 200ms}
sources:
  github: {provider: github, secret: "${env:GH_SECRET}"}
jenkins:
  ci: {url: ")" + jenkins.url() +
                         R"(", probe_initial: 50ms, probe_max: 100ms}
rules:
  - name: tokened
    when: {event: push}
    trigger: {jenkins: ci, job: tokened, token: "${env:JOB_TOKEN}", parameters: {GIT_COMMIT: "{{ commit }}"}}
)";
    auto o = daemon_options(config);
    o.env.emplace_back("JOB_TOKEN", "job-token-123");
    Daemon daemon(o);
    auto crumb_fetches = [&] {
        std::size_t n = 0;
        for (const auto& r : jenkins.requests()) {
            if (r.endpoint == "crumbIssuer") ++n;
        }
        return n;
    };
    // The check of the config against Jenkins at start asks the crumb issuer once (whether
    // CSRF protection is on); nothing else does before the first trigger.
    ASSERT_TRUE(eventually([&] { return crumb_fetches() == 1; }, k_deadline)) << daemon.log();
    ASSERT_EQ(post(daemon, push("tok-1")).status, 202u);
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    EXPECT_EQ(jenkins.builds().at(0).param("token"), "job-token-123");
    jenkins.invalidate_sessions();  // Jenkins restarted: the cached crumb is no good
    jenkins.drain_queue();
    ASSERT_EQ(post(daemon, push("tok-2")).status, 202u);
    ASSERT_TRUE(jenkins.wait_for_builds(2, k_deadline)) << daemon.log();
    EXPECT_EQ(crumb_fetches(), 1u + 2u);  // the check's, then one per session of the dispatcher
    const auto log = daemon.log();
    EXPECT_EQ(log.find("job-token-123"), std::string::npos) << "job token leaked into the log";
}

TEST(Delivery, HttpsAgainstATestCa) {
    TempDir certs;
    const auto c = make_test_certificates(certs.path());
    FakeJenkins::Options options;
    options.tls = true;
    options.cert_file = c.cert_file;
    options.key_file = c.key_file;
    FakeJenkins jenkins(options);
    jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    ASSERT_EQ(jenkins.url().rfind("https://", 0), 0u);
    Daemon daemon(daemon_options(config_for(jenkins, "    ca_file: \"" + c.ca_file + "\"\n")));
    ASSERT_EQ(post(daemon, push("tls-1")).status, 202u);
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    EXPECT_TRUE(jenkins.builds().at(0).authenticated);
}

TEST(Delivery, KillNineWithPendingTriggersLosesNothing) {
    FakeJenkins jenkins({});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    for (int i = 0; i < 10; ++i) {
        jenkins.add_job({"woodpecker-ci", "woodpecker", "b" + std::to_string(i)},
                        {"GIT_COMMIT", "BRANCH"});
    }
    jenkins.stop();
    TempDir state;
    const auto config = config_for(jenkins, "", "", state.path());
    {
        Daemon first(daemon_options(config));
        for (int i = 0; i < 10; ++i) {
            ASSERT_EQ(post(first, push("k9-" + std::to_string(i), "b" + std::to_string(i))).status,
                      202u);
        }
        first.stop(SIGKILL);
    }
    jenkins.start();
    Daemon second(daemon_options(config));
    ASSERT_TRUE(jenkins.wait_for_builds(10, k_deadline)) << second.log();
    std::set<std::string> branches;
    for (const auto& b : jenkins.builds()) branches.insert(b.param("BRANCH"));
    EXPECT_EQ(branches.size(), 10u);
}

TEST(Delivery, SigtermLeavesUndeliveredTriggersPendingAndExitsZero) {
    FakeJenkins jenkins({});
    jenkins.add_job({"woodpecker-ci", "woodpecker", "main"}, {"GIT_COMMIT", "BRANCH"});
    jenkins.stop();
    TempDir state;
    Daemon daemon(daemon_options(config_for(jenkins, "", "", state.path())));
    ASSERT_EQ(post(daemon, push("term-1")).status, 202u);
    EXPECT_EQ(daemon.stop(SIGTERM), 0) << daemon.log();
    Config stopped;
    stopped.state_dir = state.path();
    const auto rows = read_stored_triggers(stopped);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].state, "pending");
}

}  // namespace
}  // namespace hookrelay::test
