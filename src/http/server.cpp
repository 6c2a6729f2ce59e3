#include "http/server.hpp"

#include <hookrelay/version.hpp>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <list>
#include <mutex>

namespace hookrelay::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto k_use_tuple = asio::as_tuple(asio::use_awaitable);

// After accept() fails for lack of file descriptors, wait this long before trying again, so a
// descriptor shortage does not become a busy loop.
constexpr std::chrono::milliseconds k_accept_error_backoff{100};

namespace {

// One open connection, as stop() sees it.
struct Connection {
    explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}
    beast::tcp_stream stream;
    std::atomic<bool> busy{false};  // a request is being handled: let it finish
};

std::string reason_body(std::string_view status, std::string_view reason) {
    return std::string(R"({"status":")") + std::string(status) + R"(","error":")" +
           std::string(reason) + "\"}\n";
}

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
    Impl(asio::io_context& ioc, ServerOptions options, std::shared_ptr<Handler> handler)
        : ioc(ioc),
          options(std::move(options)),
          handler(std::move(handler)),
          acceptor(asio::make_strand(ioc)) {}

    asio::io_context& ioc;
    ServerOptions options;
    std::shared_ptr<Handler> handler;
    tcp::acceptor acceptor;
    std::atomic<bool> stopping{false};
    std::atomic<std::size_t> open{0};

    std::mutex mutex;  // guards live
    std::list<std::weak_ptr<Connection>> live;

    asio::awaitable<void> accept_loop();
    asio::awaitable<void> session(std::shared_ptr<Connection> conn);
    asio::awaitable<void> refuse(tcp::socket socket);
    asio::awaitable<bool> write(Connection& conn, Response response, bool keep_alive,
                                unsigned version);
};

namespace {

Response plain_error(unsigned status, std::string_view reason) {
    Response r;
    r.status = status;
    r.body = reason_body("rejected", reason);
    return r;
}

bool is_disconnect(const boost::system::error_code& ec) {
    return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
           ec == asio::error::bad_descriptor || ec == beast::error::timeout ||
           ec == bhttp::error::partial_message;
}

}  // namespace

asio::awaitable<bool> Server::Impl::write(Connection& conn, Response response, bool keep_alive,
                                          unsigned version) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(response.status), version};
    res.set(bhttp::field::server, "hookrelay/" HOOKRELAY_VERSION);
    res.set(bhttp::field::content_type, response.content_type);
    for (auto& [name, value] : response.headers) res.set(name, value);
    res.body() = std::move(response.body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    conn.stream.expires_after(options.write_timeout);
    auto [ec, n] = co_await bhttp::async_write(conn.stream, res, k_use_tuple);
    (void)n;
    co_return !ec;
}

asio::awaitable<void> Server::Impl::session(std::shared_ptr<Connection> conn) {
    struct Count {
        std::atomic<std::size_t>& n;
        ~Count() { --n; }
    } count{open};

    std::string remote;
    {
        boost::system::error_code ec;
        const auto ep = conn->stream.socket().remote_endpoint(ec);
        if (!ec) remote = ep.address().to_string() + ":" + std::to_string(ep.port());
    }

    beast::flat_buffer buffer;
    bool first = true;
    while (!stopping) {
        bhttp::request_parser<bhttp::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
        parser.body_limit(options.body_limit);

        // The first request must arrive within header_timeout; on a kept-alive connection the
        // next one may take idle_timeout to start.
        conn->stream.expires_after(first ? options.header_timeout : options.idle_timeout);
        auto [ec, n] = co_await bhttp::async_read_header(conn->stream, buffer, parser, k_use_tuple);
        (void)n;
        if (ec) {
            if (ec == bhttp::error::header_limit) {
                co_await write(*conn, plain_error(431, "request headers too large"), false, 11);
            } else if (ec == bhttp::error::body_limit) {
                // Beast rejects a Content-Length over body_limit while parsing the headers.
                co_await write(*conn, plain_error(413, "body exceeds the configured body_limit"),
                               false, 11);
            } else if (!is_disconnect(ec)) {
                co_await write(*conn, plain_error(400, "malformed HTTP request"), false, 11);
            }
            break;
        }
        conn->busy = true;
        const auto& req = parser.get();
        const unsigned version = req.version();

        Request request;
        request.head.method = std::string(req.method_string());
        request.head.target = std::string(req.target());
        request.head.remote = remote;
        for (const auto& field : req) {
            request.head.headers.add(std::string(field.name_string()), std::string(field.value()));
        }
        if (auto length = parser.content_length()) request.head.content_length = *length;

        if (auto early = handler->check_head(request.head)) {
            // The body was not read, so the connection cannot carry another request.
            co_await write(*conn, std::move(*early), false, version);
            break;
        }

        if (auto expect = req[bhttp::field::expect]; beast::iequals(expect, "100-continue")) {
            bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, version};
            conn->stream.expires_after(options.write_timeout);
            auto [wec, wn] = co_await bhttp::async_write(conn->stream, cont, k_use_tuple);
            (void)wn;
            if (wec) break;
        }

        conn->stream.expires_after(options.body_timeout);
        auto [bec, bn] = co_await bhttp::async_read(conn->stream, buffer, parser, k_use_tuple);
        (void)bn;
        if (bec) {
            if (bec == bhttp::error::body_limit) {
                co_await write(*conn, plain_error(413, "body exceeds the configured body_limit"),
                               false, version);
            } else if (bec == beast::error::timeout) {
                spdlog::warn("http: {} did not send the body within body_timeout", remote);
            }
            break;
        }
        const bool keep_alive = parser.get().keep_alive();
        request.body = std::move(parser.get().body());

        conn->stream.expires_never();
        Response response = co_await handler->handle(std::move(request));
        const bool keep = keep_alive && !stopping;
        const bool written = co_await write(*conn, std::move(response), keep, version);
        conn->busy = false;
        if (!written || !keep) break;
        first = false;
    }
    boost::system::error_code ignored;
    conn->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    conn->stream.close();
}

asio::awaitable<void> Server::Impl::refuse(tcp::socket socket) {
    Connection conn(std::move(socket));
    co_await write(conn, plain_error(503, "too many connections"), false, 11);
    conn.stream.close();
}

asio::awaitable<void> Server::Impl::accept_loop() {
    auto self = shared_from_this();
    while (!stopping) {
        auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(ioc), k_use_tuple);
        if (ec) {
            if (stopping || ec == asio::error::operation_aborted) break;
            spdlog::error("http: accept failed: {}", ec.message());
            asio::steady_timer timer(ioc, k_accept_error_backoff);
            co_await timer.async_wait(k_use_tuple);
            continue;
        }
        if (open >= options.max_connections) {
            spdlog::warn("http: connection cap of {} reached; refusing a connection",
                         options.max_connections);
            auto executor = socket.get_executor();
            asio::co_spawn(executor, refuse(std::move(socket)), asio::detached);
            continue;
        }
        ++open;
        auto conn = std::make_shared<Connection>(std::move(socket));
        {
            std::lock_guard lock(mutex);
            live.remove_if([](const auto& w) { return w.expired(); });
            live.push_back(conn);
        }
        auto executor = conn->stream.get_executor();
        asio::co_spawn(executor, session(std::move(conn)), asio::detached);
    }
}

Server::Server(asio::io_context& ioc, ServerOptions options, std::shared_ptr<Handler> handler)
    : impl_(std::make_shared<Impl>(ioc, std::move(options), std::move(handler))) {}

Server::~Server() = default;

boost::system::result<std::uint16_t> Server::listen() {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(impl_->options.host, ec);
    if (ec) return ec;
    const tcp::endpoint endpoint(address, impl_->options.port);
    auto& acceptor = impl_->acceptor;
    acceptor.open(endpoint.protocol(), ec);
    if (ec) return ec;
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    acceptor.bind(endpoint, ec);
    if (ec) return ec;
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return ec;
    return acceptor.local_endpoint().port();
}

boost::system::result<std::uint16_t> Server::adopt(int native_fd) {
    // The protocol comes from the socket itself: systemd's ListenStream=8080 is an IPv6 socket
    // (dual-stack), ListenStream=0.0.0.0:8080 an IPv4 one.
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    if (::getsockname(native_fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        return boost::system::error_code(errno, boost::system::system_category());
    }
    if (address.ss_family != AF_INET && address.ss_family != AF_INET6) {
        return boost::system::error_code(asio::error::address_family_not_supported);
    }
    int listening = 0;
    socklen_t size = sizeof(listening);
    if (::getsockopt(native_fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0) {
        return boost::system::error_code(errno, boost::system::system_category());
    }
    if (listening == 0) return boost::system::error_code(asio::error::invalid_argument);
    boost::system::error_code ec;
    auto& acceptor = impl_->acceptor;
    acceptor.assign(address.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), native_fd, ec);
    if (ec) return ec;
    const auto endpoint = acceptor.local_endpoint(ec);
    if (ec) return ec;
    return endpoint.port();
}

void Server::start() {
    asio::co_spawn(impl_->acceptor.get_executor(), impl_->accept_loop(), asio::detached);
}

void Server::stop() {
    auto impl = impl_;
    if (impl->stopping.exchange(true)) return;
    asio::post(impl->acceptor.get_executor(), [impl] {
        boost::system::error_code ignored;
        impl->acceptor.close(ignored);
    });
    std::lock_guard lock(impl->mutex);
    for (auto& weak : impl->live) {
        auto conn = weak.lock();
        if (!conn) continue;
        asio::post(conn->stream.get_executor(), [conn] {
            // The session may have closed its socket a moment ago: ignore that error rather
            // than throw out of a handler (which would terminate the process).
            boost::system::error_code ignored;
            if (!conn->busy) conn->stream.socket().cancel(ignored);
        });
    }
}

std::size_t Server::connections() const noexcept {
    return impl_->open;
}

}  // namespace hookrelay::http
