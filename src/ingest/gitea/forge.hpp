// Gitea in the forge table; Forgejo (ingest/forgejo/) shares its payloads and verification.
#pragma once

#include "ingest/forge.hpp"

#include <span>
#include <string>
#include <string_view>

namespace hookrelay::ingest::gitea {

/// X-Gitea-Event / X-Gitea-Delivery; X-Gitea-Signature "<hex HMAC-SHA256>" (no prefix) under
/// any `secret`, and/or the Authorization header equal to an `authorization` value; JSON or
/// form bodies.
const Forge& forge() noexcept;

/// Gitea's verification with its signature read from the first of `signature_headers` that
/// carries one. The HMAC covers the JSON payload: the body of a JSON delivery, the decoded
/// `payload` field of a form delivery (unlike GitHub, which signs the form bytes). With both a
/// secret and an authorization value configured, both must verify.
result<void> verify(const Request& request, std::span<const std::string_view> signature_headers);

/// The credential headers a Gitea-like source checks (Forge::credentials), its signature read
/// from `signature_headers`.
std::string credentials(const Request& request,
                        std::span<const std::string_view> signature_headers);

/// The actions Gitea's (and Forgejo's) events carry.
Actions actions() noexcept;

}  // namespace hookrelay::ingest::gitea
