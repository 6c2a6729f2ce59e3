#include "dispatch/retry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>

namespace hookrelay::dispatch {

namespace {

// The beginning of the last_outcome of an attempt Jenkins took and did not answer
// (maybe_queued), so a second in a row can be recognized.
constexpr std::string_view k_no_answer = "no answer";

// last_outcome starts with the outcome kind, so a second 500 in a row can be recognized.
std::string outcome_text(const JenkinsOutcome& outcome) {
    return fmt::format("{}: {}", to_string(outcome.kind), outcome.detail);
}

std::string format_duration(std::chrono::milliseconds d) {
    using namespace std::chrono;
    if (d >= hours(1))
        return fmt::format("{:.1f} h", duration<double, std::ratio<3600>>(d).count());
    if (d >= minutes(1))
        return fmt::format("{:.1f} min", duration<double, std::ratio<60>>(d).count());
    return fmt::format("{:.1f} s", duration<double>(d).count());
}

}  // namespace

std::chrono::milliseconds backoff_ceiling(const RetryPolicy& policy, int attempt) {
    auto ceiling = policy.initial;
    for (int i = 1; i < attempt && ceiling < policy.max_delay; ++i) ceiling *= 2;
    return std::min(ceiling, policy.max_delay);
}

std::chrono::milliseconds throttle_pause(const JenkinsOutcome& outcome,
                                         const JenkinsConfig& jenkins, int streak) {
    const auto floor = jenkins.probe_initial;
    if (outcome.retry_after) {
        const auto cap = std::max(floor, jenkins.retry.max_delay);
        return std::clamp(*outcome.retry_after, floor, cap);
    }
    auto pause = floor;
    for (int i = 1; i < streak && pause < jenkins.probe_max; ++i) pause *= 2;
    return std::max(floor, std::min(pause, jenkins.probe_max));
}

std::chrono::milliseconds probe_delay(const JenkinsOutcome& outcome, const JenkinsConfig& jenkins,
                                      std::chrono::milliseconds backoff) {
    if (!outcome.retry_after) return backoff;
    return std::max(backoff, std::min(*outcome.retry_after, jenkins.retry.max_delay));
}

TriggerUpdate decide(const StoredTrigger& trigger, const JenkinsOutcome& outcome,
                     const RetryPolicy& policy, std::chrono::system_clock::time_point now,
                     std::mt19937_64& rng) {
    using Kind = JenkinsOutcome::Kind;
    TriggerUpdate u;
    u.id = trigger.id;
    u.attempt.at = now;
    u.attempt.http_status = outcome.http_status;
    u.attempt.duration = outcome.duration;
    u.attempt.queue_url = outcome.queue_url;
    u.attempt.outcome =
        outcome.detail.empty() ? std::string(to_string(outcome.kind)) : outcome.detail;
    u.attempt.counted = true;
    u.next_attempt_at = now;
    u.last_outcome = outcome_text(outcome);

    switch (outcome.kind) {
        case Kind::queued:
        case Kind::merged:
            u.state = TriggerState::delivered;
            u.last_outcome = outcome.kind == Kind::queued ? "queued" : "merged into a queued item";
            return u;
        case Kind::refused:
            u.state = TriggerState::dead;
            u.last_outcome = "Jenkins refused to queue the build (HTTP 302)";
            return u;
        case Kind::permanent:
            u.state = TriggerState::dead;
            u.last_outcome = fmt::format("permanent failure: {}", outcome.detail);
            if (outcome.http_status == 404 && !trigger.request.job.empty()) {
                // Which job (also in the commit status, which has 140 characters), and in the
                // attempt's history the ways out: a replay sends the same rendered path again.
                const auto job = job_display_path(trigger.request.job);
                u.last_outcome +=
                    fmt::format(": Jenkins {} has no job {}", trigger.request.jenkins, job);
                u.attempt.outcome += fmt::format(
                    ": no job {} (a wrong job path in the rule: fix it, then redeliver, --dry-run "
                    "first; a job not created yet: create it and replay; Jenkins answers 404 too "
                    "for a job its user may not see, and for every job under a wrong url path)",
                    job);
            }
            return u;
        case Kind::unavailable:
            if (outcome.maybe_queued) {
                // Jenkins took the request and did not answer: it may have queued the build, so
                // unlike an outage this attempt counts, and it is sent once more at most. A
                // Jenkins slower than io_timeout to answer would otherwise get a build for every
                // probe that finds it up.
                if (trigger.last_outcome.starts_with(k_no_answer)) {
                    u.state = TriggerState::dead;
                    u.last_outcome = fmt::format(
                        "{} twice in a row: {}; not sent again (look for its build in Jenkins "
                        "before replaying it; a Jenkins this slow needs a longer io_timeout)",
                        k_no_answer, outcome.detail);
                    return u;
                }
                u.last_outcome = fmt::format("{}: {}", k_no_answer, outcome.detail);
                break;
            }
            u.state = trigger.state;
            u.attempt.counted = false;
            return u;
        case Kind::auth_failed:
            // The credentials' fault, not the trigger's: the whole Jenkins is held until a reload
            // brings working ones. The trigger keeps its place in the queue, like a 429.
            u.state = trigger.state;
            u.attempt.counted = false;
            u.next_attempt_at = std::min(trigger.next_attempt_at, now);
            return u;
        case Kind::throttled:
            // The lane's pause honours Retry-After; the trigger keeps its due time, so it goes
            // out before triggers queued after it (an older commit must not build last).
            u.state = trigger.state;
            u.attempt.counted = false;
            u.next_attempt_at = std::min(trigger.next_attempt_at, now);
            return u;
        case Kind::server_error:
            if (trigger.last_outcome.starts_with(to_string(Kind::server_error))) {
                u.state = TriggerState::dead;
                u.last_outcome =
                    fmt::format("permanent failure: {} twice in a row", outcome.detail);
                return u;
            }
            break;
    }

    const int attempt = trigger.attempts + 1;
    const auto ceiling = backoff_ceiling(policy, attempt);
    std::uniform_int_distribution<std::int64_t> jitter(0, ceiling.count());
    const auto next = now + std::chrono::milliseconds(jitter(rng));
    const auto age =
        std::chrono::duration_cast<std::chrono::milliseconds>(next - trigger.created_at);
    if (age > policy.max_age) {
        u.state = TriggerState::dead;
        u.last_outcome = fmt::format("retry budget exhausted after {} attempt(s) over {}: {}",
                                     attempt, format_duration(age), outcome.detail);
        return u;
    }
    u.state = TriggerState::retrying;
    u.next_attempt_at = next;
    return u;
}

}  // namespace hookrelay::dispatch
