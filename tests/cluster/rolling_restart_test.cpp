// Every instance restarted one after the other (SIGTERM, then a new process) under a steady
// load, behind a "load balancer" that tries the next instance when a connection is refused or a
// request goes unanswered: no webhook is lost, and each reaches Jenkins.
#include "cluster/cluster.hpp"
#include "store/postgres/pg_test_support.hpp"

#include <gtest/gtest.h>

#include <iostream>

namespace hookrelay::test::cluster {
namespace {

using namespace std::chrono_literals;
using store::test::TestDatabase;

constexpr std::size_t k_sender_threads = 3;
constexpr std::chrono::milliseconds k_pace{10};
// How many webhooks a restarted instance answers before the next one goes.
constexpr std::size_t k_answered_by_new = 10;
// Bounds on the phases: generous for a loaded 2-core CI machine.
constexpr std::chrono::seconds k_deadline{60};

TEST(ClusterRollingRestart, EveryInstanceRestartedUnderLoadLosesNoWebhook) {
    TestDatabase db;
    FakeJenkins jenkins({});
    // A slow Jenkins: instances stop with requests to it in flight.
    jenkins.set_answer_delay(20ms);
    ClusterOptions options;
    options.database = db.conninfo();
    Cluster cluster(jenkins, options);
    Backends backends(cluster);

    SteadyLoad load(backends, "rolling", k_sender_threads, k_pace, true);
    for (std::size_t i = 0; i < cluster.size(); ++i) {
        const auto before = load.outcomes().size();
        ASSERT_TRUE(eventually([&] { return load.outcomes().size() >= before + 20; }, k_deadline));
        EXPECT_EQ(cluster.stop(i), 0) << "instance " << i << " did not stop cleanly\n"
                                      << cluster.logs();
        cluster.start(i);
        backends.set(i, cluster.at(i).port());
        const auto mark = load.outcomes().size();  // answers from here on: the new process
        ASSERT_TRUE(eventually(
            [&] {
                const auto sent = load.outcomes();
                std::size_t n = 0;
                for (auto s = sent.begin() + static_cast<std::ptrdiff_t>(mark); s != sent.end();
                     ++s) {
                    n += s->instance == i ? 1 : 0;
                }
                return n >= k_answered_by_new;
            },
            k_deadline))
            << "the restarted instance " << i << " answers no webhook\n"
            << cluster.logs();
    }
    const auto sent = load.stop();

    std::vector<std::string> deliveries;
    int refused = 0;
    int unanswered = 0;
    for (const auto& s : sent) {
        // Accepted, or a duplicate: a request whose answer was lost in the restart and that the
        // sender sent again elsewhere with the same delivery id.
        EXPECT_TRUE((s.status == 202 && s.answer == "accepted") ||
                    (s.status == 200 && s.answer == "duplicate"))
            << s.delivery << ": " << s.status << " " << s.answer;
        deliveries.push_back(s.delivery);
        refused += s.refused;
        unanswered += s.unanswered;
    }
    ASSERT_TRUE(wait_until_built(jenkins, deliveries, k_deadline)) << cluster.logs();
    ASSERT_TRUE(wait_until_settled(cluster, k_deadline)) << cluster.logs();
    std::cout << sent.size() << " webhooks during " << cluster.size()
              << " restarts, every one accepted and built; " << refused
              << " refused connection(s) and " << unanswered
              << " unanswered request(s) went to the next instance\n";
}

}  // namespace
}  // namespace hookrelay::test::cluster
