// PostgreSQL restarts in the middle of a burst: while it is down the instances answer 503 (the
// forge keeps the delivery and sends it again), and every delivery answered 202, before, during
// or after, reaches Jenkins once the database is back.
#include "cluster/cluster.hpp"
#include "store/postgres/pg_test_support.hpp"

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include <iostream>
#include <set>
#include <sstream>
#include <string>

namespace hookrelay::test::cluster {
namespace {

using namespace std::chrono_literals;
using store::test::PrivateServer;

constexpr std::size_t k_sender_threads = 3;
constexpr std::chrono::milliseconds k_pace{10};
// Bounds on the phases: generous for a loaded 2-core CI machine.
constexpr std::chrono::seconds k_deadline{60};

// The hookrelay_backlog lines of instance i's /metrics; "" when it does not answer 200.
std::string backlog_gauges(Cluster& cluster, std::size_t i) {
    const auto r = http_request(cluster.at(i).admin_port(), "GET", "/metrics",
                                {{"Authorization", std::string("Bearer ") + k_admin_token}});
    if (r.status != 200) return "";
    std::string out;
    std::istringstream in(r.body);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("hookrelay_backlog{", 0) == 0) out += line + "\n";
    }
    return out;
}

std::size_t count_status(const std::vector<Sent>& sent, unsigned status) {
    std::size_t n = 0;
    for (const auto& s : sent) n += s.status == status ? 1 : 0;
    return n;
}

TEST(ClusterDatabaseRestart, AnswersUnavailableWhileDownAndDeliversEveryAcceptedWebhook) {
    PrivateServer server;  // a server of its own: this test stops it
    FakeJenkins jenkins({});
    ClusterOptions options;
    options.database = server.conninfo();
    Cluster cluster(jenkins, options);
    Backends backends(cluster);

    SteadyLoad load(backends, "pg-restart", k_sender_threads, k_pace, true);
    // A burst under way: some webhooks accepted before the database goes.
    ASSERT_TRUE(eventually([&] { return count_status(load.outcomes(), 202) >= 30; }, k_deadline))
        << cluster.logs();

    const auto gauges_up = backlog_gauges(cluster, 0);
    ASSERT_NE(gauges_up, "") << cluster.logs();
    server.halt();
    const auto accepted_before = count_status(load.outcomes(), 202);
    // While it is down the webhooks are answered 503, not accepted and not left hanging.
    const bool refused = eventually(
        [&] { return count_status(load.outcomes(), 503) >= 3 * k_sender_threads; }, k_deadline);
    // The backlog cannot be counted then: the status says null, and /metrics keeps the gauge as
    // last read, rather than 0 (drained).
    const auto down_status = cluster.status(0);
    const auto gauges_down = backlog_gauges(cluster, 0);
    server.start_again();
    ASSERT_TRUE(refused) << "no 503 while the database was down\n" << cluster.logs();
    ASSERT_TRUE(down_status.is_object()) << cluster.logs();
    for (const auto& j : down_status.at("jenkins").as_array()) {
        EXPECT_TRUE(j.at("backlog").is_null()) << boost::json::serialize(down_status);
    }
    EXPECT_EQ(gauges_down, gauges_up);

    // Back: webhooks are accepted again on every instance.
    ASSERT_TRUE(eventually(
        [&] {
            std::set<std::size_t> accepting;
            const auto sent = load.outcomes();
            for (auto s = sent.rbegin(); s != sent.rend() && accepting.size() < cluster.size();
                 ++s) {
                if (s->status != 202) break;
                accepting.insert(s->instance);
            }
            return accepting.size() == cluster.size();
        },
        k_deadline))
        << "webhooks are not accepted again on every instance after the restart\n"
        << cluster.logs();
    const auto sent = load.stop();

    std::vector<std::string> accepted;
    std::size_t unavailable = 0;
    for (const auto& s : sent) {
        if (s.status == 202) {
            accepted.push_back(s.delivery);
        } else {
            EXPECT_EQ(s.status, 503u) << s.delivery << ": " << s.answer;
            EXPECT_EQ(s.answer, "unavailable") << s.delivery;
            ++unavailable;
        }
    }
    ASSERT_TRUE(wait_until_built(jenkins, accepted, k_deadline)) << cluster.logs();
    ASSERT_TRUE(wait_until_settled(cluster, k_deadline)) << cluster.logs();
    std::cout << sent.size() << " webhooks: " << accepted.size() << " accepted (" << accepted_before
              << " before the database went down), " << unavailable
              << " answered 503 while it was down; every accepted one reached Jenkins\n";
}

}  // namespace
}  // namespace hookrelay::test::cluster
