// The outbound HTTP client against a scripted loopback server (a real socket on 127.0.0.1:0).
#include "httpclient/client.hpp"

#include "support/close_seen.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

namespace hookrelay::httpclient {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

constexpr auto k_use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr auto k_short_timeout = 300ms;  // what the timeout tests wait for
// Far more than a loopback socket takes in one write: the kernel's buffers start at tens of KiB.
constexpr std::size_t k_large_body = 8u << 20;
constexpr std::size_t k_largest_request = 2 * k_large_body;  // the scripted server's body limit

// What the scripted server answers a request with.
struct Reply {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool hang = false;  // read the request, never answer
    std::string
        raw;  // when set: written as it is instead of a response, then the connection closed
    bool close = false;        // read the request, close the connection without answering
    bool close_after = false;  // answer as if kept alive, then close the connection
};

struct Seen {
    std::string method, target, body;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string header(std::string_view name) const {
        for (const auto& [k, v] : headers) {
            if (beast::iequals(k, name)) return v;
        }
        return {};
    }
};

// A loopback HTTP/1.1 server on its own thread answering every request with `script`.
class ScriptedServer {
  public:
    explicit ScriptedServer(std::function<Reply(const Seen&)> script)
        : script_(std::move(script)),
          acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        asio::co_spawn(ioc_, accept_loop(), asio::detached);
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~ScriptedServer() {
        ioc_.stop();
        thread_.join();
    }
    std::string url() const {
        return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/base/";
    }
    std::vector<Seen> seen() const {
        std::lock_guard lock(mutex_);
        return seen_;
    }
    int connections() const {
        std::lock_guard lock(mutex_);
        return connections_;
    }
    int closed() const {
        std::lock_guard lock(mutex_);
        return closed_;
    }

  private:
    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(k_use_tuple);
            if (ec) co_return;
            {
                std::lock_guard lock(mutex_);
                ++connections_;
            }
            asio::co_spawn(ioc_, serve(beast::tcp_stream(std::move(socket))), asio::detached);
        }
    }
    asio::awaitable<void> serve(beast::tcp_stream stream) {
        beast::flat_buffer buffer;
        for (;;) {
            bhttp::request_parser<bhttp::string_body> parser;
            parser.body_limit(k_largest_request);
            auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, k_use_tuple);
            (void)n;
            if (ec) co_return;
            auto req = parser.release();
            Seen s;
            s.method = std::string(req.method_string());
            s.target = std::string(req.target());
            s.body = req.body();
            for (const auto& f : req) s.headers.emplace_back(f.name_string(), f.value());
            {
                std::lock_guard lock(mutex_);
                seen_.push_back(s);
            }
            const Reply reply = script_(s);
            if (reply.close) {
                close(stream);
                co_return;
            }
            if (!reply.raw.empty()) {
                co_await asio::async_write(stream, asio::buffer(reply.raw), k_use_tuple);
                co_return;
            }
            if (reply.hang) {
                char byte = 0;
                co_await stream.async_read_some(asio::buffer(&byte, 1), k_use_tuple);
                co_return;
            }
            bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(reply.status), 11};
            for (const auto& [k, v] : reply.headers) res.insert(k, v);
            res.body() = reply.body;
            res.keep_alive(req.keep_alive());
            res.prepare_payload();
            auto [wec, wn] = co_await bhttp::async_write(stream, res, k_use_tuple);
            (void)wn;
            if (wec || !res.keep_alive()) co_return;
            if (reply.close_after) {
                close(stream);
                co_return;
            }
        }
    }
    // Closes, once the client's end has the end of the stream, and counts it.
    void close(beast::tcp_stream& stream) {
        test::shut_down_seen({stream.socket().native_handle()});
        boost::system::error_code ignored;
        stream.socket().close(ignored);
        std::lock_guard lock(mutex_);
        ++closed_;
    }

    std::function<Reply(const Seen&)> script_;
    asio::io_context ioc_;
    tcp::acceptor acceptor_;
    std::thread thread_;
    mutable std::mutex mutex_;
    std::vector<Seen> seen_;
    int connections_ = 0;
    int closed_ = 0;
};

template <class T>
T run(asio::io_context& ioc, asio::awaitable<T> task) {
    std::optional<T> result;
    std::exception_ptr error;
    asio::co_spawn(ioc, std::move(task), [&](std::exception_ptr e, T value) {
        error = e;
        if (!e) result = std::move(value);
    });
    ioc.restart();
    ioc.run();
    if (error) std::rethrow_exception(error);
    return std::move(*result);
}

std::shared_ptr<Client> make_client(asio::io_context& ioc, std::string url, Options options = {}) {
    options.name = "test";
    options.url = std::move(url);
    std::string why;
    auto client = Client::make(ioc.get_executor(), std::move(options), &why);
    EXPECT_TRUE(client) << why;
    return *client;
}

// A port nobody listens on: bound once, then closed.
std::uint16_t closed_port() {
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return acceptor.local_endpoint().port();
}

TEST(HttpClient, PostsBodyAndHeadersAndReadsTheAnswer) {
    ScriptedServer server([](const Seen& s) {
        Reply r;
        r.status = 201;
        r.headers = {{"Content-Type", "application/json"}, {"X-Answer", "yes"}};
        r.body = "{\"echo\":\"" + s.body + "\"}";
        return r;
    });
    asio::io_context ioc;
    auto client = make_client(ioc, server.url());
    Request request;
    request.method = Method::post;
    request.target = client->base().path + "things/1";
    request.headers = {{"Content-Type", "application/json"}, {"X-Custom", "42"}};
    request.body = "abc";
    const auto exchange = run(ioc, client->request(request));

    ASSERT_TRUE(exchange.ok) << exchange.error;
    EXPECT_EQ(exchange.response.status, 201);
    EXPECT_EQ(exchange.response.header("x-answer"), "yes");
    EXPECT_EQ(exchange.response.body, "{\"echo\":\"abc\"}");
    const auto seen = server.seen();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].method, "POST");
    EXPECT_EQ(seen[0].target, "/base/things/1");
    EXPECT_EQ(seen[0].body, "abc");
    EXPECT_EQ(seen[0].header("Content-Length"), "3");
    EXPECT_EQ(seen[0].header("X-Custom"), "42");
    EXPECT_EQ(seen[0].header("Content-Type"), "application/json");
    EXPECT_FALSE(seen[0].header("User-Agent").empty());
}

TEST(HttpClient, GetsWithoutBody) {
    ScriptedServer server([](const Seen&) {
        Reply r;
        r.body = "hello";
        return r;
    });
    asio::io_context ioc;
    auto client = make_client(ioc, server.url());
    Request request;
    request.target = "/base/x?y=1";
    const auto exchange = run(ioc, client->request(request));

    ASSERT_TRUE(exchange.ok) << exchange.error;
    EXPECT_EQ(exchange.response.status, 200);
    EXPECT_EQ(exchange.response.body, "hello");
    const auto seen = server.seen();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].method, "GET");
    EXPECT_EQ(seen[0].target, "/base/x?y=1");
    EXPECT_EQ(seen[0].body, "");
}

TEST(HttpClient, ReusesAKeptAliveConnection) {
    ScriptedServer server([](const Seen&) { return Reply{}; });
    asio::io_context ioc;
    auto client = make_client(ioc, server.url());
    Request request;
    request.target = "/base/";
    for (int i = 0; i < 3; ++i) {
        const auto exchange = run(ioc, client->request(request));
        ASSERT_TRUE(exchange.ok) << exchange.error;
    }
    EXPECT_EQ(server.seen().size(), 3u);
    EXPECT_EQ(server.connections(), 1);
}

Request get(std::string target) {
    Request request;
    request.target = std::move(target);
    return request;
}

// A POST like a build request, with its Request::unanswered flag.
Request build_post() {
    Request request;
    request.method = Method::post;
    request.target = "/base/build";
    request.body = "x";
    request.unanswered = std::make_shared<bool>(false);
    return request;
}

// A POST written whole on a kept-alive connection that the server then closes without a word may
// have been acted on (a build queued): it fails unanswered and is not sent again.
TEST(HttpClient, APostTheServerTookAndClosedOnWithoutAnsweringIsNotSentAgain) {
    ScriptedServer server([](const Seen& s) {
        Reply r;
        r.close = s.method == "POST";
        return r;
    });
    asio::io_context ioc;
    auto client = make_client(ioc, server.url());
    ASSERT_TRUE(run(ioc, client->request(get("/base/warm"))).ok);

    Request build = build_post();
    const auto exchange = run(ioc, client->request(build));
    EXPECT_FALSE(exchange.ok);
    EXPECT_NE(exchange.error.find("read: "), std::string::npos) << exchange.error;
    EXPECT_TRUE(*build.unanswered);
    const auto seen = server.seen();
    EXPECT_EQ(std::count_if(seen.begin(), seen.end(),
                            [](const Seen& s) { return s.target == "/base/build"; }),
              1);
    EXPECT_EQ(server.connections(), 1);
}

// The same for a GET, which does nothing twice: sent once more on a fresh connection.
TEST(HttpClient, AGetTheServerClosedOnWithoutAnsweringIsSentOnceMoreOnAFreshConnection) {
    std::atomic<int> reads{0};
    ScriptedServer server([&](const Seen& s) {
        Reply r;
        r.close = s.target == "/base/read" && reads++ == 0;
        return r;
    });
    asio::io_context ioc;
    auto client = make_client(ioc, server.url());
    ASSERT_TRUE(run(ioc, client->request(get("/base/warm"))).ok);

    const auto exchange = run(ioc, client->request(get("/base/read")));
    EXPECT_TRUE(exchange.ok) << exchange.error;
    EXPECT_EQ(reads.load(), 2);
    EXPECT_EQ(server.connections(), 2);
}

// A kept-alive connection the server closed while it sat in the pool (its keep-alive timeout, a
// restart) is not written to: the POST goes out once, on a fresh connection, and is answered.
TEST(HttpClient, AConnectionTheServerClosedWhileIdleIsNotWrittenTo) {
    ScriptedServer server([](const Seen& s) {
        Reply r;
        r.close_after = s.target == "/base/warm";
        return r;
    });
    asio::io_context ioc;
    Options options;
    options.pool_max_idle = std::chrono::minutes(1);  // the peek finds it closed, not its age
    auto client = make_client(ioc, server.url(), options);
    ASSERT_TRUE(run(ioc, client->request(get("/base/warm"))).ok);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (server.closed() == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
    }
    ASSERT_EQ(server.closed(), 1);

    Request build = build_post();
    const auto exchange = run(ioc, client->request(build));
    EXPECT_TRUE(exchange.ok) << exchange.error;
    EXPECT_FALSE(*build.unanswered);
    EXPECT_EQ(server.seen().size(), 2u);
    EXPECT_EQ(server.connections(), 2);
}

// A kept-alive connection waits in the pool at most pool_max_idle: after that a new one is made.
TEST(HttpClient, AConnectionIdleForPoolMaxIdleIsNotUsedAgain) {
    ScriptedServer server([](const Seen&) { return Reply{}; });
    asio::io_context ioc;
    Options options;
    options.pool_max_idle = std::chrono::milliseconds(0);
    auto client = make_client(ioc, server.url(), options);
    Request request;
    request.target = "/base/";
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(run(ioc, client->request(request)).ok);
    EXPECT_EQ(server.connections(), 3);
}

// A request is first written without waiting; what the socket does not take at once must still
// go out, under io_timeout, on a new connection and on a kept-alive one.
TEST(HttpClient, ARequestTheSocketCannotTakeAtOnceIsWrittenWhole) {
    ScriptedServer server([](const Seen& s) {
        Reply r;
        r.body = std::to_string(s.body.size());
        return r;
    });
    asio::io_context ioc;
    auto client = make_client(ioc, server.url());
    Request request;
    request.method = Method::post;
    request.target = "/base/big";
    request.body.resize(k_large_body);
    for (std::size_t i = 0; i < request.body.size(); ++i) {
        request.body[i] = static_cast<char>('a' + i % 26);
    }
    for (int i = 0; i < 2; ++i) {
        const auto exchange = run(ioc, client->request(request));
        ASSERT_TRUE(exchange.ok) << exchange.error;
        EXPECT_EQ(exchange.response.body, std::to_string(k_large_body));
    }
    const auto seen = server.seen();
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_TRUE(seen[0].body == request.body);
    EXPECT_TRUE(seen[1].body == request.body);
    EXPECT_EQ(server.connections(), 1);
}

TEST(HttpClient, AWriteThePeerNeverReadsTimesOutAfterIoTimeout) {
    // Listening, so the connection is made, but nothing ever accepts or reads it.
    asio::io_context listener;
    tcp::acceptor acceptor(listener, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    asio::io_context ioc;
    Options options;
    options.io_timeout = k_short_timeout;
    auto client = make_client(
        ioc, "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + "/base/",
        options);
    Request request;
    request.method = Method::post;
    request.target = "/base/big";
    request.body.assign(k_large_body, 'x');
    const auto exchange = run(ioc, client->request(request));

    EXPECT_FALSE(exchange.ok);
    EXPECT_EQ(exchange.error, "write: timeout after 300 ms");
}

TEST(HttpClient, RefusedConnectNamesPhaseAndEndpoint) {
    const auto port = closed_port();
    asio::io_context ioc;
    auto client = make_client(ioc, "http://127.0.0.1:" + std::to_string(port) + "/");
    Request request;
    request.target = "/";
    const auto exchange = run(ioc, client->request(request));

    EXPECT_FALSE(exchange.ok);
    EXPECT_EQ(exchange.error, "connect 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST(HttpClient, SilentServerTimesOutTheRead) {
    ScriptedServer server([](const Seen&) {
        Reply r;
        r.hang = true;
        return r;
    });
    asio::io_context ioc;
    Options options;
    options.io_timeout = k_short_timeout;
    auto client = make_client(ioc, server.url(), options);
    Request request;
    request.target = "/base/";
    const auto exchange = run(ioc, client->request(request));

    EXPECT_FALSE(exchange.ok);
    EXPECT_EQ(exchange.error, "read: timeout after 300 ms");
}

TEST(HttpClient, WholeCallIsBoundedByRequestTimeout) {
    ScriptedServer server([](const Seen&) {
        Reply r;
        r.hang = true;
        return r;
    });
    asio::io_context ioc;
    Options options;
    options.request_timeout = k_short_timeout;
    auto client = make_client(ioc, server.url(), options);
    Request request;
    request.target = "/base/";
    const auto exchange = run(ioc, client->request(request));

    EXPECT_FALSE(exchange.ok);
    EXPECT_EQ(exchange.error, "request: timeout after 300 ms");
}

TEST(HttpClient, UnansweredTellsARequestTheServerTookFromOneThatNeverLeftOrWasAnswered) {
    ScriptedServer server([](const Seen& seen) {
        Reply r;
        r.hang = seen.target == "/base/hang";
        if (seen.target == "/base/cut") {
            // An answer begun and cut short: the request's fate is not known either.
            r.raw = "HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\nabc";
        }
        return r;
    });
    asio::io_context ioc;
    Options options;
    options.io_timeout = k_short_timeout;
    auto client = make_client(ioc, server.url(), options);
    auto ask = [&](std::string target, std::shared_ptr<Client> to) {
        Request request;
        request.method = Method::post;
        request.target = std::move(target);
        request.body = "x";
        request.unanswered = std::make_shared<bool>(true);  // each case must set it
        auto flag = request.unanswered;
        const auto exchange = run(ioc, to->request(std::move(request)));
        return std::pair{exchange, *flag};
    };

    const auto [answered, answered_flag] = ask("/base/ok", client);
    EXPECT_TRUE(answered.ok);
    EXPECT_FALSE(answered_flag);

    const auto [hung, hung_flag] = ask("/base/hang", client);
    EXPECT_EQ(hung.error, "read: timeout after 300 ms");
    EXPECT_TRUE(hung_flag);

    // Cut short by request_timeout while waiting for the answer: no Exchange says so, the flag
    // does.
    Options whole;
    whole.request_timeout = k_short_timeout;
    const auto [cut, cut_flag] = ask("/base/hang", make_client(ioc, server.url(), whole));
    EXPECT_EQ(cut.error, "request: timeout after 300 ms");
    EXPECT_TRUE(cut_flag);

    const auto [cut_answer, cut_answer_flag] = ask("/base/cut", client);
    EXPECT_FALSE(cut_answer.ok);
    EXPECT_TRUE(cut_answer_flag);

    const auto [refused, refused_flag] =
        ask("/", make_client(ioc, "http://127.0.0.1:" + std::to_string(closed_port()) + "/"));
    EXPECT_FALSE(refused.ok);
    EXPECT_FALSE(refused_flag);
}

TEST(HttpClient, BodyOverTheLimitIsCutThere) {
    const std::string body = std::string(600, 'a') + std::string(600, 'b');
    ScriptedServer server([&body](const Seen&) {
        Reply r;
        r.status = 500;
        r.body = body;
        return r;
    });
    asio::io_context ioc;
    Options options;
    options.body_limit = 1000;
    auto client = make_client(ioc, server.url(), options);
    Request request;
    request.target = "/base/";
    const auto exchange = run(ioc, client->request(request));

    ASSERT_TRUE(exchange.ok) << exchange.error;
    EXPECT_EQ(exchange.response.status, 500);
    EXPECT_TRUE(exchange.response.body_truncated);
    EXPECT_EQ(exchange.response.body.size(), 1000u);
    EXPECT_TRUE(exchange.response.body == body.substr(0, 1000));
}

TEST(HttpClient, BodyOverTheLimitDoesNotReuseTheConnection) {
    ScriptedServer server([](const Seen&) {
        Reply r;
        r.body = std::string(2000, 'x');
        return r;
    });
    asio::io_context ioc;
    Options options;
    options.body_limit = 1000;
    auto client = make_client(ioc, server.url(), options);
    Request request;
    request.target = "/base/";
    for (int i = 0; i < 2; ++i) {
        const auto exchange = run(ioc, client->request(request));
        ASSERT_TRUE(exchange.ok) << exchange.error;
        EXPECT_TRUE(exchange.response.body_truncated);
    }
    EXPECT_EQ(server.connections(), 2);
}

TEST(HttpClient, RequestBodyLimitOverridesTheClients) {
    const std::string body(3000, 'j');
    ScriptedServer server([&body](const Seen&) {
        Reply r;
        r.body = body;
        return r;
    });
    asio::io_context ioc;
    Options options;
    options.body_limit = 1000;
    auto client = make_client(ioc, server.url(), options);
    Request request;
    request.target = "/base/";
    request.body_limit = 4000;
    const auto whole = run(ioc, client->request(request));
    request.body_limit = 2000;
    const auto cut = run(ioc, client->request(request));

    ASSERT_TRUE(whole.ok) << whole.error;
    EXPECT_FALSE(whole.response.body_truncated);
    EXPECT_TRUE(whole.response.body == body);
    ASSERT_TRUE(cut.ok) << cut.error;
    EXPECT_TRUE(cut.response.body_truncated);
    EXPECT_TRUE(cut.response.body == body.substr(0, 2000));
}

TEST(HttpClient, HugeContentLengthIsReadUpToTheLimitNotReservedUpFront) {
    // A petabyte claimed: reserving it would fail (or take the memory); only what arrives counts.
    ScriptedServer server([](const Seen&) {
        Reply r;
        r.raw = "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000\r\n\r\n" +
                std::string(20 * 1024, 'p');  // more than one piece of reading
        return r;
    });
    asio::io_context ioc;
    Options options;
    options.body_limit = 1000;
    auto client = make_client(ioc, server.url(), options);
    Request request;
    request.target = "/base/";
    const auto exchange = run(ioc, client->request(request));

    ASSERT_TRUE(exchange.ok) << exchange.error;
    EXPECT_EQ(exchange.response.status, 200);
    EXPECT_TRUE(exchange.response.body_truncated);
    EXPECT_EQ(exchange.response.body, std::string(1000, 'p'));
}

TEST(HttpClient, HeadOverTheLimitIsAnsweredByItsStatusLine) {
    ScriptedServer server([](const Seen&) {
        Reply r;
        r.raw = "HTTP/1.1 201 Created\r\nLocation: http://h/" + std::string(40 * 1024, 'l') +
                "\r\nContent-Length: 0\r\n\r\n";
        return r;
    });
    asio::io_context ioc;
    auto client = make_client(ioc, server.url());
    Request request;
    request.target = "/base/";
    const auto first = run(ioc, client->request(request));
    const auto second = run(ioc, client->request(request));

    ASSERT_TRUE(first.ok) << first.error;
    EXPECT_EQ(first.response.status, 201);
    EXPECT_TRUE(first.response.head_too_large);
    EXPECT_EQ(first.response.header("Location"), "");
    ASSERT_TRUE(second.ok) << second.error;
    EXPECT_EQ(server.connections(), 2);  // the rest of the head was unread: not reused
}

TEST(HttpClient, AuthorizationValueNeverInAnErrorText) {
    const std::string secret = "Bearer ghp_s3cr3t-token-value";
    ScriptedServer hanging([](const Seen&) {
        Reply r;
        r.hang = true;
        return r;
    });
    asio::io_context ioc;
    Options options;
    options.io_timeout = k_short_timeout;
    Request request;
    request.method = Method::post;
    request.target = "/base/";
    request.headers = {{"Authorization", secret}};
    request.body = "{}";

    auto refused =
        make_client(ioc, "http://127.0.0.1:" + std::to_string(closed_port()) + "/", options);
    auto hung = make_client(ioc, hanging.url(), options);
    const auto a = run(ioc, refused->request(request));
    const auto b = run(ioc, hung->request(request));

    ASSERT_FALSE(a.ok);
    ASSERT_FALSE(b.ok);
    EXPECT_EQ(a.error.find("s3cr3t"), std::string::npos) << a.error;
    EXPECT_EQ(b.error.find("s3cr3t"), std::string::npos) << b.error;
    // The hanging server did see it: the header was sent.
    ASSERT_EQ(hanging.seen().size(), 1u);
    EXPECT_EQ(hanging.seen()[0].header("Authorization"), secret);
}

TEST(HttpClient, RejectsABaseUrlThatIsNotHttp) {
    asio::io_context ioc;
    Options options;
    options.url = "ftp://example.com/";
    std::string why;
    auto client = Client::make(ioc.get_executor(), options, &why);
    EXPECT_FALSE(client);
    EXPECT_FALSE(why.empty());
}

}  // namespace
}  // namespace hookrelay::httpclient
