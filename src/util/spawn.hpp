// Spawning coroutines so that a failure is never lost: an exception that escapes a spawned
// coroutine is logged with what the coroutine was doing, instead of vanishing (asio::detached)
// or terminating the process. Include only in .cpp files (pulls in Asio).
#pragma once

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>

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

}  // namespace hookrelay
