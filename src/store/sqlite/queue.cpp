#include "store/sqlite/queue.hpp"

#include "store/sqlite/codec.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <tuple>
#include <utility>

namespace hookrelay::store::sqlite {

Queue::Queue(Connection& connection, Chores& chores, std::string instance_id)
    : db_(connection),
      chores_(chores),
      instance_(std::move(instance_id)),
      select_hold_(db_.get(), "select hold", R"sql(
SELECT reason, since, next_probe_at, probes FROM holds WHERE jenkins = ?)sql"),
      count_claims_(db_.get(), "count claims", R"sql(
SELECT COUNT(*) FROM triggers
WHERE jenkins = ?1 AND claim_id IS NOT NULL AND claim_expires_at > ?2)sql"),
      // Due, open, and not under a live claim (an expired one is taken over), oldest due first,
      // walking the open-trigger index; each claim gets a random 128-bit id, unique by index.
      // RETURNING's row order is unspecified: claim() sorts.
      claim_(db_.get(), "claim",
             (R"sql(
UPDATE triggers
SET claim_id = lower(hex(randomblob(16))), claim_owner = ?1, claim_expires_at = ?2
WHERE seq IN (
    SELECT seq FROM triggers
    WHERE jenkins = ?3 AND state IN ('pending', 'retrying') AND next_attempt_at <= ?4
        AND (claim_id IS NULL OR claim_expires_at <= ?4)
    ORDER BY next_attempt_at, seq
    LIMIT ?5)
RETURNING id, (SELECT source FROM deliveries d WHERE d.id = delivery),
    (SELECT delivery_id FROM deliveries d WHERE d.id = delivery), rule, jenkins, job, parameters,
    cause, state, attempts, created_at, next_attempt_at, last_outcome, queue_url, )sql" +
              std::string(k_trigger_chore_columns) + ", claim_id, claim_expires_at, seq")
                 .c_str()),
      // A renewal committed after a later one (the dispatcher asks them on the interval, without
      // waiting for the last answer) leaves the later lease as it was.
      renew_(db_.get(), "renew", R"sql(
UPDATE triggers SET claim_expires_at = max(coalesce(claim_expires_at, ?1), ?1)
WHERE claim_id = ?2 AND claim_owner = ?3)sql"),
      // What complete() reads first when the outcome depends on what is stored (a delivered
      // trigger whose update has no build record), under the claim given out.
      select_complete_inputs_(db_.get(), "select complete inputs", R"sql(
SELECT build, follow_due_at IS NOT NULL FROM triggers WHERE id = ?1 AND claim_id = ?2)sql"),
      // Only under the claim given out: a takeover or a replay has replaced or cleared it. ?9:
      // a build record is given (?10, its JSON; ?11 its queue item); ?12: delivered with one, so
      // a followed trigger's follow chore starts, due at ?2; ?13-?15: the outcome when the
      // trigger follows none, started, finished.
      complete_(db_.get(), "complete", R"sql(
UPDATE triggers
SET state = ?1, next_attempt_at = ?2, last_outcome = ?3, updated_at = ?4,
    outcome = CASE follow WHEN 'none' THEN ?13 WHEN 'started' THEN ?14 ELSE ?15 END,
    queue_url = CASE WHEN ?5 != '' THEN ?5 WHEN ?9 AND ?11 != '' THEN ?11 ELSE queue_url END,
    attempts = attempts + ?6,
    claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL,
    build = CASE WHEN ?9 THEN ?10 ELSE build END,
    follow_due_at = CASE WHEN ?12 AND follow != 'none' THEN ?2 ELSE follow_due_at END,
    follow_tries = CASE WHEN ?12 AND follow != 'none' THEN 0 ELSE follow_tries END,
    follow_claim_id = CASE WHEN ?12 AND follow != 'none' THEN NULL ELSE follow_claim_id END,
    follow_owner = CASE WHEN ?12 AND follow != 'none' THEN NULL ELSE follow_owner END,
    follow_expires_at = CASE WHEN ?12 AND follow != 'none' THEN NULL ELSE follow_expires_at END
WHERE id = ?7 AND claim_id = ?8)sql"),
      insert_attempt_(db_.get(), "insert attempt", R"sql(
INSERT INTO attempts (trigger_id, at, http_status, outcome, duration_ms, queue_url, counted,
                      instance)
VALUES (?, ?, ?, ?, ?, ?, ?, ?))sql"),
      release_(db_.get(), "release", R"sql(
UPDATE triggers SET claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL
WHERE claim_id = ?)sql"),
      // The earliest unclaimed due time (the first such row of the open-trigger index; claimed
      // rows are few), and over the claimed ones the later of due time and lease expiry.
      next_due_(db_.get(), "next due", R"sql(
SELECT MIN(due) FROM (
    SELECT * FROM (
        SELECT next_attempt_at AS due FROM triggers
        WHERE jenkins = ?1 AND state IN ('pending', 'retrying') AND claim_id IS NULL
        ORDER BY next_attempt_at LIMIT 1)
    UNION ALL
    SELECT MIN(MAX(next_attempt_at, claim_expires_at)) FROM triggers
    WHERE jenkins = ?1 AND claim_id IS NOT NULL AND state IN ('pending', 'retrying')))sql"),
      hold_(db_.get(), "hold", R"sql(
INSERT INTO holds (jenkins, reason, since, next_probe_at, probes)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (jenkins) DO UPDATE SET reason = excluded.reason,
    next_probe_at = excluded.next_probe_at)sql"),
      try_probe_(db_.get(), "try probe", R"sql(
UPDATE holds SET probe_owner = ?1, probe_expires_at = ?2
WHERE jenkins = ?3 AND next_probe_at <= ?4
    AND (probe_owner IS NULL OR probe_owner = ?1 OR probe_expires_at <= ?4)
RETURNING reason, since, next_probe_at, probes)sql"),
      probe_failed_(db_.get(), "probe failed", R"sql(
UPDATE holds SET probes = probes + 1, next_probe_at = ?1, reason = ?2, probe_owner = NULL,
    probe_expires_at = NULL
WHERE jenkins = ?3 AND (probe_owner IS NULL OR probe_owner = ?4))sql"),
      unhold_(db_.get(), "unhold", "DELETE FROM holds WHERE jenkins = ?"),
      release_all_(db_.get(), "release all claims", R"sql(
UPDATE triggers SET claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL
WHERE claim_id IS NOT NULL)sql"),
      release_all_probes_(db_.get(), "release all probes", R"sql(
UPDATE holds SET probe_owner = NULL, probe_expires_at = NULL WHERE probe_owner IS NOT NULL)sql"),
      release_own_(db_.get(), "release own claims", R"sql(
UPDATE triggers SET claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL
WHERE claim_id IS NOT NULL AND claim_owner = ?)sql"),
      release_own_probes_(db_.get(), "release own probes", R"sql(
UPDATE holds SET probe_owner = NULL, probe_expires_at = NULL WHERE probe_owner = ?)sql"),
      // Column 3: whether the trigger was queued again after its delivery came (a replay, a
      // redelivery: both set created_at to their time, where a submit sets the delivery's
      // received_at).
      select_scope_(db_.get(), "select scope", R"sql(
SELECT t.scope, t.delivery, t.build, coalesce(t.created_at != d.received_at, 1)
FROM triggers t LEFT JOIN deliveries d ON d.id = t.delivery WHERE t.id = ?)sql"),
      // The newest open trigger (in flight or not) of a later delivery with the scope.
      select_newer_(db_.get(), "select newer", R"sql(
SELECT t.id, d.delivery_id, d.id, t.status_target
FROM triggers t INDEXED BY triggers_scope_open CROSS JOIN deliveries d ON d.id = t.delivery
WHERE t.scope = ?1 AND t.scope != '' AND t.state IN ('pending', 'retrying') AND t.delivery > ?2
ORDER BY t.delivery DESC, t.seq DESC LIMIT 1)sql"),
      // When no newer one waits: the newest delivered one (its build is newer than a retry).
      select_newer_delivered_(db_.get(), "select newer delivered", R"sql(
SELECT t.id, d.delivery_id, d.id, t.status_target
FROM triggers t INDEXED BY triggers_scope_delivered CROSS JOIN deliveries d ON d.id = t.delivery
WHERE t.scope = ?1 AND t.scope != '' AND t.state = 'delivered' AND t.delivery > ?2
ORDER BY t.delivery DESC, t.seq DESC LIMIT 1)sql"),
      mark_superseded_(db_.get(), "mark superseded", R"sql(
UPDATE triggers
SET state = 'superseded', outcome = 'superseded', superseded_by = ?1, last_outcome = ?2,
    claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL, follow_due_at = NULL,
    follow_claim_id = NULL, follow_owner = NULL, follow_expires_at = NULL
WHERE id = ?3)sql"),
      // Delivered triggers of earlier deliveries with the scope, newest first; whether their
      // build started is in the build record, read by the caller.
      select_predecessors_(db_.get(), "select predecessors", R"sql(
SELECT t.id, d.delivery_id, d.id, t.build
FROM triggers t INDEXED BY triggers_scope_delivered CROSS JOIN deliveries d ON d.id = t.delivery
WHERE t.scope = ?1 AND t.scope != '' AND t.state = 'delivered' AND t.delivery < ?2
ORDER BY t.delivery DESC, t.seq DESC)sql"),
      // Only for a trigger that exists (the foreign key would refuse the row otherwise).
      insert_note_(db_.get(), "insert note", R"sql(
INSERT INTO attempts (trigger_id, at, http_status, outcome, duration_ms, queue_url, counted,
                      instance)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, 0, ?7 WHERE EXISTS (SELECT 1 FROM triggers WHERE id = ?1))sql"),
      select_scan_(db_.get(), "select scan", R"sql(
SELECT requested_at FROM scans WHERE jenkins = ? AND project = ?)sql"),
      record_scan_(db_.get(), "record scan", R"sql(
INSERT INTO scans (jenkins, project, requested_at) VALUES (?1, ?2, ?3)
ON CONFLICT (jenkins, project) DO UPDATE SET requested_at = excluded.requested_at)sql"),
      forget_scan_(db_.get(), "forget scan", R"sql(
DELETE FROM scans WHERE jenkins = ? AND project = ? AND requested_at = ?)sql") {}

ClaimBatch Queue::claim(const ClaimRequest& request) {
    ClaimBatch batch;
    {
        Query query(select_hold_);
        query.bind_text(request.jenkins);
        if (query.step()) {
            batch.hold = read_hold(query);
            return batch;
        }
    }
    std::size_t room = request.limit;
    if (request.max_in_flight > 0) {
        Query query(count_claims_);
        query.bind_text(request.jenkins).bind_int(to_ms(request.now));
        const auto live = query.step() ? static_cast<std::size_t>(query.int64(0)) : 0;
        room = std::min(room, request.max_in_flight > live ? request.max_in_flight - live : 0);
    }
    if (room == 0) return batch;

    constexpr auto k_max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    std::vector<std::tuple<TimePoint, std::int64_t, Claim>> rows;
    {
        Query query(claim_);
        query.bind_text(instance_).bind_int(plus_ms(request.now, request.lease));
        query.bind_text(request.jenkins).bind_int(to_ms(request.now));
        query.bind_int(static_cast<std::int64_t>(std::min(room, k_max)));
        while (query.step()) {
            constexpr int k_next = k_trigger_columns;
            Claim claim{read_trigger(query), query.text(k_next), from_ms(query.int64(k_next + 1))};
            const TimePoint due = claim.trigger.next_attempt_at;
            rows.emplace_back(due, query.int64(k_next + 2), std::move(claim));
        }
    }
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
        return std::tie(std::get<0>(a), std::get<1>(a)) < std::tie(std::get<0>(b), std::get<1>(b));
    });
    batch.claims.reserve(rows.size());
    for (auto& row : rows) batch.claims.push_back(std::move(std::get<2>(row)));
    return batch;
}

std::vector<std::string> Queue::renew(const std::vector<std::string>& claim_ids, TimePoint now,
                                      std::chrono::milliseconds lease) {
    std::vector<std::string> held;
    const std::int64_t expires = plus_ms(now, lease);
    for (const std::string& id : claim_ids) {
        Query(renew_).bind_int(expires).bind_text(id).bind_text(instance_).run();
        if (db_.changes() > 0) held.push_back(id);
    }
    return held;
}

Completion Queue::complete(const std::string& claim_id, const TriggerUpdate& u,
                           TimePoint updated_at) {
    const bool starts_follow = u.state == TriggerState::delivered && u.build.has_value();
    // The outcome is written by the same statement, as PostgreSQL's complete() does: a second
    // update of the row for it cost ~8 % of the store thread in the drain. It follows from the
    // update alone unless a delivered trigger keeps its stored build record, read first.
    BuildRecord after;
    bool following = false;
    if (u.state == TriggerState::delivered && !u.build) {
        Query query(select_complete_inputs_);
        query.bind_text(u.id).bind_text(claim_id);
        if (!query.step()) return Completion::stale;
        after = parse_build_record(query.text(0));
        following = query.int64(1) != 0;
    }
    std::string build;
    if (u.build) {
        after = *u.build;
        if (after.merged) after.merged_with = chores_.merged_with(u.id, after.queue_url);
        build = build_record_json(after);
    }
    const auto outcomes = outcomes_by_follow(u.state, after, starts_follow, following);
    {
        Query query(complete_);
        query.bind_text(to_string(u.state)).bind_int(to_ms_not_before(u.next_attempt_at));
        query.bind_text(u.last_outcome).bind_int(to_ms(updated_at)).bind_text(u.attempt.queue_url);
        query.bind_int(u.attempt.counted ? 1 : 0).bind_text(u.id).bind_text(claim_id);
        query.bind_int(u.build ? 1 : 0).bind_text(build);
        query.bind_text(u.build ? u.build->queue_url : std::string());
        query.bind_int(starts_follow ? 1 : 0);
        query.bind_text(outcomes[0]).bind_text(outcomes[1]).bind_text(outcomes[2]).run();
    }
    if (db_.changes() == 0) return Completion::stale;
    {
        Query query(insert_attempt_);
        query.bind_text(u.id).bind_int(to_ms(u.attempt.at)).bind_int(u.attempt.http_status);
        query.bind_text(u.attempt.outcome).bind_int(u.attempt.duration.count());
        query.bind_text(u.attempt.queue_url).bind_int(u.attempt.counted ? 1 : 0);
        query.bind_text(u.attempt.instance.empty() ? instance_ : u.attempt.instance).run();
    }
    const bool open = u.state == TriggerState::pending || u.state == TriggerState::retrying;
    if (open && supersede_if_newer(u.id)) return Completion::superseded;
    if (u.status) chores_.record_wish(u.id, *u.status);
    return Completion::applied;
}

bool Queue::supersede_if_newer(const std::string& id) {
    std::string scope;
    std::int64_t delivery = 0;
    bool queued_again = false;
    {
        Query query(select_scope_);
        query.bind_text(id);
        if (!query.step()) return false;
        scope = query.text(0);
        delivery = query.int64(1);
        queued_again = query.int64(3) != 0;
    }
    if (scope.empty()) return false;
    std::string newer;
    std::string newer_delivery;
    TriggerRequest newer_request;
    const auto found = [&](Query& query) {
        if (!query.step()) return false;
        newer = query.text(0);
        newer_delivery = query.is_null(1) ? "#" + std::to_string(query.int64(2)) : query.text(1);
        newer_request.status = parse_status_target(query.text(3));
        return true;
    };
    // The newest waiting trigger of a later delivery, else the newest delivered one: once a newer
    // commit went to Jenkins, retrying this one would build an older commit after it. Not for a
    // trigger queued again by an admin (replayed, redelivered): that build was asked for.
    {
        Query waiting(select_newer_);
        waiting.bind_text(scope).bind_int(delivery);
        if (!found(waiting)) {
            if (queued_again) return false;
            Query delivered(select_newer_delivered_);
            delivered.bind_text(scope).bind_int(delivery);
            if (!found(delivered)) return false;
        }
    }
    Query(mark_superseded_)
        .bind_text(newer)
        .bind_text(superseded_outcome(newer, newer_delivery))
        .bind_text(id)
        .run();
    // record_wish() does nothing for a trigger without a StatusTarget.
    chores_.record_wish(id, superseded_wish(newer_request, newer));
    return true;
}

std::vector<QueuedPredecessor> Queue::queued_predecessors(const std::string& id,
                                                          std::size_t limit) {
    std::vector<QueuedPredecessor> out;
    if (limit == 0) return out;
    std::string scope;
    std::int64_t delivery = 0;
    std::int64_t own_queue_id = 0;
    {
        Query query(select_scope_);
        query.bind_text(id);
        if (!query.step()) return out;
        scope = query.text(0);
        delivery = query.int64(1);
        own_queue_id = parse_build_record(query.text(2)).queue_id;
    }
    if (scope.empty()) return out;
    Query query(select_predecessors_);
    query.bind_text(scope).bind_int(delivery);
    while (out.size() < limit && query.step()) {
        const BuildRecord build = parse_build_record(query.text(3));
        if (build.queue_id <= 0 || build.queue_id == own_queue_id || build.number != 0 ||
            !build.result.empty() || !build.error.empty()) {
            continue;
        }
        QueuedPredecessor p;
        p.id = query.text(0);
        p.delivery_id = query.is_null(1) ? "#" + std::to_string(query.int64(2)) : query.text(1);
        p.queue_id = build.queue_id;
        p.queue_url = build.queue_url;
        out.push_back(std::move(p));
    }
    return out;
}

void Queue::add_note(const std::string& id, const Attempt& note) {
    Query query(insert_note_);
    query.bind_text(id).bind_int(to_ms(note.at)).bind_int(note.http_status);
    query.bind_text(note.outcome).bind_int(note.duration.count()).bind_text(note.queue_url);
    query.bind_text(note.instance).run();
}

ScanGate Queue::request_scan(const std::string& jenkins, const std::string& project,
                             TimePoint since, TimePoint now, std::chrono::milliseconds interval) {
    // The writer's transaction is BEGIN IMMEDIATE: no other connection writes between this read
    // and the write below, so two callers are never both granted.
    std::optional<std::int64_t> last;
    {
        Query query(select_scan_);
        query.bind_text(jenkins).bind_text(project);
        if (query.step()) last = query.int64(0);
    }
    if (last && *last >= to_ms_not_before(since)) {
        return ScanGate{ScanGate::Verdict::covered, from_ms(*last)};
    }
    if (last) {
        const std::int64_t next = plus_ms(from_ms(*last), interval);
        if (next > to_ms(now)) return ScanGate{ScanGate::Verdict::wait, from_ms(next)};
    }
    const std::int64_t at = to_ms(now);
    Query(record_scan_).bind_text(jenkins).bind_text(project).bind_int(at).run();
    return ScanGate{ScanGate::Verdict::granted, from_ms(at)};
}

void Queue::forget_scan(const std::string& jenkins, const std::string& project,
                        TimePoint requested_at) {
    Query(forget_scan_).bind_text(jenkins).bind_text(project).bind_int(to_ms(requested_at)).run();
}

std::size_t Queue::release(const std::vector<std::string>& claim_ids) {
    std::size_t released = 0;
    for (const std::string& id : claim_ids) {
        Query(release_).bind_text(id).run();
        released += static_cast<std::size_t>(db_.changes());
    }
    return released;
}

std::optional<TimePoint> Queue::next_due(const std::string& jenkins) {
    Query query(next_due_);
    query.bind_text(jenkins);
    if (!query.step() || query.is_null(0)) return std::nullopt;
    return from_ms(query.int64(0));
}

void Queue::hold(const std::string& jenkins, const JenkinsHold& hold) {
    Query query(hold_);
    query.bind_text(jenkins).bind_text(hold.reason).bind_int(to_ms(hold.since));
    query.bind_int(to_ms_not_before(hold.next_probe_at)).bind_int(hold.probes).run();
}

std::optional<JenkinsHold> Queue::try_probe(const std::string& jenkins, TimePoint now,
                                            std::chrono::milliseconds lease) {
    Query query(try_probe_);
    query.bind_text(instance_).bind_int(plus_ms(now, lease)).bind_text(jenkins);
    query.bind_int(to_ms(now));
    if (!query.step()) return std::nullopt;
    JenkinsHold hold = read_hold(query);
    query.run();  // RETURNING: the update completes when the statement is stepped to its end
    return hold;
}

void Queue::probe_failed(const std::string& jenkins, TimePoint next_probe_at,
                         const std::string& reason) {
    Query(probe_failed_)
        .bind_int(to_ms_not_before(next_probe_at))
        .bind_text(reason)
        .bind_text(jenkins)
        .bind_text(instance_)
        .run();
}

bool Queue::unhold(const std::string& jenkins) {
    Query(unhold_).bind_text(jenkins).run();
    return db_.changes() > 0;
}

std::size_t Queue::release_all() {
    Query(release_all_).run();
    const auto released = static_cast<std::size_t>(db_.changes());
    Query(release_all_probes_).run();
    chores_.release_all();
    return released;
}

void Queue::release_own() {
    Query(release_own_).bind_text(instance_).run();
    Query(release_own_probes_).bind_text(instance_).run();
    chores_.release_own();
}

}  // namespace hookrelay::store::sqlite
