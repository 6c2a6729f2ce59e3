#include "ingest/bitbucket_cloud/forge.hpp"

#include "ingest/bitbucket_cloud/normalize.hpp"
#include "ingest/signature.hpp"

namespace hookrelay::ingest::bitbucket_cloud {
namespace {

constexpr std::string_view k_keys[] = {"secret", "secrets"};
constexpr std::string_view k_event[] = {"X-Event-Key"};
constexpr std::string_view k_delivery[] = {"X-Request-UUID"};
// The event, the request, the webhook subscription and which attempt this is (retries on 5xx).
constexpr std::string_view k_recorded[] = {"X-Event-Key", "X-Request-UUID", "X-Hook-UUID",
                                           "X-Attempt-Number"};
// Same name as GitHub's legacy SHA-1 header, but SHA-256 with its prefix.
constexpr std::string_view k_signature[] = {"X-Hub-Signature"};

result<void> verify(const Request& r) {
    const auto signature = credential_header(r.headers, k_signature, "sha256=");
    if (!signature) return errc::signature_missing;
    const std::string_view parts[] = {r.body};
    return check_hex_hmac(*signature, "sha256=", Digest::sha256, r.source.secrets, parts);
}

std::string credentials(const Request&) {
    return std::string(k_signature[0]);
}

result<void> normalize_events(const Payload& p, std::vector<Event>& events) {
    return normalize(p.event_name, p.json, events);
}

constexpr std::string_view k_pull_request[] = {"opened", "synchronize", "closed", "approved",
                                               "unapproved"};
// The rest of each other event key after ':' (Bitbucket's "Event payloads" page: repo:fork,
// issue:created, pullrequest:comment_created, ...).
constexpr std::string_view k_other[] = {
    "fork",
    "updated",
    "transfer",
    "commit_comment_created",
    "commit_status_created",
    "commit_status_updated",
    "created",
    "comment_created",
    "comment_updated",
    "comment_deleted",
    "comment_resolved",
    "comment_reopened",
    "changes_request_created",
    "changes_request_removed",
};

constexpr Forge k_forge{
    .provider = Provider::bitbucket_cloud,
    .title = "Bitbucket Cloud",
    .config_keys = k_keys,
    .secret_key = "secret",
    .event_headers = k_event,
    .delivery_headers = k_delivery,
    .recorded_headers = k_recorded,
    .form_bodies = false,
    .verify = verify,
    .credentials = credentials,
    .normalize = normalize_events,
    .actions = {.pull_request = k_pull_request, .release = {}, .other = k_other},
};

}  // namespace

const Forge& forge() noexcept {
    return k_forge;
}

}  // namespace hookrelay::ingest::bitbucket_cloud
