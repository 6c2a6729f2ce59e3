// HMAC, SHA-256 and constant-time comparison helpers for webhook verification and body
// identity (OpenSSL libcrypto).
// Pure functions; thread-safe.
#pragma once

#include <hookrelay/secret.hpp>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace hookrelay::ingest {

/// The HMAC digests forges use.
enum class Digest { sha1, sha256, sha512 };

/// Bytes of a `digest` value: 20, 32 or 64.
std::size_t digest_size(Digest digest) noexcept;

/// HMAC(key, data) as raw bytes (digest_size() of them); empty only if OpenSSL fails.
std::string hmac(Digest digest, std::string_view key, std::string_view data);

/// HMAC(key, parts[0] + parts[1] + ...) as raw bytes, without joining the parts in memory (a
/// Standard Webhooks signature covers "<id>.<timestamp>.<body>"); empty only if OpenSSL fails.
std::string hmac(Digest digest, std::string_view key, std::span<const std::string_view> parts);

/// HMAC(key, data) as lowercase hex: what GitHub puts after "sha256=" / "sha1=".
std::string hmac_hex(Digest digest, std::string_view key, std::string_view data);

/// Decodes hex digits (either case) into bytes; nullopt for an odd length or a non-hex digit.
std::optional<std::string> decode_hex(std::string_view hex);

/// Decodes standard base64 (RFC 4648 section 4, '=' padding optional); nullopt for any other
/// character, a misplaced '=' or an impossible length.
std::optional<std::string> decode_base64(std::string_view text);

/// Encodes bytes as standard base64 with '=' padding.
std::string encode_base64(std::string_view bytes);

/// True when HMAC(secret, body) equals `expected` (raw bytes) for at least one non-empty secret.
/// Each comparison is constant-time and every secret is tried, so timing reveals neither which
/// secret matched nor how much of the signature was right. Empty secrets never verify: anyone
/// can compute an HMAC under an empty key.
bool any_hmac_matches(Digest digest, std::span<const Secret> secrets, std::string_view body,
                      std::string_view expected);

/// As above, for HMAC(key, parts joined) under every non-empty key against every one of
/// `expected` (a sender may list several signatures): true when any pair matches. Every pair is
/// compared, each in constant time.
bool any_hmac_matches(Digest digest, std::span<const std::string_view> keys,
                      std::span<const std::string_view> parts,
                      std::span<const std::string> expected);

/// Constant-time equality of two byte strings of public length (digests).
bool equal_constant_time(std::string_view a, std::string_view b) noexcept;

/// True when `token` equals at least one non-empty secret. Compares fixed-size digests of both
/// sides in constant time, so neither the token's length nor a matching prefix shows in timing.
bool any_token_matches(std::span<const Secret> secrets, std::string_view token);

}  // namespace hookrelay::ingest
