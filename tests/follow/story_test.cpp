// The decisions behind following a trigger and the statuses that tell its story (story.hpp):
// plain values in, plain values out, time passed in.
#include "follow/story.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace hookrelay::follow {
namespace {

using namespace std::chrono_literals;
using Kind = JenkinsOutcome::Kind;
using Time = std::chrono::system_clock::time_point;

const Time t0 = Time(std::chrono::milliseconds(1'764'000'000'000));

JenkinsConfig jenkins() {
    JenkinsConfig j;
    j.name = "ci";
    j.url = "http://127.0.0.1:8080/";
    j.follow_poll_initial = 2s;
    j.follow_poll_max = 60s;
    j.follow_max_age = 1h;
    return j;
}

StoredTrigger delivered(std::int64_t queue_id = 7, FollowMode follow = FollowMode::finished) {
    StoredTrigger t;
    t.id = "t1";
    t.state = TriggerState::delivered;
    t.created_at = t0;
    t.request.rule = "build-main";
    t.request.jenkins = "ci";
    t.request.job = {"acme", "app"};
    t.request.follow = follow;
    t.request.status =
        StatusTarget{"acme/app", std::string(40, 'a'), "hookrelay/build-main", "main"};
    t.build.queue_url = "http://127.0.0.1:8080/queue/item/" + std::to_string(queue_id) + "/";
    t.build.queue_id = queue_id;
    t.build.queued_at = t0;
    t.following = true;
    return t;
}

JenkinsOutcome ok(std::string body) {
    JenkinsOutcome o;
    o.kind = Kind::queued;
    o.http_status = 200;
    o.body = std::move(body);
    return o;
}

JenkinsOutcome status(int code, Kind kind = Kind::permanent) {
    JenkinsOutcome o;
    o.kind = kind;
    o.http_status = code;
    o.detail = "HTTP " + std::to_string(code);
    return o;
}

constexpr auto k_waiting =
    R"({"_class":"hudson.model.Queue$WaitingItem","id":7,"blocked":false,"stuck":false,)"
    R"("why":"In the quiet period. Expires in 4.9 sec"})";
constexpr auto k_left =
    R"({"_class":"hudson.model.Queue$LeftItem","id":7,"cancelled":false,"why":null,)"
    R"("executable":{"_class":"hudson.model.FreeStyleBuild","number":42,)"
    R"("url":"https://jenkins.example.com/job/acme/job/app/42/"}})";
constexpr auto k_cancelled =
    R"({"_class":"hudson.model.Queue$LeftItem","id":7,"cancelled":true,"why":null,)"
    R"("executable":null})";
constexpr auto k_running =
    R"({"_class":"hudson.model.FreeStyleBuild","number":42,"building":true,"result":null,)"
    R"("duration":0,"timestamp":1764000010000,"queueId":7,)"
    R"("url":"https://jenkins.example.com/job/acme/job/app/42/"})";
constexpr auto k_failed =
    R"({"_class":"hudson.model.FreeStyleBuild","number":42,"building":false,)"
    R"("result":"FAILURE","duration":192000,"timestamp":1764000010000,"queueId":7,)"
    R"("url":"https://jenkins.example.com/job/acme/job/app/42/"})";

TEST(FollowRead, QueueItemFirstThenTheBuildByJobPathNotJenkinsOwnUrl) {
    auto t = delivered();
    auto read = next_read(t);
    EXPECT_EQ(read.what, Read::What::queue_item);
    EXPECT_TRUE(read.path.starts_with("queue/item/7/api/json")) << read.path;
    t.build.number = 42;
    t.build.url = "https://jenkins.example.com/job/acme/job/app/42/";
    read = next_read(t);
    EXPECT_EQ(read.what, Read::What::build);
    EXPECT_TRUE(read.path.starts_with("job/acme/job/app/42/api/json")) << read.path;
}

TEST(FollowRead, ForgottenItemIsLookedUpAmongTheJobsBuilds) {
    const auto read = next_read(delivered(), true);
    EXPECT_EQ(read.what, Read::What::builds);
    EXPECT_TRUE(read.path.starts_with("job/acme/job/app/api/json?tree=builds")) << read.path;
}

TEST(FollowAdvance, WaitingItemKeepsWhyAndBacksOff) {
    const auto t = delivered();
    const auto step = advance(t, 0, next_read(t), ok(k_waiting), jenkins(), t0 + 3s);
    EXPECT_EQ(step.build.why, "In the quiet period. Expires in 4.9 sec");
    ASSERT_TRUE(step.next_at);
    EXPECT_EQ(*step.next_at, t0 + 3s + 2s);
    EXPECT_EQ(step.tries, 1);
    EXPECT_FALSE(step.status);  // nothing new to tell the pull request
    const auto later = advance(t, 3, next_read(t), ok(k_waiting), jenkins(), t0 + 30s);
    EXPECT_EQ(*later.next_at, t0 + 30s + 16s);
    const auto capped = advance(t, 10, next_read(t), ok(k_waiting), jenkins(), t0 + 30s);
    EXPECT_EQ(*capped.next_at, t0 + 30s + 60s);
}

TEST(FollowAdvance, LeftItemWithExecutableStartsTheBuildAndSaysRunning) {
    const auto t = delivered();
    const auto step = advance(t, 4, next_read(t), ok(k_left), jenkins(), t0 + 10s);
    EXPECT_TRUE(step.started);
    EXPECT_EQ(step.build.number, 42);
    EXPECT_EQ(step.build.url, "https://jenkins.example.com/job/acme/job/app/42/");
    EXPECT_EQ(step.tries, 0);  // progress resets the backoff
    ASSERT_TRUE(step.next_at);
    EXPECT_EQ(*step.next_at, t0 + 10s + 2s);
    ASSERT_TRUE(step.status);
    EXPECT_EQ(step.status->state, "running");
    EXPECT_EQ(step.status->description, "Build #42 running");
    EXPECT_EQ(step.status->target_url, step.build.url);
}

TEST(FollowAdvance, FollowStartedEndsWhenTheBuildStarts) {
    const auto t = delivered(7, FollowMode::started);
    const auto step = advance(t, 0, next_read(t), ok(k_left), jenkins(), t0 + 10s);
    EXPECT_TRUE(step.started);
    EXPECT_FALSE(step.next_at);
}

TEST(FollowAdvance, CancelledItemFinishesAsCancelled) {
    const auto t = delivered();
    const auto step = advance(t, 0, next_read(t), ok(k_cancelled), jenkins(), t0 + 10s);
    EXPECT_TRUE(step.finished);
    EXPECT_EQ(step.build.result, "CANCELLED");
    EXPECT_FALSE(step.next_at);
    ASSERT_TRUE(step.status);
    EXPECT_EQ(step.status->state, "canceled");
}

TEST(FollowAdvance, ExecutableNotYetSetIsPolledAgain) {
    const auto t = delivered();
    const auto step = advance(
        t, 0, next_read(t),
        ok(R"({"_class":"hudson.model.Queue$LeftItem","id":7,"cancelled":false,"executable":null})"),
        jenkins(), t0 + 10s);
    EXPECT_FALSE(step.started);
    EXPECT_FALSE(step.finished);
    EXPECT_TRUE(step.next_at);
}

TEST(FollowAdvance, ForgottenItemAsksForTheBuildsListThenFindsTheBuildByQueueId) {
    const auto t = delivered();
    const auto gone = advance(t, 2, next_read(t), status(404), jenkins(), t0 + 400s);
    EXPECT_TRUE(gone.read_builds);
    const auto found = advance(
        t, 2, next_read(t, true),
        ok(R"({"_class":"hudson.model.FreeStyleProject","builds":[)"
           R"({"number":43,"queueId":9,"url":"https://jenkins.example.com/job/acme/job/app/43/"},)"
           R"({"number":42,"queueId":7,"url":"https://jenkins.example.com/job/acme/job/app/42/"}]})"),
        jenkins(), t0 + 400s);
    EXPECT_TRUE(found.started);
    EXPECT_EQ(found.build.number, 42);
}

TEST(FollowAdvance, ForgottenItemWithoutABuildIsLost) {
    const auto t = delivered();
    const auto step =
        advance(t, 0, next_read(t, true), ok(R"({"builds":[{"number":3,"queueId":2,"url":"u"}]})"),
                jenkins(), t0 + 400s);
    EXPECT_TRUE(step.lost);
    EXPECT_FALSE(step.next_at);
    EXPECT_NE(step.build.error.find("queue item 7"), std::string::npos) << step.build.error;
    ASSERT_TRUE(step.status);
    EXPECT_EQ(step.status->state, "error");
}

TEST(FollowAdvance, RunningBuildTakesJenkinsTimestampAndWaits) {
    auto t = delivered();
    t.build.number = 42;
    const auto step = advance(t, 0, next_read(t), ok(k_running), jenkins(), t0 + 20s);
    EXPECT_FALSE(step.finished);
    ASSERT_TRUE(step.build.started_at);
    EXPECT_EQ(*step.build.started_at, Time(std::chrono::milliseconds(1'764'000'010'000)));
    EXPECT_TRUE(step.next_at);
}

TEST(FollowAdvance, FinishedBuildGivesResultDurationAndFinalStatus) {
    auto t = delivered();
    t.build.number = 42;
    const auto step = advance(t, 0, next_read(t), ok(k_failed), jenkins(), t0 + 300s);
    EXPECT_TRUE(step.finished);
    EXPECT_EQ(step.build.result, "FAILURE");
    ASSERT_TRUE(step.build.finished_at);
    EXPECT_EQ(*step.build.finished_at - *step.build.started_at, 192s);
    EXPECT_FALSE(step.next_at);
    ASSERT_TRUE(step.status);
    EXPECT_EQ(step.status->state, "failure");
    EXPECT_EQ(step.status->description, "Build #42 FAILURE in 3m12s");
}

TEST(FollowAdvance, JenkinsDownPostponesButNeverGivesUpEvenPastMaxAge) {
    const auto t = delivered();
    auto down = status(0, Kind::unavailable);
    const auto step = advance(t, 0, next_read(t), down, jenkins(), t0 + 5h);
    EXPECT_FALSE(step.lost);
    ASSERT_TRUE(step.next_at);
    auto limited = status(503, Kind::unavailable);
    limited.retry_after = 120s;
    const auto later = advance(t, 0, next_read(t), limited, jenkins(), t0 + 10s);
    EXPECT_EQ(*later.next_at, t0 + 10s + 120s);  // never sooner than Jenkins asked
}

// A 500 is an answer, not an outage: Jenkins is up and fails this read. Within follow_max_age it
// is asked again; past it, five in a row end following, where it used to poll for ever with the
// status pending.
TEST(FollowAdvance, AnErrorAnswerPastMaxAgeEndsFollowing) {
    auto t = delivered();
    t.build.number = 42;
    const auto early =
        advance(t, 3, next_read(t), status(500, Kind::server_error), jenkins(), t0 + 10min);
    EXPECT_FALSE(early.lost);
    EXPECT_TRUE(early.next_at);
    // One after an outage longer than follow_max_age is asked again; five in a row end it.
    auto step = advance(t, 3, next_read(t), status(500, Kind::server_error), jenkins(), t0 + 2h);
    EXPECT_FALSE(step.lost);
    EXPECT_EQ(step.build.unreadable, 1);
    t.build = step.build;
    for (int i = 0; i < 3; ++i) {
        step = advance(t, 3, next_read(t), status(500, Kind::server_error), jenkins(), t0 + 2h);
        ASSERT_FALSE(step.lost) << i;
        t.build = step.build;
    }
    const auto late =
        advance(t, 3, next_read(t), status(500, Kind::server_error), jenkins(), t0 + 2h);
    EXPECT_TRUE(late.lost);
    EXPECT_FALSE(late.next_at);
    EXPECT_EQ(late.build.error, "Jenkins still answers an error after 1h00m: HTTP 500");
    ASSERT_TRUE(late.status);
    EXPECT_EQ(late.status->state, "error");
}

TEST(FollowAdvance, StillQueuedPastMaxAgeIsLost) {
    const auto t = delivered();
    const auto step = advance(t, 0, next_read(t), ok(k_waiting), jenkins(), t0 + 2h);
    EXPECT_TRUE(step.lost);
    EXPECT_NE(step.build.error.find("still in Jenkins' queue"), std::string::npos);
}

TEST(FollowAdvance, DeletedBuildIsLost) {
    auto t = delivered();
    t.build.number = 42;
    const auto step = advance(t, 0, next_read(t), status(404), jenkins(), t0 + 20s);
    EXPECT_TRUE(step.lost);
    EXPECT_NE(step.build.error.find("#42"), std::string::npos);
}

// Five unreadable answers in a row end following; the polls of a build that waits in the queue
// (which raise `tries`, the backoff) do not count toward them, and an answer read in between
// starts the count again.
TEST(FollowAdvance, UnreadableAnswersAreRetriedAFewTimesInARowThenLost) {
    auto t = delivered();
    const auto login = ok("<html>login</html>");
    // Long in the queue: a sixth poll without progress, then one login page.
    const auto waited = advance(t, 6, next_read(t), login, jenkins(), t0 + 5min);
    EXPECT_FALSE(waited.lost) << waited.build.error;
    EXPECT_EQ(waited.build.unreadable, 1);
    t.build = waited.build;
    int in_a_row = 0;
    for (int i = 0; i < 4; ++i) {
        const auto step = advance(t, 6, next_read(t), login, jenkins(), t0 + 5min);
        t.build = step.build;
        in_a_row = step.build.unreadable;
        EXPECT_EQ(step.lost, i == 4 - 1) << i;
    }
    EXPECT_EQ(in_a_row, 5);

    // Three unreadable, one read (still waiting), then three more: not lost.
    t = delivered();
    for (int i = 0; i < 3; ++i) t.build = advance(t, 0, next_read(t), login, jenkins(), t0).build;
    const auto read = advance(t, 3, next_read(t), ok(k_waiting), jenkins(), t0 + 10s);
    EXPECT_EQ(read.build.unreadable, 0);
    t.build = read.build;
    for (int i = 0; i < 3; ++i) {
        const auto step = advance(t, 4, next_read(t), login, jenkins(), t0 + 20s);
        EXPECT_FALSE(step.lost);
        t.build = step.build;
    }
}

// A forgotten queue item sends each poll to the builds list: unreadable answers of that list
// still count up across the queue item's 404s, and past follow_max_age one of them ends it.
TEST(FollowAdvance, UnreadableBuildsListsAfterAForgottenItemStillEndFollowing) {
    auto t = delivered();
    t.build.unreadable = 3;
    const auto gone = advance(t, 2, next_read(t), status(404), jenkins(), t0 + 6min);
    ASSERT_TRUE(gone.read_builds);
    EXPECT_EQ(gone.build.unreadable, 3);
    t.build = gone.build;
    const auto builds = next_read(t, true);
    const auto list = advance(t, 2, builds, ok("<html>login</html>"), jenkins(), t0 + 6min);
    EXPECT_FALSE(list.lost);
    EXPECT_EQ(list.build.unreadable, 4);

    auto old = delivered();
    const auto late = advance(old, 0, next_read(old), ok("<html>login</html>"), jenkins(), t0 + 2h);
    EXPECT_TRUE(late.lost) << late.note;
}

TEST(FollowAdvance, NoQueueItemToFollowIsLost) {
    auto t = delivered(0);
    t.build.queue_url.clear();
    const auto read = next_read(t);
    EXPECT_EQ(read.what, Read::What::builds);
    const auto step = advance(t, 0, read, ok(R"({"builds":[]})"), jenkins(), t0 + 5s);
    EXPECT_TRUE(step.lost);
    EXPECT_NE(step.build.error.find("no queue item"), std::string::npos) << step.build.error;
}

TEST(Annotate, DeliveryStartsFollowingAndSaysQueued) {
    StoredTrigger t = delivered();
    t.state = TriggerState::pending;
    t.build = {};
    JenkinsOutcome o;
    o.kind = Kind::queued;
    o.http_status = 201;
    o.queue_url = "http://127.0.0.1:8080/queue/item/12/";
    TriggerUpdate u;
    u.state = TriggerState::delivered;
    annotate_attempt(u, t, o, jenkins(), t0);
    ASSERT_TRUE(u.build);
    EXPECT_EQ(u.build->queue_id, 12);
    EXPECT_FALSE(u.build->merged);
    EXPECT_EQ(*u.build->queued_at, t0);
    EXPECT_EQ(u.next_attempt_at, t0 + 2s);
    ASSERT_TRUE(u.status);
    EXPECT_EQ(u.status->state, "pending");
    EXPECT_EQ(u.status->description, "Queued in Jenkins ci");
}

TEST(Annotate, MergedDeliveryIsRecordedAsMerged) {
    StoredTrigger t = delivered();
    JenkinsOutcome o;
    o.kind = Kind::merged;
    o.http_status = 303;
    o.queue_url = "http://127.0.0.1:8080/queue/item/12/";
    TriggerUpdate u;
    u.state = TriggerState::delivered;
    annotate_attempt(u, t, o, jenkins(), t0);
    EXPECT_TRUE(u.build->merged);
}

TEST(Annotate, DeadTriggerSaysNotDeliveredWithTheReason) {
    StoredTrigger t = delivered();
    t.state = TriggerState::pending;
    TriggerUpdate u;
    u.state = TriggerState::dead;
    u.last_outcome = "HTTP 404 Not Found";
    annotate_attempt(u, t, status(404), jenkins(), t0);
    EXPECT_FALSE(u.build);
    ASSERT_TRUE(u.status);
    EXPECT_EQ(u.status->state, "error");
    EXPECT_EQ(u.status->description, "Not delivered: HTTP 404 Not Found");
}

// Build requests sent whole and never answered may have queued the build: the pull request is
// not told it was not delivered.
TEST(Annotate, DeadOfNoAnswerSaysTheBuildMayHaveBeenQueued) {
    StoredTrigger t = delivered();
    t.state = TriggerState::retrying;
    JenkinsOutcome o;
    o.kind = Kind::unavailable;
    o.maybe_queued = true;
    o.detail = "read: timeout after 10000 ms";
    TriggerUpdate u;
    u.state = TriggerState::dead;
    u.last_outcome = "no answer twice in a row: read: timeout after 10000 ms; not sent again";
    annotate_attempt(u, t, o, jenkins(), t0);
    ASSERT_TRUE(u.status);
    EXPECT_EQ(u.status->state, "error");
    EXPECT_EQ(u.status->description,
              "Jenkins ci did not answer; it may have queued the build: read: timeout after "
              "10000 ms");
}

TEST(Annotate, JenkinsDownSaysSoOnceNotOnEveryAttempt) {
    StoredTrigger t = delivered();
    t.state = TriggerState::pending;
    TriggerUpdate u;
    u.state = TriggerState::pending;
    annotate_attempt(u, t, status(0, Kind::unavailable), jenkins(), t0);
    ASSERT_TRUE(u.status);
    EXPECT_EQ(u.status->description, "Jenkins ci unavailable, hookrelay will retry");
    t.status.wanted = *u.status;
    t.status.wanted_seq = 1;
    TriggerUpdate again;
    again.state = TriggerState::pending;
    annotate_attempt(again, t, status(0, Kind::unavailable), jenkins(), t0 + 5s);
    EXPECT_FALSE(again.status);
}

TEST(Annotate, NoStatusWithoutATarget) {
    StoredTrigger t = delivered();
    t.request.status.reset();
    TriggerUpdate u;
    u.state = TriggerState::dead;
    annotate_attempt(u, t, status(404), jenkins(), t0);
    EXPECT_FALSE(u.status);
}

TEST(Statuses, ResultsMapOntoForgeNeutralStates) {
    BuildRecord b;
    b.number = 3;
    for (auto [result, state] : {std::pair{"SUCCESS", "success"},
                                 {"UNSTABLE", "failure"},
                                 {"FAILURE", "failure"},
                                 {"ABORTED", "canceled"},
                                 {"NOT_BUILT", "canceled"}}) {
        b.result = result;
        EXPECT_EQ(finished_status(b).state, state) << result;
    }
}

TEST(Statuses, HumanDurations) {
    EXPECT_EQ(human_duration(0ms), "0s");
    EXPECT_EQ(human_duration(45s), "45s");
    EXPECT_EQ(human_duration(192s), "3m12s");
    EXPECT_EQ(human_duration(3720s), "1h02m");
}

}  // namespace
}  // namespace hookrelay::follow
