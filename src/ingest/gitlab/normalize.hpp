// GitLab payload → Event. Pure; thread-safe; never throws on malformed input.
#pragma once

#include <hookrelay/error.hpp>
#include <hookrelay/event.hpp>
#include <hookrelay/json_document.hpp>

#include <string_view>

namespace hookrelay::ingest::gitlab {

/// Fills kind, action, forge_action, repository (from `project`), refs, shas, created/deleted
/// (derived from zero shas; GitLab sends no flags), actor, message, changed files and merge
/// request facts of `event` from a GitLab payload (a JSON object; anything else is treated as
/// an empty one). `event_name` is the X-Gitlab-Event value: "Push Hook" (push), "Tag Push Hook"
/// (tag), "Merge Request Hook" (pull_request, actions mapped to GitHub's words), "Release Hook"
/// (release), "System Hook" (kind taken from the body's object_kind); anything else is kind
/// other with repository and actor still filled. Leaves source, provider, delivery_id,
/// forge_event and payload alone.
/// Errors: errc::missing_field when a push/tag lacks a string `ref` or an object `project`, or a
/// merge request lacks `object_attributes`, its `iid` or `project`.
result<void> normalize(std::string_view event_name, JsonRef payload, Event& event);

}  // namespace hookrelay::ingest::gitlab
