#include "util/resolve.hpp"

#include "util/spawn.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <utility>

namespace hookrelay {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto k_use_tuple = asio::as_tuple(asio::use_awaitable);

using Channel =
    asio::experimental::concurrent_channel<void(error_code, std::vector<tcp::endpoint>)>;

asio::awaitable<void> resolve_into(asio::any_io_executor executor, std::string host,
                                   std::string service, std::shared_ptr<Channel> channel) {
    tcp::resolver resolver(executor);
    auto [ec, results] = co_await resolver.async_resolve(host, service, k_use_tuple);
    std::vector<tcp::endpoint> endpoints;
    if (!ec) {
        for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    }
    channel->try_send(ec, std::move(endpoints));
}

}  // namespace

asio::awaitable<Resolved> resolve_within(asio::any_io_executor executor, std::string host,
                                         std::string service,
                                         std::chrono::steady_clock::time_point deadline) {
    auto channel = std::make_shared<Channel>(executor, 1);
    spawn_logged(executor, resolve_into(executor, host, std::move(service), channel),
                 "resolving " + host);
    asio::steady_timer timer(executor, deadline);
    auto answer = co_await (channel->async_receive(k_use_tuple) || timer.async_wait(k_use_tuple));
    Resolved resolved;
    if (answer.index() == 1) {
        resolved.timed_out = true;
        co_return resolved;
    }
    auto [ec, endpoints] = std::move(std::get<0>(answer));
    if (ec) {
        resolved.error = ec.message();
    } else if (endpoints.empty()) {
        resolved.error = "no addresses";
    } else {
        resolved.endpoints = std::move(endpoints);
    }
    co_return resolved;
}

}  // namespace hookrelay
