// How the SQLite store keeps a delivery's body: compressed with LZ4 (its block format) when that
// makes it smaller, as received otherwise. The column body_lz4_size (schema version 10) holds the
// size before compression, and is NULL for a body stored as received (every body stored before
// version 10, and those LZ4 does not shrink).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hookrelay::store::sqlite {

/// A body as the deliveries table stores it: an LZ4 block when `size` is set, otherwise the
/// body itself (which `bytes` does not copy: the caller binds the body it has).
struct StoredBody {
    std::string bytes;                 ///< the LZ4 block; empty when size is not set
    std::optional<std::int64_t> size;  ///< the body's size before compression
};

/// `body` compressed when that saves at least one byte; nothing (no size) otherwise: an empty
/// body, one LZ4 cannot shrink, one larger than LZ4's input limit.
StoredBody pack_body(std::string_view body);

/// The body `bytes` holds: an LZ4 block that decompresses to exactly `size` bytes, or with no
/// `size` the body itself. Throws std::runtime_error when the block is damaged (it does not
/// decompress to `size` bytes, or `size` is not one a block of that length can give).
std::string unpack_body(std::string_view bytes, std::optional<std::int64_t> size);

}  // namespace hookrelay::store::sqlite
