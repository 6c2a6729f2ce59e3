#include <hookrelay/event.hpp>
#include <hookrelay/json_document.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>

namespace hookrelay {

std::string_view to_string(EventKind kind) noexcept {
    switch (kind) {
        case EventKind::push:
            return "push";
        case EventKind::tag:
            return "tag";
        case EventKind::pull_request:
            return "pull_request";
        case EventKind::release:
            return "release";
        case EventKind::ping:
            return "ping";
        case EventKind::other:
            return "other";
    }
    return "other";
}

namespace {

// Indexed by Provider; the names are what the store records, so they never change.
constexpr std::array<std::string_view, 7> k_provider_names = {
    "github", "gitlab", "gitea", "forgejo", "bitbucket-cloud", "bitbucket-server", "generic",
};
constexpr std::array k_providers = {
    Provider::github,          Provider::gitlab,           Provider::gitea,   Provider::forgejo,
    Provider::bitbucket_cloud, Provider::bitbucket_server, Provider::generic,
};
static_assert(k_providers.size() == k_provider_names.size());
constexpr bool in_enum_order() {
    for (std::size_t i = 0; i < k_providers.size(); ++i) {
        if (static_cast<std::size_t>(k_providers[i]) != i) return false;
    }
    return true;
}
static_assert(in_enum_order());

}  // namespace

std::string_view to_string(Provider provider) noexcept {
    const auto index = static_cast<std::size_t>(provider);
    return index < k_provider_names.size() ? k_provider_names[index] : "unknown";
}

std::optional<Provider> provider_from_string(std::string_view name) noexcept {
    for (const auto provider : k_providers) {
        if (to_string(provider) == name) return provider;
    }
    return std::nullopt;
}

std::span<const Provider> providers() noexcept {
    return k_providers;
}

bool is_zero_sha(std::string_view sha) noexcept {
    return !sha.empty() && std::all_of(sha.begin(), sha.end(), [](char c) { return c == '0'; });
}

std::string_view ref_name(std::string_view ref) noexcept {
    for (std::string_view prefix : {"refs/heads/", "refs/tags/"}) {
        if (ref.starts_with(prefix)) return ref.substr(prefix.size());
    }
    return ref;
}

std::string ref_label(std::string_view ref) {
    struct Form {
        std::string_view prefix, suffix, label;
    };
    static constexpr Form k_forms[] = {{"refs/pull/", "/head", "PR #"},
                                       {"refs/pull-requests/", "/from", "PR #"},
                                       {"refs/merge-requests/", "/head", "MR !"}};
    for (const auto& form : k_forms) {
        if (!ref.starts_with(form.prefix) || !ref.ends_with(form.suffix)) continue;
        const auto number =
            ref.substr(form.prefix.size(), ref.size() - form.prefix.size() - form.suffix.size());
        if (!number.empty() && number.size() <= 18 &&
            std::all_of(number.begin(), number.end(),
                        [](char c) { return c >= '0' && c <= '9'; })) {
            return std::string(form.label) + std::string(number);
        }
    }
    return std::string(ref_name(ref));
}

namespace {

std::optional<std::string> text(const std::string& s) {
    if (s.empty()) return std::nullopt;
    return s;
}

std::optional<std::string> flag(bool b) {
    return std::string(b ? "true" : "false");
}

std::optional<std::string> payload_field(JsonRef v, std::string_view path) {
    while (v && !path.empty()) {
        const auto dot = path.find('.');
        const auto key = path.substr(0, dot);
        path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
        if (v.is_object()) {
            v = v.member(key);
        } else if (v.is_array()) {
            std::size_t index = 0;
            const auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), index);
            if (ec != std::errc{} || ptr != key.data() + key.size()) return std::nullopt;
            v = v.element(index);
        } else {
            return std::nullopt;
        }
    }
    if (!v) return std::nullopt;
    switch (v.kind()) {
        case JsonRef::Kind::null:
            return std::nullopt;
        case JsonRef::Kind::string:
            return text(std::string(*v.string()));
        case JsonRef::Kind::boolean:
            return flag(*v.boolean());
        case JsonRef::Kind::int64:
            return std::to_string(*v.int64());
        case JsonRef::Kind::uint64:
            return std::to_string(*v.uint64());
        default:
            return v.serialize();
    }
}

std::optional<std::string> pull_request_field(const PullRequest& pr, std::string_view name) {
    if (name == "number") return std::to_string(pr.number);
    if (name == "title") return text(pr.title);
    if (name == "url") return text(pr.url);
    if (name == "source_branch") return text(pr.source_branch);
    if (name == "target_branch") return text(pr.target_branch);
    if (name == "source_repository") return text(pr.source_repository);
    if (name == "source_clone_url") return text(pr.source_clone_url);
    if (name == "head_sha") return text(pr.head_sha);
    if (name == "merge_commit_sha") return text(pr.merge_commit_sha);
    if (name == "merged") return flag(pr.merged);
    if (name == "draft") return flag(pr.draft);
    if (name == "from_fork") return flag(pr.from_fork);
    return std::nullopt;
}

std::optional<std::string> repository_field(const Repository& r, std::string_view name) {
    if (name == "full_name") return text(r.full_name);
    if (name == "name") return text(r.name);
    if (name == "namespace") return text(r.namespace_);
    if (name == "clone_url") return text(r.clone_url);
    if (name == "ssh_url") return text(r.ssh_url);
    if (name == "web_url") return text(r.web_url);
    if (name == "default_branch") return text(r.default_branch);
    return std::nullopt;
}

}  // namespace

const std::vector<std::string_view>& event_field_names() noexcept {
    static const std::vector<std::string_view> names = {
        "source",
        "provider",
        "delivery_id",
        "event",
        "forge_event",
        "action",
        "forge_action",
        "repository",
        "repository.full_name",
        "repository.name",
        "repository.namespace",
        "repository.clone_url",
        "repository.ssh_url",
        "repository.web_url",
        "repository.default_branch",
        "ref",
        "branch",
        "tag",
        "before",
        "after",
        "commit",
        "created",
        "deleted",
        "forced",
        "actor",
        "message",
        "changed_files",
        "changed_files_complete",
        "pull_request.number",
        "pull_request.title",
        "pull_request.url",
        "pull_request.source_branch",
        "pull_request.target_branch",
        "pull_request.source_repository",
        "pull_request.source_clone_url",
        "pull_request.head_sha",
        "pull_request.merge_commit_sha",
        "pull_request.merged",
        "pull_request.draft",
        "pull_request.from_fork",
    };
    return names;
}

bool is_event_field(std::string_view path) noexcept {
    if (path.starts_with("payload.") && path.size() > 8) return true;
    const auto& names = event_field_names();
    return std::find(names.begin(), names.end(), path) != names.end();
}

std::optional<std::string> event_field(const Event& e, std::string_view path) {
    if (path.starts_with("payload.")) {
        if (!e.payload) return std::nullopt;
        return payload_field(e.payload->root(), path.substr(8));
    }
    if (path.starts_with("repository.")) return repository_field(e.repository, path.substr(11));
    if (path.starts_with("pull_request.")) {
        if (!e.pull_request) return std::nullopt;
        return pull_request_field(*e.pull_request, path.substr(13));
    }
    if (path == "source") return text(e.source);
    if (path == "provider") return std::string(to_string(e.provider));
    if (path == "delivery_id") return text(e.delivery_id);
    if (path == "event") return std::string(to_string(e.kind));
    if (path == "forge_event") return text(e.forge_event);
    if (path == "action") return text(e.action);
    if (path == "forge_action") return text(e.forge_action);
    if (path == "repository") return text(e.repository.full_name);
    if (path == "ref") return text(e.ref);
    if (path == "branch") return text(e.branch);
    if (path == "tag") return text(e.tag);
    if (path == "before") return text(e.before);
    if (path == "after") return text(e.after);
    if (path == "commit") return text(e.commit);
    if (path == "created") return flag(e.created);
    if (path == "deleted") return flag(e.deleted);
    if (path == "forced") return flag(e.forced);
    if (path == "actor") return text(e.actor);
    if (path == "message") return text(e.message);
    if (path == "changed_files_complete") return flag(e.changed_files_complete);
    if (path == "changed_files") {
        if (e.changed_files.empty()) return std::nullopt;
        std::string joined;
        for (const auto& f : e.changed_files) {
            if (!joined.empty()) joined += ',';
            joined += f;
        }
        return joined;
    }
    return std::nullopt;
}

boost::json::value to_json(const Event& e) {
    boost::json::object repo{
        {"full_name", e.repository.full_name},
        {"name", e.repository.name},
        {"namespace", e.repository.namespace_},
        {"clone_url", e.repository.clone_url},
        {"ssh_url", e.repository.ssh_url},
        {"web_url", e.repository.web_url},
        {"default_branch", e.repository.default_branch},
    };
    boost::json::array files;
    for (const auto& f : e.changed_files) files.emplace_back(f);
    boost::json::object out{
        {"source", e.source},
        {"provider", to_string(e.provider)},
        {"delivery_id", e.delivery_id},
        {"event", to_string(e.kind)},
        {"forge_event", e.forge_event},
        {"action", e.action},
        {"forge_action", e.forge_action},
        {"repository", std::move(repo)},
        {"ref", e.ref},
        {"branch", e.branch},
        {"tag", e.tag},
        {"before", e.before},
        {"after", e.after},
        {"commit", e.commit},
        {"created", e.created},
        {"deleted", e.deleted},
        {"forced", e.forced},
        {"actor", e.actor},
        {"message", e.message},
        {"changed_files", std::move(files)},
        {"changed_files_complete", e.changed_files_complete},
    };
    if (e.pull_request) {
        const auto& pr = *e.pull_request;
        out["pull_request"] = boost::json::object{
            {"number", pr.number},
            {"title", pr.title},
            {"url", pr.url},
            {"source_branch", pr.source_branch},
            {"target_branch", pr.target_branch},
            {"source_repository", pr.source_repository},
            {"source_clone_url", pr.source_clone_url},
            {"head_sha", pr.head_sha},
            {"merge_commit_sha", pr.merge_commit_sha},
            {"merged", pr.merged},
            {"draft", pr.draft},
            {"from_fork", pr.from_fork},
        };
    } else {
        out["pull_request"] = nullptr;
    }
    return out;
}

}  // namespace hookrelay
