// Forgejo in the forge table: Gitea's payloads, Forgejo's headers.
#pragma once

#include "ingest/forge.hpp"

namespace hookrelay::ingest::forgejo {

/// X-Forgejo-Event / X-Forgejo-Delivery (else the X-Gitea-* ones Forgejo also sends);
/// X-Forgejo-Signature (else X-Gitea-Signature) as Gitea's; the Authorization header; JSON or
/// form bodies.
const Forge& forge() noexcept;

}  // namespace hookrelay::ingest::forgejo
