// `hookrelay status` on any instance shows the whole cluster.
#include "cluster/cluster.hpp"
#include "store/postgres/pg_test_support.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <csignal>

namespace hookrelay::test::cluster {
namespace {

using store::test::TestDatabase;

TEST(ClusterStatus, StatusOnAnyInstanceListsAllThreeInstances) {
    TestDatabase db;
    FakeJenkins jenkins({});
    ClusterOptions options;
    options.database = db.conninfo();
    Cluster cluster(jenkins, options);

    std::vector<std::string> ids;
    for (std::size_t i = 0; i < cluster.size(); ++i) ids.push_back(cluster.instance_id(i));
    ASSERT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), cluster.size());

    for (std::size_t i = 0; i < cluster.size(); ++i) {
        const auto r = run_hookrelay(
            {"status", "--admin", "127.0.0.1:" + std::to_string(cluster.at(i).admin_port())},
            {{"HOOKRELAY_ADMIN_TOKEN", k_admin_token}});
        ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
        EXPECT_NE(r.out.find("store postgres"), std::string::npos) << r.out;
        for (std::size_t j = 0; j < cluster.size(); ++j) {
            // The instance asked marks itself with a star.
            EXPECT_NE(r.out.find(ids[j] + (i == j ? " *" : " ")), std::string::npos)
                << "instance " << i << "'s status does not list " << ids[j] << ":\n"
                << r.out;
        }
    }
}

// An instance started with another server under the same Jenkins name (a staging config
// pointed at the production database) would send the others' triggers there: every instance's
// status says so, and the instance that joined logs it at once.
TEST(ClusterStatus, InstancesThatSendAJenkinsNameToDifferentServersAreToldApart) {
    TestDatabase db;
    FakeJenkins jenkins({});
    FakeJenkins staging({});
    ClusterOptions options;
    options.database = db.conninfo();
    options.instances = 1;
    Cluster cluster(jenkins, options);

    std::string config = cluster.config_yaml();
    const auto at = config.find(jenkins.url());
    ASSERT_NE(at, std::string::npos);
    config.replace(at, jenkins.url().size(), staging.url());
    const auto launched = cluster.launch_other(config);
    Daemon& other = *launched;

    const std::string first = cluster.instance_id(0);
    std::string second;
    ASSERT_TRUE(eventually([&] {
        const auto r = http_request(other.admin_port(), "GET", "/api/v1/status",
                                    {{"Authorization", std::string("Bearer ") + k_admin_token}});
        if (r.status == 200) second = boost::json::parse(r.body).at("instance").as_string().c_str();
        return !second.empty();
    }));
    // The urls in order, each with the instances that have it.
    const bool production_first = jenkins.url() < staging.url();
    const std::string line =
        "jenkins ci is " +
        (production_first
             ? jenkins.url() + " on " + first + " but " + staging.url() + " on " + second
             : staging.url() + " on " + second + " but " + jenkins.url() + " on " + first);
    EXPECT_TRUE(eventually([&] {
        return other.log().find("instances sharing the store disagree: " + line +
                                ". Each "
                                "instance sends the triggers it claims") != std::string::npos;
    })) << other.log();

    const auto status = cluster.status(0);
    ASSERT_TRUE(status.is_object());
    const auto& disagreements = status.at("disagreements").as_array();
    ASSERT_EQ(disagreements.size(), 1u) << status;
    EXPECT_EQ(disagreements[0].as_string(), line);
    const auto r = run_hookrelay(
        {"status", "--admin", "127.0.0.1:" + std::to_string(cluster.at(0).admin_port())},
        {{"HOOKRELAY_ADMIN_TOKEN", k_admin_token}});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("instances disagree on their jenkins entries (each sends the triggers "
                         "it claims to its own url; give every instance the same config):\n  " +
                         line + "\n"),
              std::string::npos)
        << r.out;

    // Once it has left, nothing disagrees.
    ASSERT_EQ(other.stop(SIGTERM), 0) << other.log();
    const auto after = cluster.status(0);
    ASSERT_TRUE(after.is_object());
    EXPECT_TRUE(after.at("disagreements").as_array().empty()) << after;
}

}  // namespace
}  // namespace hookrelay::test::cluster
