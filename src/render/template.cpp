#include "render/template.hpp"

#include "render/field_names.hpp"
#include "util/suggest.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <optional>
#include <utility>

namespace hookrelay::render {
namespace {

struct FilterInfo {
    std::string_view name;
    std::size_t min_args;
    std::size_t max_args;
};

constexpr std::array<FilterInfo, 5> k_filters{{
    {"default", 1, 1},
    {"lower", 0, 0},
    {"upper", 0, 0},
    {"replace", 2, 2},
    {"short_sha", 0, 1},
}};

constexpr std::size_t k_short_sha_default = 7;
// A sha256 object name is 64 hex digits; anything longer is a typo, not a request.
constexpr std::size_t k_short_sha_max = 64;

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// Payload keys may contain '-', ':' and the like, so a path is anything up to a character that
// has a meaning inside {{ }}.
bool is_path_char(char c) {
    return !is_space(c) && c != '|' && c != '{' && c != '}' && c != '(' && c != ')' && c != '\'' &&
           c != '"' && c != ',';
}

bool is_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

std::string describe_char(char c) {
    if (c == '\'') return "\"'\"";
    if (std::isprint(static_cast<unsigned char>(c)) != 0) return std::string("'") + c + "'";
    return "a control character";
}

std::string arity(const FilterInfo& f) {
    if (f.min_args == f.max_args) {
        return std::to_string(f.min_args) + (f.min_args == 1 ? " argument" : " arguments");
    }
    return std::to_string(f.min_args) + " or " + std::to_string(f.max_args) + " arguments";
}

class Parser {
  public:
    explicit Parser(std::string_view text) : text_(text) {}

    bool run(std::vector<Template::Part>& parts) {
        std::string literal;
        while (pos_ < text_.size()) {
            if (at("{{")) {
                if (!literal.empty()) parts.push_back({true, std::move(literal), {}});
                literal.clear();
                Template::Part part{false, {}, {}};
                if (!expression(part)) return false;
                parts.push_back(std::move(part));
                continue;
            }
            if (at("}}")) {
                return fail(errc::bad_template, pos_, "stray '}}' with no '{{' before it");
            }
            literal += text_[pos_++];
        }
        if (!literal.empty()) parts.push_back({true, std::move(literal), {}});
        return true;
    }

    errc code = errc::ok;
    std::string why;
    std::size_t offset = 0;

  private:
    bool at(std::string_view token) const { return text_.substr(pos_).starts_with(token); }
    bool done() const { return pos_ >= text_.size(); }
    void skip_space() {
        while (!done() && is_space(text_[pos_])) ++pos_;
    }

    bool fail(errc c, std::size_t at_offset, std::string message) {
        code = c;
        offset = at_offset;
        why = std::move(message);
        return false;
    }

    bool unclosed() { return fail(errc::bad_template, open_, "unclosed '{{' (missing '}}')"); }

    bool expression(Template::Part& part) {
        open_ = pos_;
        pos_ += 2;
        skip_space();
        if (done()) return unclosed();
        if (at("}}")) return fail(errc::bad_template, open_, "empty expression '{{ }}'");
        if (text_[pos_] == '|') {
            return fail(errc::bad_template, pos_, "expected a variable before '|'");
        }
        const std::size_t start = pos_;
        while (!done() && is_path_char(text_[pos_])) ++pos_;
        if (pos_ == start) {
            return fail(errc::bad_template, pos_,
                        "unexpected " + describe_char(text_[pos_]) + ", expected a variable name");
        }
        part.text = std::string(text_.substr(start, pos_ - start));
        if (!is_event_field(part.text)) {
            return fail(errc::unknown_variable, start,
                        "unknown variable '" + part.text + "'" + field_suggestion(part.text));
        }
        for (;;) {
            skip_space();
            if (done()) return unclosed();
            if (at("}}")) {
                pos_ += 2;
                return true;
            }
            if (text_[pos_] != '|') {
                return fail(errc::bad_template, pos_,
                            "unexpected " + describe_char(text_[pos_]) + " after '" + part.text +
                                "', expected '|' or '}}'");
            }
            ++pos_;
            Template::Filter filter;
            if (!parse_filter(filter)) return false;
            part.filters.push_back(std::move(filter));
        }
    }

    bool parse_filter(Template::Filter& filter) {
        skip_space();
        const std::size_t start = pos_;
        while (!done() && is_name_char(text_[pos_])) ++pos_;
        if (pos_ == start) {
            return fail(errc::bad_template, start, "expected a filter name after '|'");
        }
        filter.name = std::string(text_.substr(start, pos_ - start));
        const auto info = std::find_if(k_filters.begin(), k_filters.end(),
                                       [&](const FilterInfo& f) { return f.name == filter.name; });
        if (info == k_filters.end()) {
            std::vector<std::string_view> names;
            for (const auto& f : k_filters) names.push_back(f.name);
            return fail(errc::bad_template, start,
                        "unknown filter '" + filter.name + "'" + did_you_mean(filter.name, names) +
                            "; filters are default, lower, upper, replace, short_sha");
        }
        skip_space();
        std::vector<std::size_t> arg_offsets;
        if (!done() && text_[pos_] == '(') {
            const std::size_t paren = pos_++;
            skip_space();
            if (!done() && text_[pos_] == ')') {
                ++pos_;
            } else {
                for (;;) {
                    skip_space();
                    arg_offsets.push_back(pos_);
                    std::string arg;
                    if (!parse_arg(arg)) return false;
                    filter.args.push_back(std::move(arg));
                    skip_space();
                    if (done()) {
                        return fail(errc::bad_template, paren,
                                    "unclosed '(' after filter '" + filter.name + "'");
                    }
                    if (text_[pos_] == ',') {
                        ++pos_;
                        continue;
                    }
                    if (text_[pos_] == ')') {
                        ++pos_;
                        break;
                    }
                    return fail(errc::bad_template, pos_,
                                "unexpected " + describe_char(text_[pos_]) + " in arguments of '" +
                                    filter.name + "', expected ',' or ')'");
                }
            }
        }
        if (filter.args.size() < info->min_args || filter.args.size() > info->max_args) {
            return fail(errc::bad_template, start,
                        "filter '" + filter.name + "' takes " + arity(*info) + ", got " +
                            std::to_string(filter.args.size()));
        }
        if (filter.name == "short_sha" && !filter.args.empty()) {
            const auto& n = filter.args.front();
            std::size_t length = 0;
            const auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), length);
            if (ec != std::errc{} || ptr != n.data() + n.size() || length == 0 ||
                length > k_short_sha_max) {
                return fail(errc::bad_template, arg_offsets.front(),
                            "short_sha length must be a number from 1 to " +
                                std::to_string(k_short_sha_max) + ", got '" + n + "'");
            }
        }
        return true;
    }

    bool parse_arg(std::string& arg) {
        if (done()) return fail(errc::bad_template, open_, "unclosed '{{' (missing '}}')");
        const char c = text_[pos_];
        if (c == '\'' || c == '"') {
            const std::size_t quote = pos_++;
            while (!done() && text_[pos_] != c) {
                // A backslash escapes the quote or itself so either can appear in an argument.
                if (text_[pos_] == '\\' && pos_ + 1 < text_.size() &&
                    (text_[pos_ + 1] == c || text_[pos_ + 1] == '\\')) {
                    ++pos_;
                }
                arg += text_[pos_++];
            }
            if (done()) return fail(errc::bad_template, quote, "unterminated string argument");
            ++pos_;
            return true;
        }
        if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
            while (!done() && std::isdigit(static_cast<unsigned char>(text_[pos_])) != 0) {
                arg += text_[pos_++];
            }
            return true;
        }
        return fail(errc::bad_template, pos_,
                    "expected a quoted argument ('...' or \"...\"), got " + describe_char(c));
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    std::size_t open_ = 0;
};

std::string to_lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string to_upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
    // Replacing an empty string would loop forever or insert between every byte; neither is
    // what anyone means, so it is a no-op.
    if (from.empty()) return s;
    std::string out;
    std::size_t start = 0;
    for (auto hit = s.find(from); hit != std::string::npos; hit = s.find(from, start)) {
        out.append(s, start, hit - start);
        out += to;
        start = hit + from.size();
    }
    out.append(s, start, std::string::npos);
    return out;
}

// Unset values flow through every filter but `default`, so `{{ tag | upper | default('x') }}`
// and `{{ tag | default('x') | upper }}` both render for events without a tag.
void apply(const Template::Filter& f, std::optional<std::string>& value) {
    if (f.name == "default") {
        if (!value || value->empty()) value = f.args.front();
        return;
    }
    if (!value) return;
    if (f.name == "lower") {
        value = to_lower(std::move(*value));
    } else if (f.name == "upper") {
        value = to_upper(std::move(*value));
    } else if (f.name == "replace") {
        value = replace_all(*value, f.args[0], f.args[1]);
    } else if (f.name == "short_sha") {
        std::size_t n = k_short_sha_default;
        if (!f.args.empty())
            std::from_chars(f.args[0].data(), f.args[0].data() + f.args[0].size(), n);
        if (value->size() > n) value->resize(n);
    }
}

}  // namespace

result<Template> Template::parse(std::string_view text, std::string* why, std::size_t* offset) {
    Parser parser(text);
    Template t;
    t.text_ = std::string(text);
    if (!parser.run(t.parts_)) {
        if (why != nullptr) *why = std::move(parser.why);
        if (offset != nullptr) *offset = parser.offset;
        return make_error_code(parser.code);
    }
    return t;
}

result<std::string> Template::render(const Event& event, std::string* why) const {
    std::string out;
    for (const auto& part : parts_) {
        if (part.literal) {
            out += part.text;
            continue;
        }
        auto value = event_field(event, part.text);
        for (const auto& filter : part.filters) apply(filter, value);
        if (!value) {
            if (why != nullptr) {
                *why = "'" + part.text + "' is not set for " + event_phrase(event);
            }
            return make_error_code(errc::variable_not_set);
        }
        out += *value;
    }
    return out;
}

const std::string& Template::text() const noexcept {
    return text_;
}

bool Template::is_literal() const noexcept {
    return std::all_of(parts_.begin(), parts_.end(), [](const Part& p) { return p.literal; });
}

}  // namespace hookrelay::render
