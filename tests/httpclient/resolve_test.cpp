// Host names looked up on a thread of their own (util/resolve.hpp): the answer, the callers of
// one name at once sharing a lookup, and a caller that stopped waiting never reached.
#include "util/resolve.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

namespace hookrelay {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Runs `lookup` to its end on a fresh io_context; what it gave.
Resolved run(
    std::function<asio::awaitable<Resolved>(asio::io_context&, asio::steady_timer&)> lookup,
    std::chrono::milliseconds within = 5s) {
    asio::io_context ioc;
    asio::steady_timer timer(ioc, within);
    std::optional<Resolved> out;
    asio::co_spawn(
        ioc, [&]() -> asio::awaitable<void> { out = co_await lookup(ioc, timer); },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    ioc.run();
    EXPECT_TRUE(out.has_value());
    return out.value_or(Resolved{});
}

TEST(Resolve, ANameFromTheHostsFileIsFound) {
    const auto found = run([](asio::io_context& ioc, asio::steady_timer& timer) {
        return resolve_within(ioc.get_executor(), "localhost", "8080", timer);
    });
    ASSERT_FALSE(found.failed()) << found.error;
    bool loopback = false;
    for (const auto& e : found.endpoints) {
        EXPECT_EQ(e.port(), 8080);
        loopback = loopback || e.address().is_loopback();
    }
    EXPECT_TRUE(loopback);
}

// Callers of one name while its lookup runs share it (one thread), and each hears the answer.
TEST(Resolve, CallersOfOneNameAtOnceAllHearTheAnswer) {
    struct Heard {
        std::mutex mutex;
        std::condition_variable cv;
        std::vector<Resolved> answers;
    };
    auto heard = std::make_shared<Heard>();  // the lookup's thread may outlive a failed test
    for (int i = 0; i < 8; ++i) {
        look_up_in_background("localhost", "", [heard](Resolved r) {
            std::lock_guard lock(heard->mutex);
            heard->answers.push_back(std::move(r));
            heard->cv.notify_all();
        });
    }
    std::unique_lock lock(heard->mutex);
    ASSERT_TRUE(heard->cv.wait_for(lock, 10s, [&] { return heard->answers.size() == 8; }));
    for (const auto& r : heard->answers) EXPECT_FALSE(r.failed()) << r.error;
}

// A lookup that answers after its caller stopped waiting (its timer expired): the caller hears
// timed_out at the timer, and the late answer goes nowhere (its io_context is gone by then).
TEST(Resolve, AnAnswerAfterTheTimerGoesNowhere) {
    std::function<void(Resolved)> late;
    const auto found = run(
        [&](asio::io_context& ioc, asio::steady_timer& timer) {
            return await_lookup(
                ioc.get_executor(), [&](auto done) { late = std::move(done); }, timer);
        },
        50ms);
    EXPECT_TRUE(found.timed_out);
    ASSERT_TRUE(late);
    late(Resolved{});  // the io_context above is destroyed: nothing may touch it
}

// Answers when its io_context shuts down, after the channels' service did (it is made before
// any channel) and before the reactor's (made after a timer), which destroys the waiting
// coroutines: an answer in that window, as from a lookup thread while the daemon stops.
struct AnswerAtShutdown final : asio::execution_context::service {
    static asio::execution_context::id id;
    explicit AnswerAtShutdown(asio::execution_context& context) : service(context) {}
    std::function<void(Resolved)> late;
    void shutdown() override {
        if (late) late(Resolved{});
    }
};
asio::execution_context::id AnswerAtShutdown::id;

TEST(Resolve, AnAnswerWhileItsIoContextIsDestroyedGoesNowhere) {
    auto ioc = std::make_unique<asio::io_context>();
    asio::steady_timer first(*ioc);  // the reactor, before the hook
    auto& hook = asio::use_service<AnswerAtShutdown>(*ioc);
    asio::co_spawn(
        *ioc,
        [&hook, executor = ioc->get_executor()]() -> asio::awaitable<void> {
            asio::steady_timer timer(executor, 1h);
            co_await await_lookup(
                executor, [&hook](auto done) { hook.late = std::move(done); }, timer);
        },
        [](std::exception_ptr) {});
    ioc->poll();
    ASSERT_TRUE(hook.late);
    ioc.reset();  // must not crash
}

// A cancelled timer (a store closing) ends the wait at once.
TEST(Resolve, ACancelledTimerEndsTheWait) {
    const auto found = run(
        [](asio::io_context& ioc, asio::steady_timer& timer) {
            asio::post(ioc, [&timer] { timer.cancel(); });
            return await_lookup(
                ioc.get_executor(), [](auto) {}, timer);
        },
        1h);
    EXPECT_TRUE(found.timed_out);
}

}  // namespace
}  // namespace hookrelay
