// Bitbucket Cloud (bitbucket.org) in the forge table.
#pragma once

#include "ingest/forge.hpp"

namespace hookrelay::ingest::bitbucket_cloud {

/// X-Event-Key / X-Request-UUID; X-Hub-Signature "sha256=<hex HMAC-SHA256 of the raw body>"
/// under any `secret` (sent only for hooks with a secret); JSON only. A repo:push becomes one
/// event per entry of push.changes[].
const Forge& forge() noexcept;

}  // namespace hookrelay::ingest::bitbucket_cloud
