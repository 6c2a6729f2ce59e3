// Memory of the real daemon on large signed bodies: the peak stays under the ceiling documented
// in docs/operations.md ("Memory ceilings"), and memory goes back to the system after a burst.
// Peak RSS is read from /proc/<pid>/status (VmHWM), as an operator would.
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <fstream>
#include <optional>

namespace hookrelay::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* k_secret = "memory-test-secret-2f81";
constexpr std::size_t k_mib = 1024 * 1024;
// The shipped defaults: body_limit 25 MiB, parse_memory_limit 4 x body_limit, two threads.
constexpr std::size_t k_body_limit = 25 * k_mib;
constexpr std::size_t k_parse_memory_limit = 4 * k_body_limit;
// Room for what the ceiling does not itemize (stacks, the rendered answer, allocator slack).
constexpr std::size_t k_slack = 16 * k_mib;
constexpr std::chrono::seconds k_post_deadline{60};
// jemalloc purges freed pages over its dirty_decay_ms (10 s) once they are unused.
constexpr std::chrono::seconds k_release_deadline{40};

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool k_sanitized = true;  // shadow memory and quarantines: RSS means something else
#else
constexpr bool k_sanitized = false;
#endif

const char* k_config = R"(listen: 127.0.0.1:0
state_dir: ./var
log: {level: info}
admin: {enabled: false}
server: {body_limit: 25MiB, threads: 2}
sources:
  github: {provider: github, secret: "${env:GH_SECRET}"}
jenkins:
  ci: {url: "http://127.0.0.1:9/"}
rules:
  - name: branches
    when: {event: push}
    trigger: {jenkins: ci, job: "{{ repository.name }}/{{ branch }}"}
)";

Daemon::Options options() {
    Daemon::Options o;
    o.config_yaml = k_config;
    o.env = {{"GH_SECRET", k_secret}};
    return o;
}

// A field of /proc/<pid>/status in bytes ("VmHWM", "VmRSS").
std::size_t status_bytes(int pid, const std::string& field) {
    std::ifstream in(fmt::format("/proc/{}/status", pid));
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(field + ":", 0) == 0)
            return std::stoull(line.substr(field.size() + 1)) * 1024;
    }
    ADD_FAILURE() << field << " not in /proc/" << pid << "/status";
    return 0;
}

// Whether the process has a file mapped whose path contains `name` (a shared library).
bool maps(int pid, const std::string& name) {
    std::ifstream in(fmt::format("/proc/{}/maps", pid));
    for (std::string line; std::getline(in, line);) {
        if (line.find(name) != std::string::npos) return true;
    }
    return false;
}

HttpResult post(const Daemon& daemon, const std::string& delivery, const std::string& body) {
    const Headers h = {{"Content-Type", "application/json"},
                       {"X-GitHub-Event", "push"},
                       {"X-GitHub-Delivery", delivery},
                       {"X-Hub-Signature-256", github_signature(k_secret, body)}};
    return http_request(daemon.port(), "POST", "/hooks/github", h, body, k_post_deadline);
}

// 24 MiB of {"a":[0,0,...]}: the JSON whose parsed form is largest per body byte (two bytes
// become a 24-byte value, and more on the parser's stack while the array is built).
std::string small_elements() {
    const std::size_t count = 12 * k_mib;
    std::string body = R"({"a":[0)";
    body.reserve(count * 2 + 8);
    for (std::size_t i = 1; i < count; ++i) body += ",0";
    return body + "]}";
}

// A push at GitHub's limits: 2,048 commits (its cap) of 450 distinct files each, just under its
// 25 MB payload cap, on the real push fixture (bench/memory/payloads.py github-push-max).
std::string maximal_github_push() {
    auto push = json::parse(load_fixture("github", "push-branch-update").body).as_object();
    const auto commit = push.at("commits").at(0).as_object();
    json::array commits;
    for (int c = 0; c < 2048; ++c) {
        auto copy = commit;
        json::array lists[3];
        for (int i = 0; i < 450; ++i) {
            lists[i / 150].emplace_back(fmt::format("src/c{:04}/f{:03}_xxxxxx.go", c, i));
        }
        copy["added"] = std::move(lists[0]);
        copy["removed"] = std::move(lists[1]);
        copy["modified"] = std::move(lists[2]);
        commits.emplace_back(std::move(copy));
    }
    push["head_commit"] = commits.back();
    push["commits"] = std::move(commits);
    return json::serialize(push);
}

class Memory : public ::testing::Test {
  protected:
    void SetUp() override {
        if (k_sanitized) GTEST_SKIP() << "RSS is not comparable under sanitizers";
        daemon_.emplace(options());
        idle_ = status_bytes(daemon_->pid(), "VmRSS");
    }

    // The ceiling for one delivery at a time (docs/operations.md, "Memory ceilings"): the idle
    // daemon, the body as received, one parse, and the store's copy of the body as it writes
    // the row.
    std::size_t one_delivery_ceiling() const {
        return idle_ + k_body_limit + k_parse_memory_limit + k_body_limit + k_slack;
    }

    std::optional<Daemon> daemon_;
    std::size_t idle_ = 0;
};

TEST_F(Memory, SmallElementBodyIsRefusedWithinTheParseCeiling) {
    const auto body = small_elements();
    const auto r = post(*daemon_, "small-elements", body);
    ASSERT_EQ(r.status, 413u) << r.body << r.error;
    EXPECT_NE(r.body.find("payload too large to parse"), std::string::npos) << r.body;

    const auto peak = status_bytes(daemon_->pid(), "VmHWM");
    EXPECT_LT(peak, one_delivery_ceiling())
        << "peak " << peak / k_mib << " MiB, idle " << idle_ / k_mib << " MiB";
}

TEST_F(Memory, MaximalGithubPushIsAcceptedWithinTheCeiling) {
    const auto body = maximal_github_push();
    ASSERT_LE(body.size(), k_body_limit);
    const auto r = post(*daemon_, "github-push-max", body);
    ASSERT_EQ(r.status, 202u) << r.body.substr(0, 300) << r.error;

    const auto peak = status_bytes(daemon_->pid(), "VmHWM");
    EXPECT_LT(peak, one_delivery_ceiling())
        << "peak " << peak / k_mib << " MiB, idle " << idle_ / k_mib << " MiB";
}

TEST_F(Memory, MemoryGoesBackToTheSystemAfterABurst) {
    // Returning memory is jemalloc's work (src/jemalloc_conf.cpp); a build without it (the
    // library was missing) keeps what glibc keeps.
    if (!maps(daemon_->pid(), "libjemalloc")) GTEST_SKIP() << "the daemon does not use jemalloc";
    const auto body = maximal_github_push();
    for (const auto* id : {"burst-1", "burst-2", "burst-3"}) {
        ASSERT_EQ(post(*daemon_, id, body).status, 202u);
    }
    const auto peak = status_bytes(daemon_->pid(), "VmHWM");
    ASSERT_GT(peak, idle_ + 64 * k_mib) << "the burst should have needed memory";

    // Idle again: no allocation drives the purge, only jemalloc's background thread.
    std::size_t rss = 0;
    EXPECT_TRUE(eventually(
        [&] {
            rss = status_bytes(daemon_->pid(), "VmRSS");
            return rss < idle_ + 32 * k_mib;
        },
        k_release_deadline))
        << "still " << rss / k_mib << " MiB resident (idle " << idle_ / k_mib << " MiB, peak "
        << peak / k_mib << " MiB)";
}

}  // namespace
}  // namespace hookrelay::test
