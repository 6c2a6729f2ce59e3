// JenkinsClient::read() against the fake Jenkins and canned loopback servers.
#include "fakes/fake_jenkins.hpp"
#include "jenkins/client.hpp"
#include "jenkins/follow.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>

namespace hookrelay::jenkins {
namespace {

namespace asio = boost::asio;
using Kind = JenkinsOutcome::Kind;
using test::FakeJenkins;

JenkinsOutcome run(asio::io_context& ioc, asio::awaitable<JenkinsOutcome> task) {
    std::optional<JenkinsOutcome> result;
    std::exception_ptr error;
    asio::co_spawn(ioc, std::move(task), [&](std::exception_ptr e, JenkinsOutcome value) {
        error = e;
        if (!e) result = std::move(value);
    });
    ioc.restart();
    ioc.run();
    if (error) std::rethrow_exception(error);
    return std::move(*result);
}

// Answers every connection with the same bytes once it has read a request head, then closes.
class Canned {
  public:
    explicit Canned(std::string answer)
        : answer_(std::move(answer)), acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
        thread_ = std::thread([this] { serve(); });
    }
    ~Canned() {
        // A last connection wakes the blocking accept, which then sees stop_.
        stop_ = true;
        boost::system::error_code ignored;
        asio::ip::tcp::socket wake(ioc_);
        wake.connect(acceptor_.local_endpoint(), ignored);
        thread_.join();
    }
    std::string url() const {
        return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/";
    }

  private:
    void serve() {
        for (;;) {
            boost::system::error_code ec;
            asio::ip::tcp::socket socket(ioc_);
            acceptor_.accept(socket, ec);
            if (ec || stop_) return;
            asio::streambuf head;
            asio::read_until(socket, head, "\r\n\r\n", ec);
            if (!ec) asio::write(socket, asio::buffer(answer_), ec);  // fails once the client left
            socket.close(ec);
        }
    }

    std::string answer_;
    std::atomic<bool> stop_{false};
    asio::io_context ioc_;
    asio::ip::tcp::acceptor acceptor_;
    std::thread thread_;
};

// Accepts connections (the kernel completes the handshake) but never answers.
class Silent {
  public:
    Silent() : acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {}
    std::string url() const {
        return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/";
    }

  private:
    asio::io_context ioc_;
    asio::ip::tcp::acceptor acceptor_;
};

class JenkinsReadTest : public ::testing::Test {
  protected:
    JenkinsConfig config_for(const std::string& url, bool with_user = true) const {
        JenkinsConfig c;
        c.name = "ci";
        c.url = url;
        if (with_user) {
            c.user = "hookrelay";
            c.api_token = Secret("fake-api-token");
        }
        c.connect_timeout = std::chrono::seconds(5);
        c.io_timeout = std::chrono::seconds(5);
        c.request_timeout = std::chrono::seconds(10);
        return c;
    }

    JenkinsOutcome read(const JenkinsConfig& config, std::string path) {
        std::string why;
        auto made = make_client(ioc.get_executor(), config, &why);
        EXPECT_TRUE(made) << why;
        if (!made) return {};
        return run(ioc, (*made)->read(std::move(path)));
    }

    asio::io_context ioc;
    FakeJenkins fake{FakeJenkins::Options{}};
};

TEST_F(JenkinsReadTest, AnswerIsQueuedWithTheBodyAndTheSameAuthAsProbe) {
    fake.add_job({"acme", "app"});
    const auto outcome = read(config_for(fake.url()), "job/acme/job/app/api/json");
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 200);
    EXPECT_EQ(outcome.body,
              R"({"_class":"hudson.model.FreeStyleProject","name":"app","buildable":true,)"
              R"("nextBuildNumber":1,"property":[]})");
    ASSERT_EQ(fake.requests().size(), 1u);
    const auto r = fake.requests()[0];
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.target, "/job/acme/job/app/api/json");
    EXPECT_TRUE(r.authenticated);
    EXPECT_EQ(r.header("Accept"), "application/json");
}

TEST_F(JenkinsReadTest, AnonymousReadSendsNoAuthorizationAndNoCrumbRequest) {
    fake.add_job({"app"});
    const auto outcome = read(config_for(fake.url(), /*with_user=*/false), "job/app/api/json");
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    ASSERT_EQ(fake.requests().size(), 1u);
    EXPECT_EQ(fake.requests()[0].header("Authorization"), "");
}

TEST_F(JenkinsReadTest, PathWithQueryKeepsItsQueryAndEncodesTreeBrackets) {
    fake.add_job({"acme", "app"});
    const auto outcome = read(config_for(fake.url()),
                              "job/acme/job/app/api/json?tree=builds[number,queueId,url]{0,50}");
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    ASSERT_EQ(fake.requests().size(), 1u);
    const auto r = fake.requests()[0];
    EXPECT_EQ(r.target, "/job/acme/job/app/api/json?tree=builds%5Bnumber,queueId,url%5D%7B0,50%7D");
    ASSERT_EQ(r.query.size(), 1u);
    EXPECT_EQ(r.query[0],
              (std::pair<std::string, std::string>{"tree", "builds[number,queueId,url]{0,50}"}));
}

TEST_F(JenkinsReadTest, PathIsBelowTheConfiguredUrlsPath) {
    Canned server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    const auto outcome = read(config_for(server.url() + "ci/"), "queue/item/7/api/json");
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    EXPECT_EQ(outcome.body, "{}");
}

TEST_F(JenkinsReadTest, NotFoundIsPermanentWithoutBody) {
    const auto outcome = read(config_for(fake.url()), "job/missing/api/json");
    EXPECT_EQ(outcome.kind, Kind::permanent) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 404);
    EXPECT_EQ(outcome.detail, "HTTP 404 Not Found");
    EXPECT_EQ(outcome.body, "");
}

TEST_F(JenkinsReadTest, WrongApiTokenIsAuthFailed) {
    fake.add_job({"app"});
    fake.set_api_token("rotated");
    const auto outcome = read(config_for(fake.url()), "job/app/api/json");
    EXPECT_EQ(outcome.kind, Kind::auth_failed) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 401);
}

TEST_F(JenkinsReadTest, ForbiddenIsPermanent) {
    fake.add_job({"app"});
    fake.set_read_denied(true);
    const auto outcome = read(config_for(fake.url()), "job/app/api/json");
    EXPECT_EQ(outcome.kind, Kind::permanent) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 403);
}

TEST_F(JenkinsReadTest, RestartingIsUnavailableAndRetryAfterIsFilled) {
    Canned server(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n");
    const auto outcome = read(config_for(server.url()), "queue/item/7/api/json");
    EXPECT_EQ(outcome.kind, Kind::unavailable) << outcome.detail;
    EXPECT_EQ(outcome.retry_after, std::chrono::milliseconds(7'000));
    EXPECT_EQ(outcome.detail, "HTTP 503 Service Unavailable (Retry-After 7 s)");
}

TEST_F(JenkinsReadTest, TooManyRequestsIsThrottled) {
    Canned server(
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n");
    const auto outcome = read(config_for(server.url()), "queue/item/7/api/json");
    EXPECT_EQ(outcome.kind, Kind::throttled) << outcome.detail;
    EXPECT_EQ(outcome.retry_after, std::chrono::milliseconds(3'000));
}

TEST_F(JenkinsReadTest, ServerErrorIsClassified) {
    Canned server("HTTP/1.1 500 Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    const auto outcome = read(config_for(server.url()), "queue/item/7/api/json");
    EXPECT_EQ(outcome.kind, Kind::server_error) << outcome.detail;
}

TEST_F(JenkinsReadTest, RedirectIsPermanent) {
    Canned server(
        "HTTP/1.1 302 Found\r\nLocation: http://sso.example/login\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n");
    const auto outcome = read(config_for(server.url()), "queue/item/7/api/json");
    EXPECT_EQ(outcome.kind, Kind::permanent) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 302);
}

TEST_F(JenkinsReadTest, SilentJenkinsTimesOutOnTheIoDeadline) {
    Silent silent;
    auto config = config_for(silent.url());
    config.io_timeout = std::chrono::milliseconds(200);
    const auto outcome = read(config, "queue/item/7/api/json");
    EXPECT_EQ(outcome.kind, Kind::unavailable);
    EXPECT_EQ(outcome.detail, "read: timeout after 200 ms");
}

TEST_F(JenkinsReadTest, RequestTimeoutBoundsTheWholeRead) {
    Silent silent;
    auto config = config_for(silent.url());
    config.request_timeout = std::chrono::milliseconds(300);
    const auto started = std::chrono::steady_clock::now();
    const auto outcome = read(config, "queue/item/7/api/json");
    EXPECT_EQ(outcome.kind, Kind::unavailable);
    EXPECT_EQ(outcome.detail, "request: timeout after 300 ms");
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
}

std::string big(std::size_t size) {
    std::string body;
    body.reserve(size);
    while (body.size() < size) body += "0123456789abcdef";
    body.resize(size);
    return body;
}

TEST_F(JenkinsReadTest, BodyOverTheTriggerLimitButWithinTheReadLimitIsWhole) {
    const auto body = big(200 * 1024);
    Canned server("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\nConnection: close\r\n\r\n" + body);
    const auto outcome = read(config_for(server.url()), "job/app/api/json");
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    EXPECT_EQ(outcome.detail, "HTTP 200 OK");
    EXPECT_EQ(outcome.body, body);
}

TEST_F(JenkinsReadTest, BodyOverTheReadLimitIsCutThere) {
    const auto body = big(k_read_body_limit + 100 * 1024);
    Canned server("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\nConnection: close\r\n\r\n" + body);
    const auto outcome = read(config_for(server.url()), "job/app/api/json");
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    EXPECT_EQ(outcome.body.size(), k_read_body_limit);
    EXPECT_EQ(outcome.body, body.substr(0, k_read_body_limit));
    EXPECT_EQ(outcome.detail, "HTTP 200 OK (body cut at 1024 KiB)");
}

TEST_F(JenkinsReadTest, ChunkedBodyOverTheReadLimitIsCutThere) {
    const auto chunk = big(64 * 1024);
    std::string answer =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    for (std::size_t sent = 0; sent < k_read_body_limit + chunk.size(); sent += chunk.size()) {
        answer += "10000\r\n" + chunk + "\r\n";
    }
    answer += "0\r\n\r\n";
    Canned server(answer);
    const auto outcome = read(config_for(server.url()), "job/app/api/json");
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    EXPECT_EQ(outcome.body.size(), k_read_body_limit);
    EXPECT_EQ(outcome.detail, "HTTP 200 OK (body cut at 1024 KiB)");
}

TEST_F(JenkinsReadTest, BodyExactlyAtTheReadLimitIsWhole) {
    const auto body = big(k_read_body_limit);
    Canned server("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\nConnection: close\r\n\r\n" + body);
    const auto outcome = read(config_for(server.url()), "job/app/api/json");
    EXPECT_EQ(outcome.detail, "HTTP 200 OK");
    EXPECT_EQ(outcome.body.size(), k_read_body_limit);
}

TEST_F(JenkinsReadTest, AbsoluteOrMalformedPathIsPermanentWithoutARequest) {
    for (const std::string path : {"/queue/item/1/api/json", "http://other/queue/item/1/api/json",
                                   "queue/item/1/api/json\r\nX: y", "queue/item/1 /api/json", ""}) {
        const auto outcome = read(config_for(fake.url()), path);
        EXPECT_EQ(outcome.kind, Kind::permanent) << path;
    }
    EXPECT_TRUE(fake.requests().empty());
}

TEST_F(JenkinsReadTest, KeptAliveConnectionIsReusedForTheNextRead) {
    fake.add_job({"app"});
    std::string why;
    auto client = *make_client(ioc.get_executor(), config_for(fake.url()), &why);
    EXPECT_EQ(run(ioc, client->read("job/app/api/json")).kind, Kind::queued);
    EXPECT_EQ(run(ioc, client->read("api/json?tree=mode")).kind, Kind::queued);
    EXPECT_EQ(fake.connections_accepted(), 1u);
}

// The pieces together: Jenkins' answers name a root URL hookrelay cannot reach, yet the item and
// its build are read below the configured url, by id and number.
TEST(JenkinsRead, FollowsAQueueItemToItsResultBelowTheConfiguredUrl) {
    FakeJenkins::Options options;
    options.root_url = "https://jenkins.example.com/";
    FakeJenkins fake(options);
    fake.add_job({"acme", "app"});
    fake.set_next_results({"UNSTABLE"});
    asio::io_context ioc;
    JenkinsConfig config;
    config.name = "ci";
    config.url = fake.url();
    config.user = "hookrelay";
    config.api_token = Secret("fake-api-token");
    auto client = *make_client(ioc.get_executor(), config);
    TriggerRequest request;
    request.job = {"acme", "app"};
    request.cause = "test";
    const auto queued = run(ioc, client->trigger(request, std::nullopt));
    ASSERT_EQ(queued.kind, Kind::queued) << queued.detail;
    // Jenkins builds the Location from the request; the URLs in its JSON use its root URL.
    EXPECT_EQ(queued.queue_url, fake.url() + "queue/item/1/");
    const auto id = queue_item_id(queued.queue_url);
    ASSERT_EQ(id, 1);

    auto waiting = parse_queue_item(run(ioc, client->read(queue_item_path(*id))).body);
    ASSERT_TRUE(waiting);
    EXPECT_EQ(waiting->why, "Waiting for next available executor");
    EXPECT_EQ(waiting->number, std::nullopt);

    fake.drain_queue();
    auto left = parse_queue_item(run(ioc, client->read(queue_item_path(*id))).body);
    ASSERT_TRUE(left);
    ASSERT_EQ(left->number, 1);
    EXPECT_EQ(left->url, "https://jenkins.example.com/job/acme/job/app/1/");

    fake.finish_builds();
    auto build = parse_build(run(ioc, client->read(build_path(request.job, *left->number))).body);
    ASSERT_TRUE(build);
    EXPECT_FALSE(build->building);
    EXPECT_EQ(build->result, "UNSTABLE");
    EXPECT_EQ(build->queue_id, 1);
    auto found = find_build_by_queue_id(run(ioc, client->read(builds_path(request.job))).body, 1);
    ASSERT_TRUE(found);
    ASSERT_TRUE(found->has_value());
    EXPECT_EQ((*found)->number, 1);

    for (const auto& r : fake.requests()) {
        EXPECT_EQ(r.header("Host"), "127.0.0.1:" + std::to_string(fake.port())) << r.target;
    }
}

}  // namespace
}  // namespace hookrelay::jenkins
