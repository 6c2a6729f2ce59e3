// Non-throwing accessors over untrusted JSON payloads, shared by the per-forge normalizers.
// Every function accepts nullptr and values of the wrong JSON type, and then answers "absent"
// (an absent JsonRef, empty string, nullopt) instead of throwing.
#pragma once

#include <hookrelay/json_document.hpp>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::ingest::detail {

/// The member `key` of `v` when `v` is an object holding it; absent otherwise.
inline JsonRef member(JsonRef v, std::string_view key) noexcept {
    return v.member(key);
}

/// Follows `keys` through nested objects; absent as soon as one step is missing or not an object.
inline JsonRef at(JsonRef v, std::initializer_list<std::string_view> keys) noexcept {
    for (const auto key : keys) v = v.member(key);
    return v;
}

/// `v` when it is an object, else absent (absent, null, or another type).
inline JsonRef as_object(JsonRef v) noexcept {
    return v.is_object() ? v : JsonRef{};
}

/// `v` when it is an array, else absent.
inline JsonRef as_array(JsonRef v) noexcept {
    return v.is_array() ? v : JsonRef{};
}

/// `v` as a string view, or nullopt (absent, null, or another type). The view points into `v`'s
/// document.
inline std::optional<std::string_view> as_string_view(JsonRef v) noexcept {
    return v.string();
}

/// `v` as a string; empty when absent, null or not a string.
inline std::string as_string(JsonRef v) {
    return std::string(v.string().value_or(std::string_view{}));
}

/// `v` as a boolean, or nullopt.
inline std::optional<bool> as_bool(JsonRef v) noexcept {
    return v.boolean();
}

/// `v` as a signed integer, or nullopt (absent, fractional, out of range, or not a number).
inline std::optional<std::int64_t> as_int(JsonRef v) noexcept {
    return v.int64();
}

/// `ref` without `prefix` when it starts with it, else empty.
inline std::string strip_prefix(std::string_view ref, std::string_view prefix) {
    if (ref.size() <= prefix.size() || ref.substr(0, prefix.size()) != prefix) return {};
    return std::string(ref.substr(prefix.size()));
}

/// Whether `s` is a full commit id: 40 (SHA-1) or 64 (SHA-256) hex digits.
bool is_full_sha(std::string_view s) noexcept;

/// Splits "a/b/c" into namespace "a/b" and name "c" (no '/': namespace empty, name = all).
void split_full_name(std::string_view full_name, std::string& namespace_, std::string& name);

/// Most paths collect_changed_files() returns. A push listing more (2,048 commits of hundreds
/// of files each fit in GitHub's 25 MB) would cost more memory than it is worth: the list is
/// then treated as incomplete (see normalize() in ingest.hpp), so `paths` conditions pass.
inline constexpr std::size_t k_max_changed_files = 10'000;

/// The union of `added`, `modified` and `removed` over the commit objects in `commits`,
/// de-duplicated, in first-seen order, stopping at k_max_changed_files paths. Entries of the
/// wrong type are skipped.
std::vector<std::string> collect_changed_files(JsonRef commits);

/// The commit object in `commits` whose `id` equals `id`, or absent (also for an empty `id`).
/// Forges disagree on commit order, so the head commit is found by id, never by position.
JsonRef find_commit(JsonRef commits, std::string_view id);

}  // namespace hookrelay::ingest::detail
