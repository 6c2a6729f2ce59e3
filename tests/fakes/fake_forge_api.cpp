#include "fakes/fake_forge_api.hpp"

#include "fakes/http_text.hpp"
#include "fakes/loopback_server.hpp"

#include <hookrelay/headers.hpp>

#include <boost/beast/http/status.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <tuple>

namespace hookrelay::test {

namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;
using Headers = std::vector<std::pair<std::string, std::string>>;
using Request = LoopbackServer::Request;

constexpr std::size_t k_github_description_limit = 140;

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> out;
    while (!path.empty()) {
        if (path.front() == '/') {
            path.remove_prefix(1);
            continue;
        }
        const auto slash = path.find('/');
        out.push_back(path.substr(0, slash));
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
    }
    return out;
}

std::size_t code_points(std::string_view text) {
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

std::string text_of(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

struct Answer {
    int status = 201;
    std::string body;
    Headers headers;
};

Answer json_answer(int status, const json::value& body) {
    return Answer{status, json::serialize(body), {}};
}

Answer message_answer(int status, std::string_view message) {
    return json_answer(status, json::object{{"message", message}});
}

// Bitbucket Cloud's check of a link: Django's URLValidator, its pattern written out for ASCII
// (schemes http(s) and ftp(s); user info; an IPv4 address, an IPv6 literal, localhost, or a host
// name whose top level is two or more letters or xn--...; a port; a path).
bool valid_cloud_url(const std::string& url) {
    static const std::regex k_url(
        R"(^(?:http|ftp)s?://(?:[^\s:@/]+(?::[^\s:@/]*)?@)?)"
        R"((?:(?:(?:25[0-5]|2[0-4]\d|[01]?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|[01]?\d?\d)){3})"
        R"(|\[[0-9a-f:.]+\])"
        R"(|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*)"
        R"(\.(?:[a-z](?:[a-z-]{0,61}[a-z])?|xn--[a-z0-9]{1,59})\.?)"
        R"(|localhost))(?::\d{1,5})?(?:[/?#]\S*)?$)",
        std::regex::icase | std::regex::ECMAScript);
    return std::regex_match(url, k_url);
}

// GitLab's open status of one project, sha and name: pending or running.
using OpenKey = std::tuple<std::string, std::string, std::string>;

}  // namespace

std::string PostedStatus::header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
        if (iequals(k, name)) return v;
    }
    return {};
}

struct FakeForgeApi::Impl {
    explicit Impl(Options opts) : options(std::move(opts)) {}

    Options options;
    mutable std::mutex mutex;  // guards everything below
    std::condition_variable changed;
    std::vector<PostedStatus> posted;
    std::map<OpenKey, std::string> open;  // GitLab: the open status' state
    int fail_count = 0;
    int fail_status = 0;
    std::string fail_retry_after;
    std::string fail_body;
    Headers fail_headers;
    long next_id = 1;
    // Not guarded; last, so it goes first: it calls answer_to() on its thread until it is gone.
    std::optional<LoopbackServer> server;

    // The server's answer: JSON, as the forges send it.
    LoopbackServer::Answer answer_to(const Request& request) {
        Answer answer = handle(request);
        LoopbackServer::Answer out;
        out.status = answer.status;
        out.headers = {{"Server", "fake-forge-api"},
                       {"Content-Type", "application/json; charset=utf-8"}};
        out.headers.insert(out.headers.end(), answer.headers.begin(), answer.headers.end());
        out.body = std::move(answer.body);
        return out;
    }

    // Routes, answers and records one request (io thread).
    Answer handle(const Request& request) {
        PostedStatus post;
        post.target = std::string(request.target());
        post.at = std::chrono::steady_clock::now();
        for (const auto& field : request) {
            post.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
        }
        const std::string_view target = request.target();
        const auto segments = split_path(target.substr(0, target.find('?')));
        const auto n = segments.size();
        const bool is_post = request.method() == bhttp::verb::post;
        // .../repos/{owner}/{repo}/statuses/{sha} (GitHub; Gitea and Forgejo under /api/v1),
        // .../projects/{id}/statuses/{sha} (GitLab),
        // .../repositories/{workspace}/{slug}/commit/{sha}/statuses/build (Bitbucket Cloud),
        // .../rest/api/latest/projects/{key}/repos/{slug}/commits/{sha}/builds (Data Center).
        if (is_post && n >= 7 && segments[n - 7] == "repositories" && segments[n - 4] == "commit" &&
            segments[n - 2] == "statuses" && segments[n - 1] == "build") {
            post.forge = "bitbucket-cloud";
            post.repository = percent_decode(segments[n - 6], false) + "/" +
                              percent_decode(segments[n - 5], false);
            post.sha = percent_decode(segments[n - 3], false);
        } else if (is_post && n >= 10 && segments[n - 10] == "rest" && segments[n - 9] == "api" &&
                   segments[n - 7] == "projects" && segments[n - 5] == "repos" &&
                   segments[n - 3] == "commits" && segments[n - 1] == "builds") {
            post.forge = "bitbucket-server";
            post.repository = percent_decode(segments[n - 6], false) + "/" +
                              percent_decode(segments[n - 4], false);
            post.sha = percent_decode(segments[n - 2], false);
        } else if (is_post && n >= 5 && segments[n - 5] == "repos" &&
                   segments[n - 2] == "statuses") {
            const bool gitea = n >= 7 && segments[n - 7] == "api" && segments[n - 6] == "v1";
            post.forge = gitea ? "gitea" : "github";
            post.repository = percent_decode(segments[n - 4], false) + "/" +
                              percent_decode(segments[n - 3], false);
            post.sha = percent_decode(segments[n - 1], false);
        } else if (request.method() == bhttp::verb::post && n >= 4 &&
                   segments[n - 4] == "projects" && segments[n - 2] == "statuses") {
            post.forge = "gitlab";
            post.repository = percent_decode(segments[n - 3], false);
            post.sha = percent_decode(segments[n - 1], false);
        } else {
            return message_answer(404, "Not Found");
        }

        std::unique_lock lock(mutex);
        const Answer answer = post.forge == "gitlab"                ? gitlab(request, post)
                              : post.forge.starts_with("bitbucket") ? bitbucket(request, post)
                                                                    : github(request, post);
        post.status = answer.status;
        post.answer = answer.body;
        posted.push_back(std::move(post));
        lock.unlock();
        changed.notify_all();
        return answer;
    }

    // Bitbucket: Cloud {"type": "error", "error": {"message", "fields"}}, Data Center
    // {"errors": [{"context", "message", "exceptionName"}]}.
    static Answer bitbucket_error(const PostedStatus& post, int status, std::string message,
                                  std::string field = "") {
        if (post.forge == "bitbucket-cloud") {
            json::object error{{"message", message}};
            if (!field.empty()) {
                error["fields"] = json::object{{field, json::array{"This field is required."}}};
            }
            return json_answer(status, json::object{{"type", "error"}, {"error", error}});
        }
        return json_answer(
            status, json::object{{"errors", json::array{json::object{
                                                {"context", field.empty() ? json::value(nullptr)
                                                                          : json::value(field)},
                                                {"message", message},
                                                {"exceptionName", nullptr}}}}});
    }

    // Both Bitbucket flavours: a Bearer access token; key, state and url required; a post with
    // a key the commit has replaces that status. Cloud answers 201 with the status, Data Center
    // 204.
    Answer bitbucket(const Request& request, PostedStatus& post) {
        const auto auth = request.find(bhttp::field::authorization);
        if (auth == request.end() || auth->value() != "Bearer " + options.token) {
            return bitbucket_error(post, 401,
                                   "Authentication failed. Please check your "
                                   "credentials and try again.");
        }
        if (auto failure = scripted_failure()) return *failure;
        auto body = body_of(request);
        if (!body) return bitbucket_error(post, 400, "Bad request");
        const bool cloud = post.forge == "bitbucket-cloud";
        post.state = text_of(*body, "state");
        post.key = text_of(*body, "key");
        post.context = text_of(*body, "name");
        post.description = text_of(*body, "description");
        post.target_url = text_of(*body, "url");
        for (const char* required : {"key", "state", "url"}) {
            if (text_of(*body, required).empty()) {
                return bitbucket_error(post, 400, "Bad request", required);
            }
        }
        const auto too_long = [&](const char* field, std::size_t limit) {
            return bitbucket_error(post, 400,
                                   std::string(field) + ": Ensure this value has at most " +
                                       std::to_string(limit) + " characters",
                                   field);
        };
        if (cloud && post.key.size() > 40) return too_long("key", 40);
        if (post.target_url.size() > 450) return too_long("url", 450);
        if (code_points(post.context) > 255) return too_long("name", 255);
        if (cloud && !valid_cloud_url(post.target_url)) {
            return bitbucket_error(post, 400, "url: Enter a valid URL.", "url");
        }
        // Data Center as 7.x is: CANCELLED and UNKNOWN came in 8.0.
        const std::vector<std::string> states =
            cloud ? std::vector<std::string>{"INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"}
                  : std::vector<std::string>{"INPROGRESS", "SUCCESSFUL", "FAILED"};
        if (std::find(states.begin(), states.end(), post.state) == states.end()) {
            return bitbucket_error(post, 400, "state: '" + post.state + "' is not a valid choice",
                                   "state");
        }
        if (post.forge == "bitbucket-server") return Answer{204, "", {}};
        return json_answer(201, json::object{{"type", "commitstatus"},
                                             {"key", post.key},
                                             {"state", post.state},
                                             {"name", post.context},
                                             {"url", post.target_url},
                                             {"description", post.description}});
    }

    bool authorized(const Request& request, bool gitlab) const {
        const auto token = options.token;
        if (gitlab) {
            const auto it = request.find("PRIVATE-TOKEN");
            if (it != request.end() && it->value() == token) return true;
        }
        const auto it = request.find(bhttp::field::authorization);
        if (it == request.end()) return false;
        const std::string_view value = it->value();
        return value == "Bearer " + token || (!gitlab && value == "token " + token);
    }

    // A scripted failure, if one is due (mutex held).
    std::optional<Answer> scripted_failure() {
        if (fail_count <= 0) return std::nullopt;
        --fail_count;
        Answer a;
        a.status = fail_status;
        a.body = fail_body;
        if (a.body.empty()) {
            a.body = json::serialize(json::object{
                {"message", bhttp::obsolete_reason(static_cast<bhttp::status>(fail_status))}});
        }
        if (!fail_retry_after.empty()) a.headers.emplace_back("Retry-After", fail_retry_after);
        for (const auto& h : fail_headers) a.headers.push_back(h);
        return a;
    }

    // The request's JSON object, or nullopt.
    static std::optional<json::object> body_of(const Request& request) {
        boost::system::error_code ec;
        auto value = json::parse(request.body(), ec);
        if (ec || !value.is_object()) return std::nullopt;
        return std::move(value.as_object());
    }

    Answer github(const Request& request, PostedStatus& post) {
        if (!authorized(request, false)) {
            return json_answer(401,
                               json::object{{"message", "Bad credentials"},
                                            {"documentation_url", "https://docs.github.com/rest"}});
        }
        if (auto failure = scripted_failure()) return *failure;
        auto body = body_of(request);
        if (!body) return message_answer(400, "Problems parsing JSON");
        post.state = text_of(*body, "state");
        post.context = body->contains("context") ? text_of(*body, "context") : "default";
        post.description = text_of(*body, "description");
        post.target_url = text_of(*body, "target_url");
        auto invalid = [](std::string field, std::string code, std::string message) {
            json::object error{{"resource", "Status"}, {"field", field}, {"code", code}};
            if (!message.empty()) error["message"] = message;
            return json_answer(422, json::object{{"message", "Validation Failed"},
                                                 {"errors", json::array{error}}});
        };
        static const std::vector<std::string> k_states = {"error", "failure", "pending", "success"};
        if (std::find(k_states.begin(), k_states.end(), post.state) == k_states.end()) {
            return invalid("state", "invalid", "");
        }
        if (code_points(post.description) > k_github_description_limit) {
            return invalid("description", "custom",
                           "description is too long (maximum is 140 characters)");
        }
        return json_answer(201, json::object{{"id", next_id++},
                                             {"state", post.state},
                                             {"description", post.description},
                                             {"target_url", post.target_url},
                                             {"context", post.context}});
    }

    Answer gitlab(const Request& request, PostedStatus& post) {
        if (!authorized(request, true)) return message_answer(401, "401 Unauthorized");
        if (auto failure = scripted_failure()) return *failure;
        auto body = body_of(request);
        if (!body) return message_answer(400, "400 Bad request");
        post.state = text_of(*body, "state");
        post.context = text_of(*body, "name");
        if (post.context.empty()) post.context = text_of(*body, "context");
        if (post.context.empty()) post.context = "default";
        post.description = text_of(*body, "description");
        post.target_url = text_of(*body, "target_url");

        // The job the post updates: the open one of this project, sha and name, else a new one
        // ("created"). Then the state machine's event for the wanted state.
        const OpenKey key{post.repository, post.sha, post.context};
        const auto it = open.find(key);
        const std::string from = it == open.end() ? "created" : it->second;
        std::string event;
        bool allowed = false;
        const auto& to = post.state;
        if (to == "pending") {
            event = "enqueue";
            allowed = from == "created";
        } else if (to == "running") {
            event = "run";  // after a silent enqueue (created → pending)
            allowed = from == "created" || from == "pending";
        } else if (to == "success") {
            event = "success";
            allowed = true;
        } else if (to == "failed") {
            event = "drop";
            allowed = true;
        } else if (to == "canceled") {
            event = "cancel";
            allowed = true;
        } else if (to == "skipped") {
            event = "skip";
            allowed = from == "created";
        } else {
            return json_answer(400, json::object{{"error", "state does not have a valid value"}});
        }
        if (!allowed) {
            return message_answer(400, "Cannot transition status via :" + event + " from :" + from);
        }
        if (to == "pending" || to == "running") {
            open[key] = to;
        } else if (it != open.end()) {
            open.erase(it);
        }
        return json_answer(201, json::object{{"id", next_id++},
                                             {"sha", post.sha},
                                             {"status", post.state},
                                             {"name", post.context},
                                             {"description", post.description},
                                             {"target_url", post.target_url}});
    }
};

FakeForgeApi::FakeForgeApi() : FakeForgeApi(Options{}) {}

FakeForgeApi::FakeForgeApi(Options options) : impl_(std::make_shared<Impl>(std::move(options))) {
    auto& impl = *impl_;
    impl.server.emplace(
        LoopbackServer::Options{"FakeForgeApi", impl.options.tls, impl.options.cert_file,
                                impl.options.key_file, impl.options.port},
        [&impl](const Request& request) { return impl.answer_to(request); });
}

FakeForgeApi::~FakeForgeApi() {
    impl_->server.reset();
}

std::uint16_t FakeForgeApi::port() const {
    return impl_->server->port();
}

std::string FakeForgeApi::url() const {
    return impl_->server->url();
}

void FakeForgeApi::fail_next(int count, int status, std::string retry_after, std::string body,
                             std::vector<std::pair<std::string, std::string>> headers) {
    std::lock_guard lock(impl_->mutex);
    impl_->fail_count = count;
    impl_->fail_status = status;
    impl_->fail_retry_after = std::move(retry_after);
    impl_->fail_body = std::move(body);
    impl_->fail_headers = std::move(headers);
}

void FakeForgeApi::set_down(bool down) {
    if (down) {
        impl_->server->stop();
    } else {
        impl_->server->start();
    }
}

void FakeForgeApi::set_token(std::string token) {
    std::lock_guard lock(impl_->mutex);
    impl_->options.token = std::move(token);
}

std::vector<PostedStatus> FakeForgeApi::posts() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->posted;
}

std::vector<PostedStatus> FakeForgeApi::statuses() const {
    std::lock_guard lock(impl_->mutex);
    std::vector<PostedStatus> out;
    for (const auto& p : impl_->posted) {
        if (p.status >= 200 && p.status < 300) out.push_back(p);
    }
    return out;
}

bool FakeForgeApi::wait_for_statuses(std::size_t n, std::chrono::milliseconds deadline) {
    std::unique_lock lock(impl_->mutex);
    return impl_->changed.wait_for(lock, deadline, [&] {
        return static_cast<std::size_t>(std::count_if(
                   impl_->posted.begin(), impl_->posted.end(),
                   [](const auto& p) { return p.status >= 200 && p.status < 300; })) >= n;
    });
}

bool FakeForgeApi::wait_for_posts(std::size_t n, std::chrono::milliseconds deadline) {
    std::unique_lock lock(impl_->mutex);
    return impl_->changed.wait_for(lock, deadline, [&] { return impl_->posted.size() >= n; });
}

std::size_t FakeForgeApi::connections_accepted() const {
    return impl_->server->connections_accepted();
}

}  // namespace hookrelay::test
