#include "http/framing.hpp"

namespace hookrelay::http {

namespace {

std::string_view trim(std::string_view s) noexcept {
    const auto space = [](char c) { return c == ' ' || c == '\t'; };
    while (!s.empty() && space(s.front())) s.remove_prefix(1);
    while (!s.empty() && space(s.back())) s.remove_suffix(1);
    return s;
}

// Every comma-separated element of every field named `name`, in order, trimmed; empty elements
// (",," is allowed by the list syntax) are dropped.
std::vector<std::string_view> list_elements(const HeaderMap& headers, std::string_view name) {
    std::vector<std::string_view> out;
    for (const auto& [key, value] : headers.fields()) {
        if (!iequals(key, name)) continue;
        std::string_view rest = value;
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            const auto element = trim(rest.substr(0, comma));
            if (!element.empty()) out.push_back(element);
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    return out;
}

std::size_t count_fields(const HeaderMap& headers, std::string_view name) {
    std::size_t n = 0;
    for (const auto& [key, value] : headers.fields()) n += iequals(key, name) ? 1 : 0;
    return n;
}

// A transfer coding's name without its parameters ("gzip;q=1" → "gzip").
std::string_view coding_name(std::string_view element) {
    return trim(element.substr(0, element.find(';')));
}

// One RFC 7239 `for=` value as an address: 192.0.2.1, "[2001:db8::1]:4711", "192.0.2.1:80".
std::optional<IpAddress> forwarded_node(std::string_view value) {
    value = trim(value);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
    }
    if (!value.empty() && value.front() == '[') {
        const auto close = value.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        return parse_ip(value.substr(1, close - 1));
    }
    // IPv4 with an optional port; a bare IPv6 is not valid here (it must be bracketed).
    if (value.find(':') != value.rfind(':')) return std::nullopt;
    return parse_ip(value.substr(0, value.find(':')));
}

// The `for=` parameter of each Forwarded element, left to right (elements without one are
// skipped: they say nothing about the client).
std::vector<std::optional<IpAddress>> forwarded_for(const HeaderMap& headers) {
    std::vector<std::optional<IpAddress>> out;
    for (const auto element : list_elements(headers, "Forwarded")) {
        std::string_view rest = element;
        while (!rest.empty()) {
            const auto semicolon = rest.find(';');
            const auto pair = trim(rest.substr(0, semicolon));
            const auto equals = pair.find('=');
            if (equals != std::string_view::npos && iequals(trim(pair.substr(0, equals)), "for")) {
                out.push_back(forwarded_node(pair.substr(equals + 1)));
            }
            if (semicolon == std::string_view::npos) break;
            rest.remove_prefix(semicolon + 1);
        }
    }
    return out;
}

}  // namespace

std::optional<FramingProblem> check_framing(unsigned version, const HeaderMap& headers) {
    const auto hosts = count_fields(headers, "Host");
    if (version >= 11 && hosts != 1) {
        return FramingProblem{400, hosts == 0 ? "HTTP/1.1 request without a Host header"
                                              : "more than one Host header"};
    }
    if (hosts > 1) return FramingProblem{400, "more than one Host header"};

    if (count_fields(headers, "Transfer-Encoding") == 0) return std::nullopt;
    if (version < 11) {
        return FramingProblem{400, "Transfer-Encoding in an HTTP/1.0 request"};
    }
    if (count_fields(headers, "Content-Length") > 0) {
        return FramingProblem{400, "both Transfer-Encoding and Content-Length"};
    }
    const auto codings = list_elements(headers, "Transfer-Encoding");
    if (codings.empty() || !iequals(coding_name(codings.back()), "chunked")) {
        return FramingProblem{400, "Transfer-Encoding does not end in chunked"};
    }
    for (std::size_t i = 0; i + 1 < codings.size(); ++i) {
        if (iequals(coding_name(codings[i]), "chunked")) {
            return FramingProblem{400, "chunked applied more than once"};
        }
        return FramingProblem{501, "transfer coding '" +
                                       std::string(coding_name(codings[i]).substr(0, 32)) +
                                       "' is not supported"};
    }
    if (codings.back().find(';') != std::string_view::npos) {
        return FramingProblem{400, "parameters on the chunked transfer coding"};
    }
    return std::nullopt;
}

std::optional<IpAddress> client_address(const IpAddress& peer, const HeaderMap& headers,
                                        const std::vector<Cidr>& trusted, ForwardedHeader which) {
    if (!contains_any(trusted, peer)) return peer;
    std::vector<std::optional<IpAddress>> hops;
    if (which == ForwardedHeader::forwarded) {
        hops = forwarded_for(headers);
    } else {
        for (const auto element : list_elements(headers, "X-Forwarded-For")) {
            hops.push_back(parse_ip(element));
        }
    }
    // Right to left: the last entry was written by the proxy we trust; anything to the left of
    // the first untrusted address could have been written by that client itself.
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
        if (!*it) return std::nullopt;
        if (!contains_any(trusted, **it)) return **it;
    }
    // Only trusted proxies (or no header at all): the innermost proxy is the best we know.
    return hops.empty() ? std::optional<IpAddress>(peer) : hops.front();
}

}  // namespace hookrelay::http
