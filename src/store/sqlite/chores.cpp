#include "store/sqlite/chores.hpp"

#include "store/sqlite/codec.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace hookrelay::store::sqlite {
namespace {

constexpr std::size_t k_claim_id_bytes = 16;

// A chore's claim taken on one row (by seq), answering the trigger (read_trigger()'s columns)
// and the chore's tries. `prefix` is "follow" or "status".
std::string take_sql(const char* prefix) {
    const std::string p(prefix);
    return "UPDATE triggers SET " + p + "_claim_id = ?1, " + p + "_owner = ?2, " + p +
           "_expires_at = ?3 WHERE seq = ?4\n"
           "RETURNING id, (SELECT source FROM deliveries d WHERE d.id = delivery),\n"
           "    (SELECT delivery_id FROM deliveries d WHERE d.id = delivery), rule, jenkins, job,\n"
           "    parameters, cause, state, attempts, created_at, next_attempt_at, last_outcome,\n"
           "    queue_url, " +
           k_trigger_chore_columns + ", " + p + "_tries";
}

}  // namespace

Chores::Chores(Connection& connection, std::string instance_id)
    : db_(connection),
      instance_(std::move(instance_id)),
      select_hold_(db_.get(), "select hold", R"sql(
SELECT reason, since, next_probe_at, probes FROM holds WHERE jenkins = ?)sql"),
      count_follow_(db_.get(), "count follow claims", R"sql(
SELECT COUNT(*) FROM triggers
WHERE jenkins = ?1 AND follow_claim_id IS NOT NULL AND follow_expires_at > ?2)sql"),
      // Walks the Jenkins' follow chores (a partial index: only triggers still followed) in due
      // order and stops at the limit.
      due_follow_(db_.get(), "due follows", R"sql(
SELECT seq FROM triggers INDEXED BY triggers_follow_due
WHERE jenkins = ?1 AND follow_due_at IS NOT NULL AND follow_due_at <= ?2
    AND (follow_claim_id IS NULL OR follow_expires_at <= ?2)
ORDER BY follow_due_at, seq
LIMIT ?3)sql"),
      take_follow_(db_.get(), "take follow", take_sql("follow").c_str()),
      count_status_(db_.get(), "count status claims", R"sql(
SELECT COUNT(*) FROM triggers t INDEXED BY triggers_status_claimed
CROSS JOIN deliveries d ON d.id = t.delivery
WHERE t.status_claim_id IS NOT NULL AND t.status_expires_at > ?2 AND d.source = ?1)sql"),
      // Open status chores are few (a partial index: only wishes not yet posted); the source is
      // the delivery's.
      due_status_(db_.get(), "due statuses", R"sql(
SELECT t.seq FROM triggers t INDEXED BY triggers_status_due
CROSS JOIN deliveries d ON d.id = t.delivery
WHERE t.status_due_at IS NOT NULL AND t.status_due_at <= ?2 AND d.source = ?1
    AND t.status_wanted_seq > t.status_posted_seq
    AND (t.status_claim_id IS NULL OR t.status_expires_at <= ?2)
ORDER BY t.status_due_at, t.seq
LIMIT ?3)sql"),
      take_status_(db_.get(), "take status", take_sql("status").c_str()),
      // Only under the claim given out: a takeover or a replay has replaced or cleared it. With
      // a new build record (?1) the outcome follows from the update: ?8, ?9 and ?10 are those of
      // follow none, started and finished (outcomes_by_follow()); a trigger no longer delivered
      // shows its state, as trigger_outcome() does. Without one it is left to store_outcome().
      complete_follow_(db_.get(), "complete follow", R"sql(
UPDATE triggers
SET build = CASE WHEN ?1 THEN ?2 ELSE build END, follow_due_at = ?3, follow_tries = ?4,
    updated_at = ?5, follow_claim_id = NULL, follow_owner = NULL, follow_expires_at = NULL,
    outcome = CASE WHEN NOT ?1 THEN outcome WHEN state != 'delivered' THEN state
                   WHEN follow = 'none' THEN ?8 WHEN follow = 'started' THEN ?9 ELSE ?10 END
WHERE id = ?6 AND follow_claim_id = ?7)sql"),
      // ?4 is next_at (NULL: this post is dealt with). The right-hand sides all read the row as
      // it was: a wish newer than the one posted makes the chore due again at once.
      complete_status_(db_.get(), "complete status", R"sql(
UPDATE triggers
SET status_error = ?1,
    status_posted = CASE WHEN ?2 THEN ?3 ELSE status_posted END,
    status_posted_seq = CASE WHEN ?4 IS NULL THEN MAX(status_posted_seq, ?5)
                             ELSE status_posted_seq END,
    status_due_at = CASE WHEN ?4 IS NOT NULL THEN ?4
                         WHEN status_wanted_seq > MAX(status_posted_seq, ?5) THEN 0 END,
    status_tries = CASE WHEN ?4 IS NULL AND status_wanted_seq > MAX(status_posted_seq, ?5) THEN 0
                        ELSE ?6 END,
    status_claim_id = NULL, status_owner = NULL, status_expires_at = NULL
WHERE id = ?7 AND status_claim_id = ?8)sql"),
      // Due at once: 0 is before any `now`.
      record_wish_(db_.get(), "record status wish", R"sql(
UPDATE triggers
SET status_wanted = ?1, status_wanted_seq = status_wanted_seq + 1, status_tries = 0,
    status_error = '', status_due_at = 0
WHERE id = ?2 AND status_target IS NOT NULL)sql"),
      select_outcome_inputs_(db_.get(), "select outcome inputs", R"sql(
SELECT state, follow, build, follow_due_at IS NOT NULL FROM triggers WHERE id = ?)sql"),
      update_outcome_(db_.get(), "update outcome", R"sql(
UPDATE triggers SET outcome = ?1 WHERE id = ?2 AND outcome != ?1)sql"),
      select_merged_(db_.get(), "select merged", R"sql(
SELECT d.delivery_id, d.id FROM triggers t CROSS JOIN deliveries d ON d.id = t.delivery
WHERE t.queue_url = ?1 AND t.queue_url != '' AND t.id != ?2
ORDER BY t.seq DESC LIMIT 1)sql"),
      release_all_follow_(db_.get(), "release all follow claims", R"sql(
UPDATE triggers SET follow_claim_id = NULL, follow_owner = NULL, follow_expires_at = NULL
WHERE follow_claim_id IS NOT NULL)sql"),
      release_all_status_(db_.get(), "release all status claims", R"sql(
UPDATE triggers SET status_claim_id = NULL, status_owner = NULL, status_expires_at = NULL
WHERE status_claim_id IS NOT NULL)sql"),
      release_own_follow_(db_.get(), "release own follow claims", R"sql(
UPDATE triggers SET follow_claim_id = NULL, follow_owner = NULL, follow_expires_at = NULL
WHERE follow_claim_id IS NOT NULL AND follow_owner = ?)sql"),
      release_own_status_(db_.get(), "release own status claims", R"sql(
UPDATE triggers SET status_claim_id = NULL, status_owner = NULL, status_expires_at = NULL
WHERE status_claim_id IS NOT NULL AND status_owner = ?)sql"),
      // Through the partial indexes on the claim ids' Jenkins and expiry would not find one id:
      // the trigger is found by the claim alone, among the few claimed rows.
      release_follow_(db_.get(), "release follow claim", R"sql(
UPDATE triggers SET follow_claim_id = NULL, follow_owner = NULL, follow_expires_at = NULL
WHERE follow_claim_id = ?1 AND follow_owner = ?2)sql"),
      release_status_(db_.get(), "release status claim", R"sql(
UPDATE triggers SET status_claim_id = NULL, status_owner = NULL, status_expires_at = NULL
WHERE status_claim_id = ?1 AND status_owner = ?2)sql") {}

ChoreBatch Chores::claim(const ChoreRequest& request) {
    ChoreBatch batch;
    const bool follow = request.chore == Chore::follow;
    if (follow) {
        Query query(select_hold_);
        query.bind_text(request.key);
        if (query.step()) {
            batch.hold = read_hold(query);
            return batch;
        }
    }
    std::size_t room = request.limit;
    if (request.max_in_flight > 0) {
        Query query(follow ? count_follow_ : count_status_);
        query.bind_text(request.key).bind_int(to_ms(request.now));
        const auto live = query.step() ? static_cast<std::size_t>(query.int64(0)) : 0;
        room = std::min(room, request.max_in_flight > live ? request.max_in_flight - live : 0);
    }
    if (room == 0) return batch;

    // Read first, then write: an UPDATE under an open SELECT of the same index could make the
    // SELECT see a row twice, or not at all.
    constexpr auto k_max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    std::vector<std::int64_t> due;
    {
        Query query(follow ? due_follow_ : due_status_);
        query.bind_text(request.key).bind_int(to_ms(request.now));
        query.bind_int(static_cast<std::int64_t>(std::min(room, k_max)));
        while (query.step()) due.push_back(query.int64(0));
    }
    const std::int64_t expires = plus_ms(request.now, request.lease);
    batch.claims.reserve(due.size());
    for (const std::int64_t seq : due) {
        ChoreClaim claim;
        claim.claim_id = random_hex(k_claim_id_bytes);
        claim.expires_at = from_ms(expires);
        Query query(follow ? take_follow_ : take_status_);
        query.bind_text(claim.claim_id).bind_text(instance_).bind_int(expires).bind_int(seq);
        if (!query.step()) continue;
        claim.trigger = read_trigger(query);
        claim.tries = static_cast<int>(query.int64(k_trigger_columns));
        query.run();  // RETURNING: the update completes when the statement is stepped to its end
        batch.claims.push_back(std::move(claim));
    }
    return batch;
}

Completion Chores::complete(Chore chore, const std::string& claim_id, const ChoreUpdate& u,
                            TimePoint updated_at) {
    if (chore == Chore::status) {
        Query query(complete_status_);
        query.bind_text(u.error).bind_int(u.posted ? 1 : 0);
        query.bind_text(u.posted ? status_wish_json(*u.posted) : std::string());
        if (u.next_at) {
            query.bind_int(to_ms_not_before(*u.next_at));
        } else {
            query.bind_null();
        }
        query.bind_int(u.posted_seq).bind_int(u.tries).bind_text(u.id).bind_text(claim_id).run();
        // The outcome does not depend on the statuses: nothing else to write.
        return db_.changes() > 0 ? Completion::applied : Completion::stale;
    }
    {
        // Following goes on while the chore is due again.
        const auto outcomes = u.build ? outcomes_by_follow(TriggerState::delivered, *u.build, false,
                                                           u.next_at.has_value())
                                      : std::array<std::string, 3>{};
        Query query(complete_follow_);
        query.bind_int(u.build ? 1 : 0);
        query.bind_text(u.build ? build_record_json(*u.build) : std::string());
        if (u.next_at) {
            query.bind_int(to_ms_not_before(*u.next_at));
        } else {
            query.bind_null();
        }
        query.bind_int(u.tries).bind_int(to_ms(updated_at)).bind_text(u.id).bind_text(claim_id);
        query.bind_text(outcomes[0]).bind_text(outcomes[1]).bind_text(outcomes[2]).run();
    }
    if (db_.changes() == 0) return Completion::stale;
    if (u.status) record_wish(u.id, *u.status);
    // The stored build record is kept: its outcome needs reading it.
    if (!u.build) store_outcome(u.id);
    return Completion::applied;
}

void Chores::record_wish(const std::string& id, const StatusWish& wish) {
    Query(record_wish_).bind_text(status_wish_json(wish)).bind_text(id).run();
}

void Chores::store_outcome(const std::string& id) {
    StoredTrigger t;
    {
        Query query(select_outcome_inputs_);
        query.bind_text(id);
        if (!query.step()) return;
        const auto state = trigger_state_from_string(query.text(0));
        const auto follow = follow_mode_from_string(query.text(1));
        if (!state || !follow) throw std::runtime_error("trigger " + id + " has an unknown state");
        t.state = *state;
        t.request.follow = *follow;
        t.build = parse_build_record(query.text(2));
        t.following = query.int64(3) != 0;
    }
    Query(update_outcome_).bind_text(trigger_outcome(t)).bind_text(id).run();
}

std::string Chores::merged_with(const std::string& id, const std::string& queue_url) {
    if (queue_url.empty()) return {};
    Query query(select_merged_);
    query.bind_text(queue_url).bind_text(id);
    if (!query.step()) return {};
    if (query.is_null(0)) return "#" + std::to_string(query.int64(1));
    return query.text(0);
}

void Chores::release_all() {
    Query(release_all_follow_).run();
    Query(release_all_status_).run();
}

void Chores::release_own() {
    Query(release_own_follow_).bind_text(instance_).run();
    Query(release_own_status_).bind_text(instance_).run();
}

void Chores::release(Chore chore, const std::vector<std::string>& claim_ids) {
    auto& statement = chore == Chore::follow ? release_follow_ : release_status_;
    for (const auto& id : claim_ids) Query(statement).bind_text(id).bind_text(instance_).run();
}

}  // namespace hookrelay::store::sqlite
