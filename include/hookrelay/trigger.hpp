// One Jenkins build to request, as rules render it and the store and the Jenkins client carry
// it. Plain data.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hookrelay {

/// How far hookrelay follows a trigger in Jenkins once it is delivered: not at all, until its
/// build started, or until the build finished (its result known).
enum class FollowMode { none, started, finished };

/// "none", "started", "finished".
std::string_view to_string(FollowMode mode) noexcept;
/// The inverse of to_string; nullopt for anything else.
std::optional<FollowMode> follow_mode_from_string(std::string_view text) noexcept;

/// Where the commit statuses of a trigger go, rendered from its source's `status:` (and the
/// rule's override) and its event. The forge API and its token come from the source's config
/// when a status is posted; nothing secret is stored.
struct StatusTarget {
    /// GitHub, Gitea: "owner/repo". GitLab: the project's id when the event carried it
    /// ("42"), else its path ("group/app").
    std::string repository;
    std::string sha;      ///< the commit (40 hex)
    std::string context;  ///< GitHub `context`, GitLab `name`: stable per rule
    /// The branch (a pull request's source branch) or tag the commit was built for: GitLab's
    /// `ref`, which picks the pipeline the status joins. "" when the event names none. (Its
    /// default initializer lets a target be written as {repository, sha, context}.)
    std::string ref = {};

    bool operator==(const StatusTarget&) const = default;
};

/// One Jenkins build to request, fully rendered.
struct TriggerRequest {
    std::string rule;     ///< name of the rule that produced it
    std::string jenkins;  ///< name of the Jenkins entry
    /// Folder path segments, not encoded: {"acme", "app", "feature/x"}; a '/' inside a segment is
    /// part of the item name (multibranch branches) and is encoded by the Jenkins client.
    std::vector<std::string> job;
    std::vector<std::pair<std::string, std::string>> parameters;  ///< rendered, config order
    std::string cause;  ///< text naming the delivery, shown by Jenkins as the build cause
    FollowMode follow = FollowMode::none;  ///< the rule's `follow:` (default: its Jenkins')
    std::optional<StatusTarget> status;    ///< set when statuses are posted for it
    /// The rule's `coalesce:` key, rendered ("acme/app:main"); "" = every trigger goes out. A
    /// newer trigger with the same coalesce_scope() supersedes an older one still waiting.
    std::string coalesce;
    /// The rule's `cancel_superseded:`: once this trigger is delivered, the Jenkins queue items
    /// of older delivered triggers with the same scope that have not started are cancelled.
    bool cancel_superseded = false;
    /// Multibranch: the first `multibranch` segments of `job` name the multibranch project and
    /// the last one is the branch job (0: a plain job). A 404 of the branch job asks Jenkins to
    /// scan the project and retries until the branch job appears.
    std::size_t multibranch = 0;
    /// A `scan:` trigger: `job` is a multibranch project (or organization folder) to scan;
    /// nothing is built.
    bool scan_only = false;
};

/// The multibranch project a branch trigger (its first `multibranch` segments) or a scan
/// trigger (its whole job) concerns: its item names.
std::vector<std::string> project_of(const TriggerRequest& request);

/// What makes two triggers compete under `coalesce:`: the rule, the Jenkins, the job and the
/// rendered key, joined ("" when request.coalesce is empty). Stores index it.
std::string coalesce_scope(const TriggerRequest& request);

/// "acme/app/feature%2Fx": segments joined with '/', a '/' inside a segment written as %2F.
std::string job_display_path(const std::vector<std::string>& job);

}  // namespace hookrelay
