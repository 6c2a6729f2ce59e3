#include "store/sqlite/stored_body.hpp"

#include <lz4.h>

#include <limits>
#include <stdexcept>

namespace hookrelay::store::sqlite {

StoredBody pack_body(std::string_view body) {
    StoredBody out;
    if (body.empty() || body.size() > static_cast<std::size_t>(LZ4_MAX_INPUT_SIZE)) {
        out.bytes = body;
        return out;
    }
    const int size = static_cast<int>(body.size());
    // At most one byte less than the body: a block that would not be smaller is not kept.
    out.bytes.resize(body.size() - 1);
    const int packed = LZ4_compress_default(body.data(), out.bytes.data(), size, size - 1);
    if (packed <= 0) {
        out.bytes = body;
        return out;
    }
    out.bytes.resize(static_cast<std::size_t>(packed));
    out.size = size;
    return out;
}

std::string unpack_body(std::string_view bytes, std::optional<std::int64_t> size) {
    if (!size) return std::string(bytes);
    if (*size < 0 || *size > LZ4_MAX_INPUT_SIZE ||
        bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        throw std::runtime_error("the stored body's size (" + std::to_string(*size) +
                                 " bytes) is not one hookrelay stores");
    }
    std::string body(static_cast<std::size_t>(*size), '\0');
    const int got = LZ4_decompress_safe(bytes.data(), body.data(), static_cast<int>(bytes.size()),
                                        static_cast<int>(body.size()));
    if (got != static_cast<int>(body.size())) {
        throw std::runtime_error("the stored body is damaged: its " + std::to_string(bytes.size()) +
                                 " compressed bytes do not decompress to the " +
                                 std::to_string(*size) + " bytes recorded");
    }
    return body;
}

}  // namespace hookrelay::store::sqlite
