// GitHub (github.com and GitHub Enterprise Server) in the forge table.
#pragma once

#include "ingest/forge.hpp"

namespace hookrelay::ingest::github {

/// X-GitHub-Event / X-GitHub-Delivery; X-Hub-Signature-256 "sha256=<hex HMAC-SHA256 of the raw
/// body>" under any `secret`, or the legacy X-Hub-Signature "sha1=<hex>" only with allow_sha1
/// and no SHA-256 header; JSON or form (`payload=`) bodies, signed as sent.
const Forge& forge() noexcept;

}  // namespace hookrelay::ingest::github
