#include "ingest/gitea/normalize.hpp"

#include "ingest/json_access.hpp"

namespace hookrelay::ingest::gitea {
namespace {

using detail::as_array;
using detail::as_bool;
using detail::as_int;
using detail::as_object;
using detail::as_string;
using detail::as_string_view;
using detail::at;
using detail::member;

// Without `total_commits` (older Gitea) the list may have been cut at [ui] FEED_MAX_COMMIT_NUM,
// 5 by default (Forgejo's own limit, 15, is higher): at 5 or more we cannot tell.
constexpr std::size_t k_default_commit_cap = 5;

void fill_repository(JsonRef repo, Repository& out) {
    if (!as_object(repo)) return;
    out.full_name = as_string(member(repo, "full_name"));
    out.name = as_string(member(repo, "name"));
    out.namespace_ = as_string(at(repo, {"owner", "login"}));
    if (out.namespace_.empty()) out.namespace_ = as_string(at(repo, {"owner", "username"}));
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
}

std::string user_name(JsonRef user) {
    auto login = as_string(member(user, "login"));
    if (login.empty()) login = as_string(member(user, "username"));
    return login;
}

std::string actor(JsonRef root) {
    auto name = user_name(member(root, "sender"));
    if (name.empty()) name = user_name(member(root, "pusher"));
    return name;
}

result<void> normalize_push(JsonRef root, Event& event) {
    const auto ref = as_string_view(member(root, "ref"));
    if (!ref || ref->empty() || !as_object(member(root, "repository"))) {
        return errc::missing_field;
    }
    event.ref = std::string(*ref);
    event.branch = detail::strip_prefix(*ref, "refs/heads/");
    event.tag = detail::strip_prefix(*ref, "refs/tags/");
    event.kind = !event.branch.empty() ? EventKind::push
                 : !event.tag.empty()  ? EventKind::tag
                                       : EventKind::other;

    event.before = as_string(member(root, "before"));
    event.after = as_string(member(root, "after"));
    // Gitea sends no created/deleted/forced flags.
    event.created = is_zero_sha(event.before);
    event.deleted = is_zero_sha(event.after);

    const auto commits = as_array(member(root, "commits"));
    const auto head = member(root, "head_commit");
    if (!event.deleted) {
        // head_commit is the commit even when `after` is an annotated tag object.
        event.commit = as_string(member(head, "id"));
        if (event.commit.empty()) event.commit = event.after;
        if (is_zero_sha(event.commit)) event.commit.clear();
    }
    // Newest first: the head is found by id, never by position.
    if (const auto commit = detail::find_commit(commits, event.after)) {
        event.message = as_string(member(commit, "message"));
    } else {
        event.message = as_string(member(head, "message"));
    }
    event.changed_files = detail::collect_changed_files(commits);
    const auto listed = commits.size();
    if (const auto total = as_int(member(root, "total_commits"))) {
        event.changed_files_complete = *total <= static_cast<std::int64_t>(listed);
    } else {
        event.changed_files_complete = listed < k_default_commit_cap;
    }
    return {};
}

// `ref` of a create/delete event: a bare name ("feature") in most versions, a full ref in
// some; `ref_type` says which kind.
std::string short_ref(std::string_view ref, std::string_view prefix) {
    if (ref.starts_with(prefix)) return std::string(ref.substr(prefix.size()));
    return std::string(ref);
}

result<void> normalize_delete(JsonRef root, Event& event) {
    if (as_string_view(member(root, "ref_type")) != std::string_view("branch")) {
        // A deleted tag also arrives as a push with a zero `after`, which carries it.
        event.kind = EventKind::other;
        return {};
    }
    const auto ref = as_string_view(member(root, "ref"));
    if (!ref || ref->empty() || !as_object(member(root, "repository"))) {
        return errc::missing_field;
    }
    // Gitea sends no push for a deleted branch: this is the deletion, as a push with
    // deleted = true on every other forge. Gitea names no shas here.
    event.kind = EventKind::push;
    event.branch = short_ref(*ref, "refs/heads/");
    event.ref = "refs/heads/" + event.branch;
    event.deleted = true;
    return {};
}

std::string map_pull_request_action(std::string_view action) {
    // Gitea's only word that differs from GitHub's for the same thing.
    if (action == "synchronized") return "synchronize";
    return std::string(action);
}

result<void> normalize_pull_request(JsonRef root, Event& event) {
    const auto pr = member(root, "pull_request");
    if (!as_object(pr) || !as_object(member(root, "repository"))) {
        return errc::missing_field;
    }
    auto number = as_int(member(root, "number"));
    if (!number) number = as_int(member(pr, "number"));
    if (!number || *number <= 0) return errc::missing_field;

    event.kind = EventKind::pull_request;
    event.action = map_pull_request_action(event.forge_action);
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
    facts.source_repository = as_string(member(head_repo, "full_name"));
    facts.source_clone_url = as_string(member(head_repo, "clone_url"));
    const auto head_id = as_int(at(pr, {"head", "repo_id"}));
    const auto base_id = as_int(at(pr, {"base", "repo_id"}));
    if (head_id && base_id) {
        facts.from_fork = *head_id != *base_id;
        // Some payloads name the head's repository by id alone; the same id is this one.
        if (!facts.from_fork && facts.source_repository.empty()) {
            facts.source_repository = event.repository.full_name;
            facts.source_clone_url = event.repository.clone_url;
        }
    } else if (!facts.source_repository.empty()) {
        auto base_name = as_string(at(pr, {"base", "repo", "full_name"}));
        if (base_name.empty()) base_name = as_string(at(root, {"repository", "full_name"}));
        facts.from_fork = facts.source_repository != base_name;
    } else {
        // Nothing says where the head lives: treated as untrusted, as GitHub's deleted forks.
        facts.from_fork = true;
    }

    event.branch = facts.source_branch;
    // Gitea keeps every pull request's head at refs/pull/<n>/head in the base repository.
    event.ref = "refs/pull/" + std::to_string(facts.number) + "/head";
    event.commit = facts.head_sha;
    event.pull_request = std::move(facts);
    return {};
}

void normalize_release(JsonRef root, Event& event) {
    event.kind = EventKind::release;
    event.action = event.forge_action;
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
    if (event_name == "delete") return normalize_delete(root, event);
    if (event_name == "pull_request") return normalize_pull_request(root, event);
    if (event_name == "release") {
        normalize_release(root, event);
        return {};
    }
    // create (the push carries the build), issues, reviews, comments, wiki, ...
    event.kind = EventKind::other;
    event.action = event.forge_action;
    return {};
}

}  // namespace hookrelay::ingest::gitea
