// GitHub payload → Event. Pure; thread-safe; never throws on malformed input.
#pragma once

#include <hookrelay/error.hpp>
#include <hookrelay/event.hpp>
#include <hookrelay/json_document.hpp>

#include <string_view>

namespace hookrelay::ingest::github {

/// Fills kind, action, forge_action, repository, refs, shas, flags, actor, message, changed files
/// and pull request facts of `event` from a GitHub payload (a JSON object; anything else is
/// treated as an empty one). `event_name` is the X-GitHub-Event
/// value: push (kind push or tag by ref), pull_request, release, ping; anything else is kind
/// other with repository and actor still filled. Leaves source, provider, delivery_id,
/// forge_event and payload alone.
/// Errors: errc::missing_field when a push lacks a string `ref` or an object `repository`, or a
/// pull_request lacks its `pull_request` object, its number or `repository`.
result<void> normalize(std::string_view event_name, JsonRef payload, Event& event);

}  // namespace hookrelay::ingest::github
