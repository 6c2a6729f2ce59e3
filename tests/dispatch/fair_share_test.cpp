#include "dispatch/fair_share.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace hookrelay::dispatch {
namespace {

// How many more requests lane `index` could start, one at a time, from `lanes`.
std::size_t startable(std::vector<LaneLoad> lanes, std::size_t index, std::size_t global) {
    std::size_t n = 0;
    while (may_start(lanes, index, global)) {
        ++lanes[index].in_flight;
        ++n;
    }
    return n;
}

TEST(FairShare, ReservationIsAnEqualShareCappedByTheLaneLimit) {
    EXPECT_EQ(reserved_slots(32, 9, 4), 3u);
    EXPECT_EQ(reserved_slots(32, 2, 4), 4u);
    EXPECT_EQ(reserved_slots(5, 5, 2), 1u);
    EXPECT_EQ(reserved_slots(2, 9, 4), 1u);  // more lanes than slots: still one each
    EXPECT_EQ(reserved_slots(32, 1, 0), 0u);
}

TEST(FairShare, HangingLanesCannotTakeAnotherLanesReservation) {
    // The case: eight Jenkins whose requests hang, each at its own limit of 4 as far as
    // the overall limit of 32 let them, and one healthy Jenkins with nothing in flight.
    std::vector<LaneLoad> lanes(9, LaneLoad{0, 4});
    for (std::size_t i = 0; i < 8; ++i) lanes[i].in_flight = startable(lanes, i, 32);
    std::size_t hanging = 0;
    for (std::size_t i = 0; i < 8; ++i) hanging += lanes[i].in_flight;
    EXPECT_EQ(hanging, 29u);                 // 8 x 3 reserved + the 5 shared slots
    EXPECT_EQ(startable(lanes, 8, 32), 3u);  // the healthy one still has its 3
}

TEST(FairShare, OneBusyLaneUsesItsWholeLimitWhenTheSharesAllowIt) {
    std::vector<LaneLoad> lanes = {{0, 4}, {0, 4}};
    EXPECT_EQ(startable(lanes, 0, 32), 4u);
}

TEST(FairShare, SharedRemainderIsFirstComeFirstServed) {
    // 3 lanes of limit 4 under 6: 2 reserved each, nothing shared.
    std::vector<LaneLoad> lanes = {{0, 4}, {0, 4}, {0, 4}};
    EXPECT_EQ(startable(lanes, 0, 6), 2u);
    // Under 9: 3 reserved each, nothing shared either; under 10 one slot is shared.
    EXPECT_EQ(startable(lanes, 0, 10), 4u);
    lanes[0].in_flight = 4;  // took its 3 and the shared one
    EXPECT_EQ(startable(lanes, 1, 10), 3u);
}

TEST(FairShare, NeverAboveTheOverallLimitWhenEveryLaneFitsInIt) {
    std::vector<LaneLoad> lanes = {{0, 8}, {0, 8}, {0, 8}};
    for (int round = 0; round < 3; ++round) {
        for (std::size_t i = 0; i < lanes.size(); ++i) {
            if (may_start(lanes, i, 10)) ++lanes[i].in_flight;
        }
    }
    for (std::size_t i = 0; i < lanes.size(); ++i) lanes[i].in_flight += startable(lanes, i, 10);
    EXPECT_EQ(lanes[0].in_flight + lanes[1].in_flight + lanes[2].in_flight, 10u);
}

TEST(FairShare, MoreLanesThanSlotsEachStillGetsOne) {
    std::vector<LaneLoad> lanes(5, LaneLoad{0, 2});
    for (std::size_t i = 0; i < 4; ++i) lanes[i].in_flight = startable(lanes, i, 3);
    EXPECT_EQ(startable(lanes, 4, 3), 1u);
}

TEST(FairShare, LaneLimitIsNeverExceeded) {
    std::vector<LaneLoad> lanes = {{0, 2}};
    EXPECT_EQ(startable(lanes, 0, 32), 2u);
    lanes[0].limit = 0;
    EXPECT_FALSE(may_start(lanes, 0, 32));
}

}  // namespace
}  // namespace hookrelay::dispatch
