// The fake Jenkins itself, driven with raw blocking HTTP requests: it must answer the way the
// reference says Jenkins does, or the client tests prove nothing.
#include "fakes/fake_jenkins.hpp"
#include "support/daemon.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace hookrelay::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view k_api_auth = "Basic aG9va3JlbGF5OmZha2UtYXBpLXRva2Vu";  // default
constexpr std::string_view k_form = "application/x-www-form-urlencoded";

struct Http {
    int status = 0;
    std::string body;
    Headers headers;
    std::string header(std::string_view name) const {
        for (const auto& [k, v] : headers) {
            if (beast::iequals(k, name)) return v;
        }
        return {};
    }
};

// One request on a fresh connection, blocking (tests only), with a deadline.
Http request(std::uint16_t port, bhttp::verb method, const std::string& target,
             const Headers& headers = {}, const std::string& body = {}) {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(5));
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(port));
    for (const auto& [k, v] : headers) req.set(k, v);
    if (method == bhttp::verb::post) {
        if (req[bhttp::field::content_type].empty()) req.set(bhttp::field::content_type, k_form);
        req.body() = body;
    }
    req.prepare_payload();
    bhttp::write(stream, req);
    beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(stream, buffer, res);
    Http out;
    out.status = static_cast<int>(res.result_int());
    out.body = res.body();
    for (const auto& field : res) {
        out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    return out;
}

Http get(std::uint16_t port, const std::string& target, const Headers& headers = {}) {
    return request(port, bhttp::verb::get, target, headers);
}

Http post(std::uint16_t port, const std::string& target, const std::string& body = {},
          const Headers& headers = {}) {
    return request(port, bhttp::verb::post, target, headers, body);
}

Headers api_auth() {
    return {{"Authorization", std::string(k_api_auth)}};
}

class FakeJenkinsTest : public ::testing::Test {
  protected:
    FakeJenkinsTest() {
        fake.add_job({"plain"});
        fake.add_job({"folder", "params"}, {"SHA", "BRANCH"});
        fake.add_job({"tokened"}, {}, "T0KEN");
        fake.add_job({"mbp", "feature%2Fx"});
    }
    std::uint16_t port() const { return fake.port(); }

    FakeJenkins fake{FakeJenkins::Options{}};
};

TEST_F(FakeJenkinsTest, ApiTokenPostIsQueuedWithAbsoluteLocation) {
    const auto r = post(port(), "/job/plain/build?delay=0sec", "cause=x", api_auth());
    EXPECT_EQ(r.status, 201);
    EXPECT_EQ(r.header("Location"), fake.url() + "queue/item/1/");
    EXPECT_TRUE(r.body.empty());
    ASSERT_EQ(fake.builds().size(), 1u);
    EXPECT_TRUE(fake.builds()[0].authenticated);
    EXPECT_EQ(fake.builds()[0].cause, "x");
}

TEST_F(FakeJenkinsTest, WhoAmINamesTheUserOrAnonymous) {
    const auto user = json::parse(get(port(), "/whoAmI/api/json", api_auth()).body);
    EXPECT_EQ(user.at("name"), "hookrelay");
    EXPECT_EQ(user.at("anonymous"), false);
    const auto anonymous = json::parse(get(port(), "/whoAmI/api/json").body);
    EXPECT_EQ(anonymous.at("name"), "anonymous");
    EXPECT_EQ(anonymous.at("anonymous"), true);
}

TEST_F(FakeJenkinsTest, JobApiDeclaresParametersAndBuildable) {
    fake.set_job_buildable({"plain"}, false);
    const auto params = json::parse(
        get(port(), "/job/folder/job/params/api/json?tree=buildable,property", api_auth()).body);
    EXPECT_EQ(params.at("buildable"), true);
    const auto& definitions = params.at("property").at(0).at("parameterDefinitions").as_array();
    ASSERT_EQ(definitions.size(), 2u);
    EXPECT_EQ(definitions[0].at("name"), "SHA");
    EXPECT_EQ(definitions[1].at("name"), "BRANCH");
    const auto plain = json::parse(get(port(), "/job/plain/api/json", api_auth()).body);
    EXPECT_EQ(plain.at("buildable"), false);
    EXPECT_TRUE(plain.at("property").as_array().empty());
}

TEST_F(FakeJenkinsTest, FolderApiAnswersWithoutBuildableAndUnknownFolderIs404) {
    const auto r = get(port(), "/job/folder/api/json?tree=_class", api_auth());
    ASSERT_EQ(r.status, 200);
    const auto folder = json::parse(r.body);
    EXPECT_EQ(folder.at("_class"), "com.cloudbees.hudson.plugins.folder.Folder");
    EXPECT_FALSE(folder.as_object().contains("buildable"));
    EXPECT_EQ(get(port(), "/job/nope/api/json", api_auth()).status, 404);
}

TEST_F(FakeJenkinsTest, RootAndFoldersListTheItemsDirectlyBelowThem) {
    const auto root = json::parse(get(port(), "/api/json?tree=jobs[name]", api_auth()).body);
    std::vector<std::string> names;
    for (const auto& j : root.at("jobs").as_array()) names.emplace_back(j.at("name").as_string());
    EXPECT_EQ(names, (std::vector<std::string>{"folder", "mbp", "plain", "tokened"}));
    EXPECT_EQ(root.at("jobs").at(0).at("_class"), "com.cloudbees.hudson.plugins.folder.Folder");
    EXPECT_EQ(root.at("jobs").at(2).at("_class"), "hudson.model.FreeStyleProject");
    const auto folder =
        json::parse(get(port(), "/job/folder/api/json?tree=jobs[name]", api_auth()).body);
    ASSERT_EQ(folder.at("jobs").as_array().size(), 1u);
    EXPECT_EQ(folder.at("jobs").at(0).at("name"), "params");
}

TEST_F(FakeJenkinsTest, BadCredentialsAre401WithChallenge) {
    const auto r = post(port(), "/job/plain/build", "", {{"Authorization", "Basic Zm9vOmJhcg=="}});
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r.header("WWW-Authenticate"), "Basic realm=\"Jenkins\"");
    EXPECT_EQ(fake.requests().back().user, "foo");
    EXPECT_FALSE(fake.requests().back().authenticated);
}

TEST_F(FakeJenkinsTest, AnonymousPostWithoutCrumbIs403NoValidCrumb) {
    const auto r = post(port(), "/job/tokened/build?token=T0KEN");
    EXPECT_EQ(r.status, 403);
    EXPECT_NE(r.body.find("No valid crumb was included in the request"), std::string::npos);
}

TEST_F(FakeJenkinsTest, AnonymousGetWithTokenNeedsNoCrumb) {
    EXPECT_EQ(get(port(), "/job/tokened/build?token=T0KEN").status, 201);
    EXPECT_EQ(get(port(), "/job/tokened/build?token=wrong").status, 403);
    EXPECT_EQ(get(port(), "/job/tokened/build").status, 403);  // anonymous lacks Job/Build
}

TEST_F(FakeJenkinsTest, CrumbNeedsItsSessionCookie) {
    const auto issued = get(port(), "/crumbIssuer/api/json");
    ASSERT_EQ(issued.status, 200);
    const auto crumb_at = issued.body.find("\"crumb\":\"") + 9;
    const auto crumb = issued.body.substr(crumb_at, 64);
    EXPECT_NE(issued.body.find("\"crumbRequestField\":\"Jenkins-Crumb\""), std::string::npos);
    const auto set_cookie = issued.header("Set-Cookie");
    ASSERT_EQ(set_cookie.rfind(fake.cookie_name() + "=", 0), 0u) << set_cookie;
    EXPECT_EQ(fake.cookie_name().size(), std::string("JSESSIONID.").size() + 8);
    const auto cookie = set_cookie.substr(0, set_cookie.find(';'));

    EXPECT_EQ(post(port(), "/job/tokened/build?token=T0KEN", "", {{"Jenkins-Crumb", crumb}}).status,
              403);
    EXPECT_EQ(post(port(), "/job/tokened/build?token=T0KEN", "",
                   {{"Jenkins-Crumb", crumb}, {"Cookie", cookie}})
                  .status,
              201);

    fake.invalidate_sessions();
    EXPECT_EQ(post(port(), "/job/tokened/build?token=T0KEN", "",
                   {{"Jenkins-Crumb", crumb}, {"Cookie", cookie}})
                  .status,
              403);
}

TEST_F(FakeJenkinsTest, WrongTokenIs403EvenForAnAuthenticatedUser) {
    EXPECT_EQ(post(port(), "/job/tokened/build?token=nope", "", api_auth()).status, 403);
    EXPECT_EQ(post(port(), "/job/tokened/build?token=T0KEN", "", api_auth()).status, 201);
    // A token on a job without one is ignored.
    EXPECT_EQ(post(port(), "/job/plain/build?token=whatever", "", api_auth()).status, 201);
}

TEST_F(FakeJenkinsTest, GetOnBuildEndpointsIs405) {
    EXPECT_EQ(get(port(), "/job/plain/build", api_auth()).status, 405);
    const auto r = get(port(), "/job/folder/job/params/buildWithParameters", api_auth());
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(r.header("Allow"), "POST");
    EXPECT_EQ(get(port(), "/job/folder/job/params/build", api_auth()).status, 405);
}

TEST_F(FakeJenkinsTest, WrongEndpointForTheJobTypeIs400) {
    EXPECT_EQ(post(port(), "/job/folder/job/params/build", "", api_auth()).status, 400);
    EXPECT_EQ(post(port(), "/job/plain/buildWithParameters", "", api_auth()).status, 400);
}

TEST_F(FakeJenkinsTest, ParameterInQueryAndBodyIs500) {
    EXPECT_EQ(post(port(), "/job/folder/job/params/buildWithParameters?SHA=1", "SHA=1", api_auth())
                  .status,
              500);
    EXPECT_EQ(post(port(), "/job/plain/build?delay=soon", "", api_auth()).status, 500);
}

TEST_F(FakeJenkinsTest, IdenticalParametersMergeUntilDrained) {
    const std::string target = "/job/folder/job/params/buildWithParameters";
    const auto first = post(port(), target, "SHA=1&BRANCH=main", api_auth());
    const auto same = post(port(), target, "BRANCH=main&SHA=1&UNDEFINED=x", api_auth());
    const auto other = post(port(), target, "SHA=2&BRANCH=main", api_auth());
    EXPECT_EQ(first.status, 201);
    EXPECT_EQ(same.status, 303);
    EXPECT_EQ(same.header("Location"), first.header("Location"));
    EXPECT_EQ(other.status, 201);
    EXPECT_NE(other.header("Location"), first.header("Location"));
    fake.drain_queue();
    EXPECT_EQ(post(port(), target, "SHA=1&BRANCH=main", api_auth()).status, 201);
    EXPECT_EQ(fake.builds().size(), 4u);
}

TEST_F(FakeJenkinsTest, JobSegmentsAreDecodedOnceAndMatchedCaseInsensitively) {
    EXPECT_EQ(post(port(), "/job/mbp/job/feature%252Fx/build", "", api_auth()).status, 201);
    EXPECT_EQ(fake.requests().back().job, (std::vector<std::string>{"mbp", "feature%2Fx"}));
    EXPECT_EQ(post(port(), "/job/PLAIN/build", "", api_auth()).status, 201);
    EXPECT_EQ(post(port(), "/job/missing/build", "", api_auth()).status, 404);
}

TEST_F(FakeJenkinsTest, FailNextAndRestartingOverride) {
    fake.fail_next(2, 302);
    const auto refused = post(port(), "/job/plain/build", "", api_auth());
    EXPECT_EQ(refused.status, 302);
    EXPECT_EQ(refused.header("Location"), fake.url() + "job/plain/");
    EXPECT_EQ(post(port(), "/job/plain/build", "", api_auth()).status, 302);
    EXPECT_EQ(post(port(), "/job/plain/build", "", api_auth()).status, 201);

    fake.set_restarting(true);
    const auto down = get(port(), "/api/json", api_auth());
    EXPECT_EQ(down.status, 503);
    EXPECT_NE(down.body.find("restarting"), std::string::npos);
    fake.set_restarting(false);
    const auto up = get(port(), "/api/json", api_auth());
    EXPECT_EQ(up.status, 200);
    EXPECT_NE(up.body.find("\"mode\":\"NORMAL\""), std::string::npos);
}

TEST_F(FakeJenkinsTest, StopRefusesAndStartListensOnTheSamePortWithANewCookie) {
    const auto port_before = port();
    const auto cookie_before = fake.cookie_name();
    fake.stop();
    EXPECT_THROW(get(port_before, "/api/json"), boost::system::system_error);
    fake.start();
    EXPECT_EQ(fake.port(), port_before);
    EXPECT_EQ(get(port_before, "/api/json").status, 200);
    EXPECT_NE(fake.cookie_name(), cookie_before);
}

TEST_F(FakeJenkinsTest, WaitForBuildsPollsWithADeadline) {
    EXPECT_FALSE(fake.wait_for_builds(1, std::chrono::milliseconds(20)));
    post(port(), "/job/plain/build", "", api_auth());
    EXPECT_TRUE(fake.wait_for_builds(1, std::chrono::seconds(5)));
    EXPECT_EQ(fake.connections_accepted(), 1u);
}

TEST_F(FakeJenkinsTest, DelayedAnswerArrivesAfterTheDelayAndCountsAsInFlight) {
    const auto delay = std::chrono::milliseconds(300);
    fake.set_answer_delay(delay);
    const auto start = std::chrono::steady_clock::now();
    auto answer = std::async(std::launch::async,
                             [&] { return post(port(), "/job/plain/build", "", api_auth()); });
    EXPECT_TRUE(eventually([&] { return fake.in_flight() == 1; }, std::chrono::seconds(5)));
    EXPECT_EQ(answer.get().status, 201);
    EXPECT_GE(std::chrono::steady_clock::now() - start, delay);
    EXPECT_EQ(fake.in_flight(), 0u);
    EXPECT_EQ(fake.peak_in_flight(), 1u);
    EXPECT_FALSE(fake.requests().at(0).abandoned);
    fake.reset_peak_in_flight();
    EXPECT_EQ(fake.peak_in_flight(), 0u);
}

TEST_F(FakeJenkinsTest, ClientLeavingBeforeADelayedAnswerAbandonsTheRequest) {
    fake.set_answer_delay(std::chrono::seconds(60));
    asio::io_context ioc;
    asio::ip::tcp::socket socket(ioc);
    socket.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port()));
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/job/plain/build", 11};
    req.set(bhttp::field::host, "127.0.0.1");
    req.set(bhttp::field::authorization, k_api_auth);
    req.prepare_payload();
    bhttp::write(socket, req);
    ASSERT_TRUE(eventually([&] { return fake.in_flight() == 1; }, std::chrono::seconds(5)));
    socket.close();
    EXPECT_TRUE(eventually(
        [&] {
            const auto requests = fake.requests();
            return requests.size() == 1 && requests[0].abandoned && fake.in_flight() == 0;
        },
        std::chrono::seconds(5)));
    EXPECT_EQ(fake.builds().size(), 1u) << "recorded with the answer it would have had";
}

}  // namespace
}  // namespace hookrelay::test
