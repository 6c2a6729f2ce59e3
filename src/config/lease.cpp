#include "config/lease.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace hookrelay {

std::chrono::milliseconds safe_claim_lease(const DispatchConfig& dispatch,
                                           std::chrono::milliseconds store_timeout) {
    return std::max(2 * dispatch.claim_renew_interval + store_timeout, 2 * store_timeout);
}

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
