#include "app/online_check.hpp"

#include "app/app.hpp"
#include "app/runtime.hpp"
#include "config/lease.hpp"
#include "dispatch/dispatcher.hpp"
#include "jenkins/client.hpp"
#include "rules/rules.hpp"
#include "util/spawn.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

#include <ostream>

namespace hookrelay::app {

namespace asio = boost::asio;

namespace {

std::vector<std::string> lines(const std::string& file, const jenkins::CheckReport& report) {
    std::vector<std::string> out;
    for (const auto& f : report.findings)
        out.push_back(to_string(ConfigError{file, f.where, f.message}));
    return out;
}

std::string summary(const JenkinsConfig& j, const jenkins::CheckReport& r) {
    std::string out = fmt::format("jenkins {} ({}): ", j.name, j.url);
    if (!r.reachable) return out + "not reachable";
    out += r.identity.empty() ? std::string("identity unknown") : r.identity;
    out +=
        r.csrf.empty() ? std::string("; CSRF protection unknown") : "; CSRF protection " + r.csrf;
    out += fmt::format("; {} job path(s) checked", r.jobs_checked);
    if (r.jobs_templated > 0) {
        out += fmt::format(", {} depend(s) on the event entirely", r.jobs_templated);
    }
    return out + (r.findings.empty() ? std::string(": OK")
                                     : fmt::format(": {} problem(s)", r.findings.size()));
}

// One Jenkins: a client of its own (one request at a time), the checks, then `done`.
template <class Done>
asio::awaitable<void> check_one(asio::any_io_executor executor, JenkinsConfig config,
                                jenkins::CheckPlan plan, Done done) {
    std::string why;
    config.max_in_flight = 1;
    auto client = jenkins::make_client(executor, config, &why);
    jenkins::CheckReport report;
    report.jenkins = plan.jenkins;
    if (!client) {
        report.findings.push_back({plan.where, "jenkins " + plan.jenkins + ": " + why});
    } else {
        report = co_await jenkins::check_jenkins(**client, std::move(plan));
    }
    done(report);
}

}  // namespace

std::vector<jenkins::CheckPlan> check_plans(const Config& config, std::string_view only) {
    std::vector<jenkins::CheckPlan> plans;
    for (const auto& j : config.jenkins) {
        if (!only.empty() && j.name != only) continue;
        jenkins::CheckPlan plan;
        plan.jenkins = j.name;
        plan.where = j.where;
        plan.auth_key = dispatch::auth_key(j);
        for (const auto& rule : config.rules) {
            for (const auto& t : rule.triggers) {
                if (t.jenkins != j.name) continue;
                const auto path = rules::static_job_path(t.job.text);
                jenkins::JobCheck check;
                check.rule = rule.name;
                check.job = path.segments;
                check.complete = path.complete;
                check.job_text = t.job.text;
                check.job_where = t.job.where;
                if (t.multibranch || t.scan) {
                    // A multibranch project is a folder: that it exists, and is one, is what can
                    // be known ahead (its branch jobs come and go with the branches).
                    check.computed_folder = path.complete;
                    check.complete = false;
                    check.job_text += t.multibranch ? " (multibranch project)" : " (scan)";
                    plan.jobs.push_back(std::move(check));
                    continue;
                }
                for (const auto& [name, value] : t.parameters) {
                    check.parameters.emplace_back(name, value.where);
                }
                plan.jobs.push_back(std::move(check));
            }
        }
        plans.push_back(std::move(plan));
    }
    return plans;
}

int run_online_check(const std::string& config_path, const std::string& only, std::ostream& out,
                     std::ostream& err) {
    auto loaded = load_runtime(config_path);
    // An invalid config: what `check` says about it.
    if (!loaded.errors.empty()) return run_check(config_path, out, err);
    const auto& config = *loaded.runtime->config;
    // What `check` warns of, `check --online` too.
    if (auto warning = claim_lease_warning(config.dispatch, config.server.store_timeout);
        !warning.empty() && only.empty()) {
        err << "warning: " << warning << '\n';
    }
    auto plans = check_plans(config, only);
    if (plans.empty()) {
        if (only.empty()) {
            out << config_path << ": no jenkins to check\n";
            return 0;
        }
        err << "no jenkins named '" << only << "' in " << config_path << '\n';
        return 1;
    }
    asio::io_context ioc;
    std::vector<jenkins::CheckReport> reports(plans.size());
    for (std::size_t i = 0; i < plans.size(); ++i) {
        const auto* entry = config.find_jenkins(plans[i].jenkins);
        spawn_logged(ioc,
                     check_one(ioc.get_executor(), *entry, std::move(plans[i]),
                               [&reports, i](const jenkins::CheckReport& r) { reports[i] = r; }),
                     "online check");
    }
    ioc.run();
    std::size_t problems = 0;
    for (const auto& r : reports) {
        for (const auto& line : lines(config.file, r)) err << line << '\n';
        problems += r.findings.size();
        out << summary(*config.find_jenkins(r.jenkins), r) << '\n';
    }
    if (problems > 0) {
        err << problems << (problems == 1 ? " problem" : " problems") << " found against Jenkins\n";
        return 1;
    }
    return 0;
}

OnlineChecks::OnlineChecks(asio::any_io_executor executor, std::shared_ptr<Metrics> metrics)
    : executor_(std::move(executor)), metrics_(std::move(metrics)) {}

void OnlineChecks::run(std::shared_ptr<const Config> config) {
    unsigned generation = 0;
    // A Jenkins the configuration no longer has: its findings were about entries and rules that
    // are gone (its lane may live on while its triggers go out, and shows none). Its gauge is set
    // under the lock, as publish() sets the others: a check of the previous generation that passed
    // its test cannot set it again after this.
    {
        std::lock_guard lock(mutex_);
        generation = ++generation_;
        for (auto it = findings_.begin(); it != findings_.end();) {
            if (config->find_jenkins(it->first)) {
                ++it;
                continue;
            }
            metrics_->config_findings(it->first, 0);
            it = findings_.erase(it);
        }
    }
    for (auto& plan : check_plans(*config)) {
        const auto* entry = config->find_jenkins(plan.jenkins);
        spawn_logged(executor_, check(*entry, std::move(plan), generation, config->file),
                     "online check of jenkins " + entry->name);
    }
}

asio::awaitable<void> OnlineChecks::check(JenkinsConfig entry, jenkins::CheckPlan plan,
                                          unsigned generation, std::string file) {
    // Held by the check while it waits, so that it can look at the generation after the wait.
    const auto self = shared_from_this();
    auto wait = entry.probe_initial;
    for (bool again = false;; again = true) {
        jenkins::CheckReport report;
        co_await check_one(executor_, entry, plan,
                           [&report](const jenkins::CheckReport& r) { report = r; });
        if (!publish(generation, file, report, again) || report.complete) co_return;
        asio::steady_timer timer(executor_, wait);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        wait = std::min(wait * 2, std::max(entry.probe_max, entry.probe_initial));
        std::lock_guard lock(mutex_);
        if (generation != generation_) co_return;
    }
}

bool OnlineChecks::publish(unsigned generation, const std::string& file,
                           const jenkins::CheckReport& report, bool again) {
    auto found = lines(file, report);
    {
        std::lock_guard lock(mutex_);
        if (generation != generation_) return false;  // a reload started a newer check
        // A check done again while Jenkins stays down finds the same: said once (a reload's
        // first check says it again).
        const auto it = findings_.find(report.jenkins);
        if (again && it != findings_.end() && it->second == found && !report.complete) {
            return true;
        }
        findings_[report.jenkins] = found;
        metrics_->config_findings(report.jenkins, found.size());
    }
    for (const auto& line : found) spdlog::warn("config check: {}", line);
    if (found.empty()) spdlog::info("config check: jenkins {}: no problems found", report.jenkins);
    if (!report.complete) {
        spdlog::info("config check: jenkins {}: checked again once it answers", report.jenkins);
    }
    return true;
}

std::vector<std::string> OnlineChecks::findings(const std::string& jenkins) const {
    std::lock_guard lock(mutex_);
    const auto it = findings_.find(jenkins);
    return it == findings_.end() ? std::vector<std::string>{} : it->second;
}

}  // namespace hookrelay::app
