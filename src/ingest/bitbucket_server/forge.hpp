// Bitbucket Data Center (formerly Server) in the forge table.
#pragma once

#include "ingest/forge.hpp"

namespace hookrelay::ingest::bitbucket_server {

/// X-Event-Key / X-Request-Id; X-Hub-Signature "sha256=<hex HMAC-SHA256 of the raw body>"
/// under any `secret`, and/or the Authorization header equal to an `authorization` value; JSON
/// only. A repo:refs_changed becomes one event per entry of changes[]. An unsigned
/// diagnostics:ping (the "Test connection" button) is answered without verification: it is a
/// ping, which is never recorded and never triggers.
const Forge& forge() noexcept;

}  // namespace hookrelay::ingest::bitbucket_server
