// Bitbucket Data Center payload → events. Pure; thread-safe; never throws on malformed input.
#pragma once

#include <hookrelay/error.hpp>
#include <hookrelay/event.hpp>
#include <hookrelay/json_document.hpp>

#include <string_view>
#include <vector>

namespace hookrelay::ingest::bitbucket_server {

/// Fills `events` (arriving with one event, source, provider, delivery_id and forge_event set)
/// from a Bitbucket Data Center payload. `event_key` is the X-Event-Key value:
///  - repo:refs_changed: one event per changes[] entry, in order: kind push (refs/heads/*) or
///    tag (refs/tags/*), else other; before/after from fromHash/toHash, created (ADD), deleted
///    (DELETE), commit = toHash, the message of that commit when the payload lists it (8.x+);
///    no file lists, so changed_files is empty and incomplete;
///  - pr:opened, pr:from_ref_updated (synchronize, before = previousFromHash), pr:modified
///    (edited), pr:merged (closed, merged), pr:declined and pr:deleted (closed),
///    pr:reviewer:approved / unapproved: kind pull_request, ref refs/pull-requests/<id>/from,
///    the repository being the target (toRef) repository;
///  - diagnostics:ping (the "Test connection" button): kind ping;
///  - anything else: other, action = the key after its first ':'.
/// Repository identity is "<project key>/<slug>" (the key in its upper case); clone URLs come
/// from links.clone.
/// Errors: errc::missing_field (refs_changed without changes, a pull request without its id),
/// errc::too_many_events (more changes than k_max_events_per_delivery), errc::other_forge_event
/// (a Bitbucket Cloud key: repo:push, pullrequest:*).
result<void> normalize(std::string_view event_key, JsonRef payload, std::vector<Event>& events);

}  // namespace hookrelay::ingest::bitbucket_server
