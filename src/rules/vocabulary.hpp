// The values event fields can take, where that set is closed or known: what RuleSet::compile
// checks condition values against, so that a typo (`event: psuh`, `action: opend`,
// `pull_request.draft: flase`) is a config error instead of a rule that silently never matches.
// Private to the rules module (tests include it directly). Pure data; thread-safe.
#pragma once

#include <hookrelay/event.hpp>

#include <span>
#include <string_view>
#include <vector>

namespace hookrelay::rules {

/// Every EventKind, in documentation order (push, tag, pull_request, release, ping, other).
std::span<const EventKind> event_kinds() noexcept;

/// The normalized `action` values the GitHub and GitLab normalizers produce for events of
/// `kind`: GitHub's words, GitLab's mapped onto them (open -> opened, create -> created, ...) or
/// passed through where GitHub has no equivalent (approved, approval, ...). Empty for push, tag
/// and ping: they carry no action.
/// For EventKind::other: the actions of the forge-specific events hookrelay knows of (GitHub's
/// and GitLab's documentation). That list can never be complete (GitHub adds actions, and
/// repository_dispatch carries any word its sender chose), so it only serves to recognise typos.
const std::vector<std::string_view>& known_actions(EventKind kind);

/// Whether `field` is a boolean field of the model (created, deleted, forced,
/// changed_files_complete, pull_request.merged, pull_request.draft, pull_request.from_fork):
/// its value is "true" or "false", nothing else.
bool is_boolean_field(std::string_view field) noexcept;

}  // namespace hookrelay::rules
