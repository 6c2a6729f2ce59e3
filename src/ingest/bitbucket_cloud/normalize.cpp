#include "ingest/bitbucket_cloud/normalize.hpp"

#include "ingest/forge.hpp"
#include "ingest/json_access.hpp"

namespace hookrelay::ingest::bitbucket_cloud {
namespace {

using detail::as_array;
using detail::as_bool;
using detail::as_int;
using detail::as_object;
using detail::as_string;
using detail::as_string_view;
using detail::at;
using detail::member;

constexpr std::string_view k_default_web = "https://bitbucket.org";

// "https://bitbucket.org/acme/app" → "https://bitbucket.org"; the default for anything else.
std::string_view web_root(std::string_view web_url, std::string_view full_name) {
    if (!full_name.empty() && web_url.size() > full_name.size() + 1 &&
        web_url.ends_with(full_name) && web_url[web_url.size() - full_name.size() - 1] == '/') {
        return web_url.substr(0, web_url.size() - full_name.size() - 1);
    }
    return k_default_web;
}

std::string host_of(std::string_view root) {
    const auto scheme = root.find("://");
    if (scheme != std::string_view::npos) root.remove_prefix(scheme + 3);
    return std::string(root.substr(0, root.find('/')));
}

std::string https_clone_url(std::string_view root, std::string_view full_name) {
    if (full_name.empty()) return {};
    return std::string(root) + "/" + std::string(full_name) + ".git";
}

void fill_repository(JsonRef repo, Repository& out) {
    if (!as_object(repo)) return;
    // full_name is "workspace/slug"; `name` is a display name that may differ from the slug.
    out.full_name = as_string(member(repo, "full_name"));
    detail::split_full_name(out.full_name, out.namespace_, out.name);
    out.web_url = as_string(at(repo, {"links", "html", "href"}));
    // Payloads carry no clone links; Bitbucket's are derived from the repository's address.
    const auto root = web_root(out.web_url, out.full_name);
    out.clone_url = https_clone_url(root, out.full_name);
    if (!out.full_name.empty()) out.ssh_url = "git@" + host_of(root) + ":" + out.full_name + ".git";
    out.default_branch = as_string(at(repo, {"mainbranch", "name"}));
}

std::string user_name(JsonRef user) {
    // `username` went away with Atlassian's privacy changes; `nickname` replaced it.
    auto name = as_string(member(user, "username"));
    if (name.empty()) name = as_string(member(user, "nickname"));
    return name;
}

void fill_change(JsonRef change, Event& event) {
    const auto new_ref = member(change, "new");
    const auto old_ref = member(change, "old");
    const bool has_new = as_object(new_ref).is_object();
    const bool has_old = as_object(old_ref).is_object();
    const auto ref = has_new ? new_ref : old_ref;
    const auto type = as_string_view(member(ref, "type")).value_or("");
    const auto name = as_string(member(ref, "name"));
    if (!name.empty() && (type == "branch" || type == "named_branch")) {
        event.kind = EventKind::push;
        event.branch = name;
        event.ref = "refs/heads/" + name;
    } else if (!name.empty() && type == "tag") {
        event.kind = EventKind::tag;
        event.tag = name;
        event.ref = "refs/tags/" + name;
    } else {
        // Mercurial bookmarks and anything newer: not a branch or tag build.
        event.kind = EventKind::other;
    }
    event.before = as_string(at(old_ref, {"target", "hash"}));
    event.after = as_string(at(new_ref, {"target", "hash"}));
    event.created = as_bool(member(change, "created")).value_or(!has_old);
    event.deleted = as_bool(member(change, "closed")).value_or(!has_new);
    event.forced = as_bool(member(change, "forced")).value_or(false);
    if (!event.deleted) {
        // new.target is the commit, also for an annotated tag (its own message is new.message).
        event.commit = event.after;
        event.message = as_string(at(new_ref, {"target", "message"}));
    }
    // Bitbucket lists at most 5 commits per change and no files at all.
    event.changed_files_complete = false;
}

result<void> normalize_push(JsonRef root, std::vector<Event>& events) {
    const auto changes = as_array(at(root, {"push", "changes"}));
    if (changes.size() == 0) return errc::missing_field;
    if (changes.size() > k_max_events_per_delivery) return errc::too_many_events;
    const Event base = std::move(events.front());
    events.clear();
    events.reserve(changes.size());
    for (const JsonRef change : changes.elements()) {
        auto& event = events.emplace_back(base);
        fill_change(change, event);
    }
    return {};
}

// Only a full sha names a commit Jenkins can fetch; pull request payloads carry 12-digit
// abbreviations.
std::string full_sha(JsonRef v) {
    auto sha = as_string(v);
    if (!detail::is_full_sha(sha)) sha.clear();
    return sha;
}

bool map_pull_request_action(std::string_view key_action, Event& event) {
    if (key_action == "created") {
        event.action = "opened";
    } else if (key_action == "updated") {
        // New commits or an edit of title, description, reviewers: Bitbucket does not say which,
        // and a missed build is worse than an extra one.
        event.action = "synchronize";
    } else if (key_action == "fulfilled" || key_action == "rejected") {
        event.action = "closed";
    } else if (key_action == "approved" || key_action == "unapproved") {
        event.action = std::string(key_action);
    } else {
        return false;
    }
    return true;
}

result<void> normalize_pull_request(JsonRef root, Event& event) {
    const auto pr = member(root, "pullrequest");
    if (!as_object(pr)) return errc::missing_field;
    const auto id = as_int(member(pr, "id"));
    if (!id || *id <= 0) return errc::missing_field;

    event.kind = EventKind::pull_request;
    PullRequest facts;
    facts.number = *id;
    facts.title = as_string(member(pr, "title"));
    facts.url = as_string(at(pr, {"links", "html", "href"}));
    facts.source_branch = as_string(at(pr, {"source", "branch", "name"}));
    facts.target_branch = as_string(at(pr, {"destination", "branch", "name"}));
    facts.source_repository = as_string(at(pr, {"source", "repository", "full_name"}));
    const auto source_web = as_string(at(pr, {"source", "repository", "links", "html", "href"}));
    facts.source_clone_url = https_clone_url(
        web_root(source_web.empty() ? event.repository.web_url : source_web,
                 source_web.empty() ? event.repository.full_name : facts.source_repository),
        facts.source_repository);
    facts.head_sha = full_sha(at(pr, {"source", "commit", "hash"}));
    if (facts.head_sha.empty()) {
        auto abbrev = as_string(at(pr, {"source", "commit", "hash"}));
        if (abbrev.size() >= 7 && abbrev.size() < 40 &&
            abbrev.find_first_not_of("0123456789abcdef") == std::string::npos) {
            facts.head_sha_abbrev = std::move(abbrev);
        }
    }
    facts.merge_commit_sha = full_sha(at(pr, {"merge_commit", "hash"}));
    facts.merged = as_string_view(member(pr, "state")) == std::string_view("MERGED");
    facts.draft = as_bool(member(pr, "draft")).value_or(false);
    const auto source_uuid = as_string(at(pr, {"source", "repository", "uuid"}));
    const auto target_uuid = as_string(at(pr, {"destination", "repository", "uuid"}));
    if (!source_uuid.empty() && !target_uuid.empty()) {
        facts.from_fork = source_uuid != target_uuid;
    } else {
        auto target = as_string(at(pr, {"destination", "repository", "full_name"}));
        if (target.empty()) target = event.repository.full_name;
        facts.from_fork = facts.source_repository != target;
    }
    event.branch = facts.source_branch;
    event.commit = facts.head_sha;
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
    event.forge_action =
        colon == std::string_view::npos ? std::string() : std::string(event_key.substr(colon + 1));

    if (event_key == "repo:push") {
        // A push carries no action; the key names the event.
        event.forge_action.clear();
        return normalize_push(root, events);
    }
    if (group == "pullrequest" && map_pull_request_action(event.forge_action, event)) {
        return normalize_pull_request(root, event);
    }
    // Bitbucket Data Center's keys: its hook signs as this one's does, so only the key tells.
    if (event_key == "repo:refs_changed" || group == "pr" || event_key == "diagnostics:ping") {
        return errc::other_forge_event;
    }
    event.kind = EventKind::other;
    event.action = event.forge_action;
    return {};
}

}  // namespace hookrelay::ingest::bitbucket_cloud
