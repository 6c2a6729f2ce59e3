// How the PostgreSQL backend writes values into rows and reads them back: times as milliseconds
// since the epoch (bigint), lists and pairs as JSON in bytea (bytes from forges may not be
// UTF-8 and must come back unchanged), random ids. Implementation header of the backend.
#pragma once

#include <hookrelay/store.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hookrelay::store::postgres {

class Rows;

/// Times are stored in milliseconds: when something happened rounded down (to_ms), a time
/// something must not happen before (a due time, a lease's end, the next probe) rounded up
/// (to_ms_not_before), so it never reads back early.
std::int64_t to_ms(TimePoint t) noexcept;
std::int64_t to_ms_not_before(TimePoint t) noexcept;
TimePoint from_ms(std::int64_t ms) noexcept;
/// The wall clock, at the millisecond resolution the store keeps.
std::int64_t wall_ms() noexcept;
/// `t + d` in milliseconds, saturating instead of overflowing.
std::int64_t add_ms(std::int64_t t, std::chrono::milliseconds d) noexcept;

std::string pairs_json(const std::vector<std::pair<std::string, std::string>>& pairs);
std::string strings_json(const std::vector<std::string>& strings);
/// The inverses; throw on malformed input (a bug or a damaged row).
std::vector<std::pair<std::string, std::string>> parse_pairs(std::string_view json);
std::vector<std::string> parse_strings(std::string_view json);

/// [["rule","reason",event,matched],...]
std::string rule_reasons_json(const std::vector<RuleReason>& reasons);
/// The inverse; throws on text rule_reasons_json did not write.
std::vector<RuleReason> parse_rule_reasons(std::string_view json);

std::optional<EventKind> kind_from_string(std::string_view text) noexcept;

/// SHA-256 of `bytes` as 64 lowercase hex digits.
std::string sha256_hex(std::string_view bytes);
bool is_sha256_hex(std::string_view text) noexcept;
/// The first 64 bits of a sha256_hex() digest, as the signed integer a bigint holds.
std::int64_t body_key(std::string_view digest) noexcept;

/// `bytes` random bytes as lowercase hex (RAND_bytes).
std::string random_hex(std::size_t bytes);
/// A random UUID (version 4), the trigger id format.
std::string make_trigger_id();
/// A claim's fencing token: 128 random bits as 32 hex digits.
inline std::string make_claim_id() {
    return random_hex(16);
}

/// The seq named by "#<seq>", or nullopt when `text` is not of that form.
std::optional<std::int64_t> parse_seq(std::string_view text) noexcept;

/// The trigger columns every query that answers a StoredTrigger selects, in this order, from
/// triggers `t` joined with its delivery `d`.
inline constexpr std::string_view k_trigger_columns =
    "t.id, d.source, d.delivery_id, t.rule, t.jenkins, t.job, t.parameters, t.cause, t.state, "
    "t.attempts, t.created_at, t.next_attempt_at, t.last_outcome, t.queue_url";
inline constexpr int k_trigger_column_count = 14;
/// Reads the k_trigger_columns starting at `column` of `row`.
StoredTrigger read_trigger(const Rows& rows, int row, int column = 0);

}  // namespace hookrelay::store::postgres
