#include "rules/vocabulary.hpp"

#include "ingest/forge.hpp"

#include <algorithm>
#include <array>

namespace hookrelay::rules {
namespace {

constexpr std::array k_kinds = {EventKind::push,    EventKind::tag,  EventKind::pull_request,
                                EventKind::release, EventKind::ping, EventKind::other};

constexpr std::array<std::string_view, 7> k_boolean_fields = {
    "created",
    "deleted",
    "forced",
    "changed_files_complete",
    "pull_request.merged",
    "pull_request.draft",
    "pull_request.from_fork",
};

std::span<const std::string_view> actions_of(const ingest::Forge& forge, EventKind kind) {
    switch (kind) {
        case EventKind::pull_request:
            return forge.actions.pull_request;
        case EventKind::release:
            return forge.actions.release;
        case EventKind::other:
            return forge.actions.other;
        case EventKind::push:
        case EventKind::tag:
        case EventKind::ping:
            return {};
    }
    return {};
}

// Appends the actions of `forge`'s events of `kind` that `out` does not hold yet.
void add_actions(const ingest::Forge& forge, EventKind kind, std::vector<std::string_view>& out) {
    for (const auto action : actions_of(forge, kind)) {
        if (std::find(out.begin(), out.end(), action) == out.end()) out.push_back(action);
    }
}

}  // namespace

std::span<const EventKind> event_kinds() noexcept {
    return k_kinds;
}

const std::vector<std::string_view>& known_actions(EventKind kind) {
    // Built once per kind; the table is constant.
    static const auto all = [] {
        std::array<std::vector<std::string_view>, k_kinds.size()> by_kind;
        for (const auto k : k_kinds) {
            for (const auto* forge : ingest::forges()) {
                add_actions(*forge, k, by_kind[static_cast<std::size_t>(k)]);
            }
        }
        return by_kind;
    }();
    return all.at(static_cast<std::size_t>(kind));
}

std::vector<std::string_view> known_actions(EventKind kind, std::span<const Provider> providers) {
    std::vector<std::string_view> out;
    for (const auto provider : providers) add_actions(ingest::forge(provider), kind, out);
    return out;
}

bool is_boolean_field(std::string_view field) noexcept {
    return std::find(k_boolean_fields.begin(), k_boolean_fields.end(), field) !=
           k_boolean_fields.end();
}

}  // namespace hookrelay::rules
