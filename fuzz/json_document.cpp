// The parsed payload (JsonDocument) against a Boost.JSON DOM of the same text, the form payloads
// had until 2026-12-03: the same texts accepted and refused (nesting limited to 64 both ways), the
// same values read through JsonRef as the DOM holds (the last of duplicate keys), the same text
// written back, and never more memory held than the limit. The last input byte picks the limit.
#include <hookrelay/json_document.hpp>

#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <set>
#include <string_view>

namespace {

using hookrelay::JsonDocument;
using hookrelay::JsonRef;
namespace json = boost::json;

void check(bool ok) {
    if (!ok) std::abort();
}

// `ref` holds what `v` holds.
void compare(JsonRef ref, const json::value& v) {
    check(static_cast<bool>(ref));
    switch (v.kind()) {
        case json::kind::null:
            check(ref.kind() == JsonRef::Kind::null);
            break;
        case json::kind::bool_:
            check(ref.boolean() == v.get_bool());
            break;
        case json::kind::int64:
            check(ref.int64() == v.get_int64());
            break;
        case json::kind::uint64:
            check(ref.uint64() == v.get_uint64());
            break;
        case json::kind::double_: {
            const auto d = ref.double_();
            check(d.has_value());
            // Bit for bit: NaN never comes out of a parse, and -0.0 must stay -0.0.
            check(std::bit_cast<std::uint64_t>(*d) == std::bit_cast<std::uint64_t>(v.get_double()));
            break;
        }
        case json::kind::string: {
            const auto& s = v.get_string();
            check(ref.string() == std::string_view(s.data(), s.size()));
            break;
        }
        case json::kind::array: {
            const auto& a = v.get_array();
            check(ref.is_array() && ref.size() == a.size());
            std::size_t i = 0;
            JsonRef last;
            for (const JsonRef e : ref.elements()) {
                compare(e, a.at(i++));
                last = e;
            }
            check(i == a.size());
            // element() finds what iterating found (not compared again: nested arrays would
            // make that exponential).
            if (!a.empty()) check(ref.element(a.size() - 1).serialize() == last.serialize());
            check(!ref.element(a.size()));
            break;
        }
        case json::kind::object: {
            const auto& o = v.get_object();
            check(ref.is_object());
            std::set<std::string_view> keys;
            std::size_t members = 0;
            for (const auto member : ref.members()) {
                keys.insert(member.key);
                ++members;
            }
            check(members == ref.size());
            check(keys.size() == o.size());  // the DOM keeps one member per key
            for (const auto& [key, value] : o) compare(ref.member(key), value);
            break;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view text(reinterpret_cast<const char*>(data), size - 1);
    const std::size_t limit =
        text.size() * (data[size - 1] % 24) + (data[size - 1] & 0x80 ? 64 : 0);

    json::parse_options options;
    options.max_depth = JsonDocument::k_max_depth;
    json::parser parser(json::storage_ptr(), options);
    json::error_code ec;
    parser.write(text.data(), text.size(), ec);
    const bool dom_ok = !ec;

    auto error = JsonDocument::Error::malformed;
    const auto doc = JsonDocument::parse(text, std::numeric_limits<std::size_t>::max(), error);
    check(static_cast<bool>(doc) == dom_ok);
    if (doc) {
        const auto v = parser.release();
        compare(doc->root(), v);
        check(doc->root().serialize() == json::serialize(v));
    } else {
        check(error == JsonDocument::Error::malformed);
    }

    auto limited_error = JsonDocument::Error::malformed;
    const auto limited = JsonDocument::parse(text, limit, limited_error);
    if (limited) {
        check(doc != nullptr && limited->memory() <= limit);
        check(limited->root().serialize() == doc->root().serialize());
    } else if (limited_error == JsonDocument::Error::malformed) {
        check(doc == nullptr);
    }
    return 0;
}
