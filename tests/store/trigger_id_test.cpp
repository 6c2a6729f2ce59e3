// Trigger ids: UUIDs of version 7, so that ids made later sort later (and land at the end of the
// indexes keyed by them), while two ids made in the same millisecond still differ.
#include "store/codec.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <set>
#include <string>

namespace hookrelay::store::test {
namespace {

using namespace std::chrono_literals;

TEST(TriggerId, IsAVersion7UuidCarryingItsMillisecond) {
    const std::chrono::system_clock::time_point at{1'764'500'000'123ms};
    const auto id = make_trigger_id(at);
    EXPECT_TRUE(std::regex_match(
        id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
        << id;
    // 1764500000123 ms is 0x019A_D465_4D7B.
    EXPECT_EQ(id.substr(0, 13), "019ad465-4d7b") << id;
}

TEST(TriggerId, LaterIdsSortLaterAndIdsOfOneMillisecondDiffer) {
    const std::chrono::system_clock::time_point at{1'764'500'000'123ms};
    std::set<std::string> same_ms;
    for (int i = 0; i < 1000; ++i) same_ms.insert(make_trigger_id(at));
    EXPECT_EQ(same_ms.size(), 1000u);
    const auto later = make_trigger_id(at + 1ms);
    EXPECT_LT(*same_ms.rbegin(), later);
    EXPECT_LT(make_trigger_id(at - 1ms), *same_ms.begin());
}

}  // namespace
}  // namespace hookrelay::store::test
