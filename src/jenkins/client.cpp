#include "jenkins/client.hpp"

#include "httpclient/client.hpp"
#include "jenkins/encoding.hpp"
#include "jenkins/follow.hpp"
#include "jenkins/response.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace hookrelay::jenkins {

namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using Kind = JenkinsOutcome::Kind;
using httpclient::Method;
using httpclient::Response;
using httpclient::status_text;

// Jenkins answers triggers with an empty body and errors with an HTML page; only the crumb JSON
// is parsed, and a 403 body is searched for "No valid crumb". Nothing larger is worth reading.
constexpr std::size_t k_body_limit = 64 * 1024;
constexpr std::uint32_t k_header_limit = 32 * 1024;
constexpr std::string_view k_crumb_rejected = "No valid crumb";
constexpr std::string_view k_form_type = "application/x-www-form-urlencoded";

// read()'s path as a request target: bytes a URI may not carry raw ('[', ']', '{', '}' of a
// `tree` filter, '"', '|', non-ASCII, ...) percent-encoded; '%' stays (the path is encoded
// already where it has to be, e.g. job_path()). Jenkins decodes the query as usual.
std::string request_target_of(std::string_view path) {
    static constexpr std::string_view k_raw = "-._~!$&'()*+,;=:@/?%";
    static constexpr std::string_view k_hex = "0123456789ABCDEF";
    std::string out;
    out.reserve(path.size());
    for (const char c : path) {
        const auto u = static_cast<unsigned char>(c);
        const bool alnum =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (alnum || k_raw.find(c) != std::string_view::npos) {
            out += c;
        } else {
            out += '%';
            out += k_hex[u >> 4];
            out += k_hex[u & 0xF];
        }
    }
    return out;
}

// A proxy's answer that it gave up waiting for Jenkins' answer: 504 (nginx also answers it when
// its own connect to Jenkins timed out: then nothing was queued), Cloudflare's 524 (connected,
// no answer) and the informal 598 (a read timeout). Not 599, a connect timeout.
bool gateway_timeout(int status) {
    return status == 504 || status == 524 || status == 598;
}

class Client final : public JenkinsClient, public std::enable_shared_from_this<Client> {
  public:
    Client(JenkinsConfig config, std::shared_ptr<httpclient::Client> http)
        : config_(std::move(config)), http_(std::move(http)) {
        if (!config_.user.empty()) {
            authorization_ = Secret(
                "Basic " + base64(config_.user + ":" + std::string(config_.api_token.reveal())));
        }
    }

    asio::awaitable<JenkinsOutcome> trigger(TriggerRequest request,
                                            std::optional<Secret> job_token) override {
        auto self = shared_from_this();
        const auto display = job_display_path(request.job);
        auto unanswered = std::make_shared<bool>(false);
        auto outcome =
            co_await bounded(do_trigger(std::move(request), std::move(job_token), unanswered));
        if (outcome.kind == Kind::unavailable && *unanswered) {
            outcome.maybe_queued = true;
            outcome.detail += " (the request was sent: Jenkins may have queued the build)";
        }
        spdlog::debug("jenkins {}: trigger {}: {} ({}, {} ms)", config_.name, display,
                      to_string(outcome.kind), outcome.detail, outcome.duration.count());
        co_return outcome;
    }

    asio::awaitable<JenkinsOutcome> probe() override {
        auto self = shared_from_this();
        auto outcome = co_await bounded(do_probe());
        spdlog::debug("jenkins {}: probe: {} ({})", config_.name, to_string(outcome.kind),
                      outcome.detail);
        co_return outcome;
    }

    asio::awaitable<JenkinsOutcome> scan(std::vector<std::string> project) override {
        auto self = shared_from_this();
        const auto display = job_display_path(project);
        auto outcome = co_await bounded(do_scan(std::move(project)));
        spdlog::debug("jenkins {}: scan {}: {} ({}, {} ms)", config_.name, display,
                      to_string(outcome.kind), outcome.detail, outcome.duration.count());
        co_return outcome;
    }

    asio::awaitable<JenkinsOutcome> cancel_item(std::int64_t queue_id) override {
        auto self = shared_from_this();
        auto outcome = co_await bounded(do_cancel_item(queue_id));
        spdlog::debug("jenkins {}: cancel queue item {}: {} ({}, {} ms)", config_.name, queue_id,
                      to_string(outcome.kind), outcome.detail, outcome.duration.count());
        co_return outcome;
    }

    asio::awaitable<JenkinsOutcome> read(std::string path) override {
        auto self = shared_from_this();
        const auto shown = path.substr(0, path.find('?'));
        auto outcome = co_await bounded(do_read(std::move(path)));
        spdlog::debug("jenkins {}: read {}: {} ({}, {} ms)", config_.name, shown,
                      to_string(outcome.kind), outcome.detail, outcome.duration.count());
        co_return outcome;
    }

  private:
    // Runs `work` in one of the HTTP client's slots under its request_timeout; never throws.
    asio::awaitable<JenkinsOutcome> bounded(asio::awaitable<JenkinsOutcome> work) {
        const auto start = Clock::now();
        auto ran = co_await http_->run(std::move(work));
        JenkinsOutcome outcome;
        if (ran.value) {
            outcome = std::move(*ran.value);
        } else {
            outcome.kind = Kind::unavailable;
            outcome.detail = std::move(ran.error);
        }
        outcome.duration =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
        co_return outcome;
    }

    const BaseUrl& base() const { return http_->base(); }

    void add_auth(httpclient::Request& request) const {
        if (!config_.user.empty()) {
            request.headers.emplace_back("Authorization", std::string(authorization_.reveal()));
        }
    }

    // GETs of the JSON API (probe, crumbIssuer, read()): no crumb needed.
    httpclient::Request get(std::string target) const {
        httpclient::Request request;
        request.method = Method::get;
        request.target = std::move(target);
        add_auth(request);
        request.headers.emplace_back("Accept", "application/json");
        return request;
    }

    httpclient::Request post(std::string target, std::string body,
                             const std::optional<Crumb>& crumb) const {
        httpclient::Request request;
        request.method = Method::post;
        request.target = std::move(target);
        add_auth(request);
        if (crumb && !crumb->field.empty()) {
            request.headers.emplace_back(crumb->field, crumb->value);
            if (!crumb->cookie.empty()) request.headers.emplace_back("Cookie", crumb->cookie);
        }
        request.headers.emplace_back("Content-Type", std::string(k_form_type));
        request.body = std::move(body);
        return request;
    }

    // `unanswered`: Request::unanswered of the build request.
    asio::awaitable<JenkinsOutcome> do_trigger(TriggerRequest request,
                                               std::optional<Secret> job_token,
                                               std::shared_ptr<bool> unanswered) {
        if (request.job.empty()) {
            // Would POST to the Jenkins root; no retry can fix a rule that renders no job.
            JenkinsOutcome outcome;
            outcome.kind = Kind::permanent;
            outcome.detail = "empty job path";
            co_return outcome;
        }
        const bool with_parameters = !request.parameters.empty();
        std::string target = base().path + job_path(request.job) +
                             (with_parameters ? "buildWithParameters" : "build") + "?delay=0sec";
        if (job_token && !job_token->empty()) {
            target += "&token=" + percent_encode(job_token->reveal());
        }
        // A parameter the job defines as "cause" already carries the text; a second value would
        // make Jenkins fail with 500 (reference §1.5).
        std::vector<std::pair<std::string, std::string>> form;
        const bool cause_is_parameter =
            std::any_of(request.parameters.begin(), request.parameters.end(),
                        [](const auto& p) { return p.first == "cause"; });
        if (!cause_is_parameter) form.emplace_back("cause", request.cause);
        for (auto& parameter : request.parameters) form.push_back(std::move(parameter));
        const std::string body = form_encode(form);

        JenkinsOutcome failure;
        auto sent = co_await post_with_crumb(std::move(target), body, failure, unanswered);
        if (!sent) co_return failure;
        // A proxy's answer that it passed the POST on and gave up waiting for Jenkins.
        if (gateway_timeout(sent->status)) *unanswered = true;
        auto outcome = answered(*sent);
        // What Jenkins' bare status means for a build request (jenkins-remote-api.md §1.3-1.4):
        // the online check knows the job's parameters, the dead trigger should say what to fix.
        if (sent->status == 400 && sent->body.find("is not parameterized") != std::string::npos) {
            outcome.detail += ": the job takes no parameters, and this trigger sends some";
        } else if (sent->status == 400 &&
                   (sent->body.find("Nothing is submitted") != std::string::npos ||
                    sent->body.find("expects a form submission") != std::string::npos)) {
            outcome.detail +=
                ": the job is parameterized, and this trigger sends no parameters (send at least "
                "one; the others take their defaults)";
        } else if (sent->status == 409) {
            outcome.detail += ": the job is not buildable (disabled?)";
        } else if (sent->status == 403 && sent->body.find(k_crumb_rejected) != std::string::npos) {
            // The crumb is bound to the session: refused right after it was fetched, the session
            // cookie did not come back.
            outcome.detail +=
                " after a fresh crumb: the session cookie does not come back (a proxy that "
                "strips Cookie or Set-Cookie, or requests spread over several controllers)";
        }
        co_await blame_forbidden(*sent, outcome);
        co_return outcome;
    }

    // POSTs `body` to `target` with the auth and, for an anonymous client, the CSRF crumb
    // (fetched when none is cached); a 403 "No valid crumb" makes it fetch a new one and retry
    // once. The response, or nullopt with `failure` set when no crumb or no response came.
    // `unanswered` goes with each POST (Request::unanswered).
    asio::awaitable<std::optional<Response>> post_with_crumb(
        std::string target, std::string body, JenkinsOutcome& failure,
        std::shared_ptr<bool> unanswered = nullptr) {
        auto crumb = cached_crumb();
        if (config_.user.empty() && !crumb) {
            if (!co_await fetch_crumb(crumb, failure)) co_return std::nullopt;
        }
        auto request = post(target, body, crumb);
        request.unanswered = unanswered;
        auto sent = co_await http_->send(std::move(request));
        if (sent.ok && sent.response.status == 403 &&
            sent.response.body.find(k_crumb_rejected) != std::string::npos) {
            forget_crumb(crumb);
            if (!co_await fetch_crumb(crumb, failure)) co_return std::nullopt;
            request = post(target, body, crumb);
            request.unanswered = std::move(unanswered);
            sent = co_await http_->send(std::move(request));
        }
        if (!sent.ok) {
            failure = unreachable(std::move(sent.error));
            co_return std::nullopt;
        }
        co_return std::move(sent.response);
    }

    // A POST's 403 that is not about the crumb: the item's (wrong job token, no permission on
    // this job or queue item) or the user's (no Overall/Read at all)? The root API needs only
    // Overall/Read: ask it, and make the outcome auth_failed when it refuses too.
    asio::awaitable<void> blame_forbidden(const Response& reply, JenkinsOutcome& outcome) {
        if (reply.status != 403 || outcome.kind != Kind::permanent ||
            reply.body.find(k_crumb_rejected) != std::string::npos) {
            co_return;
        }
        auto root = co_await do_probe();
        if (root.kind == Kind::auth_failed) {
            outcome.kind = Kind::auth_failed;
            outcome.detail += " (and the root API: " + root.detail + ")";
        }
    }

    // ComputedFolder.doBuild (jenkins-builds-and-jobs.md §2.4): 302 back to the folder, no queue
    // item; 500 "... cannot be recomputed" when the item is not a computed folder.
    asio::awaitable<JenkinsOutcome> do_scan(std::vector<std::string> project) {
        if (project.empty()) {
            JenkinsOutcome outcome;
            outcome.kind = Kind::permanent;
            outcome.detail = "empty project path";
            co_return outcome;
        }
        // POST build on a job queues a build of it: a job is never sent a scan. A read that does
        // not answer leaves it to the POST's own answer.
        const auto project_path = base().path + job_path(project);
        if (auto item = co_await http_->send(get(project_path + std::string(k_project_tree)));
            item.ok && item.response.status == 200 && is_job_answer(item.response.body)) {
            JenkinsOutcome outcome;
            outcome.kind = Kind::permanent;
            outcome.http_status = item.response.status;
            outcome.detail = "'" + job_display_path(project) +
                             "' is a job, not a multibranch project or organization folder: no "
                             "scan requested (POST build would queue a build of it)";
            co_return outcome;
        }
        JenkinsOutcome failure;
        auto sent =
            co_await post_with_crumb(project_path + "build?delay=0sec", std::string(), failure);
        if (!sent) co_return failure;
        auto outcome = answered_post(*sent);
        if (sent->status == 500) {
            outcome.detail +=
                ": cannot be recomputed (not a multibranch project or organization "
                "folder, or disabled)";
        }
        // ComputedFolder.doBuild answers 302 back to the project. A redirect elsewhere comes from
        // something in front of Jenkins (a single sign-on proxy's login page), or a queue item
        // from a job: neither is a scan.
        if (outcome.kind == Kind::queued && sent->status >= 300 && sent->status < 400) {
            const auto location = resolve_location(base(), sent->header("Location"));
            const auto path = location.substr(0, location.find_first_of("?#"));
            const auto project_part = job_path(project);
            const bool back_to_project =
                path.ends_with(project_part) ||
                path.ends_with(std::string_view(project_part).substr(0, project_part.size() - 1));
            if (!back_to_project) {
                outcome.kind = Kind::permanent;
                outcome.detail += (path.empty() ? std::string(" without a Location")
                                                : " to " + httpclient::shown_url(path)) +
                                  ", not back to the project (a proxy's login page?): no scan "
                                  "was requested";
            }
        }
        co_await blame_forbidden(*sent, outcome);
        co_return outcome;
    }

    // Queue.doCancelItem (jenkins-builds-and-jobs.md §2.2): 204 cancelled; 404 unknown or already
    // left the queue; 422 no Cancel permission; 500 the cancel failed.
    asio::awaitable<JenkinsOutcome> do_cancel_item(std::int64_t queue_id) {
        JenkinsOutcome failure;
        auto sent = co_await post_with_crumb(
            base().path + "queue/cancelItem?id=" + std::to_string(queue_id), std::string(),
            failure);
        if (!sent) co_return failure;
        auto outcome = answered_post(*sent);
        if (sent->status == 404) {
            outcome.detail += ": not in the queue (started, cancelled or unknown)";
        } else if (sent->status == 422) {
            outcome.detail += ": not cancellable (no Job/Cancel permission)";
        } else if (sent->status == 500) {
            outcome.detail += ": the cancel failed";
        }
        co_await blame_forbidden(*sent, outcome);
        co_return outcome;
    }

    asio::awaitable<JenkinsOutcome> do_probe() {
        auto sent = co_await http_->send(get(base().path + "api/json?tree=mode"));
        if (!sent.ok) co_return unreachable(std::move(sent.error));
        JenkinsOutcome outcome;
        outcome.http_status = sent.response.status;
        outcome.detail = status_text(sent.response.status);
        outcome.retry_after = retry_after_of(sent.response);
        // Any answer but 502/503/504 means Jenkins is up; 2xx reads as "queued" so the kind is
        // never mistaken for a failure. The root API needs only Overall/Read, so a 401 or 403
        // here is the credentials', not a job's.
        const auto status = sent.response.status;
        if (status >= 200 && status < 300) {
            outcome.kind = Kind::queued;
        } else if (status == 401 || status == 403) {
            outcome.kind = Kind::auth_failed;
        } else {
            outcome.kind = classify(status);
        }
        co_return outcome;
    }

    asio::awaitable<JenkinsOutcome> do_read(std::string path) {
        if (!usable_read_path(path)) {
            JenkinsOutcome outcome;
            outcome.kind = Kind::permanent;
            outcome.detail = "not a path below the Jenkins url";
            co_return outcome;
        }
        auto request = get(base().path + request_target_of(path));
        request.body_limit = k_read_body_limit;
        auto sent = co_await http_->send(std::move(request));
        if (!sent.ok) co_return unreachable(std::move(sent.error));
        auto& reply = sent.response;
        JenkinsOutcome outcome;
        outcome.http_status = reply.status;
        outcome.detail = status_text(reply.status);
        outcome.retry_after = retry_after_of(reply);
        const auto status = reply.status;
        if (status >= 200 && status < 300) {
            outcome.kind = Kind::queued;
            outcome.body = std::move(reply.body);
            if (reply.body_truncated) {
                outcome.detail +=
                    " (body cut at " + std::to_string(k_read_body_limit / 1024) + " KiB)";
            }
        } else if (status == 401) {
            outcome.kind = Kind::auth_failed;
        } else if (status == 429) {
            outcome.kind = Kind::throttled;  // a rate limiter: ask again later
        } else if (status >= 300 && status < 500) {
            // 403: Discover without Read on the job; 404: no such item (left items live 5
            // minutes), or no permission at all; a redirect: a login page or a wrong url.
            outcome.kind = Kind::permanent;
        } else {
            outcome.kind = classify(status);
        }
        if (reply.head_too_large) {
            outcome.detail +=
                " with a response head over " + std::to_string(k_header_limit / 1024) + " KiB";
        }
        if (outcome.retry_after) {
            const auto seconds = (outcome.retry_after->count() + 999) / 1000;
            outcome.detail += " (Retry-After " + std::to_string(seconds) + " s)";
        }
        co_return outcome;
    }

    // A path relative to the configured url that fits in a request line: no scheme, no leading
    // '/', no spaces or control characters.
    static bool usable_read_path(std::string_view path) {
        if (path.empty() || path.front() == '/') return false;
        if (path.substr(0, path.find('?')).find("://") != std::string_view::npos) return false;
        return std::none_of(path.begin(), path.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u <= 0x20 || u == 0x7f;
        });
    }

    static JenkinsOutcome unreachable(std::string detail) {
        JenkinsOutcome outcome;
        outcome.kind = Kind::unavailable;
        outcome.detail = std::move(detail);
        return outcome;
    }

    JenkinsOutcome answered(const Response& reply) const {
        JenkinsOutcome outcome;
        outcome.http_status = reply.status;
        outcome.kind = classify(reply.status);
        outcome.detail = status_text(reply.status);
        outcome.retry_after = retry_after_of(reply);
        if (reply.head_too_large) {
            outcome.detail += (outcome.kind == Kind::queued || outcome.kind == Kind::merged)
                                  ? " with a Location too long to use (response head over " +
                                        std::to_string(k_header_limit / 1024) + " KiB)"
                                  : " with a response head over " +
                                        std::to_string(k_header_limit / 1024) + " KiB";
            return outcome;
        }
        if (reply.status == 403 && reply.body.find(k_crumb_rejected) != std::string::npos) {
            outcome.detail = "HTTP 403 No valid crumb";
        }
        if (outcome.kind == Kind::queued || outcome.kind == Kind::merged) {
            // build-token-root answers a relative Location (reference §5.1); core an absolute one.
            outcome.queue_url = resolve_location(base(), reply.header("Location"));
            if (outcome.queue_url.empty()) {
                outcome.detail += " without Location";
            } else if (outcome.kind == Kind::merged && !queue_item_id(outcome.queue_url)) {
                // Jenkins' 303 names the queue item the build was merged into. One that leads
                // elsewhere comes from something in front of Jenkins (a single sign-on proxy
                // sending the POST to its login page): nothing was queued.
                outcome.kind = Kind::permanent;
                // Without its query (a login page's may carry a state token or a return URL).
                outcome.detail += " to " +
                                  httpclient::shown_url(outcome.queue_url.substr(
                                      0, outcome.queue_url.find_first_of("?#"))) +
                                  ", not a Jenkins queue item (a proxy's login page?): the "
                                  "build was not queued";
                outcome.queue_url.clear();
            }
        }
        if (outcome.retry_after) {
            // Rounded up to whole seconds, the header's own unit.
            const auto seconds = (outcome.retry_after->count() + 999) / 1000;
            outcome.detail += " (Retry-After " + std::to_string(seconds) + " s)";
        }
        return outcome;
    }

    // scan() and cancel_item(): any 2xx/3xx is done (queued, no queue_url); 401 auth_failed; 429
    // throttled; 500 and every other 4xx permanent; the rest as classify() says.
    JenkinsOutcome answered_post(const Response& reply) const {
        JenkinsOutcome outcome;
        outcome.http_status = reply.status;
        outcome.detail = status_text(reply.status);
        outcome.retry_after = retry_after_of(reply);
        const auto status = reply.status;
        if (status >= 200 && status < 400) {
            outcome.kind = Kind::queued;
        } else if (status == 500) {
            outcome.kind = Kind::permanent;
        } else {
            outcome.kind = classify(status);
        }
        if (reply.status == 403 && reply.body.find(k_crumb_rejected) != std::string::npos) {
            outcome.detail = "HTTP 403 No valid crumb";
        }
        if (reply.head_too_large) {
            outcome.detail +=
                " with a response head over " + std::to_string(k_header_limit / 1024) + " KiB";
        }
        if (outcome.retry_after) {
            const auto seconds = (outcome.retry_after->count() + 999) / 1000;
            outcome.detail += " (Retry-After " + std::to_string(seconds) + " s)";
        }
        return outcome;
    }

    static std::optional<std::chrono::milliseconds> retry_after_of(const Response& reply) {
        const auto value = reply.header("Retry-After");
        if (value.empty()) return std::nullopt;
        return parse_retry_after(value, std::chrono::system_clock::now());
    }

    std::optional<Crumb> cached_crumb() {
        std::lock_guard lock(mutex_);
        return crumb_;
    }

    void forget_crumb(const std::optional<Crumb>& used) {
        std::lock_guard lock(mutex_);
        if (crumb_ == used) crumb_.reset();
    }

    // Fetches a crumb and its session cookie into `crumb` (nullopt when CSRF protection is off)
    // and caches it; false with `failure` set when Jenkins did not hand one out.
    asio::awaitable<bool> fetch_crumb(std::optional<Crumb>& crumb, JenkinsOutcome& failure) {
        auto sent = co_await http_->send(get(base().path + "crumbIssuer/api/json"));
        if (!sent.ok) {
            failure = unreachable("crumbIssuer: " + sent.error);
            co_return false;
        }
        const auto& reply = sent.response;
        Crumb fresh;
        if (reply.status == 404) {
            // No crumb issuer: CSRF protection is disabled and nothing is checked.
        } else if (reply.status != 200 || reply.head_too_large) {
            failure.http_status = reply.status;
            failure.kind = classify(reply.status);
            failure.retry_after = retry_after_of(reply);
            if (failure.kind == Kind::queued || failure.kind == Kind::merged ||
                failure.kind == Kind::refused) {
                failure.kind = Kind::permanent;
            }
            // The crumb issuer needs only Overall/Read: a 403 refuses the caller, not a job.
            if (reply.status == 403) failure.kind = Kind::auth_failed;
            failure.detail = "crumbIssuer: " + status_text(reply.status);
            co_return false;
        } else {
            auto parsed = parse_crumb(reply.body, reply.headers_named("Set-Cookie"));
            if (!parsed) {
                failure.http_status = reply.status;
                failure.kind = Kind::permanent;
                failure.detail = "crumbIssuer: HTTP 200 without a usable crumb";
                co_return false;
            }
            fresh = std::move(*parsed);
        }
        {
            std::lock_guard lock(mutex_);
            crumb_ = fresh;
        }
        crumb = fresh;
        co_return true;
    }

    const JenkinsConfig config_;
    const std::shared_ptr<httpclient::Client> http_;
    Secret authorization_;

    std::mutex mutex_;  // guards crumb_; never held across co_await
    std::optional<Crumb> crumb_;
};

}  // namespace

result<std::shared_ptr<JenkinsClient>> make_client(boost::asio::any_io_executor executor,
                                                   const JenkinsConfig& config, std::string* why) {
    httpclient::Options options;
    options.name = "jenkins " + config.name;
    options.url = config.url;
    options.ca_file = config.ca_file;
    options.connect_timeout = config.connect_timeout;
    options.io_timeout = config.io_timeout;
    options.request_timeout = config.request_timeout;
    options.max_in_flight = config.max_in_flight;
    options.body_limit = k_body_limit;
    options.header_limit = k_header_limit;
    std::string reason;
    auto http = httpclient::Client::make(std::move(executor), std::move(options), &reason);
    if (!http) {
        if (why) *why = "jenkins " + config.name + ": " + std::move(reason);
        return http.error();
    }
    return std::shared_ptr<JenkinsClient>(std::make_shared<Client>(config, std::move(*http)));
}

}  // namespace hookrelay::jenkins
