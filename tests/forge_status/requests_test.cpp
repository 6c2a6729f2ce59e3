// The pure pieces of the forge status client: states, descriptions, request targets and bodies,
// and the reading of the forges' answers.
#include "forge_status/requests.hpp"
#include "forge_status/status_client.hpp"
#include "httpclient/encoding.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

namespace hookrelay::forge_status {
namespace {

using Kind = PostResult::Kind;
using namespace std::chrono_literals;

const std::string k_sha = "9fceb02d0ae598e95dc970b74767f19372d61af8";
const auto k_now = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));

std::size_t code_points(std::string_view text) {
    std::size_t n = 0;
    for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
    return n;
}

std::string repeat(std::string_view unit, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out += unit;
    return out;
}

httpclient::Response answer(int status, std::string body,
                            std::vector<std::pair<std::string, std::string>> headers = {}) {
    httpclient::Response r;
    r.status = status;
    r.body = std::move(body);
    r.headers = std::move(headers);
    return r;
}

std::string path_of(Provider provider, std::string_view api_url) {
    std::string why;
    const auto base = httpclient::parse_base_url(base_url_for(provider, api_url), why);
    EXPECT_TRUE(base) << why;
    return base ? base->path : "";
}

TEST(ForgeStatusStates, GithubShowsRunningAsPendingAndCanceledAsError) {
    EXPECT_EQ(github_state("pending"), "pending");
    EXPECT_EQ(github_state("running"), "pending");
    EXPECT_EQ(github_state("success"), "success");
    EXPECT_EQ(github_state("failure"), "failure");
    EXPECT_EQ(github_state("error"), "error");
    EXPECT_EQ(github_state("canceled"), "error");
}

TEST(ForgeStatusStates, GitlabShowsFailureAndErrorAsFailed) {
    EXPECT_EQ(gitlab_state("pending"), "pending");
    EXPECT_EQ(gitlab_state("running"), "running");
    EXPECT_EQ(gitlab_state("success"), "success");
    EXPECT_EQ(gitlab_state("failure"), "failed");
    EXPECT_EQ(gitlab_state("error"), "failed");
    EXPECT_EQ(gitlab_state("canceled"), "canceled");
}

TEST(ForgeStatusStates, UnknownStateHasNoForgeState) {
    EXPECT_EQ(github_state("failed"), "");
    EXPECT_EQ(gitlab_state("skipped"), "");
    EXPECT_EQ(github_state(""), "");
}

TEST(ForgeStatusShorten, KeepsTextWithinTheLimitAsItIs) {
    const auto text = repeat("\xC3\xA9", 140);  // é: 280 bytes, 140 characters
    EXPECT_EQ(shorten(text), text);
    EXPECT_EQ(shorten("Build #12 succeeded"), "Build #12 succeeded");
}

TEST(ForgeStatusShorten, CutsLongTextOnACharacterBoundaryWithAnEllipsis) {
    const auto text = repeat("\xC3\xA9", 141);
    const auto cut = shorten(text);
    EXPECT_EQ(code_points(cut), 140u);
    EXPECT_EQ(cut, repeat("\xC3\xA9", 139) + "\xE2\x80\xA6");
}

TEST(ForgeStatusShorten, CountsFourByteCharactersAsOne) {
    const std::string rocket = "\xF0\x9F\x9A\x80";
    const auto cut = shorten("ab" + repeat(rocket, 10), 5);
    EXPECT_EQ(cut, "ab" + rocket + rocket + "\xE2\x80\xA6");
}

TEST(ForgeStatusShorten, ZeroLimitGivesNothing) {
    EXPECT_EQ(shorten("abc", 0), "");
}

TEST(ForgeStatusUrls, DefaultApiUrlsOfGithubAndGitlab) {
    EXPECT_EQ(default_api_url(Provider::github), "https://api.github.com");
    EXPECT_EQ(default_api_url(Provider::gitlab), "https://gitlab.com/api/v4");
    EXPECT_EQ(default_api_url(Provider::gitea), "");
}

TEST(ForgeStatusUrls, BitbucketCloudHasADefaultApiUrlTheSelfHostedForgesDoNot) {
    EXPECT_EQ(default_api_url(Provider::bitbucket_cloud), "https://api.bitbucket.org/2.0");
    EXPECT_EQ(default_api_url(Provider::forgejo), "");
    EXPECT_EQ(default_api_url(Provider::bitbucket_server), "");
    EXPECT_EQ(default_api_url(Provider::generic), "");
}

TEST(ForgeStatusUrls, BitbucketCloudTargetUnderTheApiRoot) {
    std::string why;
    const auto target = bitbucket_cloud_target(path_of(Provider::bitbucket_cloud, ""),
                                               "my-workspace/my repo", k_sha, why);
    ASSERT_TRUE(target) << why;
    EXPECT_EQ(*target,
              "/2.0/repositories/my-workspace/my%20repo/commit/" + k_sha + "/statuses/build");
    EXPECT_FALSE(bitbucket_cloud_target("/2.0/", "repo", k_sha, why));
    EXPECT_EQ(why, "repository 'repo' is not workspace/repo_slug");
}

TEST(ForgeStatusUrls, BitbucketDataCenterTargetUnderItsContextPath) {
    std::string why;
    const auto target = bitbucket_server_target(
        path_of(Provider::bitbucket_server, "https://git.example.com/bitbucket"), "~JDOE/app",
        k_sha, why);
    ASSERT_TRUE(target) << why;
    EXPECT_EQ(*target,
              "/bitbucket/rest/api/latest/projects/~JDOE/repos/app/commits/" + k_sha + "/builds");
    EXPECT_FALSE(bitbucket_server_target("/", "PROJ/app", "", why));
    EXPECT_EQ(why, "no commit sha");
}

TEST(ForgeStatusUrls, BitbucketCommitPagesForStatusesWithoutABuild) {
    EXPECT_EQ(bitbucket_commit_page(Provider::bitbucket_cloud, "https://api.bitbucket.org/2.0/",
                                    "ws/app", k_sha),
              "https://bitbucket.org/ws/app/commits/" + k_sha);
    EXPECT_EQ(bitbucket_commit_page(Provider::bitbucket_server,
                                    "https://git.example.com:8443/bitbucket/", "PROJ/app", k_sha),
              "https://git.example.com:8443/bitbucket/projects/PROJ/repos/app/commits/" + k_sha);
    EXPECT_EQ(bitbucket_commit_page(Provider::bitbucket_server, "https://h/", "app", k_sha), "");
}

TEST(ForgeStatusUrls, GithubTargetUnderTheApiRoot) {
    std::string why;
    const auto target = github_target(path_of(Provider::github, ""), "acme/app", k_sha, why);
    ASSERT_TRUE(target) << why;
    EXPECT_EQ(*target, "/repos/acme/app/statuses/" + k_sha);
}

TEST(ForgeStatusUrls, GithubEnterpriseApiUrlKeepsItsPath) {
    std::string why;
    const auto base = path_of(Provider::github, "https://ghe.example.com/api/v3");
    EXPECT_EQ(base, "/api/v3/");
    const auto target = github_target(base, "acme/app", k_sha, why);
    ASSERT_TRUE(target) << why;
    EXPECT_EQ(*target, "/api/v3/repos/acme/app/statuses/" + k_sha);
    // The same with the trailing slash written.
    EXPECT_EQ(path_of(Provider::github, "https://ghe.example.com/api/v3/"), "/api/v3/");
}

TEST(ForgeStatusUrls, GithubRefusesARepositoryThatIsNotOwnerSlashRepo) {
    std::string why;
    EXPECT_FALSE(github_target("/", "app", k_sha, why));
    EXPECT_EQ(why, "repository 'app' is not owner/repo");
    EXPECT_FALSE(github_target("/", "acme/app/x", k_sha, why));
    EXPECT_FALSE(github_target("/", "/app", k_sha, why));
    EXPECT_FALSE(github_target("/", "acme/app", "", why));
}

TEST(ForgeStatusUrls, GitlabProjectPathIsEncodedWhole) {
    std::string why;
    const auto target =
        gitlab_target(path_of(Provider::gitlab, ""), "group/sub group/app.v2", k_sha, why);
    ASSERT_TRUE(target) << why;
    EXPECT_EQ(*target, "/api/v4/projects/group%2Fsub%20group%2Fapp.v2/statuses/" + k_sha);
}

TEST(ForgeStatusUrls, GitlabNumericProjectIdAsItIs) {
    std::string why;
    const auto target = gitlab_target(
        path_of(Provider::gitlab, "https://git.example.com/gitlab/api/v4"), "42", k_sha, why);
    ASSERT_TRUE(target) << why;
    EXPECT_EQ(*target, "/gitlab/api/v4/projects/42/statuses/" + k_sha);
}

TEST(ForgeStatusBodies, GithubBodyCarriesMappedStateAndContext) {
    const StatusTarget target{"acme/app", k_sha, "hookrelay/build"};
    const StatusWish wish{"running", "Build #7 is running", "https://ci.example.com/job/app/7/"};
    const auto body = github_body(target, wish);
    ASSERT_TRUE(body);
    EXPECT_EQ(boost::json::parse(*body), boost::json::parse(R"({"state":"pending",
        "target_url":"https://ci.example.com/job/app/7/","description":"Build #7 is running",
        "context":"hookrelay/build"})"));
}

TEST(ForgeStatusBodies, GithubBodyLeavesOutAnEmptyTargetUrlAndShortensTheDescription) {
    const StatusTarget target{"acme/app", k_sha, "ci"};
    const StatusWish wish{"success", std::string(300, 'x'), ""};
    const auto body = github_body(target, wish);
    ASSERT_TRUE(body);
    const auto json = boost::json::parse(*body).as_object();
    EXPECT_FALSE(json.contains("target_url"));
    EXPECT_EQ(code_points(std::string(json.at("description").as_string())), 140u);
}

TEST(ForgeStatusBodies, GitlabBodyCarriesNameRefAndGitlabState) {
    const StatusTarget target{"group/app", k_sha, "hookrelay/build", "feature/x"};
    const StatusWish wish{"error", "Jenkins refused the build", ""};
    const auto body = gitlab_body(target, wish);
    ASSERT_TRUE(body);
    EXPECT_EQ(boost::json::parse(*body), boost::json::parse(R"({"state":"failed",
        "name":"hookrelay/build","ref":"feature/x","description":"Jenkins refused the build"})"));
    // An event that names no branch or tag: GitLab picks the pipeline itself.
    const auto without = gitlab_body({"group/app", k_sha, "hookrelay/build", ""}, wish);
    ASSERT_TRUE(without);
    EXPECT_FALSE(boost::json::parse(*without).as_object().contains("ref"));
}

// GitLab answers 400 to a target_url over 255 characters, which would drop the status: such a
// link is left out, one of 255 kept.
TEST(ForgeStatusBodies, GitlabBodyLeavesOutATargetUrlOverTwoHundredFiftyFiveCharacters) {
    const StatusTarget target{"group/app", k_sha, "hookrelay/build"};
    const std::string base = "https://ci.example.com/job/group/job/app/job/";
    const std::string fits = base + std::string(255 - base.size() - 4, 'b') + "/17/";
    ASSERT_EQ(fits.size(), 255u);
    auto body = gitlab_body(target, {"running", "Build #17 running", fits});
    ASSERT_TRUE(body);
    EXPECT_EQ(boost::json::parse(*body).at("target_url"), fits.c_str());
    body = gitlab_body(target,
                       {"running", "Build #17 running", base + "b" + fits.substr(base.size())});
    ASSERT_TRUE(body);
    const auto json = boost::json::parse(*body).as_object();
    EXPECT_FALSE(json.contains("target_url"));
    EXPECT_EQ(json.at("state"), "running");
}

TEST(ForgeStatusBodies, UnknownStateMakesNoBody) {
    EXPECT_FALSE(github_body({"a/b", k_sha, "c"}, {"done", "", ""}));
    EXPECT_FALSE(gitlab_body({"a/b", k_sha, "c"}, {"done", "", ""}));
    EXPECT_FALSE(bitbucket_body(Provider::bitbucket_cloud, {"a/b", k_sha, "c"}, {"done", "", ""},
                                "https://x/"));
}

TEST(ForgeStatusBodies, BitbucketBodyKeysTheStatusByContextAndAlwaysHasAUrl) {
    const StatusTarget target{"ws/app", k_sha, "hookrelay/build", "main"};
    auto body = bitbucket_body(Provider::bitbucket_cloud, target,
                               {"running", "Build #7 running", "https://ci.example.com/job/app/7/"},
                               "https://bitbucket.org/ws/app/commits/" + k_sha);
    ASSERT_TRUE(body);
    EXPECT_EQ(boost::json::parse(*body), boost::json::parse(R"({"key":"hookrelay/build",
        "name":"hookrelay/build","state":"INPROGRESS","url":"https://ci.example.com/job/app/7/",
        "description":"Build #7 running"})"));
    // Queued, held or not delivered: no build yet, so the commit's page.
    body = bitbucket_body(Provider::bitbucket_server, target,
                          {"pending", std::string(300, 'x'), ""}, "https://git/commit");
    ASSERT_TRUE(body);
    const auto json = boost::json::parse(*body).as_object();
    EXPECT_EQ(json.at("url"), "https://git/commit");
    EXPECT_EQ(code_points(std::string(json.at("description").as_string())), 140u);
}

// Bitbucket Cloud refuses a key over 40 characters (400), which would drop every status of the
// rule: a longer context is keyed by its hash, the same for every post; the name shows it whole.
TEST(ForgeStatusBodies, BitbucketCloudKeysALongContextByItsHash) {
    const std::string context = "hookrelay/build-pull-requests/app/app-unit-tests";
    const auto key = bitbucket_key(Provider::bitbucket_cloud, context);
    EXPECT_EQ(key.size(), 40u);
    EXPECT_TRUE(key.starts_with("hookrelay-")) << key;
    EXPECT_EQ(key.find_first_not_of("0123456789abcdef", 10), std::string::npos) << key;
    EXPECT_EQ(bitbucket_key(Provider::bitbucket_cloud, context), key);
    EXPECT_NE(bitbucket_key(Provider::bitbucket_cloud, context + "2"), key);
    EXPECT_EQ(bitbucket_key(Provider::bitbucket_cloud, std::string(40, 'k')), std::string(40, 'k'));
    EXPECT_EQ(bitbucket_key(Provider::bitbucket_server, context), context);
    const auto body = bitbucket_body(Provider::bitbucket_cloud, {"ws/app", k_sha, context},
                                     {"success", "Build #1 SUCCESS", "https://ci.example.com/1/"},
                                     "https://x.example/");
    ASSERT_TRUE(body);
    const auto json = boost::json::parse(*body).as_object();
    EXPECT_EQ(json.at("key"), key.c_str());
    EXPECT_EQ(json.at("name"), context.c_str());
}

// A link Bitbucket would refuse gives way to the commit's page: over 450 characters, and on Cloud
// a host without a dot (a Jenkins known by its short name).
TEST(ForgeStatusBodies, BitbucketLinksTheCommitWhenItWouldRefuseTheBuildsUrl) {
    const StatusTarget target{"ws/app", k_sha, "hookrelay/build"};
    const auto url_of = [&](Provider p, const std::string& url) {
        const auto body = bitbucket_body(p, target, {"running", "Build #3 running", url},
                                         "https://commit.example/");
        return body ? std::string(boost::json::parse(*body).at("url").as_string()) : "";
    };
    const auto cloud = Provider::bitbucket_cloud;
    const auto server = Provider::bitbucket_server;
    EXPECT_EQ(url_of(cloud, "http://jenkins:8080/job/app/3/"), "https://commit.example/");
    // Django's rules: a top level of two or more letters, no underscores.
    for (const char* refused : {"http://jenkins.ns1:8080/job/app/3/", "http://ci.k8s/job/app/3/",
                                "http://jenkins.x/job/app/3/", "http://my_ci.corp.example/3/",
                                "http://-ci.example.com/3/", "http://ci..example.com/3/",
                                "http://999.1.1.1/3/", "ci.example.com/job/app/3/"}) {
        EXPECT_EQ(url_of(cloud, refused), "https://commit.example/") << refused;
    }
    for (const char* taken :
         {"http://user:pw@ci.example.com/job/app/3/", "https://CI.Example.COM./job/app/3/",
          "http://LOCALHOST:8080/3/", "http://ci.example.xn--p1ai/3/",
          "https://jenkins.intra-net.example.co.uk:8443/job/a/3/?x=1"}) {
        EXPECT_EQ(url_of(cloud, taken), taken) << taken;
    }
    EXPECT_EQ(url_of(server, "http://jenkins:8080/job/app/3/"), "http://jenkins:8080/job/app/3/");
    EXPECT_EQ(url_of(cloud, "http://localhost:8080/job/app/3/"),
              "http://localhost:8080/job/app/3/");
    EXPECT_EQ(url_of(cloud, "http://10.0.0.5:8080/job/app/3/"), "http://10.0.0.5:8080/job/app/3/");
    EXPECT_EQ(url_of(cloud, "http://[fd00::5]:8080/job/app/3/"),
              "http://[fd00::5]:8080/job/app/3/");
    EXPECT_EQ(url_of(cloud, "https://ci.example.com/job/app/3/"),
              "https://ci.example.com/job/app/3/");
    const std::string base = "https://ci.example.com/job/";
    const std::string fits = base + std::string(450 - base.size() - 3, 'b') + "/3/";
    ASSERT_EQ(fits.size(), 450u);
    EXPECT_EQ(url_of(server, fits), fits);
    EXPECT_EQ(url_of(server, fits + "x"), "https://commit.example/");
    // A context past Bitbucket's 255 characters for a name is shortened.
    const auto body = bitbucket_body(server, {"ws/app", k_sha, std::string(300, 'c')},
                                     {"success", "ok", ""}, "https://commit.example/");
    ASSERT_TRUE(body);
    EXPECT_EQ(code_points(std::string(boost::json::parse(*body).at("name").as_string())), 255u);
}

TEST(ForgeStatusUrls, CheckDoubtsAnApiUrlWhereTheForgesApiIsNot) {
    const auto doubt = [](Provider p, std::string api_url) {
        SourceConfig source;
        source.name = "forge";
        source.provider = p;
        source.status.emplace();
        source.status->api_url = std::move(api_url);
        return api_url_doubt(source);
    };
    EXPECT_EQ(doubt(Provider::gitea, "https://git.example.com"),
              "source 'forge': status.api_url 'https://git.example.com' does not end in /api/v1, "
              "where Gitea's and Forgejo's API is (https://HOST/api/v1); a post would go to "
              "https://git.example.com/repos/OWNER/REPO/statuses/SHA");
    EXPECT_EQ(doubt(Provider::forgejo, "https://git.example.com/api/v1"), "");
    EXPECT_NE(doubt(Provider::gitlab, "https://gitlab.example.com"), "");
    EXPECT_EQ(doubt(Provider::gitlab, "https://gitlab.example.com/api/v4"), "");
    EXPECT_EQ(doubt(Provider::gitlab, ""), "");  // the default
    EXPECT_NE(doubt(Provider::bitbucket_cloud, "https://api.bitbucket.org"), "");
    EXPECT_NE(doubt(Provider::bitbucket_server, "https://bb.example.com/rest/api/1.0")
                  .find("names a REST API"),
              std::string::npos);
    EXPECT_NE(doubt(Provider::bitbucket_server, "https://bb.example.com/rest/build-status/1.0"),
              "");
    EXPECT_EQ(doubt(Provider::bitbucket_server, "https://bb.example.com/bitbucket"), "");
    EXPECT_EQ(doubt(Provider::bitbucket_server, "https://bb.example.com/rest"), "");  // a context
    EXPECT_EQ(doubt(Provider::bitbucket_server, "http://rest"), "");
    EXPECT_EQ(doubt(Provider::github, "https://ghe.example.com"), "");  // GHE.com has no /api/v3
}

TEST(ForgeStatusStates, BitbucketStatesPerFlavour) {
    for (const auto p : {Provider::bitbucket_cloud, Provider::bitbucket_server}) {
        EXPECT_EQ(bitbucket_state(p, "pending"), "INPROGRESS");
        EXPECT_EQ(bitbucket_state(p, "running"), "INPROGRESS");
        EXPECT_EQ(bitbucket_state(p, "success"), "SUCCESSFUL");
        EXPECT_EQ(bitbucket_state(p, "failure"), "FAILED");
        EXPECT_EQ(bitbucket_state(p, "error"), "FAILED");
        EXPECT_EQ(bitbucket_state(p, "done"), "");
    }
    EXPECT_EQ(bitbucket_state(Provider::bitbucket_cloud, "canceled"), "STOPPED");
    // Data Center 7.x refuses CANCELLED (it came in 8.0).
    EXPECT_EQ(bitbucket_state(Provider::bitbucket_server, "canceled"), "FAILED");
    EXPECT_EQ(bitbucket_state(Provider::github, "success"), "");
}

TEST(ForgeStatusClassify, BitbucketErrorsSayWhatTheForgeSaid) {
    auto r = classify(Provider::bitbucket_cloud,
                      answer(400, R"({"type":"error","error":{"message":"Bad request",
                          "fields":{"url":["This field is required."]}}})"),
                      k_now, "tok");
    EXPECT_EQ(r.kind, Kind::refused);
    EXPECT_EQ(r.detail,
              R"(HTTP 400 Bad Request: Bad request: {"url":["This field is required."]})");
    r = classify(
        Provider::bitbucket_server,
        answer(
            404,
            R"({"errors":[{"context":null,"message":"Repository PROJ/app does not exist.","exceptionName":"x"}]})"),
        k_now, "tok");
    EXPECT_EQ(r.kind, Kind::refused);
    EXPECT_EQ(r.detail, "HTTP 404 Not Found: Repository PROJ/app does not exist.");
    r = classify(Provider::bitbucket_cloud, answer(429, "", {{"Retry-After", "30"}}), k_now, "t");
    EXPECT_EQ(r.kind, Kind::retry);
    EXPECT_EQ(r.retry_after, 30s);
}

TEST(ForgeStatusClassify, CreatedIsPosted) {
    const auto r = classify(Provider::github, answer(201, R"({"id":1})"), k_now, "tok");
    EXPECT_EQ(r.kind, Kind::posted);
    EXPECT_EQ(r.http_status, 201);
}

TEST(ForgeStatusClassify, GithubForbiddenWithRetryAfterIsARateLimit) {
    const auto r =
        classify(Provider::github,
                 answer(403, R"({"message":"slow down"})", {{"Retry-After", "60"}}), k_now, "tok");
    EXPECT_EQ(r.kind, Kind::retry);
    EXPECT_EQ(r.retry_after, std::chrono::milliseconds(60s));
}

TEST(ForgeStatusClassify, GithubForbiddenWithNoRemainingWaitsForTheReset) {
    const auto reset = std::to_string(1'800'000'000 + 90);
    const auto r = classify(Provider::github,
                            answer(403, R"({"message":"API rate limit exceeded for user ID 1."})",
                                   {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", reset}}),
                            k_now, "tok");
    EXPECT_EQ(r.kind, Kind::retry);
    EXPECT_EQ(r.retry_after, std::chrono::milliseconds(90s));
}

TEST(ForgeStatusClassify, GithubSecondaryRateLimitInTheBodyIsRetried) {
    const auto r = classify(
        Provider::github,
        answer(
            403,
            R"({"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})"),
        k_now, "tok");
    EXPECT_EQ(r.kind, Kind::retry);
    EXPECT_EQ(r.retry_after, k_secondary_rate_limit_wait);
}

TEST(ForgeStatusClassify, GithubForbiddenOtherwiseIsRefusedWithTheMessage) {
    const auto r = classify(
        Provider::github,
        answer(403,
               R"({"message":"Resource not accessible by integration","documentation_url":"x"})"),
        k_now, "tok");
    EXPECT_EQ(r.kind, Kind::refused);
    EXPECT_EQ(r.detail, "HTTP 403 Forbidden: Resource not accessible by integration");
}

TEST(ForgeStatusClassify, TooManyRequestsIsRetriedAfterRetryAfter) {
    const auto r = classify(Provider::gitlab, answer(429, "Retry later\n", {{"Retry-After", "7"}}),
                            k_now, "tok");
    EXPECT_EQ(r.kind, Kind::retry);
    EXPECT_EQ(r.retry_after, std::chrono::milliseconds(7s));
    EXPECT_EQ(r.detail, "HTTP 429 Too Many Requests: Retry later");
}

TEST(ForgeStatusClassify, GithubValidationFailureSaysWhatFailed) {
    const auto r = classify(
        Provider::github,
        answer(
            422,
            R"j({"message":"Validation Failed","errors":[{"resource":"Status","code":"custom","field":"description","message":"description is too long (maximum is 140 characters)"}]})j"),
        k_now, "tok");
    EXPECT_EQ(r.kind, Kind::refused);
    EXPECT_EQ(r.detail,
              "HTTP 422 Unprocessable Entity: Validation Failed: description is too long "
              "(maximum is 140 characters)");
}

TEST(ForgeStatusClassify, NotFoundIsRefused) {
    const auto r = classify(Provider::gitlab, answer(404, R"({"message":"404 Project Not Found"})"),
                            k_now, "tok");
    EXPECT_EQ(r.kind, Kind::refused);
    EXPECT_EQ(r.detail, "HTTP 404 Not Found: 404 Project Not Found");
}

TEST(ForgeStatusClassify, ServerErrorIsRetried) {
    const auto r = classify(Provider::github,
                            answer(502, "<html>\n<body>Bad gateway</body>\n</html>"), k_now, "tok");
    EXPECT_EQ(r.kind, Kind::retry);
    EXPECT_FALSE(r.retry_after);
    EXPECT_EQ(r.detail, "HTTP 502 Bad Gateway: <html> <body>Bad gateway</body> </html>");
}

TEST(ForgeStatusClassify, GitlabRefusedTransitionIsIgnored) {
    const auto r = classify(
        Provider::gitlab,
        answer(400, R"({"message":"Cannot transition status via :enqueue from :running"})"), k_now,
        "tok");
    EXPECT_EQ(r.kind, Kind::ignored);
    EXPECT_EQ(r.http_status, 400);
    EXPECT_EQ(r.detail,
              "HTTP 400 Bad Request: Cannot transition status via :enqueue from :running");
}

TEST(ForgeStatusClassify, GitlabOtherBadRequestIsRefused) {
    const auto r =
        classify(Provider::gitlab, answer(400, R"({"message":{"target_url":["is blocked"]}})"),
                 k_now, "tok");
    EXPECT_EQ(r.kind, Kind::refused);
    EXPECT_EQ(r.detail, R"(HTTP 400 Bad Request: {"target_url":["is blocked"]})");
}

TEST(ForgeStatusClassify, GitlabForbiddenIsRefusedNotARateLimit) {
    const auto r =
        classify(Provider::gitlab, answer(403, R"({"message":"403 Forbidden"})"), k_now, "tok");
    EXPECT_EQ(r.kind, Kind::refused);
}

TEST(ForgeStatusClassify, LongMessagesAreCutShort) {
    const auto r =
        classify(Provider::github, answer(404, "{\"message\":\"" + std::string(1000, 'm') + "\"}"),
                 k_now, "tok");
    EXPECT_LT(r.detail.size(), 260u);
    EXPECT_TRUE(r.detail.ends_with("\xE2\x80\xA6"));
}

TEST(ForgeStatusClassify, TokenEchoedByTheForgeIsNotInTheDetail) {
    const auto r =
        classify(Provider::gitlab, answer(401, R"({"message":"token glpat-s3cr3t is revoked"})"),
                 k_now, "glpat-s3cr3t");
    EXPECT_EQ(r.kind, Kind::refused);
    EXPECT_EQ(r.detail, "HTTP 401 Unauthorized: token *** is revoked");
}

TEST(ForgeStatusKinds, NamesOfTheKinds) {
    EXPECT_EQ(to_string(Kind::posted), "posted");
    EXPECT_EQ(to_string(Kind::ignored), "ignored");
    EXPECT_EQ(to_string(Kind::retry), "retry");
    EXPECT_EQ(to_string(Kind::refused), "refused");
}

SourceConfig source_of(Provider provider, std::string api_url = "") {
    SourceConfig source;
    source.name = "forge";
    source.provider = provider;
    source.status.emplace();
    source.status->token = Secret("tok");
    source.status->api_url = std::move(api_url);
    return source;
}

TEST(MakeStatusClient, AGenericSourceOrASelfHostedForgeWithoutApiUrlIsABadConfig) {
    boost::asio::io_context ioc;
    std::string why;
    auto client = make_status_client(ioc.get_executor(), source_of(Provider::generic), &why);
    ASSERT_FALSE(client);
    EXPECT_EQ(client.error(), make_error_code(errc::bad_config));
    EXPECT_EQ(why, "status: a generic source has no status API");
    client = make_status_client(ioc.get_executor(), source_of(Provider::gitea), &why);
    ASSERT_FALSE(client);
    EXPECT_EQ(why, "status: api_url is required for gitea sources");
    client = make_status_client(ioc.get_executor(), source_of(Provider::bitbucket_server), &why);
    ASSERT_FALSE(client);
    EXPECT_EQ(why, "status: api_url is required for bitbucket-server sources");
}

TEST(MakeStatusClient, ApiUrlWithAQueryIsABadConfig) {
    boost::asio::io_context ioc;
    std::string why;
    const auto client =
        make_status_client(ioc.get_executor(),
                           source_of(Provider::github, "https://ghe.example.com/api/v3?x=1"), &why);
    ASSERT_FALSE(client);
    EXPECT_EQ(client.error(), make_error_code(errc::bad_config));
    EXPECT_TRUE(why.starts_with("status: ")) << why;
}

TEST(MakeStatusClient, MissingCaFileIsABadConfig) {
    boost::asio::io_context ioc;
    auto source = source_of(Provider::gitlab);
    source.status->ca_file = "/nonexistent/ca.pem";
    std::string why;
    const auto client = make_status_client(ioc.get_executor(), source, &why);
    ASSERT_FALSE(client);
    EXPECT_NE(why.find("/nonexistent/ca.pem"), std::string::npos) << why;
}

TEST(MakeStatusClient, EveryForgeIsMadeWithItsDefaultsOrItsApiUrl) {
    boost::asio::io_context ioc;
    std::string why;
    EXPECT_TRUE(make_status_client(ioc.get_executor(), source_of(Provider::github), &why)) << why;
    EXPECT_TRUE(make_status_client(ioc.get_executor(), source_of(Provider::gitlab), &why)) << why;
    EXPECT_TRUE(make_status_client(ioc.get_executor(), source_of(Provider::bitbucket_cloud), &why))
        << why;
    for (const auto provider : {Provider::gitea, Provider::forgejo, Provider::bitbucket_server}) {
        EXPECT_TRUE(make_status_client(ioc.get_executor(),
                                       source_of(provider, "https://git.example.com/x"), &why))
            << why;
    }
}

}  // namespace
}  // namespace hookrelay::forge_status
