#include "app/admin.hpp"

#include "config/load.hpp"
#include "dispatch/dispatcher.hpp"
#include "ingest/hmac.hpp"
#include "util/bridge.hpp"

#include <hookrelay/printable.hpp>
#include <hookrelay/version.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <map>
#include <set>

namespace hookrelay::app {

namespace asio = boost::asio;
namespace json = boost::json;
using Clock = std::chrono::system_clock;

std::string format_time(Clock::time_point t) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
    const std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                       static_cast<int>(((ms.count() % 1000) + 1000) % 1000));
}

std::optional<Clock::time_point> parse_time(std::string_view text, Clock::time_point now) {
    if (auto d = config::parse_duration(text)) return now - *d;
    // YYYY-MM-DD(T| )HH:MM:SS[.fff][Z|+hh:mm|-hh:mm]
    // Digits only: from_chars would take a sign ("T-1:12:03").
    auto number = [&](std::size_t pos, std::size_t len, int& out) {
        if (pos + len > text.size()) return false;
        const auto field = text.substr(pos, len);
        if (!std::all_of(field.begin(), field.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            return false;
        }
        const auto [p, ec] = std::from_chars(field.data(), field.data() + len, out);
        return ec == std::errc{} && p == field.data() + len;
    };
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (text.size() < 19 || text[4] != '-' || text[7] != '-' ||
        (text[10] != 'T' && text[10] != ' ') || text[13] != ':' || text[16] != ':' ||
        !number(0, 4, year) || !number(5, 2, month) || !number(8, 2, day) || !number(11, 2, hour) ||
        !number(14, 2, minute) || !number(17, 2, second)) {
        return std::nullopt;
    }
    std::size_t pos = 19;
    int millis = 0;
    if (pos < text.size() && text[pos] == '.') {
        std::size_t end = pos + 1;
        while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
        if (end == pos + 1) return std::nullopt;  // a point without a digit
        std::string frac(text.substr(pos + 1, end - pos - 1));
        frac.resize(3, '0');
        millis = std::stoi(frac.substr(0, 3));
        pos = end;
    }
    int offset_minutes = 0;
    // No zone: UTC, as `deliveries list` prints its times ("RECEIVED (UTC)").
    if (pos == text.size() || (text[pos] == 'Z' && pos + 1 == text.size())) {
    } else if (pos + 6 == text.size() && (text[pos] == '+' || text[pos] == '-') &&
               text[pos + 3] == ':') {
        int oh = 0, om = 0;
        if (!number(pos + 1, 2, oh) || !number(pos + 4, 2, om)) return std::nullopt;
        offset_minutes = (oh * 60 + om) * (text[pos] == '-' ? -1 : 1);
    } else {
        return std::nullopt;
    }
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
        return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    const std::time_t t = timegm(&tm);
    return Clock::from_time_t(t) + std::chrono::milliseconds(millis) -
           std::chrono::minutes(offset_minutes);
}

namespace {

// A delivery whose stored body cannot be read back (a damaged store file), each time it is read.
void warn_unreadable_body(const DeliveryDetail& d) {
    if (d.body_error.empty()) return;
    spdlog::warn("delivery {} (#{}): {}", printable_word(d.summary.delivery_id), d.summary.seq,
                 d.body_error);
}

// Stored values are what forges sent, and a delivery id (not signed) or a header need not be
// UTF-8; the answer must be: such a byte reads as the text \xNN.
http::Response reply(unsigned status, const json::value& body) {
    http::Response r;
    r.status = status;
    r.body = valid_utf8(json::serialize(body), "\\\\x");
    r.body += '\n';
    return r;
}

// The 404 of a delivery looked up by id: what the id could be instead, and why it may be gone.
std::string no_delivery(std::string_view id, std::string_view source,
                        std::chrono::milliseconds retention) {
    std::string out = fmt::format("no delivery '{}'{}", id,
                                  source.empty() ? "" : fmt::format(" of source '{}'", source));
    const bool digits = !id.empty() && std::all_of(id.begin(), id.end(),
                                                   [](char c) { return c >= '0' && c <= '9'; });
    if (digits) {
        out += fmt::format(" (a SEQ from `deliveries list` is written #{}, quoted in a shell)", id);
    }
    out += fmt::format(
        ": ids are the forge's delivery ids; deliveries are kept for store.retention ({:.1f} "
        "day(s) here), and a request that was turned away was never stored (hookrelay status "
        "lists those)",
        std::chrono::duration<double, std::ratio<86400>>(retention).count());
    return out;
}

http::Response fail(unsigned status, std::string_view reason) {
    return reply(status, json::object{{"error", reason}});
}

// How `deliveries show` names a delivery: its forge id, or #<seq> when it has none.
std::string shown_id(const DeliverySummary& d) {
    return d.delivery_id.empty() ? "#" + std::to_string(d.seq) : d.delivery_id;
}

bool token_matches(const std::optional<Secret>& token, const HeaderMap& headers) {
    if (!token) return false;
    const auto header = headers.find("Authorization");
    // The scheme's name is case-insensitive (RFC 9110 §11.1): `bearer` is Bearer.
    constexpr std::string_view k_scheme = "Bearer ";
    if (!header || !iequals(header->substr(0, k_scheme.size()), k_scheme)) return false;
    return ingest::any_token_matches(std::span(&*token, 1), header->substr(k_scheme.size()));
}

// The Jenkins entries held right now (down or refusing our credentials), as this instance knows
// from the store, each with why.
using HeldJenkins = std::map<std::string, std::string, std::less<>>;

// Where a delivery stands, one word per trigger (trigger_outcome(), "held" for an open trigger
// whose Jenkins is held), distinct ones joined by ','; "unmatched" when no rule queued anything.
json::object summary_json(const DeliverySummary& d, const HeldJenkins& held) {
    json::array outcomes;
    std::vector<std::string> words;
    for (const auto& [jenkins, outcome] : d.outcomes) {
        std::string word = outcome;
        if ((word == "pending" || word == "retrying") && held.contains(jenkins)) word = "held";
        outcomes.push_back(json::object{{"jenkins", jenkins}, {"outcome", word}});
        if (std::find(words.begin(), words.end(), word) == words.end()) words.push_back(word);
    }
    std::string outcome = words.empty() ? std::string("unmatched") : std::string();
    for (const auto& w : words) outcome += (outcome.empty() ? "" : ",") + w;
    return json::object{
        {"seq", d.seq},
        {"source", d.source},
        {"provider", to_string(d.provider)},
        {"delivery_id", d.delivery_id},
        {"event", to_string(d.kind)},
        {"forge_event", d.forge_event},
        {"received_at", format_time(d.received_at)},
        {"repository", d.repository},
        {"ref", d.ref},
        {"outcome", outcome},
        {"outcomes", std::move(outcomes)},
        {"triggers",
         json::object{{"pending", d.pending}, {"delivered", d.delivered}, {"dead", d.dead}}}};
}

// What following found: absent until the trigger was delivered.
json::object build_json(const BuildRecord& b) {
    json::object o;
    if (!b.queue_url.empty()) o["queue_url"] = b.queue_url;
    if (b.queue_id != 0) o["queue_id"] = b.queue_id;
    if (b.merged) {
        o["merged"] = true;
        if (!b.merged_with.empty()) o["merged_with"] = b.merged_with;
    }
    if (!b.why.empty()) o["why"] = b.why;
    if (b.number != 0) o["number"] = b.number;
    if (!b.url.empty()) o["url"] = b.url;
    if (!b.result.empty()) o["result"] = b.result;
    if (b.queued_at) o["queued_at"] = format_time(*b.queued_at);
    if (b.started_at) o["started_at"] = format_time(*b.started_at);
    if (b.finished_at) o["finished_at"] = format_time(*b.finished_at);
    if (b.started_at && b.finished_at) {
        o["duration_ms"] =
            std::chrono::duration_cast<std::chrono::milliseconds>(*b.finished_at - *b.started_at)
                .count();
    }
    if (!b.error.empty()) o["error"] = b.error;
    return o;
}

// What `deliveries list --outcome` takes.
const std::vector<std::string_view>& outcome_words() {
    static const std::vector<std::string_view> words{
        "unmatched", "held",      "pending",   "retrying", "dead",      "delivered",
        "queued",    "building",  "started",   "SUCCESS",  "UNSTABLE",  "FAILURE",
        "ABORTED",   "NOT_BUILT", "CANCELLED", "lost",     "superseded"};
    return words;
}

json::object wish_json(const StatusWish& w) {
    json::object o{{"state", w.state}, {"description", w.description}};
    if (!w.target_url.empty()) o["target_url"] = w.target_url;
    return o;
}

// The commit statuses of a trigger: where they go, the newest wanted, the last the forge took.
json::object status_json(const StatusTarget& target, const StatusProgress& p) {
    json::object o{
        {"repository", target.repository}, {"sha", target.sha}, {"context", target.context}};
    if (!target.ref.empty()) o["ref"] = target.ref;
    if (p.wanted_seq > 0) o["wanted"] = wish_json(p.wanted);
    if (!p.posted.state.empty()) o["posted"] = wish_json(p.posted);
    o["up_to_date"] = p.posted_seq >= p.wanted_seq;
    if (!p.error.empty()) o["error"] = p.error;
    return o;
}

json::object trigger_json(const TriggerHistory& h) {
    const auto& t = h.trigger;
    json::object params;
    for (const auto& [k, v] : t.request.parameters) params[k] = v;
    json::array history;
    for (const auto& a : h.attempts) {
        json::object o{{"at", format_time(a.at)},
                       {"outcome", a.outcome},
                       {"duration_ms", a.duration.count()},
                       {"counted", a.counted}};
        if (a.http_status != 0) o["http_status"] = a.http_status;
        if (!a.queue_url.empty()) o["queue_url"] = a.queue_url;
        if (!a.instance.empty()) o["instance"] = a.instance;
        history.push_back(std::move(o));
    }
    json::object out{{"id", t.id},
                     {"rule", t.request.rule},
                     {"jenkins", t.request.jenkins},
                     {"job", job_display_path(t.request.job)},
                     {"parameters", std::move(params)},
                     {"cause", t.request.cause},
                     {"state", to_string(t.state)},
                     {"attempts", t.attempts},
                     {"created_at", format_time(t.created_at)},
                     {"updated_at", format_time(h.updated_at)},
                     {"next_attempt_at", format_time(t.next_attempt_at)},
                     {"last_outcome", t.last_outcome},
                     {"queue_url", t.queue_url},
                     {"outcome", trigger_outcome(t)},
                     {"follow", to_string(t.request.follow)},
                     {"following", t.following},
                     {"history", std::move(history)}};
    if (auto build = build_json(t.build); !build.empty()) out["build"] = std::move(build);
    if (t.request.status) out["status"] = status_json(*t.request.status, t.status);
    if (!t.request.coalesce.empty()) out["coalesce"] = t.request.coalesce;
    if (!t.superseded_by.empty()) out["superseded_by"] = t.superseded_by;
    if (t.request.multibranch > 0) {
        out["multibranch"] = job_display_path(project_of(t.request));
        out["branch"] = t.request.job.back();
    }
    if (t.request.scan_only) out["scan"] = true;
    // The instance attempting it right now (its claim may have run out if that one died).
    if (!h.claimed_by.empty()) out["claimed_by"] = h.claimed_by;
    return out;
}

HeaderMap header_map(const std::vector<std::pair<std::string, std::string>>& fields) {
    HeaderMap h;
    for (const auto& [k, v] : fields) h.add(k, v);
    return h;
}

struct Target {
    std::vector<std::string> segments;
    std::map<std::string, std::string> query;
};

std::optional<Target> parse_target(std::string_view target) {
    auto url = boost::urls::parse_origin_form(target);
    if (!url) return std::nullopt;
    Target t;
    for (auto segment : url->segments()) t.segments.emplace_back(segment);
    for (auto param : url->params()) t.query[std::string(param.key)] = std::string(param.value);
    return t;
}

// Bounded like everything the listing returns.
constexpr std::size_t k_max_limit = 1000;
// A listing by repository or ref reads the store's pages of this many deliveries (with SQLite
// each read on the store's one thread in one go, between the commits), at most
// k_list_walk_pages of them per request, then answers what matched with a cursor.
constexpr std::size_t k_list_walk_page = 200;
constexpr std::size_t k_list_walk_pages = 5;
// A store call asked with the request's deadline already past still gets this long.
constexpr std::chrono::milliseconds k_least_wait{1};

// Whether `id` can name a trigger: printable UTF-8 text (no NUL). PostgreSQL's text type refuses
// invalid UTF-8 and NUL, and a statement it refuses counts as a store failure (/readyz 503 until
// the next call succeeds). Trigger ids are UUIDs.
bool text_id(std::string_view id) {
    return !id.empty() && printable(id) == id;
}

// What is left until `deadline`, in whole milliseconds (negative once it has passed).
std::chrono::milliseconds left_until(std::chrono::steady_clock::time_point deadline) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                 std::chrono::steady_clock::now());
}

// A `limit` query value: a whole number from 1 to k_max_limit.
std::optional<std::size_t> parse_limit(std::string_view text) {
    std::size_t n = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || p != text.data() + text.size() || n == 0 || n > k_max_limit) {
        return std::nullopt;
    }
    return n;
}

}  // namespace

std::chrono::milliseconds AdminHandler::store_timeout() const {
    return s_.webhooks->runtime()->config->server.store_timeout;
}

asio::awaitable<std::string> AdminHandler::unsent_backlog() {
    auto backlog =
        co_await await_callback<result<std::vector<std::pair<std::string, std::size_t>>>>(
            [&](auto done) { s_.store->backlog(std::move(done)); }, store_timeout());
    if (!backlog || !*backlog || !s_.dispatcher) co_return std::string();
    std::set<std::string> sent;
    for (const auto& lane : s_.dispatcher->status()) sent.insert(lane.jenkins);
    std::string names;
    for (const auto& [name, n] : backlog->value()) {
        if (n == 0 || sent.count(name)) continue;
        names += fmt::format("{}{} ({} open)", names.empty() ? "" : ", ", name, n);
    }
    if (names.empty()) co_return std::string();
    co_return fmt::format(
        "open triggers for Jenkins this instance's configuration has no entry "
        "for: {}; it sends none of them until an entry of that name is "
        "configured again (hookrelay status lists them as not-configured; "
        "another instance sharing the store may have one)",
        names);
}

std::chrono::milliseconds AdminHandler::retention() const {
    return retention_;
}

AdminHandler::AdminHandler(Services services)
    : s_(std::move(services)),
      started_(std::chrono::steady_clock::now()),
      retention_(s_.webhooks->runtime()->config->store.retention) {}

std::optional<http::Response> AdminHandler::check_head(const http::RequestHead& head) {
    const auto path = std::string_view(head.target).substr(0, head.target.find('?'));
    if (path == "/healthz" || path == "/readyz") {
        if (head.method != "GET") {
            auto r = fail(405, "use GET");
            r.headers.emplace_back("Allow", "GET");
            return r;
        }
        return std::nullopt;
    }
    const auto runtime = s_.webhooks->runtime();
    const auto& token = runtime->config->admin.token;
    if (!token) return fail(403, "no admin.token is configured; the API and /metrics are off");
    if (!token_matches(token, head.headers)) {
        auto r = fail(401, "missing or wrong bearer token");
        r.headers.emplace_back("WWW-Authenticate", "Bearer");
        return r;
    }
    if (head.content_length && *head.content_length > 64 * 1024) {
        return fail(413, "admin requests carry no large bodies");
    }
    return std::nullopt;
}

asio::awaitable<http::Response> AdminHandler::handle(http::Request request) {
    const auto target = parse_target(request.head.target);
    if (!target) co_return fail(400, "malformed request target");
    const auto& seg = target->segments;
    const auto& q = target->query;
    const auto& method = request.head.method;
    const auto now = Clock::now();
    auto get = [&](const std::string& key) -> std::string {
        auto it = q.find(key);
        return it == q.end() ? std::string() : it->second;
    };
    auto wrong_method = [&](const char* allowed) {
        auto r = fail(405, fmt::format("use {}", allowed));
        r.headers.emplace_back("Allow", allowed);
        return r;
    };

    if (seg == std::vector<std::string>{"healthz"}) {
        co_return reply(200, json::object{{"status", "ok"}});
    }
    if (seg == std::vector<std::string>{"readyz"}) {
        const bool ready = s_.ready && s_.ready();
        co_return reply(ready ? 200 : 503, json::object{{"status", ready ? "ready" : "not ready"}});
    }
    if (seg == std::vector<std::string>{"metrics"}) {
        if (method != "GET") co_return wrong_method("GET");
        // Backlog gauges are read from the store at scrape time.
        auto backlog =
            co_await await_callback<result<std::vector<std::pair<std::string, std::size_t>>>>(
                [&](auto done) { s_.store->backlog(std::move(done)); }, store_timeout());
        if (s_.metrics) {
            // A count that failed or ran out of time leaves the gauges as last read: 0 would
            // tell a backlog that drained.
            if (backlog && *backlog) {
                std::map<std::string, std::size_t> open;
                for (const auto& j : s_.webhooks->runtime()->config->jenkins) open[j.name] = 0;
                // A lane of an entry a reload removed still sends its triggers until the restart:
                // its gauge goes to 0 with them rather than keep the last count.
                if (s_.dispatcher) {
                    for (const auto& lane : s_.dispatcher->status()) open[lane.jenkins] = 0;
                }
                for (const auto& [name, n] : backlog->value()) open[name] = n;
                for (const auto& [name, n] : open) s_.metrics->backlog(name, n);
            } else {
                const std::string why = backlog ? backlog->error().message()
                                                : std::string("no answer in server.store_timeout");
                spdlog::warn(
                    "metrics: hookrelay_backlog not updated: the store did not count "
                    "the open triggers: {}",
                    why);
            }
            s_.metrics->store_unindexed(s_.store->unindexed());
        }
        http::Response r;
        r.content_type = "text/plain; version=0.0.4";
        r.body = s_.metrics_text ? s_.metrics_text() : std::string();
        co_return r;
    }
    if (seg.size() < 3 || seg[0] != "api" || seg[1] != "v1")
        co_return fail(404, "no such endpoint");
    const auto& what = seg[2];
    // The Jenkins held right now, as this instance knows them (the holds are the store's).
    const auto held_jenkins = [&] {
        HeldJenkins out;
        if (!s_.dispatcher) return out;
        for (const auto& lane : s_.dispatcher->status()) {
            if (lane.held) out.emplace(lane.jenkins, lane.held_reason);
        }
        return out;
    };

    if (what == "status" && seg.size() == 3) {
        if (method != "GET") co_return wrong_method("GET");
        auto backlog =
            co_await await_callback<result<std::vector<std::pair<std::string, std::size_t>>>>(
                [&](auto done) { s_.store->backlog(std::move(done)); }, store_timeout());
        // Without a count (the store failed or ran out of time) each backlog is null: unknown.
        const bool counted = backlog && *backlog;
        std::map<std::string, std::size_t> open;
        if (counted) {
            for (const auto& [name, n] : backlog->value()) open[name] = n;
        }
        // Held state is the cluster's (from the store); in-flight counts this instance's.
        auto holds = co_await await_callback<result<std::map<std::string, JenkinsHold>>>(
            [&](auto done) { s_.store->holds(std::move(done)); }, store_timeout());
        json::array jenkins;
        for (const auto& lane : s_.dispatcher->status()) {
            const JenkinsHold* hold = nullptr;
            if (holds && *holds) {
                auto it = holds->value().find(lane.jenkins);
                if (it != holds->value().end()) hold = &it->second;
            }
            // unknown: no request of this instance reached it since start (and nobody holds
            // it); a Jenkins at a closed port is not "up" before anything was sent to it.
            const bool auth_failed = hold ? is_auth_failed(*hold) : lane.held && lane.auth_failed;
            const char* state = auth_failed         ? "auth-failed"
                                : hold || lane.held ? "held"
                                : lane.throttled    ? "throttled"
                                : lane.contacted    ? "up"
                                                    : "unknown";
            json::object o{{"name", lane.jenkins},
                           {"state", state},
                           {"in_flight", lane.in_flight},
                           {"backlog", counted ? json::value(open[lane.jenkins]) : nullptr}};
            if (hold) {
                std::string_view reason = hold->reason;
                if (auth_failed) reason.remove_prefix(k_auth_failed_reason.size());
                o["held_reason"] = reason;
                o["held_since"] = format_time(hold->since);
                o["next_probe_at"] = format_time(hold->next_probe_at);
            }
            if (auth_failed) o["fix"] = lane.auth_key;  // the config key, never its value
            json::array findings;
            if (s_.findings) {
                for (auto& f : s_.findings(lane.jenkins)) findings.emplace_back(std::move(f));
            }
            o["findings"] = std::move(findings);
            jenkins.push_back(std::move(o));
            open.erase(lane.jenkins);
        }
        // Open triggers of a Jenkins this instance has no entry for (a restart after removing or
        // renaming it): it sends none of them until an entry of that name is configured again.
        // (Another instance sharing the store may have one.)
        for (const auto& [name, n] : open) {
            if (n == 0) continue;
            jenkins.push_back(json::object{
                {"name", name},
                {"state", "not-configured"},
                {"in_flight", 0},
                {"backlog", n},
                {"held_reason",
                 "no jenkins entry of this name in this instance's configuration: it sends "
                 "none of its open triggers until one is configured again (a reload takes it)"},
                {"findings", json::array{}}});
        }
        // Requests turned away are not stored: how many since start, per source, status and
        // reason, and the last of each.
        json::array rejections;
        for (const auto& r : s_.webhooks->rejections()) {
            rejections.push_back(json::object{{"source", r.source},
                                              {"status", r.status},
                                              {"count", r.count},
                                              {"last_at", format_time(r.last_at)},
                                              {"last_reason", r.last_reason},
                                              {"last_client", r.last_client}});
        }
        auto instances = co_await await_callback<result<std::vector<InstanceInfo>>>(
            [&](auto done) { s_.store->instances(std::move(done)); }, store_timeout());
        json::array members;
        json::array disagreements;
        if (instances && *instances) {
            for (const auto& i : instances->value()) {
                json::object urls;
                for (const auto& [name, url] : i.jenkins) urls[name] = url;
                members.push_back(json::object{{"id", i.id},
                                               {"host", i.host},
                                               {"version", i.version},
                                               {"started_at", format_time(i.started_at)},
                                               {"heartbeat_at", format_time(i.heartbeat_at)},
                                               {"claims", i.claims},
                                               {"jenkins", std::move(urls)},
                                               {"self", i.id == s_.store->instance_id()}});
            }
            for (auto& [name, line] : jenkins_disagreements(instances->value())) {
                disagreements.emplace_back(std::move(line));
            }
        }
        const auto health = s_.store->health();
        const auto runtime = s_.webhooks->runtime();
        const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
            std::chrono::steady_clock::now() - started_);
        co_return reply(200, json::object{{"version", HOOKRELAY_VERSION},
                                          {"uptime_seconds", uptime.count()},
                                          {"ready", s_.ready && s_.ready()},
                                          {"store", s_.store->kind()},
                                          {"store_ok", health.ok},
                                          {"store_detail", health.detail},
                                          {"instance", s_.store->instance_id()},
                                          {"instances", std::move(members)},
                                          {"disagreements", std::move(disagreements)},
                                          {"sources", runtime->config->sources.size()},
                                          {"rules", runtime->config->rules.size()},
                                          {"jenkins", std::move(jenkins)},
                                          {"rejections", std::move(rejections)}});
    }

    if (what == "deliveries" && seg.size() == 3) {
        if (method != "GET") co_return wrong_method("GET");
        DeliveryQuery query;
        query.source = get("source");
        if (auto st = get("state"); !st.empty()) {
            query.state = trigger_state_from_string(st);
            if (!query.state) {
                co_return fail(400, fmt::format("state '{}' is not one of pending, retrying, "
                                                "delivered, dead",
                                                st));
            }
        }
        if (auto since = get("since"); !since.empty()) {
            query.since = parse_time(since, now);
            if (!query.since) {
                co_return fail(400, fmt::format("since '{}' is neither a time "
                                                "(2026-11-24T08:00:00Z) nor a duration (24h)",
                                                since));
            }
        }
        if (auto outcome = get("outcome"); !outcome.empty()) {
            const auto& words = outcome_words();
            if (std::find(words.begin(), words.end(), outcome) == words.end()) {
                co_return fail(400, fmt::format("outcome '{}' is not one of {}", outcome,
                                                fmt::join(words, ", ")));
            }
            query.outcome = outcome;
        }
        if (auto limit = get("limit"); !limit.empty()) {
            auto n = parse_limit(limit);
            if (!n) co_return fail(400, fmt::format("limit must be 1 to {}", k_max_limit));
            query.limit = *n;
        }
        if (auto cursor = get("cursor"); !cursor.empty()) {
            std::int64_t c = 0;
            const auto [p, ec] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), c);
            if (ec != std::errc{} || p != cursor.data() + cursor.size() || c <= 0) {
                co_return fail(400, "cursor must be the next_cursor of an earlier page");
            }
            query.before_seq = c;
        }
        // The repository and the ref are checked here, on the store's pages, whatever the store:
        // a bounded stretch of deliveries per request (k_list_walk_pages store pages), the rest
        // behind a cursor, as the store's own walks that check every row do.
        const std::string repository = get("repository");
        const std::string ref = get("ref");
        const auto wanted = [&](const DeliverySummary& d) {
            return (repository.empty() || iequals(d.repository, repository)) &&
                   (ref.empty() || ref_name(d.ref) == ref_name(ref) || ref_label(d.ref) == ref);
        };
        const bool filtered = !repository.empty() || !ref.empty();
        const std::size_t limit = query.limit;
        if (filtered) query.limit = k_list_walk_page;
        json::array items;
        std::optional<std::int64_t> next;
        const auto held = held_jenkins();
        // One deadline for the whole request: once something was read, a store call that does
        // not answer in time ends the page there, with a cursor to go on from.
        const auto deadline = std::chrono::steady_clock::now() + store_timeout();
        for (std::size_t pages = 1;; ++pages) {
            const auto left = left_until(deadline);
            auto page = co_await await_callback<result<DeliveryPage>>(
                [&](auto done) { s_.store->list_deliveries(query, std::move(done)); },
                std::max(left, k_least_wait));
            if (!page || !*page) {
                if (pages == 1) co_return fail(503, "the store did not answer");
                next = query.before_seq;
                break;
            }
            const auto& got = page->value();
            next = got.next_before_seq;
            for (std::size_t i = 0; i < got.items.size(); ++i) {
                const auto& d = got.items[i];
                if (!wanted(d)) continue;
                items.push_back(summary_json(d, held));
                if (filtered && items.size() >= limit) {
                    // The next page starts below the last one listed, if another on this store
                    // page matches (else where the store's page ends).
                    if (std::any_of(got.items.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                                    got.items.end(), wanted)) {
                        next = d.seq;
                    }
                    break;
                }
            }
            if (!filtered || items.size() >= limit || !next || pages >= k_list_walk_pages ||
                std::chrono::steady_clock::now() >= deadline) {
                break;
            }
            query.before_seq = next;
        }
        const bool none = items.empty();
        json::object out{{"deliveries", std::move(items)}};
        if (next) out["next_cursor"] = std::to_string(*next);
        if (none && !query.source.empty()) {
            // A typo lists nothing, as a quiet source does: say which it is. (A source removed
            // from the config keeps its deliveries under its name until they age out.)
            const auto runtime = s_.webhooks->runtime();
            std::vector<std::string_view> names;
            for (const auto& source : runtime->config->sources) names.push_back(source.name);
            if (std::find(names.begin(), names.end(), query.source) == names.end()) {
                out["hint"] = fmt::format(
                    "no source of the running config is named '{}' (its "
                    "sources: {})",
                    printable(query.source), fmt::join(names, ", "));
            }
        }
        // Said back, so that a client can tell this daemon applied them (an older one ignores
        // parameters it does not know, and would list everything).
        if (filtered) out["filtered_by"] = json::object{{"repository", repository}, {"ref", ref}};
        co_return reply(200, out);
    }

    // One delivery: /deliveries/{id} (its detail) and /deliveries/{id}/body (the raw body); and
    // /triggers/{id}, the detail of the delivery that holds that trigger (replay answers with
    // trigger ids), which names it in `trigger`.
    const bool delivery_body = seg.size() == 5 && seg[4] == "body";
    const bool of_trigger = what == "triggers" && seg.size() == 4 && seg[3] != "replay";
    if ((what == "deliveries" && (seg.size() == 4 || delivery_body)) || of_trigger) {
        if (method != "GET") co_return wrong_method("GET");
        const auto no_trigger = [&] {
            return fail(
                404,
                fmt::format("no trigger '{}': trigger ids are those replay and deliveries show "
                            "print; a trigger is kept as long as its delivery, for "
                            "store.retention ({:.1f} day(s) here)",
                            printable(seg[3]),
                            std::chrono::duration<double, std::ratio<86400>>(retention()).count()));
        };
        if (of_trigger && !text_id(seg[3])) co_return no_trigger();
        const auto deadline = std::chrono::steady_clock::now() + store_timeout();
        auto detail = co_await await_callback<result<std::optional<DeliveryDetail>>>(
            [&](auto done) {
                if (of_trigger) {
                    s_.store->get_delivery_of_trigger(seg[3], std::move(done));
                } else {
                    s_.store->get_delivery(get("source"), seg[3], std::move(done));
                }
            },
            store_timeout());
        if (!detail || !*detail) co_return fail(503, "the store did not answer");
        if (!detail->value()) {
            if (of_trigger) co_return no_trigger();
            // A trigger id (replay prints those) where a delivery id was wanted: say so, within
            // what is left of the one store_timeout the request waits.
            const auto left = left_until(deadline);
            std::optional<result<std::optional<DeliveryDetail>>> trigger;
            if (text_id(seg[3]) && left.count() > 0) {
                trigger = co_await await_callback<result<std::optional<DeliveryDetail>>>(
                    [&](auto done) { s_.store->get_delivery_of_trigger(seg[3], std::move(done)); },
                    left);
            }
            if (trigger && *trigger && trigger->value()) {
                co_return fail(404,
                               fmt::format("no delivery '{}': that is the id of a trigger of "
                                           "delivery '{}' (hookrelay deliveries show "
                                           "--trigger {})",
                                           seg[3], shown_id(trigger->value()->summary), seg[3]));
            }
            co_return fail(404, no_delivery(printable(seg[3]), get("source"), retention()));
        }
        auto& d = *detail->value();
        warn_unreadable_body(d);
        if (delivery_body) {
            if (!d.body_error.empty()) {
                co_return fail(409, fmt::format("the body of delivery '{}' cannot be read: {}",
                                                seg[3], d.body_error));
            }
            if (!d.body) {
                co_return fail(409, fmt::format("the body of delivery '{}' was not stored "
                                                "(store.keep_body: false)",
                                                seg[3]));
            }
            // The bytes as the forge sent them, whatever they are: not for a browser to render.
            http::Response r;
            r.content_type = "application/octet-stream";
            r.body = std::move(*d.body);
            co_return r;
        }
        const auto held = held_jenkins();
        auto out = summary_json(d.summary, held);
        json::object headers;
        for (const auto& [k, v] : d.headers) headers[k] = v;
        out["headers"] = std::move(headers);
        // Unknown (null) only where a kept body no longer reads (body_error).
        if (d.body_sha256.empty()) {
            out["body_sha256"] = nullptr;
        } else {
            out["body_sha256"] = d.body_sha256;
        }
        out["body_stored"] = d.body.has_value() || !d.body_error.empty();
        if (!d.body_error.empty()) out["body_error"] = d.body_error;
        // The rules that queued nothing and why, as the forge was answered (absent for
        // deliveries recorded by a hookrelay that did not keep them).
        if (d.rule_reasons) {
            const bool several = std::any_of(d.rule_reasons->begin(), d.rule_reasons->end(),
                                             [](const RuleReason& r) { return r.event != 0; });
            json::array skipped;
            json::array failures;
            for (const auto& r : *d.rule_reasons) {
                json::object o{{"rule", r.rule}, {"reason", r.reason}};
                if (several) o["event"] = r.event;
                (r.matched ? failures : skipped).push_back(std::move(o));
            }
            out["skipped"] = std::move(skipped);
            out["failures"] = std::move(failures);
        }
        // The event as the current source config normalizes the stored body.
        const auto runtime = s_.webhooks->runtime();
        if (const auto* source = runtime->config->find_source(d.summary.source); source && d.body) {
            auto prepared = prepare(*runtime, *source, header_map(d.headers), *d.body, false);
            if (prepared.event) out["normalized"] = to_json(*prepared.event);
        }
        // An open trigger of a held Jenkins waits for it, not for its own retry: say why (the
        // list shows it as held too).
        json::array triggers;
        for (const auto& t : d.triggers) {
            auto o = trigger_json(t);
            const auto state = t.trigger.state;
            if (const auto it = held.find(t.trigger.request.jenkins);
                it != held.end() &&
                (state == TriggerState::pending || state == TriggerState::retrying)) {
                o["held"] = it->second;
            }
            triggers.push_back(std::move(o));
        }
        out["triggers"] = std::move(triggers);
        if (of_trigger) out["trigger"] = seg[3];
        co_return reply(200, out);
    }

    if (what == "triggers" && seg.size() == 5 && seg[4] == "replay") {
        if (method != "POST") co_return wrong_method("POST");
        if (!text_id(seg[3])) {
            co_return fail(404, fmt::format("no trigger '{}'", printable(seg[3])));
        }
        const auto deadline = std::chrono::steady_clock::now() + store_timeout();
        auto replayed = co_await await_callback<result<Replayed>>(
            [&](auto done) { s_.store->replay({seg[3]}, now, std::move(done)); }, store_timeout());
        if (!replayed || !*replayed) co_return fail(503, "the store did not answer");
        if (!replayed->value().in_flight.empty()) {
            co_return fail(
                409, fmt::format("trigger '{}' is being delivered right now (claimed): its build "
                                 "request may be on its way to Jenkins, and replaying it now "
                                 "could build it twice. Nothing was changed: replay it once its "
                                 "outcome is in (hookrelay deliveries show --trigger {})",
                                 seg[3], seg[3]));
        }
        if (replayed->value().ids.empty()) {
            // A delivery's id (deliveries list prints those) where a trigger id was wanted: said
            // within what is left of the request's one store_timeout.
            const auto left = left_until(deadline);
            std::optional<result<std::optional<DeliveryDetail>>> delivery;
            if (left.count() > 0) {
                delivery = co_await await_callback<result<std::optional<DeliveryDetail>>>(
                    [&](auto done) { s_.store->get_delivery("", seg[3], std::move(done)); }, left);
            }
            if (delivery && *delivery && delivery->value()) {
                co_return fail(404, fmt::format("no trigger '{}': that is a delivery's id; replay "
                                                "takes the ids of its triggers, which hookrelay "
                                                "deliveries show {} lists (or redeliver it "
                                                "through the current rules)",
                                                printable(seg[3]), printable(seg[3])));
            }
            co_return fail(404, fmt::format("no trigger '{}'", printable(seg[3])));
        }
        spdlog::info("trigger={} replayed by admin", seg[3]);
        json::object out{{"replayed", json::array{json::string(seg[3])}}};
        if (auto unsent = co_await unsent_backlog(); !unsent.empty()) out["warning"] = unsent;
        co_return reply(200, out);
    }

    if (what == "triggers" && seg.size() == 4 && seg[3] == "replay") {
        if (method != "POST") co_return wrong_method("POST");
        ReplayQuery query;
        if (auto st = get("state"); !st.empty()) {
            auto state = trigger_state_from_string(st);
            if (!state) {
                co_return fail(400, fmt::format("state '{}' is not one of pending, retrying, "
                                                "delivered, dead",
                                                st));
            }
            query.state = *state;
        }
        if (auto since = get("since"); !since.empty()) {
            query.since = parse_time(since, now);
            if (!query.since) {
                co_return fail(400, fmt::format("since '{}' is neither a time "
                                                "(2026-11-24T08:00:00Z) nor a duration (24h)",
                                                since));
            }
        }
        query.jenkins = get("jenkins");
        if (!query.jenkins.empty() &&
            s_.webhooks->runtime()->config->find_jenkins(query.jenkins) == nullptr) {
            // A typo would re-queue nothing and look like success.
            std::string known;
            for (const auto& j : s_.webhooks->runtime()->config->jenkins) {
                known += (known.empty() ? "" : ", ") + j.name;
            }
            co_return fail(400, fmt::format("no jenkins '{}' in the config (known: {})",
                                            query.jenkins, known.empty() ? "none" : known));
        }
        if (auto limit = get("limit"); !limit.empty()) {
            auto n = parse_limit(limit);
            if (!n) co_return fail(400, fmt::format("limit must be 1 to {}", k_max_limit));
            query.limit = *n;
        }
        if (auto dry = get("dry_run"); !dry.empty()) {
            if (dry != "true" && dry != "false") {
                co_return fail(400, fmt::format("dry_run must be true or false, not '{}'", dry));
            }
            query.dry_run = dry == "true";
        }
        auto found = co_await await_callback<result<Replayed>>(
            [&](auto done) { s_.store->replay_matching(query, now, std::move(done)); },
            store_timeout());
        if (!found || !*found) co_return fail(503, "the store did not answer");
        const Replayed& r = found->value();
        json::array in_flight;
        for (const auto& id : r.in_flight) in_flight.emplace_back(id);
        // At the limit, more may match: say so, or the rest would stay as they are unnoticed.
        const bool more = r.ids.size() + r.in_flight.size() >= query.limit;
        if (query.dry_run) {
            // What the same request without dry_run would re-queue now (the CLI asks before
            // re-running delivered builds).
            json::array matching;
            for (const auto& id : r.ids) matching.emplace_back(id);
            co_return reply(200, json::object{{"dry_run", true},
                                              {"matching", std::move(matching)},
                                              {"in_flight", std::move(in_flight)},
                                              {"limit", query.limit},
                                              {"more", more}});
        }
        json::array replayed;
        for (const auto& id : r.ids) replayed.emplace_back(id);
        spdlog::info("bulk replay by admin: {} {} trigger(s) re-queued{}{}", r.ids.size(),
                     to_string(query.state),
                     r.in_flight.empty()
                         ? std::string()
                         : fmt::format(", {} left as they were (being delivered right now)",
                                       r.in_flight.size()),
                     more ? " (the limit; more may match)" : "");
        json::object out{{"replayed", std::move(replayed)},
                         {"in_flight", std::move(in_flight)},
                         {"state", to_string(query.state)},
                         {"limit", query.limit},
                         {"more", more}};
        if (!r.ids.empty()) {
            if (auto unsent = co_await unsent_backlog(); !unsent.empty()) out["warning"] = unsent;
        }
        co_return reply(200, out);
    }

    if (what == "redeliver" && seg.size() == 3) {
        if (method != "POST") co_return wrong_method("POST");
        std::string id = get("delivery");
        std::string source = get("source");
        std::string only_rule = get("rule");
        if (id.empty() && !request.body.empty()) {
            boost::system::error_code ec;
            auto body = json::parse(request.body, ec);
            if (ec || !body.is_object()) co_return fail(400, "body must be a JSON object");
            if (auto* v = body.as_object().if_contains("delivery"); v && v->is_string()) {
                id = std::string(v->get_string());
            }
            if (auto* v = body.as_object().if_contains("source"); v && v->is_string()) {
                source = std::string(v->get_string());
            }
            if (auto* v = body.as_object().if_contains("rule"); v && v->is_string()) {
                only_rule = std::string(v->get_string());
            }
        }
        if (id.empty()) co_return fail(400, "name the delivery: ?delivery=<id>");
        bool dry_run = false;
        if (auto dry = get("dry_run"); !dry.empty()) {
            if (dry != "true" && dry != "false") {
                co_return fail(400, fmt::format("dry_run must be true or false, not '{}'", dry));
            }
            dry_run = dry == "true";
        }
        auto detail = co_await await_callback<result<std::optional<DeliveryDetail>>>(
            [&](auto done) { s_.store->get_delivery(source, id, std::move(done)); },
            store_timeout());
        if (!detail || !*detail) co_return fail(503, "the store did not answer");
        if (!detail->value()) co_return fail(404, no_delivery(id, source, retention()));
        const auto& d = *detail->value();
        warn_unreadable_body(d);
        if (!d.body_error.empty()) {
            co_return fail(409, "the body of this delivery cannot be read (" + d.body_error +
                                    "), so it cannot be redelivered");
        }
        if (!d.body) {
            co_return fail(409,
                           "the body of this delivery was not stored (store.keep_body: "
                           "false), so it cannot be redelivered");
        }
        const auto runtime = s_.webhooks->runtime();
        const auto* src = runtime->config->find_source(d.summary.source);
        if (src == nullptr) {
            co_return fail(409,
                           fmt::format("source '{}' is no longer configured", d.summary.source));
        }
        // It was verified when it arrived; the secret may have been rotated since.
        auto prepared = prepare(*runtime, *src, header_map(d.headers), *d.body, false);
        if (!prepared.event) co_return fail(422, prepared.log_reason);
        // rule=NAME: only that rule's triggers, so that fixing one rule does not build again what
        // the others built when the delivery came.
        std::size_t left_out = 0;
        if (!only_rule.empty()) {
            const auto& rules = runtime->config->rules;
            if (std::none_of(rules.begin(), rules.end(),
                             [&](const auto& r) { return r.name == only_rule; })) {
                std::string names;
                for (const auto& r : rules) names += (names.empty() ? "" : ", ") + r.name;
                co_return fail(400,
                               fmt::format("no rule named '{}' in the running config of "
                                           "instance {} (its rules: {})",
                                           printable(only_rule), s_.store->instance_id(), names));
            }
            left_out = std::erase_if(prepared.decision.triggers,
                                     [&](const auto& t) { return t.rule != only_rule; });
        }
        auto decision = decision_json(prepared.decision);
        json::array matched;
        for (const auto& name : prepared.decision.matched_rules()) matched.emplace_back(name);
        if (dry_run) {
            // What the current rules would queue, rendered as they would be: nothing is stored.
            spdlog::info(
                "delivery={} source={} redelivery dry run by admin: {} trigger(s) would be "
                "queued{}",
                printable_word(d.summary.delivery_id), d.summary.source,
                prepared.decision.triggers.size(),
                only_rule.empty() ? std::string()
                                  : fmt::format(" (rule {} only, {} of other rules left out)",
                                                printable_word(only_rule), left_out));
            json::object answer{{"delivery", d.summary.delivery_id},
                                {"source", d.summary.source},
                                {"dry_run", true},
                                {"matched_rules", std::move(matched)},
                                {"triggers", std::move(decision["triggers"])},
                                {"rules", std::move(decision["rules"])},
                                {"failures", std::move(decision["failures"])}};
            if (!only_rule.empty()) {
                answer["rule"] = only_rule;
                answer["left_out"] = left_out;
            }
            co_return reply(200, std::move(answer));
        }
        std::vector<std::string> ids;
        if (!prepared.decision.triggers.empty()) {
            auto added = co_await await_callback<result<std::vector<std::string>>>(
                [&](auto done) {
                    s_.store->add_triggers(d.summary.source, shown_id(d.summary),
                                           prepared.decision.triggers, std::move(done));
                },
                store_timeout());
            if (!added) {
                // The store may still commit it: a second redeliver would queue it twice.
                co_return fail(
                    503, fmt::format("the store did not answer within server.store_timeout; "
                                     "the triggers may be queued all the same: look with "
                                     "`hookrelay deliveries show {}` before redelivering again",
                                     shown_id(d.summary)));
            }
            if (!*added) {
                co_return fail(503, fmt::format("the store failed to queue it ({}); it may not "
                                                "have been queued: look with `hookrelay "
                                                "deliveries show {}` before redelivering again",
                                                added->error().message(), shown_id(d.summary)));
            }
            ids = added->value();
        }
        json::array triggers;
        for (std::size_t i = 0; i < prepared.decision.triggers.size() && i < ids.size(); ++i) {
            const auto& t = prepared.decision.triggers[i];
            triggers.push_back(json::object{{"id", ids[i]},
                                            {"rule", t.rule},
                                            {"jenkins", t.jenkins},
                                            {"job", job_display_path(t.job)}});
        }
        spdlog::info("delivery={} source={} redelivered by admin: {} trigger(s){}",
                     printable_word(d.summary.delivery_id), d.summary.source, ids.size(),
                     only_rule.empty() ? std::string()
                                       : fmt::format(" (rule {} only, {} of other rules left out)",
                                                     printable_word(only_rule), left_out));
        json::object answer{
            {"delivery", d.summary.delivery_id},     {"source", d.summary.source},
            {"matched_rules", std::move(matched)},   {"triggers", std::move(triggers)},
            {"rules", std::move(decision["rules"])}, {"failures", std::move(decision["failures"])}};
        if (!only_rule.empty()) {
            answer["rule"] = only_rule;
            answer["left_out"] = left_out;
        }
        co_return reply(200, std::move(answer));
    }

    if (what == "reload" && seg.size() == 3) {
        if (method != "POST") co_return wrong_method("POST");
        if (!s_.reload) co_return fail(503, "reload is not available");
        auto outcome = co_await s_.reload();
        if (!outcome.ok) {
            json::array errors;
            for (const auto& e : outcome.errors) errors.emplace_back(e);
            co_return reply(422,
                            json::object{{"status", "rejected"}, {"errors", std::move(errors)}});
        }
        json::object body{{"status", "reloaded"}};
        if (!outcome.restart_needed.empty()) {
            json::array keys;
            for (const auto& k : outcome.restart_needed) keys.emplace_back(k);
            body["restart_needed"] = std::move(keys);
        }
        co_return reply(200, body);
    }

    co_return fail(404, "no such endpoint");
}

}  // namespace hookrelay::app
