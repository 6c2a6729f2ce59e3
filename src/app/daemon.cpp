#include "app/admin.hpp"
#include "app/app.hpp"
#include "app/logging.hpp"
#include "app/online_check.hpp"
#include "app/passed_socket.hpp"
#include "app/runtime.hpp"
#include "app/webhook.hpp"
#include "dispatch/dispatcher.hpp"
#include "follow/chores.hpp"
#include "forge_status/status_client.hpp"
#include "http/server.hpp"
#include "ingest/ingest.hpp"
#include "jenkins/client.hpp"
#include "metrics/prometheus_metrics.hpp"
#include "store/factory.hpp"
#include "systemd/notify.hpp"
#include "util/bridge.hpp"
#include "util/rate_limit.hpp"
#include "util/spawn.hpp"
#include "util/thread_name.hpp"

#include <hookrelay/version.hpp>

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

namespace hookrelay::app {

namespace asio = boost::asio;

namespace {

// Where a listening socket systemd passed is bound; nullopt for one that is not TCP over IPv4 or
// IPv6 (ListenStream= may name a unix socket).
std::optional<asio::ip::tcp::endpoint> bound_endpoint(int fd) {
    asio::ip::tcp::endpoint endpoint;
    auto length = static_cast<socklen_t>(endpoint.capacity());
    if (::getsockname(fd, endpoint.data(), &length) != 0) return std::nullopt;
    const auto family = endpoint.data()->sa_family;
    if ((family != AF_INET && family != AF_INET6) || length > endpoint.capacity()) {
        return std::nullopt;
    }
    endpoint.resize(length);
    return endpoint;
}

// While draining on shutdown, how often to look whether the last connection has finished.
constexpr std::chrono::milliseconds k_drain_poll_interval{20};
// Log lines a persistent fault repeats (store errors): at most this many per window.
constexpr std::size_t k_fault_log_burst = 10;
constexpr std::chrono::milliseconds k_fault_log_window{60'000};
// How much lower the thread of outgoing requests (Jenkins, forge statuses) runs than the network
// threads (nice steps: +10 gets about a tenth of their share under contention; with triggers
// claimed ahead it does more with that share, docs/performance.md). The SQLite store's thread
// runs at +5 with the intake log where no answer waits for it, else at +0.
constexpr int k_out_thread_nice = 10;

// How often an instance of a PostgreSQL store looks for instances whose Jenkins entries differ
// from the others' (Daemon::watch_cluster(); also at start, and `status` at every call).
constexpr std::chrono::seconds k_cluster_check_interval{30};

// The exit status of a start refused for what only the operator can put right (the config, a
// store this hookrelay must not write to): sysexits.h's EX_CONFIG. Starting again changes
// nothing, so the systemd unit's RestartPreventExitStatus= names it; anything else that stops a
// start (a port or a state directory still held, a database not up yet) exits 1 and is retried.
constexpr int k_exit_refused = EX_CONFIG;

bool refused(const boost::system::error_code& ec) {
    return ec == errc::store_incompatible || ec == errc::bad_config;
}

// Why some deliveries this configuration accepts cannot be answered from the SQLite store's
// intake log (store::IntakeLogger's answerable_from_log), or "" when every one can: a rule that
// coalesces, a source that compares bodies, a source whose deliveries carry no id (a body window
// applies then). Only when every one can does no answer wait for the store's thread, which may
// then run below the network threads. Decided at start: a reload that changes it takes effect
// on that thread at the next restart, and names it in restart_needed.
std::string why_answers_wait_for_the_store(const Config& config) {
    for (const RuleSpec& r : config.rules) {
        if (r.coalesce) return "rule '" + r.name + "' coalesces";
    }
    for (const SourceConfig& s : config.sources) {
        if (!ingest::carries_delivery_ids(s)) return "source '" + s.name + "' has no delivery ids";
        if (ingest::duplicate_body_window(s, true).count() > 0) {
            return "source '" + s.name + "' compares bodies (duplicate_body_window)";
        }
    }
    return {};
}

// Descriptors besides the two listeners' connections: the store's files and connections, the
// intake log, connections to Jenkins and forges, the listeners, systemd's sockets.
constexpr rlim_t k_other_descriptors = 256;

// The listeners' connection caps work only below the open-file limit: past it accept() fails
// ("Too many open files") before the cap's eviction or its 503 can engage, and the admin
// listener stops answering too. systemd's default soft limit (1024) is server.max_connections'
// default. Raises the soft limit toward what the caps need (never past the hard limit; a
// sandbox may refuse: EPERM) and says so when it stays short.
void fit_open_file_limit(const Config& config) {
    const rlim_t needed = static_cast<rlim_t>(config.server.max_connections) +
                          (config.admin.enabled ? config.admin.max_connections : 0) +
                          k_other_descriptors;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY ||
        limit.rlim_cur >= needed) {
        return;
    }
    const rlim_t before = limit.rlim_cur;
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max == RLIM_INFINITY ? needed : std::min(needed, limit.rlim_max);
    if (raised.rlim_cur > before && ::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
        limit = raised;
        spdlog::info("open-file limit raised from {} to {} for the listeners' connection caps",
                     before, limit.rlim_cur);
    }
    if (limit.rlim_cur < needed) {
        spdlog::warn(
            "the open-file limit ({}) is below what server.max_connections ({}) and "
            "admin.max_connections need ({}): past it new connections fail with \"Too many open "
            "files\" before the caps can make room or answer 503. Raise it (LimitNOFILE= in the "
            "systemd unit, `ulimit -n`, the container's --ulimit nofile=) or lower the caps",
            limit.rlim_cur, config.server.max_connections, needed);
    }
}

http::ServerOptions server_options(const ServerConfig& s) {
    http::ServerOptions o;
    o.name = "http";
    o.host = s.host;
    o.port = s.port;
    o.body_limit = s.body_limit;
    o.header_limit = s.header_limit;
    o.header_timeout = s.header_timeout;
    o.body_timeout = s.body_timeout;
    o.idle_timeout = s.idle_timeout;
    o.write_timeout = s.write_timeout;
    o.max_connections = s.max_connections;
    o.max_connections_per_client = s.max_connections_per_client;
    o.body_memory = s.body_memory;
    o.body_memory_per_client = s.body_memory_per_client;
    o.trusted_proxies = s.trusted_proxies;
    o.forwarded_header = s.forwarded_header == "forwarded" ? http::ForwardedHeader::forwarded
                                                           : http::ForwardedHeader::x_forwarded_for;
    return o;
}

// The admin API takes small JSON requests only.
constexpr std::size_t k_admin_body_limit = 64 * 1024;

http::ServerOptions admin_options(const Config& c) {
    auto o = server_options(c.server);
    o.name = "admin";
    o.host = c.admin.host;
    o.port = c.admin.port;
    o.body_limit = k_admin_body_limit;
    o.body_memory = k_admin_body_limit * c.admin.max_connections;
    o.body_memory_per_client = o.body_memory;
    o.max_connections = c.admin.max_connections;
    o.max_connections_per_client = c.admin.max_connections_per_client;
    o.trusted_proxies.clear();
    return o;
}

// store.postgres: the connections are made with it at start (a new password in the URL, too,
// takes a restart).
bool postgres_changed(const StoreConfig::Postgres& a, const StoreConfig::Postgres& b) {
    return a.url.reveal() != b.url.reveal() || a.pool_size != b.pool_size ||
           a.connect_timeout != b.connect_timeout || a.statement_timeout != b.statement_timeout ||
           a.reconnect_max != b.reconnect_max;
}

// The settings the running daemon took at start and cannot change: named on reload. Compared
// with the configuration it started with (not the last reload's), so that every reload names
// them until the restart.
std::vector<std::string> restart_only_changes(const Config& started, const Config& next) {
    std::vector<std::string> changed;
    const auto& a = started.server;
    const auto& b = next.server;
    auto check = [&](bool differs, const char* key) {
        if (differs) changed.emplace_back(key);
    };
    check(a.host != b.host || a.port != b.port, "listen");
    check(a.body_limit != b.body_limit, "server.body_limit");
    check(a.header_limit != b.header_limit, "server.header_limit");
    check(a.header_timeout != b.header_timeout, "server.header_timeout");
    check(a.body_timeout != b.body_timeout, "server.body_timeout");
    check(a.idle_timeout != b.idle_timeout, "server.idle_timeout");
    check(a.write_timeout != b.write_timeout, "server.write_timeout");
    check(a.max_connections != b.max_connections, "server.max_connections");
    check(a.max_connections_per_client != b.max_connections_per_client,
          "server.max_connections_per_client");
    check(a.body_memory != b.body_memory, "server.body_memory");
    check(a.body_memory_per_client != b.body_memory_per_client, "server.body_memory_per_client");
    check(a.threads != b.threads, "server.threads");
    check(a.forwarded_header != b.forwarded_header, "server.forwarded_header");
    auto cidrs = [](const std::vector<Cidr>& v) {
        std::string out;
        for (const auto& c : v) out += to_string(c.base) + "/" + std::to_string(c.prefix) + ",";
        return out;
    };
    check(cidrs(a.trusted_proxies) != cidrs(b.trusted_proxies), "server.trusted_proxies");
    check(a.tls.has_value() != b.tls.has_value(), "server.tls (on/off)");
    check(started.admin.host != next.admin.host || started.admin.port != next.admin.port ||
              started.admin.enabled != next.admin.enabled,
          "admin.listen/enabled");
    check(started.admin.max_connections != next.admin.max_connections ||
              started.admin.max_connections_per_client != next.admin.max_connections_per_client,
          "admin.max_connections*");
    check(started.state_dir != next.state_dir, "state_dir");
    const bool store_changed = started.store.backend != next.store.backend ||
                               started.store.intake_log != next.store.intake_log ||
                               started.store.max_batch != next.store.max_batch ||
                               started.store.max_size != next.store.max_size ||
                               started.store.keep_body != next.store.keep_body ||
                               started.store.retention != next.store.retention ||
                               started.store.prune_interval != next.store.prune_interval ||
                               postgres_changed(started.store.postgres, next.store.postgres);
    check(store_changed, "store.*");
    const auto& da = started.dispatch;
    const auto& db = next.dispatch;
    check(da.max_in_flight != db.max_in_flight || da.poll_interval != db.poll_interval ||
              da.claim_lease != db.claim_lease ||
              da.claim_renew_interval != db.claim_renew_interval,
          "dispatch.*");
    // As resolved: `auto` is `json` where stderr is not a terminal.
    check(parse_log_format(started.log.format, stderr_is_tty()) !=
              parse_log_format(next.log.format, stderr_is_tty()),
          "log.format");
    return changed;
}

// The store's thread got its priority at start (`yields`: below the network threads), and only a
// restart changes it (a thread may not raise its own priority without CAP_SYS_NICE): why `next`
// would start it otherwise, or "" when it would not.
std::string store_priority_change(const Config& started, const Config& next, bool yields) {
    if (!started.store.intake_log || !next.store.intake_log) return {};
    const std::string wait = why_answers_wait_for_the_store(next);
    if (yields && !wait.empty()) {
        return wait +
               ": such webhooks are answered after hookrelay-store's commit, and that thread runs "
               "below the network threads until a restart";
    }
    if (!yields && wait.empty()) {
        return "every webhook can now be answered from the intake log: hookrelay-store runs at "
               "the network threads' priority until a restart";
    }
    return {};
}

// Runs on the blocking pool: reads the config and every secret file.
asio::awaitable<RuntimeResult> load_blocking(std::string path) {
    co_return load_runtime(path);
}

// The daemon's threads beyond the main one. Once the network threads' context has stopped (after
// wait_for_shutdown: the dispatcher and the chores have stopped too), the thread of outgoing
// requests is stopped as well: a request that had started by then is abandoned, and its claim is
// released when the store closes (at-least-once).
struct Threads {
    asio::io_context& ioc;
    asio::io_context& out_ioc;
    asio::executor_work_guard<asio::io_context::executor_type> out_work;
    std::vector<std::thread> io;
    std::vector<std::thread> out;

    Threads(asio::io_context& network, asio::io_context& outgoing)
        : ioc(network), out_ioc(outgoing), out_work(asio::make_work_guard(outgoing)) {}
    ~Threads() {
        ioc.stop();
        for (auto& t : io) t.join();
        out_work.reset();
        out_ioc.stop();
        for (auto& t : out) t.join();
    }
    Threads(const Threads&) = delete;
    Threads& operator=(const Threads&) = delete;
};

// Everything the running daemon is made of; owned by run_daemon, shared with its coroutines.
struct Daemon {
    asio::io_context& ioc;
    // The dispatcher and the chores (requests to Jenkins and the forges) run on a thread of their
    // own: their store answers, timers and HTTP exchanges then never hop between the network
    // threads (measured: 13–17 % less CPU per delivered trigger on 2 cores, docs/performance.md).
    asio::io_context& out_ioc;
    std::string config_path;
    // What the daemon started with: reloads name what differs from it in the settings only a
    // restart changes.
    std::shared_ptr<const Config> started_with;
    bool store_thread_yields = false;
    bool log_level_from_command_line = false;  // `run --log-level`: a reload leaves it
    bool listens_on_passed_socket = false;     // systemd's socket, not `listen`
    std::shared_ptr<Store> store;
    std::shared_ptr<metrics::PrometheusMetrics> metrics;
    std::shared_ptr<dispatch::Dispatcher> dispatcher;
    std::shared_ptr<follow::Chores> chores;
    std::shared_ptr<WebhookHandler> webhooks;
    std::shared_ptr<OnlineChecks> checks;  // the config against each Jenkins, in the background
    std::unique_ptr<http::Server> server;
    std::unique_ptr<http::Server> admin;
    asio::thread_pool blocking{1};  // config and secret files are read here, not on network threads
    std::mutex reload_mutex;        // one swap at a time (SIGHUP and the API may coincide)
    std::atomic<bool> listening{false};
    // Created before anything announces readiness: a signal that arrives before its set exists
    // gets the default action, and for SIGHUP and SIGTERM that is death.
    asio::signal_set stop_signals{ioc, SIGINT, SIGTERM};
    asio::signal_set reload_signals{ioc, SIGHUP};

    Daemon(asio::io_context& io, asio::io_context& outgoing) : ioc(io), out_ioc(outgoing) {}
    ~Daemon() { blocking.join(); }

    // Ready: listening, and the store took its last piece of work (a store that is down makes
    // every webhook a 503, so a load balancer should send them elsewhere).
    bool ready() const { return listening && store && store->health().ok; }

    std::vector<dispatch::Dispatcher::Target> targets(const Config& config, std::string& why) {
        std::vector<dispatch::Dispatcher::Target> out;
        for (const auto& j : config.jenkins) {
            auto client = jenkins::make_client(out_ioc.get_executor(), j, &why);
            if (!client) {
                why = "jenkins " + j.name + ": " + why;
                return {};
            }
            out.push_back({j, std::move(*client)});
        }
        return out;
    }

    // The chore workers' targets: a Jenkins client per Jenkins of their own (its connections and
    // follow_max_in_flight slots apart from the dispatcher's, so following never takes a slot a
    // delivery could use), and a status client per source with `status:`.
    std::pair<std::vector<follow::Chores::JenkinsTarget>, std::vector<follow::Chores::SourceTarget>>
    chore_targets(const Config& config, std::string& why) {
        std::vector<follow::Chores::JenkinsTarget> follow;
        for (const auto& j : config.jenkins) {
            auto reads = j;
            reads.max_in_flight = j.follow_max_in_flight;
            auto client = jenkins::make_client(out_ioc.get_executor(), reads, &why);
            if (!client) {
                why = "jenkins " + j.name + ": " + why;
                return {};
            }
            follow.push_back({j, std::move(*client)});
        }
        std::vector<follow::Chores::SourceTarget> sources;
        for (const auto& source : config.sources) {
            if (!source.status) continue;
            auto client = forge_status::make_status_client(out_ioc.get_executor(), source, &why);
            if (!client) {
                why = "sources." + source.name + ".status: " + why;
                return {};
            }
            sources.push_back({source, std::move(*client)});
        }
        return {std::move(follow), std::move(sources)};
    }

    // SIGHUP and POST /api/v1/reload: parse and validate everything (off the network threads),
    // then swap. A bad config leaves the running one in place.
    asio::awaitable<ReloadOutcome> reload() {
        systemd::notify_reloading();
        auto loaded =
            co_await asio::co_spawn(blocking, load_blocking(config_path), asio::use_awaitable);
        std::lock_guard lock(reload_mutex);
        ReloadOutcome outcome;
        std::string why;
        std::vector<dispatch::Dispatcher::Target> new_targets;
        std::pair<std::vector<follow::Chores::JenkinsTarget>,
                  std::vector<follow::Chores::SourceTarget>>
            new_chores;
        if (loaded.errors.empty()) {
            new_targets = targets(*loaded.runtime->config, why);
            if (why.empty()) new_chores = chore_targets(*loaded.runtime->config, why);
            if (!why.empty()) loaded.errors.push_back({config_path, {}, why});
        }
        if (!loaded.errors.empty()) {
            for (const auto& e : loaded.errors) outcome.errors.push_back(to_string(e));
            spdlog::error("reload rejected, the running configuration stays: {} error(s)",
                          loaded.errors.size());
            for (const auto& e : outcome.errors) spdlog::error("  {}", e);
            metrics->config_reload(false);
            systemd::notify_ready("reload rejected; running the previous configuration");
            co_return outcome;
        }
        const auto& next = *loaded.runtime->config;
        outcome.restart_needed = restart_only_changes(*started_with, next);
        if (listens_on_passed_socket) {
            const auto listen =
                std::find(outcome.restart_needed.begin(), outcome.restart_needed.end(), "listen");
            if (listen != outcome.restart_needed.end()) {
                outcome.restart_needed.erase(listen);
                spdlog::warn(
                    "reload: listen changed, but the webhook socket comes from systemd: its "
                    "address is the socket unit's ListenStream= (a restart of the service keeps "
                    "it)");
            }
        }
        if (std::find(outcome.restart_needed.begin(), outcome.restart_needed.end(), "store.*") ==
            outcome.restart_needed.end()) {
            const auto why = store_priority_change(*started_with, next, store_thread_yields);
            if (!why.empty()) {
                outcome.restart_needed.emplace_back("hookrelay-store's priority");
                spdlog::warn("reload: {}", why);
            }
        }
        if (!outcome.restart_needed.empty()) {
            spdlog::warn("reload: these changes take effect only after a restart: {}",
                         fmt::join(outcome.restart_needed, ", "));
        }
        // A new certificate serves every connection from now on; open ones keep theirs. Turning
        // TLS on or off needs a restart (the listener's clients would break mid-flight).
        if (started_with->server.tls.has_value() == next.server.tls.has_value()) {
            server->set_tls(loaded.runtime->tls);
        }
        if (!log_level_from_command_line) {
            spdlog::default_logger()->set_level(spdlog::level::from_str(next.log.level));
        }
        webhooks->set_runtime(loaded.runtime);
        dispatcher->reconfigure(loaded.runtime->config, std::move(new_targets));
        chores->configure(std::move(new_chores.first), std::move(new_chores.second),
                          next.server.store_timeout);
        metrics->config_reload(true);
        checks->run(loaded.runtime->config);
        store->set_jenkins_urls(store::jenkins_urls(next));
        spdlog::info("configuration reloaded from {}: {} source(s), {} rule(s), {} jenkins",
                     config_path, next.sources.size(), next.rules.size(), next.jenkins.size());
        systemd::notify_ready("configuration reloaded");
        outcome.ok = true;
        co_return outcome;
    }

    // Instances sharing a PostgreSQL store each send the triggers they claim, whichever instance
    // accepted them, with their own Jenkins entries: a name that means different servers on
    // different instances sends builds to both, follows them at the wrong one, and is held for
    // all when one of them is down. Looked for at start and every k_cluster_check_interval; a
    // disagreement is logged when it appears or changes, and when it ends.
    asio::awaitable<void> watch_cluster() {
        asio::steady_timer timer(ioc);
        std::map<std::string, std::string> said;  // per Jenkins name
        for (;;) {
            const auto deadline = webhooks->runtime()->config->server.store_timeout;
            auto listed = co_await await_callback<result<std::vector<InstanceInfo>>>(
                [&](auto done) { store->instances(std::move(done)); }, deadline);
            if (listed && *listed) {
                auto now = jenkins_disagreements(listed->value());
                for (const auto& [name, line] : now) {
                    if (const auto it = said.find(name); it != said.end() && it->second == line) {
                        continue;
                    }
                    spdlog::warn(
                        "instances sharing the store disagree: {}. Each instance sends the "
                        "triggers it claims, whichever instance accepted them, to its own url, "
                        "follows their builds there, and holds jenkins {} for all instances when "
                        "its own is down: give every instance the same jenkins entries",
                        line, name);
                }
                for (const auto& [name, line] : said) {
                    if (!now.contains(name)) {
                        spdlog::info("instances sharing the store agree again on jenkins {}'s url",
                                     name);
                    }
                }
                said = std::move(now);
            }
            timer.expires_after(k_cluster_check_interval);
            auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
        }
    }

    asio::awaitable<void> reload_on_sighup() {
        for (;;) {
            auto [ec, signal] =
                co_await reload_signals.async_wait(asio::as_tuple(asio::use_awaitable));
            (void)signal;
            if (ec) co_return;
            spdlog::info("received SIGHUP; reloading {}", config_path);
            co_await reload();
        }
    }

    // SIGTERM/SIGINT: stop accepting, let webhook requests and Jenkins requests in flight finish
    // within shutdown_grace, then stop. Undelivered triggers stay in the store.
    asio::awaitable<void> wait_for_shutdown() {
        auto [ec, signal] = co_await stop_signals.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        // The running configuration's: a reload may have changed it.
        const std::chrono::milliseconds grace = webhooks->runtime()->config->server.shutdown_grace;
        systemd::notify_stopping();
        spdlog::info(
            "received {}; no longer accepting, finishing {} open connection(s) within "
            "{} ms",
            signal == SIGINT ? "SIGINT" : "SIGTERM", server->connections(), grace.count());
        const auto deadline = std::chrono::steady_clock::now() + grace;
        listening = false;
        server->stop();
        co_await dispatcher->stop(grace);
        // Chores in flight get what is left of the grace period; the rest run out their leases.
        co_await chores->stop(std::max(std::chrono::milliseconds(0),
                                       std::chrono::duration_cast<std::chrono::milliseconds>(
                                           deadline - std::chrono::steady_clock::now())));
        asio::steady_timer timer(ioc);
        while (server->connections() > 0 && std::chrono::steady_clock::now() < deadline) {
            timer.expires_after(k_drain_poll_interval);
            co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        if (server->connections() > 0) {
            spdlog::warn("shutdown grace period over; abandoning {} connection(s)",
                         server->connections());
        }
        if (admin) admin->stop();
        reload_signals.cancel();
        ioc.stop();
    }

    // systemd's WatchdogSec: ping at half the timeout (`interval`) while both event loops turn:
    // this one, and the thread of outgoing requests, which must have run something sent to it
    // within the last three quarters of the timeout. A loop stuck for about a timeout gets the
    // daemon restarted; one that is merely slow does not.
    asio::awaitable<void> watchdog(std::chrono::microseconds interval) {
        using Steady = std::chrono::steady_clock;
        const auto ticks = [] { return Steady::now().time_since_epoch().count(); };
        asio::steady_timer timer(ioc);
        auto out_ran_at = std::make_shared<std::atomic<Steady::rep>>(ticks());
        bool said = false;
        for (;;) {
            const auto quiet = Steady::duration(ticks() - out_ran_at->load());
            if (quiet <= interval * 3 / 2) {
                systemd::notify_watchdog();
                said = false;
            } else if (!std::exchange(said, true)) {
                spdlog::warn(
                    "hookrelay-out has not run for {} ms: not telling systemd's watchdog that all "
                    "is well",
                    std::chrono::duration_cast<std::chrono::milliseconds>(quiet).count());
            }
            asio::post(out_ioc, [out_ran_at, ticks] { out_ran_at->store(ticks()); });
            timer.expires_after(interval);
            auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
        }
    }
};

}  // namespace

int run_daemon(const DaemonOptions& options) {
    // A write past a file-size limit (RLIMIT_FSIZE, e.g. systemd's LimitFSIZE=) or into a pipe
    // nobody reads any more (a log reader gone) fails with its error instead of ending the
    // process: the store then reports why it takes nothing (/readyz), and nothing answered is
    // lost to a crash loop.
    ::signal(SIGPIPE, SIG_IGN);
    ::signal(SIGXFSZ, SIG_IGN);
    auto loaded = load_runtime(options.config_path);
    if (!loaded.errors.empty()) {
        for (const auto& e : loaded.errors) std::cerr << to_string(e) << '\n';
        std::cerr << "hookrelay: not starting: " << loaded.errors.size() << " config error(s) in "
                  << options.config_path << '\n';
        return k_exit_refused;
    }
    auto runtime = loaded.runtime;
    const auto& config = *runtime->config;
    const auto format = parse_log_format(config.log.format, isatty(STDERR_FILENO) != 0);
    setup_logging(options.log_level.empty() ? config.log.level : options.log_level,
                  format.value_or(LogFormat::text));
    fit_open_file_limit(config);

    // Declared first, destroyed last: the dispatcher's timers and sockets belong to it, and the
    // last reference to the dispatcher may be dropped by a handler the network threads' context
    // destroys.
    asio::io_context out_ioc(1);
    asio::io_context ioc(static_cast<int>(config.server.threads));
    auto d = std::make_shared<Daemon>(ioc, out_ioc);
    d->config_path = options.config_path;
    d->metrics = std::make_shared<metrics::PrometheusMetrics>(HOOKRELAY_VERSION);

    std::string why;
    store::OpenOptions open_options;
    open_options.version = HOOKRELAY_VERSION;
    const std::string wait = why_answers_wait_for_the_store(config);
    d->started_with = runtime->config;
    d->log_level_from_command_line = !options.log_level.empty();
    d->store_thread_yields = config.store.intake_log && wait.empty();
    open_options.store_thread_yields = d->store_thread_yields;
    open_options.warn = [](const std::string& line) { spdlog::error("store: {}", line); };
    auto opened = store::open_store(config, open_options, &why);
    if (!opened) {
        spdlog::critical("cannot open the store: {}", why);
        return refused(opened.error()) ? k_exit_refused : 1;
    }
    d->store = std::move(*opened);
    if (d->store_thread_yields) {
        spdlog::info(
            "store: webhooks are answered from the intake log; hookrelay-store runs below the "
            "network threads");
    } else if (config.store.intake_log) {
        spdlog::info(
            "store: hookrelay-store runs at the network threads' priority: {}, so some webhooks "
            "are answered after its commit",
            wait);
    }
    std::weak_ptr<Daemon> weak_daemon = d;
    // A persistent fault (disk full) reports once per failed batch: bound the log volume.
    auto store_error_log = std::make_shared<RateLimit>(k_fault_log_burst, k_fault_log_window);
    d->store->on_error([weak_daemon, store_error_log](std::string_view what) {
        if (auto dd = weak_daemon.lock()) dd->metrics->store_error();
        if (std::size_t suppressed = 0; store_error_log->allow(&suppressed)) {
            spdlog::error("store: {}{}", what,
                          suppressed ? fmt::format(" ({} similar lines suppressed)", suppressed)
                                     : std::string());
        }
    });
    d->store->on_commit_stats(
        [weak_daemon](std::chrono::duration<double> seconds, std::size_t batch) {
            if (auto dd = weak_daemon.lock()) dd->metrics->store_commit(seconds, batch);
        });

    d->dispatcher = std::make_shared<dispatch::Dispatcher>(
        out_ioc.get_executor(), d->store, config.dispatch, config.server.store_timeout, d->metrics);
    // A client is refused only for its config (its URL, its CA file).
    auto targets = d->targets(config, why);
    if (!why.empty()) {
        spdlog::critical("{}", why);
        return k_exit_refused;
    }
    auto chore_targets = d->chore_targets(config, why);
    if (!why.empty()) {
        spdlog::critical("{}", why);
        return k_exit_refused;
    }
    d->dispatcher->configure(runtime->config, std::move(targets));
    d->chores = std::make_shared<follow::Chores>(out_ioc.get_executor(), d->store, config.dispatch,
                                                 config.server.store_timeout, d->metrics);
    d->chores->configure(std::move(chore_targets.first), std::move(chore_targets.second),
                         config.server.store_timeout);
    d->dispatcher->on_chores_due(
        [weak = std::weak_ptr(d->chores)](Chore chore, std::string key, TimePoint at) {
            if (auto chores = weak.lock()) chores->due(chore, std::move(key), at);
        });
    d->store->on_committed([weak = std::weak_ptr(d->dispatcher)] {
        if (auto dispatcher = weak.lock()) dispatcher->wake();
    });

    d->webhooks = std::make_shared<WebhookHandler>(runtime, d->store, d->metrics);
    d->checks = std::make_shared<OnlineChecks>(ioc.get_executor(), d->metrics);
    d->server = std::make_unique<http::Server>(ioc, server_options(config.server), d->webhooks);
    d->server->set_tls(runtime->tls);

    // Sockets handed over by systemd (hookrelay.socket) keep webhooks flowing across restarts.
    std::string listen_error;
    auto passed = systemd::listen_sockets(&listen_error);
    if (!listen_error.empty()) {
        spdlog::critical("socket activation: {}", listen_error);
        return 1;
    }
    boost::system::result<std::uint16_t> port = boost::system::error_code{};
    std::string listen_address;
    if (!passed.empty()) {
        // Prefer the socket named "http" (FileDescriptorName= in hookrelay.socket).
        auto chosen = std::find_if(passed.begin(), passed.end(),
                                   [](const auto& s) { return s.name == "http"; });
        if (chosen == passed.end()) chosen = passed.begin();
        const auto bound = bound_endpoint(chosen->fd);
        port = d->server->adopt(chosen->fd);
        listen_address = "the socket from systemd";
        if (bound) {
            listen_address = host_port(bound->address().to_string(), bound->port()) +
                             " (the socket from systemd)";
            if (!listen_names(config.server.host, config.server.port, bound->address().to_string(),
                              bound->port())) {
                // A socket unit edited apart from the config (or one of an older package, on
                // every address): say which of the two counts.
                const auto wanted = host_port(config.server.host, config.server.port);
                spdlog::warn(
                    "webhooks arrive on {}, the socket systemd passed (hookrelay.socket), not on "
                    "{} as `listen` says: with socket activation `listen` is not used; to listen "
                    "there, `systemctl edit hookrelay.socket` with the lines [Socket], "
                    "ListenStream= (empty: clears the list) and ListenStream={}, then `systemctl "
                    "restart hookrelay.socket hookrelay`",
                    host_port(bound->address().to_string(), bound->port()), wanted, wanted);
            }
        }
        d->listens_on_passed_socket = true;
        if (passed.size() > 1)
            spdlog::warn("systemd passed {} sockets; using the first", passed.size());
    } else {
        port = d->server->listen();
    }
    if (!port && d->listens_on_passed_socket) {
        spdlog::critical("cannot serve the socket systemd passed: {}", port.error().message());
        return 1;
    }
    if (!port) {
        spdlog::critical(
            "cannot listen on {}:{} (the config's `listen`): {}{}", config.server.host,
            config.server.port, port.error().message(),
            port.error() == boost::asio::error::address_in_use
                ? fmt::format(
                      ": another process listens there{}; stop it or "
                      "choose another port in `listen`",
                      config.server.port == 8080 ? " (Jenkins' default port is 8080 too)" : "")
                : "");
        return 1;
    }

    std::optional<std::uint16_t> admin_port;
    if (config.admin.enabled) {
        AdminHandler::Services services;
        services.store = d->store;
        services.webhooks = d->webhooks;
        services.dispatcher = d->dispatcher;
        services.metrics = d->metrics;
        services.metrics_text = [m = d->metrics] { return m->serialize(); };
        services.reload = [weak_daemon]() -> asio::awaitable<ReloadOutcome> {
            auto dd = weak_daemon.lock();
            if (!dd) co_return ReloadOutcome{false, {"shutting down"}, {}};
            co_return co_await dd->reload();
        };
        services.ready = [weak_daemon] {
            auto dd = weak_daemon.lock();
            return dd && dd->ready();
        };
        services.findings = [c = d->checks](const std::string& j) { return c->findings(j); };
        d->admin = std::make_unique<http::Server>(
            ioc, admin_options(config), std::make_shared<AdminHandler>(std::move(services)));
        auto bound = d->admin->listen();
        if (!bound) {
            const auto clash =
                d->listens_on_passed_socket ? std::string() : listeners_clash(config);
            spdlog::critical("cannot listen on admin {}:{} (the config's `admin.listen`): {}{}",
                             config.admin.host, config.admin.port, bound.error().message(),
                             bound.error() != boost::asio::error::address_in_use ? ""
                             : clash.empty()
                                 ? ": another process listens there; stop it or choose another "
                                   "port in `admin.listen`"
                                 : ": the webhook listener has it: " + clash);
            return 1;
        }
        admin_port = *bound;
        if (!config.admin.token) {
            spdlog::warn("admin: no admin.token configured; /metrics and /api/* answer 403");
        }
    }

    d->server->start();
    if (d->admin) d->admin->start();
    d->dispatcher->start();
    d->chores->start();
    d->checks->run(runtime->config);
    d->listening = true;
    spdlog::info(
        "hookrelay {} listening on {} ({} source(s), {} rule(s), {} jenkins; store: "
        "{}{}; instance {}){}",
        HOOKRELAY_VERSION,
        d->listens_on_passed_socket ? listen_address : host_port(config.server.host, *port),
        config.sources.size(), config.rules.size(), config.jenkins.size(), d->store->kind(),
        config.store.backend == StoreConfig::Backend::sqlite ? " in " + config.state_dir
                                                             : std::string(),
        d->store->instance_id(),
        admin_port ? fmt::format("; admin on {}:{}", config.admin.host, *admin_port)
                   : std::string());
    for (const auto& s : config.sources) {
        if (!ingest::has_credentials(s)) {
            // Anyone who can reach the port can trigger builds through this source: warn.
            spdlog::warn("source {} ({}) at POST {} without verification (insecure: true)", s.name,
                         to_string(s.provider), s.path);
        } else {
            spdlog::info("source {} ({}) at POST {}", s.name, to_string(s.provider), s.path);
        }
        if (auto doubt = forge_status::api_url_doubt(s); !doubt.empty()) spdlog::warn("{}", doubt);
    }
    if (!options.ready_file.empty()) {
        std::ofstream ready(options.ready_file, std::ios::trunc);
        ready << "http=" << config.server.host << ':' << *port << '\n';
        if (admin_port) ready << "admin=" << config.admin.host << ':' << *admin_port << '\n';
        ready.close();
        if (!ready) {
            // Whoever waits for it would wait for ever: say so where they will look.
            spdlog::error("cannot write the ready file {}: {}", options.ready_file,
                          std::strerror(errno));
        }
    }
    systemd::notify_ready("accepting webhooks");
    if (auto interval = systemd::watchdog_interval()) {
        spawn_logged(ioc, d->watchdog(*interval), "systemd watchdog");
    }

    spawn_logged(ioc, d->wait_for_shutdown(), "shutdown");
    spawn_logged(ioc, d->reload_on_sighup(), "reload on SIGHUP");
    if (!d->store->single_instance()) spawn_logged(ioc, d->watch_cluster(), "cluster watch");
    int exit_code = 0;
    try {
        // Joins every thread however this block ends (a thread that cannot be made throws).
        Threads threads(ioc, out_ioc);
        threads.out.emplace_back([&out_ioc] {
            // Accepting comes first: a 202 is what the forge waits for, and what is accepted is
            // stored. Under contention this thread yields to the network and store threads. (Named
            // after: a thread with the name has its priority.)
            const int error = lower_this_threads_priority(k_out_thread_nice);
            name_this_thread("hookrelay-out");
            if (error != 0) {
                spdlog::warn(
                    "hookrelay-out runs at the priority of the network threads (setpriority: "
                    "{})",
                    std::strerror(error));
            }
            out_ioc.run();
        });
        for (unsigned i = 1; i < config.server.threads; ++i)
            threads.io.emplace_back([&ioc] {
                name_this_thread("hookrelay-io");
                ioc.run();
            });
        ioc.run();
    } catch (const std::exception& e) {
        spdlog::critical("stopping after an unexpected error: {}", e.what());
        exit_code = 1;
    }
    // Before the io_contexts go: store callbacks post into them.
    d->store->close();
    spdlog::info("hookrelay stopped");
    return exit_code;
}

}  // namespace hookrelay::app
