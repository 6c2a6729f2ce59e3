// A reload of an instance on PostgreSQL names what only a restart changes: the database's
// connection settings (a rotated password in the URL among them) and the dispatch timing, every
// reload until the restart, and takes the rest.
#include "cluster/cluster.hpp"
#include "store/postgres/pg_test_support.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace hookrelay::test::cluster {
namespace {

using store::test::TestDatabase;
namespace json = boost::json;

json::value reload(Cluster& cluster) {
    const auto r = run_hookrelay(
        {"reload", "--json", "--admin", "127.0.0.1:" + std::to_string(cluster.at(0).admin_port())},
        {{"HOOKRELAY_ADMIN_TOKEN", k_admin_token}});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return json::parse(r.out);
}

json::value restart_needed(const json::value& answer) {
    const auto* keys = answer.as_object().if_contains("restart_needed");
    return keys ? *keys : json::array{};
}

void replace(std::string& text, const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
}

TEST(ClusterReload, NamesTheDatabaseAndDispatchSettingsThatWaitForARestart) {
    TestDatabase db;
    FakeJenkins jenkins({});
    ClusterOptions options;
    options.database = db.conninfo();
    options.instances = 1;
    Cluster cluster(jenkins, options);
    const std::string path = cluster.at(0).config_path();

    std::string yaml = cluster.config_yaml();
    replace(yaml, "    statement_timeout: 2s\n", "    statement_timeout: 3s\n");
    write_file(path, yaml);
    EXPECT_EQ(restart_needed(reload(cluster)), json::array{"store.*"});

    // The database's address or password (the URL's value, here from a file) too.
    TempDir secrets;
    write_file(secrets.path() + "/url", db.conninfo() + " application_name=rotated");
    yaml = cluster.config_yaml();
    replace(yaml, "url: \"${env:HOOKRELAY_DATABASE_URL}\"",
            "url: \"${file:" + secrets.path() + "/url}\"");
    write_file(path, yaml);
    EXPECT_EQ(restart_needed(reload(cluster)), json::array{"store.*"});

    // The dispatch timing, and (compared with the start, not the last reload) nothing else.
    yaml = cluster.config_yaml();
    replace(yaml, "  poll_interval: ", "  poll_interval: 1");
    write_file(path, yaml);
    EXPECT_EQ(restart_needed(reload(cluster)), json::array{"dispatch.*"});

    write_file(path, cluster.config_yaml());
    EXPECT_EQ(restart_needed(reload(cluster)), json::array{});
    EXPECT_NE(cluster.at(0).log().find("configuration reloaded from"), std::string::npos);
}

}  // namespace
}  // namespace hookrelay::test::cluster
