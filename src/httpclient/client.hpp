// The outbound HTTP(S) client, the only one in hookrelay: one per remote origin (a Jenkins
// controller, a forge's API). Generic: methods, targets, headers, bodies and limits, nothing of
// Jenkins or forges; the protocols are built on it (src/jenkins/client.cpp: crumbs, job paths,
// outcomes; src/forge_status/: commit statuses). Beast and OpenSSL stay in client.cpp.
//
// Behaviour:
//  * Keep-alive connections are pooled per client; at most max_in_flight calls run at once
//    (run(): further callers wait for a slot, inside request_timeout), so at most max_in_flight
//    connections are open. A pooled connection idle for pool_max_idle (4 s), or that the server
//    has closed
//    while idle (anything readable on it), is dropped before a byte of the request is written: a
//    new one is made. One that fails before
//    any response byte arrived is tried once more on a fresh connection, after dropping the
//    other idle ones (they most likely went the same way: the server restarted), unless the
//    request was written whole and is not idempotent: a POST the server may have acted on is
//    never sent twice by the client (Request::unanswered tells the caller).
//  * Deadlines: resolve + connect + TLS handshake share connect_timeout (getaddrinfo cannot be
//    cancelled: it runs detached and the caller stops waiting); each write and each read gets
//    io_timeout (the head is one read, each piece of the body another); run() bounds the whole
//    call (slot wait and every exchange in it) by request_timeout. Every failure's text names the
//    phase: "connect 10.0.0.5:8080: Connection refused", "read: timeout after 10000 ms", "request:
//    timeout after 30000 ms".
//  * TLS: verify_peer against the system default paths, or only against ca_file when set; host
//    name verification (IP SANs for IP literals); SNI for host names; TLS 1.2 or later. A failed
//    verification says OpenSSL's reason: "TLS handshake with host:443: certificate verify
//    failed: unable to get local issuer certificate".
//  * Responses: heads up to header_limit, bodies up to body_limit or the request's own
//    body_limit (a longer body is cut there, body_truncated set, the connection not reused).
//    Bodies are read in pieces into a string that grows as bytes arrive, never reserved from what
//    Content-Length claims. A head over header_limit is answered by its
//    status line alone when that is readable (head_too_large; the connection is not reused):
//    a caller may still know what the server did from the status. Redirects are never followed.
//  * Requests carry Host, User-Agent, Content-Length when there is a body (or the method is
//    POST/PUT/PATCH), keep-alive, and the caller's headers. The client never logs or returns
//    header values, so an Authorization header stays out of errors and logs.
#pragma once

#include "httpclient/encoding.hpp"

#include <hookrelay/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hookrelay::httpclient {

/// How one client talks to its origin.
struct Options {
    std::string name;     ///< who it talks to, for log lines: "jenkins ci"
    std::string url;      ///< base URL: http(s)://host[:port]/path/ (parse_base_url)
    std::string ca_file;  ///< PEM bundle; empty: the system CAs
    std::chrono::milliseconds connect_timeout{5'000};   ///< resolve + TCP connect + TLS handshake
    std::chrono::milliseconds io_timeout{10'000};       ///< each write and each read
    std::chrono::milliseconds request_timeout{30'000};  ///< one run(), all phases
    unsigned max_in_flight = 4;                         ///< concurrent run()s (0 counts as 1)
    std::size_t body_limit = 64 * 1024;                 ///< response body bytes read
    std::uint32_t header_limit = 32 * 1024;             ///< response head bytes read
    std::string user_agent;                             ///< empty: "hookrelay/<version>"
    /// A kept-alive connection is used again only within this long of its last answer: under
    /// servers' keep-alive timeouts and the idle timeouts of NAT tables and load balancers. 0:
    /// never reused.
    std::chrono::milliseconds pool_max_idle{4'000};
};

enum class Method { get, head, post, put, patch, delete_ };

/// One request to the origin.
struct Request {
    Method method = Method::get;
    /// Origin-form target: the path (starting with '/', usually base().path + "...") and query.
    std::string target;
    /// Sent as given (Authorization, Content-Type, Accept, Cookie, ...).
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    /// The most response body bytes to keep for this request (a JSON API answer may need more
    /// than the client's default); 0: Options::body_limit.
    std::size_t body_limit = 0;
    /// When set: whether the server may have acted on this request without answering it. False
    /// when send() starts, true once the whole request is written, false again when an answer
    /// has been read (a body cut short by an error leaves it true: the exchange fails) or send()
    /// sends it again on a fresh connection. send() does that only where it cannot do a thing
    /// twice: the pooled connection was closed by the peer before any answer, and the request
    /// was not written whole or is idempotent (GET, HEAD, PUT, DELETE). A POST or PATCH the peer
    /// may have taken is never sent again by send(). It outlives a call that request_timeout
    /// cut short, which leaves no Exchange to ask.
    std::shared_ptr<bool> unanswered;
};

/// A response, or as much of it as the limits let in.
struct Response {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  ///< in order, names as sent
    std::string body;
    bool head_too_large = false;  ///< only the status line was read (head over header_limit)
    bool body_truncated = false;  ///< the body went on past body_limit

    /// The first header `name` (case-insensitive); "" when absent.
    std::string header(std::string_view name) const;
    /// Every header `name` (case-insensitive), in order (Set-Cookie).
    std::vector<std::string> headers_named(std::string_view name) const;
};

/// What one request/response exchange came to.
struct Exchange {
    bool ok = false;  ///< a response arrived (at least its status line)
    Response response;
    std::string error;  ///< when !ok: a short text naming the phase, never a header value
};

/// What a bounded call came to: its value, or why it has none.
template <class T>
struct Bounded {
    std::optional<T> value;
    /// When value is empty: "request: timeout after N ms" (request_timeout passed), "cancelled",
    /// "internal error: ..." (an exception escaped the work).
    std::string error;
};

/// "HTTP 404 Not Found" (the reason phrase when the status has a standard one).
std::string status_text(int status);

/// One origin's client. Safe to use concurrently from coroutines on any executor.
class Client {
  public:
    /// Builds a client whose sockets, resolver and timers run on `executor` (any number of
    /// threads). Fails with errc::bad_config (a one-line reason in *why, when given) when the url
    /// is not http(s)://host[:port]/path/ or ca_file (also checked for http URLs, for the admin's
    /// sake) or the system CAs cannot be loaded.
    static result<std::shared_ptr<Client>> make(boost::asio::any_io_executor executor,
                                                Options options, std::string* why = nullptr);
    virtual ~Client() = default;

    virtual const Options& options() const noexcept = 0;
    virtual const BaseUrl& base() const noexcept = 0;
    /// "host:port" ("[v6]:port"), for messages.
    virtual const std::string& endpoint() const noexcept = 0;

    /// One exchange on a pooled connection or a fresh one (see the behaviour above). Neither a
    /// slot nor the whole-call deadline: call it inside run() (or use request()). Never throws
    /// for network failures: they are !ok with an error.
    virtual boost::asio::awaitable<Exchange> send(Request request) = 0;

    /// send() inside run(): one bounded request. A run() failure is !ok with its error.
    boost::asio::awaitable<Exchange> request(Request request);

    /// Runs `work` holding one of max_in_flight slots, the slot wait and the work together under
    /// request_timeout (the work is cancelled when it passes). Exceptions escaping the work are
    /// caught. Never throws.
    template <class T>
    boost::asio::awaitable<Bounded<T>> run(boost::asio::awaitable<T> work) {
        auto slot = std::make_shared<std::optional<T>>();
        Bounded<T> out;
        out.error = co_await run_void(fill(std::move(work), slot));
        if (out.error.empty()) out.value = std::move(*slot);
        co_return out;
    }

  protected:
    /// run() for work without a value: "" when it finished, else the reason it did not.
    virtual boost::asio::awaitable<std::string> run_void(boost::asio::awaitable<void> work) = 0;

  private:
    template <class T>
    static boost::asio::awaitable<void> fill(boost::asio::awaitable<T> work,
                                             std::shared_ptr<std::optional<T>> slot) {
        *slot = co_await std::move(work);
    }
};

}  // namespace hookrelay::httpclient
