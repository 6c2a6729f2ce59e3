#include "jenkins/check.hpp"

#include "jenkins/client.hpp"
#include "jenkins/response.hpp"
#include "util/suggest.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <utility>

namespace hookrelay::jenkins {

namespace json = boost::json;

namespace {

// A job's answer nests four levels (property → parameterDefinitions → definition).
constexpr unsigned k_max_depth = 16;
constexpr std::string_view k_who_am_i = "whoAmI/api/json";
constexpr std::string_view k_crumb_issuer = "crumbIssuer/api/json";
constexpr std::string_view k_folder_tree = "api/json?tree=_class";
// A folder without a near miss is shown by this many of its items.
constexpr std::size_t k_items_listed = 5;

std::string lower(std::string_view text) {
    std::string out(text);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string display(const std::vector<std::string>& job) {
    std::string out;
    for (const auto& segment : job) out += (out.empty() ? "" : "/") + segment;
    return out;
}

std::string list(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

// Jenkins down, or refusing everyone alike: no further request would tell more.
bool stops(const JenkinsOutcome& o) {
    return o.kind == JenkinsOutcome::Kind::unavailable ||
           o.kind == JenkinsOutcome::Kind::auth_failed || o.kind == JenkinsOutcome::Kind::throttled;
}

std::string unreachable(std::string_view jenkins, const JenkinsOutcome& o) {
    if (o.kind == JenkinsOutcome::Kind::throttled) {
        return "jenkins " + std::string(jenkins) + " answered 429 (rate limited): not checked";
    }
    return "jenkins " + std::string(jenkins) + " cannot be reached: " + o.detail;
}

std::string refused(const CheckPlan& plan, const JenkinsOutcome& o) {
    return "jenkins " + plan.jenkins + " refuses hookrelay's credentials (" + o.detail + "): fix " +
           plan.auth_key;
}

}  // namespace

result<JobFacts> parse_job(std::string_view body) {
    json::parse_options options;
    options.max_depth = k_max_depth;
    boost::system::error_code ec;
    const auto value = json::parse(body, ec, {}, options);
    if (ec || !value.is_object()) return make_error_code(errc::malformed_json);
    const auto& o = value.get_object();
    JobFacts facts;
    if (const auto* k = o.if_contains("_class"); k && k->is_string()) {
        facts.klass = std::string(k->get_string());
    }
    if (const auto* b = o.if_contains("buildable"); b && b->is_bool())
        facts.buildable = b->get_bool();
    const auto* properties = o.if_contains("property");
    if (properties == nullptr || !properties->is_array()) return facts;
    for (const auto& p : properties->get_array()) {
        if (!p.is_object()) continue;
        const auto* definitions = p.get_object().if_contains("parameterDefinitions");
        if (definitions == nullptr || !definitions->is_array()) continue;
        for (const auto& d : definitions->get_array()) {
            if (!d.is_object()) continue;
            const auto* name = d.get_object().if_contains("name");
            if (name != nullptr && name->is_string()) {
                facts.parameters.emplace_back(name->get_string());
            }
        }
    }
    return facts;
}

std::string closest_name(std::string_view sent, const std::vector<std::string>& names) {
    const auto folded = lower(sent);
    for (const auto& n : names) {
        // Jenkins matches parameter names case-sensitively: a case-only miss is the likeliest.
        if (lower(n) == folded) return n;
    }
    std::vector<std::string_view> candidates(names.begin(), names.end());
    return closest_match(sent, candidates);
}

result<FolderItems> parse_items(std::string_view body) {
    json::parse_options options;
    options.max_depth = k_max_depth;
    boost::system::error_code ec;
    const auto value = json::parse(body, ec, {}, options);
    if (ec || !value.is_object()) return make_error_code(errc::malformed_json);
    const auto& o = value.get_object();
    FolderItems out;
    if (const auto* k = o.if_contains("_class"); k && k->is_string()) {
        out.klass = std::string(k->get_string());
    }
    const auto* jobs = o.if_contains("jobs");
    if (jobs == nullptr || !jobs->is_array()) return out;
    out.items.emplace();
    for (const auto& j : jobs->get_array()) {
        if (!j.is_object()) continue;
        const auto* name = j.get_object().if_contains("name");
        if (name != nullptr && name->is_string()) out.items->emplace_back(name->get_string());
    }
    return out;
}

std::string missing_item(const std::vector<std::string>& folder, std::string_view missing,
                         const FolderItems& answer) {
    if (!answer.items) {
        return "'" + display(folder) + "' is not a folder" +
               (answer.klass.empty() ? std::string() : " (it is a " + answer.klass + ")");
    }
    const auto where = folder.empty() ? std::string("there is no top-level item '")
                                      : "folder '" + display(folder) + "' has no item '";
    const auto head = where + std::string(missing) + "'";
    const auto& items = *answer.items;
    if (const auto near = closest_name(missing, items); !near.empty()) {
        return head + " (did you mean '" + near + "'?)";
    }
    if (items.empty()) return head + " (it has no items)";
    const std::vector<std::string> first(
        items.begin(),
        items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), k_items_listed)));
    return head + " (its items: " + list(first) +
           (items.size() > k_items_listed
                ? " and " + std::to_string(items.size() - k_items_listed) + " more"
                : std::string()) +
           ")";
}

std::vector<Finding> job_findings(const JobCheck& check, const JobFacts& facts,
                                  std::string_view jenkins) {
    std::vector<Finding> out;
    const auto job = "job '" + display(check.job) + "' on jenkins " + std::string(jenkins);
    if (!facts.buildable) {
        out.push_back(
            {check.job_where,
             job + " is not a job that can be built" +
                 (facts.klass.empty() ? std::string() : " (it is a " + facts.klass + ")")});
        return out;
    }
    if (!*facts.buildable) {
        out.push_back(
            {check.job_where, job + " is not buildable (disabled?): Jenkins answers 409"});
    }
    if (facts.parameters.empty()) {
        if (!check.parameters.empty()) {
            std::vector<std::string> sent;
            for (const auto& [name, where] : check.parameters) sent.push_back(name);
            out.push_back({check.job_where,
                           job + " declares no parameters, but the trigger sends " + list(sent) +
                               ": Jenkins answers buildWithParameters 400 (declare them in the "
                               "job, or drop `parameters:`)"});
        }
        return out;
    }
    if (check.parameters.empty()) {
        out.push_back({check.job_where,
                       job + " is parameterized (" + list(facts.parameters) +
                           "), but the trigger sends no parameters: Jenkins answers POST build "
                           "400 (send at least one; the others take their defaults)"});
        return out;
    }
    for (const auto& [name, where] : check.parameters) {
        if (std::find(facts.parameters.begin(), facts.parameters.end(), name) !=
            facts.parameters.end()) {
            continue;
        }
        const auto near = closest_name(name, facts.parameters);
        out.push_back(
            {where, "parameter '" + name + "' is not declared by " + job +
                        (near.empty() ? std::string() : " (did you mean '" + near + "'?)") +
                        ": Jenkins drops undeclared parameters silently (declared: " +
                        list(facts.parameters) + ")"});
    }
    return out;
}

namespace {

using Answers = std::map<std::string, JenkinsOutcome>;  // by path: each distinct path read once

boost::asio::awaitable<const JenkinsOutcome*> read_once(JenkinsClient& client, Answers& answers,
                                                        std::string path) {
    auto it = answers.find(path);
    if (it == answers.end()) {
        auto answer = co_await client.read(path);
        it = answers.emplace(std::move(path), std::move(answer)).first;
    }
    co_return &it->second;
}

// Why `job` answers 404: walks up to the deepest ancestor that answers its items (the root last)
// and names the first missing segment there. "" when no ancestor can be read.
boost::asio::awaitable<std::string> explain_missing(JenkinsClient& client, Answers& answers,
                                                    std::vector<std::string> job) {
    for (auto depth = job.size(); depth-- > 0;) {
        const std::vector<std::string> folder(job.begin(),
                                              job.begin() + static_cast<std::ptrdiff_t>(depth));
        const auto* answer =
            co_await read_once(client, answers, job_path(folder) + std::string(k_items_tree));
        if (answer->http_status == 404) continue;  // missing too: look one level up
        if (answer->kind != JenkinsOutcome::Kind::queued) co_return std::string();
        const auto items = parse_items(answer->body);
        if (!items) co_return std::string();
        co_return missing_item(folder, job[depth], *items);
    }
    co_return std::string();
}

}  // namespace

boost::asio::awaitable<CheckReport> check_jenkins(JenkinsClient& client, CheckPlan plan) {
    CheckReport report;
    report.jenkins = plan.jenkins;

    const auto who = co_await client.read(std::string(k_who_am_i));
    if (stops(who)) {
        report.reachable = who.kind != JenkinsOutcome::Kind::unavailable;
        report.complete = who.kind == JenkinsOutcome::Kind::auth_failed;
        report.findings.push_back({plan.where, who.kind == JenkinsOutcome::Kind::auth_failed
                                                   ? refused(plan, who)
                                                   : unreachable(plan.jenkins, who)});
        co_return report;
    }
    report.reachable = true;
    if (who.http_status == 403) {
        // whoAmI needs Overall/Read: without it nothing of this Jenkins is usable.
        report.findings.push_back({plan.where, refused(plan, who)});
        co_return report;
    }
    if (who.kind == JenkinsOutcome::Kind::queued) {
        boost::system::error_code ec;
        const auto v = json::parse(who.body, ec);
        if (!ec && v.is_object()) {
            const auto& o = v.get_object();
            const auto* anonymous = o.if_contains("anonymous");
            const auto* name = o.if_contains("name");
            if (anonymous && anonymous->is_bool() && anonymous->get_bool()) {
                report.identity = "anonymous";
            } else if (name && name->is_string()) {
                report.identity = "authenticated as " + std::string(name->get_string());
            }
        }
    }

    const auto crumb = co_await client.read(std::string(k_crumb_issuer));
    if (crumb.kind == JenkinsOutcome::Kind::queued) {
        report.csrf = "on";
    } else if (crumb.http_status == 404) {
        report.csrf = "off";
    } else if (stops(crumb)) {
        report.complete = crumb.kind == JenkinsOutcome::Kind::auth_failed;
        report.findings.push_back({plan.where, crumb.kind == JenkinsOutcome::Kind::auth_failed
                                                   ? refused(plan, crumb)
                                                   : unreachable(plan.jenkins, crumb)});
        co_return report;
    }

    Answers answers;
    for (const auto& check : plan.jobs) {
        if (check.job.empty()) {
            ++report.jobs_templated;
            continue;
        }
        const auto path =
            job_path(check.job) + std::string(check.complete          ? k_job_tree
                                              : check.computed_folder ? k_project_tree
                                                                      : k_folder_tree);
        auto it = answers.find(path);
        if (it == answers.end()) {
            it = answers.emplace(path, co_await client.read(path)).first;
            ++report.jobs_checked;
        }
        const auto& answer = it->second;
        if (stops(answer)) {
            report.complete = answer.kind == JenkinsOutcome::Kind::auth_failed;
            report.findings.push_back({plan.where, answer.kind == JenkinsOutcome::Kind::auth_failed
                                                       ? refused(plan, answer)
                                                       : unreachable(plan.jenkins, answer)});
            co_return report;
        }
        const auto what = check.complete
                              ? "job '" + display(check.job) + "'"
                              : "folder '" + display(check.job) + "' (the static part of job '" +
                                    check.job_text + "')";
        if (answer.kind != JenkinsOutcome::Kind::queued) {
            auto reason = answer.http_status == 404
                              ? " does not exist on jenkins " + plan.jenkins
                              : " cannot be read on jenkins " + plan.jenkins + ": " + answer.detail;
            if (answer.http_status == 404) {
                // `answer` stays valid: std::map never moves its elements.
                const auto why = co_await explain_missing(client, answers, check.job);
                if (!why.empty()) reason += ": " + why;
            }
            report.findings.push_back(
                {check.job_where, "rule " + check.rule + ": " + what + reason});
            continue;
        }
        if (check.computed_folder) {
            // Only a job exports nextBuildNumber: hookrelay would refuse to scan it. Any other
            // item (a multibranch project or organization folder of whatever plugin) is left to
            // the scan's own answer.
            if (is_job_answer(answer.body)) {
                const auto items = parse_items(answer.body);
                const auto klass = items && !items->klass.empty() ? items->klass : "job";
                report.findings.push_back(
                    {check.job_where,
                     "rule " + check.rule + ": '" + display(check.job) + "' on jenkins " +
                         plan.jenkins + " is a job (" + klass +
                         "), not a multibranch project or organization folder: its triggers "
                         "die without a scan (a scan request would queue a build of it)"});
            }
            continue;
        }
        if (!check.complete) continue;
        auto facts = parse_job(answer.body);
        if (!facts) {
            report.findings.push_back(
                {check.job_where, "rule " + check.rule + ": " + what + " on jenkins " +
                                      plan.jenkins + ": its api/json answer is not a JSON object"});
            continue;
        }
        for (auto& f : job_findings(check, *facts, plan.jenkins)) {
            f.message = "rule " + check.rule + ": " + f.message;
            report.findings.push_back(std::move(f));
        }
    }
    co_return report;
}

}  // namespace hookrelay::jenkins
