// The bytes of an answer: what response_head and the body make is what Beast's serializer wrote
// for the same message, and an answer (or a head) larger than the socket takes at once still
// arrives whole over a real loopback connection.
#include "http/server.hpp"

#include <hookrelay/version.hpp>

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace hookrelay::http {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

// What the server wrote before response_head: the message built the same way, through Beast's
// serializer (its operator<< runs the serializer over the whole message).
std::string through_beast(Response response, bool keep_alive, unsigned version) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(response.status), version};
    res.set(bhttp::field::server, "hookrelay/" HOOKRELAY_VERSION);
    res.set(bhttp::field::content_type, response.content_type);
    for (auto& [name, value] : response.headers) res.set(name, value);
    res.body() = std::move(response.body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    std::ostringstream out;
    out << res;
    return out.str();
}

TEST(ResponseHead, AndTheBodyAreWhatBeastsSerializerWrites) {
    std::vector<Response> answers;
    answers.push_back({202, "application/json", R"({"status":"accepted","triggers":1})", {}});
    answers.push_back({200, "text/plain; version=0.0.4", "hookrelay_up 1\n", {}});
    answers.push_back(
        {405, "application/json", R"({"error":"method not allowed"})", {{"Allow", "POST"}}});
    answers.push_back({503, "application/json", "{}", {{"Retry-After", "5"}}});
    answers.push_back({404, "application/json", "", {}});
    answers.push_back({204, "application/json", "", {}});
    answers.push_back({413, "text/plain", std::string(70'000, 'x'), {}});
    for (const auto& answer : answers) {
        for (const unsigned version : {10u, 11u}) {
            for (const bool keep_alive : {true, false}) {
                EXPECT_EQ(response_head(answer, keep_alive, version) + answer.body,
                          through_beast(answer, keep_alive, version))
                    << answer.status << " HTTP/" << version << " keep_alive " << keep_alive;
            }
        }
    }
}

TEST(ResponseHead, SaysCloseOrKeepAliveAsTheVersionNeeds) {
    const Response answer{202, "application/json", "{}", {}};
    const auto closing = response_head(answer, false, 11) + answer.body;
    EXPECT_EQ(closing.rfind("HTTP/1.1 202 Accepted\r\n", 0), 0u) << closing;
    EXPECT_NE(closing.find("\r\nConnection: close\r\n"), std::string::npos) << closing;
    EXPECT_NE(closing.find("\r\nContent-Length: 2\r\n\r\n{}"), std::string::npos) << closing;
    const auto kept = response_head(answer, true, 10);
    EXPECT_EQ(kept.rfind("HTTP/1.0 202 Accepted\r\n", 0), 0u) << kept;
    EXPECT_NE(kept.find("\r\nConnection: keep-alive\r\n"), std::string::npos) << kept;
}

constexpr std::size_t k_field_value = 60'000;

// Answers every request with `size` bytes of a repeating pattern, and fields of k_field_value
// bytes, at least `field_bytes` in all.
struct LargeAnswer final : Handler {
    std::size_t size;
    std::size_t field_bytes;
    LargeAnswer(std::size_t n, std::size_t field) : size(n), field_bytes(field) {}
    std::optional<Response> check_head(const RequestHead&) override { return std::nullopt; }
    asio::awaitable<Response> handle(Request) override {
        Response r;
        r.status = 200;
        r.content_type = "application/octet-stream";
        // Beast takes field values of up to 64 KiB: several fields of 60,000 bytes.
        for (std::size_t i = 0; i * k_field_value < field_bytes; ++i) {
            r.headers.emplace_back("X-Large-" + std::to_string(i), std::string(k_field_value, 'h'));
        }
        r.body.resize(size);
        for (std::size_t i = 0; i < size; ++i) r.body[i] = static_cast<char>('a' + i % 26);
        co_return r;
    }
    void rejected(const Rejection&) override {}
};

// Reads one answer (head and Content-Length body) from a blocking socket.
std::pair<std::string, std::string> read_answer(asio::ip::tcp::socket& socket,
                                                asio::streambuf& buffer) {
    const std::size_t head_end = asio::read_until(socket, buffer, "\r\n\r\n");
    std::string head(asio::buffers_begin(buffer.data()),
                     asio::buffers_begin(buffer.data()) + static_cast<std::ptrdiff_t>(head_end));
    buffer.consume(head_end);
    const auto at = head.find("Content-Length: ");
    EXPECT_NE(at, std::string::npos) << head.substr(0, 200);
    const std::size_t length = std::stoul(head.substr(at + 16));
    if (buffer.size() < length) {
        asio::read(socket, buffer, asio::transfer_exactly(length - buffer.size()));
    }
    std::string body(asio::buffers_begin(buffer.data()),
                     asio::buffers_begin(buffer.data()) + static_cast<std::ptrdiff_t>(length));
    buffer.consume(length);
    return {head, body};
}

// Two requests on one connection to a server answering each with a body of `body_bytes` and
// `field_bytes` of fields, read by a client whose receive buffer is 4 KB: more than the kernel's
// send and receive buffers take at once, so the server writes the rest asynchronously while the
// client reads. A client stuck for 60 s is cut off (its reads then fail the test).
void expect_whole_answers(std::size_t body_bytes, std::size_t field_bytes) {
    asio::io_context server_ioc;
    ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    Server server(server_ioc, options, std::make_shared<LargeAnswer>(body_bytes, field_bytes));
    const auto port = server.listen();
    ASSERT_TRUE(port) << port.error().message();
    server.start();
    std::thread runner([&] { server_ioc.run(); });

    asio::io_context client_ioc;
    asio::ip::tcp::socket socket(client_ioc);
    socket.open(asio::ip::tcp::v4());
    socket.set_option(asio::socket_base::receive_buffer_size(4096));
    socket.connect({asio::ip::make_address("127.0.0.1"), *port});
    std::mutex mutex;
    std::condition_variable changed;
    bool done = false;
    std::thread watchdog([&] {
        std::unique_lock lock(mutex);
        if (!changed.wait_for(lock, std::chrono::seconds(60), [&] { return done; })) {
            ::shutdown(socket.native_handle(), SHUT_RDWR);
        }
    });
    const std::string request =
        "GET /large HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
    asio::streambuf buffer;
    try {
        for (int round = 0; round < 2; ++round) {
            asio::write(socket, asio::buffer(request));
            const auto [head, body] = read_answer(socket, buffer);
            EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head.substr(0, 200);
            if (field_bytes > 0) {
                const std::size_t last = (field_bytes - 1) / k_field_value;
                EXPECT_NE(head.find("\r\nX-Large-" + std::to_string(last) + ": " +
                                    std::string(k_field_value, 'h') + "\r\n"),
                          std::string::npos);
                EXPECT_GT(head.size(), field_bytes);
            }
            ASSERT_EQ(body.size(), body_bytes);
            bool pattern = true;
            for (std::size_t i = 0; i < body_bytes && pattern; ++i) {
                pattern = body[i] == static_cast<char>('a' + i % 26);
            }
            EXPECT_TRUE(pattern) << "round " << round;
        }
    } catch (const std::exception& e) {
        ADD_FAILURE() << "the client's exchange failed: " << e.what();
    }
    {
        std::lock_guard lock(mutex);
        done = true;
    }
    changed.notify_all();
    watchdog.join();
    socket.close();
    server.stop();
    server_ioc.stop();
    runner.join();
}

TEST(ServerSocket, AnAnswerLargerThanTheSendBufferArrivesWholeAndTheConnectionGoesOn) {
    expect_whole_answers(32u << 20, 0);
}

TEST(ServerSocket, AHeadLargerThanTheSendBufferArrivesWholeWithItsBody) {
    // The head alone (16 MiB of fields) is more than the socket takes: the rest of the head and the
    // whole body go out asynchronously.
    expect_whole_answers(1u << 20, 16u << 20);
}

}  // namespace
}  // namespace hookrelay::http
