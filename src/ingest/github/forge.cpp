#include "ingest/github/forge.hpp"

#include "ingest/github/normalize.hpp"
#include "ingest/signature.hpp"

namespace hookrelay::ingest::github {
namespace {

constexpr std::string_view k_keys[] = {"secret", "secrets", "allow_sha1"};
constexpr std::string_view k_event[] = {"X-GitHub-Event"};
constexpr std::string_view k_delivery[] = {"X-GitHub-Delivery"};
// forge-webhooks.md: GitHub's delivery headers, GitHub Enterprise's host and version.
constexpr std::string_view k_recorded[] = {
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "X-GitHub-Hook-ID",
    "X-GitHub-Hook-Installation-Target-Type",
    "X-GitHub-Hook-Installation-Target-ID",
    "X-GitHub-Enterprise-Version",
    "X-GitHub-Enterprise-Host",
};
constexpr std::string_view k_sha256[] = {"X-Hub-Signature-256"};
constexpr std::string_view k_sha1[] = {"X-Hub-Signature"};

result<void> verify(const Request& r) {
    const std::string_view body[] = {r.body};
    if (const auto sha256 = credential_header(r.headers, k_sha256, "sha256=")) {
        return check_hex_hmac(*sha256, "sha256=", Digest::sha256, r.source.secrets, body);
    }
    // SHA-1 is the legacy header; it is consulted only when opted in and no SHA-256 was sent,
    // so a forged SHA-1 cannot stand in for a failing SHA-256.
    if (r.source.allow_sha1) {
        if (const auto sha1 = credential_header(r.headers, k_sha1, "sha1=")) {
            return check_hex_hmac(*sha1, "sha1=", Digest::sha1, r.source.secrets, body);
        }
    }
    return errc::signature_missing;
}

std::string credentials(const Request& r) {
    if (r.source.allow_sha1) return joined_names({k_sha256[0], k_sha1[0]}, " or ");
    std::string out(k_sha256[0]);
    if (credential_header(r.headers, k_sha1, "sha1=")) {
        out += " (the request's " + std::string(k_sha1[0]) +
               ", SHA-1, is taken only with allow_sha1: true)";
    }
    return out;
}

result<void> normalize_events(const Payload& p, std::vector<Event>& events) {
    return normalize(p.event_name, p.json, events.front());
}

// GitHub's action words are the model's: its pull_request and release actions (webhook docs).
constexpr std::string_view k_pull_request[] = {
    "opened",
    "synchronize",
    "reopened",
    "closed",
    "edited",
    "ready_for_review",
    "converted_to_draft",
    "assigned",
    "unassigned",
    "labeled",
    "unlabeled",
    "review_requested",
    "review_request_removed",
    "milestoned",
    "demilestoned",
    "locked",
    "unlocked",
    "auto_merge_enabled",
    "auto_merge_disabled",
    "enqueued",
    "dequeued",
};
constexpr std::string_view k_release[] = {
    "published", "created", "released", "prereleased", "edited", "deleted", "unpublished",
};
// Actions of GitHub's other webhook events (issues, issue_comment, check_run, check_suite,
// workflow_run, workflow_job, deployment_status, discussion, pull_request_review*, merge_group,
// repository, ...). Only a guide for typo hints.
constexpr std::string_view k_other[] = {
    "created",
    "edited",
    "deleted",
    "opened",
    "closed",
    "reopened",
    "assigned",
    "unassigned",
    "labeled",
    "unlabeled",
    "locked",
    "unlocked",
    "milestoned",
    "demilestoned",
    "pinned",
    "unpinned",
    "transferred",
    "typed",
    "untyped",
    "requested",
    "rerequested",
    "requested_action",
    "completed",
    "in_progress",
    "queued",
    "waiting",
    "submitted",
    "dismissed",
    "resolved",
    "unresolved",
    "answered",
    "unanswered",
    "category_changed",
    "checks_requested",
    "destroyed",
    "published",
    "updated",
    "archived",
    "unarchived",
    "renamed",
    "privatized",
    "publicized",
    "added",
    "removed",
    "started",
    "approved",
    "rejected",
    "enabled",
    "disabled",
    "appeared_in_branch",
    "closed_by_user",
    "fixed",
    "reopened_by_user",
    "auto_dismissed",
    "auto_reopened",
    "reintroduced",
    "validated",
    "publicly_leaked",
    "reported",
    "withdrawn",
    "converted",
    "moved",
    "reordered",
    "restored",
    "suspend",
    "unsuspend",
    "new_permissions_accepted",
    "revoked",
    "blocked",
    "unblocked",
    "member_added",
    "member_invited",
    "member_removed",
    "added_to_repository",
    "removed_from_repository",
    "cancelled",
    "denied",
    "sub_issue_added",
    "sub_issue_removed",
    "parent_issue_added",
    "parent_issue_removed",
};

constexpr Forge k_forge{
    .provider = Provider::github,
    .title = "GitHub",
    .config_keys = k_keys,
    .secret_key = "secret",
    .event_headers = k_event,
    .delivery_headers = k_delivery,
    .recorded_headers = k_recorded,
    .form_bodies = true,
    .verify = verify,
    .credentials = credentials,
    .normalize = normalize_events,
    .actions = {.pull_request = k_pull_request, .release = k_release, .other = k_other},
};

}  // namespace

const Forge& forge() noexcept {
    return k_forge;
}

}  // namespace hookrelay::ingest::github
