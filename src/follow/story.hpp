// What becomes of a trigger after delivery, as pure decisions (time passed in, no I/O), so every
// branch is unit-tested with plain values:
//  * the commit statuses that tell a pull request the story: "Queued in Jenkins" → "Build #42
//    running" (target_url the build) → success / failure; "Jenkins unavailable, hookrelay will
//    retry" while its Jenkins is down; "Not delivered: <reason>" when the trigger went dead
//    ("Jenkins <name> did not answer; it may have queued the build: <why>" when it went dead of
//    build requests sent whole and never answered);
//  * following a delivered trigger to its build (jenkins-builds-and-jobs.md §2.1): which Jenkins
//    API to read next, and what an answer means for the build record, the next poll and the
//    status.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/jenkins.hpp>
#include <hookrelay/store.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace hookrelay::follow {

// --- Statuses ------------------------------------------------------------------------------

/// pending "Queued in Jenkins <name>" (merged: "... (merged with delivery X)").
StatusWish queued_status(std::string_view jenkins, const BuildRecord& build);
/// pending "Jenkins <name> unavailable, hookrelay will retry".
StatusWish unavailable_status(std::string_view jenkins);
/// error "Not delivered: <reason>".
StatusWish dead_status(std::string_view reason);
/// running "Build #N running" with the build's URL.
StatusWish started_status(const BuildRecord& build);
/// The final one: SUCCESS → success; UNSTABLE, FAILURE → failure; ABORTED, NOT_BUILT and a
/// cancelled queue item → canceled; "Build #N FAILURE in 3m12s". A build that could not be
/// followed (`error`) → error "Lost track of the build: <error>".
StatusWish finished_status(const BuildRecord& build);

/// "3m12s", "45s", "1h02m", "0s".
std::string human_duration(std::chrono::milliseconds d);

/// What the dispatcher adds to its update after an attempt of `trigger` (its new state already
/// decided in `update`): on delivery the build record (queue item, merge, queued_at = now) and,
/// when the trigger is followed, the first poll due after `jenkins.follow_poll_initial` (as
/// update.next_attempt_at); the status the attempt calls for (queued, unavailable, dead), unless
/// the trigger already wants exactly that one.
void annotate_attempt(TriggerUpdate& update, const StoredTrigger& trigger,
                      const JenkinsOutcome& outcome, const JenkinsConfig& jenkins,
                      std::chrono::system_clock::time_point now);

// --- Following -----------------------------------------------------------------------------

/// The Jenkins API a followed trigger needs next.
struct Read {
    enum class What { queue_item, builds, build };
    What what = What::queue_item;
    std::string path;  ///< for JenkinsClient::read()
};

/// What to read for `trigger` now: its queue item until it has a build number (or, with
/// `item_gone`, the job's recent builds to find the one made from it), then the build.
Read next_read(const StoredTrigger& trigger, bool item_gone = false);

/// The outcome of one step of following.
struct Step {
    BuildRecord build;                                             ///< the record as it is now
    std::optional<std::chrono::system_clock::time_point> next_at;  ///< nullopt: done
    int tries = 0;                     ///< polls without progress (the backoff's exponent)
    std::optional<StatusWish> status;  ///< a status the step calls for
    bool read_builds = false;          ///< the item is gone: read the job's builds now (same step)
    bool started = false;              ///< the build started in this step
    bool finished = false;  ///< the build finished (or the item was cancelled) in this step
    bool lost = false;      ///< following gave up in this step (build.error says why)
    std::string note;       ///< for the log: what happened
};

/// Applies Jenkins' `answer` to `read` for the followed `trigger` (whose chore had `tries`
/// failed polls) at `now`. Polls back off from follow_poll_initial doubling up to
/// follow_poll_max; progress (the build started) resets the backoff. A Jenkins that does not
/// answer (unavailable, throttled, auth-failed) only postpones the next poll; one that answers
/// with nothing new past follow_max_age after the trigger was queued ends following (lost).
Step advance(const StoredTrigger& trigger, int tries, const Read& read,
             const JenkinsOutcome& answer, const JenkinsConfig& jenkins,
             std::chrono::system_clock::time_point now);

/// The delay before poll number `tries` + 1: min(follow_poll_max, follow_poll_initial * 2^tries).
std::chrono::milliseconds poll_delay(const JenkinsConfig& jenkins, int tries);

}  // namespace hookrelay::follow
