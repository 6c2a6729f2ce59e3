// Commit statuses back to the forge (forge-status-apis.md): hookrelay tells the pull request what
// became of each trigger. One client per source with `status:` configured; the poster
// (src/follow/) decides what to post and when, this posts one status and classifies the answer.
//
//  * GitHub (and GitHub Enterprise, api_url https://HOST/api/v3): POST
//    {api_url}/repos/{owner}/{repo}/statuses/{sha}, JSON {state, target_url, description,
//    context}, `Authorization: Bearer <token>`, `Accept: application/vnd.github+json`,
//    `X-GitHub-Api-Version: 2022-11-28`. States pending, success, failure, error (running →
//    pending, canceled → error).
//  * GitLab (api_url https://HOST/api/v4): POST {api_url}/projects/{id or url-encoded
//    path}/statuses/{sha}, JSON {state, name, target_url, description}, `PRIVATE-TOKEN: <token>`.
//    States pending, running, success, failed, canceled (failure and error → failed).
//  * Gitea and Forgejo (api_url https://HOST/api/v1): GitHub's path and body, `Authorization:
//    token <token>`. States as GitHub's (Gitea's warning and skipped are never sent).
//  * Bitbucket Cloud (api_url https://api.bitbucket.org/2.0): POST
//    {api_url}/repositories/{workspace}/{repo_slug}/commit/{sha}/statuses/build; Bitbucket Data
//    Center (api_url https://HOST[/context]): POST {api_url}/rest/api/latest/projects/{key}/repos/
//    {slug}/commits/{sha}/builds. JSON {key, name, state, url, description}, the key and name the
//    context (a post with the same key replaces the last), `Authorization: Bearer <token>`.
//    States INPROGRESS, SUCCESSFUL, FAILED, and STOPPED (Cloud; canceled is FAILED on Data
//    Center, whose CANCELLED came in 8.0). Bitbucket requires a url and refuses one over 450
//    characters (Cloud also one whose host has no top level domain): those wishes link to the
//    commit's page.
//    Cloud refuses a key over 40 characters: a longer context is keyed by its hash.
//  * description at most 140 characters (cut on a UTF-8 character boundary, "…" at the end).
//  * Answers: 2xx posted. GitLab 400 whose message says a transition is not allowed ("Cannot
//    transition status via :run from :success"): ignored (GitLab keeps the finished status; the
//    wish is done). 429, and GitHub 403 with Retry-After, `x-ratelimit-remaining: 0` or a body
//    mentioning a secondary rate limit: retry (retry_after from Retry-After or
//    x-ratelimit-reset). 401, 403, 404, 422 and other 4xx: refused (the token, the repository
//    or the sha is wrong: the poster logs it once per source, counts it, and gives the wish
//    up). 5xx, no answer, timeouts: retry.
//  * The token never appears in a detail, a log line or an error.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/error.hpp>
#include <hookrelay/store.hpp>
#include <hookrelay/trigger.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace hookrelay::forge_status {

/// What posting one status came to.
struct PostResult {
    enum class Kind { posted, ignored, retry, refused };
    Kind kind = Kind::retry;
    int http_status = 0;  ///< 0 when no answer arrived
    std::string detail;   ///< short text: "HTTP 404 Not Found: Not Found", "connect: refused"
    std::optional<std::chrono::milliseconds> retry_after;  ///< when the forge said how long
};

/// What a provider's status token needs, for a log line: "GitHub: repo:status, or Commit
/// statuses: write", "GitLab: the api scope and Developer on the project", ... ("" for generic).
std::string_view token_needs(Provider provider) noexcept;

/// A doubt about `source`'s status.api_url as written, for `check`: one whose path is not where
/// the forge's API lives (Gitea and Forgejo /api/v1, GitLab /api/v4, Bitbucket Cloud /2.0; a
/// Bitbucket Data Center path with /rest/api or /rest/build-status in it, where the server's base
/// URL belongs), which would have every post answered 404. "" when there is none (or no status:
/// or api_url).
std::string api_url_doubt(const SourceConfig& source);

/// "posted", "ignored", "retry", "refused".
std::string_view to_string(PostResult::Kind kind) noexcept;

class StatusClient {
  public:
    virtual ~StatusClient() = default;
    /// Posts `wish` for `target`. Never throws; bounded by the source's status timeouts.
    virtual boost::asio::awaitable<PostResult> post(StatusTarget target, StatusWish wish) = 0;
};

/// A client for `source` (its provider and `status:`); errc::bad_config with a one-line reason
/// in *why when the provider has no status API here or api_url is not a usable base URL.
result<std::shared_ptr<StatusClient>> make_status_client(boost::asio::any_io_executor executor,
                                                         const SourceConfig& source,
                                                         std::string* why = nullptr);

/// The default api_url of a provider: "https://api.github.com" for GitHub,
/// "https://gitlab.com/api/v4" for GitLab, "https://api.bitbucket.org/2.0" for Bitbucket Cloud;
/// "" for providers without one (self-hosted only: Gitea, Forgejo, Bitbucket Data Center; their
/// sources must write api_url) or without a status API (generic).
std::string_view default_api_url(Provider provider) noexcept;

// --- Pure pieces, unit-tested --------------------------------------------------------------

/// GitHub's state for a forge-neutral one: pending, success, failure, error ("" for a state
/// that is not forge-neutral: such a wish is refused).
std::string_view github_state(std::string_view state) noexcept;
/// GitLab's: pending, running, success, failed, canceled ("" likewise).
std::string_view gitlab_state(std::string_view state) noexcept;
/// Bitbucket's: INPROGRESS, SUCCESSFUL, FAILED, and for canceled STOPPED (Cloud) or FAILED (Data
/// Center: CANCELLED is refused before 8.0) ("" likewise, and for a provider that is not a
/// Bitbucket).
std::string_view bitbucket_state(Provider provider, std::string_view state) noexcept;
/// The characters (UTF-8 code points) of `text`, counted by their first bytes.
std::size_t code_points(std::string_view text) noexcept;
/// At most `limit` characters (code points), cut on a character boundary with "…" at the end.
std::string shorten(std::string_view text, std::size_t limit = 140);

}  // namespace hookrelay::forge_status
