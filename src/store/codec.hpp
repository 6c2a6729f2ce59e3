// How both store backends write values into columns and read them back: times as milliseconds
// since the epoch, lists as JSON text, digests and random ids. One definition, so a delivery
// stored by one backend reads the same as one stored by the other.
#pragma once

#include <hookrelay/json_writer.hpp>
#include <hookrelay/store.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace hookrelay::store {

/// Times are stored in milliseconds: when something happened rounded down, a time something
/// must not happen before (a due time, a lease's end) rounded up, so it never reads back early.
std::int64_t to_ms(TimePoint t) noexcept;
std::int64_t to_ms_not_before(TimePoint t) noexcept;
TimePoint from_ms(std::int64_t ms) noexcept;

using Pairs = std::vector<std::pair<std::string, std::string>>;

/// [["name","value"],...]
std::string pairs_json(const Pairs& pairs);
/// ["a","b",...]
std::string strings_json(const std::vector<std::string>& strings);
/// The inverses; bytes that are not UTF-8 (a forge may send them) come back verbatim. Throw on
/// text that is not what the writers above produce.
Pairs parse_pairs(std::string_view json);
std::vector<std::string> parse_strings(std::string_view json);

/// Writes DeliveryRecord::rule_reasons one reason at a time, as the decision is read (no string
/// per reason): {"reasons":[...],"heads":[...]}, or [] when there is none. A reason is
/// ["rule","reason"], or ["rule",h,"rest"] when its first bytes are heads[h], a beginning other
/// reasons share (RuleOutcome::shared: "repository: 'acme/app' matches none of " for every rule
/// of another repository), written once; then event and matched when either is not 0 and false.
/// With a thousand rules most of every reason is such a beginning. The views must stay valid until
/// finish(). Before 2026-12-05 the stores wrote [["rule","reason",event,matched],...], which
/// parse_rule_reasons still reads.
class RuleReasonsWriter {
  public:
    /// `capacity`: the bytes to reserve.
    explicit RuleReasonsWriter(std::size_t capacity = 0);
    /// `shared`: how many of the reason's first bytes it may share with other reasons (0: none).
    void add(std::string_view rule, std::string_view reason, std::size_t shared, bool matched,
             std::size_t event);
    std::string finish() &&;

  private:
    std::size_t head(std::string_view text);

    JsonWriter out_;
    std::vector<std::string_view> heads_;
    /// Each head's index in heads_.
    std::unordered_map<std::string_view, std::size_t> index_;
    /// The heads used last, most recent first: consecutive reasons mostly share one of a few,
    /// found there without hashing them.
    std::array<std::size_t, 4> recent_{};
    std::size_t recent_count_ = 0;
    bool any_ = false;
};

/// Every reason written whole (RuleReasonsWriter).
std::string rule_reasons_json(const std::vector<RuleReason>& reasons);
/// The inverse of either; throws on text neither wrote.
std::vector<RuleReason> parse_rule_reasons(std::string_view json);

/// A BuildRecord as one JSON object (times in ms); "" for an empty record.
std::string build_record_json(const BuildRecord& build);
/// The inverse ("" gives an empty record); throws on text build_record_json did not write.
BuildRecord parse_build_record(std::string_view json);

/// trigger_outcome() of a trigger as a completion leaves it, for each follow mode (indexed by
/// FollowMode), so that the statement writing the completion picks the row's and the row is
/// written once. `build`: its build record afterwards; `follow_starts`: the completion starts the
/// follow chore (a delivered trigger with a build record); otherwise `following`: whether the
/// stored chore goes on.
std::array<std::string, 3> outcomes_by_follow(TriggerState state, const BuildRecord& build,
                                              bool follow_starts, bool following);

/// A StatusWish as one JSON object ("" for a wish with an empty state) and back.
std::string status_wish_json(const StatusWish& wish);
StatusWish parse_status_wish(std::string_view json);

/// A StatusTarget as one JSON object ("" for none) and back (nullopt for "").
std::string status_target_json(const std::optional<StatusTarget>& target);
std::optional<StatusTarget> parse_status_target(std::string_view json);

std::optional<EventKind> kind_from_string(std::string_view text) noexcept;

/// Lowercase hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);
bool is_sha256_hex(std::string_view text) noexcept;
/// The first 64 bits of a digest from sha256_hex(), as the signed integer both backends store.
std::int64_t body_key(std::string_view digest) noexcept;

/// `bytes` random bytes, as lowercase hex.
std::string random_hex(std::size_t bytes);
/// A UUID of version 7 (RFC 9562): the creation time in milliseconds, then 74 random bits.
/// Trigger ids never repeat across pruning or a recreated database and say nothing beyond when
/// the trigger was made (which the API shows anyway). Being time-ordered, a new id lands at the
/// end of the indexes keyed by it (the triggers' ids, the attempts' trigger ids) instead of on a
/// random page of each: a submit and an outcome dirty, write and sync fewer pages.
std::string make_trigger_id(
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

/// The seq named by "#<seq>", or nullopt when `text` is not of that form.
std::optional<std::int64_t> parse_seq(std::string_view text) noexcept;

}  // namespace hookrelay::store
