// The HTTP(S) Jenkins client behind hookrelay::JenkinsClient, and the pure pieces it is built
// from (job URL paths, status classification). The Jenkins protocol only: connections, the pool,
// deadlines and TLS are the outbound HTTP client's (httpclient/client.hpp), one per Jenkins.
//
// Behaviour, per the Jenkins remote API reference (jenkins-remote-api.md):
//  * POST <url>job/<a>/job/<b>/build?delay=0sec without parameters, .../buildWithParameters
//    ?delay=0sec with them; the parameters and `cause` form-encoded in the body, never in the
//    query (no `cause` field is added when a parameter is itself named "cause": Jenkins fails on
//    a name sent twice). A job token rides as &token=<t> in the query. Redirects are never
//    followed; 201/303 Location becomes queue_url (a relative one is resolved against the url).
//  * HTTP Basic user:api_token on every request when a user is configured (Jenkins answers
//    anonymous requests 403, never 401, so there is no challenge to wait for). No crumb is needed
//    then (ApiCrumbExclusion).
//  * Without a user (anonymous, job token only), a CSRF crumb is fetched first from
//    crumbIssuer/api/json together with its session cookie and sent with every POST; crumb and
//    cookie are cached. A 403 whose body says "No valid crumb" makes the client fetch a new crumb
//    (with the same credentials) and retry once; this also rescues a configured password, which
//    unlike an API token is not crumb-exempt. crumbIssuer answering 404 means CSRF protection is
//    off: the POST goes without a crumb.
//  * Keep-alive connections are pooled per client; at most max_in_flight requests run at once
//    (further callers wait for a slot, inside request_timeout), so at most max_in_flight
//    connections are open. A pooled connection that fails before any response byte arrived (the
//    server closed it while idle) is retried once on a fresh connection.
//  * Deadlines: resolve + connect + TLS handshake share connect_timeout; each write and each read
//    gets io_timeout; the whole call (slot wait, crumb, retries) is bounded by request_timeout.
//    Every timeout is `unavailable`, its detail naming the phase ("read: timeout after 10000 ms").
//  * A trigger's build request that was written whole and got no answer (a read timeout, the
//    connection closed before the answer was read, request_timeout), or whose answer is a
//    proxy's gateway timeout (504, 524, 598), is unavailable with maybe_queued set and " (the
//    request was sent: Jenkins may have queued the build)" added to its detail: Jenkins may act
//    on it all the same. A kept-alive connection closed before any answer is taken for one the
//    server closed while idle: the request goes again at once on a new connection, and only
//    that one counts.
//  * TLS: verify_peer against the system default paths, or only against ca_file when set; host
//    name verification (IP SANs for IP literals); SNI for host names. A failed certificate
//    verification is classified `unavailable`, not `permanent`: it is a configuration or
//    certificate-rotation problem the admin fixes without touching the triggers, so the
//    dispatcher should hold the Jenkins and probe it rather than let triggers die. The detail
//    carries OpenSSL's reason ("TLS handshake with host:443: certificate verify failed: ...").
//  * probe(): GET <url>api/json?tree=mode with the same auth. No response or 502/503/504 →
//    unavailable; 2xx → queued (meaning only "Jenkins answers"); 401 and 403 → auth_failed (the
//    root API needs only Overall/Read: refusing it refuses the user); any other status →
//    classify() (429 throttled, 500 server_error, ...).
//  * read(path): GET <url><path> with the same auth (Basic, or anonymous without a crumb: GETs
//    need none), Accept: application/json; bytes a URI may not carry raw ('[', ']', '{', '}' of
//    a `tree` filter, non-ASCII) are percent-encoded, '%' is kept. 2xx → queued with the body; a
//    body longer than k_read_body_limit is cut there (read in pieces, never allocated from
//    Content-Length; the detail says "body cut at 1024 KiB" and the connection is dropped). 401 →
//    auth_failed; 429 → throttled (a rate limiter: ask again later); 403, 404, other 4xx and every
//    3xx (a login page, a wrong url) → permanent; the rest as classify() says (no answer,
//    502/503/504 unavailable, 500 server_error). A path that starts with '/', carries a scheme or
//    holds a space or control character is permanent without any request.
//  * Whose fault is a 401 or 403 (reference §0.11, §1.1, §1.2, §3): 401 to any request means
//    the Basic credentials are wrong: auth_failed. A 403 from the crumb issuer (anonymous
//    without Overall/Read) is auth_failed too. A 403 from build/buildWithParameters may be the
//    job's (a wrong job token, no Job/Build or Job/Read on that job) or the user's (no
//    Overall/Read at all); the client then asks the root API (the probe request) with the same
//    credentials: refused there too (401/403) → auth_failed, answered → permanent for that
//    trigger alone. A 403 "No valid crumb" after the one crumb refresh stays permanent.
//  * Retry-After: read from every answer (trigger, crumbIssuer, probe, read) into
//    JenkinsOutcome::retry_after, delta-seconds or any of the three HTTP-date forms
//    (parse_retry_after in encoding.hpp). What to make of it is the dispatcher's business.
//  * Responses are read with a 32 KiB limit on the head. A head over it (e.g. a huge Location)
//    is classified by its status line when that is readable: a 201 or 303 is queued / merged
//    with an empty queue_url and a detail saying the Location was too long to use (the build
//    is queued; answering "unavailable" would make the dispatcher queue it a second time), any
//    other status as classify() says. Without a readable status line it is unavailable. Such a
//    connection is not reused.
//  * scan(project): POST <url>job/<a>/job/<b>/build?delay=0sec with an empty form body, the
//    same auth and crumb handling as a trigger (no job token: ComputedFolder.doBuild has none).
//    cancel_item(id): POST <url>queue/cancelItem?id=N likewise. For both: 2xx and 3xx → queued
//    (queue_url empty: a scan answers 302 to the folder, a cancel 204); 401 auth_failed; 429
//    throttled; 500 permanent (scan: "cannot be recomputed", not a multibranch project or
//    organization folder, or disabled; cancel: the cancel failed); 404, 422 and every other
//    4xx permanent (a 403 not about the crumb asks the root API as a trigger does); the rest as
//    classify() says. Retry-After as for trigger(). An empty project is permanent ("empty
//    project path") without any request.
//  * An empty TriggerRequest::job is permanent ("empty job path") without any request.
//  * Basic auth is sent when `user` is non-empty; with an empty user the client is anonymous.
//  * detail strings never contain the API token, job token, crumb or cookie.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/error.hpp>
#include <hookrelay/jenkins.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::jenkins {

/// Builds a client whose sockets, resolver and timers run on `executor` (any number of threads;
/// trigger()/probe() may be awaited concurrently from coroutines on any executor). Fails with
/// errc::bad_config (and a one-line reason in *why, when given) when the url is not
/// http(s)://host[:port]/path/ or ca_file cannot be loaded.
result<std::shared_ptr<JenkinsClient>> make_client(boost::asio::any_io_executor executor,
                                                   const JenkinsConfig& config,
                                                   std::string* why = nullptr);

/// The URL path of a job below the Jenkins root, ending in '/':
/// {"acme","app","feature/x"} → "job/acme/job/app/job/feature%252Fx/". Each segment is first
/// NameEncoder-encoded as multibranch names are (# % / ? [ ] \ → %23 %25 %2F %3F %5B %5D %5C,
/// "" → %00, "." → %2E), then percent-encoded as a path segment (only A-Za-z0-9-._~ literal,
/// UTF-8 bytes encoded one by one). An empty vector gives "".
std::string job_path(const std::vector<std::string>& job);

/// Classifies the HTTP status of a trigger request:
///   201 queued; 303 merged; 302 refused;
///   429 throttled (Jenkins or a proxy in front of it rate-limits us: retry later);
///   401 auth_failed (Jenkins refused the Basic credentials: every request would fail alike);
///   400, 403, 404, 405, 409 and every other 4xx permanent (the client itself tells a 403 about
///     the user from one about the job, see above);
///   500 server_error; 502, 503, 504 unavailable.
/// The rest, chosen here:
///   0 (no response) and 1xx unavailable;
///   other 2xx (200, 202, 204, ...) permanent: Jenkins never answers a trigger so, it is some
///     other server (a proxy's login page, a wrong url) and retrying will not make a queue item;
///   other 3xx (301, 307, 308, ...) permanent: a redirect we do not follow means the url is wrong
///     (http → https, moved host); only 302 is Jenkins' "queue refused";
///   501, 505 permanent (the server will never do this); 520-524 (CDN: origin down, timed out),
///     598, 599 (proxy timeouts) unavailable; any other 5xx server_error;
///   anything outside 100-599 permanent.
JenkinsOutcome::Kind classify(int http_status) noexcept;

}  // namespace hookrelay::jenkins
