// The scripted JenkinsClient the dispatcher and follower unit tests drive: read() answers by path.
#include "fakes/scripted_jenkins.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <optional>

namespace hookrelay::test {
namespace {

namespace asio = boost::asio;
using Kind = JenkinsOutcome::Kind;

JenkinsOutcome read(asio::io_context& ioc, ScriptedJenkins& jenkins, std::string path) {
    std::optional<JenkinsOutcome> result;
    asio::co_spawn(ioc, jenkins.read(std::move(path)),
                   [&](std::exception_ptr, JenkinsOutcome o) { result = std::move(o); });
    ioc.restart();
    ioc.run();
    return result.value_or(JenkinsOutcome{});
}

template <class T>
T run(asio::io_context& ioc, asio::awaitable<T> task) {
    std::optional<T> result;
    asio::co_spawn(ioc, std::move(task), [&](std::exception_ptr, T o) { result = std::move(o); });
    ioc.restart();
    ioc.run();
    return result.value_or(T{});
}

TEST(ScriptedJenkins, ScansAnswerAsScriptedThenQueuedAndAreRecorded) {
    asio::io_context ioc;
    ScriptedJenkins jenkins(ioc.get_executor());
    jenkins.then_scan(Kind::permanent, 500, "cannot be recomputed");
    const auto first = run(ioc, jenkins.scan({"acme", "app"}));
    EXPECT_EQ(first.kind, Kind::permanent);
    EXPECT_EQ(first.http_status, 500);
    EXPECT_EQ(first.detail, "cannot be recomputed");
    const auto second = run(ioc, jenkins.scan({"org", "repo"}));
    EXPECT_EQ(second.kind, Kind::queued);
    EXPECT_EQ(second.http_status, 302);
    EXPECT_EQ(jenkins.scans,
              (std::vector<std::vector<std::string>>{{"acme", "app"}, {"org", "repo"}}));
}

TEST(ScriptedJenkins, CancelsAnswerAsScriptedThenQueuedAndAreRecorded) {
    asio::io_context ioc;
    ScriptedJenkins jenkins(ioc.get_executor());
    jenkins.then_cancel(Kind::permanent, 404);
    EXPECT_EQ(run(ioc, jenkins.cancel_item(7)).http_status, 404);
    const auto second = run(ioc, jenkins.cancel_item(8));
    EXPECT_EQ(second.kind, Kind::queued);
    EXPECT_EQ(second.http_status, 204);
    EXPECT_EQ(jenkins.cancels, (std::vector<std::int64_t>{7, 8}));
}

TEST(ScriptedJenkins, ReadAnswersInOrderPerPathAndTheLastOneStays) {
    asio::io_context ioc;
    ScriptedJenkins jenkins(ioc.get_executor());
    jenkins.then_read("queue/item/7/api/json", 200, R"({"why":"In the quiet period"})");
    jenkins.then_read("queue/item/7/api/json", 200, R"({"executable":{"number":3}})");
    jenkins.then_read("job/app/3/api/json", 503);

    EXPECT_EQ(read(ioc, jenkins, "queue/item/7/api/json").body, R"({"why":"In the quiet period"})");
    const auto build = read(ioc, jenkins, "job/app/3/api/json");
    EXPECT_EQ(build.kind, Kind::unavailable);
    EXPECT_EQ(build.http_status, 503);
    const auto second = read(ioc, jenkins, "queue/item/7/api/json");
    EXPECT_EQ(second.kind, Kind::queued);
    EXPECT_EQ(second.body, R"({"executable":{"number":3}})");
    EXPECT_EQ(read(ioc, jenkins, "queue/item/7/api/json").body, second.body);
    EXPECT_EQ(jenkins.reads,
              (std::vector<std::string>{"queue/item/7/api/json", "job/app/3/api/json",
                                        "queue/item/7/api/json", "queue/item/7/api/json"}));
}

TEST(ScriptedJenkins, UnscriptedReadIsPermanent404) {
    asio::io_context ioc;
    ScriptedJenkins jenkins(ioc.get_executor());
    const auto o = read(ioc, jenkins, "queue/item/1/api/json");
    EXPECT_EQ(o.kind, Kind::permanent);
    EXPECT_EQ(o.http_status, 404);
}

TEST(ScriptedJenkins, ReadStatusesAreKindsAsTheClientReportsThem) {
    asio::io_context ioc;
    ScriptedJenkins jenkins(ioc.get_executor());
    const std::vector<std::pair<int, Kind>> cases = {
        {401, Kind::auth_failed}, {403, Kind::permanent},    {404, Kind::permanent},
        {429, Kind::throttled},   {500, Kind::server_error}, {502, Kind::unavailable},
        {0, Kind::unavailable}};
    for (const auto& [status, kind] : cases) {
        const auto path = "p" + std::to_string(status);
        jenkins.then_read(path, status);
        EXPECT_EQ(read(ioc, jenkins, path).kind, kind) << status;
    }
}

}  // namespace
}  // namespace hookrelay::test
