#include "store/postgres/codec.hpp"

#include "store/postgres/connection.hpp"

#include <limits>
#include <stdexcept>

namespace hookrelay::store::postgres {

using Clock = std::chrono::system_clock;

std::int64_t wall_ms() noexcept {
    return to_ms(Clock::now());
}

std::int64_t add_ms(std::int64_t t, std::chrono::milliseconds d) noexcept {
    constexpr auto k_max = std::numeric_limits<std::int64_t>::max();
    constexpr auto k_min = std::numeric_limits<std::int64_t>::min();
    const std::int64_t n = d.count();
    if (n > 0 && t > k_max - n) return k_max;
    if (n < 0 && t < k_min - n) return k_min;
    return t + n;
}

StoredTrigger read_trigger(const Rows& rows, int row, int c) {
    StoredTrigger t;
    t.id = rows.text(row, c);
    t.source = rows.text(row, c + 1);
    t.delivery_id = rows.is_null(row, c + 2) ? std::string() : rows.text(row, c + 2);
    t.request.rule = rows.text(row, c + 3);
    t.request.jenkins = rows.text(row, c + 4);
    t.request.job = parse_strings(rows.text(row, c + 5));
    t.request.parameters = parse_pairs(rows.text(row, c + 6));
    t.request.cause = rows.text(row, c + 7);
    const auto state = trigger_state_from_string(rows.text(row, c + 8));
    if (!state) throw std::runtime_error("trigger " + t.id + " has an unknown state");
    t.state = *state;
    t.attempts = static_cast<int>(rows.int64(row, c + 9));
    t.created_at = from_ms(rows.int64(row, c + 10));
    t.next_attempt_at = from_ms(rows.int64(row, c + 11));
    t.last_outcome = rows.text(row, c + 12);
    t.queue_url = rows.text(row, c + 13);
    return t;
}

}  // namespace hookrelay::store::postgres
