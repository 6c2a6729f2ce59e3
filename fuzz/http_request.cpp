// The HTTP/1.1 request framing as the webhook listener sees it: the input is the byte stream one
// client sends on one connection (then it closes its side), fed through the server's own request
// loop (http::serve_bytes, an in-memory stream) with small limits. Checks: nothing crashes or
// leaks; every request the handler sees has a body within body_limit; every request handled is
// answered; and the server never answers more requests than the handler plus its own refusals.
#include "http/server.hpp"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

namespace {

using namespace hookrelay::http;

constexpr std::size_t k_body_limit = 4096;

struct Counter final : Handler {
    std::size_t handled = 0;
    std::size_t refused = 0;
    std::optional<Response> check_head(const RequestHead& head) override {
        // Let through what a webhook path would; refuse the rest early, as the real one does.
        if (head.target.rfind("/hooks/", 0) != 0) {
            ++refused;
            Response r;
            r.status = 404;
            r.body = "{}";
            return r;
        }
        return std::nullopt;
    }
    boost::asio::awaitable<Response> handle(Request request) override {
        if (request.body.size() > k_body_limit) std::abort();
        ++handled;
        Response r;
        r.status = request.body.empty() ? 204 : 200;
        r.body = request.body.empty() ? "" : "ok";
        co_return r;
    }
    void rejected(const Rejection&) override { ++refused; }
};

std::size_t responses(const std::string& out) {
    std::size_t n = 0;
    for (auto at = out.find("\r\nServer: hookrelay/"); at != std::string::npos;
         at = out.find("\r\nServer: hookrelay/", at + 1)) {
        ++n;
    }
    return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ServerOptions options;
    options.body_limit = k_body_limit;
    options.header_limit = 2048;
    options.body_memory = 1 << 20;
    options.body_memory_per_client = 1 << 20;
    auto handler = std::make_shared<Counter>();
    const auto out =
        serve_bytes(options, handler, std::string_view(reinterpret_cast<const char*>(data), size));
    const auto answered = responses(out);
    // Every handled request got its answer (unless the client was gone by then: the in-memory
    // peer never goes away, so it always does), and no answer is invented.
    if (answered < handler->handled) std::abort();
    if (answered > handler->handled + handler->refused + 1) std::abort();
    return 0;
}
