// The bytes of an answer: what response_head and the body make is what Beast's serializer wrote
// for the same message, and an answer larger than the socket takes at once still arrives whole over
// a real loopback connection.
#include "http/server.hpp"

#include <hookrelay/version.hpp>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>

#include <memory>
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

// Answers every request with `size` bytes of a repeating pattern.
struct LargeAnswer final : Handler {
    std::size_t size;
    explicit LargeAnswer(std::size_t n) : size(n) {}
    std::optional<Response> check_head(const RequestHead&) override { return std::nullopt; }
    asio::awaitable<Response> handle(Request) override {
        Response r;
        r.status = 200;
        r.content_type = "application/octet-stream";
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
    EXPECT_NE(at, std::string::npos) << head;
    const std::size_t length = std::stoul(head.substr(at + 16));
    if (buffer.size() < length)
        asio::read(socket, buffer, asio::transfer_exactly(length - buffer.size()));
    std::string body(asio::buffers_begin(buffer.data()),
                     asio::buffers_begin(buffer.data()) + static_cast<std::ptrdiff_t>(length));
    buffer.consume(length);
    return {head, body};
}

TEST(ServerSocket, AnAnswerLargerThanTheSendBufferArrivesWholeAndTheConnectionGoesOn) {
    // 32 MiB: more than the kernel's largest send and receive buffers together take at once, so
    // the server writes the rest asynchronously, while this client reads.
    constexpr std::size_t k_size = 32u << 20;
    asio::io_context server_ioc;
    ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    auto handler = std::make_shared<LargeAnswer>(k_size);
    Server server(server_ioc, options, handler);
    const auto port = server.listen();
    ASSERT_TRUE(port) << port.error().message();
    server.start();
    std::thread runner([&] { server_ioc.run(); });

    asio::io_context client_ioc;
    asio::ip::tcp::socket socket(client_ioc);
    socket.open(asio::ip::tcp::v4());
    socket.set_option(asio::socket_base::receive_buffer_size(4096));
    socket.connect({asio::ip::make_address("127.0.0.1"), *port});
    const std::string request =
        "GET /large HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
    asio::streambuf buffer;
    for (int round = 0; round < 2; ++round) {
        asio::write(socket, asio::buffer(request));
        const auto [head, body] = read_answer(socket, buffer);
        EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
        ASSERT_EQ(body.size(), k_size);
        bool pattern = true;
        for (std::size_t i = 0; i < k_size && pattern; ++i) {
            pattern = body[i] == static_cast<char>('a' + i % 26);
        }
        EXPECT_TRUE(pattern) << "round " << round;
    }
    socket.close();
    server.stop();
    server_ioc.stop();
    runner.join();
}

}  // namespace
}  // namespace hookrelay::http
