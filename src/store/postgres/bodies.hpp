// The bodies table of the PostgreSQL store (schema versions 8 and 9): one partition per UTC hour
// in which deliveries were received, named bodies_YYYYMMDDHH (since version 9 itself split into
// tables bodies_YYYYMMDDHH_0.._7 by a hash of the delivery), so a prune pass drops an hour's bodies
// whole instead of deleting them row by row. Implementation header of the backend.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hookrelay::store::postgres {

inline constexpr std::int64_t k_hour_ms = 3'600'000;

/// The hour (since the epoch, UTC) a body received at `received_ms` belongs to; as the SQL
/// `GREATEST(received_at, 0) / 3600000` computes it (times before the epoch count as hour 0).
inline std::int64_t body_hour(std::int64_t received_ms) noexcept {
    return received_ms > 0 ? received_ms / k_hour_ms : 0;
}

/// "bodies_2026120113" for the hour from 2026-12-01 13:00 UTC.
std::string body_hour_table(std::int64_t hour);
/// The hour a table named like body_hour_table() is for; nullopt for any other name.
std::optional<std::int64_t> body_hour_of_table(std::string_view name);

}  // namespace hookrelay::store::postgres
