// Ingest: turn one HTTP delivery (headers + raw body) for a configured source into a normalized
// Event. Pure functions; no I/O, no HTTP library. Thread-safe.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/error.hpp>
#include <hookrelay/event.hpp>
#include <hookrelay/headers.hpp>
#include <hookrelay/secret.hpp>

#include <boost/json/value.hpp>

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

/// Parses the body by Content-Type: application/json (any charset parameter), or
/// application/x-www-form-urlencoded with a `payload=` field holding JSON (GitHub). The result is
/// always a JSON object.
/// Errors: errc::unsupported_media_type, errc::malformed_json, errc::malformed_form.
result<boost::json::value> parse_body(std::string_view content_type, std::string_view body);

/// The forge's delivery id: GitHub X-GitHub-Delivery; GitLab Idempotency-Key, else
/// X-Gitlab-Event-UUID. Empty when absent.
std::string delivery_id(Provider provider, const HeaderMap& headers);

/// Builds the normalized Event from headers and a parsed payload. Sets source, provider,
/// delivery_id, kind, forge_event and every fact the payload carries (see event.hpp).
/// Errors: errc::missing_event_header when the forge's event header is absent;
/// errc::missing_field when a push/tag/PR/MR payload lacks what its kind needs
/// (e.g. no `ref`, no repository); errc::ref_mismatch when a GitLab tag push's ref is not under
/// refs/tags/ or a push's not under refs/heads/ (a GitHub push to any other ref is kind other).
result<Event> normalize(const SourceConfig& source, const HeaderMap& headers,
                        std::shared_ptr<const boost::json::value> payload);

}  // namespace hookrelay::ingest
