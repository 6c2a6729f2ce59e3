// Non-throwing accessors over untrusted JSON payloads, shared by the per-forge normalizers.
// Every function accepts nullptr and values of the wrong JSON type, and then answers "absent"
// (nullptr, empty string, nullopt) instead of throwing.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::ingest::detail {

/// The member `key` of `v` when `v` is an object holding it; nullptr otherwise.
inline const boost::json::value* member(const boost::json::value* v,
                                        std::string_view key) noexcept {
    if (v == nullptr) return nullptr;
    const auto* obj = v->if_object();
    return obj == nullptr ? nullptr : obj->if_contains(key);
}

/// Follows `keys` through nested objects; nullptr as soon as one step is missing or not an object.
inline const boost::json::value* at(const boost::json::value* v,
                                    std::initializer_list<std::string_view> keys) noexcept {
    for (const auto key : keys) v = member(v, key);
    return v;
}

/// `v` as an object, or nullptr (absent, null, or another type).
inline const boost::json::object* as_object(const boost::json::value* v) noexcept {
    return v == nullptr ? nullptr : v->if_object();
}

/// `v` as an array, or nullptr.
inline const boost::json::array* as_array(const boost::json::value* v) noexcept {
    return v == nullptr ? nullptr : v->if_array();
}

/// `v` as a string view, or nullopt (absent, null, or another type). The view points into `v`.
inline std::optional<std::string_view> as_string_view(const boost::json::value* v) noexcept {
    if (v == nullptr) return std::nullopt;
    const auto* s = v->if_string();
    if (s == nullptr) return std::nullopt;
    return std::string_view(s->data(), s->size());
}

/// `v` as a string; empty when absent, null or not a string.
inline std::string as_string(const boost::json::value* v) {
    return std::string(as_string_view(v).value_or(std::string_view{}));
}

/// `v` as a boolean, or nullopt.
inline std::optional<bool> as_bool(const boost::json::value* v) noexcept {
    if (v == nullptr) return std::nullopt;
    const auto* b = v->if_bool();
    if (b == nullptr) return std::nullopt;
    return *b;
}

/// `v` as a signed integer, or nullopt (absent, fractional, out of range, or not a number).
inline std::optional<std::int64_t> as_int(const boost::json::value* v) noexcept {
    if (v == nullptr) return std::nullopt;
    if (const auto* i = v->if_int64()) return *i;
    if (const auto* u = v->if_uint64()) {
        if (*u <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(*u);
    }
    return std::nullopt;
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
std::vector<std::string> collect_changed_files(const boost::json::array* commits);

/// The commit object in `commits` whose `id` equals `id`, or nullptr (also for an empty `id`).
/// Forges disagree on commit order, so the head commit is found by id, never by position.
const boost::json::value* find_commit(const boost::json::array* commits, std::string_view id);

}  // namespace hookrelay::ingest::detail
