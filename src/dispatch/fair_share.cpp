#include "dispatch/fair_share.hpp"

#include <algorithm>
#include <cassert>

namespace hookrelay::dispatch {

std::size_t reserved_slots(std::size_t global_limit, std::size_t lanes,
                           std::size_t lane_limit) noexcept {
    const std::size_t share = lanes == 0 ? global_limit : global_limit / lanes;
    return std::min(lane_limit, std::max<std::size_t>(1, share));
}

bool may_start(std::span<const LaneLoad> lanes, std::size_t index,
               std::size_t global_limit) noexcept {
    assert(index < lanes.size());
    const auto& lane = lanes[index];
    if (lane.in_flight >= lane.limit) return false;
    const std::size_t n = lanes.size();
    if (lane.in_flight < reserved_slots(global_limit, n, lane.limit)) return true;
    std::size_t reserved_total = 0;
    std::size_t borrowed = 0;  // requests beyond their lane's reservation, over all lanes
    for (const auto& other : lanes) {
        const auto reserved = reserved_slots(global_limit, n, other.limit);
        reserved_total += reserved;
        borrowed += other.in_flight > reserved ? other.in_flight - reserved : 0;
    }
    const std::size_t shared = global_limit > reserved_total ? global_limit - reserved_total : 0;
    return borrowed < shared;
}

}  // namespace hookrelay::dispatch
