// How the overall in-flight limit (dispatch.max_in_flight) is shared between the Jenkins
// controllers, so that one whose requests hang cannot take the slots another needs. Pure, so
// every case is unit-tested.
//
// Each Jenkins is guaranteed a reserved share that the others never use:
//   reserved = min(its own max_in_flight, max(1, global / number of Jenkins)).
// What the reservations leave of the global limit is shared, first come first served: a
// Jenkins may go beyond its reservation (up to its own max_in_flight) while the requests that
// all the Jenkins together have beyond their reservations stay under global - sum(reserved).
// A request slot is held until Jenkins answers or request_timeout passes, so a Jenkins that
// hangs keeps what it took; the reservation is what makes the others' slots safe from it.
// With more Jenkins than global slots each still has one: the global limit then yields.
#pragma once

#include <cstddef>
#include <span>

namespace hookrelay::dispatch {

/// One Jenkins lane as the sharing sees it.
struct LaneLoad {
    std::size_t in_flight = 0;  ///< requests to it in flight now
    std::size_t limit = 0;      ///< its own max_in_flight
};

/// The share of `global_limit` reserved for a lane whose own limit is `lane_limit`, among
/// `lanes` lanes: min(lane_limit, max(1, global_limit / lanes)); 0 when lane_limit is 0.
std::size_t reserved_slots(std::size_t global_limit, std::size_t lanes,
                           std::size_t lane_limit) noexcept;

/// Whether `lanes[index]` may start one more request now: below its own limit, and either
/// below its reservation or the shared remainder has room. `index` must be < lanes.size().
bool may_start(std::span<const LaneLoad> lanes, std::size_t index,
               std::size_t global_limit) noexcept;

}  // namespace hookrelay::dispatch
