#include <hookrelay/json_writer.hpp>

#include <charconv>
#include <cstring>

namespace hookrelay {
namespace {

// Whether any of the 8 bytes in `word` is a control character, '"' or '\\' (what a JSON string
// escapes), tested all at once: a byte below 0x20, or one equal to 0x22 or 0x5c, is one whose
// high bit the subtraction sets while the byte's own is clear.
bool escapes_any(std::uint64_t word) noexcept {
    constexpr std::uint64_t k_ones = 0x0101010101010101ULL;
    constexpr std::uint64_t k_highs = 0x8080808080808080ULL;
    const auto below = [](std::uint64_t w, std::uint64_t n) { return (w - n * k_ones) & ~w; };
    return ((below(word, 0x20) | below(word ^ (0x22 * k_ones), 1) |
             below(word ^ (0x5c * k_ones), 1)) &
            k_highs) != 0;
}

template <typename Integer>
void append_integer(std::string& out, Integer n) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    out.append(digits, end);
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
    static constexpr char k_digits[] = "0123456789abcdef";
    out += '"';
    std::size_t plain = 0;  // the start of the run not yet appended
    for (std::size_t i = 0; i < text.size(); ++i) {
        // Eight bytes at a time while none needs escaping: most text has none.
        while (i + 8 <= text.size()) {
            std::uint64_t word = 0;
            std::memcpy(&word, text.data() + i, sizeof word);
            if (escapes_any(word)) break;
            i += 8;
        }
        if (i >= text.size()) break;
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(text.data() + plain, i - plain);
        plain = i + 1;
        out += '\\';
        switch (c) {
            case '"':
            case '\\':
                out += static_cast<char>(c);
                break;
            case '\b':
                out += 'b';
                break;
            case '\f':
                out += 'f';
                break;
            case '\n':
                out += 'n';
                break;
            case '\r':
                out += 'r';
                break;
            case '\t':
                out += 't';
                break;
            default:
                out += "u00";
                out += k_digits[c >> 4];
                out += k_digits[c & 0x0f];
        }
    }
    out.append(text.data() + plain, text.size() - plain);
    out += '"';
}

void JsonWriter::separate() {
    if (comma_) out_ += ',';
}

JsonWriter& JsonWriter::begin_object() {
    separate();
    out_ += '{';
    comma_ = false;
    return *this;
}

JsonWriter& JsonWriter::end_object() {
    out_ += '}';
    comma_ = true;
    return *this;
}

JsonWriter& JsonWriter::begin_array() {
    separate();
    out_ += '[';
    comma_ = false;
    return *this;
}

JsonWriter& JsonWriter::end_array() {
    out_ += ']';
    comma_ = true;
    return *this;
}

JsonWriter& JsonWriter::key(std::string_view name) {
    separate();
    append_json_string(out_, name);
    out_ += ':';
    comma_ = false;
    return *this;
}

JsonWriter& JsonWriter::value(std::string_view text) {
    separate();
    append_json_string(out_, text);
    comma_ = true;
    return *this;
}

JsonWriter& JsonWriter::value(bool b) {
    separate();
    out_ += b ? "true" : "false";
    comma_ = true;
    return *this;
}

JsonWriter& JsonWriter::value(std::uint64_t n) {
    separate();
    append_integer(out_, n);
    comma_ = true;
    return *this;
}

JsonWriter& JsonWriter::value(std::int64_t n) {
    separate();
    append_integer(out_, n);
    comma_ = true;
    return *this;
}

}  // namespace hookrelay
