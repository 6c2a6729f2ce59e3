#include "fakes/loopback_server.hpp"

#include "support/close_seen.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <array>
#include <atomic>
#include <future>
#include <list>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace hookrelay::test {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

constexpr auto k_use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::seconds k_idle_timeout{60};
constexpr std::chrono::seconds k_handshake_timeout{10};
constexpr std::size_t k_body_limit = 1024 * 1024;

// One accepted connection, plain or TLS; stop() closes its socket.
struct Conn {
    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
    beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
};

// Calls an answer's on_released once: explicitly, or when the session ends without it.
struct Release {
    std::function<void()> f;
    void now() {
        if (auto g = std::exchange(f, nullptr)) g();
    }
    ~Release() { now(); }
};

// Waits `wait` before an answer; false when the client closed the connection meanwhile.
// (The clients do not pipeline: anything else they send is left unread until then.)
asio::awaitable<bool> delay_answer(beast::tcp_stream& lowest, std::chrono::milliseconds wait) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(lowest.get_executor());
    timer.expires_after(wait);
    auto& socket = lowest.socket();
    auto first = co_await (timer.async_wait(k_use_tuple) ||
                           socket.async_wait(tcp::socket::wait_read, k_use_tuple));
    if (first.index() == 0) co_return true;
    // Readable before the answer: the end of the stream (closed), or bytes we leave unread.
    char byte = 0;
    boost::system::error_code ec;
    const auto n = socket.receive(asio::buffer(&byte, 1), tcp::socket::message_peek, ec);
    if (ec || n == 0) co_return false;
    co_await timer.async_wait(k_use_tuple);
    co_return true;
}

// Like a hung server: the request was read, no answer ever comes. Returns when the client gave
// up (or stop()), without reading further requests.
asio::awaitable<void> withhold_answer(auto& stream, beast::tcp_stream& lowest) {
    std::array<char, 512> scratch{};
    for (;;) {
        lowest.expires_after(k_idle_timeout);
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(scratch), k_use_tuple);
        (void)n;
        if (ec) co_return;
    }
}

}  // namespace

struct LoopbackServer::State : std::enable_shared_from_this<LoopbackServer::State> {
    State(Options opts, Handler h)
        : options(std::move(opts)), handler(std::move(h)), acceptor(ioc), port(options.port) {}

    Options options;
    Handler handler;
    asio::io_context ioc;
    std::optional<ssl::context> tls;
    tcp::acceptor acceptor;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::thread thread;
    std::uint16_t port = 0;               // fixed once the first listen() bound it
    unsigned generation = 0;              // io thread only: which accept loop is current
    std::list<std::weak_ptr<Conn>> live;  // io thread only
    std::atomic<std::size_t> accepted{0};

    // Runs `f` on the io thread and waits for it.
    template <class F>
    void on_io(F f) {
        std::promise<void> done;
        auto future = done.get_future();
        asio::post(ioc, [&] {
            try {
                f();
                done.set_value();
            } catch (...) {
                done.set_exception(std::current_exception());
            }
        });
        future.get();
    }

    void listen() {
        boost::system::error_code ec;
        const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
        acceptor.open(endpoint.protocol(), ec);
        if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) acceptor.bind(endpoint, ec);
        if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            boost::system::error_code ignored;
            acceptor.close(ignored);
            throw std::runtime_error(options.name + ": cannot listen on 127.0.0.1:" +
                                     std::to_string(port) + ": " + ec.message());
        }
        if (port == 0) port = acceptor.local_endpoint().port();
        asio::co_spawn(ioc, accept_loop(shared_from_this(), ++generation), asio::detached);
    }

    void close_all() {
        boost::system::error_code ignored;
        acceptor.close(ignored);
        ++generation;
        // The clients see their pooled connections closed from here on, as after a real
        // server's stop.
        std::vector<int> open;
        for (auto& weak : live) {
            if (auto conn = weak.lock()) open.push_back(conn->lowest().socket().native_handle());
        }
        shut_down_seen(open);
        for (auto& weak : live) {
            if (auto conn = weak.lock()) {
                conn->lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
                conn->lowest().socket().close(ignored);
            }
        }
        live.clear();
    }

    static asio::awaitable<void> accept_loop(std::shared_ptr<State> self, unsigned generation) {
        while (self->generation == generation && self->acceptor.is_open()) {
            auto [ec, socket] = co_await self->acceptor.async_accept(k_use_tuple);
            if (self->generation != generation) break;
            if (ec) {
                if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) break;
                continue;
            }
            ++self->accepted;
            auto conn = std::make_shared<Conn>();
            if (self->tls) {
                conn->secure.emplace(beast::tcp_stream(std::move(socket)), *self->tls);
            } else {
                conn->plain.emplace(std::move(socket));
            }
            self->live.remove_if([](const auto& w) { return w.expired(); });
            self->live.push_back(conn);
            asio::co_spawn(self->ioc, session(self, std::move(conn)), asio::detached);
        }
    }

    static asio::awaitable<void> session(std::shared_ptr<State> self, std::shared_ptr<Conn> conn) {
        if (conn->secure) {
            conn->lowest().expires_after(k_handshake_timeout);
            auto [ec] =
                co_await conn->secure->async_handshake(ssl::stream_base::server, k_use_tuple);
            if (ec) co_return;
            co_await serve(self, *conn->secure, conn->lowest());
        } else {
            co_await serve(self, *conn->plain, conn->lowest());
        }
        boost::system::error_code ignored;
        conn->lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
        conn->lowest().close();
    }

    template <class Stream>
    static asio::awaitable<void> serve(std::shared_ptr<State> self, Stream& stream,
                                       beast::tcp_stream& lowest) {
        beast::flat_buffer buffer;
        for (;;) {
            bhttp::request_parser<bhttp::string_body> parser;
            parser.body_limit(k_body_limit);
            lowest.expires_after(k_idle_timeout);
            auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, k_use_tuple);
            (void)n;
            if (ec) co_return;
            auto request = parser.release();
            Answer answer = self->handler(request);
            Release release{std::move(answer.on_released)};
            auto abandoned = [&answer] {
                if (answer.on_abandoned) answer.on_abandoned();
            };
            if (answer.withhold) {
                co_await withhold_answer(stream, lowest);
                abandoned();
                co_return;
            }
            if (answer.delay.count() > 0 && !co_await delay_answer(lowest, answer.delay)) {
                abandoned();
                co_return;
            }

            bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(answer.status),
                                                    request.version()};
            for (const auto& [name, value] : answer.headers) res.insert(name, value);
            res.body() = std::move(answer.body);
            res.keep_alive(request.keep_alive());
            res.prepare_payload();
            lowest.expires_after(k_idle_timeout);
            release.now();
            auto [wec, wn] = co_await bhttp::async_write(stream, res, k_use_tuple);
            (void)wn;
            if (wec || !res.keep_alive()) co_return;
        }
    }
};

LoopbackServer::LoopbackServer(Options options, Handler handler)
    : state_(std::make_shared<State>(std::move(options), std::move(handler))) {
    auto& state = *state_;
    if (state.options.tls) {
        state.tls.emplace(ssl::context::tls_server);
        boost::system::error_code ec;
        state.tls->use_certificate_chain_file(state.options.cert_file, ec);
        if (!ec) state.tls->use_private_key_file(state.options.key_file, ssl::context::pem, ec);
        if (ec) {
            throw std::runtime_error(state.options.name +
                                     ": cannot load certificate: " + ec.message());
        }
    }
    state.listen();
    state.work.emplace(state.ioc.get_executor());
    state.thread = std::thread([&state] { state.ioc.run(); });
}

LoopbackServer::~LoopbackServer() {
    auto& state = *state_;
    // Closing every socket lets each coroutine finish (they hold the State), so run() returns.
    state.on_io([&state] {
        state.close_all();
        state.work.reset();
    });
    state.thread.join();
}

std::uint16_t LoopbackServer::port() const {
    return state_->port;
}

std::string LoopbackServer::url() const {
    return std::string(state_->options.tls ? "https" : "http") +
           "://127.0.0.1:" + std::to_string(state_->port) + "/";
}

void LoopbackServer::stop() {
    auto& state = *state_;
    state.on_io([&state] { state.close_all(); });
}

void LoopbackServer::start() {
    auto& state = *state_;
    state.on_io([&state] {
        if (!state.acceptor.is_open()) state.listen();
    });
}

bool LoopbackServer::serving() const {
    auto& state = *state_;
    bool open = false;
    state.on_io([&] { open = state.acceptor.is_open(); });
    return open;
}

std::size_t LoopbackServer::connections_accepted() const {
    return state_->accepted.load();
}

}  // namespace hookrelay::test
