// The SQLite store's schema, its versions and their in-place upgrades, and the connection
// settings every store connection runs with.
#pragma once

#include <hookrelay/config.hpp>

#include <sqlite3.h>

#include <chrono>

namespace hookrelay::store::sqlite {

/// The schema this hookrelay writes (PRAGMA user_version).
///  1: deliveries, triggers, attempts.
///  2: deliveries.body_key and its partial index (duplicate_body_window).
///  3: claims on triggers (claim_id, claim_owner, claim_expires_at), attempts.instance, the
///     holds and instances tables.
///  4: deliveries.rule_reasons (why the rules that queued nothing did not).
///  5: deliveries.repository/ref; on triggers the follow mode, status target, build record,
///     stored outcome, and the follow and status chores (due times, claims, tries, wishes).
///  6: triggers.state 'superseded'; the request's coalesce key, cancel_superseded, multibranch
///     and scan_only, superseded_by, the coalesce scope and its indexes; the scans table.
///  7: the unmatched table (the deliveries without a trigger).
///  8: no index on deliveries.delivery_id alone.
///  9: the received_marks table (the listing's `since` bound).
/// 10: deliveries.body_lz4_size (bodies compressed with LZ4).
/// 11: deliveries.rule_reasons_lz4_size (long rule reasons compressed with LZ4).
/// 12: the intake_position table (how far the intake log is indexed).
/// 13: the intake_log_identity table (the id of the intake log the database indexes).
constexpr int k_schema_version = 13;

/// Sets up a freshly opened connection: extended result codes, the busy timeout, WAL journal,
/// synchronous = FULL, foreign keys, the page cache, store.max_size as a page limit; then
/// creates the schema in an empty file or upgrades an older one in place (one transaction, so
/// a failure leaves the file as it was). Throws SqliteError, or StoreError(store_incompatible)
/// for a file written by a newer hookrelay (it is refused rather than misread). Returns the
/// schema version the file had: 0 for a file made now.
int prepare(sqlite3* db, const StoreConfig& config, std::chrono::milliseconds busy_timeout);

}  // namespace hookrelay::store::sqlite
