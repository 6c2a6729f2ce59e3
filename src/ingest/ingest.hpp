// Ingest: turn one HTTP delivery (headers + raw body) for a configured source into a normalized
// Event. Pure functions; no I/O, no HTTP library. Thread-safe.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/error.hpp>
#include <hookrelay/event.hpp>
#include <hookrelay/headers.hpp>
#include <hookrelay/secret.hpp>

#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

namespace hookrelay::ingest {

/// Checks authenticity over the exact raw body, in constant time, before anything is parsed.
/// GitHub: X-Hub-Signature-256 "sha256=<hex>" = HMAC-SHA256(secret, body) for any secret in
/// `source.secrets`; X-Hub-Signature "sha1=<hex>" only when source.allow_sha1 (and no sha256
/// header is present). GitLab: X-Gitlab-Token equals any configured token.
/// A source with no secrets and insecure = true verifies everything.
/// Errors: errc::signature_missing, errc::signature_malformed, errc::signature_mismatch.
result<void> verify(const SourceConfig& source, const HeaderMap& headers, std::string_view body);

/// Default for `memory_limit` of parse_body() (config: server.parse_memory_limit).
inline constexpr std::size_t k_default_parse_memory_limit = 128u * 1024 * 1024;

/// Parses the body by Content-Type: application/json (any charset parameter), or
/// application/x-www-form-urlencoded with a `payload=` field holding JSON (GitHub). The result is
/// always a JSON object, nested at most 64 levels deep.
///
/// Memory: the parse uses at most `memory_limit` bytes of heap in all: the parsed value, the
/// parser's temporary stack and, for a form body, the decoded JSON text. The value lives in an
/// arena of its own that is freed at once when the value (and every copy sharing its storage)
/// is gone. The body itself is not copied or counted.
/// Errors: errc::unsupported_media_type, errc::malformed_json, errc::malformed_form,
/// errc::payload_too_large when the limit would be passed (nothing of the parse is kept then).
result<boost::json::value> parse_body(std::string_view content_type, std::string_view body,
                                      std::size_t memory_limit = k_default_parse_memory_limit);

/// The forge's delivery id: GitHub X-GitHub-Delivery; GitLab Idempotency-Key, else
/// X-Gitlab-Event-UUID. Empty when absent.
std::string delivery_id(Provider provider, const HeaderMap& headers);

/// Whether request header `name` (any case) is kept with a delivery of `provider`: the
/// forge's event, delivery and hook headers, the content headers, User-Agent and the proxy
/// headers that say where it came from. An allowlist: credentials (signatures, tokens,
/// Authorization, Proxy-Authorization, cookies, API keys) and anything unknown are not kept.
bool recorded_header(Provider provider, std::string_view name) noexcept;

/// Default window for deduplicating deliveries without a delivery id by their body.
inline constexpr std::chrono::milliseconds k_default_idless_duplicate_window =
    std::chrono::hours(1);

/// How long an earlier delivery with the same body makes this one a duplicate (0: never), for
/// a delivery with or without a forge delivery id: source.duplicate_body_window when set, else
/// 0 with an id and k_default_idless_duplicate_window without (the body is all that tells a
/// retry from a new event then).
std::chrono::milliseconds duplicate_body_window(const SourceConfig& source, bool has_delivery_id);

/// Builds the normalized Event from headers and a parsed payload. Sets source, provider,
/// delivery_id, kind, forge_event and every fact the payload carries (see event.hpp).
/// Errors: errc::missing_event_header when the forge's event header is absent;
/// errc::missing_field when a push/tag/PR/MR payload lacks what its kind needs
/// (e.g. no `ref`, no repository); errc::ref_mismatch when a GitLab tag push's ref is not under
/// refs/tags/ or a push's not under refs/heads/ (a GitHub push to any other ref is kind other).
/// A push changing more than 10,000 distinct files keeps the first 10,000 in changed_files and
/// has changed_files_complete = false.
result<Event> normalize(const SourceConfig& source, const HeaderMap& headers,
                        std::shared_ptr<const boost::json::value> payload);

}  // namespace hookrelay::ingest
