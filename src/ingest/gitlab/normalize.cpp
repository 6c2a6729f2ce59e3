#include "ingest/gitlab/normalize.hpp"

#include "ingest/json_access.hpp"

namespace hookrelay::ingest::gitlab {
namespace {

using detail::as_array;
using detail::as_bool;
using detail::as_int;
using detail::as_object;
using detail::as_string;
using detail::as_string_view;
using detail::at;
using detail::member;

enum class Kind { push, tag, merge_request, release, other };

Kind classify(std::string_view event_name, JsonRef root) {
    if (event_name == "Push Hook") return Kind::push;
    if (event_name == "Tag Push Hook") return Kind::tag;
    if (event_name == "Merge Request Hook") return Kind::merge_request;
    if (event_name == "Release Hook") return Kind::release;
    if (event_name == "System Hook") {
        // System hooks share one header value; the body says what happened. Older instances
        // put it only in event_name.
        auto kind = as_string_view(member(root, "object_kind"));
        if (!kind) kind = as_string_view(member(root, "event_name"));
        if (kind == "push") return Kind::push;
        if (kind == "tag_push") return Kind::tag;
        if (kind == "merge_request") return Kind::merge_request;
        if (kind == "release") return Kind::release;
    }
    return Kind::other;
}

void fill_repository(JsonRef project, Repository& out) {
    if (!as_object(project)) return;
    out.full_name = as_string(member(project, "path_with_namespace"));
    // project.name and project.namespace are display names ("Diaspora", "the test"); the path is
    // what URLs, rules and Jenkins job names use, and it keeps nested groups intact.
    detail::split_full_name(out.full_name, out.namespace_, out.name);
    out.clone_url = as_string(member(project, "git_http_url"));
    if (out.clone_url.empty()) out.clone_url = as_string(member(project, "http_url"));
    out.ssh_url = as_string(member(project, "git_ssh_url"));
    if (out.ssh_url.empty()) out.ssh_url = as_string(member(project, "ssh_url"));
    out.web_url = as_string(member(project, "web_url"));
    if (out.web_url.empty()) out.web_url = as_string(member(project, "homepage"));
    out.default_branch = as_string(member(project, "default_branch"));
}

std::string user_actor(JsonRef root) {
    auto name = as_string(at(root, {"user", "username"}));
    if (name.empty()) name = as_string(at(root, {"user", "name"}));
    return name;
}

result<void> normalize_push(JsonRef root, Kind kind, Event& event) {
    const auto ref = as_string_view(member(root, "ref"));
    if (!ref || ref->empty() || !as_object(member(root, "project"))) {
        return errc::missing_field;
    }
    event.kind = kind == Kind::tag ? EventKind::tag : EventKind::push;
    event.ref = std::string(*ref);
    event.branch = detail::strip_prefix(*ref, "refs/heads/");
    event.tag = detail::strip_prefix(*ref, "refs/tags/");
    // GitLab's hook names the kind (GitHub's one `push` event does not, so there any other ref
    // is kind other). GitLab sends tag hooks for refs/tags/* and push hooks for refs/heads/* only;
    // a ref that contradicts its hook is refused rather than becoming a tag event without a tag
    // or a push without a branch, which no rule could match and no job path could render.
    if ((event.kind == EventKind::tag ? event.tag : event.branch).empty()) {
        return errc::ref_mismatch;
    }

    event.before = as_string(member(root, "before"));
    event.after = as_string(member(root, "after"));
    event.created = is_zero_sha(event.before);
    event.deleted = is_zero_sha(event.after);

    event.actor = as_string(member(root, "user_username"));
    if (event.actor.empty()) event.actor = as_string(member(root, "user_name"));

    // For annotated tags `after` is the tag object; checkout_sha is the commit it points at.
    const auto checkout = as_string(member(root, "checkout_sha"));
    if (!event.deleted) {
        event.commit = checkout.empty() ? event.after : checkout;
        if (is_zero_sha(event.commit)) event.commit.clear();
    }

    const auto commits = as_array(member(root, "commits"));
    auto head = detail::find_commit(commits, checkout);
    if (!head) head = detail::find_commit(commits, event.after);
    event.message = as_string(member(head, "message"));

    event.changed_files = detail::collect_changed_files(commits);
    // GitLab lists only the newest 20 commits and says how many there really were.
    const auto total = as_int(member(root, "total_commits_count"));
    const auto listed = commits.size();
    event.changed_files_complete = !total || *total <= static_cast<std::int64_t>(listed);
    return {};
}

std::string map_merge_request_action(std::string_view action, bool has_oldrev) {
    if (action == "open") return "opened";
    if (action == "reopen") return "reopened";
    if (action == "close" || action == "merge") return "closed";
    // `oldrev` is present only when the update pushed commits: GitHub's synchronize.
    if (action == "update") return has_oldrev ? "synchronize" : "edited";
    return std::string(action);
}

result<void> normalize_merge_request(JsonRef root, Event& event) {
    const auto attrs = member(root, "object_attributes");
    if (!as_object(attrs) || !as_object(member(root, "project"))) {
        return errc::missing_field;
    }
    const auto iid = as_int(member(attrs, "iid"));
    if (!iid || *iid <= 0) return errc::missing_field;

    event.kind = EventKind::pull_request;
    event.actor = user_actor(root);
    event.forge_action = as_string(member(attrs, "action"));
    const auto oldrev = as_string(member(attrs, "oldrev"));
    event.action = map_merge_request_action(event.forge_action, !oldrev.empty());

    PullRequest facts;
    facts.number = *iid;
    facts.title = as_string(member(attrs, "title"));
    facts.url = as_string(member(attrs, "url"));
    facts.source_branch = as_string(member(attrs, "source_branch"));
    facts.target_branch = as_string(member(attrs, "target_branch"));
    facts.source_repository = as_string(at(attrs, {"source", "path_with_namespace"}));
    facts.source_clone_url = as_string(at(attrs, {"source", "git_http_url"}));
    facts.head_sha = as_string(at(attrs, {"last_commit", "id"}));
    facts.merge_commit_sha = as_string(member(attrs, "merge_commit_sha"));
    // `draft` replaced `work_in_progress`; older instances (and the docs example) send null.
    auto draft = as_bool(member(attrs, "draft"));
    if (!draft) draft = as_bool(member(attrs, "work_in_progress"));
    facts.draft = draft.value_or(false);
    facts.merged = event.forge_action == "merge" ||
                   as_string_view(member(attrs, "state")) == std::string_view("merged");
    // Project ids are authoritative; the docs example even disagrees between `project` and
    // `source`/`target`, so names are only the fallback.
    const auto source_id = as_int(member(attrs, "source_project_id"));
    const auto target_id = as_int(member(attrs, "target_project_id"));
    if (source_id && target_id) {
        facts.from_fork = *source_id != *target_id;
    } else {
        const auto target = as_string(at(attrs, {"target", "path_with_namespace"}));
        facts.from_fork = !facts.source_repository.empty() && !target.empty() &&
                          facts.source_repository != target;
    }

    event.branch = facts.source_branch;
    // refs/merge-requests/<iid>/head lives in the target project, so it can be fetched from
    // repository.clone_url even when the source branch is in a fork (GitHub: refs/pull/<n>/head).
    event.ref = "refs/merge-requests/" + std::to_string(facts.number) + "/head";
    event.commit = facts.head_sha;
    if (!oldrev.empty()) {
        event.before = oldrev;
        event.after = facts.head_sha;
    }
    event.pull_request = std::move(facts);
    return {};
}

void normalize_release(JsonRef root, Event& event) {
    event.kind = EventKind::release;
    event.forge_action = as_string(member(root, "action"));
    const auto& action = event.forge_action;
    event.action = action == "create"   ? "created"
                   : action == "update" ? "updated"
                   : action == "delete" ? "deleted"
                                        : action;
    event.tag = as_string(member(root, "tag"));
    event.message = as_string(member(root, "name"));
    event.commit = as_string(at(root, {"commit", "id"}));
    event.actor = user_actor(root);
}

void normalize_other(JsonRef root, Event& event) {
    event.kind = EventKind::other;
    event.actor = user_actor(root);
    if (event.actor.empty()) event.actor = as_string(member(root, "user_username"));
    event.forge_action = as_string(at(root, {"object_attributes", "action"}));
    if (event.forge_action.empty()) event.forge_action = as_string(member(root, "action"));
    event.action = event.forge_action;
}

}  // namespace

result<void> normalize(std::string_view event_name, JsonRef root, Event& event) {
    fill_repository(member(root, "project"), event.repository);
    switch (const auto kind = classify(event_name, root)) {
        case Kind::push:
        case Kind::tag:
            return normalize_push(root, kind, event);
        case Kind::merge_request:
            return normalize_merge_request(root, event);
        case Kind::release:
            normalize_release(root, event);
            return {};
        case Kind::other:
            normalize_other(root, event);
            return {};
    }
    return {};
}

}  // namespace hookrelay::ingest::gitlab
