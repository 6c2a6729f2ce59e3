// HMAC, SHA-256 and constant-time comparison helpers for webhook verification and body
// identity (OpenSSL libcrypto).
// Pure functions; thread-safe.
#pragma once

#include <hookrelay/secret.hpp>

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace hookrelay::ingest {

/// The HMAC digests forges use.
enum class Digest { sha1, sha256 };

/// HMAC(key, data) as raw bytes (20 bytes for sha1, 32 for sha256).
std::string hmac(Digest digest, std::string_view key, std::string_view data);

/// HMAC(key, data) as lowercase hex: what GitHub puts after "sha256=" / "sha1=".
std::string hmac_hex(Digest digest, std::string_view key, std::string_view data);

/// SHA-256(data) as lowercase hex (64 digits); empty only if OpenSSL fails.
std::string sha256_hex(std::string_view data);

/// Decodes hex digits (either case) into bytes; nullopt for an odd length or a non-hex digit.
std::optional<std::string> decode_hex(std::string_view hex);

/// True when HMAC(secret, body) equals `expected` (raw bytes) for at least one non-empty secret.
/// Each comparison is constant-time and every secret is tried, so timing reveals neither which
/// secret matched nor how much of the signature was right. Empty secrets never verify: anyone
/// can compute an HMAC under an empty key.
bool any_hmac_matches(Digest digest, std::span<const Secret> secrets, std::string_view body,
                      std::string_view expected);

/// True when `token` equals at least one non-empty secret. Compares fixed-size digests of both
/// sides in constant time, so neither the token's length nor a matching prefix shows in timing.
bool any_token_matches(std::span<const Secret> secrets, std::string_view token);

}  // namespace hookrelay::ingest
