#include "jenkins/client.hpp"

#include "jenkins/encoding.hpp"
#include "jenkins/response.hpp"
#include "util/spawn.hpp"

#include <hookrelay/version.hpp>

#include <spdlog/spdlog.h>
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

#include <algorithm>
#include <array>
#include <mutex>
#include <optional>
#include <utility>
#include <variant>

namespace hookrelay::jenkins {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;
using Kind = JenkinsOutcome::Kind;

constexpr auto k_use_tuple = asio::as_tuple(asio::use_awaitable);

// Jenkins answers triggers with an empty body and errors with an HTML page; only the crumb JSON
// is parsed, and a 403 body is searched for "No valid crumb". Nothing larger is worth reading.
constexpr std::size_t k_body_limit = 64 * 1024;
constexpr std::uint32_t k_header_limit = 32 * 1024;
constexpr std::string_view k_crumb_rejected = "No valid crumb";
constexpr std::string_view k_form_type = "application/x-www-form-urlencoded";
// read() takes the body in pieces of this size, up to k_read_body_limit.
constexpr std::size_t k_read_chunk = 16 * 1024;

std::string timeout_text(std::string_view phase, std::chrono::milliseconds limit) {
    return std::string(phase) + ": timeout after " + std::to_string(limit.count()) + " ms";
}

// Errors that mean the peer closed a kept-alive connection while it sat idle in the pool.
bool is_closed_by_peer(const error_code& ec) {
    return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == asio::error::connection_aborted || ec == asio::error::not_connected ||
           ec == asio::error::bad_descriptor || ec == ssl::error::stream_truncated;
}

// host_name_verification answers false without an OpenSSL error code, which leaves
// SSL_get_verify_result at X509_V_OK; record the mismatch so the detail can name it.
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
    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
    beast::flat_buffer buffer;

    beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
    ~Connection() {
        error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
        lowest().socket().close(ignored);
    }
};

struct Reply {
    int status = 0;
    std::string location;
    std::string retry_after;  // the raw header value, "" when absent
    std::string body;
    std::vector<std::string> set_cookies;
    bool keep_alive = false;
    bool head_too_large = false;  // only the status line was read (head over k_header_limit)
    bool body_cut = false;        // read(): the body went on past Outgoing::cut_body_at
};

// What one request/response exchange came to.
struct Sent {
    bool ok = false;
    Reply reply;
    std::string error;             // when !ok: short detail naming the phase
    bool closed = false;           // when !ok: the peer had closed the connection
    bool response_started = true;  // when !ok: some response bytes had arrived
};

Sent failed(std::string error) {
    Sent sent;
    sent.error = std::move(error);
    return sent;
}

struct Outgoing {
    bhttp::verb method = bhttp::verb::get;
    std::string target;
    std::string body;
    std::optional<Crumb> crumb;
    /// read(): keep the first this many body bytes and stop reading there (the connection is
    /// then not reused). 0: bodies over k_body_limit are an error, as for triggers.
    std::size_t cut_body_at = 0;
};

using ResolveChannel =
    asio::experimental::concurrent_channel<void(error_code, std::vector<tcp::endpoint>)>;

// getaddrinfo cannot be cancelled, so the resolve runs detached and reports through a channel
// the caller can stop waiting on when the connect deadline passes.
asio::awaitable<void> resolve_into(asio::any_io_executor executor, std::string host,
                                   std::string service, std::shared_ptr<ResolveChannel> channel) {
    tcp::resolver resolver(executor);
    auto [ec, results] = co_await resolver.async_resolve(host, service, k_use_tuple);
    std::vector<tcp::endpoint> endpoints;
    if (!ec) {
        for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    }
    channel->try_send(ec, std::move(endpoints));
}

// read()'s path as a request target: bytes a URI may not carry raw ('[', ']', '{', '}' of a
// `tree` filter, '"', '|', non-ASCII, ...) percent-encoded; '%' stays (the path is encoded
// already where it has to be, e.g. job_path()). Jenkins decodes the query as usual.
std::string request_target_of(std::string_view path) {
    static constexpr std::string_view k_raw = "-._~!$&'()*+,;=:@/?%";
    static constexpr std::string_view k_hex = "0123456789ABCDEF";
    std::string out;
    out.reserve(path.size());
    for (const char c : path) {
        const auto u = static_cast<unsigned char>(c);
        const bool alnum =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (alnum || k_raw.find(c) != std::string_view::npos) {
            out += c;
        } else {
            out += '%';
            out += k_hex[u >> 4];
            out += k_hex[u & 0xF];
        }
    }
    return out;
}

std::string status_text(int status) {
    std::string text = "HTTP " + std::to_string(status);
    const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
    if (!reason.empty() && reason.front() != '<') text += " " + std::string(reason);
    return text;
}

class Client final : public JenkinsClient, public std::enable_shared_from_this<Client> {
  public:
    Client(asio::any_io_executor executor, JenkinsConfig config, BaseUrl base,
           std::shared_ptr<ssl::context> tls)
        : executor_(std::move(executor)),
          config_(std::move(config)),
          base_(std::move(base)),
          tls_(std::move(tls)),
          max_connections_(std::max(1u, config_.max_in_flight)),
          slots_(executor_, max_connections_) {
        if (!config_.user.empty()) {
            authorization_ = Secret(
                "Basic " + base64(config_.user + ":" + std::string(config_.api_token.reveal())));
        }
        error_code ec;
        host_is_ip_ = (asio::ip::make_address(base_.host, ec), !ec);
        endpoint_text_ =
            (base_.host.find(':') != std::string::npos ? "[" + base_.host + "]" : base_.host) +
            ":" + std::to_string(base_.port);
    }

    asio::awaitable<JenkinsOutcome> trigger(TriggerRequest request,
                                            std::optional<Secret> job_token) override {
        auto self = shared_from_this();
        const auto display = job_display_path(request.job);
        auto outcome = co_await bounded(do_trigger(std::move(request), std::move(job_token)));
        spdlog::debug("jenkins {}: trigger {}: {} ({}, {} ms)", config_.name, display,
                      to_string(outcome.kind), outcome.detail, outcome.duration.count());
        co_return outcome;
    }

    asio::awaitable<JenkinsOutcome> probe() override {
        auto self = shared_from_this();
        auto outcome = co_await bounded(do_probe());
        spdlog::debug("jenkins {}: probe: {} ({})", config_.name, to_string(outcome.kind),
                      outcome.detail);
        co_return outcome;
    }

    asio::awaitable<JenkinsOutcome> read(std::string path) override {
        auto self = shared_from_this();
        const auto shown = path.substr(0, path.find('?'));
        auto outcome = co_await bounded(do_read(std::move(path)));
        spdlog::debug("jenkins {}: read {}: {} ({}, {} ms)", config_.name, shown,
                      to_string(outcome.kind), outcome.detail, outcome.duration.count());
        co_return outcome;
    }

  private:
    // Runs `work` in a request slot under the request_timeout watchdog; never throws.
    asio::awaitable<JenkinsOutcome> bounded(asio::awaitable<JenkinsOutcome> work) {
        const auto start = Clock::now();
        JenkinsOutcome outcome;
        try {
            asio::steady_timer watchdog(co_await asio::this_coro::executor,
                                        config_.request_timeout);
            auto result =
                co_await (in_slot(std::move(work)) || watchdog.async_wait(asio::use_awaitable));
            if (result.index() == 0) {
                outcome = std::move(std::get<0>(result));
            } else {
                outcome.kind = Kind::unavailable;
                outcome.detail = timeout_text("request", config_.request_timeout);
            }
        } catch (const boost::system::system_error& e) {
            outcome = JenkinsOutcome{};
            outcome.detail = e.code() == asio::error::operation_aborted
                                 ? "cancelled"
                                 : std::string("internal error: ") + e.what();
        } catch (const std::exception& e) {
            outcome = JenkinsOutcome{};
            outcome.detail = std::string("internal error: ") + e.what();
        }
        outcome.duration =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
        co_return outcome;
    }

    asio::awaitable<JenkinsOutcome> in_slot(asio::awaitable<JenkinsOutcome> work) {
        // A full channel of max_in_flight messages is the semaphore: sending takes a slot (and
        // waits, cancellably, while all are taken); receiving gives one back.
        co_await slots_.async_send(error_code{}, asio::use_awaitable);
        struct Release {
            RequestSlots& slots;
            ~Release() {
                slots.try_receive([](error_code) {});
            }
        } release{slots_};
        co_return co_await std::move(work);
    }

    asio::awaitable<JenkinsOutcome> do_trigger(TriggerRequest request,
                                               std::optional<Secret> job_token) {
        if (request.job.empty()) {
            // Would POST to the Jenkins root; no retry can fix a rule that renders no job.
            JenkinsOutcome outcome;
            outcome.kind = Kind::permanent;
            outcome.detail = "empty job path";
            co_return outcome;
        }
        const bool with_parameters = !request.parameters.empty();
        Outgoing out;
        out.method = bhttp::verb::post;
        out.target = base_.path + job_path(request.job) +
                     (with_parameters ? "buildWithParameters" : "build") + "?delay=0sec";
        if (job_token && !job_token->empty()) {
            out.target += "&token=" + percent_encode(job_token->reveal());
        }
        // A parameter the job defines as "cause" already carries the text; a second value would
        // make Jenkins fail with 500 (reference §1.5).
        std::vector<std::pair<std::string, std::string>> form;
        const bool cause_is_parameter =
            std::any_of(request.parameters.begin(), request.parameters.end(),
                        [](const auto& p) { return p.first == "cause"; });
        if (!cause_is_parameter) form.emplace_back("cause", request.cause);
        for (auto& parameter : request.parameters) form.push_back(std::move(parameter));
        out.body = form_encode(form);

        out.crumb = cached_crumb();
        if (config_.user.empty() && !out.crumb) {
            JenkinsOutcome failure;
            if (!co_await fetch_crumb(out.crumb, failure)) co_return failure;
        }

        auto sent = co_await send(out);
        if (sent.ok && sent.reply.status == 403 &&
            sent.reply.body.find(k_crumb_rejected) != std::string::npos) {
            forget_crumb(out.crumb);
            JenkinsOutcome failure;
            if (!co_await fetch_crumb(out.crumb, failure)) co_return failure;
            sent = co_await send(out);
        }
        if (!sent.ok) co_return unreachable(std::move(sent.error));
        auto outcome = answered(sent.reply);
        if (sent.reply.status == 403 && outcome.kind == Kind::permanent &&
            sent.reply.body.find(k_crumb_rejected) == std::string::npos) {
            // The job's 403 (wrong job token, no permission on this job) or the user's (no
            // Overall/Read at all)? The root API needs only Overall/Read: ask it.
            auto root = co_await do_probe();
            if (root.kind == Kind::auth_failed) {
                outcome.kind = Kind::auth_failed;
                outcome.detail += " (and the root API: " + root.detail + ")";
            }
        }
        co_return outcome;
    }

    asio::awaitable<JenkinsOutcome> do_probe() {
        Outgoing out;
        out.target = base_.path + "api/json?tree=mode";
        auto sent = co_await send(out);
        if (!sent.ok) co_return unreachable(std::move(sent.error));
        JenkinsOutcome outcome;
        outcome.http_status = sent.reply.status;
        outcome.detail = status_text(sent.reply.status);
        outcome.retry_after = retry_after_of(sent.reply);
        // Any answer but 502/503/504 means Jenkins is up; 2xx reads as "queued" so the kind is
        // never mistaken for a failure. The root API needs only Overall/Read, so a 401 or 403
        // here is the credentials', not a job's.
        const auto status = sent.reply.status;
        if (status >= 200 && status < 300) {
            outcome.kind = Kind::queued;
        } else if (status == 401 || status == 403) {
            outcome.kind = Kind::auth_failed;
        } else {
            outcome.kind = classify(status);
        }
        co_return outcome;
    }

    asio::awaitable<JenkinsOutcome> do_read(std::string path) {
        if (!usable_read_path(path)) {
            JenkinsOutcome outcome;
            outcome.kind = Kind::permanent;
            outcome.detail = "not a path below the Jenkins url";
            co_return outcome;
        }
        Outgoing out;
        out.target = base_.path + request_target_of(path);
        out.cut_body_at = k_read_body_limit;
        auto sent = co_await send(out);
        if (!sent.ok) co_return unreachable(std::move(sent.error));
        const auto& reply = sent.reply;
        JenkinsOutcome outcome;
        outcome.http_status = reply.status;
        outcome.detail = status_text(reply.status);
        outcome.retry_after = retry_after_of(reply);
        const auto status = reply.status;
        if (status >= 200 && status < 300) {
            outcome.kind = Kind::queued;
            outcome.body = std::move(sent.reply.body);
            if (sent.reply.body_cut) {
                outcome.detail +=
                    " (body cut at " + std::to_string(k_read_body_limit / 1024) + " KiB)";
            }
        } else if (status == 401) {
            outcome.kind = Kind::auth_failed;
        } else if (status == 429) {
            outcome.kind = Kind::throttled;  // a rate limiter: ask again later
        } else if (status >= 300 && status < 500) {
            // 403: Discover without Read on the job; 404: no such item (left items live 5
            // minutes), or no permission at all; a redirect: a login page or a wrong url.
            outcome.kind = Kind::permanent;
        } else {
            outcome.kind = classify(status);
        }
        if (reply.head_too_large) {
            outcome.detail +=
                " with a response head over " + std::to_string(k_header_limit / 1024) + " KiB";
        }
        if (outcome.retry_after) {
            const auto seconds = (outcome.retry_after->count() + 999) / 1000;
            outcome.detail += " (Retry-After " + std::to_string(seconds) + " s)";
        }
        co_return outcome;
    }

    // A path relative to the configured url that fits in a request line: no scheme, no leading
    // '/', no spaces or control characters.
    static bool usable_read_path(std::string_view path) {
        if (path.empty() || path.front() == '/') return false;
        if (path.substr(0, path.find('?')).find("://") != std::string_view::npos) return false;
        return std::none_of(path.begin(), path.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u <= 0x20 || u == 0x7f;
        });
    }

    static JenkinsOutcome unreachable(std::string detail) {
        JenkinsOutcome outcome;
        outcome.kind = Kind::unavailable;
        outcome.detail = std::move(detail);
        return outcome;
    }

    JenkinsOutcome answered(const Reply& reply) const {
        JenkinsOutcome outcome;
        outcome.http_status = reply.status;
        outcome.kind = classify(reply.status);
        outcome.detail = status_text(reply.status);
        outcome.retry_after = retry_after_of(reply);
        if (reply.head_too_large) {
            outcome.detail += (outcome.kind == Kind::queued || outcome.kind == Kind::merged)
                                  ? " with a Location too long to use (response head over " +
                                        std::to_string(k_header_limit / 1024) + " KiB)"
                                  : " with a response head over " +
                                        std::to_string(k_header_limit / 1024) + " KiB";
            return outcome;
        }
        if (reply.status == 403 && reply.body.find(k_crumb_rejected) != std::string::npos) {
            outcome.detail = "HTTP 403 No valid crumb";
        }
        if (outcome.kind == Kind::queued || outcome.kind == Kind::merged) {
            // build-token-root answers a relative Location (reference §5.1); core an absolute one.
            outcome.queue_url = resolve_location(base_, reply.location);
            if (outcome.queue_url.empty()) outcome.detail += " without Location";
        }
        if (outcome.retry_after) {
            // Rounded up to whole seconds, the header's own unit.
            const auto seconds = (outcome.retry_after->count() + 999) / 1000;
            outcome.detail += " (Retry-After " + std::to_string(seconds) + " s)";
        }
        return outcome;
    }

    static std::optional<std::chrono::milliseconds> retry_after_of(const Reply& reply) {
        if (reply.retry_after.empty()) return std::nullopt;
        return parse_retry_after(reply.retry_after, std::chrono::system_clock::now());
    }

    std::optional<Crumb> cached_crumb() {
        std::lock_guard lock(mutex_);
        return crumb_;
    }

    void forget_crumb(const std::optional<Crumb>& used) {
        std::lock_guard lock(mutex_);
        if (crumb_ == used) crumb_.reset();
    }

    // Fetches a crumb and its session cookie into `crumb` (nullopt when CSRF protection is off)
    // and caches it; false with `failure` set when Jenkins did not hand one out.
    asio::awaitable<bool> fetch_crumb(std::optional<Crumb>& crumb, JenkinsOutcome& failure) {
        Outgoing out;
        out.target = base_.path + "crumbIssuer/api/json";
        auto sent = co_await send(out);
        if (!sent.ok) {
            failure = unreachable("crumbIssuer: " + sent.error);
            co_return false;
        }
        const auto& reply = sent.reply;
        Crumb fresh;
        if (reply.status == 404) {
            // No crumb issuer: CSRF protection is disabled and nothing is checked.
        } else if (reply.status != 200 || reply.head_too_large) {
            failure.http_status = reply.status;
            failure.kind = classify(reply.status);
            failure.retry_after = retry_after_of(reply);
            if (failure.kind == Kind::queued || failure.kind == Kind::merged ||
                failure.kind == Kind::refused) {
                failure.kind = Kind::permanent;
            }
            // The crumb issuer needs only Overall/Read: a 403 refuses the caller, not a job.
            if (reply.status == 403) failure.kind = Kind::auth_failed;
            failure.detail = "crumbIssuer: " + status_text(reply.status);
            co_return false;
        } else {
            auto parsed = parse_crumb(reply.body, reply.set_cookies);
            if (!parsed) {
                failure.http_status = reply.status;
                failure.kind = Kind::permanent;
                failure.detail = "crumbIssuer: HTTP 200 without a usable crumb";
                co_return false;
            }
            fresh = std::move(*parsed);
        }
        {
            std::lock_guard lock(mutex_);
            crumb_ = fresh;
        }
        crumb = fresh;
        co_return true;
    }

    bhttp::request<bhttp::string_body> make_request(const Outgoing& out) const {
        bhttp::request<bhttp::string_body> req{out.method, out.target, 11};
        req.set(bhttp::field::host, base_.host_header);
        req.set(bhttp::field::user_agent, "hookrelay/" HOOKRELAY_VERSION);
        if (!config_.user.empty()) {
            req.set(bhttp::field::authorization, std::string(authorization_.reveal()));
        }
        if (out.crumb && !out.crumb->field.empty()) {
            req.set(out.crumb->field, out.crumb->value);
            if (!out.crumb->cookie.empty()) req.set(bhttp::field::cookie, out.crumb->cookie);
        }
        if (out.method == bhttp::verb::post) {
            req.set(bhttp::field::content_type, k_form_type);
            req.body() = out.body;
        } else {
            req.set(bhttp::field::accept, "application/json");
        }
        req.keep_alive(true);
        req.prepare_payload();
        return req;
    }

    std::unique_ptr<Connection> take_idle() {
        std::lock_guard lock(mutex_);
        if (idle_.empty()) return nullptr;
        auto conn = std::move(idle_.back());
        idle_.pop_back();
        return conn;
    }

    void give_back(std::unique_ptr<Connection> conn) {
        std::lock_guard lock(mutex_);
        if (idle_.size() < max_connections_) idle_.push_back(std::move(conn));
    }

    void drop_idle() {
        std::vector<std::unique_ptr<Connection>> stale;
        std::lock_guard lock(mutex_);
        stale.swap(idle_);
    }

    // One request on a pooled connection, or a fresh one. A pooled connection the server closed
    // while it was idle gets one retry on a fresh connection.
    asio::awaitable<Sent> send(const Outgoing& out) {
        const auto req = make_request(out);
        auto conn = take_idle();
        const bool reused = conn != nullptr;
        if (!conn) {
            std::string error;
            conn = co_await connect(error);
            if (!conn) co_return failed(std::move(error));
        }
        auto sent = co_await exchange(*conn, req, out.cut_body_at);
        if (!sent.ok && reused && sent.closed && !sent.response_started) {
            // The others in the pool most likely went the same way (Jenkins restarted).
            drop_idle();
            conn.reset();
            std::string error;
            conn = co_await connect(error);
            if (!conn) co_return failed(std::move(error));
            sent = co_await exchange(*conn, req, out.cut_body_at);
        }
        if (sent.ok && sent.reply.keep_alive) give_back(std::move(conn));
        co_return sent;
    }

    asio::awaitable<Sent> exchange(Connection& conn, const bhttp::request<bhttp::string_body>& req,
                                   std::size_t cut_body_at) {
        if (conn.secure) co_return co_await exchange_on(*conn.secure, conn, req, cut_body_at);
        co_return co_await exchange_on(*conn.plain, conn, req, cut_body_at);
    }

    template <class Stream>
    asio::awaitable<Sent> exchange_on(Stream& stream, Connection& conn,
                                      const bhttp::request<bhttp::string_body>& req,
                                      std::size_t cut_body_at) {
        Sent sent;
        auto& lowest = conn.lowest();
        conn.buffer.consume(conn.buffer.size());

        lowest.expires_after(config_.io_timeout);
        auto [wec, written] = co_await bhttp::async_write(stream, req, k_use_tuple);
        (void)written;
        if (wec) {
            sent.response_started = false;
            sent.closed = is_closed_by_peer(wec);
            sent.error = wec == beast::error::timeout ? timeout_text("write", config_.io_timeout)
                                                      : "write: " + wec.message();
            co_return sent;
        }
        if (cut_body_at > 0) co_return co_await read_cut(stream, conn, cut_body_at);

        bhttp::response_parser<bhttp::string_body> parser;
        parser.body_limit(k_body_limit);
        parser.header_limit(k_header_limit);
        lowest.expires_after(config_.io_timeout);
        auto [rec, read] = co_await bhttp::async_read(stream, conn.buffer, parser, k_use_tuple);
        lowest.expires_never();
        const bool truncated = rec == bhttp::error::body_limit && parser.is_header_done();
        if (rec == bhttp::error::header_limit && oversized_head(parser, conn, sent)) {
            co_return sent;
        }
        if (rec && !truncated) {
            sent.response_started = read > 0 || parser.got_some() || conn.buffer.size() > 0;
            sent.closed = is_closed_by_peer(rec);
            sent.error = rec == beast::error::timeout ? timeout_text("read", config_.io_timeout)
                                                      : "read: " + rec.message();
            co_return sent;
        }
        auto& res = parser.get();
        take_head(res, sent);
        sent.reply.body = std::move(res.body());
        sent.reply.keep_alive = !truncated && parser.is_done() && res.keep_alive();
        co_return sent;
    }

    // The head was too large, but its status line still says what Jenkins did (a 201 whose
    // Location is huge has queued the build). The parser has consumed and read it when it got
    // that far; else it is still at the front of the buffer. True when `sent` is filled.
    template <class Parser>
    static bool oversized_head(Parser& parser, Connection& conn, Sent& sent) {
        std::optional<int> code;
        if (parser.got_some()) {
            code = static_cast<int>(parser.get().result_int());
        } else {
            const auto data = conn.buffer.data();
            code = status_line_code(
                std::string_view(static_cast<const char*>(data.data()), data.size()));
        }
        if (!code) return false;
        sent.ok = true;
        sent.reply.status = *code;
        sent.reply.head_too_large = true;
        return true;  // keep_alive false: the rest of the head is still unread
    }

    template <class Response>
    static void take_head(const Response& res, Sent& sent) {
        sent.ok = true;
        sent.reply.status = static_cast<int>(res.result_int());
        sent.reply.location = std::string(res[bhttp::field::location]);
        sent.reply.retry_after = std::string(res[bhttp::field::retry_after]);
        for (auto it = res.find(bhttp::field::set_cookie);
             it != res.end() && it->name() == bhttp::field::set_cookie; ++it) {
            sent.reply.set_cookies.emplace_back(it->value());
        }
    }

    // Sent::error for a failed read, and whether the peer had closed the connection.
    void read_failed(const error_code& ec, bool started, Sent& sent) const {
        sent.ok = false;
        sent.response_started = started;
        sent.closed = is_closed_by_peer(ec);
        sent.error = ec == beast::error::timeout ? timeout_text("read", config_.io_timeout)
                                                 : "read: " + ec.message();
    }

    // read(): the response with its body cut at `cut_at` bytes. The body is taken in pieces
    // (no allocation from what Content-Length claims); past `cut_at` reading stops and the
    // connection is dropped. Each piece is bounded by io_timeout.
    template <class Stream>
    asio::awaitable<Sent> read_cut(Stream& stream, Connection& conn, std::size_t cut_at) {
        Sent sent;
        auto& lowest = conn.lowest();
        bhttp::response_parser<bhttp::buffer_body> parser;
        parser.body_limit(boost::none);  // the loop below stops at cut_at
        parser.header_limit(k_header_limit);
        lowest.expires_after(config_.io_timeout);
        auto [hec, head_read] =
            co_await bhttp::async_read_header(stream, conn.buffer, parser, k_use_tuple);
        if (hec == bhttp::error::header_limit && oversized_head(parser, conn, sent)) {
            lowest.expires_never();
            co_return sent;
        }
        if (hec) {
            lowest.expires_never();
            read_failed(hec, head_read > 0 || parser.got_some() || conn.buffer.size() > 0, sent);
            co_return sent;
        }
        std::string body;
        std::array<char, k_read_chunk> piece{};
        bool cut = false;
        while (!parser.is_done()) {
            parser.get().body().data = piece.data();
            parser.get().body().size = piece.size();
            lowest.expires_after(config_.io_timeout);
            auto [ec, n] = co_await bhttp::async_read(stream, conn.buffer, parser, k_use_tuple);
            (void)n;
            if (ec == bhttp::error::need_buffer) ec = {};
            if (ec) {
                lowest.expires_never();
                read_failed(ec, true, sent);
                co_return sent;
            }
            const std::size_t got = piece.size() - parser.get().body().size;
            const std::size_t room = cut_at - body.size();
            body.append(piece.data(), std::min(got, room));
            if (got > room) {
                cut = true;
                break;
            }
        }
        lowest.expires_never();
        take_head(parser.get(), sent);
        sent.reply.body = std::move(body);
        sent.reply.body_cut = cut;
        sent.reply.keep_alive = !cut && parser.is_done() && parser.get().keep_alive();
        co_return sent;
    }

    // Resolve, connect and (for https) handshake, all within connect_timeout.
    asio::awaitable<std::unique_ptr<Connection>> connect(std::string& error) {
        const auto deadline = Clock::now() + config_.connect_timeout;
        std::vector<tcp::endpoint> endpoints;
        error_code ec;
        const auto address = asio::ip::make_address(base_.host, ec);
        if (!ec) {
            endpoints.emplace_back(address, base_.port);
        } else {
            auto channel = std::make_shared<ResolveChannel>(executor_, 1);
            spawn_logged(executor_,
                         resolve_into(executor_, base_.host, std::to_string(base_.port), channel),
                         "jenkins " + config_.name + ": resolving " + base_.host);
            asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
            auto result =
                co_await (channel->async_receive(k_use_tuple) || timer.async_wait(k_use_tuple));
            if (result.index() == 1) {
                error = timeout_text("resolve " + base_.host, config_.connect_timeout);
                co_return nullptr;
            }
            auto [rec, found] = std::move(std::get<0>(result));
            if (rec || found.empty()) {
                error = "resolve " + base_.host + ": " +
                        (rec ? rec.message() : std::string("no addresses"));
                co_return nullptr;
            }
            endpoints = std::move(found);
        }

        beast::tcp_stream stream(executor_);
        stream.expires_at(deadline);
        auto [cec, endpoint] = co_await stream.async_connect(endpoints, k_use_tuple);
        (void)endpoint;
        if (cec) {
            error = cec == beast::error::timeout
                        ? timeout_text("connect " + endpoint_text_, config_.connect_timeout)
                        : "connect " + endpoint_text_ + ": " + cec.message();
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
            const std::string what = "TLS handshake with " + endpoint_text_;
            const long verify = SSL_get_verify_result(secure.native_handle());
            if (hec == beast::error::timeout) {
                error = timeout_text(what, config_.connect_timeout);
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
    const JenkinsConfig config_;
    const BaseUrl base_;
    const std::shared_ptr<ssl::context> tls_;
    const std::size_t max_connections_;
    Secret authorization_;
    bool host_is_ip_ = false;
    std::string endpoint_text_;  // "host:port" for details
    RequestSlots slots_;

    std::mutex mutex_;  // guards idle_ and crumb_; never held across co_await
    std::vector<std::unique_ptr<Connection>> idle_;
    std::optional<Crumb> crumb_;
};

}  // namespace

result<std::shared_ptr<JenkinsClient>> make_client(boost::asio::any_io_executor executor,
                                                   const JenkinsConfig& config, std::string* why) {
    auto fail = [&](std::string reason) -> result<std::shared_ptr<JenkinsClient>> {
        if (why) *why = "jenkins " + config.name + ": " + std::move(reason);
        return make_error_code(errc::bad_config);
    };
    std::string reason;
    auto base = parse_base_url(config.url, reason);
    if (!base) return fail(std::move(reason));

    std::shared_ptr<ssl::context> tls;
    if (base->tls || !config.ca_file.empty()) {
        tls = std::make_shared<ssl::context>(ssl::context::tls_client);
        error_code ec;
        tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                             ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                             ssl::context::no_tlsv1_1,
                         ec);
        tls->set_verify_mode(ssl::verify_peer, ec);
        if (config.ca_file.empty()) {
            tls->set_default_verify_paths(ec);
            if (ec) return fail("cannot load the system CA certificates: " + ec.message());
        } else {
            tls->load_verify_file(config.ca_file, ec);
            if (ec) return fail("cannot load ca_file '" + config.ca_file + "': " + ec.message());
        }
        if (!base->tls) tls.reset();  // checked for the admin's sake; unused over http
    }
    return std::shared_ptr<JenkinsClient>(
        std::make_shared<Client>(std::move(executor), config, std::move(*base), std::move(tls)));
}

}  // namespace hookrelay::jenkins
