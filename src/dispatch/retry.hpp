// What to do with a trigger after an attempt: pure, so every branch is unit-tested.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/jenkins.hpp>
#include <hookrelay/store.hpp>

#include <chrono>
#include <random>
#include <string>

namespace hookrelay::dispatch {

/// The store update for one finished attempt of `trigger` (whose `attempts` does not yet count
/// this one), given Jenkins' `outcome` at `now`:
/// - queued / merged → delivered;
/// - refused (302) and permanent (4xx) → dead with the reason;
/// - server_error (500) → retrying once; dead if the previous attempt was a 500 too;
/// - unavailable → the trigger stays as it was, due now, and the attempt is not counted (the
///   dispatcher holds the whole Jenkins instead of burning each trigger's budget);
/// - unavailable with maybe_queued (Jenkins took the request and did not answer: it may have
///   queued the build) → retrying, counted, its last_outcome starting "no answer"; dead if the
///   previous attempt was one too ("no answer twice in a row"), so a Jenkins that queues builds
///   but answers too late is not sent the same build over and over;
/// - throttled (429) → the trigger stays as it was, keeping its due time (so its place in the
///   queue: triggers still go out in the order they fell due), and the attempt is not counted;
///   the dispatcher pauses the whole Jenkins for the Retry-After instead (throttle_pause()). A
///   throttled trigger never goes dead, whatever its age: like an outage, throttling is the
///   Jenkins' state, not the trigger's;
/// - auth_failed (401, or a 403 refusing the user) → as throttled: unchanged, its due time kept,
///   not counted, never dead; the dispatcher holds the Jenkins as auth-failed until a reload;
/// - retrying waits a random time in [0, min(max_delay, initial * 2^(attempts))] (full jitter);
///   if that would end past created_at + max_age, the trigger goes dead ("retry budget
///   exhausted").
TriggerUpdate decide(const StoredTrigger& trigger, const JenkinsOutcome& outcome,
                     const RetryPolicy& policy, std::chrono::system_clock::time_point now,
                     std::mt19937_64& rng);

/// The backoff ceiling before attempt number `attempt` (1-based): min(max_delay,
/// initial * 2^(attempt-1)).
std::chrono::milliseconds backoff_ceiling(const RetryPolicy& policy, int attempt);

/// How long the dispatcher pauses every request to `jenkins` after it answered 429
/// (`outcome`), the `streak`-th 429 in a row (1-based): the answer's Retry-After, bounded by
/// [probe_initial, max(probe_initial, retry.max_delay)]; without a Retry-After, probe_initial
/// doubling with each 429 in a row up to probe_max.
std::chrono::milliseconds throttle_pause(const JenkinsOutcome& outcome,
                                         const JenkinsConfig& jenkins, int streak);

/// The wait before the next probe of a held `jenkins` whose last answer was `outcome`:
/// `backoff` (the probe schedule, probe_initial doubling up to probe_max), or the answer's
/// Retry-After (a 503 from a proxy or a maintenance page) when that is longer, the Retry-After
/// bounded by retry.max_delay.
std::chrono::milliseconds probe_delay(const JenkinsOutcome& outcome, const JenkinsConfig& jenkins,
                                      std::chrono::milliseconds backoff);

}  // namespace hookrelay::dispatch
