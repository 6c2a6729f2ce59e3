#include "app/app.hpp"
#include "app/runtime.hpp"
#include "app/webhook.hpp"
#include "http/server.hpp"
#include "dispatch/dispatcher.hpp"
#include "jenkins/client.hpp"
#include "store/sqlite_store.hpp"

#include <hookrelay/version.hpp>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <csignal>
#include <fstream>
#include <iostream>
#include <thread>

namespace hookrelay::app {

namespace asio = boost::asio;

namespace {

// While draining on shutdown, how often to look whether the last connection has finished.
constexpr std::chrono::milliseconds k_drain_poll_interval{20};

http::ServerOptions server_options(const ServerConfig& s) {
    http::ServerOptions o;
    o.host = s.host;
    o.port = s.port;
    o.body_limit = s.body_limit;
    o.header_limit = s.header_limit;
    o.header_timeout = s.header_timeout;
    o.body_timeout = s.body_timeout;
    o.idle_timeout = s.idle_timeout;
    o.write_timeout = s.write_timeout;
    o.max_connections = s.max_connections;
    return o;
}

// SIGTERM/SIGINT: stop accepting, let webhook requests and Jenkins requests in flight finish
// within shutdown_grace, then stop. Undelivered triggers stay in the store.
asio::awaitable<void> wait_for_shutdown(asio::io_context& ioc, http::Server& server,
                                        std::shared_ptr<dispatch::Dispatcher> dispatcher,
                                        std::chrono::milliseconds grace) {
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    auto [ec, signal] = co_await signals.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    spdlog::info("received {}; no longer accepting, finishing {} open connection(s) within {} ms",
                 signal == SIGINT ? "SIGINT" : "SIGTERM", server.connections(), grace.count());
    const auto deadline = std::chrono::steady_clock::now() + grace;
    server.stop();
    co_await dispatcher->stop(grace);
    asio::steady_timer timer(ioc);
    while (server.connections() > 0 && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(k_drain_poll_interval);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (server.connections() > 0) {
        spdlog::warn("shutdown grace period over; abandoning {} connection(s)",
                     server.connections());
    }
    ioc.stop();
}

}  // namespace

int run_daemon(const DaemonOptions& options) {
    auto loaded = load_runtime(options.config_path);
    if (!loaded.errors.empty()) {
        for (const auto& e : loaded.errors) std::cerr << to_string(e) << '\n';
        std::cerr << "hookrelay: not starting: " << loaded.errors.size() << " config error(s) in "
                  << options.config_path << '\n';
        return 1;
    }
    auto runtime = loaded.runtime;
    const auto& config = *runtime->config;
    setup_logging(options.log_level.empty() ? config.log.level : options.log_level);

    std::string why;
    auto opened = store::SqliteStore::open(config.state_dir, config.store, &why);
    if (!opened) {
        spdlog::critical("cannot open the store: {}", why);
        return 1;
    }
    std::shared_ptr<store::SqliteStore> store = std::move(*opened);
    store->on_error([](std::string_view what) { spdlog::error("store: {}", what); });

    asio::io_context ioc(static_cast<int>(config.server.threads));
    auto dispatcher = std::make_shared<dispatch::Dispatcher>(
        ioc.get_executor(), store, config.dispatch, config.server.store_timeout);
    std::vector<dispatch::Dispatcher::Target> targets;
    for (const auto& j : config.jenkins) {
        auto client = jenkins::make_client(ioc.get_executor(), j, &why);
        if (!client) {
            spdlog::critical("jenkins {}: {}", j.name, why);
            return 1;
        }
        targets.push_back({j, std::move(*client)});
    }
    dispatcher->configure(runtime->config, std::move(targets));
    store->on_committed([weak = std::weak_ptr(dispatcher)] {
        if (auto d = weak.lock()) d->wake();
    });

    auto handler = std::make_shared<WebhookHandler>(runtime, store);
    http::Server server(ioc, server_options(config.server), handler);
    auto port = server.listen();
    if (!port) {
        spdlog::critical("cannot listen on {}:{}: {}", config.server.host, config.server.port,
                         port.error().message());
        return 1;
    }
    server.start();
    dispatcher->start();
    spdlog::info("hookrelay {} listening on {}:{} ({} source(s), {} rule(s), {} jenkins; store: "
                 "{} in {})",
                 HOOKRELAY_VERSION, config.server.host, *port, config.sources.size(),
                 config.rules.size(), config.jenkins.size(), store->kind(), config.state_dir);
    for (const auto& s : config.sources) {
        spdlog::info("source {} ({}) at POST {}{}", s.name, to_string(s.provider), s.path,
                     s.secrets.empty() ? " without verification (insecure: true)" : "");
    }
    if (!options.ready_file.empty()) {
        std::ofstream ready(options.ready_file, std::ios::trunc);
        ready << "http=" << config.server.host << ':' << *port << '\n';
    }

    asio::co_spawn(ioc, wait_for_shutdown(ioc, server, dispatcher, config.server.shutdown_grace),
                   asio::detached);
    std::vector<std::thread> threads;
    for (unsigned i = 1; i < config.server.threads; ++i)
        threads.emplace_back([&ioc] { ioc.run(); });
    ioc.run();
    for (auto& t : threads) t.join();
    spdlog::info("hookrelay stopped");
    return 0;
}

}  // namespace hookrelay::app
