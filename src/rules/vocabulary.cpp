#include "rules/vocabulary.hpp"

#include <algorithm>
#include <array>

namespace hookrelay::rules {
namespace {

constexpr std::array k_kinds = {EventKind::push,    EventKind::tag,  EventKind::pull_request,
                                EventKind::release, EventKind::ping, EventKind::other};

// Kept in step with ingest/github/normalize.cpp and ingest/gitlab/normalize.cpp (the rules tests
// run every recorded delivery and every GitLab action through the normalizers against these).
const std::vector<std::string_view> k_none;

// GitHub's pull_request actions (webhook docs), then what GitLab's Merge Request Hook adds: its
// open/reopen/close/merge/update become opened/reopened/closed/synchronize/edited, and the
// approval actions, which GitHub has no word for, pass through.
const std::vector<std::string_view> k_pull_request = {
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
    "approved",
    "unapproved",
    "approval",
    "unapproval",
};

// GitHub's release actions; GitLab's create/update/delete become created/updated/deleted.
const std::vector<std::string_view> k_release = {
    "published", "created", "released",    "prereleased",
    "edited",    "deleted", "unpublished", "updated",
};

// Actions of forge-specific events (kind other), as the forges send them: GitHub's webhook
// events (issues, issue_comment, check_run, check_suite, workflow_run, workflow_job,
// deployment_status, discussion, pull_request_review*, merge_group, repository, ...) and
// GitLab's object_attributes.action (issues, notes, wiki pages, milestones, emoji). Only a guide
// for typo hints: see known_actions().
const std::vector<std::string_view> k_other = {
    // GitHub
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
    // GitLab
    "open",
    "close",
    "reopen",
    "update",
    "create",
    "delete",
    "award",
    "revoke",
};

constexpr std::array<std::string_view, 7> k_boolean_fields = {
    "created",
    "deleted",
    "forced",
    "changed_files_complete",
    "pull_request.merged",
    "pull_request.draft",
    "pull_request.from_fork",
};

}  // namespace

std::span<const EventKind> event_kinds() noexcept {
    return k_kinds;
}

const std::vector<std::string_view>& known_actions(EventKind kind) {
    switch (kind) {
        case EventKind::pull_request:
            return k_pull_request;
        case EventKind::release:
            return k_release;
        case EventKind::other:
            return k_other;
        case EventKind::push:
        case EventKind::tag:
        case EventKind::ping:
            return k_none;
    }
    return k_none;
}

bool is_boolean_field(std::string_view field) noexcept {
    return std::find(k_boolean_fields.begin(), k_boolean_fields.end(), field) !=
           k_boolean_fields.end();
}

}  // namespace hookrelay::rules
