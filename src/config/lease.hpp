// The shortest dispatch.claim_lease that holds while the store answers within
// server.store_timeout, and the warning for a shorter one: said by `hookrelay check` and by the
// dispatcher at start and when a reload changes store_timeout.
#pragma once

#include <hookrelay/config.hpp>

#include <chrono>
#include <string>

namespace hookrelay {

/// A claim answered within claim_renew_interval I is renewed at the next tick, by then + T (the
/// store_timeout); one answered later at once, by 2T; and each renewal is asked I after the
/// last. So the leases hold while the store answers within T when the lease is at least
/// max(2I + T, 2T) (the defaults: 10 s against max(9 s, 10 s); an answer at T is a timeout).
std::chrono::milliseconds safe_claim_lease(const DispatchConfig& dispatch,
                                           std::chrono::milliseconds store_timeout);

/// What is wrong with a claim_lease shorter than safe_claim_lease(), and what to do; "" when it
/// is long enough.
std::string claim_lease_warning(const DispatchConfig& dispatch,
                                std::chrono::milliseconds store_timeout);

}  // namespace hookrelay
