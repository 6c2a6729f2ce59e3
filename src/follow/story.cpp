#include "follow/story.hpp"

#include "jenkins/follow.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace hookrelay::follow {
namespace {

using std::chrono::milliseconds;
using Kind = JenkinsOutcome::Kind;

// Answers that cannot be read (not the JSON Jenkins writes) before following gives up.
constexpr int k_max_unreadable = 5;
// The backoff exponent stops growing here (the delay is capped by follow_poll_max long before).
constexpr int k_max_tries = 30;

std::string build_name(const BuildRecord& build) {
    return build.number > 0 ? fmt::format("Build #{}", build.number) : std::string("The build");
}

std::string item_name(const BuildRecord& build) {
    return build.queue_id > 0 ? fmt::format("queue item {}", build.queue_id)
                              : std::string("the queue item");
}

}  // namespace

std::string human_duration(milliseconds d) {
    const auto s = std::max<std::int64_t>(0, d.count() / 1000);
    if (s < 60) return fmt::format("{}s", s);
    if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
    return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

StatusWish queued_status(std::string_view jenkins, const BuildRecord& build) {
    StatusWish w;
    w.state = "pending";
    w.description = fmt::format("Queued in Jenkins {}{}", jenkins,
                                build.merged ? " (merged into a build already queued)" : "");
    return w;
}

StatusWish unavailable_status(std::string_view jenkins) {
    return {"pending", fmt::format("Jenkins {} unavailable, hookrelay will retry", jenkins), ""};
}

StatusWish dead_status(std::string_view reason) {
    return {"error", fmt::format("Not delivered: {}", reason), ""};
}

StatusWish started_status(const BuildRecord& build) {
    return {"running", build_name(build) + " running", build.url};
}

StatusWish finished_status(const BuildRecord& build) {
    StatusWish w;
    w.target_url = build.url;
    if (!build.error.empty() && build.result.empty()) {
        w.state = "error";
        w.description = "Lost track of the build: " + build.error;
        return w;
    }
    if (build.result == "CANCELLED") {
        w.state = "canceled";
        w.description = "Cancelled in Jenkins' queue before it started";
        return w;
    }
    if (build.result == "SUCCESS") {
        w.state = "success";
    } else if (build.result == "UNSTABLE" || build.result == "FAILURE") {
        w.state = "failure";
    } else {
        w.state = "canceled";  // ABORTED, NOT_BUILT
    }
    w.description = build_name(build) + " " + build.result;
    if (build.started_at && build.finished_at) {
        w.description += " in " + human_duration(std::chrono::duration_cast<milliseconds>(
                                      *build.finished_at - *build.started_at));
    }
    return w;
}

void annotate_attempt(TriggerUpdate& update, const StoredTrigger& trigger,
                      const JenkinsOutcome& outcome, const JenkinsConfig& jenkins,
                      std::chrono::system_clock::time_point now) {
    std::optional<StatusWish> wish;
    if (update.state == TriggerState::delivered) {
        BuildRecord build;
        build.queue_url = outcome.queue_url;
        build.queue_id = jenkins::queue_item_id(outcome.queue_url).value_or(0);
        build.merged = outcome.kind == Kind::merged;
        build.queued_at = now;
        if (trigger.request.follow != FollowMode::none) {
            update.next_attempt_at = now + jenkins.follow_poll_initial;
        }
        wish = queued_status(jenkins.name, build);
        update.build = std::move(build);
    } else if (update.state == TriggerState::dead && outcome.maybe_queued) {
        // Sent whole and never answered, twice: a build may be running, so not "not delivered".
        wish = StatusWish{"error",
                          fmt::format("Jenkins {} did not answer; it may have queued the build: {}",
                                      jenkins.name, outcome.detail),
                          ""};
    } else if (update.state == TriggerState::dead) {
        wish = dead_status(update.last_outcome);
    } else if (outcome.kind == Kind::unavailable) {
        wish = unavailable_status(jenkins.name);
    }
    if (wish && trigger.request.status && !(trigger.status.wanted == *wish)) {
        update.status = std::move(wish);
    }
}

std::chrono::milliseconds poll_delay(const JenkinsConfig& jenkins, int tries) {
    auto delay = jenkins.follow_poll_initial;
    for (int i = 0; i < tries && delay < jenkins.follow_poll_max; ++i) delay *= 2;
    return std::min(delay, jenkins.follow_poll_max);
}

Read next_read(const StoredTrigger& trigger, bool item_gone) {
    const auto& build = trigger.build;
    if (build.number > 0) {
        return {Read::What::build, jenkins::build_path(trigger.request.job, build.number)};
    }
    if (item_gone || build.queue_id == 0) {
        return {Read::What::builds, jenkins::builds_path(trigger.request.job)};
    }
    return {Read::What::queue_item, jenkins::queue_item_path(build.queue_id)};
}

Step advance(const StoredTrigger& trigger, int tries, const Read& read,
             const JenkinsOutcome& answer, const JenkinsConfig& jenkins,
             std::chrono::system_clock::time_point now) {
    Step s;
    s.build = trigger.build;
    s.build.unreadable = 0;  // unless this answer cannot be read either
    s.tries = tries;
    const auto queued_at = s.build.queued_at.value_or(trigger.created_at);
    const bool too_old = now - queued_at > jenkins.follow_max_age;
    const auto again = [&](milliseconds at_least = milliseconds(0)) {
        s.next_at = now + std::max(poll_delay(jenkins, tries), at_least);
        s.tries = std::min(tries + 1, k_max_tries);
    };
    const auto lose = [&](std::string error) {
        s.build.error = std::move(error);
        s.next_at.reset();
        s.lost = true;
        s.status = finished_status(s.build);
        s.note = "lost: " + s.build.error;
    };
    const auto started = [&](std::int64_t number, std::string url) {
        s.build.number = number;
        s.build.url = std::move(url);
        s.build.why.clear();
        if (!s.build.started_at) s.build.started_at = now;
        s.started = true;
        s.tries = 0;
        s.status = started_status(s.build);
        s.note = fmt::format("build #{} started", number);
        if (trigger.request.follow == FollowMode::started) {
            s.next_at.reset();
        } else {
            s.next_at = now + jenkins.follow_poll_initial;
        }
    };
    // Counted apart from `tries`, which also counts the polls of a build still running: one
    // unreadable answer after a long wait in the queue is not a reason to give up.
    const auto unreadable = [&](const std::string& why) {
        s.build.unreadable = trigger.build.unreadable + 1;
        if (s.build.unreadable >= k_max_unreadable || too_old) {
            lose(fmt::format("Jenkins' answers cannot be read: {}", why));
        } else {
            again();
            s.note = "unreadable answer: " + why;
        }
    };

    switch (answer.kind) {
        case Kind::server_error:
            // An error page is an answer about this read: a Jenkins that is up and keeps failing
            // it (a plugin's exception on the build's page) would be polled for ever, the
            // status pending for good. Past follow_max_age, several in a row end following (one
            // right after an outage longer than follow_max_age is not the end).
            if (too_old) {
                s.build.unreadable = trigger.build.unreadable + 1;
                if (s.build.unreadable >= k_max_unreadable) {
                    lose(fmt::format("Jenkins still answers an error after {}: {}",
                                     human_duration(jenkins.follow_max_age), answer.detail));
                } else {
                    again(answer.retry_after.value_or(milliseconds(0)));
                    s.note = "Jenkins answered an error: " + answer.detail;
                }
                return s;
            }
            [[fallthrough]];
        case Kind::unavailable:
        case Kind::throttled:
        case Kind::auth_failed:
            // Jenkins did not say anything about the build: ask again later, however long it
            // takes (a Jenkins that is down pauses following, it does not end it).
            again(answer.retry_after.value_or(milliseconds(0)));
            s.build.unreadable = trigger.build.unreadable;
            s.note = "Jenkins did not answer: " + answer.detail;
            return s;
        case Kind::queued:
            break;
        default:
            if (answer.http_status == 404 && read.what == Read::What::queue_item) {
                // Jenkins forgets a left item after 5 minutes: find its build by queue id. Not an
                // answer about the build: unreadable answers of the builds list still count up.
                s.read_builds = true;
                s.build.unreadable = trigger.build.unreadable;
                s.note = item_name(s.build) + " is no longer known to Jenkins";
                return s;
            }
            if (answer.http_status == 404 && read.what == Read::What::build) {
                lose(fmt::format("build #{} of {} no longer exists in Jenkins", s.build.number,
                                 job_display_path(trigger.request.job)));
            } else if (answer.http_status == 404) {
                lose(fmt::format("job {} not found while looking for the build of {}",
                                 job_display_path(trigger.request.job), item_name(s.build)));
            } else {
                lose(fmt::format(
                    "Jenkins refused to show {}: {}",
                    read.what == Read::What::build ? build_name(s.build) : item_name(s.build),
                    answer.detail));
            }
            return s;
    }

    std::string why;
    switch (read.what) {
        case Read::What::queue_item: {
            auto item = jenkins::parse_queue_item(answer.body, &why);
            if (!item) {
                unreadable(why);
            } else if (item->cancelled) {
                s.build.result = "CANCELLED";
                s.build.why.clear();
                s.build.finished_at = now;
                s.finished = true;
                s.status = finished_status(s.build);
                s.note = item_name(s.build) + " was cancelled";
            } else if (item->number) {
                started(*item->number, item->url);
            } else {
                s.build.why = item->why;
                if (too_old) {
                    lose(fmt::format("still in Jenkins' queue after {}{}",
                                     human_duration(jenkins.follow_max_age),
                                     item->why.empty() ? "" : ": " + item->why));
                } else {
                    again();
                    s.note = "waiting in the queue: " + item->why;
                }
            }
            break;
        }
        case Read::What::builds: {
            auto found = jenkins::find_build_by_queue_id(answer.body, s.build.queue_id, &why);
            if (!found) {
                unreadable(why);
            } else if (*found) {
                started((*found)->number, (*found)->url);
            } else if (s.build.queue_id == 0) {
                lose("Jenkins gave no queue item to follow");
            } else {
                lose(fmt::format("{} left Jenkins' queue and no recent build of {} came from it",
                                 item_name(s.build), job_display_path(trigger.request.job)));
            }
            break;
        }
        case Read::What::build: {
            auto build = jenkins::parse_build(answer.body, &why);
            if (!build) {
                unreadable(why);
                break;
            }
            if (!build->url.empty()) s.build.url = build->url;
            if (build->started_at) s.build.started_at = build->started_at;
            if (build->building || build->result.empty()) {
                if (too_old) {
                    lose(fmt::format("{} still running after {}", build_name(s.build),
                                     human_duration(jenkins.follow_max_age)));
                } else {
                    again();
                    s.note = build_name(s.build) + " running";
                }
                break;
            }
            s.build.result = build->result;
            s.build.finished_at = s.build.started_at.value_or(now) + build->duration;
            s.finished = true;
            s.next_at.reset();
            s.status = finished_status(s.build);
            s.note = fmt::format("{} finished: {}", build_name(s.build), build->result);
            break;
        }
    }
    return s;
}

}  // namespace hookrelay::follow
