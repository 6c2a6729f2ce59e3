// GitLab (gitlab.com and self-managed) in the forge table.
#pragma once

#include "ingest/forge.hpp"

namespace hookrelay::ingest::gitlab {

/// X-Gitlab-Event; delivery id webhook-id, else Idempotency-Key, else X-Gitlab-Event-UUID.
/// Credentials: the plain secret token in X-Gitlab-Token (`token:`), and/or a Standard
/// Webhooks `webhook-signature` under a signing token (`signing_token:`, GitLab 19+) with its
/// `webhook-timestamp` within `timestamp_window`. Every credential the delivery presents and
/// the source is configured for must verify, and at least one must be presented. JSON only.
const Forge& forge() noexcept;

}  // namespace hookrelay::ingest::gitlab
