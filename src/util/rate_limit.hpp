// Rate limiting for log lines about untrusted input, so a flood of junk cannot fill the disk.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>

namespace hookrelay {

/// Allows at most `burst` events per `window`; counts what it refuses. Thread-safe.
class RateLimit {
  public:
    RateLimit(std::size_t burst, std::chrono::milliseconds window)
        : burst_(burst), window_(window) {}

    /// True when the event may go ahead. When it may, *suppressed receives how many events were
    /// refused since the last allowed one (to log "N similar lines suppressed").
    bool allow(std::size_t* suppressed = nullptr) {
        return allow(std::chrono::steady_clock::now(), suppressed);
    }

    /// The same at a given time (tests drive time explicitly).
    bool allow(std::chrono::steady_clock::time_point now, std::size_t* suppressed) {
        std::lock_guard lock(mutex_);
        if (now - window_start_ >= window_) {
            window_start_ = now;
            used_ = 0;
        }
        if (used_ >= burst_) {
            ++refused_;
            return false;
        }
        ++used_;
        if (suppressed != nullptr) *suppressed = refused_;
        refused_ = 0;
        return true;
    }

  private:
    std::size_t burst_;
    std::chrono::milliseconds window_;
    std::mutex mutex_;
    std::chrono::steady_clock::time_point window_start_{};
    std::size_t used_ = 0;
    std::size_t refused_ = 0;
};

}  // namespace hookrelay
