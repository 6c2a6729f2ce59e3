// An instance dies (kill -9) while it has triggers claimed and requests to Jenkins in flight:
// the others take its claims over once they expire, every accepted delivery reaches Jenkins, and
// only what the dead instance had claimed may reach it twice.
#include "cluster/cluster.hpp"
#include "store/postgres/pg_test_support.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <csignal>
#include <iostream>

namespace hookrelay::test::cluster {
namespace {

using namespace std::chrono_literals;
using store::test::TestDatabase;
using Steady = std::chrono::steady_clock;

constexpr std::size_t k_deliveries = 120;
constexpr std::size_t k_sender_threads = 3;
// Bounds on the phases: generous for a loaded 2-core CI machine.
constexpr std::chrono::seconds k_deadline{60};
// What a loaded 2-core machine may add to a timing bound the instances keep.
constexpr std::chrono::milliseconds k_scheduling_slack{1'000};

std::vector<std::string> accepted_ids(const std::vector<Sent>& sent) {
    std::vector<std::string> out;
    for (const auto& s : sent) {
        if (s.status == 202) out.push_back(s.delivery);
    }
    return out;
}

// Requests this instance has in flight to Jenkins right now, as its status shows them.
std::int64_t in_flight(Cluster& cluster, std::size_t i) {
    const auto s = cluster.status(i);
    if (!s.is_object()) return 0;
    std::int64_t n = 0;
    for (const auto& j : s.at("jenkins").as_array())
        n += j.at("in_flight").to_number<std::int64_t>();
    return n;
}

TEST(ClusterFailover, KilledInstanceLosesNothingAndOnlyItsClaimsReachJenkinsTwice) {
    TestDatabase db;
    FakeJenkins jenkins({});
    ClusterOptions options;
    options.database = db.conninfo();
    options.jenkins_max_in_flight = 9;
    // The lease (8 s) is long enough to read the dead instance's claims through the admin API
    // (a request per pending delivery, slow on a loaded machine) before anyone may take them
    // over.
    Cluster cluster(jenkins, options);
    Backends backends(cluster);
    // A slow Jenkins: with 9 requests in flight at most, the 120 builds take about 4 s, and
    // every instance has requests in flight most of that time.
    jenkins.set_answer_delay(300ms);

    std::vector<Post> posts;
    for (std::size_t i = 0; i < k_deliveries; ++i) {
        posts.push_back({"failover-" + std::to_string(i), i % cluster.size()});
    }
    const auto sent = send_all(backends, posts, k_sender_threads, true);
    const auto accepted = accepted_ids(sent);
    ASSERT_EQ(accepted.size(), k_deliveries) << cluster.logs();

    // The first instance seen with requests in flight dies.
    std::size_t victim_index = 0;
    ASSERT_TRUE(eventually(
        [&] {
            for (std::size_t i = 0; i < cluster.size(); ++i) {
                if (in_flight(cluster, i) > 0) {
                    victim_index = i;
                    return true;
                }
            }
            return false;
        },
        k_deadline))
        << cluster.logs();
    const auto victim = cluster.instance_id(victim_index);
    const auto killed_at = Steady::now();
    cluster.kill(victim_index);
    // Its claims stay in the store, untouched, until they expire: at least claim_lease minus
    // one renew interval after its death.
    const auto claimed = cluster.claimed_by((victim_index + 1) % cluster.size(), victim);
    const auto looked = Steady::now() - killed_at;
    ASSERT_LT(looked, options.timing.claim_lease - options.timing.claim_renew_interval)
        << "the claims were read too late to be the dead instance's";
    ASSERT_FALSE(claimed.empty()) << "the killed instance had nothing claimed";

    ASSERT_TRUE(wait_until_built(jenkins, accepted, k_deadline)) << cluster.logs();
    ASSERT_TRUE(wait_until_settled(cluster, k_deadline)) << cluster.logs();

    std::size_t twice = 0;
    for (const auto& [delivery, n] : builds_by_delivery(jenkins)) {
        if (n < 2) continue;
        ++twice;
        EXPECT_TRUE(claimed.contains(delivery))
            << delivery << " reached Jenkins " << n
            << " times but was not claimed by the killed instance";
    }
    std::size_t abandoned = 0;
    for (const auto& r : jenkins.requests()) abandoned += r.abandoned ? 1 : 0;
    EXPECT_LE(twice, claimed.size());
    RecordProperty("killed_instance_claims", static_cast<int>(claimed.size()));
    RecordProperty("reached_jenkins_twice", static_cast<int>(twice));
    std::cout << k_deliveries << " accepted, all reached Jenkins; the killed instance had "
              << claimed.size() << " claim(s), " << abandoned
              << " of its requests were cut off in flight; " << twice
              << " deliveries reached Jenkins twice\n";
}

TEST(ClusterFailover, DeadInstanceClaimsAreAttemptedElsewhereWithinLeasePlusPoll) {
    TestDatabase db;
    FakeJenkins jenkins({});
    ClusterOptions options;
    options.database = db.conninfo();
    options.jenkins_max_in_flight = 6;
    Cluster cluster(jenkins, options);
    Backends backends(cluster);
    // Each instance checks its config against Jenkins once it has started; those requests end
    // first. One still on its way when Jenkins starts holding every request would count in
    // in_flight() below, whose wait would then last until its read timeout: the builds' requests
    // time out then too, and their triggers are no longer claimed when the instance dies.
    ASSERT_TRUE(eventually(
        [&] {
            for (std::size_t i = 0; i < cluster.size(); ++i) {
                if (cluster.at(i).log().find("config check:") == std::string::npos) return false;
            }
            return true;
        },
        k_deadline))
        << cluster.logs();
    // Every request stays in flight until its client goes away.
    jenkins.set_answer_delay(k_deadline);

    std::vector<Post> posts;
    for (std::size_t i = 0; i < options.jenkins_max_in_flight; ++i) {
        posts.push_back({"lease-" + std::to_string(i), i % cluster.size()});
    }
    ASSERT_EQ(accepted_ids(send_all(backends, posts, 1, true)).size(), posts.size());
    ASSERT_TRUE(eventually([&] { return jenkins.in_flight() == posts.size(); }, k_deadline))
        << cluster.logs();

    // The instance with the most claims dies.
    std::size_t victim = 0;
    std::set<std::string> claimed;
    for (std::size_t i = 0; i < cluster.size(); ++i) {
        auto mine = cluster.claimed_by((i + 1) % cluster.size(), cluster.instance_id(i));
        if (mine.size() > claimed.size()) {
            victim = i;
            claimed = std::move(mine);
        }
    }
    ASSERT_FALSE(claimed.empty());
    jenkins.set_answer_delay(0ms);
    const auto killed_at = Steady::now();
    cluster.kill(victim);

    // Its claims expire at most claim_lease after its last renewal (before its death); an
    // instance looks for due work at least every poll_interval. One renew interval on top covers
    // the request itself and this test's own polling, and k_scheduling_slack a loaded machine
    // that runs the instances late (the bound seen here: about claim_lease + 50 ms).
    const auto& t = options.timing;
    const auto deadline =
        t.claim_lease + t.poll_interval + t.claim_renew_interval + k_scheduling_slack;
    std::vector<std::string> claimed_ids(claimed.begin(), claimed.end());
    const bool resent = eventually(
        [&] {
            const auto builds = builds_by_delivery(jenkins);
            return std::all_of(claimed_ids.begin(), claimed_ids.end(), [&](const auto& d) {
                return builds.contains(d) && builds.at(d) >= 2;
            });
        },
        std::chrono::ceil<std::chrono::milliseconds>(deadline - (Steady::now() - killed_at)));
    Steady::duration slowest{0};
    for (const auto& r : jenkins.requests()) {
        if (claimed.contains(delivery_of(r)) && !r.abandoned) {
            slowest = std::max(slowest, r.at - killed_at);
        }
    }
    EXPECT_TRUE(resent) << "the dead instance's " << claimed.size()
                        << " claim(s) were not attempted again within claim_lease ("
                        << t.claim_lease.count() << " ms) + poll_interval ("
                        << t.poll_interval.count() << " ms) + claim_renew_interval + "
                        << k_scheduling_slack.count() << " ms\n"
                        << cluster.logs();
    std::cout << claimed.size() << " claim(s) of the killed instance attempted elsewhere "
              << std::chrono::duration_cast<std::chrono::milliseconds>(slowest).count()
              << " ms after its death (claim_lease " << t.claim_lease.count()
              << " ms, poll_interval " << t.poll_interval.count() << " ms)\n";
    // The survivors' requests are still held open: cut them so the instances stop at once.
    jenkins.stop();
}

}  // namespace
}  // namespace hookrelay::test::cluster
