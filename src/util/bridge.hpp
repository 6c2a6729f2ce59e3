// Awaiting a callback-style operation (the Store's) from a coroutine, with a deadline. The
// callback may run inline or on any thread; the result is handed back on the coroutine's own
// executor. Include only in .cpp files (pulls in Asio).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

namespace hookrelay {

/// Calls start(callback) and waits until the callback delivers a T, or until `deadline` passes
/// (nullopt). The shared state outlives the coroutine, so a late callback is harmless.
template <class T, class Start>
boost::asio::awaitable<std::optional<T>> await_callback(Start start,
                                                        std::chrono::milliseconds deadline) {
    namespace asio = boost::asio;
    struct State {
        explicit State(asio::any_io_executor ex) : timer(ex) {}
        asio::steady_timer timer;
        std::mutex mutex;
        std::optional<T> value;
    };
    auto executor = co_await asio::this_coro::executor;
    auto state = std::make_shared<State>(executor);
    state->timer.expires_after(deadline);
    start([state, executor](T value) mutable {
        {
            std::lock_guard lock(state->mutex);
            state->value = std::move(value);
        }
        // The timer belongs to the coroutine's executor: cancel it there. The callback gives up
        // its own reference here, so the state (and its timer) is never destroyed on the
        // caller's thread when the callback object is.
        auto owned = std::move(state);
        asio::post(executor, [owned] { owned->timer.cancel(); });
    });
    {
        std::lock_guard lock(state->mutex);
        if (state->value) co_return std::move(state->value);
    }
    co_await state->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    std::lock_guard lock(state->mutex);
    co_return std::move(state->value);
}

}  // namespace hookrelay
