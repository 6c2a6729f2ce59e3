#include "ingest/github/normalize.hpp"

#include "ingest/json_access.hpp"

namespace hookrelay::ingest::github {
namespace {

using detail::as_array;
using detail::as_bool;
using detail::as_int;
using detail::as_object;
using detail::as_string;
using detail::as_string_view;
using detail::at;
using detail::member;

// GitHub truncates `commits` at 2048 entries; at the cap we cannot tell whether some were cut.
constexpr std::size_t k_commit_cap = 2048;

void fill_repository(JsonRef repo, Repository& out) {
    if (!as_object(repo)) return;
    out.full_name = as_string(member(repo, "full_name"));
    out.name = as_string(member(repo, "name"));
    out.namespace_ = as_string(at(repo, {"owner", "login"}));
    // Push payloads of older hooks describe the owner with `name` instead of `login`.
    if (out.namespace_.empty()) out.namespace_ = as_string(at(repo, {"owner", "name"}));
    if (out.namespace_.empty() || out.name.empty()) {
        std::string ns;
        std::string name;
        detail::split_full_name(out.full_name, ns, name);
        if (out.namespace_.empty()) out.namespace_ = std::move(ns);
        if (out.name.empty()) out.name = std::move(name);
    }
    out.clone_url = as_string(member(repo, "clone_url"));
    out.ssh_url = as_string(member(repo, "ssh_url"));
    out.web_url = as_string(member(repo, "html_url"));
    out.default_branch = as_string(member(repo, "default_branch"));
    if (out.default_branch.empty()) out.default_branch = as_string(member(repo, "master_branch"));
}

std::string actor(JsonRef root) {
    auto login = as_string(at(root, {"sender", "login"}));
    if (login.empty()) login = as_string(at(root, {"pusher", "name"}));
    return login;
}

result<void> normalize_push(JsonRef root, Event& event) {
    const auto ref = as_string_view(member(root, "ref"));
    if (!ref || ref->empty() || !as_object(member(root, "repository"))) {
        return errc::missing_field;
    }
    event.ref = std::string(*ref);
    event.branch = detail::strip_prefix(*ref, "refs/heads/");
    event.tag = detail::strip_prefix(*ref, "refs/tags/");
    // Pushes to other refs (notes, GitHub's own refs) are neither a branch nor a tag build.
    event.kind = !event.branch.empty() ? EventKind::push
                 : !event.tag.empty()  ? EventKind::tag
                                       : EventKind::other;

    event.before = as_string(member(root, "before"));
    event.after = as_string(member(root, "after"));
    // The flags are always sent; the zero-sha fallback only serves hand-made or trimmed payloads.
    event.created = as_bool(member(root, "created")).value_or(is_zero_sha(event.before));
    event.deleted = as_bool(member(root, "deleted")).value_or(is_zero_sha(event.after));
    event.forced = as_bool(member(root, "forced")).value_or(false);

    const auto commits = as_array(member(root, "commits"));
    const auto head = member(root, "head_commit");
    if (!event.deleted) {
        // head_commit is the peeled commit, which matters when `after` is an annotated tag object.
        event.commit = as_string(member(head, "id"));
        if (event.commit.empty()) event.commit = event.after;
        if (is_zero_sha(event.commit)) event.commit.clear();
    }
    if (const auto commit = detail::find_commit(commits, event.after)) {
        event.message = as_string(member(commit, "message"));
    } else {
        event.message = as_string(member(head, "message"));
    }
    event.changed_files = detail::collect_changed_files(commits);
    event.changed_files_complete = commits.size() < k_commit_cap;
    return {};
}

result<void> normalize_pull_request(JsonRef root, Event& event) {
    const auto pr = member(root, "pull_request");
    if (!as_object(pr) || !as_object(member(root, "repository"))) {
        return errc::missing_field;
    }
    auto number = as_int(member(pr, "number"));
    if (!number) number = as_int(member(root, "number"));
    if (!number || *number <= 0) return errc::missing_field;

    event.kind = EventKind::pull_request;
    PullRequest facts;
    facts.number = *number;
    facts.title = as_string(member(pr, "title"));
    facts.url = as_string(member(pr, "html_url"));
    facts.source_branch = as_string(at(pr, {"head", "ref"}));
    facts.target_branch = as_string(at(pr, {"base", "ref"}));
    facts.head_sha = as_string(at(pr, {"head", "sha"}));
    facts.merge_commit_sha = as_string(member(pr, "merge_commit_sha"));
    facts.merged = as_bool(member(pr, "merged")).value_or(false);
    facts.draft = as_bool(member(pr, "draft")).value_or(false);

    const auto head_repo = at(pr, {"head", "repo"});
    const auto base_repo = at(pr, {"base", "repo"});
    if (as_object(head_repo).is_object()) {
        facts.source_repository = as_string(member(head_repo, "full_name"));
        facts.source_clone_url = as_string(member(head_repo, "clone_url"));
        const auto head_id = as_int(member(head_repo, "id"));
        const auto base_id = as_int(member(base_repo, "id"));
        if (head_id && base_id) {
            facts.from_fork = *head_id != *base_id;
        } else {
            auto base_name = as_string(member(base_repo, "full_name"));
            if (base_name.empty()) base_name = as_string(at(root, {"repository", "full_name"}));
            facts.from_fork = facts.source_repository != base_name;
        }
    } else {
        // head.repo is null once the fork has been deleted: it was a fork, and untrusted code
        // must not be mistaken for a same-repository branch.
        facts.from_fork = true;
    }

    event.branch = facts.source_branch;
    event.ref = "refs/pull/" + std::to_string(facts.number) + "/head";
    event.commit = facts.head_sha;
    // Only `synchronize` carries the head's previous and new shas at the top level.
    event.before = as_string(member(root, "before"));
    event.after = as_string(member(root, "after"));
    event.pull_request = std::move(facts);
    return {};
}

void normalize_release(JsonRef root, Event& event) {
    event.kind = EventKind::release;
    const auto release = member(root, "release");
    event.tag = as_string(member(release, "tag_name"));
    event.message = as_string(member(release, "name"));
    // target_commitish is usually a branch name; only a full sha names the commit to build.
    const auto target = as_string(member(release, "target_commitish"));
    if (detail::is_full_sha(target)) event.commit = target;
}

}  // namespace

result<void> normalize(std::string_view event_name, JsonRef root, Event& event) {
    fill_repository(member(root, "repository"), event.repository);
    event.actor = actor(root);
    event.forge_action = as_string(member(root, "action"));

    if (event_name == "push") return normalize_push(root, event);

    // GitHub's action words are the model's; only push and tag have none.
    event.action = event.forge_action;
    if (event_name == "pull_request") return normalize_pull_request(root, event);
    if (event_name == "release") {
        normalize_release(root, event);
    } else if (event_name == "ping") {
        event.kind = EventKind::ping;
    } else {
        event.kind = EventKind::other;
    }
    return {};
}

}  // namespace hookrelay::ingest::github
