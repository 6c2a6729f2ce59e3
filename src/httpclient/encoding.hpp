// Text encodings an HTTP client needs: URL components, form bodies, Basic credentials, the strict
// parser for a configured base URL, Retry-After, and the status line of a head too large to
// parse. Pure functions, no I/O; shared by every outbound client (Jenkins, forge status APIs).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hookrelay::httpclient {

/// Percent-encodes every byte except the RFC 3986 unreserved characters A-Za-z0-9-._~.
std::string percent_encode(std::string_view text);

/// application/x-www-form-urlencoded: name=value pairs joined by '&', each side percent-encoded
/// with space as '+'.
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);

/// Standard base64 with padding.
std::string base64(std::string_view bytes);

/// A parsed base URL: http(s)://host[:port]/path/.
struct BaseUrl {
    bool tls = false;
    std::string host;  ///< without brackets for IPv6 literals
    std::uint16_t port = 0;
    std::string path;         ///< begins and ends with '/'
    std::string host_header;  ///< host[:port] as sent in Host (port omitted when default)
    std::string origin;       ///< scheme://host[:port], for resolving relative Locations
};

/// Parses scheme://host[:port][/path/]: scheme http or https (any case), a host name or IPv4
/// literal or [IPv6], an optional decimal port 1-65535, a path that is empty or ends with '/'
/// and holds only printable ASCII other than '?' and '#'. No user info, query or fragment.
/// nullopt with a one-line reason in `why` otherwise.
std::optional<BaseUrl> parse_base_url(std::string_view url, std::string& why);

/// `url` as it may be shown in an error: user info ("user:password@") replaced by "***@".
std::string shown_url(const std::string& url);

/// The delay a Retry-After header value asks for, counted from `now` (RFC 9110 §10.2.3):
/// delta-seconds ("120"), or an HTTP-date in any of the three forms a recipient must accept
/// (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" with
/// its two-digit year read as at most 50 years ahead, asctime "Sun Nov  6 08:49:37 1994"),
/// surrounding spaces and tabs ignored. A date at or before `now` is 0; delays are capped at
/// k_max_retry_after. nullopt for anything else (empty, negative, a date that does not exist,
/// trailing text).
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

/// The longest delay parse_retry_after reports (a year): larger values are capped, not refused.
inline constexpr std::chrono::milliseconds k_max_retry_after = std::chrono::hours(24 * 365);

/// The status code of an HTTP/1.x response head that starts with "HTTP/d.d SSS" followed by a
/// space or the end of the line, for heads too large to parse whole. nullopt otherwise.
std::optional<int> status_line_code(std::string_view head);

}  // namespace hookrelay::httpclient
