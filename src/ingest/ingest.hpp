// Ingest: turn one HTTP delivery (headers + raw body) for a configured source into normalized
// events. Pure functions; no I/O, no HTTP library. Thread-safe. What differs between forges is
// in the forge table (ingest/forge.hpp); these functions are the same for all of them.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/error.hpp>
#include <hookrelay/event.hpp>
#include <hookrelay/headers.hpp>
#include <hookrelay/json_document.hpp>
#include <hookrelay/secret.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace hookrelay::ingest {

/// Whether the source has anything to verify a delivery with: a secret or token, a signing token
/// or an Authorization value.
bool has_credentials(const SourceConfig& source) noexcept;

/// Checks authenticity over the exact raw body, in constant time, before anything is parsed,
/// the way the source's forge signs (see each forge's forge.hpp): GitHub X-Hub-Signature-256;
/// GitLab X-Gitlab-Token and/or a Standard Webhooks webhook-signature with its timestamp within
/// source.timestamp_window of `now`; Gitea/Forgejo X-Gitea-Signature / X-Forgejo-Signature and
/// an Authorization header; Bitbucket X-Hub-Signature "sha256="; generic as configured.
/// A source with no credentials configured and insecure = true verifies everything.
/// Errors: errc::signature_missing, signature_mismatch, signature_malformed,
/// timestamp_malformed, timestamp_out_of_window.
result<void> verify(const SourceConfig& source, const HeaderMap& headers, std::string_view body,
                    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

/// For a delivery verify() refused with errc::signature_missing: the headers the source checks
/// and what the request sent that it does not take (see Forge::credentials). Names, never values.
std::string expected_credentials(const SourceConfig& source, const HeaderMap& headers);

/// The event as the headers name it: the header a generic source's `event:` names, else the first
/// of the forge's event headers that is present and not blank; "" when none is.
std::string_view event_name(const SourceConfig& source, const HeaderMap& headers);

/// Default for `memory_limit` of parse_body() (config: server.parse_memory_limit).
inline constexpr std::size_t k_default_parse_memory_limit = 128u * 1024 * 1024;

/// Parses the body by Content-Type: application/json (any charset parameter), or
/// application/x-www-form-urlencoded with a `payload=` field holding JSON (GitHub, Gitea,
/// Forgejo). The result is always a JSON object, nested at most 64 levels deep.
///
/// Memory: the parse uses at most `memory_limit` bytes of heap in all: the document (a copy of
/// the JSON text, strings that held escapes unescaped, 16 bytes per value, key and container;
/// see json_document.hpp) and, for a form body, the decoded JSON text while it is parsed. The
/// body itself is not counted.
/// Errors: errc::unsupported_media_type, errc::malformed_json, errc::malformed_form,
/// errc::payload_too_large when the limit would be passed (nothing of the parse is kept then).
result<std::shared_ptr<const JsonDocument>> parse_body(
    std::string_view content_type, std::string_view body,
    std::size_t memory_limit = k_default_parse_memory_limit);

/// What kind of body a source of `provider` accepts with `content_type`: "json", "form" (only
/// forges that send form bodies), or "" when it does not accept it.
std::string_view media_kind(Provider provider, std::string_view content_type) noexcept;

/// The delivery id as the headers give it: the header a generic source's `delivery_id:` names,
/// else the first of the forge's delivery headers that is present (GitHub X-GitHub-Delivery;
/// GitLab webhook-id, Idempotency-Key, X-Gitlab-Event-UUID; Gitea X-Gitea-Delivery; Forgejo
/// X-Forgejo-Delivery; Bitbucket Cloud X-Request-UUID; Bitbucket Data Center X-Request-Id).
/// Empty when absent, or when it comes from a payload field (normalize() sets it then).
std::string delivery_id(const SourceConfig& source, const HeaderMap& headers);
/// Whether the source's deliveries carry an id at all: its forge sends one in a header, or a
/// generic source names one (`delivery_id:`, a header or a payload field).
bool carries_delivery_ids(const SourceConfig& source);

/// Whether request header `name` (any case) is kept with a delivery of `provider`: the
/// forge's event, delivery and hook headers, the content headers, User-Agent and the proxy
/// headers that say where it came from. An allowlist: credentials (signatures, tokens,
/// Authorization, Proxy-Authorization, cookies, API keys) and anything unknown are not kept.
bool recorded_header(Provider provider, std::string_view name) noexcept;

/// As above for a configured source: a generic source also keeps the event, delivery id and
/// timestamp headers its config names (never its signature header).
bool recorded_header(const SourceConfig& source, std::string_view name) noexcept;

/// Default window for deduplicating deliveries without a delivery id by their body.
inline constexpr std::chrono::milliseconds k_default_idless_duplicate_window =
    std::chrono::hours(1);

/// How long an earlier delivery with the same body makes this one a duplicate (0: never), for
/// a delivery with or without a forge delivery id: source.duplicate_body_window when set, else
/// 0 with an id and k_default_idless_duplicate_window without (the body is all that tells a
/// retry from a new event then).
std::chrono::milliseconds duplicate_body_window(const SourceConfig& source, bool has_delivery_id);

/// Builds the normalized events of one delivery from headers and a parsed payload: one for
/// most deliveries, one per ref change for a Bitbucket push (at most
/// k_max_events_per_delivery), each with source, provider, delivery_id, forge_event, the same
/// payload, and every fact the payload carries (see event.hpp and the forge's normalizer).
/// Errors: errc::missing_event_header when the forge's event header (or a generic source's
/// configured one) is absent; errc::missing_field when a payload lacks what its kind needs
/// (e.g. no `ref`, no repository; a generic source's configured event field);
/// errc::ref_mismatch when a GitLab tag push's ref is not under refs/tags/ or a push's not under
/// refs/heads/; errc::too_many_events. A push changing more than 10,000 distinct files keeps the
/// first 10,000 in changed_files and has changed_files_complete = false.
result<std::vector<Event>> normalize(const SourceConfig& source, const HeaderMap& headers,
                                     std::shared_ptr<const JsonDocument> payload);

}  // namespace hookrelay::ingest
