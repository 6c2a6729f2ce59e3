#include "httpclient/client.hpp"

#include "util/http_read.hpp"
#include "util/resolve.hpp"

#include <hookrelay/version.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace hookrelay::httpclient {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Steady = std::chrono::steady_clock;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;

constexpr auto k_use_tuple = asio::as_tuple(asio::use_awaitable);
// Response bodies are read in pieces of this size, up to the body limit.
constexpr std::size_t k_body_piece = 16 * 1024;

std::string timeout_text(std::string_view phase, std::chrono::milliseconds limit) {
    return std::string(phase) + ": timeout after " + std::to_string(limit.count()) + " ms";
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
               return lower(x) == lower(y);
           });
}

// Errors that mean the peer closed a kept-alive connection while it sat idle in the pool.
bool is_closed_by_peer(const error_code& ec) {
    return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == asio::error::connection_aborted || ec == asio::error::not_connected ||
           ec == asio::error::bad_descriptor || ec == ssl::error::stream_truncated;
}

// RFC 9110 §9.2.2: sending one of these twice does what sending it once does.
bool idempotent(Method method) {
    return method == Method::get || method == Method::head || method == Method::put ||
           method == Method::delete_;
}

bhttp::verb verb_of(Method method) {
    switch (method) {
        case Method::get:
            return bhttp::verb::get;
        case Method::head:
            return bhttp::verb::head;
        case Method::post:
            return bhttp::verb::post;
        case Method::put:
            return bhttp::verb::put;
        case Method::patch:
            return bhttp::verb::patch;
        case Method::delete_:
            return bhttp::verb::delete_;
    }
    return bhttp::verb::get;
}

// host_name_verification answers false without an OpenSSL error code, which leaves
// SSL_get_verify_result at X509_V_OK; record the mismatch so the error can name it.
struct VerifyHostName {
    ssl::host_name_verification check;
    bool operator()(bool preverified, ssl::verify_context& ctx) const {
        if (!preverified) return false;
        const bool ok = check(preverified, ctx);
        if (!ok) X509_STORE_CTX_set_error(ctx.native_handle(), X509_V_ERR_HOSTNAME_MISMATCH);
        return ok;
    }
};

// One kept-alive connection, plain or TLS.
struct Connection {
    // Beast reads what the buffer has room for, at least 512 bytes, and the parser takes every
    // byte it is given, so a buffer left to grow by itself stays at 512 bytes: a response of a
    // few KiB (a build's JSON, a forge's answer) would take a read per 512 bytes.
    Connection() { buffer.reserve(k_body_piece); }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
    beast::flat_buffer buffer;
    std::chrono::steady_clock::time_point pooled_at;  // when it was last given back to the pool

    beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
    ~Connection() {
        error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
        lowest().socket().close(ignored);
    }
};

// Whether a kept-alive connection back from the pool may carry a request: it has waited there
// less than `max_idle`, and its peer has sent nothing since the last answer. The age limit
// (Options::pool_max_idle) keeps requests off connections a server is closing at that moment
// for its keep-alive timeout, and off those a NAT table or load balancer forgot without a word
// (the answer to the request would be a reset, and a POST written whole is not sent again). An
// idle HTTP/1.1 connection is sent nothing, so anything readable is the peer closing it (end of
// stream, a reset, a TLS close_notify) or bytes nobody asked for. Either way it is dropped
// before a byte of the request goes out. One peek that never waits.
bool still_open(Connection& conn, std::chrono::steady_clock::time_point now,
                std::chrono::milliseconds max_idle) {
    if (max_idle <= std::chrono::milliseconds::zero() || now - conn.pooled_at >= max_idle) {
        return false;
    }
    char byte = 0;
    const auto n =
        ::recv(conn.lowest().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// What one exchange came to, with what the pool needs to know.
struct Sent {
    Exchange exchange;
    bool keep_alive = false;
    bool closed = false;           // when !ok: the peer had closed the connection
    bool written = false;          // the whole request was written
    bool response_started = true;  // when !ok: some response bytes had arrived
};

Sent failed(std::string error) {
    Sent sent;
    sent.exchange.error = std::move(error);
    return sent;
}

class ClientImpl final : public Client, public std::enable_shared_from_this<ClientImpl> {
  public:
    ClientImpl(asio::any_io_executor executor, Options options, BaseUrl base,
               std::shared_ptr<ssl::context> tls)
        : executor_(std::move(executor)),
          options_(std::move(options)),
          base_(std::move(base)),
          tls_(std::move(tls)),
          max_connections_(std::max(1u, options_.max_in_flight)),
          slots_(executor_, max_connections_) {
        if (options_.user_agent.empty()) options_.user_agent = "hookrelay/" HOOKRELAY_VERSION;
        error_code ec;
        host_is_ip_ = (asio::ip::make_address(base_.host, ec), !ec);
        endpoint_ =
            (base_.host.find(':') != std::string::npos ? "[" + base_.host + "]" : base_.host) +
            ":" + std::to_string(base_.port);
    }

    const Options& options() const noexcept override { return options_; }
    const BaseUrl& base() const noexcept override { return base_; }
    const std::string& endpoint() const noexcept override { return endpoint_; }

    asio::awaitable<Exchange> send(Request request) override {
        auto self = shared_from_this();
        const auto req = make_request(request);
        bool* const unanswered = request.unanswered.get();
        if (unanswered) *unanswered = false;
        auto conn = take_open();
        const bool reused = conn != nullptr;
        if (!conn) {
            std::string error;
            conn = co_await connect(error);
            if (!conn) co_return failed(std::move(error)).exchange;
        }
        auto sent = co_await exchange(*conn, req, request.body_limit, unanswered);
        // A pooled connection the peer closed before any answer: sent again on a fresh one when
        // that cannot do a thing twice. A request written whole may have been taken and acted
        // on (a build queued) by a server that then went away without answering; a POST is not
        // sent twice for that: the caller hears it failed unanswered (Request::unanswered) and
        // decides. A close while it sat idle was seen before anything was written (still_open).
        const bool closed_unanswered =
            !sent.exchange.ok && reused && sent.closed && !sent.response_started;
        // The others in the pool most likely went the same way (the server restarted).
        if (closed_unanswered) drop_idle();
        if (closed_unanswered && (!sent.written || idempotent(request.method))) {
            if (unanswered) *unanswered = false;
            conn.reset();
            std::string error;
            conn = co_await connect(error);
            if (!conn) co_return failed(std::move(error)).exchange;
            sent = co_await exchange(*conn, req, request.body_limit, unanswered);
        }
        if (sent.exchange.ok && sent.keep_alive) give_back(std::move(conn));
        co_return std::move(sent.exchange);
    }

  protected:
    asio::awaitable<std::string> run_void(asio::awaitable<void> work) override {
        auto self = shared_from_this();
        std::string error;
        try {
            asio::steady_timer watchdog(co_await asio::this_coro::executor,
                                        options_.request_timeout);
            // The timer's wait ends with an error code, not an exception: when the work ends
            // first the group cancels it, and a thrown operation_aborted cost an unwind per
            // request.
            auto result = co_await (in_slot(std::move(work)) || watchdog.async_wait(k_use_tuple));
            if (result.index() != 0) {
                const auto [ec] = std::get<1>(result);
                error = ec == asio::error::operation_aborted
                            ? "cancelled"
                            : timeout_text("request", options_.request_timeout);
            }
        } catch (const boost::system::system_error& e) {
            error = e.code() == asio::error::operation_aborted
                        ? "cancelled"
                        : std::string("internal error: ") + e.what();
        } catch (const std::exception& e) {
            error = std::string("internal error: ") + e.what();
        }
        co_return error;
    }

  private:
    asio::awaitable<void> in_slot(asio::awaitable<void> work) {
        // A full channel of max_in_flight messages is the semaphore: sending takes a slot (and
        // waits, cancellably, while all are taken); receiving gives one back.
        co_await slots_.async_send(error_code{}, asio::use_awaitable);
        struct Release {
            RequestSlots& slots;
            ~Release() {
                slots.try_receive([](error_code) {});
            }
        } release{slots_};
        co_await std::move(work);
    }

    bhttp::request<bhttp::string_body> make_request(const Request& request) const {
        bhttp::request<bhttp::string_body> req{verb_of(request.method), request.target, 11};
        req.set(bhttp::field::host, base_.host_header);
        req.set(bhttp::field::user_agent, options_.user_agent);
        for (const auto& [name, value] : request.headers) req.set(name, value);
        req.body() = request.body;
        req.keep_alive(true);
        req.prepare_payload();
        return req;
    }

    // The most recently pooled connection still open (still_open); those found closed are
    // dropped (closed after the lock is let go).
    std::unique_ptr<Connection> take_open() {
        std::vector<std::unique_ptr<Connection>> closed;
        std::lock_guard lock(mutex_);
        const auto now = Steady::now();  // after any give_back() that came first
        while (!idle_.empty()) {
            auto conn = std::move(idle_.back());
            idle_.pop_back();
            if (still_open(*conn, now, options_.pool_max_idle)) return conn;
            closed.push_back(std::move(conn));
        }
        return nullptr;
    }

    void give_back(std::unique_ptr<Connection> conn) {
        conn->pooled_at = Steady::now();
        std::lock_guard lock(mutex_);
        if (idle_.size() < max_connections_) idle_.push_back(std::move(conn));
    }

    void drop_idle() {
        std::vector<std::unique_ptr<Connection>> stale;
        std::lock_guard lock(mutex_);
        stale.swap(idle_);
    }

    // `unanswered` (when not null) is set once the whole request is written and cleared when
    // an answer has been read (its status line, for a head too large): Request::unanswered.
    asio::awaitable<Sent> exchange(Connection& conn, const bhttp::request<bhttp::string_body>& req,
                                   std::size_t body_limit, bool* unanswered) {
        if (conn.secure) {
            co_return co_await exchange_on(*conn.secure, conn, req, body_limit, unanswered);
        }
        co_return co_await exchange_on(*conn.plain, conn, req, body_limit, unanswered);
    }

    template <class Stream>
    asio::awaitable<Sent> exchange_on(Stream& stream, Connection& conn,
                                      const bhttp::request<bhttp::string_body>& req,
                                      std::size_t body_limit, bool* unanswered) {
        Sent sent;
        auto& lowest = conn.lowest();
        conn.buffer.consume(conn.buffer.size());

        // A plain connection's request is first written at once, without waiting: a kept-alive
        // socket's send buffer nearly always takes the whole of it, and a write that needs no
        // wait needs no io_timeout timer either (arming and cancelling one, and resuming through
        // the scheduler, was a fixed cost of every request). What the socket does not take now
        // is written as before, under io_timeout.
        bhttp::request_serializer<bhttp::string_body> serializer(req);
        error_code wec;
        if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
            auto& socket = stream.socket();
            error_code mode;
            if (!socket.non_blocking()) socket.non_blocking(true, mode);
            if (!mode) {
                bhttp::write(socket, serializer, wec);
                if (wec == asio::error::would_block || wec == asio::error::try_again) wec = {};
            }
        }
        if (!wec && !serializer.is_done()) {
            lowest.expires_after(options_.io_timeout);
            auto [ec, written] = co_await bhttp::async_write(stream, serializer, k_use_tuple);
            (void)written;
            wec = ec;
        }
        if (wec) {
            sent.response_started = false;
            sent.closed = is_closed_by_peer(wec);
            sent.exchange.error = wec == beast::error::timeout
                                      ? timeout_text("write", options_.io_timeout)
                                      : "write: " + wec.message();
            co_return sent;
        }
        sent.written = true;
        if (unanswered) *unanswered = true;

        // The head, then the body in pieces of k_body_piece into a string that grows only as
        // bytes arrive (never reserved from what Content-Length claims), cut at the limit. The
        // parser's own body_limit would refuse a long Content-Length before reading any of it,
        // and the caller would get nothing of an error page. io_timeout for the head and for
        // each piece of the body.
        const std::size_t limit = body_limit > 0 ? body_limit : options_.body_limit;
        bhttp::response_parser<bhttp::buffer_body> parser;
        parser.body_limit(boost::none);  // the loop below stops at `limit`
        parser.header_limit(options_.header_limit);
        if (req.method() == bhttp::verb::head) parser.skip(true);
        lowest.expires_after(options_.io_timeout);
        const auto hec = co_await read_message_head(stream, conn.buffer, parser);
        if (hec == bhttp::error::header_limit) {
            // The head was too large, but its status line may still say what the server did.
            // The parser has consumed and read it when it got that far; else it is still at the
            // front of the buffer.
            std::optional<int> code;
            if (parser.got_some()) {
                code = static_cast<int>(parser.get().result_int());
            } else {
                const auto data = conn.buffer.data();
                code = status_line_code(
                    std::string_view(static_cast<const char*>(data.data()), data.size()));
            }
            if (code) {
                if (unanswered) *unanswered = false;
                lowest.expires_never();
                sent.exchange.ok = true;
                sent.exchange.response.status = *code;
                sent.exchange.response.head_too_large = true;
                co_return sent;  // keep_alive false: the rest of the head is still unread
            }
        }
        if (hec) {
            lowest.expires_never();
            read_failed(hec, parser.got_some() || conn.buffer.size() > 0, sent);
            co_return sent;
        }
        std::string body;
        std::array<char, k_body_piece> piece{};
        bool truncated = false;
        while (!parser.is_done()) {
            parser.get().body().data = piece.data();
            parser.get().body().size = piece.size();
            lowest.expires_after(options_.io_timeout);
            auto bec = co_await read_whole_message(stream, conn.buffer, parser);
            if (bec == bhttp::error::need_buffer) bec = {};
            if (bec) {
                lowest.expires_never();
                read_failed(bec, true, sent);
                co_return sent;
            }
            const std::size_t got = piece.size() - parser.get().body().size;
            const std::size_t room = limit - body.size();
            body.append(piece.data(), std::min(got, room));
            if (got > room) {
                truncated = true;
                break;
            }
        }
        lowest.expires_never();
        if (unanswered) *unanswered = false;
        auto& res = parser.get();
        auto& out = sent.exchange.response;
        sent.exchange.ok = true;
        out.status = static_cast<int>(res.result_int());
        for (const auto& field : res) {
            out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
        }
        out.body = std::move(body);
        out.body_truncated = truncated;
        sent.keep_alive = !truncated && parser.is_done() && res.keep_alive();
        co_return sent;
    }

    // Sent's error for a failed read, and whether the peer had closed the connection.
    void read_failed(const error_code& ec, bool started, Sent& sent) const {
        sent.response_started = started;
        sent.closed = is_closed_by_peer(ec);
        sent.exchange.error = ec == beast::error::timeout
                                  ? timeout_text("read", options_.io_timeout)
                                  : "read: " + ec.message();
    }

    // Resolve, connect and (for https) handshake, all within connect_timeout.
    asio::awaitable<std::unique_ptr<Connection>> connect(std::string& error) {
        const auto deadline = Steady::now() + options_.connect_timeout;
        std::vector<tcp::endpoint> endpoints;
        error_code ec;
        const auto address = asio::ip::make_address(base_.host, ec);
        if (!ec) {
            endpoints.emplace_back(address, base_.port);
        } else {
            asio::steady_timer timer(executor_, deadline);
            auto found =
                co_await resolve_within(executor_, base_.host, std::to_string(base_.port), timer);
            if (found.timed_out) {
                error = timeout_text("resolve " + base_.host, options_.connect_timeout);
                co_return nullptr;
            }
            if (found.failed()) {
                error = "resolve " + base_.host + ": " + found.error;
                co_return nullptr;
            }
            endpoints = std::move(found.endpoints);
        }

        beast::tcp_stream stream(executor_);
        stream.expires_at(deadline);
        auto [cec, endpoint] = co_await stream.async_connect(endpoints, k_use_tuple);
        (void)endpoint;
        if (cec) {
            error = cec == beast::error::timeout
                        ? timeout_text("connect " + endpoint_, options_.connect_timeout)
                        : "connect " + endpoint_ + ": " + cec.message();
            co_return nullptr;
        }
        stream.expires_never();
        error_code ignored;
        stream.socket().set_option(tcp::no_delay(true), ignored);

        auto conn = std::make_unique<Connection>();
        if (!tls_) {
            conn->plain.emplace(std::move(stream));
            co_return conn;
        }
        conn->secure.emplace(std::move(stream), *tls_);
        auto& secure = *conn->secure;
        if (!host_is_ip_) {
            // SNI; IP literals are not sent (RFC 6066 §3).
            SSL_set_tlsext_host_name(secure.native_handle(), base_.host.c_str());
        }
        secure.set_verify_mode(ssl::verify_peer);
        secure.set_verify_callback(VerifyHostName{ssl::host_name_verification(base_.host)});
        conn->lowest().expires_at(deadline);
        auto [hec] = co_await secure.async_handshake(ssl::stream_base::client, k_use_tuple);
        conn->lowest().expires_never();
        if (hec) {
            const std::string what = "TLS handshake with " + endpoint_;
            const long verify = SSL_get_verify_result(secure.native_handle());
            if (hec == beast::error::timeout) {
                error = timeout_text(what, options_.connect_timeout);
            } else if (verify != X509_V_OK) {
                error =
                    what + ": certificate verify failed: " + X509_verify_cert_error_string(verify);
            } else {
                error = what + ": " + hec.message();
            }
            co_return nullptr;
        }
        co_return conn;
    }

    using RequestSlots = asio::experimental::concurrent_channel<void(error_code)>;

    asio::any_io_executor executor_;
    Options options_;
    const BaseUrl base_;
    const std::shared_ptr<ssl::context> tls_;
    const std::size_t max_connections_;
    bool host_is_ip_ = false;
    std::string endpoint_;
    RequestSlots slots_;

    std::mutex mutex_;  // guards idle_; never held across co_await
    std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace

std::string Response::header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
        if (iequals(k, name)) return v;
    }
    return {};
}

std::vector<std::string> Response::headers_named(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : headers) {
        if (iequals(k, name)) out.push_back(v);
    }
    return out;
}

std::string status_text(int status) {
    std::string text = "HTTP " + std::to_string(status);
    const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
    if (!reason.empty() && reason.front() != '<') text += " " + std::string(reason);
    return text;
}

asio::awaitable<Exchange> Client::request(Request request) {
    auto bounded = co_await run(send(std::move(request)));
    if (bounded.value) co_return std::move(*bounded.value);
    Exchange failure;
    failure.error = std::move(bounded.error);
    co_return failure;
}

result<std::shared_ptr<Client>> Client::make(boost::asio::any_io_executor executor, Options options,
                                             std::string* why) {
    auto fail = [&](std::string reason) -> result<std::shared_ptr<Client>> {
        if (why) *why = std::move(reason);
        return make_error_code(errc::bad_config);
    };
    std::string reason;
    auto base = parse_base_url(options.url, reason);
    if (!base) return fail(std::move(reason));

    std::shared_ptr<ssl::context> tls;
    if (base->tls || !options.ca_file.empty()) {
        tls = std::make_shared<ssl::context>(ssl::context::tls_client);
        error_code ec;
        tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                             ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                             ssl::context::no_tlsv1_1,
                         ec);
        tls->set_verify_mode(ssl::verify_peer, ec);
        if (options.ca_file.empty()) {
            tls->set_default_verify_paths(ec);
            if (ec) return fail("cannot load the system CA certificates: " + ec.message());
        } else {
            tls->load_verify_file(options.ca_file, ec);
            if (ec) return fail("cannot load ca_file '" + options.ca_file + "': " + ec.message());
        }
        if (!base->tls) tls.reset();  // checked for the admin's sake; unused over http
    }
    return std::shared_ptr<Client>(std::make_shared<ClientImpl>(
        std::move(executor), std::move(options), std::move(*base), std::move(tls)));
}

}  // namespace hookrelay::httpclient
