// The multibranch decisions on plain values: which answer means "branch job not there yet", how
// long a trigger waits for it, and what a covered or deferred scan records.
#include "dispatch/multibranch.hpp"

#include <gtest/gtest.h>

namespace hookrelay::dispatch {
namespace {

using namespace std::chrono_literals;

StoredTrigger branch_trigger(TimePoint created) {
    StoredTrigger t;
    t.id = "t1";
    t.request.job = {"acme", "app", "feature/x"};
    t.request.multibranch = 2;
    t.created_at = created;
    t.state = TriggerState::pending;
    return t;
}

JenkinsOutcome not_found() {
    JenkinsOutcome o;
    o.kind = JenkinsOutcome::Kind::permanent;
    o.http_status = 404;
    o.detail = "HTTP 404 Not Found";
    return o;
}

TEST(Multibranch, OnlyA404OfABranchTriggerMeansTheBranchJobIsMissing) {
    const auto t = branch_trigger({});
    EXPECT_TRUE(branch_job_missing(t.request, not_found()));
    auto forbidden = not_found();
    forbidden.http_status = 403;
    EXPECT_FALSE(branch_job_missing(t.request, forbidden));
    TriggerRequest plain;
    plain.job = {"acme", "app"};
    EXPECT_FALSE(branch_job_missing(plain, not_found()));
    EXPECT_EQ(project_of(t.request), (std::vector<std::string>{"acme", "app"}));
}

TEST(Multibranch, WaitsUncountedForBranchPollThenDiesBranchWaitAfterTheCoveringScan) {
    const TimePoint created{std::chrono::hours(1000)};
    const auto t = branch_trigger(created);
    JenkinsConfig j;
    j.name = "ci";
    j.branch_poll = 5s;
    j.branch_wait = 10min;
    const auto scanned = created + 2min;
    const auto waiting =
        branch_pending(t, not_found(), j, created + 3min, "scan requested", scanned);
    EXPECT_EQ(waiting.state, TriggerState::pending);
    EXPECT_FALSE(waiting.attempt.counted);
    EXPECT_EQ(waiting.next_attempt_at, created + 3min + 5s);
    // branch_wait counts from the scan, not from the push.
    EXPECT_EQ(branch_pending(t, not_found(), j, created + 11min, "s", scanned).state,
              TriggerState::pending);
    const auto dead = branch_pending(t, not_found(), j, scanned + 10min, "s", scanned);
    EXPECT_EQ(dead.state, TriggerState::dead);
    EXPECT_NE(dead.last_outcome.find("within 10m00s of the scan requested at"), std::string::npos)
        << dead.last_outcome;
}

TEST(Multibranch, NeverDiesBeforeAScanCoversIt) {
    const TimePoint created{std::chrono::hours(1000)};
    JenkinsConfig j;
    j.branch_wait = 10min;
    // Jenkins was down for hours after the push: no scan yet, so it waits for one.
    EXPECT_EQ(branch_pending(branch_trigger(created), not_found(), j, created + 5h,
                             "next scan in 30s", std::nullopt)
                  .state,
              TriggerState::pending);
}

TEST(Multibranch, ACoveredScanIsDoneAndADeferredOneIsDueAtTheEndOfTheInterval) {
    const TimePoint now{std::chrono::hours(1000)};
    auto t = branch_trigger(now);
    t.request.multibranch = 0;
    t.request.job = {"acme", "app"};
    t.request.scan_only = true;
    const auto covered = scan_covered(t, now - 1s, now);
    EXPECT_EQ(covered.state, TriggerState::delivered);
    const auto deferred = scan_deferred(t, now + 40s, now);
    EXPECT_EQ(deferred.state, TriggerState::pending);
    EXPECT_EQ(deferred.next_attempt_at, now + 40s);
    EXPECT_FALSE(deferred.attempt.counted);
}

}  // namespace
}  // namespace hookrelay::dispatch
