#include "render/field_names.hpp"

#include "util/suggest.hpp"

#include <vector>

namespace hookrelay::render {

std::string field_suggestion(std::string_view path, std::span<const std::string_view> extra) {
    std::vector<std::string_view> names(event_field_names().begin(), event_field_names().end());
    names.insert(names.end(), extra.begin(), extra.end());
    if (auto hint = did_you_mean(path, names); !hint.empty()) return hint;
    if (path == "payload" || path == "payload.") {
        return " (payload fields need a path, e.g. 'payload.sender.login')";
    }
    if (path.starts_with("pr.")) {
        const auto candidate = "pull_request." + std::string(path.substr(3));
        if (is_event_field(candidate)) return " (did you mean '" + candidate + "'?)";
    }
    // A dotted path outside the model is most likely a raw payload member written without the
    // prefix ("sender.login").
    const auto dot = path.find('.');
    if (dot != std::string_view::npos && dot > 0) {
        const auto head = path.substr(0, dot);
        if (head != "repository" && head != "pull_request" && head != "payload") {
            return " (raw payload fields are under 'payload.', e.g. 'payload." + std::string(path) +
                   "')";
        }
    }
    return {};
}

std::string event_phrase(const Event& event) {
    if (event.kind == EventKind::other) {
        if (!event.forge_event.empty()) return "a '" + event.forge_event + "' event";
        return "this event";
    }
    return "a " + std::string(to_string(event.kind)) + " event";
}

}  // namespace hookrelay::render
