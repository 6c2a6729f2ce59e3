// How the SQLite store keeps a delivery's body: compressed with LZ4 (its block format) when that
// makes it smaller, as received otherwise. The column body_lz4_size (schema version 10) holds the
// size before compression, and is NULL for a body stored as received (every body stored before
// version 10, and those LZ4 does not shrink). The rule reasons likewise, from schema version 11
// (rule_reasons_lz4_size).
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
/// decompress to `size` bytes, or `size` is not one a block of that length can give); `what`
/// names what it holds in that error ("the stored body is damaged: …").
std::string unpack_body(std::string_view bytes, std::optional<std::int64_t> size,
                        std::string_view what = "body");

/// A delivery's rule reasons (their JSON, store/codec.hpp) as the deliveries table stores them
/// (schema version 11): packed as a body is once they reach k_pack_reasons_from bytes, which
/// with hundreds of rules is most of a delivery's row (~86 bytes a rule, an 8th of that packed);
/// shorter ones as text, readable in the sqlite3 shell. `bytes` always holds what to bind.
struct StoredReasons {
    std::string bytes;
    std::optional<std::int64_t> size;  ///< set: `bytes` is an LZ4 block of this many bytes
};
inline constexpr std::size_t k_pack_reasons_from = 1024;
StoredReasons pack_reasons(std::string json);

}  // namespace hookrelay::store::sqlite
