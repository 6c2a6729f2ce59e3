// Helpers shared by templates and rule conditions for talking about event fields in error
// messages: "did you mean" suggestions (built on util/suggest.hpp) and "for a push event"
// phrases. Private to the render and rules modules. Pure functions; thread-safe.
#pragma once

#include <hookrelay/event.hpp>

#include <span>
#include <string>
#include <string_view>

namespace hookrelay::render {

/// For an unknown field path: " (did you mean 'branch'?)", a hint about payload paths, or "".
/// `extra` names are considered as well as event_field_names() (e.g. "paths" in conditions).
std::string field_suggestion(std::string_view path, std::span<const std::string_view> extra = {});

/// "a push event", "a pull_request event", or for kind other the forge's own event name
/// ("a 'workflow_run' event"), for messages like "'tag' is not set for a push event".
std::string event_phrase(const Event& event);

}  // namespace hookrelay::render
