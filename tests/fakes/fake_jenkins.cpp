#include "fakes/fake_jenkins.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "fakes/http_text.hpp"
#include "fakes/loopback_server.hpp"

#include <hookrelay/headers.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>

namespace hookrelay::test {

namespace {

namespace bhttp = boost::beast::http;
using Request = LoopbackServer::Request;
using Params = std::vector<std::pair<std::string, std::string>>;
using Clock = std::chrono::steady_clock;
namespace json = boost::json;

constexpr std::string_view k_crumb_field = "Jenkins-Crumb";
constexpr std::string_view k_no_crumb = "No valid crumb was included in the request";

Params parse_params(std::string_view text) {
    Params out;
    while (!text.empty()) {
        const auto amp = text.find('&');
        const auto pair = text.substr(0, amp);
        text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
        if (pair.empty()) continue;
        const auto eq = pair.find('=');
        if (eq == std::string_view::npos) {
            out.emplace_back(percent_decode(pair, true), "");
        } else {
            out.emplace_back(percent_decode(pair.substr(0, eq), true),
                             percent_decode(pair.substr(eq + 1), true));
        }
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    while (!text.empty() && text.back() == '=') text.remove_suffix(1);
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (char c : text) {
        const int v = value(c);
        if (v < 0) return std::nullopt;
        buffer = (buffer << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buffer >> bits) & 0xFF);
        }
    }
    return out;
}

std::string random_hex(std::size_t digits) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    static constexpr std::string_view k_hex = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < digits; ++i) out += k_hex[rng() % 16];
    return out;
}

std::string html_page(int status, std::string_view message) {
    const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
    return "<html>\n<head><title>Error " + std::to_string(status) + " " + std::string(reason) +
           "</title></head>\n<body><h2>HTTP ERROR " + std::to_string(status) + " " +
           std::string(reason) + "</h2>\n<p>" + std::string(message) + "</p>\n</body>\n</html>\n";
}

// A valid TimeDuration: "<n>" (ms), "<n>sec" or "<n>secs", trimmed, optional sign (§1.3).
bool valid_delay(std::string_view text) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    if (text.ends_with("secs")) {
        text.remove_suffix(4);
    } else if (text.ends_with("sec")) {
        text.remove_suffix(3);
    }
    if (!text.empty() && (text.front() == '+' || text.front() == '-')) text.remove_prefix(1);
    return !text.empty() &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

constexpr std::string_view k_freestyle = "hudson.model.FreeStyleProject";
constexpr std::string_view k_multibranch =
    "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject";
constexpr std::string_view k_workflow_job = "org.jenkinsci.plugins.workflow.job.WorkflowJob";

struct Job {
    std::vector<std::string> names;
    std::vector<std::string> parameters;
    std::string token;
    bool buildable = true;
    std::string_view class_name = k_freestyle;
    bool multibranch = false;  // a computed folder: POST build scans, its children are branches
};

// A branch in a multibranch project's SCM whose job the next scan makes (add_branch_on_scan).
struct PendingBranch {
    std::size_t project = 0;  // index into jobs
    std::string branch;
    std::vector<std::string> parameters;
    Clock::time_point added_at;
};

// One branch indexing of a multibranch project.
struct Scan {
    std::size_t project = 0;  // index into jobs
    Clock::time_point requested_at;
    Clock::time_point started_at;
    Clock::time_point ends_at;
    std::size_t requests = 1;
    bool finished = false;
    std::vector<std::string> created;
};

// branch-api NameEncoder.encode: the item name of a branch.
std::string name_encode(const std::string& branch) {
    if (branch.empty()) return "%00";
    if (branch == ".") return "%2E";
    std::string out;
    static constexpr std::string_view k_escaped = "#%/?[]\\";
    static constexpr std::string_view k_hex = "0123456789ABCDEF";
    for (const char c : branch) {
        if (k_escaped.find(c) == std::string_view::npos) {
            out += c;
        } else {
            out += '%';
            out += k_hex[static_cast<unsigned char>(c) >> 4];
            out += k_hex[static_cast<unsigned char>(c) & 0xF];
        }
    }
    return out;
}

bool same_names(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(),
                      [](const auto& x, const auto& y) { return iequals(x, y); });
}

// One queue item, from its trigger until it is forgotten (items are never removed: `left` and
// left_at say whether GET queue/item/<id>/ still finds it).
struct QueueItem {
    std::int64_t id = 0;
    std::size_t job = 0;  // index into jobs
    Params values;        // defined parameters with defaults applied, sorted
    std::string location;
    Clock::time_point queued_at;
    std::optional<Clock::time_point> due;  // starts by itself then (set_quiet_period)
    bool left = false;                     // left the queue: started or cancelled
    bool cancelled = false;
    Clock::time_point left_at;
    std::optional<std::size_t> run;  // index into runs once started
};

// One build made from a queue item.
struct Run {
    std::size_t job = 0;
    std::int64_t number = 0;
    std::int64_t queue_id = 0;
    std::string result;  // decided when it starts (set_next_results), shown once it finished
    bool building = true;
    Clock::time_point started;
    Clock::time_point exists_at;  // started + set_executable_delay: before, Jenkins has no Run
    std::chrono::system_clock::time_point timestamp;
    std::optional<Clock::time_point> ends;  // set_build_duration > 0
    std::chrono::milliseconds duration{0};  // once finished
};

std::int64_t epoch_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// A steady time as wall-clock epoch ms (for `timestamp`, `inQueueSince`).
std::int64_t epoch_ms(Clock::time_point t) {
    const auto wall =
        std::chrono::system_clock::now() -
        std::chrono::duration_cast<std::chrono::system_clock::duration>(Clock::now() - t);
    return epoch_ms(wall);
}

// A job's URL path as Jenkins writes it: "job/<name>/" per item, each name percent-encoded.
std::string job_url_path(const std::vector<std::string>& names) {
    static constexpr std::string_view k_hex = "0123456789ABCDEF";
    std::string out;
    for (const auto& name : names) {
        out += "job/";
        for (const char c : name) {
            const auto u = static_cast<unsigned char>(c);
            const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                               (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                               c == '~';
            if (plain) {
                out += c;
            } else {
                out += '%';
                out += k_hex[u >> 4];
                out += k_hex[u & 0xF];
            }
        }
        out += '/';
    }
    return out;
}

// The path segments after the /job/<name> pairs, each decoded once: {"queue","item","7","api",
// "json"}, {"17","api","json"}.
std::vector<std::string> rest_segments(std::string_view target) {
    const auto path = target.substr(0, target.find('?'));
    std::vector<std::string_view> raw;
    for (std::size_t i = 0; i < path.size();) {
        const auto slash = path.find('/', i);
        const auto end = slash == std::string_view::npos ? path.size() : slash;
        if (end > i) raw.push_back(path.substr(i, end - i));
        i = end + 1;
    }
    std::size_t i = 0;
    while (i + 1 < raw.size() && raw[i] == "job") i += 2;
    std::vector<std::string> out;
    for (; i < raw.size(); ++i) out.emplace_back(raw[i]);
    return out;
}

std::optional<std::int64_t> parse_id(std::string_view text) {
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

struct Session {
    std::string crumb;
    std::string user;  // "anonymous" or the authenticated user
};

struct Answer {
    bool hang = false;                   // never answer (set_hanging)
    std::chrono::milliseconds delay{0};  // answer only after this (set_answer_delay)
    std::size_t record = 0;              // index of the request in `received`
    int status = 200;
    std::string content_type = "text/html;charset=utf-8";
    std::string body;
    Params headers;
};

Answer error_answer(int status, std::string_view message) {
    Answer a;
    a.status = status;
    a.body = html_page(status, message);
    return a;
}

}  // namespace

std::string ReceivedRequest::param(const std::string& name) const {
    for (const auto& [k, v] : form) {
        if (k == name) return v;
    }
    for (const auto& [k, v] : query) {
        if (k == name) return v;
    }
    return {};
}

std::string ReceivedRequest::header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
        if (iequals(k, name)) return v;
    }
    return {};
}

struct FakeJenkins::Impl {
    explicit Impl(Options opts) : options(std::move(opts)) {}

    Options options;

    mutable std::mutex mutex;  // guards everything below
    std::condition_variable changed;
    std::vector<Job> jobs;
    std::vector<ReceivedRequest> received;
    int fail_count = 0;
    int fail_status = 0;
    std::string fail_retry_after;
    std::string fail_message;
    bool restarting = false;
    bool read_denied = false;
    bool hanging = false;
    std::size_t location_padding = 0;
    std::chrono::milliseconds answer_delay{0};
    std::chrono::milliseconds build_answer_delay{0};
    std::size_t in_flight = 0;
    std::size_t peak_in_flight = 0;
    std::string cookie_name;
    std::map<std::string, Session> sessions;
    std::vector<QueueItem> items;      // every item ever, items[id - 1]
    std::vector<std::size_t> waiting;  // indices of the items still queued, oldest first
    std::vector<Run> runs;             // every build, in start order
    std::vector<std::size_t> timed;    // indices of running builds with an end time
    std::map<std::size_t, std::int64_t> last_number;  // per job index
    std::chrono::milliseconds quiet_period{0};
    std::chrono::milliseconds build_duration{0};
    std::chrono::milliseconds executable_delay{0};
    std::chrono::milliseconds left_item_ttl{std::chrono::minutes(5)};
    std::vector<std::string> next_results;
    std::vector<PendingBranch> pending_branches;
    std::vector<Scan> scan_log;
    std::chrono::milliseconds scan_duration{0};
    std::vector<std::int64_t> cancelled;  // queue ids, in cancel order
    // Not guarded; last, so it goes first: it calls answer_to() on its thread until it is gone.
    std::optional<LoopbackServer> server;

    std::string base_url() const { return server->url(); }
    // Jenkins' own root URL, in the URLs it writes (Location, executable.url, build url).
    std::string root_url() const {
        if (options.root_url.empty()) return base_url();
        return options.root_url.back() == '/' ? options.root_url : options.root_url + "/";
    }

    // --- The queue model (mutex held) ----------------------------------------------------------

    // Starts the items whose quiet period is over and finishes the builds whose time is up.
    void advance_locked(Clock::time_point now) {
        std::vector<std::size_t> due;
        for (const auto index : waiting) {
            if (items[index].due && *items[index].due <= now) due.push_back(index);
        }
        std::sort(due.begin(), due.end(), [&](std::size_t a, std::size_t b) {
            return std::pair(*items[a].due, a) < std::pair(*items[b].due, b);
        });
        for (const auto index : due) start_locked(index, *items[index].due);
        std::erase_if(timed, [&](std::size_t index) {
            auto& run = runs[index];
            if (!run.building) return true;
            if (*run.ends > now) return false;
            finish_locked(run, *run.ends);
            return true;
        });
        // Scans end in the order they started (one project's never overlap).
        for (auto& scan : scan_log) {
            if (!scan.finished && scan.ends_at <= now) finish_scan_locked(scan);
        }
    }

    // The branches the scan saw in the SCM (added before it started) become jobs.
    void finish_scan_locked(Scan& scan) {
        scan.finished = true;
        std::erase_if(pending_branches, [&](const PendingBranch& branch) {
            if (branch.project != scan.project || branch.added_at > scan.started_at) return false;
            add_branch_job_locked(scan.project, branch.branch, branch.parameters);
            scan.created.push_back(branch.branch);
            return true;
        });
    }

    // False when the branch is a job already.
    bool add_branch_job_locked(std::size_t project, const std::string& branch,
                               std::vector<std::string> parameters) {
        auto names = jobs[project].names;
        names.push_back(name_encode(branch));
        if (find_job_locked(names)) return false;
        Job job{std::move(names), std::move(parameters), std::string()};
        job.class_name = k_workflow_job;
        jobs.push_back(std::move(job));
        return true;
    }

    std::optional<std::size_t> find_job_locked(const std::vector<std::string>& names) const {
        for (std::size_t j = 0; j < jobs.size(); ++j) {
            if (same_names(jobs[j].names, names)) return j;
        }
        return std::nullopt;
    }

    void cancel_locked(QueueItem& item, Clock::time_point now) {
        std::erase(waiting, static_cast<std::size_t>(item.id - 1));
        item.left = true;
        item.cancelled = true;
        item.left_at = now;
        cancelled.push_back(item.id);
    }

    // The item leaves the queue as the job's next build.
    void start_locked(std::size_t index, Clock::time_point at) {
        auto& item = items[index];
        std::erase(waiting, index);
        item.left = true;
        item.left_at = at;
        Run run;
        run.job = item.job;
        run.number = ++last_number[item.job];
        run.queue_id = item.id;
        if (!next_results.empty()) {
            run.result = next_results.front();
            next_results.erase(next_results.begin());
        } else {
            run.result = "SUCCESS";
        }
        run.started = at;
        run.exists_at = at + executable_delay;
        run.timestamp =
            std::chrono::system_clock::now() -
            std::chrono::duration_cast<std::chrono::system_clock::duration>(Clock::now() - at);
        if (build_duration.count() > 0) run.ends = at + build_duration;
        item.run = runs.size();
        runs.push_back(std::move(run));
        if (runs.back().ends) timed.push_back(runs.size() - 1);
    }

    static void finish_locked(Run& run, Clock::time_point at) {
        run.building = false;
        run.duration = std::chrono::duration_cast<std::chrono::milliseconds>(at - run.started);
    }

    // The item GET queue/item/<id>/ finds: queued, or left at most left_item_ttl ago.
    QueueItem* item_locked(std::int64_t id, Clock::time_point now) {
        if (id < 1 || static_cast<std::size_t>(id) > items.size()) return nullptr;
        auto& item = items[static_cast<std::size_t>(id - 1)];
        if (item.left && now - item.left_at > left_item_ttl) return nullptr;
        return &item;
    }

    std::string build_url(const Run& run) const {
        return root_url() + job_url_path(jobs[run.job].names) + std::to_string(run.number) + "/";
    }

    void reset_sessions_locked() {
        sessions.clear();
        cookie_name = "JSESSIONID." + random_hex(8);
    }

    // The server's answer: what handle() decided, as Jetty sends it.
    LoopbackServer::Answer answer_to(const Request& request) {
        Answer answer = handle(request);
        LoopbackServer::Answer out;
        out.status = answer.status;
        out.headers = {{"Server", "Jetty(12.0.0)"},
                       {"X-Content-Type-Options", "nosniff"},
                       {"Content-Type", answer.content_type}};
        out.headers.insert(out.headers.end(), answer.headers.begin(), answer.headers.end());
        out.body = std::move(answer.body);
        out.withhold = answer.hang;
        out.delay = answer.delay;
        out.on_abandoned = [this, record = answer.record] { mark_abandoned(record); };
        // handle() counted the request in flight until the answer leaves.
        out.on_released = [this] {
            std::lock_guard lock(mutex);
            --in_flight;
        };
        return out;
    }

    void mark_abandoned(std::size_t record) {
        std::lock_guard lock(mutex);
        if (record < received.size()) received[record].abandoned = true;
        changed.notify_all();
    }

    Answer handle(const Request& req);
    Answer route(ReceivedRequest& rec, const std::string& cookie_header);
    Answer build(ReceivedRequest& rec, const Job& job, std::size_t job_index);
    Answer scan(const ReceivedRequest& rec, std::size_t project);
    Answer queue_api(const ReceivedRequest& rec, const std::vector<std::string>& rest);
    Answer queue_item_json(const QueueItem& item, Clock::time_point now) const;
    Answer build_json(const ReceivedRequest& rec, std::size_t job_index, std::int64_t number);
    Answer builds_json(std::size_t job_index, Clock::time_point now) const;
    Answer issue_crumb(const ReceivedRequest& rec, const std::string& cookie_header);
    Answer who_am_i(const ReceivedRequest& rec);
    Answer job_json(const Job& job) const;
    Answer folder_api(const ReceivedRequest& rec) const;
    json::array items_below(const std::vector<std::string>& folder) const;
    const Session* session_of(const std::string& cookie_header, std::string* id = nullptr) const;
};

const Session* FakeJenkins::Impl::session_of(const std::string& cookie_header,
                                             std::string* id) const {
    std::string_view rest = cookie_header;
    while (!rest.empty()) {
        const auto semi = rest.find(';');
        auto pair = rest.substr(0, semi);
        rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
        while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
        const auto eq = pair.find('=');
        if (eq == std::string_view::npos || pair.substr(0, eq) != cookie_name) continue;
        const std::string value(pair.substr(eq + 1));
        const auto it = sessions.find(value);
        if (it == sessions.end()) return nullptr;
        if (id) *id = value;
        return &it->second;
    }
    return nullptr;
}

Answer FakeJenkins::Impl::handle(const Request& req) {
    ReceivedRequest rec;
    rec.at = std::chrono::steady_clock::now();
    rec.method = std::string(req.method_string());
    rec.target = std::string(req.target());
    std::string cookie_header;
    for (const auto& field : req) {
        rec.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
        if (field.name() == bhttp::field::cookie) {
            if (!cookie_header.empty()) cookie_header += "; ";
            cookie_header += std::string(field.value());
        }
    }

    // Stapler splits the raw path on '/' before decoding each segment, skipping empty ones.
    const std::string_view target = rec.target;
    const auto question = target.find('?');
    const auto path = target.substr(0, question);
    if (question != std::string_view::npos) rec.query = parse_params(target.substr(question + 1));
    std::vector<std::string> raw_segments;
    for (std::size_t i = 0; i < path.size();) {
        const auto slash = path.find('/', i);
        const auto end = slash == std::string_view::npos ? path.size() : slash;
        if (end > i) raw_segments.emplace_back(path.substr(i, end - i));
        i = end + 1;
    }
    std::size_t i = 0;
    while (i + 1 < raw_segments.size() && raw_segments[i] == "job") {
        rec.job.push_back(percent_decode(raw_segments[i + 1], false));
        i += 2;
    }
    if (i < raw_segments.size()) rec.endpoint = percent_decode(raw_segments[i], false);

    const auto content_type = req[bhttp::field::content_type];
    if (req.method() == bhttp::verb::post &&
        content_type.substr(0, content_type.find(';')) == "application/x-www-form-urlencoded") {
        rec.form = parse_params(req.body());
    }
    rec.cause = rec.param("cause");

    std::lock_guard lock(mutex);
    Answer answer = route(rec, cookie_header);
    rec.status = answer.status;
    const bool is_build =
        !rec.job.empty() && (rec.endpoint == "build" || rec.endpoint == "buildWithParameters");
    answer.delay = answer.hang ? std::chrono::milliseconds(0)
                               : std::max(answer_delay, is_build ? build_answer_delay
                                                                 : std::chrono::milliseconds(0));
    answer.record = received.size();
    peak_in_flight = std::max(peak_in_flight, ++in_flight);
    received.push_back(std::move(rec));
    changed.notify_all();
    return answer;
}

Answer FakeJenkins::Impl::route(ReceivedRequest& rec, const std::string& cookie_header) {
    if (hanging) {
        Answer a;
        a.hang = true;
        a.status = 0;
        return a;
    }
    if (restarting) {
        return error_answer(503, "Please wait while Jenkins is restarting ...");
    }
    advance_locked(Clock::now());

    // BasicHeaderProcessor: only the API token is known here.
    const auto authorization = rec.header("Authorization");
    if (!authorization.empty()) {
        std::optional<std::string> decoded;
        if (authorization.size() > 6 && iequals(authorization.substr(0, 6), "Basic ")) {
            decoded = base64_decode(authorization.substr(6));
        }
        const auto colon = decoded ? decoded->find(':') : std::string::npos;
        if (decoded && colon != std::string::npos) {
            rec.user = decoded->substr(0, colon);
            rec.authenticated =
                rec.user == options.user && decoded->substr(colon + 1) == options.api_token;
        }
        if (!rec.authenticated) {
            Answer a = error_answer(401, "Invalid password/token for user: " + rec.user);
            a.headers.emplace_back("WWW-Authenticate", "Basic realm=\"Jenkins\"");
            return a;
        }
    }
    const std::string who = rec.authenticated ? rec.user : "anonymous";

    const bool is_build =
        !rec.job.empty() && (rec.endpoint == "build" || rec.endpoint == "buildWithParameters");
    if (is_build && fail_count > 0) {
        --fail_count;
        if (fail_status == 302) {
            Answer a;
            a.status = 302;
            std::string job_url = base_url();
            for (const auto& name : rec.job) job_url += "job/" + name + "/";
            a.headers.emplace_back("Location", job_url);
            return a;
        }
        if (fail_status == 303) {
            // What a single sign-on proxy in front of Jenkins answers a POST without a session.
            Answer a;
            a.status = 303;
            a.headers.emplace_back("Location", base_url() + "sso/login?rd=%2Fjob%2F");
            return a;
        }
        Answer a = error_answer(fail_status,
                                fail_message.empty() ? "injected by fail_next" : fail_message);
        if (!fail_retry_after.empty()) a.headers.emplace_back("Retry-After", fail_retry_after);
        return a;
    }

    // CrumbFilter: every POST, unless authenticated with an API token (ApiCrumbExclusion).
    if (rec.method == "POST" && !rec.authenticated) {
        const Session* session = session_of(cookie_header);
        std::string crumb = rec.header(std::string(k_crumb_field));
        if (crumb.empty()) crumb = rec.param(std::string(k_crumb_field));
        if (!session || crumb.empty() || crumb != session->crumb || session->user != who) {
            return error_answer(403, k_no_crumb);
        }
    }

    // Jenkins.getTarget: Overall/Read, for every URL this fake serves.
    if (read_denied) return error_answer(403, who + " is missing the Overall/Read permission");

    if (rec.job.empty()) {
        if (rec.endpoint == "crumbIssuer") {
            if (rec.method != "GET") return error_answer(405, "Method Not Allowed");
            return issue_crumb(rec, cookie_header);
        }
        if (rec.endpoint == "api") {
            Answer a;
            a.content_type = "application/json;charset=utf-8";
            a.body = json::serialize(json::object{
                {"_class", "hudson.model.Hudson"}, {"mode", "NORMAL"}, {"jobs", items_below({})}});
            a.headers.emplace_back("X-Jenkins", "2.578");
            return a;
        }
        if (rec.endpoint == "queue") return queue_api(rec, rest_segments(rec.target));
        if (rec.endpoint == "whoAmI") return who_am_i(rec);
        return error_answer(404, "Not Found");
    }

    // Item lookup, one segment at a time, case-insensitively.
    const auto found = find_job_locked(rec.job);
    if (!found) return folder_api(rec);
    const Job& job = jobs[*found];
    if (job.multibranch) {
        if (rec.endpoint == "api") return job_json(job);
        if (rec.endpoint == "build") return scan(rec, *found);
        return error_answer(404, "Not Found");
    }

    if (rec.endpoint == "api") {
        // ?tree=builds[...]: the job's builds, newest first (any range in the tree is ignored).
        if (std::string_view(rec.param("tree")).starts_with("builds")) {
            return builds_json(*found, Clock::now());
        }
        return job_json(job);
    }
    if (const auto number = parse_id(rec.endpoint)) {
        const auto rest = rest_segments(rec.target);
        if (rest.size() == 3 && rest[1] == "api" && rest[2] == "json") {
            return build_json(rec, *found, *number);
        }
        return error_answer(404, "Not Found");
    }
    if (rec.endpoint == "build" || rec.endpoint == "buildWithParameters") {
        return build(rec, job, *found);
    }
    return error_answer(404, "Not Found");
}

Answer FakeJenkins::Impl::who_am_i(const ReceivedRequest& rec) {
    if (rest_segments(rec.target) != std::vector<std::string>{"whoAmI", "api", "json"}) {
        return error_answer(404, "Not Found");
    }
    const std::string who = rec.authenticated ? rec.user : "anonymous";
    Answer a;
    a.content_type = "application/json;charset=utf-8";
    a.body = R"({"_class":"hudson.security.WhoAmI","anonymous":)" +
             std::string(rec.authenticated ? "false" : "true") +
             R"(,"authenticated":true,"name":")" + who + R"("})";
    return a;
}

Answer FakeJenkins::Impl::job_json(const Job& job) const {
    if (job.multibranch) {
        json::array children;
        for (const auto& child : jobs) {
            if (child.names.size() != job.names.size() + 1 ||
                !std::equal(job.names.begin(), job.names.end(), child.names.begin())) {
                continue;
            }
            children.push_back(json::object{{"_class", child.class_name},
                                            {"name", child.names.back()},
                                            {"url", root_url() + job_url_path(child.names)}});
        }
        json::object o;
        o["_class"] = k_multibranch;
        o["name"] = job.names.back();
        o["buildable"] = job.buildable;
        o["jobs"] = std::move(children);
        Answer a;
        a.content_type = "application/json;charset=utf-8";
        a.body = json::serialize(o);
        return a;
    }
    std::string definitions;
    for (const auto& p : job.parameters) {
        definitions += std::string(definitions.empty() ? "" : ",") +
                       R"({"_class":"hudson.model.StringParameterDefinition","name":")" + p +
                       R"(","type":"StringParameterDefinition"})";
    }
    Answer a;
    a.content_type = "application/json;charset=utf-8";
    // Job.getNextBuildNumber is exported by every job (and by no folder).
    const auto index = static_cast<std::size_t>(&job - jobs.data());
    const auto last = last_number.find(index);
    const auto next = (last == last_number.end() ? 0 : last->second) + 1;
    a.body = R"({"_class":")" + std::string(job.class_name) + R"(","name":")" + job.names.back() +
             R"(","buildable":)" + (job.buildable ? "true" : "false") + R"(,"nextBuildNumber":)" +
             std::to_string(next) + R"(,"property":[)" +
             (job.parameters.empty() ? std::string()
                                     : R"({"_class":"hudson.model.ParametersDefinitionProperty",)"
                                       R"("parameterDefinitions":[)" +
                                           definitions + "]}") +
             "]}";
    return a;
}

Answer FakeJenkins::Impl::folder_api(const ReceivedRequest& rec) const {
    // A folder exists when some job lies below it; its API has no buildable (not a job).
    const bool folder = std::any_of(jobs.begin(), jobs.end(), [&](const Job& j) {
        return j.names.size() > rec.job.size() &&
               std::equal(rec.job.begin(), rec.job.end(), j.names.begin(),
                          [](const auto& a, const auto& b) { return iequals(a, b); });
    });
    if (folder && rec.endpoint == "build" && rec.method == "POST") {
        std::string full_name;
        for (const auto& name : rec.job) full_name += (full_name.empty() ? "" : "/") + name;
        return error_answer(500, full_name + " cannot be recomputed");
    }
    if (!folder || rec.endpoint != "api") return error_answer(404, "Not Found");
    Answer a;
    a.content_type = "application/json;charset=utf-8";
    a.body = json::serialize(json::object{{"_class", "com.cloudbees.hudson.plugins.folder.Folder"},
                                          {"name", rec.job.back()},
                                          {"jobs", items_below(rec.job)}});
    return a;
}

json::array FakeJenkins::Impl::items_below(const std::vector<std::string>& folder) const {
    // The items directly in `folder` (the root when empty), each once, sorted case-insensitively
    // as Jenkins keeps them: a job's own class, or a Folder for a name some job lies below.
    const auto in_folder = [&](const Job& j) {
        return j.names.size() > folder.size() &&
               std::equal(folder.begin(), folder.end(), j.names.begin(),
                          [](const auto& a, const auto& b) { return iequals(a, b); });
    };
    std::map<std::string, std::pair<std::string, std::string_view>> items;  // lower → name, class
    for (const auto& j : jobs) {
        if (!in_folder(j)) continue;
        const auto& name = j.names[folder.size()];
        std::string key(name);
        std::transform(key.begin(), key.end(), key.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        auto& item = items[key];
        item.first = name;
        if (j.names.size() == folder.size() + 1) {
            item.second = j.class_name;
        } else if (item.second.empty()) {
            item.second = "com.cloudbees.hudson.plugins.folder.Folder";
        }
    }
    json::array out;
    for (const auto& [key, item] : items) {
        out.push_back(json::object{{"_class", item.second}, {"name", item.first}});
    }
    return out;
}

Answer FakeJenkins::Impl::issue_crumb(const ReceivedRequest& rec,
                                      const std::string& cookie_header) {
    const std::string who = rec.authenticated ? rec.user : "anonymous";
    Answer a;
    std::string id;
    const Session* session = session_of(cookie_header, &id);
    if (!session || session->user != who) {
        id = random_hex(32);
        sessions[id] = Session{random_hex(64), who};
        session = &sessions[id];
        a.headers.emplace_back("Set-Cookie", cookie_name + "=" + id + "; Path=/; HttpOnly");
    }
    a.content_type = "application/json;charset=utf-8";
    a.body = R"({"_class":"hudson.security.csrf.DefaultCrumbIssuer","crumb":")" + session->crumb +
             R"(","crumbRequestField":")" + std::string(k_crumb_field) + R"("})";
    return a;
}

Answer FakeJenkins::Impl::build(ReceivedRequest& rec, const Job& job, std::size_t job_index) {
    const bool parameterized = !job.parameters.empty();
    const bool with_parameters = rec.endpoint == "buildWithParameters";
    const bool post = rec.method == "POST";
    std::string full_name;
    for (const auto& name : job.names) full_name += (full_name.empty() ? "" : "/") + name;

    auto count = [&](const std::string& name) {
        std::size_t n = 0;
        for (const auto* list : {&rec.query, &rec.form}) {
            for (const auto& [k, v] : *list) n += k == name ? 1 : 0;
        }
        return n;
    };

    // doBuild: a parameterized job shows its parameter form (405) to anything but POST.
    if (!with_parameters && parameterized && !post) {
        Answer a = error_answer(405, "This page shows the parameters of " + full_name);
        return a;
    }

    // BuildAuthorizationToken.checkPermission.
    const bool token_given = count("token") > 0;
    bool allowed = false;
    if (!job.token.empty() && token_given) {
        if (rec.param("token") != job.token) return error_answer(403, "Invalid token provided.");
        allowed = true;
    }
    if (!allowed && !rec.authenticated) {
        Answer a = error_answer(403, "anonymous is missing the Job/Build permission");
        a.headers.emplace_back("X-You-Are-Authenticated-As", "anonymous");
        a.headers.emplace_back("X-Required-Permission", "hudson.model.Item.Build");
        return a;
    }
    if (!allowed && !post) {
        Answer a = error_answer(405, "Method Not Allowed");
        a.headers.emplace_back("Allow", "POST");
        return a;
    }

    if (count("delay") > 0 && !valid_delay(rec.param("delay"))) {
        return error_answer(500, "Oops! Invalid delay");
    }

    Params values;
    if (!with_parameters) {
        if (parameterized) {
            return error_answer(
                400, token_given ? "This page expects a form submission" : "Nothing is submitted");
        }
    } else {
        if (!parameterized) return error_answer(400, full_name + " is not parameterized");
        for (const auto& name : job.parameters) {
            const auto n = count(name);
            if (n > 1) {
                return error_answer(500, "Oops! Illegal number of parameter values for " + name +
                                             ": " + std::to_string(n));
            }
            values.emplace_back(name, n == 1 ? rec.param(name) : std::string());
        }
        std::sort(values.begin(), values.end());
    }

    auto padded = [this](std::string location) {
        if (location.size() < location_padding) {
            location += "?pad=";
            location.resize(std::max(location.size(), location_padding), 'x');
        }
        return location;
    };
    // Queue.schedule2: merge into an identical queued item.
    for (const auto index : waiting) {
        const auto& item = items[index];
        if (item.job == job_index && item.values == values) {
            Answer a;
            a.status = with_parameters ? 303 : 201;
            a.headers.emplace_back("Location", padded(item.location));
            return a;
        }
    }
    QueueItem item;
    item.id = static_cast<std::int64_t>(items.size()) + 1;
    item.job = job_index;
    item.values = std::move(values);
    // Jenkins builds the Location from the request (Host, scheme, context path), not from its
    // root URL (jenkins-remote-api.md §1.7): the address the client used.
    item.location = base_url() + "queue/item/" + std::to_string(item.id) + "/";
    item.queued_at = Clock::now();
    if (quiet_period.count() > 0) item.due = item.queued_at + quiet_period;
    Answer a;
    a.status = 201;
    a.headers.emplace_back("Location", padded(item.location));
    waiting.push_back(items.size());
    items.push_back(std::move(item));
    return a;
}

Answer FakeJenkins::Impl::scan(const ReceivedRequest& rec, std::size_t project) {
    // ComputedFolder.doBuild: @RequirePOST, Item.BUILD (no token), buildable, then schedule.
    const Job& job = jobs[project];
    if (rec.method != "POST") {
        Answer a = error_answer(405, "Method Not Allowed");
        a.headers.emplace_back("Allow", "POST");
        return a;
    }
    if (!rec.authenticated) {
        Answer a = error_answer(403, "anonymous is missing the Job/Build permission");
        a.headers.emplace_back("X-You-Are-Authenticated-As", "anonymous");
        a.headers.emplace_back("X-Required-Permission", "hudson.model.Item.Build");
        return a;
    }
    std::string full_name;
    for (const auto& name : job.names) full_name += (full_name.empty() ? "" : "/") + name;
    if (!job.buildable) return error_answer(500, full_name + " cannot be recomputed");
    if (!rec.param("delay").empty() && !valid_delay(rec.param("delay"))) {
        return error_answer(500, "Oops! Invalid delay");
    }
    // forwardToPreviousPage: no Referer here, so the folder's own page. (Taken now: finishing
    // the scan below adds jobs, which moves `job`.)
    Answer a;
    a.status = 302;
    a.headers.emplace_back("Location", base_url() + job_url_path(job.names));
    // The folder is one queue task: a request while a scan waits to start merges into it; while
    // one runs, the next waits for it (a computed folder never computes twice at once).
    const auto now = Clock::now();
    Scan* last = nullptr;
    for (auto& scan : scan_log) {
        if (scan.project == project) last = &scan;
    }
    if (last && last->started_at > now) {
        ++last->requests;
    } else {
        Scan scan;
        scan.project = project;
        scan.requested_at = now;
        scan.started_at = last && last->ends_at > now ? last->ends_at : now;
        scan.ends_at = scan.started_at + scan_duration;
        scan_log.push_back(std::move(scan));
        advance_locked(now);
    }
    return a;
}

Answer FakeJenkins::Impl::queue_api(const ReceivedRequest& rec,
                                    const std::vector<std::string>& rest) {
    const auto now = Clock::now();
    if (rest.size() == 5 && rest[1] == "item" && rest[3] == "api" && rest[4] == "json") {
        if (rec.method != "GET") return error_answer(405, "Method Not Allowed");
        const auto id = parse_id(rest[2]);
        const auto* item = id ? item_locked(*id, now) : nullptr;
        if (!item) return error_answer(404, "Not Found");
        return queue_item_json(*item, now);
    }
    if (rest.size() == 2 && rest[1] == "cancelItem") {
        // Queue.doCancelItem (@RequirePOST).
        if (rec.method != "POST") {
            Answer a = error_answer(405, "Method Not Allowed");
            a.headers.emplace_back("Allow", "POST");
            return a;
        }
        const auto text = rec.param("id");
        const auto id = parse_id(text);
        auto* item = id ? item_locked(*id, now) : nullptr;
        // Already left (started or cancelled): "too late, ignore (JENKINS-14813)".
        if (!item || item->left) return error_answer(404, "Provided id (" + text + ") not found");
        if (!rec.authenticated) return error_answer(422, "not cancellable");
        cancel_locked(*item, now);
        Answer a;
        a.status = 204;
        return a;
    }
    return error_answer(404, "Not Found");
}

Answer FakeJenkins::Impl::queue_item_json(const QueueItem& item, Clock::time_point now) const {
    const Job& job = jobs[item.job];
    json::object o;
    const bool quiet = !item.left && item.due.has_value();
    o["_class"] = item.left ? "hudson.model.Queue$LeftItem"
                  : quiet   ? "hudson.model.Queue$WaitingItem"
                            : "hudson.model.Queue$BuildableItem";
    json::array actions;
    if (!item.values.empty()) {
        json::array parameters;
        for (const auto& [name, value] : item.values) {
            parameters.push_back(json::object{
                {"_class", "hudson.model.StringParameterValue"}, {"name", name}, {"value", value}});
        }
        actions.push_back(json::object{{"_class", "hudson.model.ParametersAction"},
                                       {"parameters", std::move(parameters)}});
    }
    o["actions"] = std::move(actions);
    o["blocked"] = false;
    o["buildable"] = !item.left && !quiet;
    o["id"] = item.id;
    o["inQueueSince"] = epoch_ms(item.queued_at);
    std::string params;
    for (const auto& [name, value] : item.values) params += "\n" + name + "=" + value;
    o["params"] = params;
    o["stuck"] = false;
    o["task"] = json::object{{"_class", job.class_name},
                             {"name", job.names.back()},
                             {"url", root_url() + job_url_path(job.names)},
                             {"color", "blue"}};
    o["url"] = "queue/item/" + std::to_string(item.id) + "/";
    if (item.left) {
        o["why"] = nullptr;
        o["cancelled"] = item.cancelled;
        const Run* run = item.run ? &runs[*item.run] : nullptr;
        if (run && now >= run->exists_at) {
            o["executable"] = json::object{{"_class", "hudson.model.FreeStyleBuild"},
                                           {"number", run->number},
                                           {"url", build_url(*run)}};
        } else {
            o["executable"] = nullptr;
        }
    } else if (quiet) {
        const auto left_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(*item.due - now).count();
        const auto tenths = std::max<std::int64_t>(0, left_ms / 100);
        o["why"] = "In the quiet period. Expires in " + std::to_string(tenths / 10) + "." +
                   std::to_string(tenths % 10) + " sec";
        o["timestamp"] = epoch_ms(*item.due);
    } else {
        o["why"] = "Waiting for next available executor";
        o["buildableStartMilliseconds"] = epoch_ms(item.queued_at);
        o["pending"] = false;
    }
    Answer a;
    a.content_type = "application/json;charset=utf-8";
    a.body = json::serialize(o);
    return a;
}

Answer FakeJenkins::Impl::build_json(const ReceivedRequest& rec, std::size_t job_index,
                                     std::int64_t number) {
    if (rec.method != "GET") return error_answer(405, "Method Not Allowed");
    const auto now = Clock::now();
    for (const auto& run : runs) {
        if (run.job != job_index || run.number != number || now < run.exists_at) continue;
        json::object o;
        o["_class"] = "hudson.model.FreeStyleBuild";
        o["building"] = run.building;
        o["duration"] = run.building ? 0 : run.duration.count();
        o["estimatedDuration"] = build_duration.count() > 0 ? build_duration.count() : -1;
        o["inProgress"] = run.building;
        o["number"] = run.number;
        o["queueId"] = run.queue_id;
        if (run.building) {
            o["result"] = nullptr;
        } else {
            o["result"] = run.result;
        }
        o["timestamp"] = epoch_ms(run.timestamp);
        o["url"] = build_url(run);
        Answer a;
        a.content_type = "application/json;charset=utf-8";
        a.body = json::serialize(o);
        return a;
    }
    return error_answer(404, "Not Found");
}

Answer FakeJenkins::Impl::builds_json(std::size_t job_index, Clock::time_point now) const {
    json::array builds;
    for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
        if (it->job != job_index || now < it->exists_at) continue;
        builds.push_back(json::object{{"_class", "hudson.model.FreeStyleBuild"},
                                      {"number", it->number},
                                      {"queueId", it->queue_id},
                                      {"url", build_url(*it)}});
    }
    json::object o;
    o["_class"] = "hudson.model.FreeStyleProject";
    o["builds"] = std::move(builds);
    Answer a;
    a.content_type = "application/json;charset=utf-8";
    a.body = json::serialize(o);
    return a;
}

FakeJenkins::FakeJenkins(Options options) : impl_(std::make_shared<Impl>(std::move(options))) {
    auto& impl = *impl_;
    impl.reset_sessions_locked();
    impl.server.emplace(
        LoopbackServer::Options{"FakeJenkins", impl.options.tls, impl.options.cert_file,
                                impl.options.key_file, impl.options.port},
        [&impl](const Request& request) { return impl.answer_to(request); });
}

FakeJenkins::~FakeJenkins() {
    impl_->server.reset();
}

std::uint16_t FakeJenkins::port() const {
    return impl_->server->port();
}

std::string FakeJenkins::url() const {
    return impl_->server->url();
}

void FakeJenkins::add_job(std::vector<std::string> item_names, std::vector<std::string> parameters,
                          std::string token) {
    std::lock_guard lock(impl_->mutex);
    impl_->jobs.push_back(Job{std::move(item_names), std::move(parameters), std::move(token)});
}

void FakeJenkins::add_multibranch(std::vector<std::string> item_names,
                                  std::vector<std::string> branches,
                                  std::vector<std::string> parameters) {
    std::lock_guard lock(impl_->mutex);
    auto& impl = *impl_;
    Job project{std::move(item_names), {}, std::string()};
    project.class_name = k_multibranch;
    project.multibranch = true;
    impl.jobs.push_back(std::move(project));
    const auto index = impl.jobs.size() - 1;
    for (const auto& branch : branches) impl.add_branch_job_locked(index, branch, parameters);
}

void FakeJenkins::add_branch_on_scan(const std::vector<std::string>& project, std::string branch,
                                     std::vector<std::string> parameters) {
    std::lock_guard lock(impl_->mutex);
    auto& impl = *impl_;
    const auto index = impl.find_job_locked(project);
    if (!index || !impl.jobs[*index].multibranch) {
        throw std::invalid_argument("add_branch_on_scan: not a multibranch project");
    }
    impl.pending_branches.push_back(
        PendingBranch{*index, std::move(branch), std::move(parameters), Clock::now()});
}

void FakeJenkins::set_scan_duration(std::chrono::milliseconds duration) {
    std::lock_guard lock(impl_->mutex);
    impl_->scan_duration = duration;
}

std::size_t FakeJenkins::scans(const std::vector<std::string>& project) const {
    std::lock_guard lock(impl_->mutex);
    const auto index = impl_->find_job_locked(project);
    return static_cast<std::size_t>(
        std::count_if(impl_->scan_log.begin(), impl_->scan_log.end(),
                      [&](const Scan& scan) { return index && scan.project == *index; }));
}

std::vector<FakeJenkins::ScanInfo> FakeJenkins::scan_log() const {
    std::lock_guard lock(impl_->mutex);
    auto& impl = *impl_;
    impl.advance_locked(Clock::now());
    std::vector<ScanInfo> out;
    for (const auto& scan : impl.scan_log) {
        ScanInfo info;
        info.project = impl.jobs[scan.project].names;
        info.requested_at = scan.requested_at;
        info.started_at = scan.started_at;
        info.ends_at = scan.ends_at;
        info.requests = scan.requests;
        info.finished = scan.finished;
        info.created = scan.created;
        out.push_back(std::move(info));
    }
    return out;
}

std::string FakeJenkins::branch_item_name(const std::string& branch) {
    return name_encode(branch);
}

std::vector<std::int64_t> FakeJenkins::cancelled_items() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->cancelled;
}

void FakeJenkins::set_job_buildable(const std::vector<std::string>& item_names, bool buildable) {
    std::lock_guard lock(impl_->mutex);
    for (auto& job : impl_->jobs) {
        if (job.names == item_names) job.buildable = buildable;
    }
}

void FakeJenkins::fail_next(int count, int status, std::string retry_after, std::string message) {
    std::lock_guard lock(impl_->mutex);
    impl_->fail_count = count;
    impl_->fail_status = status;
    impl_->fail_retry_after = std::move(retry_after);
    impl_->fail_message = std::move(message);
}

void FakeJenkins::set_hanging(bool hanging) {
    std::lock_guard lock(impl_->mutex);
    impl_->hanging = hanging;
}

void FakeJenkins::pad_location(std::size_t bytes) {
    std::lock_guard lock(impl_->mutex);
    impl_->location_padding = bytes;
}

void FakeJenkins::set_restarting(bool restarting) {
    std::lock_guard lock(impl_->mutex);
    impl_->restarting = restarting;
}

void FakeJenkins::set_api_token(std::string api_token) {
    std::lock_guard lock(impl_->mutex);
    impl_->options.api_token = std::move(api_token);
}

void FakeJenkins::set_read_denied(bool denied) {
    std::lock_guard lock(impl_->mutex);
    impl_->read_denied = denied;
}

void FakeJenkins::set_answer_delay(std::chrono::milliseconds delay) {
    std::lock_guard lock(impl_->mutex);
    impl_->answer_delay = delay;
}

void FakeJenkins::set_build_answer_delay(std::chrono::milliseconds delay) {
    std::lock_guard lock(impl_->mutex);
    impl_->build_answer_delay = delay;
}

std::size_t FakeJenkins::in_flight() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->in_flight;
}

std::size_t FakeJenkins::peak_in_flight() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->peak_in_flight;
}

void FakeJenkins::reset_peak_in_flight() {
    std::lock_guard lock(impl_->mutex);
    impl_->peak_in_flight = impl_->in_flight;
}

void FakeJenkins::stop() {
    impl_->server->stop();
}

void FakeJenkins::start() {
    auto& server = *impl_->server;
    if (server.serving()) return;  // not a restart
    {
        std::lock_guard lock(impl_->mutex);
        impl_->reset_sessions_locked();
    }
    server.start();
}

void FakeJenkins::invalidate_sessions() {
    std::lock_guard lock(impl_->mutex);
    impl_->reset_sessions_locked();
}

void FakeJenkins::drain_queue() {
    std::lock_guard lock(impl_->mutex);
    auto& impl = *impl_;
    const auto now = Clock::now();
    impl.advance_locked(now);
    const auto queued = impl.waiting;  // oldest first
    for (const auto index : queued) impl.start_locked(index, now);
}

void FakeJenkins::set_quiet_period(std::chrono::milliseconds period) {
    std::lock_guard lock(impl_->mutex);
    impl_->quiet_period = period;
}

void FakeJenkins::set_build_duration(std::chrono::milliseconds duration) {
    std::lock_guard lock(impl_->mutex);
    impl_->build_duration = duration;
}

void FakeJenkins::set_next_results(std::vector<std::string> results) {
    std::lock_guard lock(impl_->mutex);
    impl_->next_results = std::move(results);
}

void FakeJenkins::set_left_item_ttl(std::chrono::milliseconds ttl) {
    std::lock_guard lock(impl_->mutex);
    impl_->left_item_ttl = ttl;
}

void FakeJenkins::set_executable_delay(std::chrono::milliseconds delay) {
    std::lock_guard lock(impl_->mutex);
    impl_->executable_delay = delay;
}

void FakeJenkins::finish_builds() {
    std::lock_guard lock(impl_->mutex);
    auto& impl = *impl_;
    const auto now = Clock::now();
    impl.advance_locked(now);
    for (auto& run : impl.runs) {
        if (run.building) impl.finish_locked(run, now);
    }
    impl.timed.clear();
}

bool FakeJenkins::cancel_item(std::int64_t id) {
    std::lock_guard lock(impl_->mutex);
    auto& impl = *impl_;
    const auto now = Clock::now();
    impl.advance_locked(now);
    auto* item = impl.item_locked(id, now);
    if (!item || item->left) return false;
    impl.cancel_locked(*item, now);
    return true;
}

std::vector<FakeJenkins::QueueItemInfo> FakeJenkins::queue_items() const {
    std::lock_guard lock(impl_->mutex);
    auto& impl = *impl_;
    const auto now = Clock::now();
    impl.advance_locked(now);
    std::vector<QueueItemInfo> out;
    for (const auto& item : impl.items) {
        QueueItemInfo info;
        info.id = item.id;
        info.job = impl.jobs[item.job].names;
        info.parameters = item.values;
        info.left = item.left;
        info.cancelled = item.cancelled;
        if (item.run) info.build_number = impl.runs[*item.run].number;
        info.forgotten = item.left && now - item.left_at > impl.left_item_ttl;
        out.push_back(std::move(info));
    }
    return out;
}

std::vector<FakeJenkins::BuildInfo> FakeJenkins::runs() const {
    std::lock_guard lock(impl_->mutex);
    auto& impl = *impl_;
    impl.advance_locked(Clock::now());
    std::vector<BuildInfo> out;
    for (const auto& run : impl.runs) {
        BuildInfo info;
        info.job = impl.jobs[run.job].names;
        info.number = run.number;
        info.queue_id = run.queue_id;
        info.url = impl.build_url(run);
        info.building = run.building;
        info.result = run.building ? std::string() : run.result;
        out.push_back(std::move(info));
    }
    return out;
}

std::vector<ReceivedRequest> FakeJenkins::requests() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->received;
}

std::vector<ReceivedRequest> FakeJenkins::builds() const {
    std::lock_guard lock(impl_->mutex);
    std::vector<ReceivedRequest> out;
    for (const auto& r : impl_->received) {
        const bool build = r.endpoint == "build" || r.endpoint == "buildWithParameters";
        if (build && !r.job.empty() && (r.status == 201 || r.status == 303)) out.push_back(r);
    }
    return out;
}

bool FakeJenkins::wait_for_builds(std::size_t n, std::chrono::milliseconds deadline) {
    std::unique_lock lock(impl_->mutex);
    return impl_->changed.wait_for(lock, deadline, [&] {
        std::size_t count = 0;
        for (const auto& r : impl_->received) {
            const bool build = r.endpoint == "build" || r.endpoint == "buildWithParameters";
            if (build && !r.job.empty() && (r.status == 201 || r.status == 303)) ++count;
        }
        return count >= n;
    });
}

bool FakeJenkins::wait_for_requests(std::size_t n, std::chrono::milliseconds deadline) {
    std::unique_lock lock(impl_->mutex);
    return impl_->changed.wait_for(lock, deadline, [&] { return impl_->received.size() >= n; });
}

std::size_t FakeJenkins::connections_accepted() const {
    return impl_->server->connections_accepted();
}

std::string FakeJenkins::cookie_name() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->cookie_name;
}

}  // namespace hookrelay::test
