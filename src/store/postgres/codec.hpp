// How the PostgreSQL backend reads rows back, frames its queue transactions, and its clock
// arithmetic. The value encodings both backends share (times as bigint milliseconds, lists and
// pairs as JSON in bytea: bytes from forges may not be UTF-8 and must come back unchanged,
// digests, random ids) are in store/codec.hpp. Implementation header of the backend.
#pragma once

#include "store/codec.hpp"
#include "store/postgres/connection.hpp"

#include <hookrelay/store.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hookrelay::store::postgres {

/// One round trip of a queue or chore transaction: BEGIN, commit without waiting for the WAL flush
/// (a PostgreSQL crash may repeat a claim, a poll or a post, never lose a delivery), `body`, and
/// COMMIT (unsynced) or not yet (unsynced_open: the caller adds more). The results of `body`
/// start at k_body.
inline constexpr std::size_t k_body = 2;
std::vector<Step> unsynced_open(std::vector<Step> body);
std::vector<Step> unsynced(std::vector<Step> body);

/// Serializes the claims of one Jenkins (or source) within a transaction: $1 a lock class,
/// $2 the key.
inline constexpr std::string_view k_lock_key = "SELECT pg_advisory_xact_lock($1, hashtext($2))";

/// The hold of Jenkins $1, as read_hold() reads it.
inline constexpr std::string_view k_select_hold =
    "SELECT reason, since, next_probe_at, probes FROM holds WHERE jenkins = $1";

/// A hold from the k_select_hold columns starting at `column` of `row`.
JenkinsHold read_hold(const Rows& rows, int row, int column);

/// The wall clock, at the millisecond resolution the store keeps.
std::int64_t wall_ms() noexcept;
/// `t + d` in milliseconds, saturating instead of overflowing.
std::int64_t add_ms(std::int64_t t, std::chrono::milliseconds d) noexcept;

/// How a trigger names the delivery it came from in superseded_outcome() and
/// QueuedPredecessor: its forge delivery id, "#<seq>" when it has none.
inline std::string delivery_name(const Rows& rows, int row, int id_column, int seq_column) {
    return rows.is_null(row, id_column) ? "#" + std::to_string(rows.int64(row, seq_column))
                                        : rows.text(row, id_column);
}

/// A claim's fencing token: 128 random bits as 32 hex digits.
inline std::string make_claim_id() {
    return random_hex(16);
}

/// The trigger columns every query that answers a StoredTrigger selects, in this order, from
/// triggers `t` joined with its delivery `d`.
inline constexpr std::string_view k_trigger_columns =
    "t.id, d.source, d.delivery_id, t.rule, t.jenkins, t.job, t.parameters, t.cause, t.state, "
    "t.attempts, t.created_at, t.next_attempt_at, t.last_outcome, t.queue_url, t.follow, "
    "t.status_target, t.build, t.status_wanted, t.status_wanted_seq, t.status_posted_seq, "
    "t.status_posted, t.status_tries, t.status_error, t.follow_due_at IS NOT NULL, t.coalesce, "
    "t.cancel_superseded, t.multibranch, t.scan_only, t.superseded_by";
inline constexpr int k_trigger_column_count = 29;
/// Reads the k_trigger_columns starting at `column` of `row`.
StoredTrigger read_trigger(const Rows& rows, int row, int column = 0);

}  // namespace hookrelay::store::postgres
