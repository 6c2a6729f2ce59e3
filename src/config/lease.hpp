// The warning for a dispatch.claim_lease shorter than what holds while the store answers within
// server.store_timeout: said by `hookrelay check` and by the dispatcher at start and when a
// reload changes store_timeout.
#pragma once

#include <hookrelay/config.hpp>

#include <chrono>
#include <string>

namespace hookrelay {

/// What is wrong with a claim_lease shorter than the bound (config/lease.cpp), and what to do;
/// "" when it is long enough.
std::string claim_lease_warning(const DispatchConfig& dispatch,
                                std::chrono::milliseconds store_timeout);

}  // namespace hookrelay
