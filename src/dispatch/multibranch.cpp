#include "dispatch/multibranch.hpp"

#include "follow/story.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace hookrelay::dispatch {

using std::chrono::milliseconds;

namespace {

std::string project_text(const TriggerRequest& request) {
    return job_display_path(project_of(request));
}

std::string at_text(TimePoint at) {
    return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", std::chrono::floor<std::chrono::seconds>(at));
}

TriggerUpdate base(const StoredTrigger& trigger, TimePoint now) {
    TriggerUpdate u;
    u.id = trigger.id;
    u.state = trigger.state;
    u.attempt.at = now;
    u.attempt.counted = false;
    u.next_attempt_at = now;
    return u;
}

}  // namespace

bool branch_job_missing(const TriggerRequest& request, const JenkinsOutcome& outcome) {
    return request.multibranch > 0 && outcome.kind == JenkinsOutcome::Kind::permanent &&
           outcome.http_status == 404;
}

TriggerUpdate branch_pending(const StoredTrigger& trigger, const JenkinsOutcome& outcome,
                             const JenkinsConfig& jenkins, TimePoint now, const std::string& scan,
                             std::optional<TimePoint> covering_scan) {
    auto u = base(trigger, now);
    u.attempt.http_status = outcome.http_status;
    u.attempt.duration = outcome.duration;
    const auto& branch = trigger.request.job.back();
    if (covering_scan && now - *covering_scan >= jenkins.branch_wait) {
        u.state = TriggerState::dead;
        u.attempt.counted = true;
        u.attempt.outcome = outcome.detail;
        u.last_outcome = fmt::format(
            "the job of branch '{}' did not appear in multibranch project '{}' within {} of the "
            "scan requested at {} (branch_wait of jenkins {}); Jenkins still answers {}",
            branch, project_text(trigger.request),
            follow::human_duration(std::chrono::duration_cast<milliseconds>(jenkins.branch_wait)),
            at_text(*covering_scan), jenkins.name, outcome.detail);
        return u;
    }
    if (trigger.state == TriggerState::pending || trigger.state == TriggerState::retrying) {
        u.state = trigger.state;
    }
    u.next_attempt_at = now + jenkins.branch_poll;
    u.attempt.outcome = fmt::format("{}: branch job not created yet; {}", outcome.detail, scan);
    u.last_outcome = fmt::format(
        "waiting for Jenkins to create the job of branch '{}' in '{}' ({}); tried again every "
        "{}{}",
        branch, project_text(trigger.request), scan, follow::human_duration(jenkins.branch_poll),
        covering_scan ? ", until " + at_text(*covering_scan + jenkins.branch_wait) : "");
    return u;
}

TriggerUpdate branch_unscannable(const StoredTrigger& trigger, const JenkinsOutcome& outcome,
                                 const JenkinsOutcome& scan, TimePoint now) {
    auto u = base(trigger, now);
    u.state = TriggerState::dead;
    u.attempt.counted = true;
    u.attempt.http_status = outcome.http_status;
    u.attempt.duration = outcome.duration + scan.duration;
    u.attempt.outcome = fmt::format("{}; scan: {}", outcome.detail, scan.detail);
    u.last_outcome = fmt::format(
        "the job of branch '{}' does not exist and multibranch project '{}' cannot be scanned: {}",
        trigger.request.job.back(), project_text(trigger.request), scan.detail);
    return u;
}

TriggerUpdate scan_covered(const StoredTrigger& trigger, TimePoint at, TimePoint now) {
    auto u = base(trigger, now);
    u.state = TriggerState::delivered;
    u.attempt.outcome = fmt::format("covered by the scan of {} requested at {}",
                                    project_text(trigger.request), at_text(at));
    u.last_outcome = u.attempt.outcome;
    return u;
}

TriggerUpdate scan_deferred(const StoredTrigger& trigger, TimePoint at, TimePoint now) {
    auto u = base(trigger, now);
    if (u.state != TriggerState::retrying) u.state = TriggerState::pending;
    u.next_attempt_at = at;
    u.attempt.outcome = fmt::format(
        "a scan of {} was requested less than scan_interval ago; "
        "next one at {}",
        project_text(trigger.request), at_text(at));
    u.last_outcome = u.attempt.outcome;
    return u;
}

StatusWish branch_status(const std::string& jenkins, const TriggerRequest& request) {
    StatusWish wish;
    wish.state = "pending";
    wish.description = fmt::format("Waiting for Jenkins {} to create the job of branch {}", jenkins,
                                   request.job.empty() ? "" : request.job.back());
    if (wish.description.size() > 140) wish.description.resize(140);
    return wish;
}

}  // namespace hookrelay::dispatch
