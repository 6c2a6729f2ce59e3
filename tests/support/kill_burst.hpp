// kill -9 in the middle of a burst, many times, on one store: the harness behind the durability
// tests (SQLite in tests/integration, PostgreSQL in tests/cluster). Several threads post signed
// GitHub pushes with unique delivery ids as fast as they can on kept-alive connections; after a
// varying number of 202s in the round the daemon is killed with requests still in flight. Only a
// 202 counts as accepted: a request that got no answer or a connection error does not. Between
// rounds the fake Jenkins is up, down, slow or answering 503, so that the kill also finds
// triggers pending, retrying and in flight to Jenkins. Header-only: both test executables
// include it.
#pragma once

#include "fakes/fake_jenkins.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace hookrelay::test::kill_burst {

/// What the fake Jenkins does during a round.
enum class JenkinsMode {
    up,          ///< answers at once
    down,        ///< refuses connections: every trigger stays pending
    slow,        ///< answers after Options::slow_answer: triggers in flight at the kill
    restarting,  ///< answers 503 to everything: triggers retrying at the kill
};

inline const char* to_string(JenkinsMode m) {
    switch (m) {
        case JenkinsMode::up:
            return "up";
        case JenkinsMode::down:
            return "down";
        case JenkinsMode::slow:
            return "slow";
        case JenkinsMode::restarting:
            return "503";
    }
    return "?";
}

struct Options {
    std::string secret;            ///< the GitHub source's webhook secret
    std::string prefix = "burst";  ///< delivery ids are <prefix>-r<round>-t<thread>-<n>
    std::size_t rounds = 12;
    std::size_t threads = 4;
    /// Round r kills after kill_after[r % size] 202s of that round.
    std::vector<std::size_t> kill_after{40, 260, 7, 400, 150, 1, 320, 90, 500, 25, 200, 350};
    /// Jenkins during round r: modes[r % size]. The final restart always has it up.
    std::vector<JenkinsMode> modes{JenkinsMode::up, JenkinsMode::down, JenkinsMode::slow,
                                   JenkinsMode::restarting};
    std::chrono::milliseconds slow_answer{300};
    /// Posts per round at most (202 or not); the threads stop posting there.
    std::size_t max_posts_per_round = 1'000;
    /// A round kills when its 202s reached kill_after, or at the latest after this.
    std::chrono::milliseconds round_deadline{6'000};
    /// One post's deadline.
    std::chrono::milliseconds post_deadline{5'000};
};

/// The counts of one round.
struct Round {
    JenkinsMode mode = JenkinsMode::up;
    std::size_t kill_after = 0;
    std::size_t posts = 0;     ///< requests sent
    std::size_t accepted = 0;  ///< answered 202
    /// No answer: in flight when the daemon died (or sent on a connection it accepted while
    /// dying).
    std::size_t unanswered = 0;
    std::size_t other = 0;  ///< answered, but not 202
};

struct Result {
    std::vector<std::string> accepted;  ///< every delivery id answered 202, all rounds
    std::vector<Round> rounds;
    std::size_t kills = 0;
    std::size_t posts() const {
        std::size_t n = 0;
        for (const auto& r : rounds) n += r.posts;
        return n;
    }
    std::size_t unanswered() const {
        std::size_t n = 0;
        for (const auto& r : rounds) n += r.unanswered;
        return n;
    }
};

/// Puts the fake Jenkins into `mode` (from any other mode).
inline void set_mode(FakeJenkins& jenkins, JenkinsMode mode, std::chrono::milliseconds slow) {
    if (mode == JenkinsMode::down) {
        jenkins.stop();
        return;
    }
    jenkins.start();
    jenkins.set_restarting(mode == JenkinsMode::restarting);
    jenkins.set_answer_delay(mode == JenkinsMode::slow ? slow : std::chrono::milliseconds(0));
}

/// The delivery id in a build request's cause ("... (delivery <id>, rule <name>)"); "" if none.
inline std::string delivery_in_cause(const std::string& cause) {
    const std::string marker = "(delivery ";
    const auto from = cause.find(marker);
    if (from == std::string::npos) return "";
    const auto start = from + marker.size();
    const auto end = cause.find(',', start);
    return end == std::string::npos ? "" : cause.substr(start, end - start);
}

/// Build requests Jenkins answered 201/303 (a queued build), by delivery id.
inline std::map<std::string, std::size_t> built_by_delivery(const FakeJenkins& jenkins) {
    std::map<std::string, std::size_t> out;
    for (const auto& b : jenkins.builds()) ++out[delivery_in_cause(b.cause)];
    return out;
}

/// The ids in `accepted` that Jenkins has no build for.
inline std::vector<std::string> missing(const FakeJenkins& jenkins,
                                        const std::vector<std::string>& accepted) {
    const auto built = built_by_delivery(jenkins);
    std::vector<std::string> out;
    for (const auto& id : accepted) {
        if (!built.contains(id)) out.push_back(id);
    }
    return out;
}

/// Waits (woken by Jenkins' requests, rechecking at least every `recheck`) until Jenkins built
/// every id in `accepted` or `deadline` passed; answers whether it did.
inline bool wait_until_built(FakeJenkins& jenkins, const std::vector<std::string>& accepted,
                             std::chrono::milliseconds deadline,
                             std::chrono::milliseconds recheck = std::chrono::milliseconds(200)) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    for (;;) {
        const auto seen = jenkins.requests().size();
        if (missing(jenkins, accepted).empty()) return true;
        const auto now = std::chrono::steady_clock::now();
        if (now >= end) return false;
        jenkins.wait_for_requests(
            seen + 1, std::min(std::chrono::ceil<std::chrono::milliseconds>(end - now), recheck));
    }
}

/// Runs the rounds. `start` starts the daemon on the shared store and returns its webhook port;
/// `kill` kills it with SIGKILL and waits for it to be gone. Leaves the daemon killed and
/// Jenkins in the last round's mode.
inline Result run(FakeJenkins& jenkins, const Options& o,
                  const std::function<std::uint16_t()>& start, const std::function<void()>& kill) {
    Result result;
    std::mutex mutex;  // result.accepted
    for (std::size_t round = 0; round < o.rounds; ++round) {
        Round r;
        r.mode = o.modes[round % o.modes.size()];
        r.kill_after = o.kill_after[round % o.kill_after.size()];
        set_mode(jenkins, r.mode, o.slow_answer);
        const std::uint16_t port = start();

        std::atomic<bool> killed{false};
        std::atomic<std::size_t> posts{0}, accepted{0}, unanswered{0}, other{0};
        std::vector<std::thread> senders;
        for (std::size_t t = 0; t < o.threads; ++t) {
            senders.emplace_back([&, t] {
                const Fixture push = github_push("");
                const std::string signature = github_signature(o.secret, push.body);
                std::unique_ptr<HttpConnection> connection;
                for (std::size_t n = 0; !killed;) {
                    if (posts >= o.max_posts_per_round) {
                        // Enough posted; wait for the kill without posting (and without a
                        // sleep of our own: the main thread ends the round).
                        std::this_thread::yield();
                        continue;
                    }
                    if (!connection) {
                        try {
                            connection = std::make_unique<HttpConnection>(port);
                        } catch (const boost::system::system_error&) {
                            continue;  // the daemon is gone: the round is ending
                        }
                    }
                    const std::string id = o.prefix + "-r" + std::to_string(round) + "-t" +
                                           std::to_string(t) + "-" + std::to_string(n++);
                    Headers headers;
                    for (const auto& [k, v] : push.headers) {
                        headers.emplace_back(k, k == "X-GitHub-Delivery" ? id : v);
                    }
                    headers.emplace_back("X-Hub-Signature-256", signature);
                    ++posts;
                    const auto answer = connection->request("POST", "/hooks/github", headers,
                                                            push.body, o.post_deadline);
                    if (answer.status == 202) {
                        ++accepted;
                        std::lock_guard lock(mutex);
                        result.accepted.push_back(id);
                    } else if (answer.status == 0) {
                        ++unanswered;
                    } else {
                        ++other;
                    }
                    if (answer.status == 0 || !answer.keep_alive) connection.reset();
                }
            });
        }
        eventually([&] { return accepted >= r.kill_after || posts >= o.max_posts_per_round; },
                   o.round_deadline);
        try {
            kill();
        } catch (...) {
            killed = true;
            for (auto& s : senders) s.join();
            throw;
        }
        killed = true;
        ++result.kills;
        for (auto& s : senders) s.join();
        r.posts = posts;
        r.accepted = accepted;
        r.unanswered = unanswered;
        r.other = other;
        result.rounds.push_back(r);
    }
    return result;
}

/// What Jenkins built of the accepted deliveries, after the last restart.
struct Outcome {
    std::size_t accepted = 0;           ///< distinct delivery ids answered 202
    std::size_t accepted_twice = 0;     ///< ids answered 202 more than once (never expected)
    std::vector<std::string> lost;      ///< accepted, never built
    std::size_t duplicates = 0;         ///< build requests beyond the first for an accepted id
    std::size_t built_without_202 = 0;  ///< built, but its post got no answer (killed)

    /// The counts in one line.
    std::string summary(const Result& result) const {
        return "kills " + std::to_string(result.kills) + ", posted " +
               std::to_string(result.posts()) + ", without an answer " +
               std::to_string(result.unanswered()) + ", accepted (202) " +
               std::to_string(accepted) + ", built " + std::to_string(accepted - lost.size()) +
               ", missing " + std::to_string(lost.size()) + ", duplicate builds " +
               std::to_string(duplicates) + ", built without a 202 " +
               std::to_string(built_without_202);
    }
    /// Up to `n` of the lost ids.
    std::string lost_sample(std::size_t n = 20) const {
        std::string out;
        for (std::size_t i = 0; i < lost.size() && i < n; ++i) out += lost[i] + " ";
        return out;
    }
};

/// Waits until Jenkins built every accepted delivery of `result` (or `deadline` passed) and
/// counts what it built.
inline Outcome drain(FakeJenkins& jenkins, const Result& result,
                     std::chrono::milliseconds deadline) {
    wait_until_built(jenkins, result.accepted, deadline);
    Outcome out;
    const std::set<std::string> accepted(result.accepted.begin(), result.accepted.end());
    out.accepted = accepted.size();
    out.accepted_twice = result.accepted.size() - accepted.size();
    const auto built = built_by_delivery(jenkins);
    for (const auto& id : accepted) {
        if (!built.contains(id)) out.lost.push_back(id);
    }
    for (const auto& [id, n] : built) {
        if (accepted.contains(id))
            out.duplicates += n - 1;
        else
            ++out.built_without_202;
    }
    return out;
}

/// One line per round and the totals, for the test output.
inline std::string describe(const Result& result) {
    std::string out;
    for (std::size_t i = 0; i < result.rounds.size(); ++i) {
        const auto& r = result.rounds[i];
        out += "round " + std::to_string(i) + " (Jenkins " + to_string(r.mode) + ", kill after " +
               std::to_string(r.kill_after) + "): posted " + std::to_string(r.posts) +
               ", accepted " + std::to_string(r.accepted) + ", without an answer " +
               std::to_string(r.unanswered) + ", other answers " + std::to_string(r.other) + "\n";
    }
    return out;
}

}  // namespace hookrelay::test::kill_burst
