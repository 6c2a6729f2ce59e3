// Reading HTTP messages with util/http_read.hpp over Beast's in-memory test stream: the results
// Beast's own reads give (split reads, end of stream, a full buffer, a full buffer_body), and no
// read from the stream for what the buffer already holds.
#include "util/http_read.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

namespace hookrelay {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

// A stream that yields `input` (at most `read_size` bytes a read when not 0) and then ends.
struct Input {
    asio::io_context ioc;
    beast::test::stream local{ioc};
    beast::test::stream remote{ioc};
    Input(std::string_view input, std::size_t read_size = 0) {
        local.connect(remote);
        local.append(input);
        local.close_remote();
        if (read_size > 0) local.read_size(read_size);
    }
    // Runs `task` to completion on the io_context; its result.
    error_code run(asio::awaitable<error_code> task) {
        std::optional<error_code> result;
        asio::co_spawn(ioc, std::move(task), [&](std::exception_ptr e, error_code ec) {
            if (e) std::rethrow_exception(e);
            result = ec;
        });
        ioc.restart();
        ioc.run();
        EXPECT_TRUE(result.has_value());
        return result.value_or(error_code{});
    }
};

constexpr std::string_view k_request =
    "POST /hooks/github HTTP/1.1\r\nHost: relay\r\nContent-Length: 20\r\n\r\n"
    "01234567890123456789";

TEST(HttpRead, ParsesAMessageSplitAcrossManyReads) {
    Input in(k_request, 5);
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> parser;
    EXPECT_FALSE(in.run(read_message_head(in.local, buffer, parser)));
    EXPECT_TRUE(parser.is_header_done());
    EXPECT_FALSE(parser.is_done());
    EXPECT_FALSE(in.run(read_whole_message(in.local, buffer, parser)));
    ASSERT_TRUE(parser.is_done());
    EXPECT_EQ(parser.get().target(), "/hooks/github");
    EXPECT_EQ(parser.get().body(), "01234567890123456789");
    EXPECT_GT(in.local.nread(), 10u);
}

TEST(HttpRead, ABodyThatCameWithTheHeadIsParsedWithoutAnotherRead) {
    Input in(k_request);
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> parser;
    EXPECT_FALSE(in.run(read_message_head(in.local, buffer, parser)));
    EXPECT_EQ(in.local.nread(), 1u);
    EXPECT_FALSE(in.run(read_message_part(in.local, buffer, parser)));
    EXPECT_TRUE(parser.is_done());
    EXPECT_EQ(parser.get().body(), "01234567890123456789");
    EXPECT_EQ(in.local.nread(), 1u);
}

TEST(HttpRead, TheStreamEndingInsideABodyIsAPartialMessage) {
    Input in("POST / HTTP/1.1\r\nHost: relay\r\nContent-Length: 10\r\n\r\n0123");
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> parser;
    EXPECT_EQ(in.run(read_whole_message(in.local, buffer, parser)), bhttp::error::partial_message);
}

TEST(HttpRead, TheStreamEndingBeforeAnyByteIsTheEndOfTheStream) {
    Input in("");
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> parser;
    EXPECT_EQ(in.run(read_message_head(in.local, buffer, parser)), bhttp::error::end_of_stream);
}

TEST(HttpRead, AnAnswerEndingWithTheConnectionIsWhole) {
    // No Content-Length: the body runs to the end of the stream.
    Input in("HTTP/1.0 200 OK\r\n\r\nuntil the end");
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    EXPECT_FALSE(in.run(read_whole_message(in.local, buffer, parser)));
    EXPECT_TRUE(parser.is_done());
    EXPECT_EQ(parser.get().body(), "until the end");
}

TEST(HttpRead, AHeadLongerThanTheBufferIsABufferOverflow) {
    Input in(k_request);
    beast::flat_buffer buffer(16);
    bhttp::request_parser<bhttp::string_body> parser;
    EXPECT_EQ(in.run(read_message_head(in.local, buffer, parser)), bhttp::error::buffer_overflow);
}

TEST(HttpRead, AFullBufferBodyAsksForAnotherPiece) {
    Input in("HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\n0123456789");
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::buffer_body> parser;
    EXPECT_FALSE(in.run(read_message_head(in.local, buffer, parser)));
    std::string body;
    int pieces = 0;
    while (!parser.is_done() && pieces < 10) {
        std::array<char, 4> piece{};
        parser.get().body().data = piece.data();
        parser.get().body().size = piece.size();
        const auto ec = in.run(read_whole_message(in.local, buffer, parser));
        EXPECT_TRUE(!ec || ec == bhttp::error::need_buffer) << ec.message();
        body.append(piece.data(), piece.size() - parser.get().body().size);
        ++pieces;
    }
    EXPECT_TRUE(parser.is_done());
    EXPECT_EQ(body, "0123456789");
    EXPECT_EQ(pieces, 3);
    EXPECT_EQ(parser.get().result_int(), 201u);
}

}  // namespace
}  // namespace hookrelay
