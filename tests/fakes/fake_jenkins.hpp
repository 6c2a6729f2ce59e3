// A fake Jenkins controller for tests: a real HTTP(S) server on 127.0.0.1, written from the
// Jenkins remote API reference (jenkins-remote-api.md). It answers the remote-trigger endpoints
// the way Jenkins core does (auth, CSRF crumbs bound to a session cookie, job tokens, folders,
// build vs buildWithParameters, queue merging) and records every request for assertions.
//
// It runs its own io_context on a background thread; every public member is thread-safe and may
// block (tests only). Beast stays in the .cpp files (loopback_server.cpp serves).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hookrelay::test {

/// One request as the fake saw it.
struct ReceivedRequest {
    std::string method;
    std::string target;  ///< raw request target
    /// Item names from the URL: each /job/<seg> percent-decoded ONCE (multibranch "feature%2Fx").
    std::vector<std::string> job;
    /// The first path segment after the job part: "build", "buildWithParameters",
    /// "crumbIssuer", "api", "queue", ... ("" for "/").
    std::string endpoint;
    std::vector<std::pair<std::string, std::string>> query;  ///< decoded
    std::vector<std::pair<std::string, std::string>> form;   ///< decoded urlencoded body params
    std::vector<std::pair<std::string, std::string>> headers;
    std::string user;            ///< Basic auth user ("" if none)
    bool authenticated = false;  ///< Basic user + api_token matched
    std::string cause;           ///< form/query "cause"
    int status = 0;              ///< what the fake answered (0: nothing, see set_hanging)
    /// The client closed the connection before the answer was written (it died or gave up while
    /// the fake delayed or withheld the answer): it never saw `status`.
    bool abandoned = false;
    /// When the fake had read the whole request (the test process's steady clock: compare it
    /// with other requests' times, also across fakes).
    std::chrono::steady_clock::time_point at;

    /// The value of `name` from the form body, else from the query; "" if absent.
    std::string param(const std::string& name) const;
    /// The value of header `name` (case-insensitive); "" if absent.
    std::string header(const std::string& name) const;
};

/// The fake controller. Semantics follow the reference (section numbers in brackets):
///  * Basic auth with options.user + options.api_token authenticates; any other Basic header is
///    401 with WWW-Authenticate; no header is anonymous [§1.1, §0.11]. Anonymous has Overall/Read
///    and Job/Read, but not Job/Build: anonymous triggers need the job token.
///  * Every POST that is not API-token authenticated needs a crumb from GET
///    crumbIssuer/api/json, sent in the header named by crumbRequestField ("Jenkins-Crumb")
///    together with the session cookie JSESSIONID.<8 hex> the crumb was issued with; otherwise 403
///    "No valid crumb was included in the request" [§3]. Crumbs are bound to session and user.
///  * Jobs are looked up one /job/<seg> at a time, case-insensitively, by exact item name (the
///    multibranch decode/encode tolerance of MultiBranchProject.getItem is not emulated, so a
///    client sending feature%2Fx for item "feature%2Fx" gets 404) [§2].
///  * build / buildWithParameters: the order of checks, 403 for a wrong ?token= (even when
///    authenticated), 405 for GET, 400 for the wrong endpoint, 500 for a parameter sent twice or
///    a bad delay, 201 + absolute Location for a new queue item, 201 (build) or 303
///    (buildWithParameters) with the same Location for a trigger merged into a queued item
///    [§1.1-§1.6, §4.3]. Undefined parameters are ignored; missing ones take the default "".
///  * GET api/json → 200 {"mode":"NORMAL","jobs"}; GET <job>/api/json → {"_class","name",
///    "buildable","property"} with a ParametersDefinitionProperty listing the job's parameters
///    (name, type StringParameterDefinition) when it has any (any ?tree= but builds[...] is
///    ignored); GET <folder>/api/json for a folder some job lies below → {"_class": Folder,
///    "name", "jobs"} (no buildable: not a job) [jenkins-builds-and-jobs.md §2.3]. "jobs" (root
///    and folders) lists the items directly below, [{"_class","name"}] sorted case-insensitively;
///    any ?tree= is ignored.
///  * GET whoAmI/api/json → {"anonymous","authenticated","name"}: the Basic user, or anonymous.
///  * The queue [§4.1, §4.2; jenkins-builds-and-jobs.md §2.1, §2.2]: queue ids count up from 1
///    over all jobs. An item stays queued (BuildableItem, "Waiting for next available executor")
///    until drain_queue(), or, with set_quiet_period(d), a WaitingItem ("In the quiet period.
///    Expires in 4.9 sec") that starts by itself d after it was queued. Starting makes it a
///    LeftItem and the job's next build (numbers per job from 1), running until finish_builds()
///    or, with set_build_duration(d), for d; its result is the next of set_next_results()
///    (default SUCCESS). Items and builds advance whenever a request arrives or an accessor is
///    called (no background timer), at the times they were due.
///  * GET queue/item/<id>/api/json → the item as Jenkins exports it (`_class`, id, why, blocked,
///    buildable, stuck, inQueueSince, params, task, url; LeftItem: why null, cancelled,
///    executable {number,url} or null until the build exists, see set_executable_delay). Any
///    ?tree= is accepted and ignored. 404 for unknown ids and for left items older than
///    set_left_item_ttl() (Jenkins: 5 minutes).
///  * GET <job>/<n>/api/json → {number, url, building, inProgress, result (null while building),
///    duration (0 while building), estimatedDuration, timestamp (start, ms epoch), queueId};
///    GET <job>/api/json?tree=builds... → {"builds":[{number,queueId,url}, newest first]}.
///  * POST queue/cancelItem?id=N → 204 and the item is left with cancelled true; 404 "Provided
///    id (N) not found" when unknown or already left; 422 for anonymous callers (no Job/Cancel).
///  * Multibranch projects [§2; jenkins-builds-and-jobs.md §2.4] (add_multibranch): a computed
///    folder whose branch jobs are its children, item name NameEncoder.encode(branch) (branch
///    "feature/x" is item "feature%2Fx", URL segment feature%252Fx). GET <mb>/api/json →
///    {"_class": WorkflowMultiBranchProject, "name", "buildable", "jobs": [{_class, name, url}]}.
///    POST <mb>/build[?delay=…] is a scan (ComputedFolder.doBuild): 405 for GET, 403 for
///    anonymous (no token support), 500 "<name> cannot be recomputed" when not buildable
///    (set_job_buildable), else 302 to the project URL without a queue item. A scan starts when
///    requested (after the running scan of that project, if any; a request while one waits to
///    start merges into it), runs set_scan_duration() (default 0: done at once) and then makes
///    the branches added with add_branch_on_scan() before it started into jobs. Until then a
///    branch job answers 404 like any unknown job. POST <folder>/build on a plain folder (a path
///    some job lies below, not itself a job) → 500 "<name> cannot be recomputed"; on a plain
///    job it is a build as above.
///  * URLs Jenkins writes into its JSON (executable.url, a build's url, task.url) start with
///    Options::root_url, which need not be where the fake listens; the 201/303 Location is built
///    from the request, as Jenkins does (jenkins-remote-api.md §1.7): url().
///  * Anything else 404.
class FakeJenkins {
  public:
    struct Options {
        bool tls = false;
        std::string cert_file, key_file;  ///< PEM; server certificate for 127.0.0.1
        std::string user = "hookrelay";
        std::string api_token = "fake-api-token";
        std::uint16_t port = 0;  ///< 0: pick a free port; fixed: reuse after restart
        /// Jenkins' configured root URL, in the URLs its JSON answers carry (executable.url,
        /// build url; not the Location); "" = url(). E.g. "https://jenkins.example.com/", a host
        /// nobody can reach.
        std::string root_url{};
    };

    /// A queue item as the fake holds it (queue_items()).
    struct QueueItemInfo {
        std::int64_t id = 0;
        std::vector<std::string> job;
        std::vector<std::pair<std::string, std::string>> parameters;  ///< defaults applied, sorted
        bool left = false;       ///< left the queue (started or cancelled)
        bool cancelled = false;  ///< cancelled (cancel_item() or POST queue/cancelItem)
        std::optional<std::int64_t> build_number;  ///< the build it became
        bool forgotten = false;  ///< left longer than the left-item TTL ago: GET answers 404
    };

    /// A build (runs()).
    struct BuildInfo {
        std::vector<std::string> job;
        std::int64_t number = 0;
        std::int64_t queue_id = 0;
        std::string url;  ///< with Options::root_url
        bool building = true;
        std::string result;  ///< "" while building
    };

    /// Binds 127.0.0.1:options.port and serves. Throws std::runtime_error when it cannot bind or
    /// load the certificate.
    explicit FakeJenkins(Options options);
    ~FakeJenkins();
    FakeJenkins(const FakeJenkins&) = delete;
    FakeJenkins& operator=(const FakeJenkins&) = delete;

    std::uint16_t port() const;
    /// "http://127.0.0.1:PORT/" or "https://127.0.0.1:PORT/".
    std::string url() const;

    /// Defines a job by its item names, e.g. {"acme","app","feature%2Fx"}; `parameters` it
    /// defines (empty: not parameterized, default value ""); its "Trigger builds remotely" token
    /// ("" none). Folders on the way need no definition.
    void add_job(std::vector<std::string> item_names, std::vector<std::string> parameters = {},
                 std::string token = "");

    /// A scan of a multibranch project (scan_log()).
    struct ScanInfo {
        std::vector<std::string> project;
        std::chrono::steady_clock::time_point requested_at;  ///< the first request
        std::chrono::steady_clock::time_point started_at;
        std::chrono::steady_clock::time_point ends_at;  ///< started_at + scan duration
        std::size_t requests = 1;  ///< POSTs answered 302 for it (later ones merged into it)
        bool finished = false;
        std::vector<std::string> created;  ///< branch names it made into jobs (once finished)
    };

    /// Defines a multibranch project at `item_names` (e.g. {"acme","app"}) with a branch job for
    /// each of `branches` (branch names as in the SCM: "feature/x" becomes the item
    /// "feature%2Fx"), each declaring `parameters` (as add_job()). Buildable (scans work) until
    /// set_job_buildable(item_names, false).
    void add_multibranch(std::vector<std::string> item_names, std::vector<std::string> branches,
                         std::vector<std::string> parameters = {});
    /// A branch that exists in the SCM of multibranch project `project` but has no job yet: the
    /// first scan of the project that starts after this call makes it a job (declaring
    /// `parameters`). A branch that is a job already is ignored.
    void add_branch_on_scan(const std::vector<std::string>& project, std::string branch,
                            std::vector<std::string> parameters = {});
    /// Scans requested from now on run for `duration` before their branches appear; 0 (the
    /// default): a scan is done when its 302 is answered.
    void set_scan_duration(std::chrono::milliseconds duration);
    /// How many scans of `project` were requested (merged requests count once), so far.
    std::size_t scans(const std::vector<std::string>& project) const;
    /// Every scan so far, of every project, in the order they were requested.
    std::vector<ScanInfo> scan_log() const;
    /// The item name Jenkins gives branch `branch` of a multibranch project
    /// (NameEncoder.encode: # % / ? [ ] \ → %23 %25 %2F %3F %5B %5D %5C, "" → %00, "." → %2E).
    static std::string branch_item_name(const std::string& branch);

    /// Makes a job added with add_job() or a multibranch project (exactly these item names)
    /// buildable or not (disabled): its api/json says so. Build requests to a job are not
    /// affected; a multibranch project that is not buildable answers a scan 500.
    void set_job_buildable(const std::vector<std::string>& item_names, bool buildable);

    /// The next `count` build requests (build / buildWithParameters on any job, after the auth
    /// check) are answered `status` (302 with a Location to the job page; 303 with one to a
    /// proxy's login page, sso/login?rd=…; anything else with an HTML error page), with a
    /// `Retry-After: <retry_after>` header when that is not empty (what a rate limiter's 429 or a
    /// proxy's 503 carries). The error page says `message` (default "injected by fail_next"; 403
    /// with "No valid crumb was included in the request" is a crumb refused). count 0 resets.
    void fail_next(int count, int status, std::string retry_after = "", std::string message = "");

    /// While true, every request is read and recorded (status 0) but never answered: the
    /// connection stays open until the client gives up or stop(). A Jenkins that hangs.
    void set_hanging(bool hanging);

    /// While `bytes` > 0, the Location of every 201/303 build answer is made at least that long
    /// (a query string of padding after the queue item URL), e.g. more than a client's header
    /// limit. 0 resets.
    void pad_location(std::size_t bytes);

    /// While true, EVERY request is answered 503 with an HTML page ("Jenkins is restarting").
    void set_restarting(bool restarting);

    /// The API token Basic auth accepts from now on (an admin rotated it): requests with the old
    /// one get 401.
    void set_api_token(std::string api_token);

    /// While true, nobody (authenticated or anonymous) has Overall/Read: after the crumb check,
    /// every request is answered 403 "<user> is missing the Overall/Read permission" [§1.1.4].
    void set_read_denied(bool denied);

    /// Every request read from now on is answered only after `delay` (a slow Jenkins; the
    /// request is recorded, with its answer decided, when it arrives). A client that closes the
    /// connection meanwhile marks the request `abandoned`. 0 resets.
    void set_answer_delay(std::chrono::milliseconds delay);
    /// As set_answer_delay, for build requests (build / buildWithParameters on a job) alone: a
    /// Jenkins slow to take builds while its API answers at once. 0 resets.
    void set_build_answer_delay(std::chrono::milliseconds delay);

    /// Requests read but not yet answered (being delayed, or hanging), right now.
    std::size_t in_flight() const;
    /// The most requests ever in flight at once since construction (or reset_peak_in_flight()).
    std::size_t peak_in_flight() const;
    /// Sets the peak to the current in_flight().
    void reset_peak_in_flight();

    /// Closes the listening socket and every open connection (clients then get "connection
    /// refused"). Idempotent.
    void stop();
    /// Listens again on the same port (no-op while serving). Like a Jenkins restart it drops all
    /// sessions and picks a new session cookie name; queued items survive with their ids.
    void start();

    /// Drops all sessions and picks a new session cookie name, so crumbs issued before stop being
    /// valid (what a Jenkins restart does to them).
    void invalidate_sessions();

    /// Queue items stay queued until drain_queue() (or their quiet period ends); while queued, an
    /// identical trigger (same job, same parameter values after defaults) merges: 201 (build) /
    /// 303 (buildWithParameters) with the same Location [§0.6]. drain_queue() starts every queued
    /// item now, oldest first, as a build.
    void drain_queue();

    /// Each item queued from now on starts by itself `period` after it was queued; 0 (the
    /// default): it stays queued until drain_queue().
    void set_quiet_period(std::chrono::milliseconds period);
    /// Builds started from now on run for `duration`; 0 (the default): until finish_builds().
    void set_build_duration(std::chrono::milliseconds duration);
    /// The results of the next builds to start, in order ("SUCCESS", "FAILURE", "UNSTABLE",
    /// "ABORTED", "NOT_BUILT"); when used up, SUCCESS. Replaces what was left of the list.
    void set_next_results(std::vector<std::string> results);
    /// How long a left item stays readable (GET queue/item/<id>/); default 5 minutes as Jenkins.
    void set_left_item_ttl(std::chrono::milliseconds ttl);
    /// For builds started from now on: for this long after its item left the queue, the build
    /// does not exist yet (executable null, cancelled false; GET <job>/<n>/ 404, not in the
    /// builds list): the moment between Queue.onStartExecuting and the Run. Default 0.
    void set_executable_delay(std::chrono::milliseconds delay);
    /// Every running build finishes now with its result.
    void finish_builds();
    /// Cancels a queued item as POST queue/cancelItem would; false when it is unknown or has
    /// already left the queue.
    bool cancel_item(std::int64_t id);
    /// The ids of the queue items cancelled so far (POST queue/cancelItem or cancel_item()), in
    /// the order they were cancelled.
    std::vector<std::int64_t> cancelled_items() const;
    /// Every queue item so far, by id.
    std::vector<QueueItemInfo> queue_items() const;
    /// Every build so far, in the order they started.
    std::vector<BuildInfo> runs() const;

    /// Every request, in arrival order.
    std::vector<ReceivedRequest> requests() const;
    /// The build / buildWithParameters requests answered 201 or 303.
    std::vector<ReceivedRequest> builds() const;
    /// Waits (without fixed sleeps) until builds().size() >= n or `deadline` passed; returns
    /// whether it got there.
    bool wait_for_builds(std::size_t n, std::chrono::milliseconds deadline);
    /// Waits until requests().size() >= n or `deadline` passed.
    bool wait_for_requests(std::size_t n, std::chrono::milliseconds deadline);
    /// TCP connections accepted since construction.
    std::size_t connections_accepted() const;
    /// The current session cookie name, "JSESSIONID.<8 hex>".
    std::string cookie_name() const;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

/// A throwaway CA and a server certificate for 127.0.0.1 / localhost (SAN), as PEM files.
struct TestCertificates {
    std::string ca_file, cert_file, key_file;
};

/// Generates a self-signed CA (EC P-256) and a server certificate it signs, valid from an hour
/// ago for two days, with subjectAltName IP:127.0.0.1, DNS:localhost and serverAuth usage.
/// Writes ca.pem, server.pem and server-key.pem into `dir` (created if missing) and returns their
/// paths. Uses the OpenSSL C API. Throws std::runtime_error on failure. Defined in test_ca.cpp.
TestCertificates make_test_certificates(const std::string& dir);

}  // namespace hookrelay::test
