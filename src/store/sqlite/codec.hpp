// How the SQLite store reads rows back: the row layouts shared by several queries. The value
// encodings both backends share are in store/codec.hpp.
#pragma once

#include "store/codec.hpp"
#include "store/sqlite/connection.hpp"

#include <hookrelay/store.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hookrelay::store::sqlite {

/// `t + d` in milliseconds, rounded up, saturating instead of overflowing.
std::int64_t plus_ms(TimePoint t, std::chrono::milliseconds d);

/// The trigger columns every trigger query selects, in this order (14 columns): id, source,
/// delivery_id, rule, jenkins, job, parameters, cause, state, attempts, created_at,
/// next_attempt_at, last_outcome, queue_url.
StoredTrigger read_trigger(const Query& query, int first = 0);

/// Attempt columns (7): at, http_status, outcome, duration_ms, queue_url, counted, instance.
Attempt read_attempt(const Query& query, int first = 0);

/// Delivery summary columns (7): id, source, provider, delivery_id, kind, forge_event,
/// received_at. The trigger counts are left at 0.
DeliverySummary read_summary(const Query& query, int first = 0);

/// Hold columns (4): reason, since, next_probe_at, probes.
JenkinsHold read_hold(const Query& query, int first = 0);

}  // namespace hookrelay::store::sqlite
