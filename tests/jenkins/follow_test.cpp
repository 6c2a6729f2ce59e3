// The follow paths and parsers (jenkins-builds-and-jobs.md §2.1, jenkins-remote-api.md §4.2), on
// answers shaped as Jenkins gives them.
#include "jenkins/follow.hpp"

#include <gtest/gtest.h>

namespace hookrelay::jenkins {
namespace {

using std::chrono::milliseconds;
using std::chrono::system_clock;

// --- queue_item_id ---------------------------------------------------------------------------

TEST(QueueItemId, AbsoluteLocationFromCore) {
    EXPECT_EQ(queue_item_id("http://jenkins.example.com/queue/item/42/"), 42);
    EXPECT_EQ(queue_item_id("https://ci.example.com/jenkins/queue/item/7/"), 7);
}

TEST(QueueItemId, RelativeLocationFromBuildTokenRoot) {
    EXPECT_EQ(queue_item_id("/jenkins/queue/item/13/"), 13);
    EXPECT_EQ(queue_item_id("/queue/item/13/"), 13);
    EXPECT_EQ(queue_item_id("queue/item/13/"), 13);
}

TEST(QueueItemId, TrailingSlashIsOptional) {
    EXPECT_EQ(queue_item_id("http://jenkins/queue/item/42"), 42);
    EXPECT_EQ(queue_item_id("queue/item/9"), 9);
}

TEST(QueueItemId, GarbageIsNullopt) {
    for (const std::string_view bad :
         {"", "/", "http://jenkins/", "http://jenkins/queue/item/", "http://jenkins/queue/item//",
          "http://jenkins/queue/item/abc/", "http://jenkins/queue/item/4x2/",
          "http://jenkins/queue/item/-3/", "http://jenkins/queue/item/0/",
          "http://jenkins/queue/item/42/api/json", "http://jenkins/queue/item/42//",
          "http://jenkins/myqueue/item/42/", "http://jenkins/job/app/42/",
          "http://jenkins/queue/item/42/?pad=xx",
          "http://jenkins/queue/item/99999999999999999999/"}) {
        EXPECT_EQ(queue_item_id(bad), std::nullopt) << bad;
    }
}

// --- paths -----------------------------------------------------------------------------------

TEST(FollowPaths, QueueItemPathAsksForTheFollowedFields) {
    EXPECT_EQ(queue_item_path(42),
              "queue/item/42/api/json?tree=id,why,blocked,stuck,cancelled,executable[number,url]");
}

TEST(FollowPaths, BuildPathIsBelowTheEncodedJobPath) {
    EXPECT_EQ(build_path({"acme", "app", "feature/x"}, 17),
              "job/acme/job/app/job/feature%252Fx/17/api/json"
              "?tree=number,url,building,result,duration,timestamp,queueId");
}

TEST(FollowPaths, BuildsPathListsTheNewestFifty) {
    EXPECT_EQ(builds_path({"my job"}),
              "job/my%20job/api/json?tree=builds[number,queueId,url]{0,50}");
}

// --- parse_queue_item ------------------------------------------------------------------------

TEST(ParseQueueItem, WaitingItemCarriesWhy) {
    const auto item = parse_queue_item(R"({
        "_class": "hudson.model.Queue$WaitingItem",
        "blocked": false, "id": 42, "stuck": false,
        "why": "In the quiet period. Expires in 4.9 sec"})");
    ASSERT_TRUE(item);
    EXPECT_FALSE(item->cancelled);
    EXPECT_EQ(item->number, std::nullopt);
    EXPECT_EQ(item->url, "");
    EXPECT_EQ(item->why, "In the quiet period. Expires in 4.9 sec");
}

TEST(ParseQueueItem, BlockedItemCarriesWhy) {
    const auto item = parse_queue_item(R"json({
        "_class": "hudson.model.Queue$BlockedItem", "blocked": true, "id": 43, "stuck": false,
        "why": "Build #3 is already in progress (ETA: 12 sec)"})json");
    ASSERT_TRUE(item);
    EXPECT_EQ(item->why, "Build #3 is already in progress (ETA: 12 sec)");
    EXPECT_EQ(item->number, std::nullopt);
}

TEST(ParseQueueItem, LeftItemWithExecutableIsNumbered) {
    const auto item = parse_queue_item(R"({
        "_class": "hudson.model.Queue$LeftItem",
        "blocked": false, "id": 42, "stuck": false, "why": null, "cancelled": false,
        "executable": {"_class": "hudson.model.FreeStyleBuild", "number": 17,
                       "url": "https://jenkins.example.com/job/acme/job/app/17/"}})");
    ASSERT_TRUE(item);
    EXPECT_FALSE(item->cancelled);
    EXPECT_EQ(item->number, 17);
    EXPECT_EQ(item->url, "https://jenkins.example.com/job/acme/job/app/17/");
    EXPECT_EQ(item->why, "");
}

TEST(ParseQueueItem, CancelledItemIsCancelledWithoutNumber) {
    const auto item = parse_queue_item(R"({
        "_class": "hudson.model.Queue$LeftItem",
        "blocked": false, "id": 42, "stuck": false, "why": null,
        "cancelled": true, "executable": null})");
    ASSERT_TRUE(item);
    EXPECT_TRUE(item->cancelled);
    EXPECT_EQ(item->number, std::nullopt);
}

TEST(ParseQueueItem, LeftWithoutExecutableYetIsNeitherCancelledNorNumbered) {
    // Between Queue.onStartExecuting and Executor.setExecutable (reference §4.1).
    const auto item = parse_queue_item(R"({
        "_class": "hudson.model.Queue$LeftItem",
        "blocked": false, "id": 42, "stuck": false, "why": null,
        "cancelled": false, "executable": null})");
    ASSERT_TRUE(item);
    EXPECT_FALSE(item->cancelled);
    EXPECT_EQ(item->number, std::nullopt);
}

TEST(ParseQueueItem, WrongTypesAreMalformedJson) {
    for (const std::string_view bad : {
             R"({"_class":"hudson.model.Queue$LeftItem","cancelled":"false"})",
             R"({"_class":"hudson.model.Queue$LeftItem","executable":17})",
             R"({"_class":"hudson.model.Queue$LeftItem","executable":{"number":"17"}})",
             R"({"_class":"hudson.model.Queue$LeftItem","executable":{"url":"x"}})",
             R"({"_class":"hudson.model.Queue$LeftItem","executable":{"number":17,"url":5}})",
             R"({"_class":"hudson.model.Queue$WaitingItem","why":42})",
             R"({"_class":"hudson.model.Queue$WaitingItem","id":"42"})",
             R"({"_class":"hudson.model.Queue$WaitingItem","blocked":1})",
         }) {
        std::string why;
        const auto item = parse_queue_item(bad, &why);
        ASSERT_FALSE(item) << bad;
        EXPECT_EQ(item.error(), make_error_code(errc::malformed_json)) << bad;
        EXPECT_FALSE(why.empty()) << bad;
    }
}

TEST(ParseQueueItem, NotAnObjectIsMalformedJson) {
    for (const std::string_view bad :
         {"", "[]", "null", "42", "<html>Not Found</html>", "{\"id\":"}) {
        const auto item = parse_queue_item(bad);
        ASSERT_FALSE(item) << bad;
        EXPECT_EQ(item.error(), make_error_code(errc::malformed_json)) << bad;
    }
}

TEST(ParseQueueItem, HostileNestingIsMalformedJsonNotACrash) {
    const std::string deep =
        R"({"why":)" + std::string(10'000, '[') + std::string(10'000, ']') + "}";
    std::string why;
    EXPECT_FALSE(parse_queue_item(deep, &why));
    EXPECT_NE(why.find("not JSON"), std::string::npos) << why;
}

// --- parse_build -----------------------------------------------------------------------------

constexpr std::string_view k_building = R"({
    "_class": "hudson.model.FreeStyleBuild", "building": true, "duration": 0,
    "number": 17, "queueId": 42, "result": null, "timestamp": 1764500000000,
    "url": "https://jenkins.example.com/job/acme/job/app/17/"})";

TEST(ParseBuild, BuildingHasNoResultYet) {
    const auto build = parse_build(k_building);
    ASSERT_TRUE(build);
    EXPECT_EQ(build->number, 17);
    EXPECT_TRUE(build->building);
    EXPECT_EQ(build->result, "");
    EXPECT_EQ(build->url, "https://jenkins.example.com/job/acme/job/app/17/");
    EXPECT_EQ(build->queue_id, 42);
    EXPECT_EQ(build->started_at, system_clock::time_point(milliseconds(1764500000000)));
    EXPECT_EQ(build->duration, milliseconds(0));
}

TEST(ParseBuild, FinishedCarriesResultAndDuration) {
    const auto build = parse_build(R"({
        "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun", "building": false,
        "duration": 93512, "number": 18, "queueId": 43, "result": "SUCCESS",
        "timestamp": 1764500000000, "url": "https://jenkins.example.com/job/app/18/"})");
    ASSERT_TRUE(build);
    EXPECT_FALSE(build->building);
    EXPECT_EQ(build->result, "SUCCESS");
    EXPECT_EQ(build->duration, milliseconds(93512));
    EXPECT_EQ(build->started_at, system_clock::time_point(milliseconds(1764500000000)));
}

TEST(ParseBuild, EveryResultIsKeptAsJenkinsSaysIt) {
    for (const std::string result : {"SUCCESS", "UNSTABLE", "FAILURE", "NOT_BUILT", "ABORTED"}) {
        const auto build =
            parse_build(R"({"_class":"hudson.model.FreeStyleBuild","building":false,)"
                        R"("duration":5,"number":3,"result":")" +
                        result + R"(","timestamp":1764500000000,"url":"u"})");
        ASSERT_TRUE(build) << result;
        EXPECT_EQ(build->result, result);
        EXPECT_FALSE(build->building);
    }
}

TEST(ParseBuild, WithoutQueueIdOrTimestampTheyAreUnknown) {
    const auto build = parse_build(R"({"number":3,"building":true,"result":null})");
    ASSERT_TRUE(build);
    EXPECT_EQ(build->queue_id, std::nullopt);
    EXPECT_EQ(build->started_at, std::nullopt);
}

TEST(ParseBuild, WrongTypesAreMalformedJson) {
    for (const std::string_view bad : {
             R"({"number":"17","building":true})",
             R"({"building":true})",
             R"({"number":17,"building":"true"})",
             R"({"number":17,"result":1})",
             R"({"number":17,"timestamp":"yesterday"})",
             R"({"number":17,"duration":1.5})",
             R"({"number":17,"queueId":[]})",
             R"([17])",
         }) {
        const auto build = parse_build(bad);
        ASSERT_FALSE(build) << bad;
        EXPECT_EQ(build.error(), make_error_code(errc::malformed_json)) << bad;
    }
}

// --- find_build_by_queue_id ------------------------------------------------------------------

constexpr std::string_view k_builds = R"({
    "_class": "hudson.model.FreeStyleProject",
    "builds": [
        {"_class": "hudson.model.FreeStyleBuild", "number": 19, "queueId": 51,
         "url": "https://jenkins.example.com/job/app/19/"},
        {"_class": "hudson.model.FreeStyleBuild", "number": 18, "queueId": 43,
         "url": "https://jenkins.example.com/job/app/18/"},
        {"_class": "hudson.model.FreeStyleBuild", "number": 17, "queueId": 42,
         "url": "https://jenkins.example.com/job/app/17/"}]})";

TEST(FindBuildByQueueId, FindsTheBuildMadeFromTheItem) {
    const auto found = find_build_by_queue_id(k_builds, 43);
    ASSERT_TRUE(found);
    ASSERT_TRUE(found->has_value());
    EXPECT_EQ((*found)->number, 18);
    EXPECT_EQ((*found)->url, "https://jenkins.example.com/job/app/18/");
    EXPECT_EQ((*found)->queue_id, 43);
}

TEST(FindBuildByQueueId, MissIsNullopt) {
    const auto found = find_build_by_queue_id(k_builds, 44);
    ASSERT_TRUE(found);
    EXPECT_FALSE(found->has_value());
    const auto empty =
        find_build_by_queue_id(R"({"_class":"hudson.model.FreeStyleProject","builds":[]})", 42);
    ASSERT_TRUE(empty);
    EXPECT_FALSE(empty->has_value());
}

TEST(FindBuildByQueueId, WrongShapesAreMalformedJson) {
    for (const std::string_view bad : {
             R"({"_class":"com.cloudbees.hudson.plugins.folder.Folder"})",
             R"({"builds":{}})",
             R"({"builds":[17]})",
             R"({"builds":[{"number":"17","queueId":42}]})",
             R"({"builds":[{"number":17,"queueId":"42"}]})",
         }) {
        const auto found = find_build_by_queue_id(bad, 42);
        ASSERT_FALSE(found) << bad;
        EXPECT_EQ(found.error(), make_error_code(errc::malformed_json)) << bad;
    }
}

}  // namespace
}  // namespace hookrelay::jenkins
