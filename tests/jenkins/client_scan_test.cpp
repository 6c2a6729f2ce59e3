// JenkinsClient::scan() and cancel_item() against the fake Jenkins (a real loopback server).
#include "fakes/fake_jenkins.hpp"
#include "jenkins/client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

namespace hookrelay::jenkins {
namespace {

namespace asio = boost::asio;
using Kind = JenkinsOutcome::Kind;
using test::FakeJenkins;
using test::ReceivedRequest;

template <class T>
T run(asio::io_context& ioc, asio::awaitable<T> task) {
    std::optional<T> result;
    std::exception_ptr error;
    asio::co_spawn(ioc, std::move(task), [&](std::exception_ptr e, T value) {
        error = e;
        if (!e) result = std::move(value);
    });
    ioc.restart();
    ioc.run();
    if (error) std::rethrow_exception(error);
    return std::move(*result);
}

std::size_t count_endpoint(const std::vector<ReceivedRequest>& requests, const std::string& e) {
    return static_cast<std::size_t>(std::count_if(requests.begin(), requests.end(),
                                                  [&](const auto& r) { return r.endpoint == e; }));
}

class JenkinsScanCancelTest : public ::testing::Test {
  protected:
    JenkinsScanCancelTest() {
        fake.add_multibranch({"acme", "app"}, {"main"}, {"SHA"});
        fake.add_job({"plain"});
        fake.add_job({"folder", "inner"});
    }

    std::shared_ptr<JenkinsClient> client(bool with_user = true) {
        JenkinsConfig c;
        c.name = "ci";
        c.url = fake.url();
        if (with_user) {
            c.user = "hookrelay";
            c.api_token = Secret("fake-api-token");
        }
        c.connect_timeout = std::chrono::seconds(5);
        c.io_timeout = std::chrono::seconds(5);
        c.request_timeout = std::chrono::seconds(10);
        std::string why;
        auto made = make_client(ioc.get_executor(), c, &why);
        EXPECT_TRUE(made) << why;
        return made ? *made : nullptr;
    }

    JenkinsOutcome scan(const std::shared_ptr<JenkinsClient>& c, std::vector<std::string> project) {
        return run(ioc, c->scan(std::move(project)));
    }
    JenkinsOutcome cancel(const std::shared_ptr<JenkinsClient>& c, std::int64_t id) {
        return run(ioc, c->cancel_item(id));
    }
    // Queues one item of "plain" (id 1, 2, ...) as a trigger would.
    void queue_plain(const std::shared_ptr<JenkinsClient>& c) {
        TriggerRequest r;
        r.job = {"plain"};
        r.cause = "hookrelay";
        ASSERT_EQ(run(ioc, c->trigger(std::move(r), std::nullopt)).kind, Kind::queued);
    }

    asio::io_context ioc;
    FakeJenkins fake{FakeJenkins::Options{}};
};

TEST_F(JenkinsScanCancelTest, ScanPostsBuildOfTheProjectAndIsQueuedOn302) {
    auto c = client();
    const auto outcome = scan(c, {"acme", "app"});
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 302);
    EXPECT_TRUE(outcome.queue_url.empty());
    EXPECT_EQ(fake.scans({"acme", "app"}), 1u);
    // First what the item is (a job is never sent a scan), then the scan.
    const auto requests = fake.requests();
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[0].method, "GET");
    EXPECT_EQ(requests[0].target, "/job/acme/job/app/api/json?tree=_class,nextBuildNumber");
    EXPECT_EQ(requests[1].method, "POST");
    EXPECT_EQ(requests[1].target, "/job/acme/job/app/build?delay=0sec");
    EXPECT_TRUE(requests[1].authenticated);
}

TEST_F(JenkinsScanCancelTest, ScanMakesThePendingBranchAJob) {
    fake.add_branch_on_scan({"acme", "app"}, "feature/x", {"SHA"});
    auto c = client();
    ASSERT_EQ(scan(c, {"acme", "app"}).kind, Kind::queued);
    TriggerRequest r;
    r.job = {"acme", "app", "feature/x"};  // branch names; the client encodes them
    r.parameters = {{"SHA", "1"}};
    EXPECT_EQ(run(ioc, c->trigger(std::move(r), std::nullopt)).kind, Kind::queued);
    ASSERT_FALSE(fake.requests().empty());
    EXPECT_EQ(fake.requests().back().target,
              "/job/acme/job/app/job/feature%252Fx/buildWithParameters?delay=0sec");
}

TEST_F(JenkinsScanCancelTest, ScanKeepsASlashInsideItsSegment) {
    fake.add_multibranch({"org", FakeJenkins::branch_item_name("repo/x")}, {});
    auto c = client();
    const auto outcome = scan(c, {"org", "repo/x"});
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    ASSERT_FALSE(fake.requests().empty());
    EXPECT_EQ(fake.requests().back().target, "/job/org/job/repo%252Fx/build?delay=0sec");
    EXPECT_EQ(fake.scans({"org", "repo%2Fx"}), 1u);
}

TEST_F(JenkinsScanCancelTest, ScanOfAnUnknownProjectIsPermanent404) {
    auto c = client();
    const auto outcome = scan(c, {"nope"});
    EXPECT_EQ(outcome.kind, Kind::permanent);
    EXPECT_EQ(outcome.http_status, 404);
}

TEST_F(JenkinsScanCancelTest, ScanOfAFolderThatIsNotMultibranchIsPermanentAndSaysSo) {
    auto c = client();
    const auto outcome = scan(c, {"folder"});
    EXPECT_EQ(outcome.kind, Kind::permanent);
    EXPECT_EQ(outcome.http_status, 500);
    EXPECT_NE(outcome.detail.find("cannot be recomputed"), std::string::npos) << outcome.detail;
    EXPECT_NE(outcome.detail.find("not a multibranch project"), std::string::npos)
        << outcome.detail;
}

// A job's POST build would queue a build of it: the scan reads the item first, and a job (it
// exports nextBuildNumber) is a permanent failure with no POST at all.
TEST_F(JenkinsScanCancelTest, AJobIsNeverSentAScan) {
    auto c = client();
    const auto outcome = scan(c, {"plain"});
    EXPECT_EQ(outcome.kind, Kind::permanent);
    EXPECT_EQ(outcome.detail,
              "'plain' is a job, not a multibranch project or organization folder: no scan "
              "requested (POST build would queue a build of it)");
    EXPECT_TRUE(fake.builds().empty());
    for (const auto& r : fake.requests()) EXPECT_NE(r.method, "POST") << r.endpoint;
}

// ComputedFolder.doBuild redirects back to the project; a redirect elsewhere (a single sign-on
// proxy's login page) requested no scan, and must not count as one.
TEST_F(JenkinsScanCancelTest, ARedirectElsewhereIsNoScan) {
    fake.fail_next(1, 303);
    auto c = client();
    const auto outcome = scan(c, {"acme", "app"});
    EXPECT_EQ(outcome.kind, Kind::permanent);
    EXPECT_NE(outcome.detail.find("not back to the project (a proxy's login page?): no scan was "
                                  "requested"),
              std::string::npos)
        << outcome.detail;
}

TEST_F(JenkinsScanCancelTest, ScanOfADisabledProjectIsPermanent) {
    fake.set_job_buildable({"acme", "app"}, false);
    auto c = client();
    const auto outcome = scan(c, {"acme", "app"});
    EXPECT_EQ(outcome.kind, Kind::permanent);
    EXPECT_EQ(outcome.http_status, 500);
    EXPECT_EQ(fake.scans({"acme", "app"}), 0u);
}

TEST_F(JenkinsScanCancelTest, ScanWithAWrongApiTokenIsAuthFailed) {
    fake.set_api_token("rotated");
    auto c = client();
    const auto outcome = scan(c, {"acme", "app"});
    EXPECT_EQ(outcome.kind, Kind::auth_failed);
    EXPECT_EQ(outcome.http_status, 401);
    EXPECT_EQ(outcome.detail.find("fake-api-token"), std::string::npos);
}

TEST_F(JenkinsScanCancelTest, ScanThrottledCarriesItsRetryAfter) {
    fake.fail_next(1, 429, "7");
    auto c = client();
    const auto outcome = scan(c, {"acme", "app"});
    EXPECT_EQ(outcome.kind, Kind::throttled);
    ASSERT_TRUE(outcome.retry_after.has_value());
    EXPECT_EQ(*outcome.retry_after, std::chrono::seconds(7));
}

TEST_F(JenkinsScanCancelTest, ScanWhileJenkinsRestartsIsUnavailable) {
    fake.set_restarting(true);
    auto c = client();
    EXPECT_EQ(scan(c, {"acme", "app"}).kind, Kind::unavailable);
}

TEST_F(JenkinsScanCancelTest, EmptyProjectIsPermanentWithoutARequest) {
    auto c = client();
    const auto outcome = scan(c, {});
    EXPECT_EQ(outcome.kind, Kind::permanent);
    EXPECT_TRUE(fake.requests().empty());
}

TEST_F(JenkinsScanCancelTest, AnonymousScanSendsACrumbAndIsRefusedPermanently) {
    auto c = client(/*with_user=*/false);
    const auto outcome = scan(c, {"acme", "app"});
    EXPECT_EQ(outcome.kind, Kind::permanent) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 403);
    const auto requests = fake.requests();
    ASSERT_GE(requests.size(), 3u);
    EXPECT_EQ(requests[0].endpoint, "api");  // what the item is
    EXPECT_EQ(requests[1].endpoint, "crumbIssuer");
    EXPECT_EQ(requests[2].header("Jenkins-Crumb").size(), 64u);
    EXPECT_EQ(requests[2].header("Cookie").rfind(fake.cookie_name() + "=", 0), 0u);
    EXPECT_EQ(requests[2].status, 403);
    EXPECT_EQ(fake.scans({"acme", "app"}), 0u);
}

TEST_F(JenkinsScanCancelTest, ScanWhenTheUserCannotReadJenkinsIsAuthFailed) {
    fake.set_read_denied(true);
    auto c = client();
    EXPECT_EQ(scan(c, {"acme", "app"}).kind, Kind::auth_failed);
}

TEST_F(JenkinsScanCancelTest, CancelOfAWaitingItemIsQueuedOn204) {
    auto c = client();
    queue_plain(c);
    const auto outcome = cancel(c, 1);
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 204);
    EXPECT_EQ(fake.cancelled_items(), std::vector<std::int64_t>{1});
    const auto requests = fake.requests();
    ASSERT_EQ(requests.size(), 2u);
    const auto& post = requests.back();
    EXPECT_EQ(post.method, "POST");
    EXPECT_EQ(post.target, "/queue/cancelItem?id=1");
}

TEST_F(JenkinsScanCancelTest, CancelOfAStartedOrUnknownItemIsPermanent404) {
    auto c = client();
    queue_plain(c);
    fake.drain_queue();
    const auto started = cancel(c, 1);
    EXPECT_EQ(started.kind, Kind::permanent);
    EXPECT_EQ(started.http_status, 404);
    EXPECT_NE(started.detail.find("not in the queue"), std::string::npos) << started.detail;
    EXPECT_EQ(cancel(c, 42).http_status, 404);
    EXPECT_TRUE(fake.cancelled_items().empty());
}

TEST_F(JenkinsScanCancelTest, CancelWithAWrongApiTokenIsAuthFailed) {
    auto c = client();
    queue_plain(c);
    fake.set_api_token("rotated");
    EXPECT_EQ(cancel(c, 1).kind, Kind::auth_failed);
    EXPECT_TRUE(fake.cancelled_items().empty());
}

TEST_F(JenkinsScanCancelTest, CancelWhileJenkinsRestartsIsUnavailable) {
    auto c = client();
    queue_plain(c);
    fake.set_restarting(true);
    EXPECT_EQ(cancel(c, 1).kind, Kind::unavailable);
}

TEST_F(JenkinsScanCancelTest, AnonymousCancelRefetchesAStaleCrumbOnceAndIsNotCancellable) {
    queue_plain(client());
    auto c = client(/*with_user=*/false);
    const auto first = cancel(c, 1);
    EXPECT_EQ(first.kind, Kind::permanent) << first.detail;
    EXPECT_EQ(first.http_status, 422);
    fake.invalidate_sessions();
    const auto second = cancel(c, 1);
    EXPECT_EQ(second.http_status, 422) << second.detail;
    auto requests = fake.requests();
    // trigger, crumb, cancel 422, cancel 403 (stale crumb), crumb, cancel 422
    ASSERT_EQ(requests.size(), 6u);
    EXPECT_EQ(requests[3].status, 403);
    EXPECT_EQ(requests[4].endpoint, "crumbIssuer");
    EXPECT_EQ(requests[5].status, 422);
    EXPECT_EQ(count_endpoint(requests, "crumbIssuer"), 2u);
    EXPECT_TRUE(fake.cancelled_items().empty());
}

}  // namespace
}  // namespace hookrelay::jenkins
