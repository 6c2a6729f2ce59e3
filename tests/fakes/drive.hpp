// Driving an io_context under a FakeClock in unit tests: run what is ready, and move the clock
// forward in steps so that everything each step wakes runs before the next. No real time passes.
#pragma once

#include "fakes/fake_clock.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>

namespace hookrelay::test {

/// Runs every handler that is ready, until none is (at most 100 rounds).
inline void settle(boost::asio::io_context& ioc) {
    for (int round = 0; round < 100; ++round) {
        ioc.restart();
        if (ioc.poll() == 0) return;
    }
}

/// Moves `clock` forward by `by`, stopping at every timer deadline on the way to settle().
inline void advance(FakeClock& clock, boost::asio::io_context& ioc, std::chrono::milliseconds by) {
    const auto end = clock.now() + by;
    while (true) {
        const auto next = clock.next_deadline();
        if (!next || *next > end) break;
        clock.advance(std::chrono::ceil<std::chrono::milliseconds>(*next - clock.now()));
        settle(ioc);
    }
    clock.advance(std::chrono::ceil<std::chrono::milliseconds>(end - clock.now()));
    settle(ioc);
}

}  // namespace hookrelay::test
