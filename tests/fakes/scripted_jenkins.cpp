#include "fakes/scripted_jenkins.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace hookrelay::test {

namespace asio = boost::asio;

struct ScriptedJenkins::Gate {
    explicit Gate(asio::any_io_executor ex) : timer(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer timer;
};

ScriptedJenkins::ScriptedJenkins(asio::any_io_executor executor) : executor_(std::move(executor)) {}

ScriptedJenkins::~ScriptedJenkins() = default;

void ScriptedJenkins::then(JenkinsOutcome::Kind kind, int http_status, std::string detail) {
    JenkinsOutcome o;
    o.kind = kind;
    o.http_status = http_status;
    o.detail = detail.empty() ? std::string(to_string(kind)) : std::move(detail);
    if (kind == JenkinsOutcome::Kind::queued) o.queue_url = "http://jenkins/queue/item/1/";
    script_.push_back(std::move(o));
}

void ScriptedJenkins::then(JenkinsOutcome outcome) {
    script_.push_back(std::move(outcome));
}

void ScriptedJenkins::then_probe(JenkinsOutcome::Kind kind, std::string detail) {
    JenkinsOutcome o;
    o.kind = kind;
    o.detail = detail.empty() ? std::string(to_string(kind)) : std::move(detail);
    probe_script_.push_back(std::move(o));
}

void ScriptedJenkins::then_read(std::string path, JenkinsOutcome outcome) {
    read_script_[std::move(path)].push_back(std::move(outcome));
}

void ScriptedJenkins::then_read(std::string path, int http_status, std::string body) {
    using Kind = JenkinsOutcome::Kind;
    JenkinsOutcome o;
    o.http_status = http_status;
    if (http_status >= 200 && http_status < 300) {
        o.kind = Kind::queued;
        o.body = std::move(body);
    } else if (http_status == 401) {
        o.kind = Kind::auth_failed;
    } else if (http_status == 429) {
        o.kind = Kind::throttled;
    } else if (http_status == 500) {
        o.kind = Kind::server_error;
    } else if (http_status == 0 || (http_status >= 502 && http_status <= 504)) {
        o.kind = Kind::unavailable;
    } else {
        o.kind = Kind::permanent;
    }
    o.detail = http_status == 0 ? std::string("connect: Connection refused")
                                : "HTTP " + std::to_string(http_status);
    then_read(std::move(path), std::move(o));
}

namespace {

JenkinsOutcome scripted(JenkinsOutcome::Kind kind, int http_status, std::string detail) {
    JenkinsOutcome o;
    o.kind = kind;
    o.http_status = http_status;
    o.detail = detail.empty() ? std::string(to_string(kind)) : std::move(detail);
    return o;
}

// The next outcome of `script`, or `fallback` when it is used up.
JenkinsOutcome next_of(std::deque<JenkinsOutcome>& script, JenkinsOutcome fallback) {
    if (script.empty()) return fallback;
    auto o = std::move(script.front());
    script.pop_front();
    return o;
}

}  // namespace

void ScriptedJenkins::then_scan(JenkinsOutcome::Kind kind, int http_status, std::string detail) {
    scan_script_.push_back(scripted(kind, http_status, std::move(detail)));
}

void ScriptedJenkins::then_cancel(JenkinsOutcome::Kind kind, int http_status, std::string detail) {
    cancel_script_.push_back(scripted(kind, http_status, std::move(detail)));
}

void ScriptedJenkins::then_throw() {
    ++throws_;
}

void ScriptedJenkins::release() {
    for (auto& gate : gates_) gate->timer.cancel();
}

void ScriptedJenkins::release_first() {
    if (!gates_.empty()) gates_.front()->timer.cancel();
}

asio::awaitable<JenkinsOutcome> ScriptedJenkins::trigger(TriggerRequest request,
                                                         std::optional<Secret> job_token) {
    requests.push_back(std::move(request));
    job_tokens.push_back(std::move(job_token));
    if (throws_ > 0) {
        --throws_;
        throw std::runtime_error("scripted failure");
    }
    if (hanging_) {
        auto gate = std::make_shared<Gate>(executor_);
        gates_.push_back(gate);
        co_await gate->timer.async_wait(asio::as_tuple(asio::use_awaitable));
        gates_.remove(gate);
    }
    if (script_.empty()) {
        JenkinsOutcome o;
        o.kind = JenkinsOutcome::Kind::queued;
        o.http_status = 201;
        o.queue_url = "http://jenkins/queue/item/1/";
        o.detail = "HTTP 201 Created";
        co_return o;
    }
    auto o = std::move(script_.front());
    script_.pop_front();
    co_return o;
}

asio::awaitable<JenkinsOutcome> ScriptedJenkins::probe() {
    ++probes;
    if (probe_hanging_) {
        auto gate = std::make_shared<Gate>(executor_);
        gates_.push_back(gate);
        co_await gate->timer.async_wait(asio::as_tuple(asio::use_awaitable));
        gates_.remove(gate);
    }
    if (probe_script_.empty()) {
        JenkinsOutcome o;
        o.kind = JenkinsOutcome::Kind::queued;
        o.http_status = 200;
        o.detail = "HTTP 200 OK";
        co_return o;
    }
    auto o = std::move(probe_script_.front());
    probe_script_.pop_front();
    co_return o;
}

asio::awaitable<JenkinsOutcome> ScriptedJenkins::read(std::string path) {
    reads.push_back(path);
    const auto it = read_script_.find(path);
    if (it == read_script_.end() || it->second.empty()) {
        JenkinsOutcome o;
        o.kind = JenkinsOutcome::Kind::permanent;
        o.http_status = 404;
        o.detail = "HTTP 404 Not Found";
        co_return o;
    }
    auto& answers = it->second;
    if (answers.size() == 1) co_return answers.front();
    auto o = std::move(answers.front());
    answers.pop_front();
    co_return o;
}

asio::awaitable<JenkinsOutcome> ScriptedJenkins::scan(std::vector<std::string> project) {
    scans.push_back(std::move(project));
    co_return next_of(scan_script_, scripted(JenkinsOutcome::Kind::queued, 302, "HTTP 302 Found"));
}

asio::awaitable<JenkinsOutcome> ScriptedJenkins::cancel_item(std::int64_t queue_id) {
    cancels.push_back(queue_id);
    co_return next_of(cancel_script_,
                      scripted(JenkinsOutcome::Kind::queued, 204, "HTTP 204 No Content"));
}

}  // namespace hookrelay::test
