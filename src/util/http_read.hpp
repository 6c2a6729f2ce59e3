// Reading an HTTP message from a stream as Beast's http::async_read_some, async_read_header and
// async_read do, as coroutines that return at once when the buffer already holds what the
// parser needs. Beast's post their completion through the scheduler then (a body that arrived
// with its head, an answer read whole with its status line): one trip through the scheduler per
// message for nothing (docs/performance.md). Include only in .cpp files (pulls in Beast).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <cstddef>

namespace hookrelay {

/// Parses what `buffer` holds and reads from `stream` while the parser needs more (at most 64 KiB
/// a read, as Beast's), until the parser has taken a step: the same results as Beast's
/// http::async_read_some (end_of_stream when the stream ends before any byte of a message,
/// partial_message when it ends inside one, buffer_overflow when the buffer is full, need_buffer
/// from a buffer_body that is full, the stream's own errors and timeouts).
/// With `max_lines` above 0, a head whose lines (the request or status line and the fields) the
/// parser took pass it while the head is still incomplete ends with header_limit: Beast stores
/// each field as it parses it, so a head of many tiny fields that never ends would otherwise hold
/// several times header_limit in memory.
template <class Stream, class DynamicBuffer, bool is_request>
boost::asio::awaitable<boost::system::error_code> read_message_part(
    Stream& stream, DynamicBuffer& buffer, boost::beast::http::basic_parser<is_request>& parser,
    std::size_t max_lines = 0) {
    std::size_t lines = 0;
    namespace bhttp = boost::beast::http;
    for (;;) {
        if (buffer.size() > 0) {
            boost::system::error_code ec;
            const std::size_t used = parser.put(buffer.data(), ec);
            if (max_lines > 0 && !parser.is_header_done()) {
                std::size_t left = used;
                for (const auto b : boost::beast::buffers_range(buffer.data())) {
                    const auto* p = static_cast<const char*>(b.data());
                    const std::size_t n = std::min(left, b.size());
                    lines += static_cast<std::size_t>(std::count(p, p + n, '\n'));
                    left -= n;
                    if (left == 0) break;
                }
                if (lines > max_lines) co_return bhttp::error::header_limit;
            }
            buffer.consume(used);
            if (ec != bhttp::error::need_more) co_return ec;
        }
        const std::size_t size = boost::beast::read_size(buffer, 65536);
        if (size == 0) co_return bhttp::error::buffer_overflow;
        auto [rec, n] = co_await stream.async_read_some(
            buffer.prepare(size), boost::asio::as_tuple(boost::asio::use_awaitable));
        buffer.commit(n);
        if (rec == boost::asio::error::eof) {
            if (!parser.got_some()) co_return bhttp::error::end_of_stream;
            boost::system::error_code ec;
            parser.put_eof(ec);  // a message that ends with the connection, or a partial one
            co_return ec;
        }
        if (rec) co_return rec;
    }
}

/// read_message_part until the parser has the whole head: Beast's http::async_read_header, with
/// read_message_part's `max_lines`.
template <class Stream, class DynamicBuffer, bool is_request>
boost::asio::awaitable<boost::system::error_code> read_message_head(
    Stream& stream, DynamicBuffer& buffer, boost::beast::http::basic_parser<is_request>& parser,
    std::size_t max_lines = 0) {
    boost::system::error_code ec;
    while (!ec && !parser.is_header_done()) {
        ec = co_await read_message_part(stream, buffer, parser, max_lines);
    }
    co_return ec;
}

/// read_message_part until the parser has the whole message, or an error (need_buffer included):
/// Beast's http::async_read.
template <class Stream, class DynamicBuffer, bool is_request>
boost::asio::awaitable<boost::system::error_code> read_whole_message(
    Stream& stream, DynamicBuffer& buffer, boost::beast::http::basic_parser<is_request>& parser) {
    boost::system::error_code ec;
    while (!ec && !parser.is_done()) ec = co_await read_message_part(stream, buffer, parser);
    co_return ec;
}

}  // namespace hookrelay
