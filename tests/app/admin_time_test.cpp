// The times the admin API's `since` takes: what the CLI prints can be pasted back.
#include "app/admin.hpp"

#include <gtest/gtest.h>

namespace hookrelay::app {
namespace {

using namespace std::chrono_literals;

const auto k_now = std::chrono::system_clock::time_point(1'800'000'000s);

std::optional<std::string> round_trip(std::string_view text) {
    const auto t = parse_time(text, k_now);
    if (!t) return std::nullopt;
    return format_time(*t);
}

// `deliveries list` prints "2026-11-30T09:12:03" under "RECEIVED (UTC)": pasted into --since it
// was refused ("is neither a time nor a duration") for want of a zone.
TEST(AdminTime, ATimeWithoutAZoneIsUtcAsTheListPrintsIt) {
    EXPECT_EQ(round_trip("2026-11-30T09:12:03"), "2026-11-30T09:12:03.000Z");
    EXPECT_EQ(round_trip("2026-11-30 09:12:03"), "2026-11-30T09:12:03.000Z");
    EXPECT_EQ(round_trip("2026-11-30T09:12:03.25"), "2026-11-30T09:12:03.250Z");
}

TEST(AdminTime, ZonesAndDurationsAsBefore) {
    EXPECT_EQ(round_trip("2026-11-30T09:12:03Z"), "2026-11-30T09:12:03.000Z");
    EXPECT_EQ(round_trip("2026-11-30T10:12:03+01:00"), "2026-11-30T09:12:03.000Z");
    EXPECT_EQ(round_trip("2026-11-30T08:12:03.5-01:00"), "2026-11-30T09:12:03.500Z");
    EXPECT_EQ(parse_time("90m", k_now), k_now - 90min);
}

TEST(AdminTime, WhatIsNotATimeIsRefused) {
    for (std::string_view bad :
         {"2026-11-30", "2026-11-30T09:12", "2026-11-30T09:12:03 Z", "2026-11-30T09:12:03+0100",
          "2026-13-30T09:12:03", "2026-11-30T09:12:03x", "2026-11-30T09:12:03.",
          "2026-11-30T-1:12:03", "+026-11-30T09:12:03", "yesterday", ""}) {
        EXPECT_EQ(parse_time(bad, k_now), std::nullopt) << bad;
    }
}

}  // namespace
}  // namespace hookrelay::app
