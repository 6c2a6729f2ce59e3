// A fake forge API for commit statuses: a real HTTP(S) server on 127.0.0.1, written from
// forge-status-apis.md (§3.1 GitHub, §3.2 GitLab, §3.3 Gitea, §3.4 Bitbucket). It serves every
// forge's status endpoint on one port and records every status posted, for assertions.
//
// It runs its own io_context on a background thread; every public member is thread-safe and may
// block (tests only). Beast stays in the .cpp files (loopback_server.cpp serves).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hookrelay::test {

/// One status post as the fake saw it.
struct PostedStatus {
    /// By the endpoint: "github", "gitea" (GitHub's path under /api/v1), "gitlab",
    /// "bitbucket-cloud" or "bitbucket-server".
    std::string forge;
    std::string target;      ///< raw request target
    std::string repository;  ///< "owner/repo" ("KEY/slug"); GitLab the project id or path, decoded
    std::string sha;
    std::string state;  ///< as sent: GitHub pending/success/failure/error, the others their own
    /// GitHub's `context`, GitLab's and Bitbucket's `name` (GitLab: "default" when not sent).
    std::string context;
    std::string key;          ///< Bitbucket's `key`; "" for the others
    std::string description;  ///< "" when not sent
    std::string target_url;   ///< GitHub's and GitLab's `target_url`, Bitbucket's `url`
    std::vector<std::pair<std::string, std::string>> headers;
    int status = 0;      ///< what the fake answered
    std::string answer;  ///< the body it answered with
    /// When the fake had read the whole request (the test process's steady clock).
    std::chrono::steady_clock::time_point at;

    /// The value of header `name` (case-insensitive); "" if absent.
    std::string header(const std::string& name) const;
};

/// The fake API. Semantics:
///  * GitHub: POST <any prefix>/repos/{owner}/{repo}/statuses/{sha} (api.github.com has no
///    prefix, GitHub Enterprise /api/v3). `Authorization: Bearer <token>` (or `token <token>`)
///    must carry options.token, else 401 {"message":"Bad credentials"}. state must be error,
///    failure, pending or success and description at most 140 characters, else 422
///    {"message":"Validation Failed","errors":[...]}; a body that is not a JSON object is 400
///    {"message":"Problems parsing JSON"}. Accepted: 201 with the status as JSON.
///  * GitLab: POST <any prefix>/projects/{id}/statuses/{sha} (gitlab.com: /api/v4), {id} a
///    number or a URL-encoded path. `PRIVATE-TOKEN: <token>` (or a Bearer Authorization) must
///    carry options.token, else 401 {"message":"401 Unauthorized"}. state must be pending,
///    running, success, failed, canceled or skipped, else 400 {"error":"state does not have a
///    valid value"}. As Ci::CreateCommitStatusService does, a post updates the open (pending or
///    running) status of the same project, sha and name, or starts a new one when there is none
///    (so a post after a finished status starts afresh); a transition the state machine does
///    not allow is 400 {"message":"Cannot transition status via :<event> from :<state>"}
///    (pending → pending: enqueue from pending; running → pending: enqueue from running;
///    running → running: run from running). Accepted: 201 with the status as JSON.
///  * Gitea and Forgejo: GitHub's endpoint and rules under /api/v1 (recorded as "gitea").
///  * Bitbucket Cloud: POST <any prefix>/repositories/{workspace}/{slug}/commit/{sha}/statuses/
///    build; Data Center: POST <any prefix>/rest/api/latest/projects/{key}/repos/{slug}/commits/
///    {sha}/builds. `Authorization: Bearer <token>` must carry options.token, else 401; key,
///    state and url are required, url at most 450 characters, name 255, and on Cloud key 40 and
///    url a valid link (a host with a dot, localhost or an address); state must be one of
///    INPROGRESS, SUCCESSFUL, FAILED and STOPPED (Cloud) or those three (Data Center as 7.x:
///    CANCELLED came in 8.0); else 400 in the forge's error shape (Cloud
///    {"type":"error","error":{"message","fields"}}, Data Center {"errors":[{"message"}]}).
///    Accepted: Cloud 201 with the status, Data Center 204.
///  * Anything else: 404 {"message":"Not Found"}.
class FakeForgeApi {
  public:
    struct Options {
        std::string token = "fake-forge-token";
        bool tls = false;
        std::string cert_file{}, key_file{};  ///< PEM; server certificate for 127.0.0.1
        std::uint16_t port = 0;               ///< 0: pick a free port
    };

    /// Binds 127.0.0.1:options.port and serves. Throws std::runtime_error when it cannot bind or
    /// load the certificate.
    explicit FakeForgeApi(Options options);
    FakeForgeApi();
    ~FakeForgeApi();
    FakeForgeApi(const FakeForgeApi&) = delete;
    FakeForgeApi& operator=(const FakeForgeApi&) = delete;

    std::uint16_t port() const;
    /// "http://127.0.0.1:PORT/" or "https://127.0.0.1:PORT/".
    std::string url() const;

    /// The next `count` status posts (after the token check) are answered `status` with `body`
    /// (empty: {"message":"<reason phrase>"}), a `Retry-After: <retry_after>` header when that
    /// is not empty, and `headers`. E.g. 503; 429 with "7"; GitHub's secondary rate limit as 403
    /// with a body saying "You have exceeded a secondary rate limit", or 403 with headers
    /// {{"x-ratelimit-remaining","0"},{"x-ratelimit-reset","<epoch s>"}}. They are recorded
    /// (posts()) but change no status. count 0 resets.
    void fail_next(int count, int status, std::string retry_after = "", std::string body = "",
                   std::vector<std::pair<std::string, std::string>> headers = {});

    /// true: closes the listening socket and every open connection (clients then get
    /// "connection refused"); false: listens again on the same port. Idempotent.
    void set_down(bool down);

    /// The token accepted from now on (rotated or revoked).
    void set_token(std::string token);

    /// Every status post, in arrival order, whatever it was answered.
    std::vector<PostedStatus> posts() const;
    /// The accepted ones (answered 2xx): what the forge shows, in order.
    std::vector<PostedStatus> statuses() const;
    /// Waits (without fixed sleeps) until statuses().size() >= n or `deadline` passed; returns
    /// whether it got there.
    bool wait_for_statuses(std::size_t n, std::chrono::milliseconds deadline);
    /// Waits until posts().size() >= n or `deadline` passed.
    bool wait_for_posts(std::size_t n, std::chrono::milliseconds deadline);
    /// TCP connections accepted since construction.
    std::size_t connections_accepted() const;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace hookrelay::test
