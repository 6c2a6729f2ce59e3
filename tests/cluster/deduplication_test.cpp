// Three instances on one PostgreSQL database: a delivery id is deduplicated across all of them,
// and every unique delivery triggers exactly one build while no instance dies.
#include "cluster/cluster.hpp"
#include "store/postgres/pg_test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <iostream>
#include <latch>
#include <map>
#include <numeric>
#include <random>
#include <set>

namespace hookrelay::test::cluster {
namespace {

using namespace std::chrono_literals;
using store::test::TestDatabase;

constexpr std::size_t k_unique = 3'000;
constexpr std::size_t k_repeated = 300;  // 10 %
constexpr std::size_t k_sender_threads = 6;
constexpr std::uint32_t k_seed = 20'240'811;
// Bounds on the whole test's phases: generous for a loaded 2-core CI machine.
constexpr std::chrono::seconds k_delivery_deadline{90};
constexpr std::chrono::seconds k_settle_deadline{20};

double per_second(std::size_t n, std::chrono::steady_clock::duration d) {
    return static_cast<double>(n) / std::chrono::duration<double>(d).count();
}

TEST(ClusterDeduplication, RepeatsOnOtherInstancesAreDuplicatesAndEveryDeliveryBuildsOnce) {
    TestDatabase db;
    FakeJenkins jenkins({});
    ClusterOptions options;
    options.database = db.conninfo();
    options.jenkins_max_in_flight = 16;
    Cluster cluster(jenkins, options);
    Backends backends(cluster);

    // 3,000 deliveries round robin; 300 of them sent again to another instance, a few places
    // after the original in the sending order, so that many repeats race their original.
    std::mt19937 rng(k_seed);
    std::vector<std::pair<std::size_t, Post>> keyed;
    std::vector<std::string> unique;
    for (std::size_t i = 0; i < k_unique; ++i) {
        unique.push_back("cluster-" + std::to_string(i));
        keyed.push_back({i * 10, Post{unique.back(), i % cluster.size()}});
    }
    std::vector<std::size_t> picks(k_unique);
    std::iota(picks.begin(), picks.end(), 0);
    std::shuffle(picks.begin(), picks.end(), rng);
    picks.resize(k_repeated);
    for (const auto i : picks) {
        const auto other = (i % cluster.size() + 1 + rng() % (cluster.size() - 1)) % cluster.size();
        keyed.push_back({(i + rng() % 4) * 10 + 5, Post{unique[i], other}});
    }
    std::sort(keyed.begin(), keyed.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<Post> posts;
    for (auto& [key, post] : keyed) posts.push_back(std::move(post));

    const auto start = std::chrono::steady_clock::now();
    const auto sent = send_all(backends, posts, k_sender_threads, true);
    const auto sent_at = std::chrono::steady_clock::now();

    std::map<std::string, std::map<std::string, int>> answers;  // delivery → answer → count
    std::map<std::size_t, std::size_t> by_instance;
    for (const auto& s : sent) {
        ASSERT_EQ(s.refused + s.unanswered, 0) << s.delivery << ": no instance was down";
        ASSERT_TRUE(s.status == 202 || s.status == 200)
            << s.delivery << ": " << s.status << " " << s.answer << "\n"
            << cluster.logs();
        ++answers[s.delivery][s.answer];
        ++by_instance[s.instance];
    }
    ASSERT_EQ(answers.size(), k_unique);
    std::size_t repeats_seen = 0;
    for (const auto& [delivery, counts] : answers) {
        EXPECT_EQ(counts.count("accepted") ? counts.at("accepted") : 0, 1) << delivery;
        const int duplicates = counts.count("duplicate") ? counts.at("duplicate") : 0;
        repeats_seen += static_cast<std::size_t>(duplicates);
    }
    EXPECT_EQ(repeats_seen, k_repeated) << "every repeat is answered duplicate";
    for (std::size_t i = 0; i < cluster.size(); ++i) {
        EXPECT_GT(by_instance[i], k_unique / cluster.size() / 2) << "instance " << i;
    }

    ASSERT_TRUE(wait_until_built(jenkins, unique, k_delivery_deadline)) << cluster.logs();
    const auto built_at = std::chrono::steady_clock::now();
    // Nothing open anywhere any more, so no late second request can still come.
    ASSERT_TRUE(wait_until_settled(cluster, k_settle_deadline)) << cluster.logs();
    const auto builds = builds_by_delivery(jenkins);
    std::size_t twice = 0;
    for (const auto& [delivery, n] : builds) twice += n > 1 ? 1 : 0;
    EXPECT_EQ(builds.size(), k_unique) << "builds for deliveries nobody sent";
    EXPECT_EQ(twice, 0u) << "deliveries built more than once\n" << cluster.logs();

    const auto accepted_rate = per_second(sent.size(), sent_at - start);
    const auto delivered_rate = per_second(k_unique, built_at - start);
    RecordProperty("webhooks_per_second", std::to_string(accepted_rate));
    RecordProperty("builds_per_second", std::to_string(delivered_rate));
    std::cout << sent.size() << " webhooks answered in "
              << std::chrono::duration<double>(sent_at - start).count() << " s (" << accepted_rate
              << "/s); " << k_unique << " builds by "
              << std::chrono::duration<double>(built_at - start).count() << " s (" << delivered_rate
              << "/s); built twice: " << twice << '\n';
}

TEST(ClusterDeduplication, SameDeliveryAtTwoInstancesAtOnceIsOneAcceptedAndOneDuplicate) {
    constexpr int k_rounds = 20;
    TestDatabase db;
    FakeJenkins jenkins({});
    ClusterOptions options;
    options.database = db.conninfo();
    Cluster cluster(jenkins, options);
    Backends backends(cluster);

    std::vector<std::string> deliveries;
    for (int round = 0; round < k_rounds; ++round) {
        const auto delivery = "at-once-" + std::to_string(round);
        deliveries.push_back(delivery);
        std::latch go(2);
        auto post_to = [&](std::size_t instance) {
            Sender sender(backends, false);
            go.arrive_and_wait();
            return sender.post(delivery, instance);
        };
        auto first = std::async(std::launch::async, post_to, round % cluster.size());
        auto second = std::async(std::launch::async, post_to, (round + 1) % cluster.size());
        std::multiset<std::string> got{first.get().answer, second.get().answer};
        EXPECT_EQ(got, (std::multiset<std::string>{"accepted", "duplicate"})) << delivery;
    }
    ASSERT_TRUE(wait_until_built(jenkins, deliveries, 30s)) << cluster.logs();
    ASSERT_TRUE(wait_until_settled(cluster, 30s)) << cluster.logs();
    for (const auto& [delivery, n] : builds_by_delivery(jenkins)) EXPECT_EQ(n, 1u) << delivery;
}

}  // namespace
}  // namespace hookrelay::test::cluster
