// Spawning coroutines so that a failure is never lost: an exception that escapes a spawned
// coroutine is logged with what the coroutine was doing, instead of vanishing (asio::detached)
// or terminating the process. Include only in .cpp files (pulls in Asio).
#pragma once

#include <hookrelay/clock.hpp>

#include <spdlog/spdlog.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include <chrono>
#include <exception>
#include <string>
#include <utility>

namespace hookrelay {

/// The completion handler: logs an escaped exception as "<what>: unexpected exception: <e>".
struct LogEscaped {
    std::string what;
    void operator()(std::exception_ptr error) const noexcept {
        if (!error) return;
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            spdlog::error("{}: unexpected exception: {}", what, e.what());
        } catch (...) {
            spdlog::error("{}: unexpected exception", what);
        }
    }
};

/// co_spawn(executor, awaitable, LogEscaped{what}).
template <class Executor, class Awaitable>
void spawn_logged(Executor&& executor, Awaitable&& awaitable, std::string what) {
    boost::asio::co_spawn(std::forward<Executor>(executor), std::forward<Awaitable>(awaitable),
                          LogEscaped{std::move(what)});
}

/// co_await run() (a function giving an awaitable) while keep() holds: one that ends with an
/// exception (out of memory, a bug) is logged as "<what> failed: <e>; starting again in N ms"
/// and run again once `pause` has passed on `clock` (waiting on `timer`, which others may cancel
/// to wake the loop: that does not shorten the pause); one that returns ends it. For a loop whose
/// end would silently stop work the daemon still takes in (a Jenkins' deliveries).
template <class Run, class Keep>
boost::asio::awaitable<void> run_restarting(Run run, Keep keep, const Clock& clock, Timer& timer,
                                            std::chrono::milliseconds pause, std::string what) {
    while (keep()) {
        std::string failure;
        try {
            co_await run();
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (failure.empty() || !keep()) break;
        spdlog::error("{} failed: {}; starting again in {} ms", what, failure, pause.count());
        const auto until = clock.now() + pause;
        while (keep() && clock.now() < until) co_await timer.wait_until(until);
    }
}

}  // namespace hookrelay
