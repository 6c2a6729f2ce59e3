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

/// The normalized `action` values the forges' normalizers produce for events of `kind` (each
/// forge lists its own in the forge table, ingest/forge.hpp): GitHub's words, the other forges'
/// mapped onto them (GitLab open -> opened, Gitea synchronized -> synchronize, Bitbucket
/// fulfilled -> closed, ...) or passed through where GitHub has no equivalent (approved,
/// label_updated, ...). Empty for push, tag and ping: they carry no action. In forge table
/// order, each value once.
/// For EventKind::other: the actions of the forge-specific events hookrelay knows of (the
/// forges' documentation). That list can never be complete (GitHub adds actions, and
/// repository_dispatch carries any word its sender chose), so it only serves to recognise typos.
const std::vector<std::string_view>& known_actions(EventKind kind);

/// As above, for the events of the forges in `providers` only.
std::vector<std::string_view> known_actions(EventKind kind, std::span<const Provider> providers);

/// Whether `field` is a boolean field of the model (created, deleted, forced,
/// changed_files_complete, pull_request.merged, pull_request.draft, pull_request.from_fork):
/// its value is "true" or "false", nothing else.
bool is_boolean_field(std::string_view field) noexcept;

}  // namespace hookrelay::rules
