#include "jenkins/encoding.hpp"

#include "jenkins/client.hpp"

#include <array>
#include <charconv>

namespace hookrelay::jenkins {

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

std::string name_encode(std::string_view name) {
    if (name.empty()) return "%00";
    if (name == ".") return "%2E";
    if (name == "..") return "%2E.";
    std::string out;
    out.reserve(name.size() + 8);
    for (char c : name) {
        switch (c) {
            case '#':
                out += "%23";
                break;
            case '%':
                out += "%25";
                break;
            case '/':
                out += "%2F";
                break;
            case '?':
                out += "%3F";
                break;
            case '[':
                out += "%5B";
                break;
            case ']':
                out += "%5D";
                break;
            case '\\':
                out += "%5C";
                break;
            default:
                out += c;
                break;
        }
    }
    return out;
}

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

std::string job_path(const std::vector<std::string>& job) {
    std::string out;
    for (const auto& segment : job) {
        out += "job/";
        out += percent_encode(name_encode(segment));
        out += '/';
    }
    return out;
}

JenkinsOutcome::Kind classify(int http_status) noexcept {
    using Kind = JenkinsOutcome::Kind;
    const int s = http_status;
    if (s == 201) return Kind::queued;
    if (s == 303) return Kind::merged;
    if (s == 302) return Kind::refused;
    if (s == 500) return Kind::server_error;
    if (s == 502 || s == 503 || s == 504) return Kind::unavailable;
    if (s == 0 || (s >= 100 && s < 200)) return Kind::unavailable;
    if (s >= 200 && s < 500) return Kind::permanent;
    if (s == 501 || s == 505) return Kind::permanent;
    if ((s >= 520 && s <= 524) || s == 598 || s == 599) return Kind::unavailable;
    if (s >= 500 && s < 600) return Kind::server_error;
    return Kind::permanent;
}

}  // namespace hookrelay::jenkins

namespace hookrelay {

std::string_view to_string(JenkinsOutcome::Kind kind) noexcept {
    switch (kind) {
        case JenkinsOutcome::Kind::queued:
            return "queued";
        case JenkinsOutcome::Kind::merged:
            return "merged";
        case JenkinsOutcome::Kind::refused:
            return "refused";
        case JenkinsOutcome::Kind::permanent:
            return "permanent";
        case JenkinsOutcome::Kind::server_error:
            return "server_error";
        case JenkinsOutcome::Kind::unavailable:
            return "unavailable";
    }
    return "unavailable";
}

}  // namespace hookrelay
