#include "ingest/gitlab/forge.hpp"

#include "ingest/gitlab/normalize.hpp"
#include "ingest/signature.hpp"

namespace hookrelay::ingest::gitlab {
namespace {

constexpr std::string_view k_keys[] = {"token", "tokens", "signing_token", "signing_tokens",
                                       "timestamp_window"};
constexpr std::string_view k_event[] = {"X-Gitlab-Event"};
// webhook-id is covered by the signature (when there is one) and equals Idempotency-Key, which
// survives retries and manual resends (GitLab 17.4+); the event UUID is older and shared by
// webhooks an earlier webhook triggered.
constexpr std::string_view k_delivery[] = {"webhook-id", "Idempotency-Key", "X-Gitlab-Event-UUID"};
// GitLab's delivery headers, and the Standard Webhooks id and timestamp (its webhook-signature
// is a credential).
constexpr std::string_view k_recorded[] = {
    "X-Gitlab-Event",  "X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID", "X-Gitlab-Instance",
    "Idempotency-Key", "Webhook-Id",          "Webhook-Timestamp",
};
constexpr std::string_view k_token[] = {"X-Gitlab-Token"};
constexpr std::string_view k_signature[] = {"webhook-signature"};

result<void> verify(const Request& r) {
    // During a migration a hook may carry the token, the signature or both; the source may be
    // configured for either or both. What is presented and configured must verify, and
    // something must be.
    bool verified = false;
    if (!r.source.secrets.empty() && credential_header(r.headers, k_token)) {
        if (auto v = check_token(r.headers, "X-Gitlab-Token", r.source.secrets); !v) return v;
        verified = true;
    }
    if (!r.source.signing_tokens.empty() && credential_header(r.headers, k_signature)) {
        if (auto v = check_standard_webhook(r.headers, r.body, r.source.signing_tokens,
                                            r.source.timestamp_window, r.now);
            !v) {
            return v;
        }
        verified = true;
    }
    if (!verified) return errc::signature_missing;
    return {};
}

std::string credentials(const Request& r) {
    // Either verifies (a migration from the token to signing may send both).
    return joined_names({r.source.secrets.empty() ? "" : k_token[0],
                         r.source.signing_tokens.empty() ? "" : k_signature[0]},
                        " or ");
}

result<void> normalize_events(const Payload& p, std::vector<Event>& events) {
    return normalize(p.event_name, p.json, events.front());
}

// Merge request actions mapped onto GitHub's words (open/reopen/close/merge/update become
// opened/reopened/closed/synchronize/edited); the approval actions, which GitHub has no word
// for, pass through.
constexpr std::string_view k_pull_request[] = {
    "opened",   "reopened",   "closed",   "synchronize", "edited",
    "approved", "unapproved", "approval", "unapproval",
};
// Release Hook: create/update/delete become created/updated/deleted.
constexpr std::string_view k_release[] = {"created", "updated", "deleted"};
// object_attributes.action of issues, notes, wiki pages, milestones and emoji.
constexpr std::string_view k_other[] = {
    "open", "close", "reopen", "update", "create", "delete", "award", "revoke",
};

constexpr Forge k_forge{
    .provider = Provider::gitlab,
    .title = "GitLab",
    .config_keys = k_keys,
    .secret_key = "token",
    .event_headers = k_event,
    .delivery_headers = k_delivery,
    .recorded_headers = k_recorded,
    .form_bodies = false,
    .verify = verify,
    .credentials = credentials,
    .normalize = normalize_events,
    .actions = {.pull_request = k_pull_request, .release = k_release, .other = k_other},
};

}  // namespace

const Forge& forge() noexcept {
    return k_forge;
}

}  // namespace hookrelay::ingest::gitlab
