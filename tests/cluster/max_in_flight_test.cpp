// A Jenkins' max_in_flight holds across the cluster: with 3 instances and max_in_flight 2, the
// Jenkins never sees more than 2 requests at once.
#include "cluster/cluster.hpp"
#include "store/postgres/pg_test_support.hpp"

#include <gtest/gtest.h>

#include <iostream>

namespace hookrelay::test::cluster {
namespace {

using namespace std::chrono_literals;
using store::test::TestDatabase;

constexpr std::size_t k_deliveries = 60;
constexpr std::chrono::seconds k_deadline{60};

TEST(ClusterMaxInFlight, ThreeInstancesNeverExceedTheJenkinsLimitTogether) {
    TestDatabase db;
    FakeJenkins jenkins({});
    ClusterOptions options;
    options.database = db.conninfo();
    options.jenkins_max_in_flight = 2;
    Cluster cluster(jenkins, options);
    Backends backends(cluster);
    // Each instance checks its config against Jenkins once it starts, one request at a time
    // apart from max_in_flight (as following is): the limit under test is delivery's, so count
    // from when every check has finished (its gauge is set).
    for (std::size_t i = 0; i < cluster.size(); ++i) {
        ASSERT_TRUE(eventually(
            [&] {
                return http_request(cluster.at(i).admin_port(), "GET", "/metrics",
                                    {{"Authorization", std::string("Bearer ") + k_admin_token}})
                           .body.find("hookrelay_config_findings{") != std::string::npos;
            },
            k_deadline))
            << cluster.logs();
    }
    jenkins.reset_peak_in_flight();
    // Slow answers keep requests in flight long enough for every instance to want more.
    jenkins.set_answer_delay(50ms);

    std::vector<Post> posts;
    std::vector<std::string> deliveries;
    for (std::size_t i = 0; i < k_deliveries; ++i) {
        deliveries.push_back("limit-" + std::to_string(i));
        posts.push_back({deliveries.back(), i % cluster.size()});
    }
    for (const auto& s : send_all(backends, posts, cluster.size(), true)) {
        ASSERT_EQ(s.status, 202u) << s.delivery << ": " << s.answer;
    }
    ASSERT_TRUE(wait_until_built(jenkins, deliveries, k_deadline)) << cluster.logs();
    ASSERT_TRUE(wait_until_settled(cluster, k_deadline)) << cluster.logs();

    EXPECT_LE(jenkins.peak_in_flight(), 2u) << "the cluster exceeded max_in_flight";
    // The limit is used, not merely respected by going one at a time.
    EXPECT_EQ(jenkins.peak_in_flight(), 2u);
    std::cout << k_deliveries << " builds from " << cluster.size() << " instances; at most "
              << jenkins.peak_in_flight() << " requests in flight at Jenkins\n";
}

}  // namespace
}  // namespace hookrelay::test::cluster
