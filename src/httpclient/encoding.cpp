#include "httpclient/encoding.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace hookrelay::httpclient {

namespace {

constexpr std::string_view k_hex = "0123456789ABCDEF";

// Plain ASCII tests rather than <cctype>, whose answers depend on the locale.
bool is_ascii_alnum(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool is_unreserved(unsigned char c) {
    return is_ascii_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

void append_escaped(std::string& out, unsigned char c) {
    out += '%';
    out += k_hex[c >> 4];
    out += k_hex[c & 0x0F];
}

std::string form_component(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (c == ' ') {
            out += '+';
        } else if (is_unreserved(c)) {
            out += static_cast<char>(c);
        } else {
            append_escaped(out, c);
        }
    }
    return out;
}

bool is_host_char(unsigned char c) {
    return is_ascii_alnum(c) || c == '-' || c == '.' || c == '_';
}

}  // namespace

std::string percent_encode(std::string_view text) {
    std::string out;
    out.reserve(text.size() * 3 / 2);
    for (unsigned char c : text) {
        if (is_unreserved(c)) {
            out += static_cast<char>(c);
        } else {
            append_escaped(out, c);
        }
    }
    return out;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::string out;
    for (const auto& [name, value] : fields) {
        if (!out.empty()) out += '&';
        out += form_component(name);
        out += '=';
        out += form_component(value);
    }
    return out;
}

std::string base64(std::string_view bytes) {
    static constexpr std::string_view k_alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const auto n = (static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16) |
                       (static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8) |
                       static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 2]));
        out += k_alphabet[(n >> 18) & 63];
        out += k_alphabet[(n >> 12) & 63];
        out += k_alphabet[(n >> 6) & 63];
        out += k_alphabet[n & 63];
    }
    const std::size_t rest = bytes.size() - i;
    if (rest > 0) {
        unsigned n = static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16;
        if (rest == 2) n |= static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8;
        out += k_alphabet[(n >> 18) & 63];
        out += k_alphabet[(n >> 12) & 63];
        out += rest == 2 ? k_alphabet[(n >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::string shown_url(const std::string& url) {
    const auto scheme = url.find("://");
    const auto start = scheme == std::string::npos ? 0 : scheme + 3;
    const auto end = url.find_first_of("/?#", start);
    const auto at = url.rfind('@', end == std::string::npos ? url.size() : end);
    if (at == std::string::npos || at < start) return url;
    return url.substr(0, start) + "***" + url.substr(at);
}

std::optional<BaseUrl> parse_base_url(std::string_view url, std::string& why) {
    BaseUrl base;
    const auto sep = url.find("://");
    if (sep == std::string_view::npos) {
        why = "url must start with http:// or https://";
        return std::nullopt;
    }
    std::string scheme(url.substr(0, sep));
    for (auto& c : scheme) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    if (scheme == "http") {
        base.tls = false;
    } else if (scheme == "https") {
        base.tls = true;
    } else {
        why = "url scheme must be http or https";
        return std::nullopt;
    }
    std::string_view rest = url.substr(sep + 3);
    const auto path_start = rest.find('/');
    std::string_view authority = rest.substr(0, path_start);
    std::string_view path =
        path_start == std::string_view::npos ? std::string_view{} : rest.substr(path_start);
    if (authority.find_first_of("@?#") != std::string_view::npos) {
        why = "url must not contain user info, a query or a fragment";
        return std::nullopt;
    }

    std::string_view port_text;
    std::string_view host;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            why = "url has an unterminated IPv6 literal";
            return std::nullopt;
        }
        host = authority.substr(1, close - 1);
        const auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                why = "url has junk after the IPv6 literal";
                return std::nullopt;
            }
            port_text = after.substr(1);
            if (port_text.empty()) {
                why = "url has an empty port";
                return std::nullopt;
            }
        }
        if (host.empty() ||
            host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos) {
            why = "url has an invalid IPv6 literal";
            return std::nullopt;
        }
    } else {
        const auto colon = authority.find(':');
        host = authority.substr(0, colon);
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            if (port_text.empty()) {
                why = "url has an empty port";
                return std::nullopt;
            }
        }
        if (host.empty()) {
            why = "url has no host";
            return std::nullopt;
        }
        for (unsigned char c : host) {
            if (!is_host_char(c)) {
                why = "url host has an invalid character";
                return std::nullopt;
            }
        }
    }

    base.port = base.tls ? 443 : 80;
    if (!port_text.empty()) {
        unsigned value = 0;
        const auto* first = port_text.data();
        const auto* last = first + port_text.size();
        const auto [ptr, ec] = std::from_chars(first, last, value);
        if (ec != std::errc{} || ptr != last || value == 0 || value > 65535 ||
            port_text.front() == '+') {
            why = "url port must be a number from 1 to 65535";
            return std::nullopt;
        }
        base.port = static_cast<std::uint16_t>(value);
    }

    if (path.empty()) path = "/";
    if (path.back() != '/') {
        why = "url path must end with '/'";
        return std::nullopt;
    }
    for (unsigned char c : path) {
        if (c <= 0x20 || c >= 0x7F || c == '?' || c == '#') {
            why = "url path has a character that must be percent-encoded, or a query or fragment";
            return std::nullopt;
        }
    }

    base.host = std::string(host);
    base.path = std::string(path);
    const bool ipv6 = base.host.find(':') != std::string::npos;
    std::string authority_text = ipv6 ? "[" + base.host + "]" : base.host;
    if (base.port != (base.tls ? 443 : 80)) authority_text += ":" + std::to_string(base.port);
    base.host_header = authority_text;
    base.origin = std::string(base.tls ? "https://" : "http://") + authority_text;
    return base;
}

namespace {

constexpr std::array<std::string_view, 12> k_month_names = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> k_day_names = {"Mon", "Tue", "Wed", "Thu",
                                                         "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> k_long_day_names = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// Each reader consumes what it matched from the front of `text`, or fails leaving it unusable.
bool take(std::string_view& text, std::string_view literal) {
    if (!text.starts_with(literal)) return false;
    text.remove_prefix(literal.size());
    return true;
}

std::optional<int> take_digits(std::string_view& text, std::size_t count) {
    if (text.size() < count) return std::nullopt;
    int value = 0;
    for (std::size_t i = 0; i < count; ++i) {
        if (!is_digit(text[i])) return std::nullopt;
        value = value * 10 + (text[i] - '0');
    }
    text.remove_prefix(count);
    return value;
}

template <std::size_t N>
std::optional<unsigned> take_name(std::string_view& text,
                                  const std::array<std::string_view, N>& names) {
    for (unsigned i = 0; i < N; ++i) {
        if (take(text, names[i])) return i;
    }
    return std::nullopt;
}

// "HH:MM:SS"; a leap second (60) is accepted as RFC 9110's grammar allows it.
std::optional<std::chrono::seconds> take_time_of_day(std::string_view& text) {
    const auto h = take_digits(text, 2);
    if (!h || !take(text, ":")) return std::nullopt;
    const auto m = take_digits(text, 2);
    if (!m || !take(text, ":")) return std::nullopt;
    const auto s = take_digits(text, 2);
    if (!s || *h > 23 || *m > 59 || *s > 60) return std::nullopt;
    return std::chrono::hours(*h) + std::chrono::minutes(*m) + std::chrono::seconds(*s);
}

struct DateParts {
    int year = 0;
    unsigned month = 0;  // 1-12
    unsigned day = 0;
    std::chrono::seconds time{0};
};

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<DateParts> imf_fixdate(std::string_view text) {
    DateParts d;
    if (!take_name(text, k_day_names) || !take(text, ", ")) return std::nullopt;
    const auto day = take_digits(text, 2);
    if (!day || !take(text, " ")) return std::nullopt;
    const auto month = take_name(text, k_month_names);
    if (!month || !take(text, " ")) return std::nullopt;
    const auto year = take_digits(text, 4);
    if (!year || !take(text, " ")) return std::nullopt;
    const auto time = take_time_of_day(text);
    if (!time || !take(text, " GMT") || !text.empty()) return std::nullopt;
    return DateParts{*year, *month + 1, static_cast<unsigned>(*day), *time};
}

// RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT". The two-digit year is the one at most 50 years
// after `current_year` (RFC 9110 §5.6.7).
std::optional<DateParts> rfc850_date(std::string_view text, int current_year) {
    if (!take_name(text, k_long_day_names) || !take(text, ", ")) return std::nullopt;
    const auto day = take_digits(text, 2);
    if (!day || !take(text, "-")) return std::nullopt;
    const auto month = take_name(text, k_month_names);
    if (!month || !take(text, "-")) return std::nullopt;
    const auto yy = take_digits(text, 2);
    if (!yy || !take(text, " ")) return std::nullopt;
    const auto time = take_time_of_day(text);
    if (!time || !take(text, " GMT") || !text.empty()) return std::nullopt;
    int year = current_year - current_year % 100 + *yy;
    if (year > current_year + 50) year -= 100;
    return DateParts{year, *month + 1, static_cast<unsigned>(*day), *time};
}

// asctime: "Sun Nov  6 08:49:37 1994" (the day is two digits or a space and one digit).
std::optional<DateParts> asctime_date(std::string_view text) {
    if (!take_name(text, k_day_names) || !take(text, " ")) return std::nullopt;
    const auto month = take_name(text, k_month_names);
    if (!month || !take(text, " ")) return std::nullopt;
    std::optional<int> day;
    if (take(text, " ")) {
        day = take_digits(text, 1);
    } else {
        day = take_digits(text, 2);
    }
    if (!day || !take(text, " ")) return std::nullopt;
    const auto time = take_time_of_day(text);
    if (!time || !take(text, " ")) return std::nullopt;
    const auto year = take_digits(text, 4);
    if (!year || !text.empty()) return std::nullopt;
    return DateParts{*year, *month + 1, static_cast<unsigned>(*day), *time};
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
    using namespace std::chrono;
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (value.empty()) return std::nullopt;

    if (std::all_of(value.begin(), value.end(), is_digit)) {
        // delta-seconds: any number of digits; past the cap the exact value does not matter.
        const auto cap = duration_cast<seconds>(k_max_retry_after).count();
        std::int64_t delta = 0;
        for (char c : value) {
            delta = std::min<std::int64_t>(cap, delta * 10 + (c - '0'));
        }
        return duration_cast<milliseconds>(seconds(delta));
    }

    const auto today = year_month_day(floor<days>(now));
    auto parts = imf_fixdate(value);
    if (!parts) parts = rfc850_date(value, static_cast<int>(today.year()));
    if (!parts) parts = asctime_date(value);
    if (!parts) return std::nullopt;
    const year_month_day date{year(parts->year), month(parts->month), day(parts->day)};
    if (!date.ok()) return std::nullopt;
    const auto at = sys_days(date) + parts->time;
    if (at <= now) return milliseconds(0);
    return std::min(duration_cast<milliseconds>(at - now), k_max_retry_after);
}

std::optional<int> status_line_code(std::string_view head) {
    // "HTTP/" DIGIT "." DIGIT SP 3DIGIT, then SP (a reason follows) or the end of the line.
    if (!take(head, "HTTP/") || head.size() < 7 || !is_digit(head[0]) || head[1] != '.' ||
        !is_digit(head[2]) || head[3] != ' ') {
        return std::nullopt;
    }
    head.remove_prefix(4);
    const auto code = take_digits(head, 3);
    if (!code || *code < 100) return std::nullopt;
    if (!head.empty() && head.front() != ' ' && head.front() != '\r' && head.front() != '\n') {
        return std::nullopt;
    }
    return code;
}

}  // namespace hookrelay::httpclient
