// The normalized event: one model for every forge. Ingest produces it, rules match on it,
// templates render from it. Field names here are the names users write in rules and templates.
#pragma once

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay {

class JsonDocument;

/// What happened, across forges.
enum class EventKind {
    push,          ///< commits pushed to (or a branch created/deleted at) refs/heads/*
    tag,           ///< a tag pushed or deleted (refs/tags/*)
    pull_request,  ///< a pull request (GitLab: merge request) changed
    release,       ///< a release was created, published, edited or deleted
    ping,          ///< the forge testing the hook; never triggers anything
    other,         ///< anything else (create/delete bookkeeping, workflow_run, notes, ...)
};

/// "push", "tag", "pull_request", "release", "ping", "other".
std::string_view to_string(EventKind kind) noexcept;

/// The forges hookrelay understands. What each one sends and how it is verified and normalized
/// is in src/ingest/ (one folder per forge, one table of them: ingest/forge.hpp).
enum class Provider {
    github,
    gitlab,
    gitea,
    forgejo,
    bitbucket_cloud,   ///< bitbucket.org
    bitbucket_server,  ///< Bitbucket Data Center (formerly Server)
    generic,           ///< any other sender of HMAC-signed JSON
};

/// The name users write in `provider:` and the store records: "github", "gitlab", "gitea",
/// "forgejo", "bitbucket-cloud", "bitbucket-server", "generic".
std::string_view to_string(Provider provider) noexcept;
/// The inverse of to_string; nullopt for anything else.
std::optional<Provider> provider_from_string(std::string_view name) noexcept;
/// Every Provider, in the order above.
std::span<const Provider> providers() noexcept;

/// The repository the event happened in (for pull requests: the target repository).
struct Repository {
    std::string full_name;       ///< "acme/app", GitLab nested: "group/sub/app"
    std::string name;            ///< last path segment: "app"
    std::string namespace_;      ///< everything before the last '/': "acme", "group/sub"
    std::string clone_url;       ///< HTTPS clone URL
    std::string ssh_url;         ///< SSH clone URL
    std::string web_url;         ///< browser URL of the repository
    std::string default_branch;  ///< may be empty when the forge does not say
};

/// Facts about a pull request (GitLab: merge request).
struct PullRequest {
    std::int64_t number = 0;  ///< the number users see (GitLab: iid; Bitbucket: id)
    std::string title;
    std::string url;                ///< browser URL
    std::string source_branch;      ///< head branch
    std::string target_branch;      ///< base branch
    std::string source_repository;  ///< full name of the head repository (a fork differs)
    std::string source_clone_url;   ///< clone URL of the head repository
    /// Newest commit on the source branch, a full sha; empty when the forge sends only an
    /// abbreviation (Bitbucket Cloud).
    std::string head_sha;
    /// The forge's abbreviation of that commit when it sends no more (Bitbucket Cloud: 12
    /// digits), else empty. For commit statuses only, which Bitbucket Cloud takes by it: no rule
    /// field, and no build gets it (Jenkins cannot fetch by it).
    std::string head_sha_abbrev;
    std::string merge_commit_sha;  ///< set once merged (a full sha, as head_sha)
    bool merged = false;
    bool draft = false;
    bool from_fork = false;  ///< source repository differs from the target repository
};

/// One event of a delivery, normalized. Most deliveries carry one event; a Bitbucket push carries
/// one per ref it changed. Empty strings mean "the forge did not say / does not apply".
struct Event {
    std::string source;  ///< configured source name, e.g. "github"
    Provider provider = Provider::github;
    /// The forge's delivery id (GitHub X-GitHub-Delivery, GitLab webhook-id / Idempotency-Key,
    /// ...; see ingest::delivery_id()); every event of a delivery has the same.
    std::string delivery_id;
    EventKind kind = EventKind::other;
    std::string forge_event;  ///< the forge's own event name: "push", "Merge Request Hook", ...
    /// Normalized action: opened, reopened, synchronize, edited, closed, created, published, ...
    /// Every forge's pull request actions are mapped to GitHub's words (GitLab open → opened,
    /// update with new commits → synchronize, merge → closed with merged = true; Gitea
    /// synchronized → synchronize; Bitbucket created → opened, fulfilled → closed + merged, ...).
    /// Empty for push and tag.
    std::string action;
    std::string forge_action;  ///< the action exactly as the forge sent it

    Repository repository;

    /// Full ref: refs/heads/main, refs/tags/v1; pull requests: refs/pull/<n>/head (GitHub, Gitea,
    /// Forgejo), refs/merge-requests/<iid>/head (GitLab), refs/pull-requests/<id>/from (Bitbucket
    /// Data Center), each fetchable from repository.clone_url; empty for Bitbucket Cloud pull
    /// requests, which have no such ref.
    std::string ref;
    std::string branch;  ///< short branch name (push: pushed branch; pull request: source branch)
    std::string tag;     ///< short tag name (tag pushes and releases)
    std::string before;  ///< sha before the push (all zeros on create)
    std::string after;   ///< sha after the push (all zeros on delete; may be a tag object)
    std::string commit;  ///< the commit to build (peeled for annotated tags); empty on delete
    bool created = false;
    bool deleted = false;
    bool forced = false;  ///< GitHub and Bitbucket Cloud only; other forges do not say

    std::string actor;    ///< who caused it: login / username
    std::string message;  ///< the head commit's message (release: its name)

    std::vector<std::string> changed_files;  ///< added + modified + removed, de-duplicated
    /// False when the forge truncated the commit list (GitLab > 20 commits, GitHub > 2048, Gitea
    /// and Forgejo by their own caps, or a count that disagrees), sends no file lists at all
    /// (Bitbucket, generic sources), or the push changed more than 10,000 files (only the first
    /// 10,000 are kept), so changed_files may be missing some paths.
    bool changed_files_complete = true;

    std::optional<PullRequest> pull_request;

    /// The parsed payload as received; `payload.*` in rules and templates reads from here.
    std::shared_ptr<const JsonDocument> payload;
};

/// The value of a field path ("branch", "repository.name", "pull_request.number",
/// "payload.sender.login") as text: booleans "true"/"false", numbers in decimal, lists joined
/// with ','. nullopt when the field is unset for this event (empty string, no pull request,
/// missing payload member) or the path is not a field at all.
std::optional<std::string> event_field(const Event& event, std::string_view path);

/// Whether `path` names a field of the model (independent of any event): any of the names in
/// event_field_names(), or any "payload.<something>" path.
bool is_event_field(std::string_view path) noexcept;

/// Every non-payload field path, in documentation order.
const std::vector<std::string_view>& event_field_names() noexcept;

/// The event as a JSON object (no payload): what `explain` prints and the daemon logs.
boost::json::value to_json(const Event& event);

/// A zero sha: non-empty and all '0' (40 or 64 characters).
bool is_zero_sha(std::string_view sha) noexcept;

/// A branch or tag by its name ("refs/heads/main" → "main", "refs/tags/v1" → "v1"); any other
/// ref (a pull request's "refs/pull/7/head", a bare name) as it is.
std::string_view ref_name(std::string_view ref) noexcept;

/// A ref as a list shows it: a branch or tag by its name, a pull request's ref by its number
/// ("refs/pull/7/head" and Bitbucket Data Center's "refs/pull-requests/7/from" → "PR #7", GitLab's
/// "refs/merge-requests/7/head" → "MR !7"); any other ref as it is.
std::string ref_label(std::string_view ref);

}  // namespace hookrelay
