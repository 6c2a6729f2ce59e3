// The time seam: everything that schedules by time (dispatcher, retries, probes, claim renewals)
// asks a Clock for the time and for timers, so tests drive a fake clock instead of waiting.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>

namespace hookrelay {

/// A one-shot timer bound to a Clock and an executor. One wait at a time. Not thread-safe: use
/// it from its executor (a strand).
class Timer {
  public:
    virtual ~Timer() = default;

    /// Waits until the clock reads `deadline` or later, or until cancel(). Completes on the
    /// timer's executor. Returns true when the deadline passed, false when cancelled (also when
    /// cancel() came before the wait started and was not yet consumed by a wait).
    virtual boost::asio::awaitable<bool> wait_until(
        std::chrono::system_clock::time_point deadline) = 0;

    /// wait_until(now() + duration).
    virtual boost::asio::awaitable<bool> wait_for(std::chrono::milliseconds duration) = 0;

    /// Ends the current wait (false); with no wait running, makes the next one end at once.
    virtual void cancel() = 0;
};

/// Wall-clock time plus timers. Thread-safe.
class Clock {
  public:
    virtual ~Clock() = default;

    /// The current time. Stored times (due times, leases, history) are in this clock.
    virtual std::chrono::system_clock::time_point now() const = 0;

    /// A timer whose waits complete on `executor`.
    virtual std::unique_ptr<Timer> make_timer(boost::asio::any_io_executor executor) = 0;
};

/// The real clock: std::chrono::system_clock for the time; timers measure the remaining wait with
/// the steady clock, so a wall-clock jump neither fires nor stalls one already running.
std::shared_ptr<Clock> system_clock();

}  // namespace hookrelay
