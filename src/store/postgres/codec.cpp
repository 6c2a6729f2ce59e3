#include "store/postgres/codec.hpp"

#include "store/postgres/connection.hpp"

#include <limits>
#include <stdexcept>

namespace hookrelay::store::postgres {

using Clock = std::chrono::system_clock;

std::vector<Step> unsynced_open(std::vector<Step> body) {
    std::vector<Step> steps;
    steps.reserve(body.size() + 3);
    steps.push_back({"BEGIN", {}});
    steps.push_back({"SELECT set_config('synchronous_commit', 'off', true)", {}});
    for (Step& step : body) steps.push_back(std::move(step));
    return steps;
}

std::vector<Step> unsynced(std::vector<Step> body) {
    auto steps = unsynced_open(std::move(body));
    steps.push_back({"COMMIT", {}});
    return steps;
}

JenkinsHold read_hold(const Rows& rows, int row, int column) {
    JenkinsHold h;
    h.reason = rows.text(row, column);
    h.since = from_ms(rows.int64(row, column + 1));
    h.next_probe_at = from_ms(rows.int64(row, column + 2));
    h.probes = static_cast<int>(rows.int64(row, column + 3));
    return h;
}

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
    const auto follow = follow_mode_from_string(rows.text(row, c + 14));
    if (!follow) throw std::runtime_error("trigger " + t.id + " has an unknown follow mode");
    t.request.follow = *follow;
    if (!rows.is_null(row, c + 15)) t.request.status = parse_status_target(rows.text(row, c + 15));
    t.build = parse_build_record(rows.text(row, c + 16));
    t.status.wanted = parse_status_wish(rows.text(row, c + 17));
    t.status.wanted_seq = rows.int64(row, c + 18);
    t.status.posted_seq = rows.int64(row, c + 19);
    t.status.posted = parse_status_wish(rows.text(row, c + 20));
    t.status.tries = static_cast<int>(rows.int64(row, c + 21));
    t.status.error = rows.text(row, c + 22);
    t.following = rows.boolean(row, c + 23);
    t.request.coalesce = rows.text(row, c + 24);
    t.request.cancel_superseded = rows.boolean(row, c + 25);
    t.request.multibranch = static_cast<std::size_t>(rows.int64(row, c + 26));
    t.request.scan_only = rows.boolean(row, c + 27);
    t.superseded_by = rows.text(row, c + 28);
    return t;
}

}  // namespace hookrelay::store::postgres
