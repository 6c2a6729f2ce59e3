#include "config/lease.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace hookrelay {
namespace {

// A claim answered within claim_renew_interval I is renewed at the next tick, by then + T (the
// store_timeout); one answered later at once, by 2T; and each renewal is asked I after the
// last. So the leases hold while the store answers within T when the lease is at least
// max(2I + T, 2T) (the defaults: 10 s against max(9 s, 10 s); an answer at T is a timeout).
std::chrono::milliseconds safe_claim_lease(const DispatchConfig& dispatch,
                                           std::chrono::milliseconds store_timeout) {
    return std::max(2 * dispatch.claim_renew_interval + store_timeout, 2 * store_timeout);
}

}  // namespace

std::string claim_lease_warning(const DispatchConfig& dispatch,
                                std::chrono::milliseconds store_timeout) {
    const auto needed = safe_claim_lease(dispatch, store_timeout);
    if (dispatch.claim_lease >= needed) return {};
    return fmt::format(
        "dispatch.claim_lease ({} ms) is shorter than {} ms (twice "
        "dispatch.claim_renew_interval, {} ms, or server.store_timeout, {} ms, whichever is "
        "longer, plus store_timeout): a store slow to answer a claim or a renewal can let the "
        "lease of a request still at Jenkins run out, and its trigger be sent again; raise "
        "claim_lease",
        dispatch.claim_lease.count(), needed.count(), dispatch.claim_renew_interval.count(),
        store_timeout.count());
}

}  // namespace hookrelay
