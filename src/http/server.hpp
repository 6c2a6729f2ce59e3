// The HTTP/1.1 server that faces the internet: keep-alive, per-phase read deadlines, body and
// header limits, RFC 9112 framing checks, a connection cap with per-client limits and eviction of
// idle connections, a memory budget for request bodies, optional TLS, trusted proxies, graceful
// stop. It knows nothing of webhooks: it hands each request to a Handler.
// Beast stays inside server.cpp; this header only needs Asio's io_context and awaitable.
#pragma once

#include <hookrelay/headers.hpp>
#include <hookrelay/secret.hpp>

#include <hookrelay/cidr.hpp>
#include "http/framing.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hookrelay::http {

/// The request line and headers, available before the body is read.
struct RequestHead {
    std::string method;     ///< "POST", "GET", ...
    std::string target;     ///< path and query as sent
    unsigned version = 11;  ///< 10 or 11
    HeaderMap headers;
    std::optional<std::uint64_t> content_length;
    std::string remote;  ///< direct peer "address:port", for logs
    /// The client: the direct peer, or (behind a trusted proxy) the address the proxy forwarded
    /// for; nullopt when a trusted proxy's header named no usable address.
    std::optional<IpAddress> client;
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

/// A request the server answered by itself, before or instead of the handler.
struct Rejection {
    unsigned status = 400;    ///< 400, 408, 413, 431, 501, 503
    std::string_view reason;  ///< what was wrong, for logs
    /// The parsed head when there was one (a 413 after the headers, a framing 400); null for
    /// unparseable requests and refused connections.
    const RequestHead* head = nullptr;
    std::string_view remote;  ///< direct peer "address:port"
};

/// What the server calls. Every function runs on the connection's strand; none may block.
class Handler {
  public:
    virtual ~Handler() = default;

    /// Called once the header block has arrived, before any body byte is read. Returning a
    /// response answers the request without reading its body (cheap rejection of junk: unknown
    /// path, wrong method, oversize, wrong content type); the connection is then closed.
    virtual std::optional<Response> check_head(const RequestHead& head) = 0;

    /// Handles a complete request. A response with status >= 400 closes the connection.
    virtual boost::asio::awaitable<Response> handle(Request request) = 0;

    /// Told about every request and connection the server refused by itself (so it can be
    /// counted); the server has logged it already (rate-limited). Default: nothing.
    virtual void rejected(const Rejection& rejection) { (void)rejection; }
};

/// A certificate chain and private key, PEM, for the listener's TLS.
struct TlsCredentials {
    std::string certificate_chain;  ///< leaf first, then intermediates
    Secret private_key;
};

/// An immutable server TLS configuration (an OpenSSL context); opaque outside the server.
struct TlsContext;

/// Builds a TLS server context: TLS 1.2 and 1.3 only, forward-secret AEAD cipher suites, no
/// renegotiation or compression, the key checked against the certificate. Blocking only in that it
/// parses PEM. On failure `why` (when given) says what is wrong, never quoting the key.
std::shared_ptr<const TlsContext> make_tls_context(const TlsCredentials& credentials,
                                                   std::string* why = nullptr);

struct ServerOptions {
    std::string name = "http";  ///< for log lines: "http", "admin"
    std::string host = "0.0.0.0";
    std::uint16_t port = 8080;
    std::size_t body_limit = 25u * 1024 * 1024;
    std::size_t header_limit = 64u * 1024;
    std::chrono::milliseconds header_timeout{10'000};  ///< also: TLS handshake, and idle time
                                                       ///< before a connection earned trust
    std::chrono::milliseconds body_timeout{30'000};
    std::chrono::milliseconds idle_timeout{60'000};  ///< keep-alive wait after a 2xx answer
    std::chrono::milliseconds write_timeout{10'000};
    std::size_t max_connections = 1024;
    /// Connections one peer address may hold open (trusted proxies are exempt).
    std::size_t max_connections_per_client = 64;
    /// Bytes of request bodies held in memory at once over all connections; a body that does not
    /// fit is answered 503 before it is read.
    std::size_t body_memory = 128u * 1024 * 1024;
    /// The part of body_memory one client address may hold.
    std::size_t body_memory_per_client = 32u * 1024 * 1024;
    /// When closing a connection whose request was not read to its end, how long to keep reading
    /// (and discarding) so the client sees the answer rather than a TCP reset.
    std::chrono::milliseconds linger_timeout{2'000};
    /// Proxies whose forwarding header is believed (see client_address()).
    std::vector<Cidr> trusted_proxies;
    ForwardedHeader forwarded_header = ForwardedHeader::x_forwarded_for;
};

/// Owns the listening socket and every connection. Thread-safe: the io_context may run on any
/// number of threads (each connection has its own strand).
class Server {
  public:
    Server(boost::asio::io_context& ioc, ServerOptions options, std::shared_ptr<Handler> handler);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Serves TLS on every connection accepted from now on (nullptr: plain TCP). Connections
    /// already open keep the context they started with, so replacing a certificate (SIGHUP)
    /// drops nothing. Thread-safe.
    void set_tls(std::shared_ptr<const TlsContext> tls);

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

    /// Bytes of request bodies held right now (for tests and metrics).
    std::size_t body_bytes_in_flight() const noexcept;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

/// Runs the server's per-connection request loop over `input` (as if one client sent exactly
/// these bytes and then closed its side) against `handler`, without sockets, and returns every
/// byte the server wrote back. For fuzzers and framing tests. Blocking; creates its own
/// io_context. `reads`, when given, is set to the number of reads the loop made (each a system
/// call on a socket).
std::string serve_bytes(const ServerOptions& options, std::shared_ptr<Handler> handler,
                        std::string_view input, std::size_t* reads = nullptr);

/// The head the server writes before `response.body`: the status line of `version` (10 or 11),
/// then Server, Content-Type, the response's own fields, Connection as `keep_alive` and the
/// version require, and Content-Length; with the body after it, the same bytes Beast's serializer
/// writes for the message the server built from the same response. Pure; thread-safe.
std::string response_head(const Response& response, bool keep_alive, unsigned version);

}  // namespace hookrelay::http
