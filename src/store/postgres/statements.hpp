// Statements of the PostgreSQL store that tests examine (their plans), without the store's
// headers.
#pragma once

#include <string>
#include <string_view>

namespace hookrelay::store::postgres {

/// The statement that claims due triggers (queue.cpp): $1 jenkins, $2 now (ms), $3 limit,
/// $4 max_in_flight (0: none), $5 this instance, $6 expiry (ms), $7 claim ids.
const std::string& claim_sql();

/// The listing of deliveries with a state filter and no other (admin.cpp): $1 state, $2 before
/// this delivery seq, $3 limit.
const std::string& list_by_state_sql();

/// The listing of deliveries received since a time: $1 cursor (before this delivery seq),
/// $2 since (ms), $3 limit; with by_state: $1 state, $2 cursor, $3 since, $4 limit.
const std::string& list_by_since_sql(bool by_state);

/// The correction of outcomes left stale by instances of schema version 2, at the start of
/// each prune pass (admin.cpp).
std::string_view correct_outcomes_sql();

/// The listing of deliveries with a trigger in a state and one with an outcome that is a state
/// (a windowed walk, admin.cpp): $1 the outcome, $2 cursor, $3 state, $4 limit.
const std::string& list_by_state_and_outcome_sql();

/// What the listing's transaction sets before its statement (admin.cpp).
const std::string& list_settings_sql();

}  // namespace hookrelay::store::postgres
