#include <hookrelay/store.hpp>

namespace hookrelay {

std::string job_display_path(const std::vector<std::string>& job) {
    std::string out;
    for (const auto& segment : job) {
        if (!out.empty()) out += '/';
        for (char c : segment) {
            if (c == '/') {
                out += "%2F";
            } else {
                out += c;
            }
        }
    }
    return out;
}

}  // namespace hookrelay

namespace hookrelay {

std::string_view to_string(TriggerState state) noexcept {
    switch (state) {
        case TriggerState::pending: return "pending";
        case TriggerState::retrying: return "retrying";
        case TriggerState::delivered: return "delivered";
        case TriggerState::dead: return "dead";
    }
    return "pending";
}

std::optional<TriggerState> trigger_state_from_string(std::string_view text) noexcept {
    for (auto s : {TriggerState::pending, TriggerState::retrying, TriggerState::delivered,
                   TriggerState::dead}) {
        if (to_string(s) == text) return s;
    }
    return std::nullopt;
}

}  // namespace hookrelay
