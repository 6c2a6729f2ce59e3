// Bitbucket Cloud payload → events. Pure; thread-safe; never throws on malformed input.
#pragma once

#include <hookrelay/error.hpp>
#include <hookrelay/event.hpp>
#include <hookrelay/json_document.hpp>

#include <string_view>
#include <vector>

namespace hookrelay::ingest::bitbucket_cloud {

/// Fills `events` (arriving with one event, source, provider, delivery_id and forge_event set)
/// from a Bitbucket Cloud payload. `event_key` is the X-Event-Key value:
///  - repo:push: one event per push.changes[] entry, in order: kind push (branch,
///    named_branch) or tag, the full ref built from the bare name, before/after from old/new
///    target hashes (empty on create/delete: Bitbucket sends null, not zeros), created, deleted
///    (`closed`) and forced as sent, commit and message from the new target; Bitbucket sends no
///    file lists, so changed_files is empty and incomplete;
///  - pullrequest:created/updated/fulfilled/rejected/approved/unapproved: kind pull_request with
///    action opened/synchronize/closed (merged)/closed/approved/unapproved; Bitbucket abbreviates
///    commit hashes in pull request payloads (12 digits), so head_sha, merge_commit_sha and
///    commit are set only when a full sha is sent; Bitbucket Cloud has no pull request ref, so
///    ref is empty;
///  - anything else: other, action = the key after ':'.
/// Repository identity is `repository.full_name` ("workspace/slug"); clone URLs are built from
/// the repository's web link (payloads carry none).
/// Errors: errc::missing_field (a push without changes, a pull request without its id),
/// errc::too_many_events (more changes than k_max_events_per_delivery), errc::other_forge_event
/// (a Bitbucket Data Center key: repo:refs_changed, pr:*, diagnostics:ping).
result<void> normalize(std::string_view event_key, JsonRef payload, std::vector<Event>& events);

}  // namespace hookrelay::ingest::bitbucket_cloud
