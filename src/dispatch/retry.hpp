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
/// - retrying waits a random time in [0, min(max_delay, initial * 2^(attempts))] (full jitter);
///   if that would end past created_at + max_age, the trigger goes dead ("retry budget
///   exhausted").
TriggerUpdate decide(const StoredTrigger& trigger, const JenkinsOutcome& outcome,
                     const RetryPolicy& policy, std::chrono::system_clock::time_point now,
                     std::mt19937_64& rng);

/// The backoff ceiling before attempt number `attempt` (1-based): min(max_delay,
/// initial * 2^(attempt-1)).
std::chrono::milliseconds backoff_ceiling(const RetryPolicy& policy, int attempt);

}  // namespace hookrelay::dispatch
