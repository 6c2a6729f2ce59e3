#include "cluster/cluster.hpp"
#include "config/lease.hpp"

#include <boost/json.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <future>
#include <stdexcept>

namespace hookrelay::test::cluster {

namespace json = boost::json;

namespace {

// How much of each instance's log a failure message shows.
constexpr std::size_t k_log_tail = 6'000;
// wait_until_built looks again at least this often.
constexpr std::chrono::milliseconds k_recheck{200};

std::string ms(std::chrono::milliseconds d) {
    return std::to_string(d.count()) + "ms";
}

std::string jenkins_keys(const ClusterOptions& o) {
    std::string out;
    for (const auto& line : o.jenkins_keys) out += "    " + line + "\n";
    return out;
}

std::string config_for(const FakeJenkins& jenkins, const ClusterOptions& o) {
    return R"(listen: 127.0.0.1:0
state_dir: ./var
log: {level: info}
admin: {listen: "127.0.0.1:0", token: "${env:ADMIN_TOKEN}"}
server: {threads: 1, store_timeout: )" +
           ms(o.timing.store_timeout) + R"(}
store:
  backend: postgres
  postgres:
    url: "${env:HOOKRELAY_DATABASE_URL}"
    connect_timeout: 2s
    statement_timeout: 2s
    reconnect_max: 500ms
dispatch:
  poll_interval: )" +
           ms(o.timing.poll_interval) + R"(
  claim_lease: )" +
           ms(o.timing.claim_lease) + R"(
  claim_renew_interval: )" +
           ms(o.timing.claim_renew_interval) + R"(
sources:
  github: {provider: github, secret: "${env:GH_SECRET}"}
jenkins:
  ci:
    url: ")" +
           jenkins.url() +
           R"("
    user: hookrelay
    api_token: "${env:JENKINS_TOKEN}"
    max_in_flight: )" +
           std::to_string(o.jenkins_max_in_flight) + R"(
    probe_initial: 50ms
    probe_max: 200ms
    retry: {initial: 50ms, max_delay: 200ms, max_age: 1h}
)" + jenkins_keys(o) +
           "rules:\n" +
           (o.rules.empty() ? std::string(R"(  - name: builds
    when: {event: push}
    trigger: {jenkins: ci, job: build}
)")
                            : o.rules);
}

std::string tail(const std::string& text) {
    return text.size() <= k_log_tail ? text : "…" + text.substr(text.size() - k_log_tail);
}

}  // namespace

Cluster::Cluster(FakeJenkins& jenkins, ClusterOptions options)
    : options_(std::move(options)), config_(config_for(jenkins, options_)) {
    // The bound below which the daemon warns that leases can lapse (it says so only once the
    // dispatcher runs, after the start).
    DispatchConfig dispatch;
    dispatch.claim_lease = options_.timing.claim_lease;
    dispatch.claim_renew_interval = options_.timing.claim_renew_interval;
    if (auto warning = claim_lease_warning(dispatch, options_.timing.store_timeout);
        !warning.empty()) {
        throw std::logic_error("the cluster's dispatch timing: " + warning);
    }
    jenkins.add_job({"build"});
    std::vector<std::future<std::unique_ptr<Daemon>>> starting;
    for (std::size_t i = 0; i < options_.instances; ++i) {
        starting.push_back(std::async(std::launch::async, [this] { return launch(); }));
    }
    for (auto& s : starting) current_.push_back(s.get());
}

Cluster::~Cluster() = default;

std::unique_ptr<Daemon> Cluster::launch_other(std::string config_yaml) const {
    Daemon::Options o;
    o.config_yaml = std::move(config_yaml);
    o.env = {{"GH_SECRET", k_secret},
             {"JENKINS_TOKEN", "fake-api-token"},
             {"ADMIN_TOKEN", k_admin_token},
             {"HOOKRELAY_DATABASE_URL", options_.database}};
    return std::make_unique<Daemon>(std::move(o));
}

Daemon& Cluster::at(std::size_t i) {
    if (!current_.at(i)) throw std::logic_error("instance " + std::to_string(i) + " is down");
    return *current_[i];
}

void Cluster::start(std::size_t i) {
    if (current_.at(i)) throw std::logic_error("instance " + std::to_string(i) + " is up");
    current_[i] = launch();
}

void Cluster::kill(std::size_t i) {
    at(i).stop(SIGKILL);
    retired_.push_back(std::move(current_[i]));
}

int Cluster::stop(std::size_t i) {
    const int code = at(i).stop(SIGTERM);
    retired_.push_back(std::move(current_[i]));
    return code;
}

json::value Cluster::status(std::size_t i) {
    const auto r = http_request(at(i).admin_port(), "GET", "/api/v1/status",
                                {{"Authorization", std::string("Bearer ") + k_admin_token}});
    if (r.status != 200) return nullptr;
    return json::parse(r.body);
}

std::string Cluster::instance_id(std::size_t i) {
    const auto s = status(i);
    if (!s.is_object()) return "";
    return std::string(s.at("instance").as_string());
}

std::set<std::string> Cluster::claimed_by(std::size_t via, const std::string& owner) {
    HttpConnection admin(at(via).admin_port());
    const Headers auth{{"Authorization", std::string("Bearer ") + k_admin_token}};
    auto get = [&](const std::string& target) {
        const auto r = admin.request("GET", target, auth);
        if (r.status != 200) {
            throw std::runtime_error("GET " + target + ": " + std::to_string(r.status) + " " +
                                     r.error + r.body);
        }
        return json::parse(r.body);
    };
    std::set<std::string> out;
    std::string cursor;
    do {
        const auto page = get("/api/v1/deliveries?state=pending&limit=1000" +
                              (cursor.empty() ? "" : "&cursor=" + cursor));
        for (const auto& d : page.at("deliveries").as_array()) {
            const std::string id(d.at("delivery_id").as_string());
            const auto detail = get("/api/v1/deliveries/" + id + "?source=github");
            for (const auto& t : detail.at("triggers").as_array()) {
                const auto* claimed = t.as_object().if_contains("claimed_by");
                if (claimed && claimed->as_string() == owner) out.insert(id);
            }
        }
        const auto* next = page.as_object().if_contains("next_cursor");
        cursor = next && next->is_string() ? std::string(next->as_string()) : std::string();
    } while (!cursor.empty());
    return out;
}

std::string Cluster::logs() const {
    std::string out;
    for (std::size_t i = 0; i < current_.size(); ++i) {
        if (current_[i])
            out += "--- instance " + std::to_string(i) + ":\n" + tail(current_[i]->log());
    }
    for (const auto& d : retired_) out += "--- a stopped instance:\n" + tail(d->log());
    return out;
}

std::string delivery_of(const ReceivedRequest& request) {
    // hookrelay's cause: "hookrelay: github push on acme/app refs/heads/main (delivery <id>,
    // rule builds)".
    const std::string& cause = request.cause;
    const std::string marker = "(delivery ";
    const auto from = cause.find(marker);
    if (from == std::string::npos) return "";
    const auto start = from + marker.size();
    const auto end = cause.find(", rule ", start);
    return end == std::string::npos ? "" : cause.substr(start, end - start);
}

std::map<std::string, std::size_t> builds_by_delivery(const FakeJenkins& jenkins) {
    std::map<std::string, std::size_t> out;
    for (const auto& r : jenkins.requests()) {
        if (r.endpoint == "build" && !r.job.empty()) ++out[delivery_of(r)];
    }
    return out;
}

bool wait_until_built(FakeJenkins& jenkins, const std::vector<std::string>& deliveries,
                      std::chrono::milliseconds deadline) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    for (;;) {
        const auto seen = jenkins.requests().size();
        const auto built = builds_by_delivery(jenkins);
        const bool all = std::all_of(deliveries.begin(), deliveries.end(),
                                     [&](const auto& d) { return built.contains(d); });
        if (all) return true;
        const auto now = std::chrono::steady_clock::now();
        if (now >= end) return false;
        // Woken by Jenkins' next request; looked at again after a while in any case.
        jenkins.wait_for_requests(
            seen + 1, std::min(std::chrono::ceil<std::chrono::milliseconds>(end - now), k_recheck));
    }
}

bool wait_until_settled(Cluster& cluster, std::chrono::milliseconds deadline) {
    return eventually(
        [&] {
            for (std::size_t i = 0; i < cluster.size(); ++i) {
                if (!cluster.up(i)) continue;
                const auto s = cluster.status(i);
                if (!s.is_object()) return false;
                for (const auto& j : s.at("jenkins").as_array()) {
                    // null: the store did not count it (failed or ran out of time)
                    if (!j.at("backlog").is_number() ||
                        j.at("backlog").to_number<std::int64_t>() != 0 ||
                        j.at("in_flight").to_number<std::int64_t>() != 0) {
                        return false;
                    }
                }
            }
            return true;
        },
        deadline);
}

Backends::Backends(Cluster& cluster) {
    for (std::size_t i = 0; i < cluster.size(); ++i) ports_.push_back(cluster.at(i).port());
}

Sender::Sender(const Backends& backends, bool keep_alive)
    : backends_(backends),
      keep_alive_(keep_alive),
      connected_port_(backends.size(), 0),
      connections_(backends.size()) {}

Sender::~Sender() = default;

Sent Sender::post(const std::string& delivery, std::size_t first) {
    // The fixture and its signature once per thread: only the delivery id differs.
    thread_local const Fixture push = github_push("");
    thread_local const std::string signature = github_signature(k_secret, push.body);
    Headers headers;
    for (const auto& [k, v] : push.headers) {
        headers.emplace_back(k, k == "X-GitHub-Delivery" ? delivery : v);
    }
    headers.emplace_back("X-Hub-Signature-256", signature);
    if (!keep_alive_) headers.emplace_back("Connection", "close");

    Sent sent;
    sent.delivery = delivery;
    sent.started = std::chrono::steady_clock::now();
    const std::size_t n = backends_.size();
    for (std::size_t attempt = 0; attempt < 2 * n; ++attempt) {
        const std::size_t i = (first + attempt) % n;
        const auto port = backends_.get(i);
        if (port == 0) continue;  // out of rotation
        auto& connection = connections_[i];
        if (connection && connected_port_[i] != port) connection.reset();
        HttpResult r;
        try {
            if (!connection) {
                connection = std::make_unique<HttpConnection>(port);
                connected_port_[i] = port;
            }
            r = connection->request("POST", "/hooks/github", headers, push.body);
        } catch (const boost::system::system_error& e) {
            connection.reset();
            if (e.code() == boost::system::errc::connection_refused) {
                ++sent.refused;
                continue;
            }
            throw;
        }
        if (!keep_alive_ || !r.keep_alive || r.status == 0) connection.reset();
        if (r.status == 0) {
            ++sent.unanswered;
            continue;
        }
        sent.status = r.status;
        sent.instance = i;
        sent.answered = std::chrono::steady_clock::now();
        try {
            const auto body = json::parse(r.body);
            if (const auto* s = body.as_object().if_contains("status"); s && s->is_string()) {
                sent.answer = std::string(s->as_string());
            }
        } catch (const std::exception&) {
            sent.answer = "(not JSON) " + r.body.substr(0, 200);
        }
        return sent;
    }
    sent.answered = std::chrono::steady_clock::now();
    return sent;
}

std::vector<Sent> send_all(const Backends& backends, const std::vector<Post>& posts,
                           std::size_t threads, bool keep_alive) {
    std::vector<Sent> out(posts.size());
    std::atomic<std::size_t> next{0};
    std::vector<std::future<void>> workers;
    for (std::size_t t = 0; t < threads; ++t) {
        workers.push_back(std::async(std::launch::async, [&] {
            Sender sender(backends, keep_alive);
            for (std::size_t i = next++; i < posts.size(); i = next++) {
                out[i] = sender.post(posts[i].delivery, posts[i].instance);
            }
        }));
    }
    for (auto& w : workers) w.get();
    return out;
}

SteadyLoad::SteadyLoad(const Backends& backends, std::string prefix, std::size_t threads,
                       std::chrono::milliseconds pace, bool keep_alive)
    : backends_(backends), prefix_(std::move(prefix)), pace_(pace), keep_alive_(keep_alive) {
    for (std::size_t t = 0; t < threads; ++t) threads_.emplace_back([this, t] { run(t); });
}

SteadyLoad::~SteadyLoad() {
    stop();
}

void SteadyLoad::run(std::size_t thread) {
    Sender sender(backends_, keep_alive_);
    for (std::size_t n = 0;; ++n) {
        {
            std::unique_lock lock(mutex_);
            // The pace of the load, not a wait for something to happen.
            if (stopping_.wait_for(lock, pace_, [this] { return stop_; })) return;
        }
        const auto delivery = prefix_ + "-" + std::to_string(thread) + "-" + std::to_string(n);
        auto sent = sender.post(delivery, (thread + n) % backends_.size());
        std::lock_guard lock(mutex_);
        outcomes_.push_back(std::move(sent));
    }
}

std::vector<Sent> SteadyLoad::outcomes() const {
    std::lock_guard lock(mutex_);
    return outcomes_;
}

std::vector<Sent> SteadyLoad::stop() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    stopping_.notify_all();
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
    return outcomes();
}

}  // namespace hookrelay::test::cluster
