// Signature and credential checks shared by the forges: header lookup with the forges' blank
// values, prefixed hex HMACs (GitHub, Gitea, Bitbucket, generic), plain tokens (GitLab's secret
// token, Authorization headers), Standard Webhooks signatures (GitLab signing tokens) and signed
// timestamps. Pure functions; thread-safe; every comparison is constant-time.
#pragma once

#include <hookrelay/error.hpp>
#include <hookrelay/headers.hpp>
#include <hookrelay/secret.hpp>

#include "ingest/hmac.hpp"

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace hookrelay::ingest {

/// `s` without leading and trailing blanks (space, tab).
std::string_view trim(std::string_view s) noexcept;

/// The trimmed value of the first header of `names` that carries something: present, not
/// blank, and not just `bare_prefix` (Gitea sends "X-Hub-Signature-256: sha256=" when no secret
/// is set). nullopt when none does: the delivery is unsigned, not signed wrongly.
std::optional<std::string_view> credential_header(const HeaderMap& headers,
                                                  std::span<const std::string_view> names,
                                                  std::string_view bare_prefix = {});

/// Checks `value` = `prefix` (ASCII case-insensitive) + hex (either case) of
/// HMAC(secret, parts joined) for any secret in `secrets`.
/// Errors: signature_malformed (no prefix, wrong length, not hex), signature_mismatch.
result<void> check_hex_hmac(std::string_view value, std::string_view prefix, Digest digest,
                            std::span<const Secret> secrets,
                            std::span<const std::string_view> parts);

/// Checks the header `name` against the plain tokens in `tokens` (GitLab's X-Gitlab-Token, an
/// Authorization header). Errors: signature_missing (absent or blank), signature_mismatch.
result<void> check_token(const HeaderMap& headers, std::string_view name,
                         std::span<const Secret> tokens);

/// The names of `names` that are not empty, joined with `separator` (" and ", " or "): the
/// credential headers a source checks, for Forge::credentials.
std::string joined_names(std::initializer_list<std::string_view> names, std::string_view separator);

/// Parses a signed timestamp: whole Unix seconds, digits only. nullopt otherwise.
std::optional<std::int64_t> parse_unix_seconds(std::string_view text) noexcept;

/// Whether `signed_at` (Unix seconds) lies within `window` of `now`, either way.
/// Errors: timestamp_out_of_window.
result<void> check_window(std::int64_t signed_at, std::chrono::milliseconds window,
                          std::chrono::system_clock::time_point now);

/// The HMAC key of a Standard Webhooks signing token: the base64 after "whsec_" (the prefix is
/// optional). nullopt when the rest is not base64 or decodes to nothing.
std::optional<std::string> signing_key(std::string_view token);

/// Verifies a Standard Webhooks delivery (GitLab signing tokens): `webhook-signature` holds one
/// or more space-separated "v1,<base64 HMAC-SHA256>" over "<webhook-id>.<webhook-timestamp>.
/// <body>" under any of `signing_tokens`' keys (entries of other versions are skipped), and
/// `webhook-timestamp` lies within `window` of `now`. The signature is checked first, so a
/// forged delivery is told it does not match, and only a genuine one that is stale is told so.
/// Errors: signature_missing (no webhook-signature), signature_malformed (no v1 entry, bad
/// base64, no webhook-id), timestamp_malformed, signature_mismatch, timestamp_out_of_window.
result<void> check_standard_webhook(const HeaderMap& headers, std::string_view body,
                                    std::span<const Secret> signing_tokens,
                                    std::chrono::milliseconds window,
                                    std::chrono::system_clock::time_point now);

}  // namespace hookrelay::ingest
