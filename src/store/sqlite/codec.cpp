#include "store/sqlite/codec.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace hookrelay::store::sqlite {

std::int64_t plus_ms(TimePoint t, std::chrono::milliseconds d) {
    const std::int64_t base = to_ms_not_before(t);
    const std::int64_t add = d.count();
    constexpr auto k_max = std::numeric_limits<std::int64_t>::max();
    constexpr auto k_min = std::numeric_limits<std::int64_t>::min();
    if (add > 0 && base > k_max - add) return k_max;
    if (add < 0 && base < k_min - add) return k_min;
    return base + add;
}

StoredTrigger read_trigger(const Query& query, int first) {
    StoredTrigger t;
    t.id = query.text(first);
    t.source = query.text(first + 1);
    t.delivery_id = query.text(first + 2);
    t.request.rule = query.text(first + 3);
    t.request.jenkins = query.text(first + 4);
    t.request.job = parse_strings(query.text(first + 5));
    t.request.parameters = parse_pairs(query.text(first + 6));
    t.request.cause = query.text(first + 7);
    const auto state = trigger_state_from_string(query.text(first + 8));
    if (!state) throw std::runtime_error("trigger " + t.id + " has an unknown state");
    t.state = *state;
    t.attempts = static_cast<int>(query.int64(first + 9));
    t.created_at = from_ms(query.int64(first + 10));
    t.next_attempt_at = from_ms(query.int64(first + 11));
    t.last_outcome = query.text(first + 12);
    t.queue_url = query.text(first + 13);
    const auto follow = follow_mode_from_string(query.text(first + 14));
    if (!follow) throw std::runtime_error("trigger " + t.id + " has an unknown follow mode");
    t.request.follow = *follow;
    t.request.status = parse_status_target(query.text(first + 15));
    t.build = parse_build_record(query.text(first + 16));
    t.following = query.int64(first + 17) != 0;
    t.status.wanted = parse_status_wish(query.text(first + 18));
    t.status.wanted_seq = query.int64(first + 19);
    t.status.posted_seq = query.int64(first + 20);
    t.status.posted = parse_status_wish(query.text(first + 21));
    t.status.tries = static_cast<int>(query.int64(first + 22));
    t.status.error = query.text(first + 23);
    t.request.coalesce = query.text(first + 24);
    t.request.cancel_superseded = query.int64(first + 25) != 0;
    t.request.multibranch =
        static_cast<std::size_t>(std::max<std::int64_t>(query.int64(first + 26), 0));
    t.request.scan_only = query.int64(first + 27) != 0;
    t.superseded_by = query.text(first + 28);
    return t;
}

Attempt read_attempt(const Query& query, int first) {
    Attempt a;
    a.at = from_ms(query.int64(first));
    a.http_status = static_cast<int>(query.int64(first + 1));
    a.outcome = query.text(first + 2);
    a.duration = std::chrono::milliseconds(query.int64(first + 3));
    a.queue_url = query.text(first + 4);
    a.counted = query.int64(first + 5) != 0;
    a.instance = query.text(first + 6);
    return a;
}

DeliverySummary read_summary(const Query& query, int first) {
    DeliverySummary s;
    s.seq = query.int64(first);
    s.source = query.text(first + 1);
    const auto provider = provider_from_string(query.text(first + 2));
    const auto kind = kind_from_string(query.text(first + 4));
    if (!provider || !kind) {
        throw std::runtime_error("delivery #" + std::to_string(s.seq) +
                                 " has an unknown provider or kind");
    }
    s.provider = *provider;
    s.delivery_id = query.text(first + 3);
    s.kind = *kind;
    s.forge_event = query.text(first + 5);
    s.received_at = from_ms(query.int64(first + 6));
    s.repository = query.text(first + 7);
    s.ref = query.text(first + 8);
    return s;
}

JenkinsHold read_hold(const Query& query, int first) {
    JenkinsHold h;
    h.reason = query.text(first);
    h.since = from_ms(query.int64(first + 1));
    h.next_probe_at = from_ms(query.int64(first + 2));
    h.probes = static_cast<int>(query.int64(first + 3));
    return h;
}

}  // namespace hookrelay::store::sqlite
