// The PostgreSQL backend's schema: versioned migrations applied at open under an advisory lock,
// and the advisory lock keys the backend uses. Implementation header of the backend.
#pragma once

#include "store/postgres/connection.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace hookrelay::store::postgres {

/// The schema version this hookrelay writes and reads.
///  1: deliveries, triggers with their claims, attempts, holds, instances.
///  2: deliveries.rule_reasons (why the rules that queued nothing did not).
///  3: deliveries.repository/ref; triggers' follow mode, status target, build record, outcome,
///     and the follow and status chores.
///  4: the superseded state; triggers' coalesce key and scope, cancel_superseded, multibranch,
///     scan_only, superseded_by; the scans table.
///  5: the unmatched table (the deliveries without a trigger).
///  6: deliveries.body compressed with lz4 where the server offers it (PostgreSQL 14 or later,
///     built with lz4), instead of pglz.
///  7: an index on deliveries.received_at (the listing's `since`), and a partial one of the
///     triggers whose outcome a version 2 instance left stale (triggers_outcome_stale).
///  8: the bodies table, partitioned by the hour a delivery was received (bodies.hpp): new
///     bodies go there, and a prune pass drops an hour whose deliveries are all gone.
///  9: each new hour of the bodies table split by a hash of the delivery into tables of its own,
///     dropped one after another (bodies.cpp). No data moves: an hour made by version 8 stays one
///     table. The version says that an older hookrelay, whose prune pass does not know such
///     hours, must not run on the database.
/// 10: deliveries.rule_reasons compressed with lz4 where the server offers it, as version 6 did
///     for the body.
/// 11: instances.jenkins, each instance's Jenkins entries (name → url, JSON), so that instances
///     whose configs send one name's triggers to different servers can be told.
inline constexpr int k_schema_version = 11;

/// hookrelay's advisory locks use the two-key form: (space, key). The spaces are arbitrary
/// constants ("hrl" + a letter) that other applications sharing the database are unlikely to use.
namespace locks {
/// (k_space, k_migrate): one instance migrates at a time; (k_space, k_prune): one prunes.
inline constexpr std::int32_t k_space = 0x68726c61;
inline constexpr std::int32_t k_migrate = 1;
inline constexpr std::int32_t k_prune = 2;
/// (k_space, k_body_hours): one instance at a time adds an hour's partition of the bodies, or drops
/// one of a detached hour's tables.
inline constexpr std::int32_t k_body_hours = 3;
/// (k_claim_space, hashtext(jenkins)): claims for one Jenkins with a max_in_flight cap.
inline constexpr std::int32_t k_claim_space = 0x68726c62;
/// (k_body_space, 32 bits of the body digest): deliveries compared by body.
inline constexpr std::int32_t k_body_space = 0x68726c63;
/// (k_follow_space, hashtext(jenkins)), (k_status_space, hashtext(source)): chore claims with a
/// max_in_flight cap.
inline constexpr std::int32_t k_follow_space = 0x68726c64;
inline constexpr std::int32_t k_status_space = 0x68726c65;
/// (k_coalesce_space, scope_key(scope)): submissions and completions of one coalesce scope
/// serialize, so a newer trigger and an older one left open always see each other.
inline constexpr std::int32_t k_coalesce_space = 0x68726c66;
/// The SQL of the 32-bit lock key of a coalesce scope: `scope` is a bytea expression.
inline std::string scope_key(std::string_view scope) {
    return "('x' || left(md5(" + std::string(scope) + "), 8))::bit(32)::integer";
}
}  // namespace locks

/// Brings the database to k_schema_version in one transaction, holding (k_space, k_migrate)
/// for it, so N instances starting at once migrate once and the others find it done; waits at
/// most `timeout` for the lock. Throws DbError: store_incompatible when the database's schema is
/// newer than this build knows, or when it has hookrelay's tables without hookrelay_schema (not
/// a hookrelay store); any other failure as it comes. Returns the version found before
/// migrating (0: a new database).
boost::asio::awaitable<int> migrate(Connection& connection, std::chrono::milliseconds timeout);

}  // namespace hookrelay::store::postgres
