#include "store/sqlite/stored_body.hpp"

#include <lz4.h>

#include <limits>
#include <memory>
#include <stdexcept>

namespace hookrelay::store::sqlite {

namespace {

// LZ4's largest ratio is 255 to 1 (its format adds at most 255 bytes of match per byte of block);
// a recorded size beyond that, plus a few bytes of slack, is damage.
constexpr std::int64_t k_max_ratio = 255;

}  // namespace

StoredBody pack_body(std::string_view body) {
    StoredBody out;
    if (body.size() < 2 || body.size() > static_cast<std::size_t>(LZ4_MAX_INPUT_SIZE)) return out;
    const int size = static_cast<int>(body.size());
    // Room for one byte less than the body: a block that would not be smaller is not kept. Not
    // zeroed: only the pages LZ4 writes to are touched.
    const auto scratch = std::make_unique_for_overwrite<char[]>(body.size() - 1);
    const int packed = LZ4_compress_default(body.data(), scratch.get(), size, size - 1);
    if (packed <= 0) return out;
    out.bytes.assign(scratch.get(), static_cast<std::size_t>(packed));
    out.size = size;
    return out;
}

StoredReasons pack_reasons(std::string json) {
    StoredReasons out;
    if (json.size() >= k_pack_reasons_from) {
        auto packed = pack_body(json);
        if (packed.size) {
            out.bytes = std::move(packed.bytes);
            out.size = packed.size;
            return out;
        }
    }
    out.bytes = std::move(json);
    return out;
}

std::string unpack_body(std::string_view bytes, std::optional<std::int64_t> size,
                        std::string_view what) {
    if (!size) return std::string(bytes);
    const auto block = static_cast<std::int64_t>(bytes.size());
    const auto damaged = [&](const char* how) {
        return std::runtime_error("the stored " + std::string(what) + " is damaged: its " +
                                  std::to_string(block) + " compressed bytes " + how +
                                  " decompress to the " + std::to_string(*size) +
                                  " bytes recorded");
    };
    if (*size <= 0 || *size > LZ4_MAX_INPUT_SIZE || block >= *size ||
        *size > k_max_ratio * block + 16) {
        throw damaged("cannot");
    }
    std::string body(static_cast<std::size_t>(*size), '\0');
    const int got = LZ4_decompress_safe(bytes.data(), body.data(), static_cast<int>(block),
                                        static_cast<int>(body.size()));
    if (got != static_cast<int>(body.size())) throw damaged("do not");
    return body;
}

}  // namespace hookrelay::store::sqlite
