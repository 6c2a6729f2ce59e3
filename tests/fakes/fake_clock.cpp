#include "fakes/fake_clock.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <vector>

namespace hookrelay::test {

namespace asio = boost::asio;
using Time = std::chrono::system_clock::time_point;

struct FakeClock::Waiter {
    Time deadline;
    bool fired = false;
    asio::steady_timer* parked = nullptr;  // the real timer the coroutine sleeps on
    asio::any_io_executor executor;
};

class FakeTimer final : public Timer {
  public:
    FakeTimer(std::shared_ptr<FakeClock> clock, asio::any_io_executor executor)
        : clock_(std::move(clock)), executor_(executor), parked_(executor) {}
    ~FakeTimer() override {
        if (waiter_) clock_->remove(waiter_.get());
    }

    asio::awaitable<bool> wait_until(Time deadline) override {
        if (cancelled_) {
            cancelled_ = false;
            co_return false;
        }
        if (deadline <= clock_->now()) co_return true;
        waiter_ = std::make_unique<FakeClock::Waiter>();
        waiter_->deadline = deadline;
        waiter_->parked = &parked_;
        waiter_->executor = executor_;
        parked_.expires_at(asio::steady_timer::time_point::max());
        clock_->add(waiter_.get());
        co_await parked_.async_wait(asio::as_tuple(asio::use_awaitable));
        clock_->remove(waiter_.get());
        const bool fired = waiter_->fired;
        waiter_.reset();
        co_return fired;
    }

    asio::awaitable<bool> wait_for(std::chrono::milliseconds duration) override {
        co_return co_await wait_until(clock_->now() + duration);
    }

    void cancel() override {
        if (waiter_) {
            parked_.cancel();
        } else {
            cancelled_ = true;
        }
    }

  private:
    std::shared_ptr<FakeClock> clock_;
    asio::any_io_executor executor_;
    asio::steady_timer parked_;
    std::unique_ptr<FakeClock::Waiter> waiter_;
    bool cancelled_ = false;
};

std::shared_ptr<FakeClock> FakeClock::create(Time start) {
    std::shared_ptr<FakeClock> clock(new FakeClock());
    clock->now_ = start;
    return clock;
}

Time FakeClock::now() const {
    std::lock_guard lock(mutex_);
    return now_;
}

std::unique_ptr<Timer> FakeClock::make_timer(asio::any_io_executor executor) {
    return std::make_unique<FakeTimer>(shared_from_this(), std::move(executor));
}

void FakeClock::add(Waiter* waiter) {
    std::lock_guard lock(mutex_);
    waiters_.emplace(waiter->deadline, waiter);
}

void FakeClock::remove(Waiter* waiter) {
    std::lock_guard lock(mutex_);
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
        if (it->second == waiter) {
            waiters_.erase(it);
            return;
        }
    }
}

void FakeClock::fire_due() {
    std::vector<Waiter*> due;
    {
        std::lock_guard lock(mutex_);
        for (auto it = waiters_.begin(); it != waiters_.end() && it->first <= now_;) {
            due.push_back(it->second);
            it = waiters_.erase(it);
        }
    }
    for (auto* w : due) {
        w->fired = true;
        // The parked timer belongs to the waiter's executor: cancel it there.
        asio::post(w->executor, [parked = w->parked] { parked->cancel(); });
    }
}

void FakeClock::advance(std::chrono::milliseconds by) {
    {
        std::lock_guard lock(mutex_);
        now_ += by;
    }
    fire_due();
}

std::optional<Time> FakeClock::advance_to_next() {
    std::optional<Time> next;
    {
        std::lock_guard lock(mutex_);
        if (waiters_.empty()) return std::nullopt;
        next = waiters_.begin()->first;
        if (*next > now_) now_ = *next;
    }
    fire_due();
    return next;
}

std::size_t FakeClock::waiting() const {
    std::lock_guard lock(mutex_);
    return waiters_.size();
}

std::optional<Time> FakeClock::next_deadline() const {
    std::lock_guard lock(mutex_);
    if (waiters_.empty()) return std::nullopt;
    return waiters_.begin()->first;
}

}  // namespace hookrelay::test
