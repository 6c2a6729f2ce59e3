// The fake Jenkins' queue model (jenkins-remote-api.md §4, jenkins-builds-and-jobs.md §2.1-2.2),
// driven with raw blocking HTTP requests: items, quiet period, left items, builds, cancelling.
#include "fakes/fake_jenkins.hpp"
#include "support/daemon.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <gtest/gtest.h>

namespace hookrelay::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using std::chrono::milliseconds;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view k_api_auth = "Basic aG9va3JlbGF5OmZha2UtYXBpLXRva2Vu";  // default
constexpr auto k_deadline = std::chrono::seconds(5);
// How long the timed states last in these tests: long enough that the assertions made right
// after the state began still see it on a loaded machine.
constexpr milliseconds k_moment{1'000};

struct Http {
    int status = 0;
    std::string body;
    std::string location;
    json::object object() const { return json::parse(body).as_object(); }
};

Http request(std::uint16_t port, bhttp::verb method, const std::string& target, bool auth = true,
             const std::string& body = {}) {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(k_deadline);
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(port));
    if (auth) req.set(bhttp::field::authorization, k_api_auth);
    if (method == bhttp::verb::post) {
        req.set(bhttp::field::content_type, "application/x-www-form-urlencoded");
        req.body() = body;
    }
    req.prepare_payload();
    bhttp::write(stream, req);
    beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(stream, buffer, res);
    return Http{static_cast<int>(res.result_int()), res.body(),
                std::string(res[bhttp::field::location])};
}

// A JSON string as std::string ("<not a string>" otherwise), to compare with built strings.
std::string str(const json::value& v) {
    return v.is_string() ? std::string(v.get_string()) : "<not a string>";
}

class FakeJenkinsQueueTest : public ::testing::Test {
  protected:
    explicit FakeJenkinsQueueTest(FakeJenkins::Options options = {}) : fake(std::move(options)) {
        fake.add_job({"plain"});
        fake.add_job({"folder", "params"}, {"SHA"});
    }

    Http get(const std::string& target, bool auth = true) {
        return request(fake.port(), bhttp::verb::get, target, auth);
    }
    Http post(const std::string& target, const std::string& body = {}, bool auth = true) {
        return request(fake.port(), bhttp::verb::post, target, auth, body);
    }
    Http trigger_plain() { return post("/job/plain/build?delay=0sec"); }
    Http item(std::int64_t id) {
        return get("/queue/item/" + std::to_string(id) +
                   "/api/json?tree=id,why,blocked,stuck,cancelled,executable%5Bnumber,url%5D");
    }

    FakeJenkins fake;
};

TEST_F(FakeJenkinsQueueTest, ItemWaitsForAnExecutorUntilDrainedThenLeavesAsBuildOne) {
    ASSERT_EQ(trigger_plain().status, 201);
    const auto queued = item(1);
    ASSERT_EQ(queued.status, 200);
    const auto q = queued.object();
    EXPECT_EQ(q.at("_class"), "hudson.model.Queue$BuildableItem");
    EXPECT_EQ(q.at("id"), 1);
    EXPECT_EQ(q.at("why"), "Waiting for next available executor");
    EXPECT_EQ(q.at("blocked"), false);
    EXPECT_EQ(q.at("stuck"), false);
    EXPECT_FALSE(q.contains("executable"));
    EXPECT_FALSE(q.contains("cancelled"));

    fake.drain_queue();
    const auto left = item(1).object();
    EXPECT_EQ(left.at("_class"), "hudson.model.Queue$LeftItem");
    EXPECT_TRUE(left.at("why").is_null());
    EXPECT_EQ(left.at("cancelled"), false);
    EXPECT_EQ(left.at("executable").at("number"), 1);
    EXPECT_EQ(str(left.at("executable").at("url")), fake.url() + "job/plain/1/");
}

TEST_F(FakeJenkinsQueueTest, BuildRunsUntilFinishedThenShowsItsResult) {
    const auto before = std::chrono::system_clock::now();
    trigger_plain();
    fake.drain_queue();
    const auto running = get("/job/plain/1/api/json?tree=number,url,building,result").object();
    EXPECT_EQ(running.at("number"), 1);
    EXPECT_EQ(running.at("building"), true);
    EXPECT_TRUE(running.at("result").is_null());
    EXPECT_EQ(running.at("duration"), 0);
    EXPECT_EQ(running.at("queueId"), 1);
    EXPECT_EQ(str(running.at("url")), fake.url() + "job/plain/1/");
    const auto started = running.at("timestamp").as_int64();
    const auto before_ms =
        std::chrono::duration_cast<milliseconds>(before.time_since_epoch()).count();
    EXPECT_GE(started, before_ms - 1);
    EXPECT_LT(started, before_ms + 5'000);

    fake.finish_builds();
    const auto done = get("/job/plain/1/api/json").object();
    EXPECT_EQ(done.at("building"), false);
    EXPECT_EQ(done.at("result"), "SUCCESS");
    EXPECT_EQ(done.at("timestamp"), started);
    EXPECT_GE(done.at("duration").as_int64(), 0);
    EXPECT_EQ(get("/job/plain/2/api/json").status, 404);
}

TEST_F(FakeJenkinsQueueTest, QuietPeriodStartsTheItemByItself) {
    fake.set_quiet_period(k_moment);
    trigger_plain();
    const auto waiting = item(1).object();
    EXPECT_EQ(waiting.at("_class"), "hudson.model.Queue$WaitingItem");
    EXPECT_EQ(
        std::string(waiting.at("why").as_string()).rfind("In the quiet period. Expires in ", 0), 0u)
        << waiting.at("why");
    EXPECT_TRUE(fake.runs().empty());
    EXPECT_TRUE(eventually([&] { return fake.runs().size() == 1; }, k_deadline));
    EXPECT_EQ(item(1).object().at("executable").at("number"), 1);
}

TEST_F(FakeJenkinsQueueTest, LeftItemIsForgottenAfterItsTtlButItsBuildStillNamesIt) {
    fake.set_left_item_ttl(k_moment);
    trigger_plain();
    fake.drain_queue();
    EXPECT_EQ(item(1).status, 200);
    EXPECT_TRUE(eventually([&] { return item(1).status == 404; }, k_deadline));
    EXPECT_TRUE(fake.queue_items().at(0).forgotten);
    const auto builds = get("/job/plain/api/json?tree=builds%5Bnumber,queueId,url%5D%7B0,50%7D");
    ASSERT_EQ(builds.status, 200);
    const auto list = builds.object().at("builds").as_array();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].at("queueId"), 1);
    EXPECT_EQ(list[0].at("number"), 1);
}

TEST_F(FakeJenkinsQueueTest, UnknownItemIs404) {
    EXPECT_EQ(item(1).status, 404);
    trigger_plain();
    EXPECT_EQ(item(2).status, 404);
    EXPECT_EQ(get("/queue/item/x/api/json").status, 404);
}

TEST_F(FakeJenkinsQueueTest, AnonymousMayReadItemsButNotWithoutOverallRead) {
    trigger_plain();
    EXPECT_EQ(get("/queue/item/1/api/json", /*auth=*/false).status, 200);
    fake.set_read_denied(true);
    EXPECT_EQ(get("/queue/item/1/api/json").status, 403);
}

TEST_F(FakeJenkinsQueueTest, CancelledItemLeavesCancelledAndCannotBeCancelledTwice) {
    trigger_plain();
    EXPECT_EQ(post("/queue/cancelItem?id=1").status, 204);
    const auto left = item(1).object();
    EXPECT_EQ(left.at("_class"), "hudson.model.Queue$LeftItem");
    EXPECT_EQ(left.at("cancelled"), true);
    EXPECT_TRUE(left.at("executable").is_null());
    const auto again = post("/queue/cancelItem?id=1");
    EXPECT_EQ(again.status, 404);
    EXPECT_NE(again.body.find("Provided id (1) not found"), std::string::npos);
    EXPECT_EQ(post("/queue/cancelItem?id=99").status, 404);
    fake.drain_queue();
    EXPECT_TRUE(fake.runs().empty());
    // A new trigger does not merge into the cancelled item.
    EXPECT_EQ(trigger_plain().location, fake.url() + "queue/item/2/");
}

TEST_F(FakeJenkinsQueueTest, StartedItemCannotBeCancelled) {
    trigger_plain();
    fake.drain_queue();
    EXPECT_EQ(post("/queue/cancelItem?id=1").status, 404);
    EXPECT_FALSE(fake.cancel_item(1));
    EXPECT_FALSE(fake.queue_items().at(0).cancelled);
}

TEST_F(FakeJenkinsQueueTest, TestSideCancelIsTheSameAsThePost) {
    trigger_plain();
    EXPECT_TRUE(fake.cancel_item(1));
    EXPECT_EQ(item(1).object().at("cancelled"), true);
    const auto items = fake.queue_items();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_TRUE(items[0].left);
    EXPECT_TRUE(items[0].cancelled);
    EXPECT_EQ(items[0].build_number, std::nullopt);
}

TEST_F(FakeJenkinsQueueTest, CancelNeedsPostAndACrumbOrAnApiToken) {
    trigger_plain();
    EXPECT_EQ(get("/queue/cancelItem?id=1").status, 405);
    EXPECT_EQ(post("/queue/cancelItem?id=1", "", /*auth=*/false).status, 403);  // no crumb
    EXPECT_FALSE(fake.queue_items().at(0).left);
}

TEST_F(FakeJenkinsQueueTest, BuildNumbersCountPerJobAndQueueIdsGlobally) {
    trigger_plain();
    post("/job/folder/job/params/buildWithParameters", "SHA=1");
    fake.drain_queue();
    trigger_plain();
    fake.drain_queue();
    const auto runs = fake.runs();
    ASSERT_EQ(runs.size(), 3u);
    EXPECT_EQ(runs[0].job, (std::vector<std::string>{"plain"}));
    EXPECT_EQ(runs[0].number, 1);
    EXPECT_EQ(runs[0].queue_id, 1);
    EXPECT_EQ(runs[1].job, (std::vector<std::string>{"folder", "params"}));
    EXPECT_EQ(runs[1].number, 1);
    EXPECT_EQ(runs[1].queue_id, 2);
    EXPECT_EQ(runs[1].url, fake.url() + "job/folder/job/params/1/");
    EXPECT_EQ(runs[2].number, 2);
    EXPECT_EQ(runs[2].queue_id, 3);
    const auto list = get("/job/plain/api/json?tree=builds[number,queueId,url]").object();
    const auto& builds = list.at("builds").as_array();
    ASSERT_EQ(builds.size(), 2u);
    EXPECT_EQ(builds[0].at("number"), 2);  // newest first
    EXPECT_EQ(builds[0].at("queueId"), 3);
    EXPECT_EQ(builds[1].at("number"), 1);
}

TEST_F(FakeJenkinsQueueTest, ResultsAreHandedOutInOrderThenSuccess) {
    fake.set_next_results({"FAILURE", "UNSTABLE"});
    for (int i = 0; i < 3; ++i) {
        trigger_plain();
        fake.drain_queue();
    }
    EXPECT_EQ(fake.runs().at(0).result, "") << "building";
    fake.finish_builds();
    const auto runs = fake.runs();
    ASSERT_EQ(runs.size(), 3u);
    EXPECT_EQ(runs[0].result, "FAILURE");
    EXPECT_EQ(runs[1].result, "UNSTABLE");
    EXPECT_EQ(runs[2].result, "SUCCESS");
    EXPECT_FALSE(runs[2].building);
    EXPECT_EQ(get("/job/plain/2/api/json").object().at("result"), "UNSTABLE");
}

TEST_F(FakeJenkinsQueueTest, BuildDurationFinishesTheBuildByItself) {
    fake.set_build_duration(k_moment);
    trigger_plain();
    fake.drain_queue();
    EXPECT_TRUE(fake.runs().at(0).building);
    EXPECT_TRUE(eventually([&] { return !fake.runs().at(0).building; }, k_deadline));
    const auto done = get("/job/plain/1/api/json").object();
    EXPECT_EQ(done.at("result"), "SUCCESS");
    EXPECT_EQ(done.at("duration"), k_moment.count());
}

TEST_F(FakeJenkinsQueueTest, MergedTriggerJoinsTheQueuedItemAndMakesOneBuild) {
    const std::string target = "/job/folder/job/params/buildWithParameters";
    const auto first = post(target, "SHA=1");
    const auto merged = post(target, "SHA=1");
    EXPECT_EQ(first.status, 201);
    EXPECT_EQ(merged.status, 303);
    EXPECT_EQ(merged.location, first.location);
    fake.drain_queue();
    ASSERT_EQ(fake.runs().size(), 1u);
    ASSERT_EQ(fake.queue_items().size(), 1u);
    EXPECT_EQ(fake.queue_items()[0].build_number, 1);
    EXPECT_EQ(fake.queue_items()[0].parameters,
              (std::vector<std::pair<std::string, std::string>>{{"SHA", "1"}}));
    EXPECT_EQ(item(1).object().at("executable").at("number"), 1);
    // Once started, the same trigger makes a new item.
    EXPECT_EQ(post(target, "SHA=1").status, 201);
}

TEST_F(FakeJenkinsQueueTest, ExecutableIsNullForAMomentAfterTheItemLeft) {
    fake.set_executable_delay(k_moment);
    trigger_plain();
    fake.drain_queue();
    const auto left = item(1).object();
    EXPECT_EQ(left.at("_class"), "hudson.model.Queue$LeftItem");
    EXPECT_EQ(left.at("cancelled"), false);
    EXPECT_TRUE(left.at("executable").is_null());
    EXPECT_EQ(get("/job/plain/1/api/json").status, 404);
    EXPECT_TRUE(
        eventually([&] { return item(1).object().at("executable").is_object(); }, k_deadline));
    EXPECT_EQ(get("/job/plain/1/api/json").status, 200);
}

class FakeJenkinsRootUrlTest : public FakeJenkinsQueueTest {
  protected:
    static FakeJenkins::Options elsewhere() {
        FakeJenkins::Options options;
        options.root_url = "https://jenkins.example.com/";
        return options;
    }
    FakeJenkinsRootUrlTest() : FakeJenkinsQueueTest(elsewhere()) {}
};

TEST_F(FakeJenkinsRootUrlTest, UrlsJenkinsWritesUseItsRootUrl) {
    // The Location is the request's (jenkins-remote-api.md §1.7), the JSON's URLs the root URL's.
    EXPECT_EQ(trigger_plain().location, fake.url() + "queue/item/1/");
    fake.drain_queue();
    EXPECT_EQ(item(1).object().at("executable").at("url"),
              "https://jenkins.example.com/job/plain/1/");
    EXPECT_EQ(get("/job/plain/1/api/json").object().at("url"),
              "https://jenkins.example.com/job/plain/1/");
    EXPECT_EQ(fake.runs().at(0).url, "https://jenkins.example.com/job/plain/1/");
}

}  // namespace
}  // namespace hookrelay::test
