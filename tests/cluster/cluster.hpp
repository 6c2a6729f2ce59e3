// Several real hookrelay instances sharing one PostgreSQL database, delivering to one fake
// Jenkins, and a sender that spreads signed GitHub pushes over them the way a load balancer does.
// Everything on 127.0.0.1; every wait has a deadline.
#pragma once

#include "fakes/fake_jenkins.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <boost/json/value.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace hookrelay::test::cluster {

inline constexpr const char* k_secret = "cluster-test-secret-4c1f";
inline constexpr const char* k_admin_token = "cluster-test-admin-93ad";

/// The dispatch timing every instance runs with. Tests derive their deadlines from it. The lease
/// is one the daemon does not warn about (at least store_timeout plus the longer of twice the
/// renew interval and store_timeout): with a shorter one, a store slow to answer on a loaded
/// machine lets the lease of a request still at Jenkins run out, another instance sends its
/// trigger again, and "built once" no longer holds. Cluster refuses to start such a timing.
/// store_timeout leaves room over the database's statement_timeout (2 s) for the wait before a
/// statement: a webhook answered 503 would fail the tests that expect none.
struct Timing {
    std::chrono::milliseconds poll_interval{250};
    std::chrono::milliseconds claim_lease{8'000};
    std::chrono::milliseconds claim_renew_interval{500};
    std::chrono::milliseconds store_timeout{4'000};  ///< server.store_timeout
};

struct ClusterOptions {
    std::string database;  ///< libpq conninfo of the database every instance shares
    std::size_t instances = 3;
    unsigned jenkins_max_in_flight = 8;  ///< the Jenkins entry's max_in_flight
    /// More keys of the Jenkins entry, one `key: value` per line (e.g. follow timing).
    std::vector<std::string> jenkins_keys;
    /// The `rules:` list ("" = one rule `builds` triggering job `build` on every push).
    std::string rules;
    Timing timing;
};

/// N instances of `hookrelay run` on one database; instance i is restarted in place (a new
/// process with new ports). The fake Jenkins has the job `build` the rule triggers.
class Cluster {
  public:
    /// Starts every instance at once (they migrate the fresh database concurrently) and waits
    /// until each listens. Throws when one does not start.
    Cluster(FakeJenkins& jenkins, ClusterOptions options);
    ~Cluster();
    Cluster(const Cluster&) = delete;
    Cluster& operator=(const Cluster&) = delete;

    std::size_t size() const { return current_.size(); }
    const ClusterOptions& options() const { return options_; }
    /// The running instance i (throws when it is down).
    Daemon& at(std::size_t i);
    bool up(std::size_t i) const { return current_.at(i) != nullptr; }
    /// Starts instance i again after stop() or kill().
    void start(std::size_t i);
    /// kill -9 instance i.
    void kill(std::size_t i);
    /// SIGTERM to instance i; waits for it to exit and returns its exit code.
    int stop(std::size_t i);

    /// GET /api/v1/status on instance i; null when it does not answer 200.
    boost::json::value status(std::size_t i);
    /// Instance i's id in the store (from its status).
    std::string instance_id(std::size_t i);
    /// The deliveries whose trigger is claimed by instance `owner` (an instance id; its claims
    /// stay in the store after it died, until another instance takes them over), as instance
    /// `via`'s admin API shows them. Throws when the API does not answer.
    std::set<std::string> claimed_by(std::size_t via, const std::string& owner);
    /// The tail of every instance's log, this run's and earlier ones', for failure messages.
    std::string logs() const;
    /// The config every instance runs on.
    const std::string& config_yaml() const { return config_; }
    /// One more instance on the same database and secrets but with `config_yaml` (a config that
    /// differs from the others'), not one of the cluster's: the caller owns it.
    std::unique_ptr<Daemon> launch_other(std::string config_yaml) const;

  private:
    ClusterOptions options_;
    std::string config_;
    std::vector<std::unique_ptr<Daemon>> current_;
    std::vector<std::unique_ptr<Daemon>> retired_;  // stopped or killed: kept for their logs
    std::unique_ptr<Daemon> launch() const { return launch_other(config_); }
};

/// The build requests Jenkins received (answered or abandoned), by the delivery id in their
/// cause.
std::map<std::string, std::size_t> builds_by_delivery(const FakeJenkins& jenkins);
/// The delivery id in a build request's cause ("" when none).
std::string delivery_of(const ReceivedRequest& request);

/// Waits (on Jenkins' own requests, with `deadline`) until Jenkins received a build request
/// for every delivery in `deliveries`; answers whether it did.
bool wait_until_built(FakeJenkins& jenkins, const std::vector<std::string>& deliveries,
                      std::chrono::milliseconds deadline);

/// Waits until no instance has anything open: every instance's status says backlog 0 and
/// nothing in flight for every Jenkins. Answers whether that happened within `deadline`.
bool wait_until_settled(Cluster& cluster, std::chrono::milliseconds deadline);

/// Where the load balancer sends: one port per instance, 0 while it is out of rotation.
class Backends {
  public:
    explicit Backends(std::vector<std::uint16_t> ports) : ports_(std::move(ports)) {}
    explicit Backends(Cluster& cluster);
    std::size_t size() const { return ports_.size(); }
    std::uint16_t get(std::size_t i) const {
        std::lock_guard lock(mutex_);
        return ports_.at(i);
    }
    void set(std::size_t i, std::uint16_t port) {
        std::lock_guard lock(mutex_);
        ports_.at(i) = port;
    }

  private:
    mutable std::mutex mutex_;
    std::vector<std::uint16_t> ports_;
};

/// How one webhook ended, as its sender saw it.
struct Sent {
    std::string delivery;
    unsigned status = 0;       ///< the final HTTP status; 0: the sender gave up
    std::string answer;        ///< the answer's "status": accepted, duplicate, unavailable, ...
    std::size_t instance = 0;  ///< the instance that gave the final answer
    int refused = 0;           ///< connections refused (the next instance was tried)
    int unanswered = 0;        ///< requests that got no answer (sent again, same delivery id)
    std::chrono::steady_clock::time_point started;   ///< when the first try began
    std::chrono::steady_clock::time_point answered;  ///< when the final answer came
};

/// One sending thread's client (not thread-safe: one per thread). Posts the signed GitHub push
/// fixture under a given delivery id.
class Sender {
  public:
    /// keep_alive: one kept-alive connection per instance; otherwise a connection per request
    /// (a load balancer that does not keep upstream connections).
    Sender(const Backends& backends, bool keep_alive);
    ~Sender();

    /// Posts to instance `first`. A refused connection goes to the next instance (what a load
    /// balancer does); a request that got no answer at all (connection closed or reset) is sent
    /// again, with the same delivery id, to the next instance: a clear retry, safe because the
    /// delivery id is deduplicated. Gives up after every instance was tried twice.
    Sent post(const std::string& delivery, std::size_t first);

  private:
    const Backends& backends_;
    bool keep_alive_;
    std::vector<std::uint16_t> connected_port_;
    std::vector<std::unique_ptr<HttpConnection>> connections_;
};

/// One webhook to send: its delivery id and the instance it goes to first.
struct Post {
    std::string delivery;
    std::size_t instance = 0;
};

/// Sends every post from `threads` threads (a Sender each, taking the next post as soon as its
/// last one is answered); returns the outcomes in the order of `posts`.
std::vector<Sent> send_all(const Backends& backends, const std::vector<Post>& posts,
                           std::size_t threads, bool keep_alive);

/// A steady load: `threads` threads, each sending a new delivery ("<prefix>-<thread>-<n>") to
/// the next instance in turn, one every `pace`, until stop().
class SteadyLoad {
  public:
    SteadyLoad(const Backends& backends, std::string prefix, std::size_t threads,
               std::chrono::milliseconds pace, bool keep_alive);
    ~SteadyLoad();
    SteadyLoad(const SteadyLoad&) = delete;
    SteadyLoad& operator=(const SteadyLoad&) = delete;

    /// Every webhook that has ended so far, in no particular order.
    std::vector<Sent> outcomes() const;
    /// Stops sending (the requests in flight finish) and returns every outcome.
    std::vector<Sent> stop();

  private:
    void run(std::size_t thread);

    const Backends& backends_;
    std::string prefix_;
    std::chrono::milliseconds pace_;
    bool keep_alive_;
    mutable std::mutex mutex_;
    std::condition_variable stopping_;
    bool stop_ = false;
    std::vector<Sent> outcomes_;
    std::vector<std::thread> threads_;
};

}  // namespace hookrelay::test::cluster
