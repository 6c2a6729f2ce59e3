// Following a build is durable work shared by the cluster: when the instance that delivered a
// trigger dies (kill -9) before its build is done, another instance follows it to its result.
#include "cluster/cluster.hpp"
#include "store/postgres/pg_test_support.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>

namespace hookrelay::test::cluster {
namespace {

using namespace std::chrono_literals;
using store::test::TestDatabase;

constexpr std::chrono::seconds k_deadline{60};

// The outcome of the delivery's trigger as instance i's API shows it ("" when it cannot tell).
std::string outcome_via(Cluster& cluster, std::size_t i, const std::string& delivery) {
    if (!cluster.up(i)) return "";
    const auto r = http_request(cluster.at(i).admin_port(), "GET", "/api/v1/deliveries/" + delivery,
                                {{"Authorization", std::string("Bearer ") + k_admin_token}});
    if (r.status != 200) return "";
    const auto delivery_json = boost::json::parse(r.body);
    const auto& triggers = delivery_json.at("triggers").as_array();
    if (triggers.empty()) return "";
    return std::string(triggers.at(0).at("outcome").as_string());
}

TEST(ClusterFollow, AnotherInstanceFollowsTheBuildOfADeadInstancesDelivery) {
    TestDatabase db;
    FakeJenkins jenkins({});
    ClusterOptions options;
    options.database = db.conninfo();
    options.instances = 2;
    // Short reads: a follow lease held by the dead instance runs out within the deadline.
    options.jenkins_keys = {"follow_poll_initial: 100ms", "follow_poll_max: 300ms",
                            "request_timeout: 2s"};
    Cluster cluster(jenkins, options);
    Backends only_first({cluster.at(0).port(), 0});
    Sender sender(only_first, false);
    ASSERT_EQ(sender.post("cluster-follow-1", 0).status, 202u);
    // Jenkins queued it (the fake keeps it queued until drained) and it is being followed.
    ASSERT_TRUE(eventually(
        [&] {
            const auto requests = jenkins.requests();
            return outcome_via(cluster, 1, "cluster-follow-1") == "queued" &&
                   std::any_of(requests.begin(), requests.end(),
                               [](const auto& r) { return r.endpoint == "queue"; });
        },
        k_deadline))
        << cluster.logs();
    cluster.kill(0);
    jenkins.drain_queue();
    jenkins.finish_builds();
    ASSERT_TRUE(eventually([&] { return outcome_via(cluster, 1, "cluster-follow-1") == "SUCCESS"; },
                           k_deadline))
        << cluster.logs();
    EXPECT_EQ(jenkins.builds().size(), 1u);
    EXPECT_EQ(jenkins.runs().size(), 1u);
}

}  // namespace
}  // namespace hookrelay::test::cluster
