// The Jenkins client against the fake Jenkins (a real loopback server).
#include "jenkins/client.hpp"
#include "fakes/fake_jenkins.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <future>
#include <optional>

namespace hookrelay::jenkins {
namespace {

namespace asio = boost::asio;
using Kind = JenkinsOutcome::Kind;
using test::FakeJenkins;
using test::ReceivedRequest;

// Runs one coroutine to completion on `ioc` (the client keeps no background work, so run()
// returns once the coroutine is done).
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

// Runs several coroutines concurrently on `ioc`.
std::vector<JenkinsOutcome> run_all(asio::io_context& ioc,
                                    std::vector<asio::awaitable<JenkinsOutcome>> tasks) {
    std::vector<JenkinsOutcome> results(tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        asio::co_spawn(ioc, std::move(tasks[i]),
                       [&results, i](std::exception_ptr e, JenkinsOutcome outcome) {
                           if (!e) results[i] = std::move(outcome);
                       });
    }
    ioc.restart();
    ioc.run();
    return results;
}

TriggerRequest request_for(std::vector<std::string> job,
                           std::vector<std::pair<std::string, std::string>> parameters = {}) {
    TriggerRequest r;
    r.rule = "rule";
    r.jenkins = "ci";
    r.job = std::move(job);
    r.parameters = std::move(parameters);
    r.cause = "hookrelay: github push delivery 72d3162e";
    return r;
}

std::string query_value(const ReceivedRequest& r, const std::string& name) {
    for (const auto& [k, v] : r.query) {
        if (k == name) return v;
    }
    return "<absent>";
}

bool has_form(const ReceivedRequest& r, const std::string& name) {
    return std::any_of(r.form.begin(), r.form.end(),
                       [&](const auto& p) { return p.first == name; });
}

std::size_t count_endpoint(const std::vector<ReceivedRequest>& requests, const std::string& e) {
    return static_cast<std::size_t>(std::count_if(requests.begin(), requests.end(),
                                                  [&](const auto& r) { return r.endpoint == e; }));
}

class JenkinsClientTest : public ::testing::Test {
  protected:
    JenkinsConfig config_for(const FakeJenkins& fake, bool with_user = true) const {
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
        return c;
    }

    std::shared_ptr<JenkinsClient> client(const JenkinsConfig& config) {
        std::string why;
        auto made = make_client(ioc.get_executor(), config, &why);
        EXPECT_TRUE(made) << why;
        return made ? *made : nullptr;
    }

    JenkinsOutcome trigger(const std::shared_ptr<JenkinsClient>& c, TriggerRequest request,
                           std::optional<Secret> token = std::nullopt) {
        return run(ioc, c->trigger(std::move(request), std::move(token)));
    }

    JenkinsOutcome probe(const std::shared_ptr<JenkinsClient>& c) { return run(ioc, c->probe()); }

    asio::io_context ioc;
    FakeJenkins fake{FakeJenkins::Options{}};
};

TEST_F(JenkinsClientTest, PlainJobLandsOnBuildWithAuthAndCause) {
    fake.add_job({"acme", "app"});
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"acme", "app"}));

    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 201);
    EXPECT_EQ(outcome.queue_url, fake.url() + "queue/item/1/");
    ASSERT_EQ(fake.builds().size(), 1u);
    const auto b = fake.builds()[0];
    EXPECT_EQ(b.method, "POST");
    EXPECT_EQ(b.endpoint, "build");
    EXPECT_EQ(b.job, (std::vector<std::string>{"acme", "app"}));
    EXPECT_EQ(b.target, "/job/acme/job/app/build?delay=0sec");
    EXPECT_TRUE(b.authenticated);
    EXPECT_EQ(b.user, "hookrelay");
    EXPECT_EQ(b.cause, "hookrelay: github push delivery 72d3162e");
    EXPECT_EQ(b.form.size(), 1u);
    EXPECT_EQ(b.header("Content-Type"), "application/x-www-form-urlencoded");
    EXPECT_EQ(b.header("User-Agent").rfind("hookrelay/", 0), 0u);
    EXPECT_EQ(b.header("Host"), "127.0.0.1:" + std::to_string(fake.port()));
    // API token auth: no crumb, no cookie.
    EXPECT_EQ(count_endpoint(fake.requests(), "crumbIssuer"), 0u);
    EXPECT_EQ(b.header("Cookie"), "");
}

TEST_F(JenkinsClientTest, ParametersGoInTheBodyOnly) {
    fake.add_job({"acme", "app"}, {"BRANCH", "SHA", "NOTE"});
    auto c = client(config_for(fake));
    const auto outcome = trigger(
        c, request_for({"acme", "app"},
                       {{"BRANCH", "feature/x"}, {"SHA", "0123abc"}, {"NOTE", "a b&c=d+e%f"}}));

    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    ASSERT_EQ(fake.builds().size(), 1u);
    const auto b = fake.builds()[0];
    EXPECT_EQ(b.endpoint, "buildWithParameters");
    EXPECT_EQ(b.target, "/job/acme/job/app/buildWithParameters?delay=0sec");
    ASSERT_EQ(b.query.size(), 1u);
    EXPECT_EQ(query_value(b, "delay"), "0sec");
    EXPECT_EQ(b.param("BRANCH"), "feature/x");
    EXPECT_EQ(b.param("SHA"), "0123abc");
    EXPECT_EQ(b.param("NOTE"), "a b&c=d+e%f");
    EXPECT_TRUE(has_form(b, "cause"));
    EXPECT_EQ(b.cause, "hookrelay: github push delivery 72d3162e");
}

TEST_F(JenkinsClientTest, MultibranchBranchIsDoubleEncoded) {
    fake.add_job({"acme", "app", "feature%2Fx"});
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"acme", "app", "feature/x"}));

    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    ASSERT_EQ(fake.builds().size(), 1u);
    EXPECT_EQ(fake.builds()[0].target, "/job/acme/job/app/job/feature%252Fx/build?delay=0sec");
    EXPECT_EQ(fake.builds()[0].job.back(), "feature%2Fx");
}

TEST_F(JenkinsClientTest, IdenticalParameterizedTriggerMergesWith303) {
    fake.add_job({"app"}, {"SHA"});
    auto c = client(config_for(fake));
    const auto first = trigger(c, request_for({"app"}, {{"SHA", "1"}}));
    const auto second = trigger(c, request_for({"app"}, {{"SHA", "1"}}));
    const auto other = trigger(c, request_for({"app"}, {{"SHA", "2"}}));

    EXPECT_EQ(first.kind, Kind::queued);
    EXPECT_EQ(second.kind, Kind::merged) << second.detail;
    EXPECT_EQ(second.http_status, 303);
    EXPECT_EQ(second.queue_url, first.queue_url);
    EXPECT_EQ(other.kind, Kind::queued);
    EXPECT_NE(other.queue_url, first.queue_url);

    fake.drain_queue();
    const auto after = trigger(c, request_for({"app"}, {{"SHA", "1"}}));
    EXPECT_EQ(after.kind, Kind::queued);
    EXPECT_NE(after.queue_url, first.queue_url);
}

TEST_F(JenkinsClientTest, PlainJobRepeatIsQueuedWithTheSameLocation) {
    fake.add_job({"app"});
    auto c = client(config_for(fake));
    const auto first = trigger(c, request_for({"app"}));
    const auto second = trigger(c, request_for({"app"}));
    EXPECT_EQ(second.kind, Kind::queued);  // /build answers 201 even when merged (§0.6)
    EXPECT_EQ(second.queue_url, first.queue_url);
}

TEST_F(JenkinsClientTest, Redirect302IsRefused) {
    fake.add_job({"app"});
    fake.fail_next(1, 302);
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"app"}));
    EXPECT_EQ(outcome.kind, Kind::refused);
    EXPECT_EQ(outcome.http_status, 302);
    EXPECT_TRUE(outcome.queue_url.empty());
    // Not followed: the job page was never requested.
    EXPECT_EQ(fake.requests().size(), 1u);
}

TEST_F(JenkinsClientTest, UnknownJobIsPermanent404) {
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"nope"}));
    EXPECT_EQ(outcome.kind, Kind::permanent);
    EXPECT_EQ(outcome.http_status, 404);
    EXPECT_EQ(outcome.detail, "HTTP 404 Not Found");
}

TEST_F(JenkinsClientTest, WrongJobTokenIsPermanent403EvenWhenAuthenticated) {
    fake.add_job({"app"}, {}, "right-token");
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"app"}), Secret("wrong-token"));
    EXPECT_EQ(outcome.kind, Kind::permanent);
    EXPECT_EQ(outcome.http_status, 403);
    EXPECT_EQ(outcome.detail.find("wrong-token"), std::string::npos);
    EXPECT_EQ(query_value(fake.requests().front(), "token"), "wrong-token");
}

TEST_F(JenkinsClientTest, NotBuildable409IsPermanent) {
    fake.add_job({"app"});
    fake.fail_next(1, 409);
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"app"}));
    EXPECT_EQ(outcome.kind, Kind::permanent);
    EXPECT_EQ(outcome.detail, "HTTP 409 Conflict: the job is not buildable (disabled?)");
}

// The dead trigger says what Jenkins' bare 400 means for the request it answered.
TEST_F(JenkinsClientTest, ParameterizedJobWithoutParametersIs400Permanent) {
    fake.add_job({"app"}, {"SHA"});
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"app"}));
    EXPECT_EQ(outcome.kind, Kind::permanent);
    EXPECT_EQ(outcome.http_status, 400);
    EXPECT_NE(outcome.detail.find(": the job is parameterized, and this trigger sends no "
                                  "parameters"),
              std::string::npos)
        << outcome.detail;
}

TEST_F(JenkinsClientTest, ParametersToAJobWithoutParametersIs400AndSaysSo) {
    fake.add_job({"app"});
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"app"}, {{"SHA", "1"}}));
    EXPECT_EQ(outcome.kind, Kind::permanent);
    EXPECT_EQ(outcome.http_status, 400);
    EXPECT_NE(outcome.detail.find(": the job takes no parameters, and this trigger sends some"),
              std::string::npos)
        << outcome.detail;
}

// A 400 of something else (a proxy, a form limit) gets no guess at its cause.
TEST_F(JenkinsClientTest, AnotherBadRequestIsNotExplainedAsParameters) {
    fake.add_job({"app"}, {"SHA"});
    fake.fail_next(1, 400);
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"app"}, {{"SHA", "1"}}));
    EXPECT_EQ(outcome.kind, Kind::permanent);
    EXPECT_EQ(outcome.detail, "HTTP 400 Bad Request");
}

// The crumb is bound to the session cookie it was issued with: one refused right after it was
// fetched means the cookie does not come back.
TEST_F(JenkinsClientTest, ACrumbRefusedRightAfterItWasFetchedSaysTheCookieDoesNotComeBack) {
    fake.add_job({"app"});
    fake.fail_next(2, 403, "", "No valid crumb was included in the request");
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"app"}));
    EXPECT_EQ(outcome.kind, Kind::permanent);
    EXPECT_NE(outcome.detail.find("HTTP 403 No valid crumb after a fresh crumb: the session "
                                  "cookie does not come back"),
              std::string::npos)
        << outcome.detail;
}

TEST_F(JenkinsClientTest, WrongApiTokenIs401AuthFailed) {
    fake.add_job({"app"});
    auto config = config_for(fake);
    config.api_token = Secret("not-the-token");
    auto c = client(config);
    const auto outcome = trigger(c, request_for({"app"}));
    EXPECT_EQ(outcome.kind, Kind::auth_failed);
    EXPECT_EQ(outcome.http_status, 401);
    EXPECT_EQ(outcome.detail.find("not-the-token"), std::string::npos);
}

TEST_F(JenkinsClientTest, ProbeWithARotatedApiTokenIsAuthFailed) {
    auto c = client(config_for(fake));
    EXPECT_EQ(probe(c).kind, Kind::queued);
    fake.set_api_token("rotated-token");
    const auto outcome = probe(c);
    EXPECT_EQ(outcome.kind, Kind::auth_failed);
    EXPECT_EQ(outcome.http_status, 401);
}

TEST_F(JenkinsClientTest, ForbiddenBuildIsAuthFailedWhenTheUserCannotReadJenkinsAtAll) {
    fake.add_job({"app"});
    fake.set_read_denied(true);
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"app"}));
    EXPECT_EQ(outcome.kind, Kind::auth_failed) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 403);
    EXPECT_EQ(count_endpoint(fake.requests(), "api"), 1u);  // the root API was asked
}

TEST_F(JenkinsClientTest, ForbiddenCrumbIssuerIsAuthFailed) {
    fake.add_job({"app"}, {}, "job-secret");
    fake.set_read_denied(true);
    auto c = client(config_for(fake, false));
    const auto outcome = trigger(c, request_for({"app"}), Secret("job-secret"));
    EXPECT_EQ(outcome.kind, Kind::auth_failed) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 403);
}

TEST_F(JenkinsClientTest, ForbiddenBuildOfOneJobStaysPermanentWhenTheUserCanReadJenkins) {
    fake.add_job({"app"}, {}, "right-token");
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"app"}), Secret("wrong-token"));
    EXPECT_EQ(outcome.kind, Kind::permanent) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 403);
    EXPECT_EQ(count_endpoint(fake.requests(), "api"), 1u);  // asked, and answered
}

TEST_F(JenkinsClientTest, Http500IsServerError) {
    fake.add_job({"app"});
    fake.fail_next(1, 500);
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"app"}));
    EXPECT_EQ(outcome.kind, Kind::server_error);
    EXPECT_EQ(outcome.http_status, 500);
    EXPECT_EQ(trigger(c, request_for({"app"})).kind, Kind::queued);
}

TEST_F(JenkinsClientTest, Http503AndRestartingAreUnavailable) {
    fake.add_job({"app"});
    auto c = client(config_for(fake));
    fake.fail_next(1, 503);
    const auto injected = trigger(c, request_for({"app"}));
    EXPECT_EQ(injected.kind, Kind::unavailable);
    EXPECT_EQ(injected.http_status, 503);
    EXPECT_FALSE(injected.maybe_queued);  // Jenkins answered: nothing was queued

    fake.set_restarting(true);
    const auto restarting = trigger(c, request_for({"app"}));
    EXPECT_EQ(restarting.kind, Kind::unavailable);
    EXPECT_EQ(restarting.http_status, 503);
    EXPECT_EQ(probe(c).kind, Kind::unavailable);

    fake.set_restarting(false);
    EXPECT_NE(probe(c).kind, Kind::unavailable);
    EXPECT_EQ(trigger(c, request_for({"app"})).kind, Kind::queued);
}

TEST_F(JenkinsClientTest, TooManyRequestsIsThrottledWithItsRetryAfter) {
    fake.add_job({"app"});
    fake.fail_next(1, 429, "7");
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"app"}));
    EXPECT_EQ(outcome.kind, Kind::throttled) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 429);
    EXPECT_EQ(outcome.retry_after, std::chrono::milliseconds(7'000));
    EXPECT_EQ(outcome.detail, "HTTP 429 Too Many Requests (Retry-After 7 s)");
    EXPECT_EQ(trigger(c, request_for({"app"})).kind, Kind::queued);
}

TEST_F(JenkinsClientTest, ServiceUnavailableCarriesAnHttpDateRetryAfter) {
    fake.add_job({"app"});
    // An IMF-fixdate 60 s from now, as a proxy's maintenance page would send it.
    const std::time_t at = std::time(nullptr) + 60;
    std::tm utc{};
    gmtime_r(&at, &utc);
    char date[64];
    ASSERT_GT(std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &utc), 0u);
    fake.fail_next(1, 503, date);
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"app"}));
    EXPECT_EQ(outcome.kind, Kind::unavailable);
    ASSERT_TRUE(outcome.retry_after.has_value()) << outcome.detail;
    EXPECT_GT(*outcome.retry_after, std::chrono::seconds(55));
    EXPECT_LE(*outcome.retry_after, std::chrono::seconds(60));
}

TEST_F(JenkinsClientTest, NoRetryAfterHeaderLeavesItUnset) {
    fake.add_job({"app"});
    fake.fail_next(1, 503);
    auto c = client(config_for(fake));
    EXPECT_EQ(trigger(c, request_for({"app"})).retry_after, std::nullopt);
}

TEST_F(JenkinsClientTest, OversizedLocationOn201IsQueuedNotUnavailable) {
    fake.add_job({"app"});
    fake.pad_location(40 * 1024);  // over the client's 32 KiB head limit
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"app"}));
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 201);
    EXPECT_TRUE(outcome.queue_url.empty());
    EXPECT_NE(outcome.detail.find("Location too long to use"), std::string::npos) << outcome.detail;
    EXPECT_EQ(fake.builds().size(), 1u);

    // The half-read connection is not reused; the next request goes out on a fresh one.
    fake.pad_location(0);
    fake.drain_queue();
    const auto next = trigger(c, request_for({"app"}));
    EXPECT_EQ(next.kind, Kind::queued) << next.detail;
    EXPECT_FALSE(next.queue_url.empty());
    EXPECT_EQ(fake.connections_accepted(), 2u);
}

TEST_F(JenkinsClientTest, OversizedLocationOn303IsMerged) {
    fake.add_job({"app"}, {"SHA"});
    auto c = client(config_for(fake));
    EXPECT_EQ(trigger(c, request_for({"app"}, {{"SHA", "1"}})).kind, Kind::queued);
    fake.pad_location(40 * 1024);
    const auto outcome = trigger(c, request_for({"app"}, {{"SHA", "1"}}));
    EXPECT_EQ(outcome.kind, Kind::merged) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 303);
    EXPECT_TRUE(outcome.queue_url.empty());
}

// A 303 that does not lead to a queue item is not Jenkins merging the build: a single sign-on
// proxy sends the POST to its login page, and nothing was queued. It used to count as merged, the
// trigger delivered.
TEST_F(JenkinsClientTest, A303ToSomethingOtherThanAQueueItemIsNotMerged) {
    fake.add_job({"app"});
    fake.fail_next(1, 303);
    auto c = client(config_for(fake));
    const auto outcome = trigger(c, request_for({"app"}));
    EXPECT_EQ(outcome.kind, Kind::permanent) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 303);
    EXPECT_TRUE(outcome.queue_url.empty());
    EXPECT_EQ(outcome.detail, "HTTP 303 See Other to " + fake.url() +
                                  "sso/login, not a Jenkins queue item (a proxy's login page?): "
                                  "the build was not queued");
}

TEST_F(JenkinsClientTest, ConnectionRefusedIsUnavailable) {
    fake.add_job({"app"});
    auto c = client(config_for(fake));
    fake.stop();
    const auto outcome = trigger(c, request_for({"app"}));
    EXPECT_EQ(outcome.kind, Kind::unavailable);
    EXPECT_EQ(outcome.http_status, 0);
    EXPECT_EQ(outcome.detail,
              "connect 127.0.0.1:" + std::to_string(fake.port()) + ": Connection refused");
    EXPECT_FALSE(outcome.maybe_queued);
    EXPECT_EQ(probe(c).kind, Kind::unavailable);

    fake.start();
    EXPECT_EQ(probe(c).kind, Kind::queued);
    EXPECT_EQ(trigger(c, request_for({"app"})).kind, Kind::queued);
}

TEST_F(JenkinsClientTest, ProbeIsAnAuthenticatedGet) {
    auto c = client(config_for(fake));
    const auto outcome = probe(c);
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    EXPECT_EQ(outcome.http_status, 200);
    ASSERT_EQ(fake.requests().size(), 1u);
    const auto r = fake.requests()[0];
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.target, "/api/json?tree=mode");
    EXPECT_TRUE(r.authenticated);
}

// A server that accepts connections (the kernel completes the handshake) but never answers.
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

TEST_F(JenkinsClientTest, RequestTimeoutBoundsTheWholeCall) {
    Silent silent;
    auto config = config_for(fake);
    config.url = silent.url();
    config.request_timeout = std::chrono::milliseconds(300);
    auto c = client(config);
    const auto started = std::chrono::steady_clock::now();
    const auto outcome = trigger(c, request_for({"app"}));
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(outcome.kind, Kind::unavailable);
    // Written whole into a connection the server's kernel took: a Jenkins stalled as a whole
    // may still act on it when it comes back.
    EXPECT_EQ(outcome.detail,
              "request: timeout after 300 ms (the request was sent: Jenkins may have queued the "
              "build)");
    EXPECT_TRUE(outcome.maybe_queued);
    EXPECT_GE(took, std::chrono::milliseconds(300));
    EXPECT_LT(took, std::chrono::seconds(3));
    EXPECT_GE(outcome.duration, std::chrono::milliseconds(300));
}

TEST_F(JenkinsClientTest, IoTimeoutNamesTheReadPhase) {
    Silent silent;
    auto config = config_for(fake);
    config.url = silent.url();
    config.io_timeout = std::chrono::milliseconds(200);
    auto c = client(config);
    const auto outcome = trigger(c, request_for({"app"}));
    EXPECT_EQ(outcome.kind, Kind::unavailable);
    EXPECT_EQ(outcome.detail,
              "read: timeout after 200 ms (the request was sent: Jenkins may have queued the "
              "build)");
    EXPECT_TRUE(outcome.maybe_queued);
}

TEST_F(JenkinsClientTest, ABuildRequestJenkinsReadButDidNotAnswerMayHaveBeenQueued) {
    fake.add_job({"app"});
    auto config = config_for(fake);
    config.io_timeout = std::chrono::milliseconds(200);
    auto c = client(config);
    fake.set_hanging(true);
    const auto outcome = trigger(c, request_for({"app"}));
    EXPECT_EQ(outcome.kind, Kind::unavailable);
    EXPECT_TRUE(outcome.maybe_queued);
    EXPECT_EQ(outcome.detail,
              "read: timeout after 200 ms (the request was sent: Jenkins may have queued the "
              "build)");
    ASSERT_EQ(fake.requests().size(), 1u);
    EXPECT_EQ(fake.requests()[0].endpoint, "build");
    // A probe of the same Jenkins is only a question: never "may have queued".
    const auto asked = probe(c);
    EXPECT_EQ(asked.kind, Kind::unavailable);
    EXPECT_FALSE(asked.maybe_queued);
}

TEST_F(JenkinsClientTest, AProxysGatewayTimeoutMayHaveQueuedTheBuildItsBadGatewayNot) {
    fake.add_job({"app"});
    auto c = client(config_for(fake));
    fake.fail_next(1, 504);
    const auto timed_out = trigger(c, request_for({"app"}));
    EXPECT_EQ(timed_out.kind, Kind::unavailable);
    EXPECT_EQ(timed_out.http_status, 504);
    EXPECT_TRUE(timed_out.maybe_queued);
    EXPECT_EQ(timed_out.detail,
              "HTTP 504 Gateway Timeout (the request was sent: Jenkins may have queued the "
              "build)");
    fake.fail_next(1, 502);
    const auto bad_gateway = trigger(c, request_for({"app"}));
    EXPECT_EQ(bad_gateway.kind, Kind::unavailable);
    EXPECT_FALSE(bad_gateway.maybe_queued);
}

TEST_F(JenkinsClientTest, JobTokenWithoutUserFetchesCrumbAndSendsCookie) {
    fake.add_job({"acme", "app"}, {}, "job-secret");
    auto c = client(config_for(fake, /*with_user=*/false));
    const auto first = trigger(c, request_for({"acme", "app"}), Secret("job-secret"));
    EXPECT_EQ(first.kind, Kind::queued) << first.detail;

    auto requests = fake.requests();
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[0].method, "GET");
    EXPECT_EQ(requests[0].target, "/crumbIssuer/api/json");
    EXPECT_FALSE(requests[0].authenticated);
    const auto& post = requests[1];
    EXPECT_EQ(post.status, 201);
    EXPECT_FALSE(post.authenticated);
    EXPECT_EQ(post.header("Authorization"), "");
    EXPECT_EQ(query_value(post, "token"), "job-secret");
    EXPECT_FALSE(has_form(post, "token"));
    EXPECT_EQ(post.header("Jenkins-Crumb").size(), 64u);
    EXPECT_EQ(post.header("Cookie").rfind(fake.cookie_name() + "=", 0), 0u);
    EXPECT_EQ(post.cause, "hookrelay: github push delivery 72d3162e");

    // The crumb and cookie are cached.
    EXPECT_EQ(trigger(c, request_for({"acme", "app"}), Secret("job-secret")).kind, Kind::queued);
    EXPECT_EQ(count_endpoint(fake.requests(), "crumbIssuer"), 1u);
}

TEST_F(JenkinsClientTest, StaleCrumbIsRefetchedExactlyOnce) {
    fake.add_job({"app"}, {"SHA"}, "job-secret");
    auto c = client(config_for(fake, false));
    EXPECT_EQ(trigger(c, request_for({"app"}, {{"SHA", "1"}}), Secret("job-secret")).kind,
              Kind::queued);
    fake.invalidate_sessions();
    const auto outcome = trigger(c, request_for({"app"}, {{"SHA", "2"}}), Secret("job-secret"));
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;

    const auto requests = fake.requests();
    ASSERT_EQ(requests.size(), 5u);
    EXPECT_EQ(requests[2].status, 403);
    EXPECT_EQ(requests[3].endpoint, "crumbIssuer");
    EXPECT_EQ(requests[4].status, 201);
    EXPECT_EQ(requests[4].header("Cookie").rfind(fake.cookie_name() + "=", 0), 0u);
    EXPECT_EQ(count_endpoint(requests, "crumbIssuer"), 2u);
}

TEST_F(JenkinsClientTest, AnonymousWithoutTokenIsPermanent403) {
    fake.add_job({"app"});
    auto c = client(config_for(fake, false));
    const auto outcome = trigger(c, request_for({"app"}));
    EXPECT_EQ(outcome.kind, Kind::permanent);
    EXPECT_EQ(outcome.http_status, 403);
    EXPECT_EQ(outcome.detail, "HTTP 403 Forbidden");
    EXPECT_EQ(count_endpoint(fake.requests(), "crumbIssuer"), 1u);
}

TEST_F(JenkinsClientTest, KeepAliveConnectionIsReused) {
    fake.add_job({"app"}, {"N"});
    auto c = client(config_for(fake));
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(trigger(c, request_for({"app"}, {{"N", std::to_string(i)}})).kind, Kind::queued);
    }
    EXPECT_EQ(fake.builds().size(), 5u);
    EXPECT_EQ(fake.connections_accepted(), 1u);
}

TEST_F(JenkinsClientTest, ConcurrentTriggersStayWithinMaxInFlight) {
    fake.add_job({"app"}, {"N"});
    auto config = config_for(fake);
    config.max_in_flight = 2;
    auto c = client(config);
    std::vector<asio::awaitable<JenkinsOutcome>> tasks;
    for (int i = 0; i < 8; ++i) {
        tasks.push_back(c->trigger(request_for({"app"}, {{"N", std::to_string(i)}}), {}));
    }
    const auto outcomes = run_all(ioc, std::move(tasks));
    for (const auto& o : outcomes) EXPECT_EQ(o.kind, Kind::queued) << o.detail;
    EXPECT_TRUE(fake.wait_for_builds(8, std::chrono::seconds(5)));
    EXPECT_LE(fake.connections_accepted(), 2u);
    EXPECT_GE(fake.connections_accepted(), 1u);
}

TEST_F(JenkinsClientTest, ConcurrentTriggersFromSeveralThreads) {
    fake.add_job({"app"}, {"N"});
    asio::thread_pool pool(3);
    auto config = config_for(fake);
    config.max_in_flight = 3;
    auto made = make_client(pool.get_executor(), config);
    ASSERT_TRUE(made);
    auto c = *made;
    std::vector<std::future<JenkinsOutcome>> futures;
    for (int i = 0; i < 24; ++i) {
        // Each caller on its own strand, as the dispatcher's coroutines would be.
        futures.push_back(
            asio::co_spawn(asio::make_strand(pool),
                           c->trigger(request_for({"app"}, {{"N", std::to_string(i % 12)}}), {}),
                           asio::use_future));
    }
    int queued = 0;
    int merged = 0;
    for (auto& f : futures) {
        const auto outcome = f.get();
        queued += outcome.kind == Kind::queued ? 1 : 0;
        merged += outcome.kind == Kind::merged ? 1 : 0;
    }
    pool.join();
    EXPECT_EQ(queued, 12);
    EXPECT_EQ(merged, 12);
    EXPECT_LE(fake.connections_accepted(), 3u);
}

TEST_F(JenkinsClientTest, ClosedPooledConnectionIsRetriedOnAFreshOne) {
    fake.add_job({"app"}, {"N"});
    auto c = client(config_for(fake));
    EXPECT_EQ(trigger(c, request_for({"app"}, {{"N", "1"}})).kind, Kind::queued);
    fake.stop();  // closes the kept-alive connection too
    fake.start();
    const auto outcome = trigger(c, request_for({"app"}, {{"N", "2"}}));
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    EXPECT_EQ(fake.builds().size(), 2u);
    EXPECT_EQ(fake.connections_accepted(), 2u);
}

class JenkinsClientTlsTest : public ::testing::Test {
  protected:
    static std::string temp_dir() {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        auto dir = std::filesystem::temp_directory_path() /
                   ("hookrelay-jenkins-tls-" + std::string(info->name()) + "-" +
                    std::to_string(::getpid()));
        return dir.string();
    }

    JenkinsClientTlsTest()
        : dir_(temp_dir()),
          certs_(test::make_test_certificates(dir_)),
          fake_(FakeJenkins::Options{true, certs_.cert_file, certs_.key_file}) {
        fake_.add_job({"app"});
    }
    ~JenkinsClientTlsTest() override {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    JenkinsConfig config(std::string ca_file) const {
        JenkinsConfig c;
        c.name = "tls";
        c.url = fake_.url();
        c.user = "hookrelay";
        c.api_token = Secret("fake-api-token");
        c.ca_file = std::move(ca_file);
        return c;
    }

    std::string dir_;
    test::TestCertificates certs_;
    FakeJenkins fake_;
    asio::io_context ioc_;
};

TEST_F(JenkinsClientTlsTest, TriggersOverHttpsWithTheTestCa) {
    ASSERT_EQ(fake_.url().rfind("https://127.0.0.1:", 0), 0u);
    auto made = make_client(ioc_.get_executor(), config(certs_.ca_file));
    ASSERT_TRUE(made);
    auto c = *made;
    const auto outcome = run(ioc_, c->trigger(request_for({"app"}), {}));
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
    EXPECT_EQ(outcome.queue_url.rfind("https://127.0.0.1:", 0), 0u);
    EXPECT_EQ(run(ioc_, c->trigger(request_for({"app"}), {})).kind, Kind::queued);
    EXPECT_EQ(run(ioc_, c->probe()).kind, Kind::queued);
    EXPECT_EQ(fake_.connections_accepted(), 1u);
}

TEST_F(JenkinsClientTlsTest, HostNameIsResolvedAndVerified) {
    auto cfg = config(certs_.ca_file);
    cfg.url = "https://localhost:" + std::to_string(fake_.port()) + "/";
    auto made = make_client(ioc_.get_executor(), cfg);
    ASSERT_TRUE(made);
    const auto outcome = run(ioc_, (*made)->trigger(request_for({"app"}), {}));
    EXPECT_EQ(outcome.kind, Kind::queued) << outcome.detail;
}

TEST_F(JenkinsClientTlsTest, SystemCasRejectTheTestCertificate) {
    auto made = make_client(ioc_.get_executor(), config(""));
    ASSERT_TRUE(made);
    const auto outcome = run(ioc_, (*made)->trigger(request_for({"app"}), {}));
    EXPECT_EQ(outcome.kind, Kind::unavailable);
    EXPECT_EQ(outcome.http_status, 0);
    EXPECT_NE(outcome.detail.find("TLS handshake with 127.0.0.1:"), std::string::npos)
        << outcome.detail;
    EXPECT_NE(outcome.detail.find("certificate verify failed: "), std::string::npos)
        << outcome.detail;
    EXPECT_TRUE(fake_.builds().empty());
}

TEST_F(JenkinsClientTlsTest, HostNameMismatchIsUnavailableWithTheReason) {
    // [::ffff:127.0.0.1] reaches the fake over a dual-stack socket, but the certificate names
    // only IP 127.0.0.1 and DNS localhost.
    auto cfg = config(certs_.ca_file);
    cfg.url = "https://[::ffff:127.0.0.1]:" + std::to_string(fake_.port()) + "/";
    auto made = make_client(ioc_.get_executor(), cfg);
    ASSERT_TRUE(made);
    const auto outcome = run(ioc_, (*made)->trigger(request_for({"app"}), {}));
    if (outcome.detail.rfind("connect ", 0) == 0) GTEST_SKIP() << "no dual-stack loopback";
    EXPECT_EQ(outcome.kind, Kind::unavailable);
    EXPECT_NE(outcome.detail.find("certificate verify failed: "), std::string::npos)
        << outcome.detail;
    EXPECT_NE(outcome.detail.find("mismatch"), std::string::npos) << outcome.detail;
}

TEST(MakeClient, RejectsBadUrlAndMissingCaFile) {
    asio::io_context ioc;
    JenkinsConfig config;
    config.name = "ci";
    config.url = "ftp://jenkins/";
    std::string why;
    auto bad_url = make_client(ioc.get_executor(), config, &why);
    ASSERT_FALSE(bad_url);
    EXPECT_EQ(bad_url.error(), make_error_code(errc::bad_config));
    EXPECT_EQ(why, "jenkins ci: url scheme must be http or https");

    config.url = "https://jenkins.example/";
    config.ca_file = "/nonexistent/ca.pem";
    auto bad_ca = make_client(ioc.get_executor(), config, &why);
    ASSERT_FALSE(bad_ca);
    EXPECT_EQ(bad_ca.error(), make_error_code(errc::bad_config));
    EXPECT_NE(why.find("/nonexistent/ca.pem"), std::string::npos) << why;

    config.ca_file.clear();
    EXPECT_TRUE(make_client(ioc.get_executor(), config));
}

}  // namespace
}  // namespace hookrelay::jenkins
