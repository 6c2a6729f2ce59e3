#include "support/http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace hookrelay::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto k_tuple = asio::as_tuple(asio::use_awaitable);

std::string HttpResult::header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
        if (beast::iequals(k, name)) return v;
    }
    return {};
}

struct HttpConnection::Impl {
    asio::io_context ioc;
    beast::tcp_stream stream{ioc};
    beast::flat_buffer buffer;
};

HttpConnection::HttpConnection(std::uint16_t port) : impl_(std::make_unique<Impl>()) {
    impl_->stream.socket().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
}

HttpConnection::~HttpConnection() = default;

namespace {

asio::awaitable<void> exchange(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                               http::request<http::string_body> req, HttpResult& out,
                               std::chrono::milliseconds deadline) {
    stream.expires_after(deadline);
    auto [wec, wn] = co_await http::async_write(stream, req, k_tuple);
    (void)wn;
    if (wec) {
        out.error = "write: " + wec.message();
        co_return;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, k_tuple);
    (void)rn;
    if (rec) {
        out.error = "read: " + rec.message();
        co_return;
    }
    auto res = parser.release();
    out.status = res.result_int();
    out.body = res.body();
    out.keep_alive = res.keep_alive();
    for (const auto& f : res) out.headers.emplace_back(f.name_string(), f.value());
}

http::request<http::string_body> make_request(const std::string& method, const std::string& target,
                                              const Headers& headers, const std::string& body) {
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    if (!body.empty() || method == "POST") req.prepare_payload();
    return req;
}

}  // namespace

HttpResult HttpConnection::request(const std::string& method, const std::string& target,
                                   const Headers& headers, const std::string& body,
                                   std::chrono::milliseconds deadline) {
    HttpResult out;
    asio::co_spawn(impl_->ioc,
                   exchange(impl_->stream, impl_->buffer,
                            make_request(method, target, headers, body), out, deadline),
                   asio::detached);
    impl_->ioc.restart();
    impl_->ioc.run();
    return out;
}

void HttpConnection::send_raw(const std::string& bytes) {
    asio::write(impl_->stream.socket(), asio::buffer(bytes));
}

bool HttpConnection::closed_by_peer(std::chrono::milliseconds wait) {
    bool closed = false;
    auto probe = [&]() -> asio::awaitable<void> {
        impl_->stream.expires_after(wait);
        char byte = 0;
        auto [ec, n] = co_await impl_->stream.async_read_some(asio::buffer(&byte, 1), k_tuple);
        (void)n;
        closed = ec == asio::error::eof || ec == asio::error::connection_reset;
    };
    asio::co_spawn(impl_->ioc, probe(), asio::detached);
    impl_->ioc.restart();
    impl_->ioc.run();
    return closed;
}

HttpResult http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        const Headers& headers, const std::string& body,
                        std::chrono::milliseconds deadline) {
    HttpConnection connection(port);
    auto headers_close = headers;
    headers_close.emplace_back("Connection", "close");
    return connection.request(method, target, headers_close, body, deadline);
}

}  // namespace hookrelay::test
