#include "forge_status/status_client.hpp"

#include "forge_status/requests.hpp"
#include "httpclient/client.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <utility>

namespace hookrelay::forge_status {

namespace {

namespace asio = boost::asio;
using Kind = PostResult::Kind;

PostResult refused(std::string detail) {
    PostResult out;
    out.kind = Kind::refused;
    out.detail = std::move(detail);
    return out;
}

// One source's status API (its forge's), on one pooled HTTP client.
class ForgeStatusClient final : public StatusClient,
                                public std::enable_shared_from_this<ForgeStatusClient> {
  public:
    ForgeStatusClient(std::string source, Provider provider,
                      std::shared_ptr<httpclient::Client> http, Secret token)
        : source_(std::move(source)),
          provider_(provider),
          http_(std::move(http)),
          token_(std::move(token)) {}

    asio::awaitable<PostResult> post(StatusTarget target, StatusWish wish) override {
        auto self = shared_from_this();
        try {
            std::string why;
            auto request = make_request(target, wish, why);
            if (!request) co_return refused(std::move(why));
            auto exchange = co_await http_->request(std::move(*request));
            if (!exchange.ok) {
                // No answer (refused, reset, timeout): the forge may be back soon.
                PostResult out;
                out.kind = Kind::retry;
                out.detail = std::move(exchange.error);
                co_return out;
            }
            co_return classify(provider_, exchange.response, std::chrono::system_clock::now(),
                               token_.reveal());
        } catch (const std::exception& e) {
            PostResult out;
            out.kind = Kind::retry;
            out.detail = std::string("internal error: ") + e.what();
            co_return out;
        }
    }

  private:
    // The post for `wish`, or nullopt with the reason it cannot be made.
    std::optional<httpclient::Request> make_request(const StatusTarget& target,
                                                    const StatusWish& wish,
                                                    std::string& why) const {
        httpclient::Request request;
        request.method = httpclient::Method::post;
        std::optional<std::string> path;
        std::optional<std::string> body;
        const auto& base = http_->base();
        switch (provider_) {
            case Provider::github:
                path = github_target(base.path, target.repository, target.sha, why);
                body = github_body(target, wish);
                request.headers = {
                    {"Authorization", "Bearer " + std::string(token_.reveal())},
                    {"Accept", "application/vnd.github+json"},
                    {"X-GitHub-Api-Version", "2022-11-28"},
                };
                break;
            case Provider::gitlab:
                path = gitlab_target(base.path, target.repository, target.sha, why);
                body = gitlab_body(target, wish);
                request.headers = {{"PRIVATE-TOKEN", std::string(token_.reveal())}};
                break;
            case Provider::gitea:
            case Provider::forgejo:
                // GitHub's path and body under /api/v1 (forge-status-apis.md §3.3).
                path = github_target(base.path, target.repository, target.sha, why);
                body = github_body(target, wish);
                request.headers = {{"Authorization", "token " + std::string(token_.reveal())},
                                   {"Accept", "application/json"}};
                break;
            case Provider::bitbucket_cloud:
            case Provider::bitbucket_server:
                path = provider_ == Provider::bitbucket_cloud
                           ? bitbucket_cloud_target(base.path, target.repository, target.sha, why)
                           : bitbucket_server_target(base.path, target.repository, target.sha, why);
                body = bitbucket_body(provider_, target, wish,
                                      bitbucket_commit_page(provider_, base.origin + base.path,
                                                            target.repository, target.sha));
                if (!wish.target_url.empty() && !bitbucket_takes_url(provider_, wish.target_url) &&
                    !link_replaced_said_.exchange(true)) {
                    spdlog::warn(
                        "source {}: Bitbucket refuses the build's link {} (over {} characters, or "
                        "on Bitbucket Cloud a host without a domain name): statuses link to the "
                        "commit instead. Set Jenkins' URL (Manage Jenkins > System) to a full "
                        "name to link builds (said once)",
                        source_, wish.target_url, k_bitbucket_max_url);
                }
                request.headers = {{"Authorization", "Bearer " + std::string(token_.reveal())},
                                   {"Accept", "application/json"}};
                break;
            case Provider::generic:
                why = "a generic source has no status API";
                return std::nullopt;
        }
        if (!path) return std::nullopt;
        if (!body) {
            why = "unknown status state '" + wish.state + "'";
            return std::nullopt;
        }
        request.headers.emplace_back("Content-Type", "application/json");
        request.target = std::move(*path);
        request.body = std::move(*body);
        return request;
    }

    const std::string source_;
    const Provider provider_;
    const std::shared_ptr<httpclient::Client> http_;
    const Secret token_;
    mutable std::atomic<bool> link_replaced_said_{false};
};

}  // namespace

std::string_view to_string(PostResult::Kind kind) noexcept {
    switch (kind) {
        case Kind::posted:
            return "posted";
        case Kind::ignored:
            return "ignored";
        case Kind::retry:
            return "retry";
        case Kind::refused:
            return "refused";
    }
    return "retry";
}

std::string_view token_needs(Provider provider) noexcept {
    switch (provider) {
        case Provider::github:
            return "GitHub: repo:status, or Commit statuses: write";
        case Provider::gitlab:
            return "GitLab: the api scope and Developer on the project";
        case Provider::gitea:
        case Provider::forgejo:
            return "Gitea and Forgejo: write:repository, of a user who can write to it";
        case Provider::bitbucket_cloud:
            return "Bitbucket Cloud: an access token with the repository scope, the one that "
                   "created the commit's earlier statuses";
        case Provider::bitbucket_server:
            return "Bitbucket Data Center: an HTTP access token with repository read";
        case Provider::generic:
            break;
    }
    return "";
}

std::string api_url_doubt(const SourceConfig& source) {
    if (!source.status || source.status->api_url.empty()) return "";
    const std::string& url = source.status->api_url;  // the loader took its trailing '/' off
    // What is wrong with it, and where a post would go (`path` under it).
    const auto said = [&](std::string_view why, std::string_view path) {
        return fmt::format("source '{}': status.api_url '{}' {}; a post would go to {}{}",
                           source.name, url, why, url, path);
    };
    switch (source.provider) {
        case Provider::gitea:
        case Provider::forgejo:
            if (!url.ends_with("/api/v1")) {
                return said(
                    "does not end in /api/v1, where Gitea's and Forgejo's API is "
                    "(https://HOST/api/v1)",
                    "/repos/OWNER/REPO/statuses/SHA");
            }
            break;
        case Provider::gitlab:
            if (!url.ends_with("/api/v4")) {
                return said("does not end in /api/v4, where GitLab's API is (https://HOST/api/v4)",
                            "/projects/ID/statuses/SHA");
            }
            break;
        case Provider::bitbucket_cloud:
            if (!url.ends_with("/2.0")) {
                return said(
                    "does not end in /2.0, where Bitbucket Cloud's API is "
                    "(https://api.bitbucket.org/2.0)",
                    "/repositories/WORKSPACE/REPO/commit/SHA/statuses/build");
            }
            break;
        case Provider::bitbucket_server:
            if (const auto path =
                    url.substr(std::min(url.size(), url.find('/', url.find("://") + 3)));
                path.find("/rest/api") != std::string::npos ||
                path.find("/rest/build-status") != std::string::npos) {
                return said(
                    "names a REST API, where the server's base URL belongs "
                    "(https://HOST or https://HOST/CONTEXT)",
                    "/rest/api/latest/projects/KEY/repos/SLUG/commits/SHA/builds");
            }
            break;
        default:
            break;
    }
    return "";
}

std::string_view default_api_url(Provider provider) noexcept {
    switch (provider) {
        case Provider::github:
            return "https://api.github.com";
        case Provider::gitlab:
            return "https://gitlab.com/api/v4";
        case Provider::bitbucket_cloud:
            return "https://api.bitbucket.org/2.0";
        default:
            return "";
    }
}

std::string_view github_state(std::string_view state) noexcept {
    if (state == "pending" || state == "running") return "pending";
    if (state == "success") return "success";
    if (state == "failure") return "failure";
    if (state == "error" || state == "canceled") return "error";
    return "";
}

std::string_view gitlab_state(std::string_view state) noexcept {
    if (state == "pending") return "pending";
    if (state == "running") return "running";
    if (state == "success") return "success";
    if (state == "failure" || state == "error") return "failed";
    if (state == "canceled") return "canceled";
    return "";
}

std::string_view bitbucket_state(Provider provider, std::string_view state) noexcept {
    if (provider != Provider::bitbucket_cloud && provider != Provider::bitbucket_server) return "";
    if (state == "pending" || state == "running") return "INPROGRESS";
    if (state == "success") return "SUCCESSFUL";
    if (state == "failure" || state == "error") return "FAILED";
    // Data Center has CANCELLED only since 8.0 (7.x answers 400): FAILED, as Jenkins' Bitbucket
    // plugins post.
    if (state == "canceled") return provider == Provider::bitbucket_cloud ? "STOPPED" : "FAILED";
    return "";
}

namespace {

// A code point's first byte: anything but 10xxxxxx.
bool is_lead(char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
}

}  // namespace

std::size_t code_points(std::string_view text) noexcept {
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), is_lead));
}

std::string shorten(std::string_view text, std::size_t limit) {
    // Counted by first bytes, so a cut never splits a character.
    if (code_points(text) <= limit) return std::string(text);
    if (limit == 0) return {};
    // Keep limit - 1 characters and the ellipsis.
    std::size_t kept = 0;
    std::size_t end = 0;
    for (; end < text.size(); ++end) {
        if (is_lead(text[end])) {
            if (kept == limit - 1) break;
            ++kept;
        }
    }
    return std::string(text.substr(0, end)) + "\u2026";
}

result<std::shared_ptr<StatusClient>> make_status_client(boost::asio::any_io_executor executor,
                                                         const SourceConfig& source,
                                                         std::string* why) {
    auto fail = [&](std::string reason) -> result<std::shared_ptr<StatusClient>> {
        if (why) *why = std::move(reason);
        return make_error_code(errc::bad_config);
    };
    if (source.provider == Provider::generic) {
        return fail("status: a generic source has no status API");
    }
    if (!source.status) return fail("status: is not configured");
    const StatusConfig& config = *source.status;
    if (config.token.empty()) return fail("status: token is empty");
    if (config.api_url.empty() && default_api_url(source.provider).empty()) {
        return fail("status: api_url is required for " + std::string(to_string(source.provider)) +
                    " sources");
    }

    httpclient::Options options;
    options.name = "status " + source.name;
    options.url = base_url_for(source.provider, config.api_url);
    options.ca_file = config.ca_file;
    options.connect_timeout = config.connect_timeout;
    // The whole post is bounded by request_timeout; no shorter limit per read or write.
    options.io_timeout = config.request_timeout;
    options.request_timeout = config.request_timeout;
    options.max_in_flight = config.max_in_flight;
    std::string reason;
    auto http = httpclient::Client::make(std::move(executor), std::move(options), &reason);
    if (!http) return fail("status: " + reason);
    return std::shared_ptr<StatusClient>(std::make_shared<ForgeStatusClient>(
        source.name, source.provider, std::move(*http), config.token));
}

}  // namespace hookrelay::forge_status
