// Coalescing across instances: Jenkins is down all night while pushes to main arrive at two
// instances sharing PostgreSQL; when Jenkins is back exactly one build starts, of the last
// commit, and every other push is superseded, whichever instance accepted it.
#include "cluster/cluster.hpp"
#include "store/postgres/pg_test_support.hpp"
#include "support/admin_api.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace hookrelay::test::cluster {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using store::test::TestDatabase;

constexpr std::chrono::seconds k_deadline{60};

std::string sha(int n) {
    auto s = std::to_string(n);
    return std::string(40 - s.size(), 'b') + s;
}

// Push n (commit sha(n), delivery "night-<n>") to main, at `port`.
HttpResult push(std::uint16_t port, int n) {
    const auto f = github_push_of("night-" + std::to_string(n), sha(n));
    Headers h = f.headers;
    h.emplace_back("X-Hub-Signature-256", github_signature(k_secret, f.body));
    return http_request(port, "POST", "/hooks/github", h, f.body);
}

// The state of push n's trigger as instance i's API shows it.
std::string state_via(Cluster& cluster, std::size_t i, int n) {
    return json_text(
        first_trigger(cluster.at(i).admin_port(), k_admin_token, "night-" + std::to_string(n)),
        "state");
}

TEST(ClusterCoalesce, JenkinsDownFiftyPushesOnTwoInstancesThenOneBuildOfTheLastCommit) {
    TestDatabase db;
    FakeJenkins jenkins({});
    ClusterOptions options;
    options.database = db.conninfo();
    options.instances = 2;
    options.rules = R"(  - name: main
    when: {event: push, branch: main}
    coalesce: "{{ repository }}:{{ branch }}"
    trigger: {jenkins: ci, job: night, parameters: {GIT_COMMIT: "{{ commit }}"}}
)";
    jenkins.add_job({"night"}, {"GIT_COMMIT"});
    jenkins.stop();  // down all night
    Cluster cluster(jenkins, options);
    constexpr int k_pushes = 50;
    for (int n = 1; n <= k_pushes; ++n) {
        // A load balancer alternating between the instances.
        ASSERT_EQ(push(cluster.at(n % 2).port(), n).status, 202u) << n << cluster.logs();
    }
    ASSERT_TRUE(eventually(
        [&] {
            for (int n = 1; n < k_pushes; ++n) {
                if (state_via(cluster, 0, n) != "superseded") return false;
            }
            return true;
        },
        k_deadline))
        << cluster.logs();
    EXPECT_EQ(state_via(cluster, 1, k_pushes), "pending");
    jenkins.start();
    ASSERT_TRUE(
        eventually([&] { return state_via(cluster, 1, k_pushes) == "delivered"; }, k_deadline))
        << cluster.logs();
    ASSERT_TRUE(wait_until_settled(cluster, k_deadline)) << cluster.logs();
    const auto builds = jenkins.builds();
    ASSERT_EQ(builds.size(), 1u);
    EXPECT_EQ(builds[0].param("GIT_COMMIT"), sha(k_pushes));
    for (int n = 1; n < k_pushes; ++n) EXPECT_EQ(state_via(cluster, 1, n), "superseded") << n;
}

}  // namespace
}  // namespace hookrelay::test::cluster
