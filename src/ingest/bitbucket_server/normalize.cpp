#include "ingest/bitbucket_server/normalize.hpp"

#include "ingest/forge.hpp"
#include "ingest/json_access.hpp"

namespace hookrelay::ingest::bitbucket_server {
namespace {

using detail::as_array;
using detail::as_bool;
using detail::as_int;
using detail::as_object;
using detail::as_string;
using detail::as_string_view;
using detail::at;
using detail::member;

// links.clone is [{"name": "http", "href": ...}, {"name": "ssh", "href": ...}].
std::string clone_link(JsonRef repo, std::string_view name) {
    const auto links = as_array(at(repo, {"links", "clone"}));
    for (const JsonRef link : links.elements()) {
        if (as_string_view(member(link, "name")) == name) return as_string(member(link, "href"));
    }
    return {};
}

// links.self is a list of {"href"}.
std::string first_self_link(JsonRef v) {
    const auto links = as_array(at(v, {"links", "self"}));
    if (links.size() == 0) return {};
    return as_string(member(links.element(0), "href"));
}

std::string full_name(JsonRef repo) {
    const auto key = as_string(at(repo, {"project", "key"}));
    const auto slug = as_string(member(repo, "slug"));
    if (key.empty() || slug.empty()) return slug;
    return key + "/" + slug;
}

void fill_repository(JsonRef repo, Repository& out) {
    if (!as_object(repo)) return;
    // The project key (upper case; personal projects: ~USER) and the slug name it in URLs.
    out.full_name = full_name(repo);
    out.namespace_ = as_string(at(repo, {"project", "key"}));
    out.name = as_string(member(repo, "slug"));
    out.clone_url = clone_link(repo, "http");
    out.ssh_url = clone_link(repo, "ssh");
    out.web_url = first_self_link(repo);
}

std::string user_name(JsonRef user) {
    auto name = as_string(member(user, "name"));
    if (name.empty()) name = as_string(member(user, "slug"));
    return name;
}

// The message of commit `id` when the payload lists it: `commits` (newest first) or
// `toCommit`, both only in newer versions.
std::string message_of(JsonRef root, std::string_view id) {
    if (const auto c = detail::find_commit(as_array(member(root, "commits")), id)) {
        return as_string(member(c, "message"));
    }
    const auto to_commit = member(root, "toCommit");
    if (!id.empty() && as_string_view(member(to_commit, "id")) == id) {
        return as_string(member(to_commit, "message"));
    }
    return {};
}

void fill_change(JsonRef root, JsonRef change, Event& event) {
    auto ref = as_string(at(change, {"ref", "id"}));
    if (ref.empty()) ref = as_string(member(change, "refId"));
    event.branch = detail::strip_prefix(ref, "refs/heads/");
    event.tag = detail::strip_prefix(ref, "refs/tags/");
    event.ref = std::move(ref);
    event.kind = !event.branch.empty() ? EventKind::push
                 : !event.tag.empty()  ? EventKind::tag
                                       : EventKind::other;
    event.before = as_string(member(change, "fromHash"));
    event.after = as_string(member(change, "toHash"));
    const auto type = as_string_view(member(change, "type")).value_or("");
    event.created = type == "ADD" || is_zero_sha(event.before);
    event.deleted = type == "DELETE" || is_zero_sha(event.after);
    if (!event.deleted) {
        event.commit = event.after;
        event.message = message_of(root, event.commit);
    }
    // No file lists in any version.
    event.changed_files_complete = false;
}

result<void> normalize_refs_changed(JsonRef root, std::vector<Event>& events) {
    const auto changes = as_array(member(root, "changes"));
    if (changes.size() == 0) return errc::missing_field;
    if (changes.size() > k_max_events_per_delivery) return errc::too_many_events;
    const Event base = std::move(events.front());
    events.clear();
    events.reserve(changes.size());
    for (const JsonRef change : changes.elements()) {
        auto& event = events.emplace_back(base);
        fill_change(root, change, event);
    }
    return {};
}

bool map_pull_request_action(std::string_view key_action, Event& event) {
    if (key_action == "opened") {
        event.action = "opened";
    } else if (key_action == "from_ref_updated") {
        event.action = "synchronize";
    } else if (key_action == "modified") {
        event.action = "edited";
    } else if (key_action == "merged" || key_action == "declined" || key_action == "deleted") {
        event.action = "closed";
    } else if (key_action == "reviewer:approved") {
        event.action = "approved";
    } else if (key_action == "reviewer:unapproved") {
        event.action = "unapproved";
    } else {
        return false;
    }
    return true;
}

result<void> normalize_pull_request(JsonRef root, Event& event) {
    const auto pr = member(root, "pullRequest");
    if (!as_object(pr)) return errc::missing_field;
    const auto id = as_int(member(pr, "id"));
    if (!id || *id <= 0) return errc::missing_field;

    const auto from_repo = at(pr, {"fromRef", "repository"});
    const auto to_repo = at(pr, {"toRef", "repository"});
    fill_repository(to_repo, event.repository);

    event.kind = EventKind::pull_request;
    PullRequest facts;
    facts.number = *id;
    facts.title = as_string(member(pr, "title"));
    facts.url = first_self_link(pr);
    facts.source_branch = as_string(at(pr, {"fromRef", "displayId"}));
    facts.target_branch = as_string(at(pr, {"toRef", "displayId"}));
    facts.source_repository = full_name(from_repo);
    facts.source_clone_url = clone_link(from_repo, "http");
    facts.head_sha = as_string(at(pr, {"fromRef", "latestCommit"}));
    facts.merge_commit_sha = as_string(at(pr, {"properties", "mergeCommit", "id"}));
    facts.merged = as_string_view(member(pr, "state")) == std::string_view("MERGED");
    facts.draft = as_bool(member(pr, "draft")).value_or(false);
    const auto from_id = as_int(member(from_repo, "id"));
    const auto to_id = as_int(member(to_repo, "id"));
    if (from_id && to_id) {
        facts.from_fork = *from_id != *to_id;
    } else {
        facts.from_fork = facts.source_repository != event.repository.full_name;
    }

    event.branch = facts.source_branch;
    // Bitbucket keeps each pull request's source at refs/pull-requests/<id>/from in the target
    // repository.
    event.ref = "refs/pull-requests/" + std::to_string(facts.number) + "/from";
    event.commit = facts.head_sha;
    if (const auto previous = as_string(member(root, "previousFromHash")); !previous.empty()) {
        event.before = previous;
        event.after = facts.head_sha;
    }
    event.pull_request = std::move(facts);
    return {};
}

}  // namespace

result<void> normalize(std::string_view event_key, JsonRef root, std::vector<Event>& events) {
    auto& event = events.front();
    fill_repository(member(root, "repository"), event.repository);
    event.actor = user_name(member(root, "actor"));
    const auto colon = event_key.find(':');
    const auto group = event_key.substr(0, colon);
    const auto rest =
        colon == std::string_view::npos ? std::string_view{} : event_key.substr(colon + 1);

    if (event_key == "repo:refs_changed") return normalize_refs_changed(root, events);
    if (event_key == "diagnostics:ping") {
        event.kind = EventKind::ping;
        return {};
    }
    event.forge_action = std::string(rest);
    if (group == "pr" && map_pull_request_action(rest, event)) {
        return normalize_pull_request(root, event);
    }
    // Bitbucket Cloud's keys: its hook signs as this one's does, so only the key tells.
    if (event_key == "repo:push" || group == "pullrequest") return errc::other_forge_event;
    event.kind = EventKind::other;
    event.action = event.forge_action;
    return {};
}

}  // namespace hookrelay::ingest::bitbucket_server
