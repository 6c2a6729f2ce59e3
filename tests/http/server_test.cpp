// The server's request loop over in-memory bytes (http::serve_bytes): what a client that sends
// exactly these bytes gets back, and what reaches the handler.
#include "http/server.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

namespace hookrelay::http {
namespace {

// Answers 202 with "method target body" and records every request it saw.
struct Recorder final : Handler {
    std::vector<Request> seen;
    unsigned status = 202;
    std::optional<Response> check_head(const RequestHead&) override { return std::nullopt; }
    boost::asio::awaitable<Response> handle(Request request) override {
        Response r;
        r.status = status;
        r.body = request.head.method + " " + request.head.target + " " + request.body;
        seen.push_back(std::move(request));
        co_return r;
    }
    std::vector<unsigned> rejected_statuses;
    void rejected(const Rejection& rejection) override {
        rejected_statuses.push_back(rejection.status);
    }
};

std::size_t count(const std::string& haystack, const std::string& needle) {
    std::size_t n = 0;
    for (auto pos = haystack.find(needle); pos != std::string::npos;
         pos = haystack.find(needle, pos + 1)) {
        ++n;
    }
    return n;
}

std::string run(std::shared_ptr<Recorder> handler, const std::string& bytes,
                ServerOptions options = {}) {
    return serve_bytes(options, handler, bytes);
}

const std::string k_smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";

TEST(ServerFraming, ServesTwoKeptAliveRequests) {
    auto h = std::make_shared<Recorder>();
    auto out = run(h,
                   "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
                   "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nyou");
    ASSERT_EQ(h->seen.size(), 2u);
    EXPECT_EQ(h->seen[0].body, "hi");
    EXPECT_EQ(h->seen[1].body, "you");
    EXPECT_EQ(count(out, "HTTP/1.1 202"), 2u);
}

TEST(ServerFraming, ReadsAnOrdinaryWebhookInOneReadAndALargeBodyInLargeOnes) {
    // Every read is a system call. A push of 8.8 KB and its head fit one read (then one more
    // finds the client's side closed); a buffer left at Beast's minimum took a read per 512 bytes.
    auto h = std::make_shared<Recorder>();
    const std::string head =
        "POST /hooks/github HTTP/1.1\r\nHost: relay\r\nX-GitHub-Event: push\r\n";
    std::size_t reads = std::numeric_limits<std::size_t>::max();
    serve_bytes({}, h, head + "Content-Length: 9000\r\n\r\n" + std::string(9'000, 'x'), &reads);
    ASSERT_EQ(h->seen.size(), 1u);
    EXPECT_EQ(h->seen[0].body.size(), 9'000u);
    EXPECT_EQ(reads, 2u);
    // A 1 MiB body: reads of 64 KiB, not 16 KiB (or 512 bytes).
    reads = std::numeric_limits<std::size_t>::max();
    serve_bytes({}, h, head + "Content-Length: 1048576\r\n\r\n" + std::string(1 << 20, 'x'),
                &reads);
    ASSERT_EQ(h->seen.size(), 2u);
    EXPECT_EQ(h->seen[1].body.size(), std::size_t{1} << 20);
    EXPECT_LE(reads, 18u);
}

TEST(ServerFraming, DecodesAChunkedBody) {
    auto h = std::make_shared<Recorder>();
    run(h,
        "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    ASSERT_EQ(h->seen.size(), 1u);
    EXPECT_EQ(h->seen[0].body, "hello world");
}

TEST(ServerFraming, RefusesTransferEncodingThatIsNotFinallyChunked) {
    for (const std::string te : {"xchunked", "gzip", "chunked, identity"}) {
        auto h = std::make_shared<Recorder>();
        auto out = run(
            h, "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + te + "\r\n\r\n" + k_smuggled);
        EXPECT_TRUE(h->seen.empty()) << te << ": the smuggled request reached the handler";
        EXPECT_EQ(count(out, "HTTP/1.1 400"), 1u) << te << "\n" << out;
        EXPECT_EQ(count(out, "HTTP/1.1 "), 1u) << te << ": more than one response\n" << out;
        EXPECT_EQ(h->rejected_statuses, std::vector<unsigned>{400}) << te;
    }
}

TEST(ServerFraming, RefusesARequestWithoutHost) {
    auto h = std::make_shared<Recorder>();
    auto out = run(h, "POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    EXPECT_TRUE(h->seen.empty());
    EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
}

TEST(ServerFraming, AnswersAMalformedChunkSizeWith400) {
    auto h = std::make_shared<Recorder>();
    auto out = run(h,
                   "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "zz\r\nhello\r\n0\r\n\r\n");
    EXPECT_TRUE(h->seen.empty());
    EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
}

// Beast bounds the head, not a chunk's size line or the trailers: a line that never ends must
// not grow the read buffer for as long as the client sends it.
TEST(ServerFraming, AChunkLineThatNeverEndsIsAnswered400OnceTheBufferIsFull) {
    const std::string head = "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (const std::string& endless :
         {"1;" + std::string(4 << 20, 'e'), "0\r\nX-Trailer: " + std::string(4 << 20, 't')}) {
        auto h = std::make_shared<Recorder>();
        std::size_t reads = std::numeric_limits<std::size_t>::max();
        const auto out = serve_bytes({}, h, head + endless, &reads);
        EXPECT_TRUE(h->seen.empty());
        EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out.substr(0, 200);
        // 4 MiB are 64 reads of 64 KiB: it stopped after a few.
        EXPECT_LE(reads, 8u);
    }
}

// The 501 names the coding the client sent: its answer stays JSON whatever that holds.
TEST(ServerFraming, AnUnsupportedCodingIsQuotedInTheAnswerAsJsonText) {
    auto h = std::make_shared<Recorder>();
    const auto out = run(h,
                         "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x\\\"y, chunked\r\n\r\n"
                         "0\r\n\r\n");
    EXPECT_TRUE(h->seen.empty());
    EXPECT_EQ(out.rfind("HTTP/1.1 501", 0), 0u) << out;
    EXPECT_NE(out.find(R"("error":"transfer coding 'x\\\"y' is not supported"})"),
              std::string::npos)
        << out;
}

TEST(ServerFraming, AnswersAnUnparseableHeadWith400) {
    auto h = std::make_shared<Recorder>();
    auto out = run(h, "POST /a HTTP/1.1\r\nHost a\r\n\r\n");
    EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
    EXPECT_EQ(h->rejected_statuses, std::vector<unsigned>{400});
}

TEST(ServerFraming, ClosesTheConnectionAfterARejectedRequest) {
    auto h = std::make_shared<Recorder>();
    h->status = 401;
    auto out = run(h,
                   "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
                   "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(h->seen.size(), 1u);
    EXPECT_EQ(count(out, "HTTP/1.1 401"), 1u);
    EXPECT_NE(out.find("Connection: close"), std::string::npos) << out;
}

TEST(ServerFraming, RefusesABodyOverTheClientsMemoryShareBeforeReadingIt) {
    auto h = std::make_shared<Recorder>();
    ServerOptions o;
    o.body_limit = 1 << 20;
    o.body_memory = 1 << 20;
    o.body_memory_per_client = 100 * 1024;
    auto out = run(h,
                   "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 204800\r\n\r\n" +
                       std::string(200 * 1024, 'x'),
                   o);
    EXPECT_TRUE(h->seen.empty());
    EXPECT_EQ(out.rfind("HTTP/1.1 503", 0), 0u) << out;
    EXPECT_NE(out.find("Retry-After"), std::string::npos);
}

TEST(ServerFraming, RefusesAChunkedBodyThatOutgrowsTheMemoryBudget) {
    auto h = std::make_shared<Recorder>();
    ServerOptions o;
    o.body_limit = 1 << 20;
    o.body_memory = 1 << 20;
    o.body_memory_per_client = 100 * 1024;  // 64 KiB are free; growing past them does not fit
    std::string body;
    const std::string chunk(16 * 1024, 'y');
    for (int i = 0; i < 8; ++i) body += "4000\r\n" + chunk + "\r\n";
    body += "0\r\n\r\n";
    auto out =
        run(h, "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body, o);
    EXPECT_TRUE(h->seen.empty());
    EXPECT_EQ(out.rfind("HTTP/1.1 503", 0), 0u) << out.substr(0, 200);
}

TEST(ServerFraming, SmallBodiesAreNotChargedToTheMemoryBudget) {
    auto h = std::make_shared<Recorder>();
    ServerOptions o;
    o.body_memory = 1;
    o.body_memory_per_client = 1;
    run(h, "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 9000\r\n\r\n" + std::string(9000, 'x'),
        o);
    ASSERT_EQ(h->seen.size(), 1u);
}

TEST(ServerFraming, AnswersOversizeContentLengthWith413) {
    auto h = std::make_shared<Recorder>();
    ServerOptions o;
    o.body_limit = 10;
    auto out = run(h, "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n0123456789a", o);
    EXPECT_TRUE(h->seen.empty());
    EXPECT_EQ(out.rfind("HTTP/1.1 413", 0), 0u) << out;
    EXPECT_EQ(h->rejected_statuses, std::vector<unsigned>{413});
}

TEST(ServerFraming, AnswersOversizeHeadersWith431) {
    auto h = std::make_shared<Recorder>();
    ServerOptions o;
    o.header_limit = 256;
    auto out = run(h,
                   "POST /a HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(1000, 'b') +
                       "\r\nContent-Length: 0\r\n\r\n",
                   o);
    EXPECT_EQ(out.rfind("HTTP/1.1 431", 0), 0u) << out;
    EXPECT_EQ(h->rejected_statuses, std::vector<unsigned>{431});
}

}  // namespace
}  // namespace hookrelay::http
