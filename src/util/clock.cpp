#include <hookrelay/clock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace hookrelay {

namespace {

namespace asio = boost::asio;

class SteadyTimer final : public Timer {
  public:
    explicit SteadyTimer(asio::any_io_executor executor) : timer_(std::move(executor)) {}

    asio::awaitable<bool> wait_until(std::chrono::system_clock::time_point deadline) override {
        // Rounded up: a wait never ends before its deadline (a caller that checks the time then
        // would otherwise wait again for nothing).
        const auto left = deadline - std::chrono::system_clock::now();
        co_return co_await wait(std::chrono::ceil<std::chrono::milliseconds>(left));
    }

    asio::awaitable<bool> wait_for(std::chrono::milliseconds duration) override {
        co_return co_await wait(duration);
    }

    void cancel() override {
        if (waiting_) {
            timer_.cancel();
        } else {
            cancelled_ = true;
        }
    }

  private:
    asio::awaitable<bool> wait(std::chrono::milliseconds duration) {
        if (cancelled_) {
            cancelled_ = false;
            co_return false;
        }
        timer_.expires_after(std::max(duration, std::chrono::milliseconds(0)));
        waiting_ = true;
        auto [ec] = co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        waiting_ = false;
        co_return !ec;
    }

    asio::steady_timer timer_;
    bool waiting_ = false;
    bool cancelled_ = false;
};

class SystemClock final : public Clock {
  public:
    std::chrono::system_clock::time_point now() const override {
        return std::chrono::system_clock::now();
    }
    std::unique_ptr<Timer> make_timer(asio::any_io_executor executor) override {
        return std::make_unique<SteadyTimer>(std::move(executor));
    }
};

}  // namespace

std::shared_ptr<Clock> system_clock() {
    static const auto clock = std::make_shared<SystemClock>();
    return clock;
}

}  // namespace hookrelay
