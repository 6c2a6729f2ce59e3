// Gitea / Forgejo payload → Event (Forgejo sends Gitea's JSON). Pure; thread-safe; never throws
// on malformed input.
#pragma once

#include <hookrelay/error.hpp>
#include <hookrelay/event.hpp>
#include <hookrelay/json_document.hpp>

#include <string_view>

namespace hookrelay::ingest::gitea {

/// Fills kind, action, forge_action, repository, refs, shas, created/deleted (derived from zero
/// shas: Gitea sends no flags), actor, message, changed files and pull request facts of `event`
/// from a Gitea payload. `event_name` is the X-Gitea-Event (X-Forgejo-Event) value:
///  - push: kind push or tag by ref (other refs: other);
///  - delete of a branch: kind push with deleted = true and the full ref (Gitea sends no push
///    for a branch deletion, only this); delete of a tag, and create: other (the push that comes
///    with them carries the build);
///  - pull_request: kind pull_request, `synchronized` mapped to `synchronize`;
///  - release: kind release;
///  - anything else (issues, reviews, ...): other, with repository and actor.
/// Leaves source, provider, delivery_id, forge_event and payload alone.
/// Errors: errc::missing_field when a push lacks a string `ref` or an object `repository`, a
/// branch delete lacks `ref`, or a pull_request lacks its `pull_request` object or number.
result<void> normalize(std::string_view event_name, JsonRef payload, Event& event);

}  // namespace hookrelay::ingest::gitea
