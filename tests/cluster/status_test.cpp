// `hookrelay status` on any instance shows the whole cluster.
#include "cluster/cluster.hpp"
#include "store/postgres/pg_test_support.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace hookrelay::test::cluster
