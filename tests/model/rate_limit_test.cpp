#include "util/rate_limit.hpp"

#include <gtest/gtest.h>

namespace hookrelay {
namespace {

TEST(RateLimit, AllowsABurstThenCountsWhatItRefuses) {
    RateLimit limit(3, std::chrono::hours(1));
    std::size_t suppressed = 99;
    EXPECT_TRUE(limit.allow(&suppressed));
    EXPECT_EQ(suppressed, 0u);
    EXPECT_TRUE(limit.allow());
    EXPECT_TRUE(limit.allow());
    EXPECT_FALSE(limit.allow());
    EXPECT_FALSE(limit.allow());
}

TEST(RateLimit, ReportsSuppressedCountWhenTheWindowReopens) {
    using namespace std::chrono_literals;
    RateLimit limit(1, 10s);
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    std::size_t suppressed = 99;
    EXPECT_TRUE(limit.allow(t0, &suppressed));
    EXPECT_EQ(suppressed, 0u);
    EXPECT_FALSE(limit.allow(t0 + 1s, &suppressed));
    EXPECT_FALSE(limit.allow(t0 + 2s, &suppressed));
    EXPECT_FALSE(limit.allow(t0 + 9s, &suppressed));
    EXPECT_TRUE(limit.allow(t0 + 10s, &suppressed));
    EXPECT_EQ(suppressed, 3u);
}

}  // namespace
}  // namespace hookrelay
