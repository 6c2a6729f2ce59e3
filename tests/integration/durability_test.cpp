// Durability, proven: the real daemon on one SQLite state_dir is killed with SIGKILL in the middle
// of a burst of signed pushes, round after round (Jenkins up, down, slow or answering 503 at the
// kill), and after a last restart Jenkins gets a build for every delivery that was answered 202.
// Duplicates are allowed (at least once), losses are not. The rounds are in
// support/kill_burst.hpp; tests/cluster/durability_test.cpp runs them on PostgreSQL.
#include "fakes/fake_jenkins.hpp"
#include "support/daemon.hpp"
#include "support/kill_burst.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <iostream>
#include <memory>

namespace hookrelay::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* k_secret = "durability-test-secret-2b9e";
// The last restart drains what every round left; generous for a loaded 2-core machine.
constexpr std::chrono::seconds k_drain_deadline{30};

std::string config_for(const FakeJenkins& jenkins, const std::string& state_dir, bool intake_log) {
    return R"(listen: 127.0.0.1:0
state_dir: )" +
           state_dir +
           (intake_log ? "\nstore: {intake_log: true}" : "\nstore: {intake_log: false}") +
           R"(
log: {level: info}
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
    api_token: "${env:JENKINS_TOKEN}"
    max_in_flight: 8
    probe_initial: 50ms
    probe_max: 100ms
    retry: {initial: 50ms, max_delay: 200ms, max_age: 1h}
rules:
  - name: builds
    when: {event: push}
    trigger: {jenkins: ci, job: build}
)";
}

// The end of the daemon's log, for a failure message.
std::string log_tail(const Daemon& daemon) {
    constexpr std::size_t k_tail = 6'000;
    const auto log = daemon.log();
    return log.size() <= k_tail ? log : log.substr(log.size() - k_tail);
}

Daemon::Options daemon_options(std::string config) {
    Daemon::Options o;
    o.config_yaml = std::move(config);
    o.env = {{"GH_SECRET", k_secret},
             {"JENKINS_TOKEN", "fake-api-token"},
             {"ADMIN_TOKEN", "durability-test-admin-61c0"}};
    return o;
}

void every_accepted_push_is_built(bool intake_log) {
    const auto began = std::chrono::steady_clock::now();
    FakeJenkins jenkins({});
    jenkins.add_job({"build"});
    TempDir state;
    const auto config = config_for(jenkins, state.path(), intake_log);

    kill_burst::Options options;
    options.secret = k_secret;
    options.prefix = intake_log ? "sqlite-log" : "sqlite";
    std::unique_ptr<Daemon> daemon;
    const auto result = kill_burst::run(
        jenkins, options,
        [&] {
            daemon = std::make_unique<Daemon>(daemon_options(config));
            return daemon->port();
        },
        [&] {
            daemon->stop(SIGKILL);
            daemon.reset();
        });
    std::cout << kill_burst::describe(result) << std::flush;
    ASSERT_FALSE(result.accepted.empty());
    // The kills landed mid-burst: some requests were in flight and got no answer.
    EXPECT_GT(result.unanswered(), 0u);

    kill_burst::set_mode(jenkins, kill_burst::JenkinsMode::up, options.slow_answer);
    Daemon last(daemon_options(config));
    const auto outcome = kill_burst::drain(jenkins, result, k_drain_deadline);
    std::cout << outcome.summary(result) << ", took "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - began)
                     .count()
              << " ms" << std::endl;
    EXPECT_EQ(outcome.accepted_twice, 0u) << "a delivery id was answered 202 twice";
    EXPECT_TRUE(outcome.lost.empty())
        << outcome.lost.size() << " accepted deliveries never built: " << outcome.lost_sample()
        << "\n"
        << log_tail(last);
}

// Without the intake log (store.intake_log: false): answered after the database's commit.
TEST(Durability, EveryAcceptedPushIsBuiltAfterRepeatedKillNineMidBurst) {
    every_accepted_push_is_built(false);
}

// The same with store.intake_log (the default): answered from the intake log, indexed behind it.
TEST(Durability, WithTheIntakeLogEveryAcceptedPushIsBuiltAfterRepeatedKillNineMidBurst) {
    every_accepted_push_is_built(true);
}

}  // namespace
}  // namespace hookrelay::test
