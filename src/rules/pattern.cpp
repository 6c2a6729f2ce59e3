#include "rules/pattern.hpp"

#include <re2/re2.h>

#include <cctype>
#include <vector>

namespace hookrelay::rules {
namespace {

void report(std::string* why, std::size_t* offset, std::string message, std::size_t at) {
    if (why != nullptr) *why = std::move(message);
    if (offset != nullptr) *offset = at;
}

// RE2 treats a backslash before any ASCII punctuation as that literal character; bytes >= 0x80
// (UTF-8) and alphanumerics are literal as they are. Outside a class only RE2's metacharacters
// need escaping, which keeps translated globs readable in debug output.
void append_literal(std::string& out, char c, bool in_class = false) {
    static constexpr std::string_view k_meta = "\\.+*?()|[]{}^$";
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80 || std::isalnum(u) != 0 || c == '_' ||
        (!in_class && std::isprint(u) != 0 && k_meta.find(c) == std::string_view::npos)) {
        out += c;
    } else if (std::iscntrl(u) != 0) {
        static constexpr char k_hex[] = "0123456789abcdef";
        out += "\\x";
        out += k_hex[u >> 4];
        out += k_hex[u & 0xf];
    } else {
        out += '\\';
        out += c;
    }
}

}  // namespace

result<std::string> glob_to_re2(std::string_view glob, std::string* why, std::size_t* offset) {
    std::string out;
    std::vector<std::size_t> open_braces;
    std::size_t i = 0;
    while (i < glob.size()) {
        const char c = glob[i];
        if (c == '*') {
            std::size_t run = i;
            while (run < glob.size() && glob[run] == '*') ++run;
            const bool segment_start = i == 0 || glob[i - 1] == '/';
            if (run - i >= 2 && segment_start && run < glob.size() && glob[run] == '/') {
                out += "(?:.*/)?";
                i = run + 1;
            } else {
                out += run - i >= 2 ? ".*" : "[^/]*";
                i = run;
            }
            continue;
        }
        if (c == '?') {
            out += "[^/]";
            ++i;
            continue;
        }
        if (c == '[') {
            std::size_t j = i + 1;
            const bool negated = j < glob.size() && (glob[j] == '!' || glob[j] == '^');
            if (negated) ++j;
            const std::size_t body = j;
            // A ']' right after the opening bracket is a member, as in shells.
            if (j < glob.size() && glob[j] == ']') ++j;
            while (j < glob.size() && glob[j] != ']') ++j;
            if (j >= glob.size()) {
                report(why, offset, "unclosed '[' (missing ']')", i);
                return make_error_code(errc::bad_glob);
            }
            out += negated ? "[^/" : "[";
            for (std::size_t k = body; k < j; ++k) {
                if (glob[k] == '-' && k != body && k + 1 != j) {
                    out += '-';
                } else {
                    append_literal(out, glob[k], /*in_class=*/true);
                }
            }
            out += ']';
            i = j + 1;
            continue;
        }
        if (c == '{') {
            open_braces.push_back(i);
            out += "(?:";
        } else if (c == ',' && !open_braces.empty()) {
            out += '|';
        } else if (c == '}' && !open_braces.empty()) {
            open_braces.pop_back();
            out += ')';
        } else {
            append_literal(out, c);
        }
        ++i;
    }
    if (!open_braces.empty()) {
        report(why, offset, "unclosed '{' (missing '}')", open_braces.back());
        return make_error_code(errc::bad_glob);
    }
    return out;
}

result<Pattern> Pattern::compile(std::string_view text, std::string* why, std::size_t* offset) {
    Pattern p;
    p.text_ = std::string(text);
    std::size_t skip = 0;
    if (text.starts_with('!')) {
        p.negative_ = true;
        skip = 1;
    }
    auto body = text.substr(skip);
    if (body.empty()) {
        report(why, offset,
               p.negative_ ? "empty pattern after '!'"
                           : "empty pattern (it could never match: unset fields have no value)",
               skip);
        return make_error_code(errc::bad_glob);
    }
    RE2::Options options;
    options.set_log_errors(false);
    std::string regex;
    bool is_regex = false;
    if (body.starts_with("re:")) {
        is_regex = true;
        regex = std::string(body.substr(3));
    } else {
        std::size_t glob_offset = 0;
        auto translated = glob_to_re2(body, why, &glob_offset);
        if (!translated) {
            if (offset != nullptr) *offset = skip + glob_offset;
            return translated.error();
        }
        regex = std::move(*translated);
        // No '*', '?', '[' or '{': glob_to_re2 made every character literal. Otherwise what comes
        // before the first of them is literal, and every match starts with it.
        const auto wildcard = body.find_first_of("*?[{");
        p.literal_ = wildcard == std::string_view::npos;
        if (!p.literal_) p.prefix_size_ = wildcard;
        // `**` becomes ".*", which must also cross newlines in multi-line values (messages).
        options.set_dot_nl(true);
    }
    auto re = std::make_shared<const RE2>(regex, options);
    if (!re->ok()) {
        report(why, offset, re->error(), skip + (is_regex ? 3 : 0));
        return make_error_code(is_regex ? errc::bad_regex : errc::bad_glob);
    }
    p.re_ = std::move(re);
    return p;
}

bool Pattern::matches(std::string_view value) const {
    const auto body = std::string_view(text_).substr(negative_ ? 1 : 0);
    if (literal_) return body == value;
    // Most values a glob is tried on ("team-a/*" against another team's repository) differ
    // before its first wildcard: no need to run RE2 for those.
    if (!value.starts_with(body.substr(0, prefix_size_))) return false;
    return matches_by_regex(value);
}

bool Pattern::matches_by_regex(std::string_view value) const {
    return RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *re_);
}

}  // namespace hookrelay::rules
