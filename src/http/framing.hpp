// The parts of HTTP/1.1 request framing and client identification that Beast leaves to the
// application (RFC 9112 §3.2, §6.1, §6.3; RFC 7239). Pure functions over a parsed head; used by
// the server before any body byte is read, and by the fuzzers. Thread-safe.
#pragma once

#include <hookrelay/headers.hpp>

#include <hookrelay/cidr.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::http {

/// Why a request head cannot be served; the connection is closed after the answer.
struct FramingProblem {
    unsigned status = 400;  ///< 400, or 501 for a transfer coding the server does not implement
    std::string reason;     ///< short text for the response body and the log
};

/// Checks what Beast's parser accepts but a server must refuse, so the request boundary is never
/// ambiguous (request smuggling):
/// - HTTP/1.1 without exactly one Host field, or HTTP/1.0 with more than one (400, §3.2);
/// - Transfer-Encoding in an HTTP/1.0 request (400, §6.1);
/// - Transfer-Encoding whose final coding is not `chunked`, or `chunked` more than once (400,
///   §6.3: the length cannot be determined);
/// - any other transfer coding before `chunked` (501: we decode none);
/// - Transfer-Encoding together with Content-Length (400: one of them is a lie).
/// `version` is 10 or 11. nullopt when the head is acceptable.
std::optional<FramingProblem> check_framing(unsigned version, const HeaderMap& headers);

/// Which header a trusted proxy uses to say whom it is forwarding for.
enum class ForwardedHeader { x_forwarded_for, forwarded };

/// The client a request comes from. When `peer` (the direct TCP peer) is not in `trusted`, it is
/// the client and the headers are ignored (anyone can write them). When it is, the `which`
/// header (every field of that name, in order) is read from the right: each address a trusted
/// proxy appended is skipped, and the first address that is not a trusted proxy is the client.
/// When the header is missing the peer itself is the answer; when an entry on the way is not an
/// address ("unknown", an obfuscated RFC 7239 identifier, garbage) the client cannot be known and
/// the answer is nullopt, which matches no allowlist.
std::optional<IpAddress> client_address(const IpAddress& peer, const HeaderMap& headers,
                                        const std::vector<Cidr>& trusted, ForwardedHeader which);

}  // namespace hookrelay::http
