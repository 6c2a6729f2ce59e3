#include "dispatch/retry.hpp"

#include <gtest/gtest.h>

namespace hookrelay::dispatch {
namespace {

using namespace std::chrono_literals;
using Kind = JenkinsOutcome::Kind;
using Clock = std::chrono::system_clock;

const Clock::time_point k_t0 = Clock::time_point{} + 1000h;

StoredTrigger trigger(int attempts = 0, std::string last_outcome = "") {
    StoredTrigger t;
    t.id = "t1";
    t.state = attempts == 0 ? TriggerState::pending : TriggerState::retrying;
    t.attempts = attempts;
    t.created_at = k_t0;
    t.last_outcome = std::move(last_outcome);
    return t;
}

JenkinsOutcome outcome(Kind kind, int status, std::string detail = "") {
    JenkinsOutcome o;
    o.kind = kind;
    o.http_status = status;
    o.detail = std::move(detail);
    if (kind == Kind::queued || kind == Kind::merged) o.queue_url = "http://j/queue/item/7/";
    return o;
}

class Decide : public ::testing::Test {
  protected:
    RetryPolicy policy{1s, 300s, 24h};
    std::mt19937_64 rng{42};
};

TEST_F(Decide, QueuedAndMergedAreDeliveredWithTheQueueItem) {
    auto u = decide(trigger(), outcome(Kind::queued, 201), policy, k_t0, rng);
    EXPECT_EQ(u.state, TriggerState::delivered);
    EXPECT_EQ(u.attempt.queue_url, "http://j/queue/item/7/");
    EXPECT_TRUE(u.attempt.counted);
    auto m = decide(trigger(), outcome(Kind::merged, 303), policy, k_t0, rng);
    EXPECT_EQ(m.state, TriggerState::delivered);
    EXPECT_EQ(m.last_outcome, "merged into a queued item");
}

TEST_F(Decide, RefusedAndPermanentFailuresAreDeadWithTheReason) {
    auto r = decide(trigger(), outcome(Kind::refused, 302), policy, k_t0, rng);
    EXPECT_EQ(r.state, TriggerState::dead);
    EXPECT_NE(r.last_outcome.find("302"), std::string::npos);
    auto p = decide(trigger(), outcome(Kind::permanent, 404, "HTTP 404"), policy, k_t0, rng);
    EXPECT_EQ(p.state, TriggerState::dead);
    EXPECT_EQ(p.last_outcome, "permanent failure: HTTP 404");
}

// A 404 names the job as rules and explain write it (a '/' inside a rendered value encoded),
// and the attempt says the ways out.
TEST_F(Decide, A404NamesTheJobJenkinsDoesNotHave) {
    auto t = trigger();
    t.request.jenkins = "ci";
    t.request.job = {"acme", "app", "feature/login"};
    auto p = decide(t, outcome(Kind::permanent, 404, "HTTP 404 Not Found"), policy, k_t0, rng);
    EXPECT_EQ(p.state, TriggerState::dead);
    EXPECT_EQ(
        p.last_outcome,
        "permanent failure: HTTP 404 Not Found: Jenkins ci has no job acme/app/feature%2Flogin");
    EXPECT_NE(p.attempt.outcome.find("fix it, then redeliver, --dry-run first; a job not created "
                                     "yet: create it and replay"),
              std::string::npos)
        << p.attempt.outcome;
}

TEST_F(Decide, ServerErrorIsRetriedOnceThenDead) {
    auto first = decide(trigger(), outcome(Kind::server_error, 500, "HTTP 500"), policy, k_t0, rng);
    EXPECT_EQ(first.state, TriggerState::retrying);
    auto second = decide(trigger(1, first.last_outcome),
                         outcome(Kind::server_error, 500, "HTTP 500"), policy, k_t0 + 1s, rng);
    EXPECT_EQ(second.state, TriggerState::dead);
    EXPECT_NE(second.last_outcome.find("twice"), std::string::npos);
}

TEST_F(Decide, UnavailableKeepsTheBudget) {
    auto t = trigger(3, "server_error: HTTP 500");
    auto u = decide(t, outcome(Kind::unavailable, 503, "HTTP 503"), policy, k_t0 + 1h, rng);
    EXPECT_EQ(u.state, TriggerState::retrying);  // unchanged
    EXPECT_FALSE(u.attempt.counted);
    EXPECT_EQ(u.next_attempt_at, k_t0 + 1h);
}

TEST_F(Decide, ARequestJenkinsTookWithoutAnsweringCountsAndIsSentOnceMoreAtMost) {
    auto no_answer = outcome(Kind::unavailable, 0,
                             "read: timeout after 10000 ms (the request was sent: Jenkins may "
                             "have queued the build)");
    no_answer.maybe_queued = true;
    auto first = decide(trigger(), no_answer, policy, k_t0, rng);
    EXPECT_EQ(first.state, TriggerState::retrying);
    EXPECT_TRUE(first.attempt.counted);
    EXPECT_LE(first.next_attempt_at, k_t0 + 1s);  // the backoff of a first retry
    EXPECT_EQ(first.last_outcome, "no answer: " + no_answer.detail);

    auto second = decide(trigger(1, first.last_outcome), no_answer, policy, k_t0 + 2s, rng);
    EXPECT_EQ(second.state, TriggerState::dead);
    EXPECT_TRUE(second.attempt.counted);
    EXPECT_EQ(second.last_outcome,
              "no answer twice in a row: " + no_answer.detail +
                  "; not sent again (look for its build in Jenkins before replaying it; a "
                  "Jenkins this slow needs a longer io_timeout)");

    // An outage between the two (Jenkins refused the connection) ends the run: not in a row.
    const auto down = outcome(Kind::unavailable, 0, "connect 10.0.0.5:8080: Connection refused");
    auto between = decide(trigger(1, first.last_outcome), down, policy, k_t0 + 2s, rng);
    EXPECT_FALSE(between.attempt.counted);
    auto after = decide(trigger(1, between.last_outcome), no_answer, policy, k_t0 + 3s, rng);
    EXPECT_EQ(after.state, TriggerState::retrying);
}

TEST_F(Decide, RefusedCredentialsKeepTheBudgetAndNeverGoDead) {
    for (auto now : {k_t0 + 1s, k_t0 + 25h, k_t0 + 1000h}) {
        auto t = trigger(2);
        t.next_attempt_at = k_t0;
        auto u =
            decide(t, outcome(Kind::auth_failed, 401, "HTTP 401 Unauthorized"), policy, now, rng);
        EXPECT_EQ(u.state, t.state);
        EXPECT_FALSE(u.attempt.counted);
        EXPECT_EQ(u.next_attempt_at, k_t0);  // keeps its place in the queue
    }
}

JenkinsOutcome throttled(std::optional<std::chrono::milliseconds> retry_after) {
    auto o = outcome(Kind::throttled, 429, "HTTP 429 Too Many Requests");
    o.retry_after = retry_after;
    return o;
}

TEST_F(Decide, ThrottledKeepsTheBudgetAndItsPlaceInTheQueue) {
    auto t = trigger(2, "server_error: HTTP 500");
    t.next_attempt_at = k_t0 + 10min;  // when it fell due
    auto u = decide(t, throttled(30s), policy, k_t0 + 1h, rng);
    EXPECT_EQ(u.state, TriggerState::retrying);  // unchanged
    EXPECT_FALSE(u.attempt.counted);
    EXPECT_EQ(u.next_attempt_at, k_t0 + 10min);
    EXPECT_EQ(u.last_outcome, "throttled: HTTP 429 Too Many Requests");

    auto fresh = trigger();
    fresh.next_attempt_at = k_t0;
    auto pending = decide(fresh, throttled(std::nullopt), policy, k_t0 + 1s, rng);
    EXPECT_EQ(pending.state, TriggerState::pending);
    EXPECT_EQ(pending.next_attempt_at, k_t0);
}

TEST_F(Decide, ThrottledNeverGoesDeadOfAge) {
    // Throttled all day and beyond max_age: still waiting, like a held (down) Jenkins.
    for (auto now : {k_t0 + 1s, k_t0 + 23h, k_t0 + 25h, k_t0 + 1000h}) {
        auto u = decide(trigger(5), throttled(300s), policy, now, rng);
        EXPECT_NE(u.state, TriggerState::dead);
        EXPECT_FALSE(u.attempt.counted);
    }
}

TEST_F(Decide, BackoffGrowsExponentiallyUpToTheCap) {
    EXPECT_EQ(backoff_ceiling(policy, 1), 1s);
    EXPECT_EQ(backoff_ceiling(policy, 2), 2s);
    EXPECT_EQ(backoff_ceiling(policy, 5), 16s);
    EXPECT_EQ(backoff_ceiling(policy, 9), 256s);
    EXPECT_EQ(backoff_ceiling(policy, 10), 300s);
    EXPECT_EQ(backoff_ceiling(policy, 1000), 300s);
}

TEST_F(Decide, FullJitterStaysWithinTheCeiling) {
    // A retryable outcome other than 500 does not exist, so exercise jitter through a first 500.
    for (int i = 0; i < 200; ++i) {
        auto u =
            decide(trigger(4), outcome(Kind::server_error, 500, "HTTP 500"), policy, k_t0, rng);
        ASSERT_EQ(u.state, TriggerState::retrying);
        EXPECT_GE(u.next_attempt_at, k_t0);
        EXPECT_LE(u.next_attempt_at, k_t0 + 16s);
    }
}

TEST_F(Decide, ExhaustedAgeIsDead) {
    auto t = trigger(2);
    auto u = decide(t, outcome(Kind::server_error, 500, "HTTP 500"), policy, k_t0 + 25h, rng);
    EXPECT_EQ(u.state, TriggerState::dead);
    EXPECT_NE(u.last_outcome.find("retry budget exhausted after 3 attempt(s)"), std::string::npos)
        << u.last_outcome;
}

JenkinsConfig jenkins_with(std::chrono::milliseconds probe_initial,
                           std::chrono::milliseconds probe_max,
                           std::chrono::milliseconds max_delay) {
    JenkinsConfig j;
    j.name = "ci";
    j.probe_initial = probe_initial;
    j.probe_max = probe_max;
    j.retry.max_delay = max_delay;
    return j;
}

TEST(ThrottlePause, HonoursRetryAfterWithinProbeInitialAndMaxDelay) {
    const auto j = jenkins_with(1s, 30s, 300s);
    EXPECT_EQ(throttle_pause(throttled(45s), j, 1), 45s);
    EXPECT_EQ(throttle_pause(throttled(45s), j, 7), 45s);  // the streak is for no Retry-After
    EXPECT_EQ(throttle_pause(throttled(1h), j, 1), 300s);
    EXPECT_EQ(throttle_pause(throttled(0s), j, 1), 1s);  // "Retry-After: 0" is no licence to hammer
}

TEST(ThrottlePause, WithoutRetryAfterBacksOffFromProbeInitialToProbeMax) {
    const auto j = jenkins_with(1s, 30s, 300s);
    EXPECT_EQ(throttle_pause(throttled(std::nullopt), j, 1), 1s);
    EXPECT_EQ(throttle_pause(throttled(std::nullopt), j, 2), 2s);
    EXPECT_EQ(throttle_pause(throttled(std::nullopt), j, 5), 16s);
    EXPECT_EQ(throttle_pause(throttled(std::nullopt), j, 6), 30s);
    EXPECT_EQ(throttle_pause(throttled(std::nullopt), j, 1000), 30s);
}

TEST(ProbeDelay, WaitsForALongerRetryAfterBoundedByMaxDelay) {
    const auto j = jenkins_with(1s, 30s, 300s);
    auto unavailable = outcome(Kind::unavailable, 503, "HTTP 503");
    EXPECT_EQ(probe_delay(unavailable, j, 4s), 4s);  // no Retry-After: the probe schedule
    unavailable.retry_after = 90s;
    EXPECT_EQ(probe_delay(unavailable, j, 4s), 90s);
    unavailable.retry_after = 2s;
    EXPECT_EQ(probe_delay(unavailable, j, 4s), 4s);  // never sooner than the schedule
    unavailable.retry_after = 24h;
    EXPECT_EQ(probe_delay(unavailable, j, 4s), 300s);
}

}  // namespace
}  // namespace hookrelay::dispatch
