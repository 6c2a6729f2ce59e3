// A clock that moves only when the test says so. Timers waiting on it complete when advance()
// passes their deadline; run the io_context afterwards to let the waiters resume.
#pragma once

#include <hookrelay/clock.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

namespace hookrelay::test {

class FakeClock final : public Clock, public std::enable_shared_from_this<FakeClock> {
  public:
    /// Starts at 2026-01-01T00:00:00Z unless told otherwise.
    static std::shared_ptr<FakeClock> create(
        std::chrono::system_clock::time_point start = std::chrono::system_clock::time_point(
            std::chrono::seconds(1'767'225'600)));

    std::chrono::system_clock::time_point now() const override;
    std::unique_ptr<Timer> make_timer(boost::asio::any_io_executor executor) override;

    /// Moves the time forward and completes every wait whose deadline is now reached.
    void advance(std::chrono::milliseconds by);
    /// Moves to the earliest deadline any timer waits for (nothing when none waits); returns it.
    std::optional<std::chrono::system_clock::time_point> advance_to_next();
    /// Number of waits in progress.
    std::size_t waiting() const;
    /// The earliest deadline a timer waits for.
    std::optional<std::chrono::system_clock::time_point> next_deadline() const;

    struct Waiter;  // one wait in progress, owned by its timer

  private:
    FakeClock() = default;
    friend class FakeTimer;
    void add(Waiter* waiter);
    void remove(Waiter* waiter);
    void fire_due();

    mutable std::mutex mutex_;
    std::chrono::system_clock::time_point now_;
    std::multimap<std::chrono::system_clock::time_point, Waiter*> waiters_;
};

}  // namespace hookrelay::test
