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

/// The trigger columns every trigger query selects, in this order (k_trigger_columns): id,
/// source, delivery_id, rule, jenkins, job, parameters, cause, state, attempts, created_at,
/// next_attempt_at, last_outcome, queue_url, then k_trigger_chore_columns.
StoredTrigger read_trigger(const Query& query, int first = 0);

/// The columns of the triggers table read_trigger() reads after queue_url: the request's follow
/// mode and status target, the build record, whether it is followed, the status progress, the
/// request's coalesce key, cancel_superseded, multibranch and scan_only, superseded_by.
inline constexpr const char* k_trigger_chore_columns =
    "follow, status_target, build, follow_due_at IS NOT NULL, status_wanted, status_wanted_seq, "
    "status_posted_seq, status_posted, status_tries, status_error, coalesce_key, "
    "cancel_superseded, multibranch, scan_only, superseded_by";
inline constexpr int k_trigger_columns = 29;

/// Attempt columns (7): at, http_status, outcome, duration_ms, queue_url, counted, instance.
Attempt read_attempt(const Query& query, int first = 0);

/// Delivery summary columns (9): id, source, provider, delivery_id, kind, forge_event,
/// received_at, repository, ref. The trigger counts and outcomes are left empty.
DeliverySummary read_summary(const Query& query, int first = 0);

/// Hold columns (4): reason, since, next_probe_at, probes.
JenkinsHold read_hold(const Query& query, int first = 0);

}  // namespace hookrelay::store::sqlite
