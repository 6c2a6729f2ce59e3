// What a client sent, shown where it cannot pass for something else: UTF-8 checked, control
// characters and log-line separators written as \xNN, long values cut.
#include <hookrelay/printable.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace hookrelay {

// Length of the valid UTF-8 sequence at the start of `s` (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when it is not one.
std::size_t utf8_sequence(std::string_view s) {
    if (s.empty()) return 0;
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char b0 = byte(0);
    if (b0 < 0x80) return 1;
    std::size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;  // the allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        if (b0 == 0xE0) lo = 0xA0;  // overlong
        if (b0 == 0xED) hi = 0x9F;  // surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        if (b0 == 0xF0) lo = 0x90;  // overlong
        if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
        return 0;
    }
    if (s.size() < len || byte(1) < lo || byte(1) > hi) return 0;
    for (std::size_t i = 2; i < len; ++i) {
        if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
    }
    return len;
}

namespace {

bool is_utf8_continuation(char c) noexcept {
    return (static_cast<unsigned char>(c) & 0xc0) == 0x80;
}

}  // namespace

std::string echoed(std::string_view value) {
    if (value.size() <= k_max_echoed_bytes) return std::string(value);
    static constexpr std::string_view k_ellipsis = "\u2026";
    auto keep = k_max_echoed_bytes - k_ellipsis.size();
    // Never half a character: the answer is JSON, which must stay valid UTF-8.
    while (keep > 0 && is_utf8_continuation(value[keep])) --keep;
    std::string out(value.substr(0, keep));
    out += k_ellipsis;
    return out;
}

namespace {

// printable() and printable_text(): `lines` keeps line breaks and tabs, `cut` shortens.
std::string escaped(std::string_view text, bool lines, bool cut) {
    std::string out;
    out.reserve(cut ? std::min(text.size(), k_max_echoed_bytes) : text.size());
    while (!text.empty()) {
        const auto c = static_cast<unsigned char>(text[0]);
        std::size_t n = utf8_sequence(text);
        // Valid, but a control character: C0, DEL, or C1 (U+0080..U+009F, 0xC2 0x80..0x9F).
        if ((c < 0x20 && !(lines && (c == '\n' || c == '\t'))) || c == 0x7f ||
            (c == 0xc2 && n == 2 && static_cast<unsigned char>(text[1]) < 0xa0)) {
            n = 0;
        }
        if (n == 0) {
            out += fmt::format("\\x{:02x}", c);
            text.remove_prefix(1);
        } else {
            out.append(text.substr(0, n));
            text.remove_prefix(n);
        }
        if (cut && out.size() >= k_max_echoed_bytes) return echoed(out);
    }
    return out;
}

}  // namespace

std::string printable(std::string_view text) {
    return escaped(text, false, true);
}

std::string printable_text(std::string_view text) {
    return escaped(text, true, false);
}

std::string valid_utf8(std::string_view text, std::string_view prefix) {
    std::string out;
    out.reserve(text.size());
    while (!text.empty()) {
        const std::size_t n = utf8_sequence(text);
        if (n == 0) {
            out += fmt::format("{}{:02x}", prefix, static_cast<unsigned char>(text[0]));
            text.remove_prefix(1);
        } else {
            out.append(text.substr(0, n));
            text.remove_prefix(n);
        }
    }
    return out;
}

std::string printable_word(std::string_view text) {
    std::string out;
    for (const char c : printable(text)) {
        if (c == ' ' || c == '=' || c == ':' || c == ',' || c == ';') {
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        } else {
            out += c;
        }
    }
    return out;
}

namespace {

// Printable ASCII that cannot end a log line's key=value head or start a word of its own.
bool is_log_word(std::string_view value) noexcept {
    return std::all_of(value.begin(), value.end(), [](char c) {
        const auto b = static_cast<unsigned char>(c);
        return b > 0x20 && b < 0x7f && c != '=' && c != ':' && c != ',' && c != ';';
    });
}

}  // namespace

// `value` for a log line's head: itself when it is one word already (no copy on the accept
// path), else printable_word() of it, kept in `scratch`.
std::string_view log_word(const std::string& value, std::string& scratch) {
    if (is_log_word(value)) return value;
    scratch = printable_word(value);
    return scratch;
}

}  // namespace hookrelay
