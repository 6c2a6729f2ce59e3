// The fake Jenkins' multibranch projects (jenkins-remote-api.md §2, jenkins-builds-and-jobs.md
// §2.4) and its record of cancelled queue items, driven with raw blocking HTTP requests.
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

constexpr std::string_view k_api_auth = "Basic aG9va3JlbGF5OmZha2UtYXBpLXRva2Vu";  // default
constexpr auto k_deadline = std::chrono::seconds(5);
// A scan duration long enough that the assertions made right after the scan was requested still
// see it running on a loaded machine.
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

class FakeJenkinsMultibranchTest : public ::testing::Test {
  protected:
    FakeJenkinsMultibranchTest() {
        fake.add_multibranch({"acme", "app"}, {"main", "feature/x"}, {"SHA"});
        fake.add_job({"plain"});
        fake.add_job({"folder", "inner"});
    }

    Http get(const std::string& target, bool auth = true) {
        return request(fake.port(), bhttp::verb::get, target, auth);
    }
    Http post(const std::string& target, const std::string& body = {}, bool auth = true) {
        return request(fake.port(), bhttp::verb::post, target, auth, body);
    }
    Http scan() { return post("/job/acme/job/app/build?delay=0sec"); }
    Http branch_api(const std::string& segment) {
        return get("/job/acme/job/app/job/" + segment + "/api/json");
    }

    FakeJenkins fake{FakeJenkins::Options{}};
};

TEST_F(FakeJenkinsMultibranchTest, BranchNameIsEncodedAsJenkinsDoes) {
    EXPECT_EQ(FakeJenkins::branch_item_name("feature/x"), "feature%2Fx");
    EXPECT_EQ(FakeJenkins::branch_item_name("a#b%c?d[e]f\\g"), "a%23b%25c%3Fd%5Be%5Df%5Cg");
    EXPECT_EQ(FakeJenkins::branch_item_name(""), "%00");
    EXPECT_EQ(FakeJenkins::branch_item_name("."), "%2E");
}

TEST_F(FakeJenkinsMultibranchTest, ProjectApiIsAMultibranchProjectListingItsBranchJobs) {
    const auto api = get("/job/acme/job/app/api/json");
    ASSERT_EQ(api.status, 200);
    const auto o = api.object();
    EXPECT_EQ(o.at("_class"),
              "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject");
    EXPECT_EQ(o.at("buildable"), true);
    const auto& jobs = o.at("jobs").as_array();
    ASSERT_EQ(jobs.size(), 2u);
    EXPECT_EQ(jobs[1].at("name"), "feature%2Fx");
    EXPECT_EQ(jobs[1].at("_class"), "org.jenkinsci.plugins.workflow.job.WorkflowJob");
    EXPECT_EQ(str(jobs[1].at("url")), fake.url() + "job/acme/job/app/job/feature%252Fx/");
}

TEST_F(FakeJenkinsMultibranchTest, BranchJobBuildsWithItsParametersAtTheDoubleEncodedPath) {
    const auto api = branch_api("feature%252Fx");
    ASSERT_EQ(api.status, 200);
    EXPECT_EQ(api.object().at("_class"), "org.jenkinsci.plugins.workflow.job.WorkflowJob");
    const auto built = post("/job/acme/job/app/job/feature%252Fx/buildWithParameters", "SHA=1");
    EXPECT_EQ(built.status, 201);
    const auto items = fake.queue_items();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].job, (std::vector<std::string>{"acme", "app", "feature%2Fx"}));
    EXPECT_EQ(items[0].parameters,
              (std::vector<std::pair<std::string, std::string>>{{"SHA", "1"}}));
}

TEST_F(FakeJenkinsMultibranchTest, ScanAnswers302ToTheProjectWithoutAQueueItem) {
    const auto scanned = scan();
    EXPECT_EQ(scanned.status, 302);
    EXPECT_EQ(scanned.location, fake.url() + "job/acme/job/app/");
    EXPECT_TRUE(fake.queue_items().empty());
    EXPECT_EQ(fake.scans({"acme", "app"}), 1u);
    EXPECT_EQ(post("/job/acme/job/app/build").status, 302);  // delay is optional
    EXPECT_EQ(fake.scans({"acme", "app"}), 2u);
}

TEST_F(FakeJenkinsMultibranchTest, BranchAppearsOnlyAfterAScan) {
    fake.add_branch_on_scan({"acme", "app"}, "feature/new");
    EXPECT_EQ(branch_api("feature%252Fnew").status, 404);
    EXPECT_EQ(post("/job/acme/job/app/job/feature%252Fnew/build").status, 404);
    EXPECT_EQ(get("/job/acme/job/app/api/json").object().at("jobs").as_array().size(), 2u);

    ASSERT_EQ(scan().status, 302);
    EXPECT_EQ(branch_api("feature%252Fnew").status, 200);
    EXPECT_EQ(get("/job/acme/job/app/api/json").object().at("jobs").as_array().size(), 3u);
    const auto log = fake.scan_log();
    ASSERT_EQ(log.size(), 1u);
    EXPECT_TRUE(log[0].finished);
    EXPECT_EQ(log[0].created, std::vector<std::string>{"feature/new"});
}

TEST_F(FakeJenkinsMultibranchTest, BranchAppearsWhenTheScanDurationIsOver) {
    fake.set_scan_duration(k_moment);
    fake.add_branch_on_scan({"acme", "app"}, "late");
    const auto before = std::chrono::steady_clock::now();
    ASSERT_EQ(scan().status, 302);
    EXPECT_EQ(branch_api("late").status, 404);  // still scanning
    EXPECT_TRUE(eventually([&] { return branch_api("late").status == 200; }, k_deadline));
    EXPECT_GE(std::chrono::steady_clock::now() - before, k_moment);
    const auto log = fake.scan_log();
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log[0].ends_at - log[0].started_at, k_moment);
}

TEST_F(FakeJenkinsMultibranchTest, ScanRequestedWhileOneRunsWaitsAndLaterOnesMerge) {
    fake.set_scan_duration(k_moment);
    ASSERT_EQ(scan().status, 302);  // runs now
    ASSERT_EQ(scan().status, 302);  // waits for it
    ASSERT_EQ(scan().status, 302);  // merges into the waiting one
    EXPECT_EQ(fake.scans({"acme", "app"}), 2u);
    const auto log = fake.scan_log();
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[0].requests, 1u);
    EXPECT_EQ(log[1].requests, 2u);
    EXPECT_EQ(log[1].started_at, log[0].ends_at);
}

TEST_F(FakeJenkinsMultibranchTest, BranchAddedAfterTheScanStartedWaitsForTheNextScan) {
    fake.set_scan_duration(k_moment);
    ASSERT_EQ(scan().status, 302);
    fake.add_branch_on_scan({"acme", "app"}, "later");
    fake.set_scan_duration(milliseconds(0));
    const auto log = fake.scan_log();
    ASSERT_EQ(log.size(), 1u);
    EXPECT_TRUE(log[0].created.empty());
    EXPECT_EQ(branch_api("later").status, 404);
}

TEST_F(FakeJenkinsMultibranchTest, ScanNeedsPostAndBuildPermission) {
    EXPECT_EQ(get("/job/acme/job/app/build").status, 405);
    EXPECT_EQ(post("/job/acme/job/app/build", "", /*auth=*/false).status, 403);  // no crumb
    EXPECT_EQ(fake.scans({"acme", "app"}), 0u);
}

TEST_F(FakeJenkinsMultibranchTest, DisabledProjectCannotBeRecomputed) {
    fake.set_job_buildable({"acme", "app"}, false);
    const auto scanned = scan();
    EXPECT_EQ(scanned.status, 500);
    EXPECT_NE(scanned.body.find("acme/app cannot be recomputed"), std::string::npos);
    EXPECT_EQ(fake.scans({"acme", "app"}), 0u);
}

TEST_F(FakeJenkinsMultibranchTest, PlainFolderCannotBeRecomputedAndAPlainJobBuilds) {
    const auto folder = post("/job/folder/build?delay=0sec");
    EXPECT_EQ(folder.status, 500);
    EXPECT_NE(folder.body.find("folder cannot be recomputed"), std::string::npos);
    EXPECT_EQ(post("/job/plain/build?delay=0sec").status, 201);
}

TEST_F(FakeJenkinsMultibranchTest, UnknownProjectIs404) {
    EXPECT_EQ(post("/job/nope/build?delay=0sec").status, 404);
}

TEST_F(FakeJenkinsMultibranchTest, CancelledItemsAreRecordedInOrder) {
    ASSERT_EQ(post("/job/plain/build?delay=0sec").status, 201);
    ASSERT_EQ(post("/job/acme/job/app/job/main/buildWithParameters", "SHA=1").status, 201);
    EXPECT_EQ(post("/queue/cancelItem?id=2").status, 204);
    EXPECT_EQ(post("/queue/cancelItem?id=2").status, 404);
    EXPECT_TRUE(fake.cancel_item(1));
    EXPECT_EQ(fake.cancelled_items(), (std::vector<std::int64_t>{2, 1}));
}

}  // namespace
}  // namespace hookrelay::test
