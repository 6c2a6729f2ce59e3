// The forge status client against the fake GitHub/GitLab status API (a real loopback server).
#include "fakes/fake_forge_api.hpp"
#include "fakes/test_ca.hpp"
#include "forge_status/status_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <optional>

namespace hookrelay::forge_status {
namespace {

namespace asio = boost::asio;
using Kind = PostResult::Kind;
using test::FakeForgeApi;
using namespace std::chrono_literals;

const std::string k_sha = "9fceb02d0ae598e95dc970b74767f19372d61af8";

// Runs one coroutine to completion on `ioc`.
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

SourceConfig source_of(Provider provider, std::string api_url, std::string token) {
    SourceConfig source;
    source.name = "forge";
    source.provider = provider;
    source.status.emplace();
    source.status->token = Secret(std::move(token));
    source.status->api_url = std::move(api_url);
    return source;
}

class StatusClientTest : public ::testing::Test {
  protected:
    std::shared_ptr<StatusClient> client(Provider provider, std::string api_url,
                                         std::string token = "fake-forge-token",
                                         std::string ca_file = "") {
        auto source = source_of(provider, std::move(api_url), std::move(token));
        source.status->ca_file = std::move(ca_file);
        std::string why;
        auto made = make_status_client(ioc.get_executor(), source, &why);
        EXPECT_TRUE(made) << why;
        return made ? *made : nullptr;
    }
    std::shared_ptr<StatusClient> github() { return client(Provider::github, fake.url()); }
    std::shared_ptr<StatusClient> gitlab() {
        return client(Provider::gitlab, fake.url() + "api/v4");
    }
    PostResult post(const std::shared_ptr<StatusClient>& c, StatusTarget target, StatusWish wish) {
        return run(ioc, c->post(std::move(target), std::move(wish)));
    }

    FakeForgeApi fake;
    asio::io_context ioc;
};

TEST_F(StatusClientTest, GithubPostIsRecordedWithMappedStateAndContext) {
    const auto r = post(github(), {"acme/app", k_sha, "hookrelay/build"},
                        {"running", "Build #7 is running", "https://ci.example.com/job/app/7/"});

    EXPECT_EQ(r.kind, Kind::posted) << r.detail;
    EXPECT_EQ(r.http_status, 201);
    const auto statuses = fake.statuses();
    ASSERT_EQ(statuses.size(), 1u);
    EXPECT_EQ(statuses[0].forge, "github");
    EXPECT_EQ(statuses[0].target, "/repos/acme/app/statuses/" + k_sha);
    EXPECT_EQ(statuses[0].repository, "acme/app");
    EXPECT_EQ(statuses[0].sha, k_sha);
    EXPECT_EQ(statuses[0].state, "pending");
    EXPECT_EQ(statuses[0].context, "hookrelay/build");
    EXPECT_EQ(statuses[0].description, "Build #7 is running");
    EXPECT_EQ(statuses[0].target_url, "https://ci.example.com/job/app/7/");
    EXPECT_EQ(statuses[0].header("Accept"), "application/vnd.github+json");
    EXPECT_EQ(statuses[0].header("X-GitHub-Api-Version"), "2022-11-28");
}

TEST_F(StatusClientTest, GithubEnterprisePostGoesUnderTheApiPath) {
    auto c = client(Provider::github, fake.url() + "api/v3");
    const auto r = post(c, {"acme/app", k_sha, "ci"}, {"success", "Build #7 succeeded", ""});

    EXPECT_EQ(r.kind, Kind::posted) << r.detail;
    const auto statuses = fake.statuses();
    ASSERT_EQ(statuses.size(), 1u);
    EXPECT_EQ(statuses[0].target, "/api/v3/repos/acme/app/statuses/" + k_sha);
    EXPECT_EQ(statuses[0].state, "success");
}

TEST_F(StatusClientTest, GitlabRunningThenSuccessAreBothPosted) {
    auto c = gitlab();
    const auto running =
        post(c, {"group/app", k_sha, "hookrelay/build"}, {"running", "Build #7 is running", ""});
    const auto success =
        post(c, {"group/app", k_sha, "hookrelay/build"}, {"success", "Build #7 succeeded", ""});

    EXPECT_EQ(running.kind, Kind::posted) << running.detail;
    EXPECT_EQ(success.kind, Kind::posted) << success.detail;
    const auto statuses = fake.statuses();
    ASSERT_EQ(statuses.size(), 2u);
    EXPECT_EQ(statuses[0].forge, "gitlab");
    EXPECT_EQ(statuses[0].target, "/api/v4/projects/group%2Fapp/statuses/" + k_sha);
    EXPECT_EQ(statuses[0].repository, "group/app");
    EXPECT_EQ(statuses[0].state, "running");
    EXPECT_EQ(statuses[0].context, "hookrelay/build");
    EXPECT_EQ(statuses[1].state, "success");
    EXPECT_EQ(statuses[0].header("PRIVATE-TOKEN"), "fake-forge-token");
}

TEST_F(StatusClientTest, GitlabFailureIsPostedAsFailed) {
    const auto r = post(gitlab(), {"42", k_sha, "ci"}, {"failure", "Build #8 failed", ""});

    EXPECT_EQ(r.kind, Kind::posted) << r.detail;
    const auto statuses = fake.statuses();
    ASSERT_EQ(statuses.size(), 1u);
    EXPECT_EQ(statuses[0].target, "/api/v4/projects/42/statuses/" + k_sha);
    EXPECT_EQ(statuses[0].state, "failed");
}

TEST_F(StatusClientTest, GitlabBackwardsTransitionIsIgnored) {
    auto c = gitlab();
    ASSERT_EQ(post(c, {"group/app", k_sha, "ci"}, {"running", "running", ""}).kind, Kind::posted);
    const auto r = post(c, {"group/app", k_sha, "ci"}, {"pending", "queued again", ""});

    EXPECT_EQ(r.kind, Kind::ignored) << r.detail;
    EXPECT_EQ(r.http_status, 400);
    EXPECT_EQ(r.detail,
              "HTTP 400 Bad Request: Cannot transition status via :enqueue from :running");
    EXPECT_EQ(fake.statuses().size(), 1u);
}

TEST_F(StatusClientTest, GitlabRepeatedRunningIsIgnored) {
    auto c = gitlab();
    ASSERT_EQ(post(c, {"group/app", k_sha, "ci"}, {"running", "running", ""}).kind, Kind::posted);
    const auto r = post(c, {"group/app", k_sha, "ci"}, {"running", "still running", ""});

    EXPECT_EQ(r.kind, Kind::ignored) << r.detail;
    EXPECT_EQ(r.detail, "HTTP 400 Bad Request: Cannot transition status via :run from :running");
}

TEST_F(StatusClientTest, GitlabPostAfterAFinishedStatusStartsAfresh) {
    // GitLab updates only an open (pending or running) status; after success a new post makes
    // a new job (a replayed trigger's build shows running again).
    auto c = gitlab();
    ASSERT_EQ(post(c, {"group/app", k_sha, "ci"}, {"running", "#7", ""}).kind, Kind::posted);
    ASSERT_EQ(post(c, {"group/app", k_sha, "ci"}, {"success", "#7", ""}).kind, Kind::posted);
    const auto r = post(c, {"group/app", k_sha, "ci"}, {"running", "#8", ""});

    EXPECT_EQ(r.kind, Kind::posted) << r.detail;
    EXPECT_EQ(fake.statuses().size(), 3u);
}

TEST_F(StatusClientTest, GitlabStatusesOfOtherNamesAreApart) {
    auto c = gitlab();
    ASSERT_EQ(post(c, {"group/app", k_sha, "a"}, {"running", "", ""}).kind, Kind::posted);
    const auto r = post(c, {"group/app", k_sha, "b"}, {"pending", "", ""});

    EXPECT_EQ(r.kind, Kind::posted) << r.detail;
}

TEST_F(StatusClientTest, WrongTokenIsRefusedWithoutTheTokenInTheDetail) {
    auto c = client(Provider::github, fake.url(), "ghp_wrong-s3cr3t");
    const auto r = post(c, {"acme/app", k_sha, "ci"}, {"pending", "queued", ""});

    EXPECT_EQ(r.kind, Kind::refused);
    EXPECT_EQ(r.http_status, 401);
    EXPECT_EQ(r.detail, "HTTP 401 Unauthorized: Bad credentials");
    EXPECT_EQ(r.detail.find("s3cr3t"), std::string::npos);
    EXPECT_TRUE(fake.statuses().empty());
}

TEST_F(StatusClientTest, GitlabWrongTokenIsRefused) {
    auto c = client(Provider::gitlab, fake.url() + "api/v4", "glpat-wrong");
    const auto r = post(c, {"group/app", k_sha, "ci"}, {"pending", "queued", ""});

    EXPECT_EQ(r.kind, Kind::refused);
    EXPECT_EQ(r.detail, "HTTP 401 Unauthorized: 401 Unauthorized");
}

TEST_F(StatusClientTest, ServiceUnavailableIsRetried) {
    fake.fail_next(1, 503);
    auto c = github();
    const auto first = post(c, {"acme/app", k_sha, "ci"}, {"pending", "queued", ""});
    const auto second = post(c, {"acme/app", k_sha, "ci"}, {"pending", "queued", ""});

    EXPECT_EQ(first.kind, Kind::retry);
    EXPECT_EQ(first.http_status, 503);
    EXPECT_EQ(first.detail, "HTTP 503 Service Unavailable: Service Unavailable");
    EXPECT_EQ(second.kind, Kind::posted) << second.detail;
}

TEST_F(StatusClientTest, TooManyRequestsIsRetriedAfterWhatTheForgeSays) {
    fake.fail_next(1, 429, "7");
    const auto r = post(gitlab(), {"group/app", k_sha, "ci"}, {"pending", "queued", ""});

    EXPECT_EQ(r.kind, Kind::retry);
    EXPECT_EQ(r.http_status, 429);
    EXPECT_EQ(r.retry_after, std::chrono::milliseconds(7s));
}

TEST_F(StatusClientTest, GithubSecondaryRateLimitIsRetried) {
    fake.fail_next(
        1, 403, "",
        R"({"message":"You have exceeded a secondary rate limit. Please wait a few )"
        R"(minutes before you try again.","documentation_url":"https://docs.github.com"})");
    const auto r = post(github(), {"acme/app", k_sha, "ci"}, {"pending", "queued", ""});

    EXPECT_EQ(r.kind, Kind::retry);
    EXPECT_EQ(r.http_status, 403);
    ASSERT_TRUE(r.retry_after);
    EXPECT_GE(*r.retry_after, std::chrono::milliseconds(1min));
}

TEST_F(StatusClientTest, GithubForbiddenWithRetryAfterIsRetriedThen) {
    fake.fail_next(1, 403, "30");
    const auto r = post(github(), {"acme/app", k_sha, "ci"}, {"pending", "queued", ""});

    EXPECT_EQ(r.kind, Kind::retry);
    EXPECT_EQ(r.retry_after, std::chrono::milliseconds(30s));
}

TEST_F(StatusClientTest, GithubPrimaryRateLimitWaitsForTheReset) {
    const auto reset = std::chrono::duration_cast<std::chrono::seconds>(
                           (std::chrono::system_clock::now() + 120s).time_since_epoch())
                           .count();
    fake.fail_next(1, 403, "", R"({"message":"API rate limit exceeded for user ID 1."})",
                   {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", std::to_string(reset)}});
    const auto r = post(github(), {"acme/app", k_sha, "ci"}, {"pending", "queued", ""});

    EXPECT_EQ(r.kind, Kind::retry);
    ASSERT_TRUE(r.retry_after);
    EXPECT_GT(*r.retry_after, std::chrono::milliseconds(100s));
    EXPECT_LE(*r.retry_after, std::chrono::milliseconds(121s));
}

TEST_F(StatusClientTest, GithubForbiddenWithoutRateLimitIsRefused) {
    fake.fail_next(1, 403, "", R"({"message":"Resource not accessible by integration"})");
    const auto r = post(github(), {"acme/app", k_sha, "ci"}, {"pending", "queued", ""});

    EXPECT_EQ(r.kind, Kind::refused);
    EXPECT_EQ(r.detail, "HTTP 403 Forbidden: Resource not accessible by integration");
}

TEST_F(StatusClientTest, RefusedConnectionIsRetriedAndTheForgeIsReachedOnceBack) {
    auto c = github();
    fake.set_down(true);
    const auto down = post(c, {"acme/app", k_sha, "ci"}, {"pending", "queued", ""});
    fake.set_down(false);
    const auto back = post(c, {"acme/app", k_sha, "ci"}, {"pending", "queued", ""});

    EXPECT_EQ(down.kind, Kind::retry);
    EXPECT_EQ(down.http_status, 0);
    EXPECT_EQ(down.detail,
              "connect 127.0.0.1:" + std::to_string(fake.port()) + ": Connection refused");
    EXPECT_EQ(back.kind, Kind::posted) << back.detail;
    EXPECT_TRUE(fake.wait_for_statuses(1, 5s));
}

TEST_F(StatusClientTest, FakeRecordsRefusedPostsToo) {
    auto c = client(Provider::github, fake.url(), "wrong");
    post(c, {"acme/app", k_sha, "ci"}, {"pending", "queued", ""});

    ASSERT_TRUE(fake.wait_for_posts(1, 5s));
    EXPECT_EQ(fake.posts()[0].status, 401);
    EXPECT_TRUE(fake.statuses().empty());
}

class TempDir {
  public:
    TempDir() {
        std::string templ =
            (std::filesystem::temp_directory_path() / "forge-status-XXXXXX").string();
        path_ = ::mkdtemp(templ.data());
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

TEST(StatusClientTls, PostsOverTlsVerifiedAgainstCaFile) {
    TempDir dir;
    const auto certs = test::make_test_certificates(dir.path());
    FakeForgeApi::Options options;
    options.tls = true;
    options.cert_file = certs.cert_file;
    options.key_file = certs.key_file;
    FakeForgeApi fake(options);
    asio::io_context ioc;
    auto source = source_of(Provider::github, fake.url(), "fake-forge-token");
    source.status->ca_file = certs.ca_file;
    std::string why;
    auto made = make_status_client(ioc.get_executor(), source, &why);
    ASSERT_TRUE(made) << why;

    const auto r = run(ioc, (*made)->post({"acme/app", k_sha, "ci"}, {"success", "ok", ""}));

    EXPECT_EQ(r.kind, Kind::posted) << r.detail;
    EXPECT_EQ(fake.statuses().size(), 1u);
}

TEST(StatusClientTls, UnknownCertificateIsRetriedWithTheReason) {
    TempDir dir;
    const auto certs = test::make_test_certificates(dir.path() + "/server");
    const auto other = test::make_test_certificates(dir.path() + "/other");
    FakeForgeApi::Options options;
    options.tls = true;
    options.cert_file = certs.cert_file;
    options.key_file = certs.key_file;
    FakeForgeApi fake(options);
    asio::io_context ioc;
    auto source = source_of(Provider::github, fake.url(), "fake-forge-token");
    source.status->ca_file = other.ca_file;
    std::string why;
    auto made = make_status_client(ioc.get_executor(), source, &why);
    ASSERT_TRUE(made) << why;

    const auto r = run(ioc, (*made)->post({"acme/app", k_sha, "ci"}, {"success", "ok", ""}));

    EXPECT_EQ(r.kind, Kind::retry);
    EXPECT_NE(r.detail.find("certificate verify failed"), std::string::npos) << r.detail;
    EXPECT_TRUE(fake.posts().empty());
}

}  // namespace
}  // namespace hookrelay::forge_status
