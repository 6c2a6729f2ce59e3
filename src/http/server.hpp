// The HTTP/1.1 server: keep-alive, per-phase read deadlines, body and header limits, a connection
// cap and graceful stop. It knows nothing of webhooks: it hands each request to a Handler.
// Beast stays inside server.cpp; this header only needs Asio's io_context and awaitable.
#pragma once

#include <hookrelay/headers.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hookrelay::http {

/// The request line and headers, available before the body is read.
struct RequestHead {
    std::string method;  ///< "POST", "GET", ...
    std::string target;  ///< path and query as sent
    HeaderMap headers;
    std::optional<std::uint64_t> content_length;
    std::string remote;  ///< peer address, for logs
};

struct Request {
    RequestHead head;
    std::string body;
};

struct Response {
    unsigned status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  ///< extra fields, e.g. Allow
};

/// What the server calls. Both functions run on the connection's strand; neither may block.
class Handler {
  public:
    virtual ~Handler() = default;

    /// Called once the header block has arrived, before any body byte is read. Returning a
    /// response answers the request without reading its body (cheap rejection of junk: unknown
    /// path, wrong method, oversize, wrong content type); the connection is then closed.
    virtual std::optional<Response> check_head(const RequestHead& head) = 0;

    /// Handles a complete request.
    virtual boost::asio::awaitable<Response> handle(Request request) = 0;
};

struct ServerOptions {
    std::string host = "0.0.0.0";
    std::uint16_t port = 8080;
    std::size_t body_limit = 25u * 1024 * 1024;
    std::size_t header_limit = 64u * 1024;
    std::chrono::milliseconds header_timeout{10'000};
    std::chrono::milliseconds body_timeout{30'000};
    std::chrono::milliseconds idle_timeout{60'000};
    std::chrono::milliseconds write_timeout{10'000};
    std::size_t max_connections = 1024;
};

/// Owns the listening socket and every connection. Thread-safe: the io_context may run on any
/// number of threads (each connection has its own strand).
class Server {
  public:
    Server(boost::asio::io_context& ioc, ServerOptions options, std::shared_ptr<Handler> handler);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Binds and listens on options.host:options.port. Returns the bound port (useful with port
    /// 0), or the error (address in use, permission denied, not an IP address).
    boost::system::result<std::uint16_t> listen();

    /// Takes an already bound and listening TCP socket instead of listen() (systemd socket
    /// activation): it is neither bound nor listened on again, and options.host/port are unused.
    /// On success the server owns `native_fd` (stop() closes it) and returns its port; on failure
    /// (not an IPv4/IPv6 socket, not listening, already listening through listen()) the caller
    /// still owns it. Call at most one of listen() and adopt(), before start().
    boost::system::result<std::uint16_t> adopt(int native_fd);

    /// Starts accepting. Call after listen() or adopt().
    void start();

    /// Stops accepting and closes connections that are not in the middle of a request; requests
    /// being handled finish and get their response, then their connections close.
    void stop();

    /// Open connections right now.
    std::size_t connections() const noexcept;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace hookrelay::http
