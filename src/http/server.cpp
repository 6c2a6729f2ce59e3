#include "http/server.hpp"

#include "util/http_read.hpp"
#include "util/rate_limit.hpp"
#include "util/spawn.hpp"

#include <hookrelay/version.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <type_traits>
#include <unordered_map>

namespace hookrelay::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
constexpr auto k_use_tuple = asio::as_tuple(asio::use_awaitable);

// After accept() fails for lack of file descriptors, wait this long before trying again, so a
// descriptor shortage does not become a busy loop.
constexpr std::chrono::milliseconds k_accept_error_backoff{100};
// A connection still waiting for its first request head is evicted (to make room at the
// connection cap) only after waiting this long: real clients send their head at once.
constexpr std::chrono::milliseconds k_evict_min_age{1'000};
// A connection reading a body slower than this on average, for at least k_evict_min_age, may be
// evicted too when the cap is reached (the slowest first): a forge sends a webhook's body at
// megabytes a second, and bodies trickled a byte at a time would otherwise hold every slot.
constexpr std::uint64_t k_min_body_rate = 16 * 1024;  // bytes a second
// At most this many refused or rejected connections linger at once (reading what the client
// still sends, so it gets the answer instead of a reset); beyond that they are closed at once.
constexpr std::size_t k_max_lingering = 256;
// ...and each discards at least this much (and up to a whole request of the largest allowed
// size) before closing.
constexpr std::size_t k_linger_min_bytes = 1024 * 1024;
// Bodies up to this size are not charged to body_memory: every real webhook delivery of ordinary
// size keeps flowing while large bodies are being refused. Their total is bounded anyway, by
// max_connections x this size.
constexpr std::size_t k_small_body = 64 * 1024;
// A connection reads into a buffer of this size (more while a longer head is read): a typical
// webhook (headers and a body of a few KiB) in one read. Beast reads what the buffer has room
// for, at least 512 bytes, and the parser takes every byte it is given, so a buffer left to grow
// by itself stayed at 512 bytes: an 8.8 KB push took 18 reads.
constexpr std::size_t k_read_buffer = 16 * 1024;
// Most header fields in one request head (Apache's LimitRequestFields default): a parsed field
// costs far more than its bytes (Beast's node, the copy handed to the handler), so a head of
// many tiny fields within header_limit would otherwise hold ~20 times its size while its body
// is awaited. A forge sends about 20.
constexpr std::size_t k_max_header_fields = 100;
// While a larger body is read, up to this much at a time.
constexpr std::size_t k_body_read_buffer = 64 * 1024;
// Server log lines an outsider can cause: at most this many per window, the rest counted.
constexpr std::size_t k_log_burst = 20;
constexpr std::chrono::milliseconds k_log_window{10'000};
// The answer to a client refused for lack of capacity asks it to come back after this long.
constexpr std::string_view k_retry_after_seconds = "1";

// Mozilla's "intermediate" TLS 1.2 suites: forward secrecy and AEAD only. TLS 1.3 suites are
// OpenSSL's defaults, all of which qualify.
constexpr const char* k_tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

struct TlsContext {
    // ssl::stream wants a non-const context; SSL_new only reads it.
    mutable ssl::context context{ssl::context::tls_server};
};

namespace {

std::string openssl_reason() {
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0) return "unknown OpenSSL error";
    char text[256] = {};
    ERR_error_string_n(code, text, sizeof(text));
    return text;
}

}  // namespace

std::shared_ptr<const TlsContext> make_tls_context(const TlsCredentials& credentials,
                                                   std::string* why) {
    auto fail = [&](std::string reason) -> std::shared_ptr<const TlsContext> {
        if (why) *why = std::move(reason);
        return nullptr;
    };
    auto tls = std::make_shared<TlsContext>();
    auto& ctx = tls->context;
    boost::system::error_code ec;
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                        ssl::context::no_compression | ssl::context::single_dh_use,
                    ec);
    if (ec) return fail("TLS options: " + ec.message());
    SSL_CTX* native = ctx.native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_set_cipher_list(native, k_tls12_ciphers) != 1) {
        return fail("TLS cipher list: " + openssl_reason());
    }
    ERR_clear_error();
    ctx.use_certificate_chain(
        asio::buffer(credentials.certificate_chain.data(), credentials.certificate_chain.size()),
        ec);
    if (ec) return fail("the certificate is not a PEM certificate chain (" + ec.message() + ")");
    // Parse the key on its own first, so "not a key" and "not this certificate's key" are told
    // apart. OpenSSL's reasons name the format problem only, never key material.
    const auto key = credentials.private_key.reveal();
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(key.data(), static_cast<int>(key.size())), &BIO_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
        bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr,
        &EVP_PKEY_free);
    if (!pkey)
        return fail("the private key is not an unencrypted PEM private key (" + openssl_reason() +
                    ")");
    if (SSL_CTX_use_PrivateKey(native, pkey.get()) != 1 || SSL_CTX_check_private_key(native) != 1) {
        ERR_clear_error();
        return fail("the private key does not belong to the certificate");
    }
    return tls;
}

namespace {

// The reason as a JSON string's content: it may quote what the client sent (a transfer coding
// it named, say), so quotes, backslashes and control characters are escaped.
std::string json_escaped(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        } else {
            out += c;
        }
    }
    return out;
}

std::string reason_body(std::string_view status, std::string_view reason) {
    return fmt::format(R"({{"status":"{}","error":"{}"}})", status, json_escaped(reason)) + "\n";
}

Response plain_error(unsigned status, std::string_view reason) {
    Response r;
    r.status = status;
    r.body = reason_body(status == 503 ? "unavailable" : "rejected", reason);
    if (status == 503) r.headers.emplace_back("Retry-After", std::string(k_retry_after_seconds));
    return r;
}

// What a client sent, for a log line: printable ASCII (and spaces) as it is, any other byte (a
// control character, a terminal escape, UTF-8 in a target) as \xNN.
std::string ascii_shown(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        const auto b = static_cast<unsigned char>(c);
        if (b >= 0x20 && b < 0x7f) {
            out += c;
        } else {
            out += fmt::format("\\x{:02x}", b);
        }
    }
    return out;
}

bool is_disconnect(const boost::system::error_code& ec) {
    return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
           ec == asio::error::bad_descriptor || ec == bhttp::error::partial_message ||
           ec == ssl::error::stream_truncated || ec == asio::error::broken_pipe;
}

// Where a connection is, as eviction and stop() see it.
enum class Phase : int {
    handshake,   // TLS handshake, before the first head
    head_first,  // waiting for a request head on a connection that has not earned trust
    head_idle,   // kept alive after a 2xx answer, waiting for the next head
    body,        // reading a request's body: evicted only when it is slow (k_min_body_rate)
    busy,        // handling, writing: never interrupted
    closing,
};

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               SteadyClock::now().time_since_epoch())
        .count();
}

// Timeouts and half-close on whichever stream type the session runs over.
template <class Stream>
beast::tcp_stream* lowest_tcp(Stream& stream) {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
        return &stream;
    } else if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
        return &beast::get_lowest_layer(stream);
    } else {
        return nullptr;  // in-memory stream (serve_bytes): no deadlines, no socket
    }
}

template <class Stream>
void expire_after(Stream& stream, std::chrono::milliseconds after) {
    if (auto* tcp = lowest_tcp(stream)) tcp->expires_after(after);
}

template <class Stream>
void expire_never(Stream& stream) {
    if (auto* tcp = lowest_tcp(stream)) tcp->expires_never();
}

// An answer's head and body, less what has been sent of them.
using AnswerBytes = beast::buffers_suffix<std::array<asio::const_buffer, 2>>;

// Sends what the socket takes at once of `rest`, without waiting, and consumes it there (maybe
// nothing); false when the connection has failed (reset or shut down by the peer).
bool send_now(tcp::socket& socket, AnswerBytes& rest) {
    while (beast::buffer_bytes(rest) > 0) {
        iovec parts[2];
        std::size_t count = 0;
        for (const asio::const_buffer part : rest) {
            if (part.size() > 0) parts[count++] = {const_cast<void*>(part.data()), part.size()};
        }
        msghdr message{};
        message.msg_iov = parts;
        message.msg_iovlen = count;
        const ssize_t n = ::sendmsg(socket.native_handle(), &message, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            rest.consume(static_cast<std::size_t>(n));
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            return false;
        } else {
            break;  // the send buffer is full: the rest is written asynchronously
        }
    }
    return true;
}

}  // namespace

// One open connection as the server's registry sees it. Phase and the socket pointer are written
// on the connection's strand; other threads read the phase to pick eviction victims and post to
// the strand before touching the socket.
struct ConnState {
    explicit ConnState(asio::any_io_executor ex) : executor(std::move(ex)) {}
    asio::any_io_executor executor;  // the connection's strand
    std::atomic<Phase> phase{Phase::head_first};
    std::atomic<std::int64_t> phase_since{now_ns()};
    std::atomic<bool> evicting{false};
    std::atomic<std::uint64_t> body_bytes{0};  // of the body being read (Phase::body)
    beast::tcp_stream* socket = nullptr;       // strand only; null once closed
    std::string peer_key;                      // per-client connection accounting ("" = exempt)
    std::list<std::shared_ptr<ConnState>>::iterator self;  // in Impl::live, under its mutex

    void set_phase(Phase p) {
        phase = p;
        phase_since = now_ns();
    }
};

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
    Impl(asio::io_context& ioc, ServerOptions options, std::shared_ptr<Handler> handler)
        : ioc(ioc),
          options(std::move(options)),
          handler(std::move(handler)),
          acceptor(asio::make_strand(ioc)),
          log_limit(k_log_burst, k_log_window) {}

    asio::io_context& ioc;
    const ServerOptions options;
    std::shared_ptr<Handler> handler;
    tcp::acceptor acceptor;
    std::atomic<bool> stopping{false};
    std::atomic<std::size_t> open{0};
    std::atomic<std::size_t> lingering{0};
    std::atomic<std::shared_ptr<const TlsContext>> tls;
    RateLimit log_limit;

    struct ClientUsage {
        std::size_t connections = 0;
        std::size_t body_bytes = 0;
    };
    mutable std::mutex mutex;  // guards live, clients, body_bytes
    std::list<std::shared_ptr<ConnState>> live;
    std::unordered_map<std::string, ClientUsage> clients;
    std::size_t body_bytes = 0;

    // A log line an outsider can cause, rate-limited with a count of what was suppressed.
    template <class... Args>
    void log_warn(fmt::format_string<Args...> format, Args&&... args) {
        std::size_t suppressed = 0;
        if (!log_limit.allow(&suppressed)) return;
        auto line = fmt::format(format, std::forward<Args>(args)...);
        if (suppressed > 0) line += fmt::format(" ({} similar lines suppressed)", suppressed);
        spdlog::warn("{}: {}", options.name, line);
    }

    void reject(unsigned status, std::string_view reason, const RequestHead* head,
                std::string_view remote) {
        // A reason may quote the request (a transfer coding it named).
        log_warn("{} {} from {}{}", status, ascii_shown(reason), remote,
                 head ? fmt::format(" ({} {})", ascii_shown(head->method.substr(0, 16)),
                                    ascii_shown(head->target.substr(0, 128)))
                      : std::string());
        handler->rejected(Rejection{status, reason, head, remote});
    }

    // Body memory: both the global and the client's share must fit. Thread-safe. "" when they
    // do, else the setting that is at its limit (the client's share when both are).
    std::string_view reserve_body(const std::string& client, std::size_t n) {
        if (n == 0) return {};
        std::lock_guard lock(mutex);
        auto& usage = clients[client];
        const bool client_full = usage.body_bytes + n > options.body_memory_per_client;
        if (client_full || body_bytes + n > options.body_memory) {
            if (usage.connections == 0 && usage.body_bytes == 0) clients.erase(client);
            return client_full ? "body_memory_per_client" : "body_memory";
        }
        body_bytes += n;
        usage.body_bytes += n;
        return {};
    }
    void release_body(const std::string& client, std::size_t n) {
        if (n == 0) return;
        std::lock_guard lock(mutex);
        body_bytes -= n;
        auto it = clients.find(client);
        if (it == clients.end()) return;
        it->second.body_bytes -= n;
        if (it->second.connections == 0 && it->second.body_bytes == 0) clients.erase(it);
    }

    // Registers a new connection unless its peer is over its limit or the server is full and no
    // connection can be evicted. `refusal` says why when it returns null.
    std::shared_ptr<ConnState> admit(asio::any_io_executor executor, const IpAddress& peer,
                                     std::string& refusal);
    void forget(const std::shared_ptr<ConnState>& conn);

    asio::awaitable<void> accept_loop();
    asio::awaitable<void> run_connection(std::shared_ptr<ConnState> conn, tcp::socket socket,
                                         std::shared_ptr<const TlsContext> tls);
    template <class Stream>
    asio::awaitable<void> serve(ConnState& conn, Stream& stream, std::string remote,
                                std::optional<IpAddress> peer);
    template <class Stream>
    asio::awaitable<bool> write(Stream& stream, Response response, bool keep_alive,
                                unsigned version);
    template <class Stream>
    asio::awaitable<void> linger(Stream& stream);
    asio::awaitable<void> refuse(tcp::socket socket, std::string reason, std::string remote);
};

std::shared_ptr<ConnState> Server::Impl::admit(asio::any_io_executor executor,
                                               const IpAddress& peer, std::string& refusal) {
    auto conn = std::make_shared<ConnState>(std::move(executor));
    if (!contains_any(options.trusted_proxies, peer)) conn->peer_key = client_key(peer);
    std::shared_ptr<ConnState> victim;
    Phase chosen_phase{};
    std::int64_t chosen_since = 0;
    {
        std::lock_guard lock(mutex);
        if (!conn->peer_key.empty()) {
            auto it = clients.find(conn->peer_key);
            if (it != clients.end() &&
                it->second.connections >= options.max_connections_per_client) {
                // Its own oldest kept-alive connection waiting for a next request makes room (a
                // pooling forge, a liveness probe from the same address), else it is refused.
                for (const auto& c : live) {
                    if (c->evicting || c->peer_key != conn->peer_key ||
                        c->phase.load() != Phase::head_idle) {
                        continue;
                    }
                    if (!victim || c->phase_since.load() < victim->phase_since.load()) victim = c;
                }
                if (!victim) {
                    refusal =
                        fmt::format("too many connections from {} (max_connections_per_client {})",
                                    conn->peer_key, options.max_connections_per_client);
                    return nullptr;
                }
                victim->evicting = true;
                chosen_phase = victim->phase.load();
                chosen_since = victim->phase_since.load();
            }
        }
        if (!victim && open >= options.max_connections) {
            // Make room: a kept-alive connection waiting for its next request first (oldest),
            // else one that has waited too long for its first request head, else the slowest
            // of the bodies read below k_min_body_rate. A request being handled or answered is
            // never evicted.
            const auto now = now_ns();
            const auto min_age =
                std::chrono::duration_cast<std::chrono::nanoseconds>(k_evict_min_age).count();
            std::shared_ptr<ConnState> idle, waiting, slow;
            double slowest = 0;
            for (const auto& c : live) {
                if (c->evicting) continue;
                const auto phase = c->phase.load();
                const auto since = c->phase_since.load();
                if (phase == Phase::head_idle) {
                    if (!idle || since < idle->phase_since) idle = c;
                } else if ((phase == Phase::head_first || phase == Phase::handshake) &&
                           now - since >= min_age) {
                    if (!waiting || since < waiting->phase_since) waiting = c;
                } else if (phase == Phase::body && now - since >= min_age) {
                    const double rate = static_cast<double>(c->body_bytes.load()) * 1e9 /
                                        static_cast<double>(now - since);
                    if (rate < static_cast<double>(k_min_body_rate) && (!slow || rate < slowest)) {
                        slow = c;
                        slowest = rate;
                    }
                }
            }
            victim = idle ? idle : waiting ? waiting : slow;
            if (!victim) {
                refusal = fmt::format("connection cap of {} reached (max_connections)",
                                      options.max_connections);
                return nullptr;
            }
            victim->evicting = true;
            chosen_phase = victim->phase.load();
            chosen_since = victim->phase_since.load();
        }
        if (!conn->peer_key.empty()) ++clients[conn->peer_key].connections;
        ++open;
        live.push_front(conn);
        conn->self = live.begin();
    }
    if (victim) {
        // Only in the phase it was chosen in: an idle connection that took a request meanwhile
        // (a pooling forge at its cap) is not cut off in the middle of its body.
        asio::post(victim->executor, [victim, chosen_phase, chosen_since] {
            const auto phase = victim->phase.load();
            if (victim->socket && phase == chosen_phase &&
                victim->phase_since.load() == chosen_since &&
                (phase == Phase::head_idle || phase == Phase::head_first ||
                 phase == Phase::handshake || phase == Phase::body)) {
                boost::system::error_code ignored;
                victim->socket->socket().cancel(ignored);
            } else {
                victim->evicting = false;  // it got busy meanwhile; the cap is over by one
            }
        });
    }
    return conn;
}

void Server::Impl::forget(const std::shared_ptr<ConnState>& conn) {
    std::lock_guard lock(mutex);
    live.erase(conn->self);
    --open;
    if (conn->peer_key.empty()) return;
    auto it = clients.find(conn->peer_key);
    if (it == clients.end()) return;
    if (--it->second.connections == 0 && it->second.body_bytes == 0) clients.erase(it);
}

template <class Stream>
asio::awaitable<bool> Server::Impl::write(Stream& stream, Response response, bool keep_alive,
                                          unsigned version) {
    const std::string head = response_head(response, keep_alive, version);
    AnswerBytes rest(
        std::array<asio::const_buffer, 2>{asio::buffer(head), asio::buffer(response.body)});
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
        // An answer almost always fits the socket's send buffer: sent here it needs no
        // asynchronous operation, deadline timer or trip through the scheduler
        // (docs/performance.md). What does not fit is written below, under write_timeout.
        if (!send_now(stream.socket(), rest)) co_return false;
        if (beast::buffer_bytes(rest) == 0) co_return true;
    }
    expire_after(stream, options.write_timeout);
    auto [ec, n] = co_await asio::async_write(stream, rest, k_use_tuple);
    (void)n;
    co_return !ec;
}

// After answering a request whose bytes were not all read: half-close, then read and discard what
// the client is still sending (bounded in time and bytes), so closing does not turn into a TCP
// reset that destroys the answer before the client has read it.
template <class Stream>
asio::awaitable<void> Server::Impl::linger(Stream& stream) {
    auto* tcp = lowest_tcp(stream);
    if (tcp == nullptr) co_return;
    if (lingering.fetch_add(1) >= k_max_lingering) {
        --lingering;
        co_return;
    }
    boost::system::error_code ignored;
    tcp->socket().shutdown(tcp::socket::shutdown_send, ignored);
    tcp->expires_after(options.linger_timeout);
    std::array<char, 16 * 1024> discard;
    std::size_t total = 0;
    const std::size_t most =
        std::max(k_linger_min_bytes, options.body_limit + options.header_limit);
    while (total < most) {
        // Raw bytes from the socket, below TLS: their content no longer matters.
        auto [ec, n] = co_await tcp->async_read_some(asio::buffer(discard), k_use_tuple);
        if (ec) break;
        total += n;
    }
    --lingering;
}

template <class Stream>
asio::awaitable<void> Server::Impl::serve(ConnState& conn, Stream& stream, std::string remote,
                                          std::optional<IpAddress> peer) {
    // Bounded: what the parser cannot take yet stays in the buffer, and Beast bounds only the
    // head (header_limit), not a chunk's size line or the trailers. A line that never ends then
    // fills the buffer and is answered 400, instead of growing it until body_timeout.
    beast::flat_buffer buffer(std::max(options.header_limit, k_body_read_buffer) +
                              k_body_read_buffer);
    buffer.reserve(k_read_buffer);
    bool first = true;
    bool trusted = false;  // earned by a 2xx answer: only then may it idle for idle_timeout
    bool unread = false;   // closing with request bytes not read: linger
    while (!stopping) {
        if (!first && buffer.size() > 0) {
            // The client sent its next request before reading this answer (pipelining): the
            // thread's other connections go first, as when every read went through the scheduler.
            co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        }
        if (buffer.capacity() > k_read_buffer && buffer.size() <= k_read_buffer) {
            // After a larger body (or head): an idle kept-alive connection holds k_read_buffer.
            buffer.shrink_to_fit();
            buffer.reserve(k_read_buffer);
        }
        bhttp::request_parser<bhttp::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
        // Content-Length is checked against body_limit below, once the head can be shown to
        // the handler (so the 413 is counted for its source); chunked bodies during the read.
        parser.body_limit(boost::none);

        // The first request must arrive within header_timeout, and so must every request on a
        // connection that has not yet been answered 2xx; a trusted connection may idle longer.
        conn.set_phase(trusted ? Phase::head_idle : Phase::head_first);
        expire_after(stream, trusted ? options.idle_timeout : options.header_timeout);
        // The request line and at most k_max_header_fields fields before the head ends.
        const auto ec = co_await read_message_head(stream, buffer, parser, k_max_header_fields + 1);
        if (ec) {
            const bool first_head = conn.phase.load() == Phase::head_first;
            conn.set_phase(Phase::closing);
            std::optional<Response> answer;
            std::string_view reason;
            if (conn.evicting && first_head) {
                // Closed to make room at max_connections while its first head was awaited (an
                // idle kept-alive one is not): counted and logged, but neither answered nor
                // lingered on, so that its slot is free at once for the connection it made room
                // for.
                reject(408, "head too slow at max_connections: evicted for a new connection",
                       nullptr, remote);
            } else if (ec == bhttp::error::header_limit) {
                // Too many bytes, or too many fields before the head ended.
                answer = plain_error(431,
                                     "request headers too large (header_limit) or too many "
                                     "header fields");
                reason = "request headers exceed header_limit or the field count";
            } else if (ec == beast::error::timeout) {
                if (parser.got_some() || buffer.size() > 0) {
                    answer = plain_error(408, "request headers not received in time");
                    reason = "request headers not received within header_timeout";
                }
            } else if (!is_disconnect(ec)) {
                answer = plain_error(400, "malformed HTTP request");
                reason = "malformed HTTP request head";
            }
            if (answer) {
                reject(answer->status, reason, nullptr, remote);
                co_await write(stream, std::move(*answer), false, 11);
                unread = true;
            }
            break;
        }
        conn.set_phase(Phase::busy);
        const auto& req = parser.get();
        const unsigned version = req.version();
        Request request;
        request.head.method = std::string(req.method_string());
        request.head.target = std::string(req.target());
        request.head.version = version;
        request.head.remote = remote;
        // Beast applies header_limit to the request line and to the fields each, and does not
        // count fields: the head as a whole, the copy stopping at the first field past either.
        std::size_t fields = 0;
        std::size_t bytes = request.head.method.size() + request.head.target.size() + 12;
        for (const auto& field : req) {
            bytes += field.name_string().size() + field.value().size() + 4;
            if (++fields > k_max_header_fields || bytes > options.header_limit) break;
            request.head.headers.add(std::string(field.name_string()), std::string(field.value()));
        }
        if (fields > k_max_header_fields || bytes > options.header_limit) {
            const bool too_many = fields > k_max_header_fields;
            reject(431,
                   too_many ? fmt::format("more than {} header fields", k_max_header_fields)
                            : std::string("request headers exceed header_limit"),
                   nullptr, remote);
            co_await write(stream,
                           plain_error(431, too_many ? "too many request header fields"
                                                     : "request headers too large (header_limit)"),
                           false, version);
            unread = true;
            break;
        }
        if (auto length = parser.content_length()) request.head.content_length = *length;
        if (peer) {
            request.head.client = client_address(*peer, request.head.headers,
                                                 options.trusted_proxies, options.forwarded_header);
        }
        const bool has_body = parser.chunked() || request.head.content_length.value_or(0) > 0;

        if (auto problem = check_framing(version, request.head.headers)) {
            reject(problem->status, problem->reason, &request.head, remote);
            co_await write(stream, plain_error(problem->status, problem->reason), false, version);
            unread = true;
            break;
        }
        if (request.head.content_length.value_or(0) > options.body_limit) {
            reject(413, "Content-Length exceeds body_limit", &request.head, remote);
            co_await write(stream, plain_error(413, "body exceeds the configured body_limit"),
                           false, version);
            unread = true;
            break;
        }
        parser.body_limit(options.body_limit);

        if (auto early = handler->check_head(request.head)) {
            // The body was not read, so the connection cannot carry another request.
            co_await write(stream, std::move(*early), false, version);
            unread = has_body;
            break;
        }

        // Body memory is reserved before a byte of the body is read: a Content-Length body all
        // at once (Beast allocates it up front), a chunked one step by step as it grows.
        const std::string client_key =
            request.head.client ? hookrelay::client_key(*request.head.client) : "";
        const auto declared = static_cast<std::size_t>(request.head.content_length.value_or(0));
        std::size_t reserved = !parser.chunked() && declared > k_small_body ? declared : 0;
        struct Reservation {
            Impl& impl;
            const std::string& client;
            std::size_t& bytes;
            ~Reservation() { impl.release_body(client, bytes); }
        };
        if (const auto full = reserve_body(client_key, reserved); !full.empty()) {
            reserved = 0;
            reject(503,
                   full == "body_memory" ? "request bodies in memory at their limit (body_memory)"
                                         : "this client's request bodies in memory at their limit "
                                           "(body_memory_per_client)",
                   &request.head, remote);
            co_await write(stream,
                           plain_error(503, "too many large requests in progress; retry later"),
                           false, version);
            unread = has_body;
            break;
        }
        Reservation reservation{*this, client_key, reserved};

        if (auto expect = req[bhttp::field::expect]; beast::iequals(expect, "100-continue")) {
            bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, version};
            expire_after(stream, options.write_timeout);
            auto [wec, wn] = co_await bhttp::async_write(stream, cont, k_use_tuple);
            (void)wn;
            if (wec) break;
        }

        if (declared > buffer.capacity()) buffer.reserve(std::min(declared, k_body_read_buffer));
        // One deadline for the whole body (Beast's deadline holds until it is changed).
        expire_after(stream, options.body_timeout);
        boost::system::error_code bec;
        std::string_view over_budget;  // the body memory setting at its limit, if any
        conn.body_bytes = 0;
        conn.set_phase(Phase::body);
        while (!parser.is_done()) {
            if (const auto rec = co_await read_message_part(stream, buffer, parser)) {
                bec = rec;
                break;
            }
            conn.body_bytes = parser.get().body().size();
            if (parser.chunked()) {
                const std::size_t held = parser.get().body().size();
                if (held > k_small_body && held > reserved) {
                    const std::size_t want =
                        std::min(std::max({held, reserved * 2, 2 * k_small_body}),
                                 options.body_limit) -
                        reserved;
                    if (over_budget = reserve_body(client_key, want); !over_budget.empty()) break;
                    reserved += want;
                }
            }
        }
        if (bec || !over_budget.empty()) {
            std::optional<Response> answer;
            std::string_view reason;
            if (conn.evicting) {
                answer = plain_error(408,
                                     "request body too slow; the server is at its "
                                     "connection limit");
                reason = "body too slow at max_connections: evicted for a new connection";
            } else if (!over_budget.empty()) {
                answer = plain_error(503, "too many large requests in progress; retry later");
                reason = over_budget == "body_memory"
                             ? "chunked body over the body memory budget (body_memory)"
                             : "chunked body over this client's body memory budget "
                               "(body_memory_per_client)";
            } else if (bec == bhttp::error::body_limit) {
                answer = plain_error(413, "body exceeds the configured body_limit");
                reason = "body exceeds body_limit";
            } else if (bec == beast::error::timeout) {
                answer = plain_error(408, "request body not received in time");
                reason = "body not received within body_timeout";
            } else if (!is_disconnect(bec)) {
                answer = plain_error(400, "malformed request body (chunk framing)");
                reason = "malformed request body";
            }
            if (answer) {
                reject(answer->status, reason, &request.head, remote);
                co_await write(stream, std::move(*answer), false, version);
                unread = true;
            }
            break;
        }
        conn.set_phase(Phase::busy);
        const bool keep_alive = parser.get().keep_alive();
        request.body = std::move(parser.get().body());

        expire_never(stream);
        Response response = co_await handler->handle(std::move(request));
        const unsigned status = response.status;
        // A rejected request (4xx) ends the connection: whoever sent it gets no second try on a
        // connection it holds open.
        const bool keep = keep_alive && !stopping && status < 400;
        const bool written = co_await write(stream, std::move(response), keep, version);
        if (!written || !keep) break;
        if (status >= 200 && status < 300) trusted = true;
        first = false;
    }
    conn.set_phase(Phase::closing);
    if (unread) co_await linger(stream);
}

asio::awaitable<void> Server::Impl::run_connection(std::shared_ptr<ConnState> conn,
                                                   tcp::socket socket,
                                                   std::shared_ptr<const TlsContext> tls) {
    auto self = shared_from_this();
    struct Forget {
        Impl& impl;
        std::shared_ptr<ConnState>& conn;
        ~Forget() {
            conn->socket = nullptr;
            impl.forget(conn);
        }
    };
    std::string remote;
    std::optional<IpAddress> peer;
    {
        boost::system::error_code ec;
        const auto ep = socket.remote_endpoint(ec);
        if (!ec) {
            peer = parse_ip(ep.address().to_string());
            remote = ep.address().to_string() + ":" + std::to_string(ep.port());
        }
    }
    if (!tls) {
        beast::tcp_stream stream(std::move(socket));
        conn->socket = &stream;
        Forget forget{*this, conn};
        co_await serve(*conn, stream, remote, peer);
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream.close();
        co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), tls->context);
    conn->socket = &beast::get_lowest_layer(stream);
    Forget forget{*this, conn};
    conn->set_phase(Phase::handshake);
    expire_after(stream, options.header_timeout);
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, k_use_tuple);
    if (hec) {
        if (!is_disconnect(hec) && hec != beast::error::timeout) {
            log_warn("TLS handshake with {} failed: {}", remote, hec.message());
        }
    } else {
        co_await serve(*conn, stream, remote, peer);
    }
    beast::get_lowest_layer(stream).close();
}

asio::awaitable<void> Server::Impl::refuse(tcp::socket socket, std::string reason,
                                           std::string remote) {
    auto self = shared_from_this();
    reject(503, reason, nullptr, remote);
    beast::tcp_stream stream(std::move(socket));
    if (tls.load()) {
        // No TLS session to answer in: just close.
        stream.close();
        co_return;
    }
    co_await write(stream, plain_error(503, "too many connections; retry later"), false, 11);
    co_await linger(stream);
    stream.close();
}

asio::awaitable<void> Server::Impl::accept_loop() {
    auto self = shared_from_this();
    while (!stopping) {
        auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(ioc), k_use_tuple);
        if (ec) {
            if (stopping || ec == asio::error::operation_aborted) break;
            log_warn("accept failed: {}", ec.message());
            asio::steady_timer timer(ioc, k_accept_error_backoff);
            co_await timer.async_wait(k_use_tuple);
            continue;
        }
        boost::system::error_code pec;
        const auto endpoint = socket.remote_endpoint(pec);
        if (pec) continue;  // already gone
        const auto peer = parse_ip(endpoint.address().to_string()).value_or(IpAddress{});
        std::string refusal;
        auto executor = socket.get_executor();
        auto conn = admit(executor, peer, refusal);
        if (!conn) {
            const auto remote =
                endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
            asio::co_spawn(executor, refuse(std::move(socket), std::move(refusal), remote),
                           LogEscaped{options.name + ": refusing a connection"});
            continue;
        }
        asio::co_spawn(executor, run_connection(conn, std::move(socket), tls.load()),
                       LogEscaped{options.name + ": connection"});
    }
}

Server::Server(asio::io_context& ioc, ServerOptions options, std::shared_ptr<Handler> handler)
    : impl_(std::make_shared<Impl>(ioc, std::move(options), std::move(handler))) {}

Server::~Server() = default;

void Server::set_tls(std::shared_ptr<const TlsContext> tls) {
    impl_->tls.store(std::move(tls));
}

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
    asio::co_spawn(impl_->acceptor.get_executor(), impl_->accept_loop(),
                   LogEscaped{impl_->options.name + ": accept loop"});
}

void Server::stop() {
    auto impl = impl_;
    if (impl->stopping.exchange(true)) return;
    asio::post(impl->acceptor.get_executor(), [impl] {
        boost::system::error_code ignored;
        impl->acceptor.close(ignored);
    });
    std::lock_guard lock(impl->mutex);
    for (auto& conn : impl->live) {
        asio::post(conn->executor, [conn] {
            // The session may have closed its socket a moment ago: ignore that error rather
            // than throw out of a handler (which would terminate the process).
            boost::system::error_code ignored;
            // A request whose body is being read, or that is being handled, is finished.
            const auto phase = conn->phase.load();
            if (conn->socket && phase != Phase::busy && phase != Phase::body) {
                conn->socket->socket().cancel(ignored);
            }
        });
    }
}

std::size_t Server::connections() const noexcept {
    return impl_->open;
}

std::size_t Server::body_bytes_in_flight() const noexcept {
    std::lock_guard lock(impl_->mutex);
    return impl_->body_bytes;
}

std::string response_head(const Response& response, bool keep_alive, unsigned version) {
    // The fields as the server's answers always had them (a Beast message: Server, Content-Type,
    // the response's own, then what keep_alive() and prepare_payload() set), written out here in
    // one string instead of through Beast's serializer: its start line, then each field as
    // "name: value".
    bhttp::response<bhttp::empty_body> res{static_cast<bhttp::status>(response.status), version};
    res.set(bhttp::field::server, "hookrelay/" HOOKRELAY_VERSION);
    res.set(bhttp::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) res.set(name, value);
    res.keep_alive(keep_alive);
    res.content_length(response.body.size());
    const unsigned code = res.result_int();
    // Beast refused a body on these (prepare_payload threw); no handler answers them with one.
    assert(response.body.empty() || (code >= 200 && code != 204 && code != 304));
    const std::string_view reason = res.reason();
    std::size_t size = 13 + reason.size() + 2 + 2;
    for (const auto& field : res) size += field.name_string().size() + 2 + field.value().size() + 2;
    std::string out;
    out.reserve(size);
    out += "HTTP/";
    out += static_cast<char>('0' + version / 10);
    out += '.';
    out += static_cast<char>('0' + version % 10);
    out += ' ';
    out += static_cast<char>('0' + code / 100 % 10);
    out += static_cast<char>('0' + code / 10 % 10);
    out += static_cast<char>('0' + code % 10);
    out += ' ';
    out += reason;
    out += "\r\n";
    for (const auto& field : res) {
        out += field.name_string();
        out += ": ";
        out += field.value();
        out += "\r\n";
    }
    out += "\r\n";
    return out;
}

std::string serve_bytes(const ServerOptions& options, std::shared_ptr<Handler> handler,
                        std::string_view input, std::size_t* reads) {
    asio::io_context ioc;
    auto impl = std::make_shared<Server::Impl>(ioc, options, std::move(handler));
    beast::test::stream local(ioc);
    beast::test::stream remote(ioc);
    local.connect(remote);
    local.append(input);
    local.close_remote();
    ConnState conn(ioc.get_executor());
    asio::co_spawn(ioc, impl->serve(conn, local, "fuzz:0", parse_ip("127.0.0.1")),
                   [](std::exception_ptr e) {
                       if (e) std::rethrow_exception(e);
                   });
    ioc.run();
    if (reads) *reads = local.nread();
    return std::string(remote.str());
}

}  // namespace hookrelay::http
