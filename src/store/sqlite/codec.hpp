// How the SQLite store writes values into columns and reads rows back: times as milliseconds
// since the epoch, lists as JSON text, digests, random ids, and the row layouts shared by several
// queries.
#pragma once

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

/// Times are stored in milliseconds: when something happened rounded down, a time something
/// must not happen before (a due time, a lease's end) rounded up, so it never reads back early.
std::int64_t to_ms(TimePoint t);
std::int64_t to_ms_not_before(TimePoint t);
TimePoint from_ms(std::int64_t ms);

/// `t + d` in milliseconds, rounded up, saturating instead of overflowing.
std::int64_t plus_ms(TimePoint t, std::chrono::milliseconds d);

using Pairs = std::vector<std::pair<std::string, std::string>>;

/// [["name","value"],...]
std::string pairs_json(const Pairs& pairs);
/// ["a","b",...]
std::string strings_json(const std::vector<std::string>& strings);
/// The inverses; bytes that are not UTF-8 (a forge may send them) come back verbatim. Throw on
/// text that is not what the writers above produce.
Pairs parse_pairs(std::string_view text);
std::vector<std::string> parse_strings(std::string_view text);

/// [["rule","reason",event,matched],...]
std::string rule_reasons_json(const std::vector<RuleReason>& reasons);
/// The inverse; throws on text rule_reasons_json did not write.
std::vector<RuleReason> parse_rule_reasons(std::string_view json);

std::optional<EventKind> kind_from_string(std::string_view text) noexcept;

/// Lowercase hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);
bool is_sha256_hex(std::string_view text) noexcept;
/// The first 64 bits of a digest from sha256_hex(), as the signed integer SQLite stores.
std::int64_t body_key(std::string_view digest) noexcept;

/// A random UUID (version 4): trigger ids never repeat across pruning or a recreated database,
/// and mean nothing to whoever sees them in a Jenkins cause or a log line.
std::string make_trigger_id();

/// The seq named by "#<seq>", or nullopt when `text` is not of that form.
std::optional<std::int64_t> parse_seq(std::string_view text);

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
