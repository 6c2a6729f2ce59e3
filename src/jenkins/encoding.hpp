// Text encodings the Jenkins client needs: URL path segments, form bodies, Basic credentials,
// and the strict parser for the configured base URL. Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hookrelay::jenkins {

/// branch-api's NameEncoder.encode: # % / ? [ ] \ → %23 %25 %2F %3F %5B %5D %5C, "" → %00,
/// "." → %2E, ".." → %2E. (everything else unchanged).
std::string name_encode(std::string_view name);

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

}  // namespace hookrelay::jenkins
