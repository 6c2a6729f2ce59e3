// Durability on PostgreSQL: one instance on one database is killed with SIGKILL in the middle of a
// burst of signed pushes, round after round (Jenkins up, down, slow or answering 503 at the
// kill), and after a last restart Jenkins gets a build for every delivery that was answered 202.
// The same rounds as tests/integration/durability_test.cpp (SQLite): support/kill_burst.hpp.
#include "cluster/cluster.hpp"
#include "store/postgres/pg_test_support.hpp"
#include "support/kill_burst.hpp"

#include <gtest/gtest.h>

#include <iostream>

namespace hookrelay::test::cluster {
namespace {

using store::test::TestDatabase;

// The last restart drains what every round left (after the killed instance's claims expire);
// generous for a loaded 2-core machine.
constexpr std::chrono::seconds k_drain_deadline{30};

TEST(ClusterDurability, EveryAcceptedPushIsBuiltAfterRepeatedKillNineMidBurst) {
    const auto began = std::chrono::steady_clock::now();
    TestDatabase db;
    FakeJenkins jenkins({});
    ClusterOptions options;
    options.database = db.conninfo();
    options.instances = 1;
    Cluster cluster(jenkins, options);

    kill_burst::Options burst;
    burst.secret = k_secret;
    burst.prefix = "pg";
    const auto result = kill_burst::run(
        jenkins, burst,
        [&] {
            if (!cluster.up(0)) cluster.start(0);
            return cluster.at(0).port();
        },
        [&] { cluster.kill(0); });
    std::cout << kill_burst::describe(result) << std::flush;
    ASSERT_FALSE(result.accepted.empty());
    // The kills landed mid-burst: some requests were in flight and got no answer.
    EXPECT_GT(result.unanswered(), 0u);

    kill_burst::set_mode(jenkins, kill_burst::JenkinsMode::up, burst.slow_answer);
    cluster.start(0);
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
        << cluster.logs();
}

}  // namespace
}  // namespace hookrelay::test::cluster
