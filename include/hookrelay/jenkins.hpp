// The Jenkins client seam: the dispatcher asks a client to request one build and gets back a
// classified outcome. Implementations own their connections; see src/jenkins/.
#pragma once

#include <hookrelay/secret.hpp>
#include <hookrelay/trigger.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay {

/// What one request to Jenkins came to, from the dispatcher's point of view.
struct JenkinsOutcome {
    enum class Kind {
        queued,        ///< 201: a new queue item (queue_url set)
        merged,        ///< 303: merged into an item already queued (queue_url set)
        refused,       ///< 302: Jenkins' queue refused the build (not queued; permanent)
        permanent,     ///< 400/403/404/405/409, other 4xx but 429: retrying will not help
        server_error,  ///< 500: permanent after one retry (the dispatcher counts)
        throttled,     ///< 429: Jenkins (or a proxy in front of it) asks us to slow down
        unavailable,   ///< 502/503/504, connection refused or reset, any timeout: Jenkins down
        /// Jenkins refused hookrelay's credentials, not one job: 401 to any request, or 403 from
        /// an endpoint that needs only Overall/Read (the crumb issuer, the root API). Every
        /// trigger to it would fail alike: the dispatcher holds the whole Jenkins until a reload.
        auth_failed,
    };
    Kind kind = Kind::unavailable;
    int http_status = 0;  ///< 0 when no response arrived
    /// Location of the queue item (queued, merged); empty when Jenkins sent none, or one too
    /// long to read (the build is queued all the same; detail says so).
    std::string queue_url;
    std::string detail;  ///< short human text: "HTTP 404 Not Found", "connect: refused", ...
    std::chrono::milliseconds duration{0};
    /// The answer's Retry-After (any status; it matters for throttled and unavailable), as the
    /// delay it asks for counted from when the answer arrived: delta-seconds or an HTTP-date (a
    /// date in the past is 0). nullopt when there was no answer, no such header, or a value that
    /// is neither form.
    std::optional<std::chrono::milliseconds> retry_after;
    /// read(): the response body of a 2xx answer (at most k_read_body_limit bytes).
    std::string body;
    /// trigger(), unavailable only: the whole build request was sent to Jenkins (or a proxy in
    /// front of it) and no answer came (a read timeout, the connection dropped, request_timeout,
    /// a proxy's gateway timeout 504, 524 or 598). Jenkins may have queued the build; sending
    /// it again may queue a second one.
    bool maybe_queued = false;
};

/// The most of a JSON API answer read() takes in.
inline constexpr std::size_t k_read_body_limit = 1024 * 1024;

/// "queued", "merged", "refused", "permanent", "server_error", "throttled", "unavailable",
/// "auth_failed".
std::string_view to_string(JenkinsOutcome::Kind kind) noexcept;

/// One Jenkins controller. Safe to call concurrently from coroutines on any executor; keeps
/// keep-alive connections and (for job tokens) the crumb and session cookie internally.
class JenkinsClient {
  public:
    virtual ~JenkinsClient() = default;

    /// Requests one build: POST .../job/<a>/job/<b>/buildWithParameters (parameters in the form
    /// body, never the query) or .../build?delay=0sec when there are none; `job_token` rides as
    /// ?token= (with a CSRF crumb when no API token is configured). Never throws; every failure
    /// is an outcome. Bounded by the configured deadlines.
    virtual boost::asio::awaitable<JenkinsOutcome> trigger(TriggerRequest request,
                                                           std::optional<Secret> job_token) = 0;

    /// A cheap authenticated request (GET <url>api/json?tree=mode) to learn whether Jenkins is
    /// back: kind unavailable while it is down or restarting, auth_failed while it refuses the
    /// credentials (401 or 403: the root API needs only Overall/Read), anything else means it
    /// answers (throttled: it answers, but asks us to wait retry_after). retry_after is filled as
    /// for trigger().
    virtual boost::asio::awaitable<JenkinsOutcome> probe() = 0;

    /// GET <url><path> with the same auth, for Jenkins' JSON API (following a queue item to its
    /// build). `path` is relative to the configured url ("queue/item/7/api/json?tree=..."): the
    /// URLs inside Jenkins' answers use its own root URL, which need not be the one hookrelay
    /// reaches it by. Kinds: queued means "answered 2xx" (the body in `body`, cut at
    /// k_read_body_limit); 404 and other 4xx permanent; 401 auth_failed; 403 permanent (the
    /// item may be one the user cannot see); the rest as classify() says. Bounded by the
    /// configured deadlines, never throws.
    virtual boost::asio::awaitable<JenkinsOutcome> read(std::string path) = 0;

    /// Asks a multibranch project (or organization folder) to scan for branches ("branch
    /// indexing"): POST <url>job/<a>/job/<b>/build?delay=0sec, with the same auth and crumb as
    /// trigger(). Jenkins answers 302 without a queue item (some proxies 200/201). Kinds: queued
    /// for 2xx/3xx (the scan is scheduled; queue_url empty); permanent for 404 (no such project)
    /// and other 4xx but 401/429, and for 500 ("cannot be recomputed": not a multibranch project
    /// or organization folder; detail says so); auth_failed, throttled and unavailable as for
    /// trigger(). Never throws; bounded by the configured deadlines.
    virtual boost::asio::awaitable<JenkinsOutcome> scan(std::vector<std::string> project) = 0;

    /// Cancels a queue item: POST <url>queue/cancelItem?id=N (auth and crumb as trigger()).
    /// Kinds: queued for 2xx/3xx (cancelled); permanent for 404 ("Provided id (N) not found":
    /// the item already left the queue, i.e. started, or is unknown), 422 (no Cancel permission)
    /// and other 4xx but 401/429, and for 500 (the cancel failed); auth_failed, throttled and
    /// unavailable as for trigger(). Never throws; bounded by the configured deadlines.
    virtual boost::asio::awaitable<JenkinsOutcome> cancel_item(std::int64_t queue_id) = 0;
};

}  // namespace hookrelay
