// The chores on PostgreSQL: following delivered triggers to their builds (keyed by Jenkins) and
// posting their commit statuses (keyed by source), leased like triggers but on leases of their
// own (columns follow_* and status_* of the trigger).
//
// A chore is claimable when it is due (follow_due_at / status_due_at <= now; a status chore
// also needs a wish not yet posted: status_wanted_seq > status_posted_seq) and not under an
// unexpired claim of its kind. claim_chores() takes candidates FOR UPDATE SKIP LOCKED and gives
// each a random claim id, the fencing token complete_chore() must present; with a max_in_flight
// cap, the claims of one key take turns on a transaction advisory lock, so counting the live
// claims and taking more is atomic across instances (as claim() does). A held Jenkins gives no
// follow chores. Like the queue's, these transactions commit without waiting for the WAL flush:
// a crash of PostgreSQL may repeat a poll or a post, never lose one.
#include "store/postgres/codec.hpp"
#include "store/postgres/core.hpp"
#include "store/postgres/schema.hpp"

#include <algorithm>

namespace hookrelay::store::postgres {
namespace {

// More claims than this per call are not taken.
constexpr std::size_t k_max_chore_claims = 1000;

// $1 claim ids, $2 this instance.
constexpr std::string_view k_release_follow = R"sql(
UPDATE triggers SET follow_claim_id = NULL, follow_owner = NULL, follow_expires_at = NULL
WHERE follow_claim_id = ANY($1) AND follow_owner = $2)sql";
constexpr std::string_view k_release_status = R"sql(
UPDATE triggers SET status_claim_id = NULL, status_owner = NULL, status_expires_at = NULL
WHERE status_claim_id = ANY($1) AND status_owner = $2)sql";

// $1 jenkins, $2 now, $3 limit, $4 max_in_flight (0: none), $5 this instance, $6 expiry,
// $7 claim ids (as many as may be claimed).
const std::string k_claim_follow = R"sql(
WITH live AS (
    SELECT count(*) AS n FROM triggers
    WHERE jenkins = $1 AND follow_claim_id IS NOT NULL AND follow_expires_at > $2),
room AS (
    SELECT CASE WHEN $4 = 0 THEN $3 ELSE LEAST($3, GREATEST($4 - (SELECT n FROM live), 0)) END
        AS n),
candidates AS (
    SELECT seq, follow_due_at FROM triggers
    WHERE jenkins = $1 AND follow_due_at <= $2
      AND (follow_expires_at IS NULL OR follow_expires_at <= $2)
      AND NOT EXISTS (SELECT 1 FROM holds WHERE jenkins = $1)
    ORDER BY follow_due_at, seq
    LIMIT (SELECT n FROM room)
    FOR UPDATE SKIP LOCKED),
numbered AS (
    SELECT seq, row_number() OVER (ORDER BY follow_due_at, seq) AS n FROM candidates),
claimed AS (
    UPDATE triggers t
    SET follow_claim_id = c.claim_id, follow_owner = $5, follow_expires_at = $6
    FROM numbered p JOIN unnest($7::text[]) WITH ORDINALITY AS c(claim_id, n) ON c.n = p.n
    WHERE t.seq = p.seq
    RETURNING t.*)
SELECT )sql" + std::string(k_trigger_columns) +
                                   R"sql(, t.follow_claim_id, t.follow_expires_at, t.follow_tries
FROM claimed t JOIN deliveries d ON d.seq = t.delivery
ORDER BY t.follow_due_at, t.seq)sql";

// The same for status chores; $1 the source.
const std::string k_claim_status = R"sql(
WITH live AS (
    SELECT count(*) AS n FROM triggers t JOIN deliveries d ON d.seq = t.delivery
    WHERE t.status_claim_id IS NOT NULL AND t.status_expires_at > $2 AND d.source = $1),
room AS (
    SELECT CASE WHEN $4 = 0 THEN $3 ELSE LEAST($3, GREATEST($4 - (SELECT n FROM live), 0)) END
        AS n),
candidates AS (
    SELECT t.seq, t.status_due_at FROM triggers t JOIN deliveries d ON d.seq = t.delivery
    WHERE t.status_wanted_seq > t.status_posted_seq AND t.status_due_at <= $2
      AND (t.status_expires_at IS NULL OR t.status_expires_at <= $2) AND d.source = $1
    ORDER BY t.status_due_at, t.seq
    LIMIT (SELECT n FROM room)
    FOR UPDATE OF t SKIP LOCKED),
numbered AS (
    SELECT seq, row_number() OVER (ORDER BY status_due_at, seq) AS n FROM candidates),
claimed AS (
    UPDATE triggers t
    SET status_claim_id = c.claim_id, status_owner = $5, status_expires_at = $6
    FROM numbered p JOIN unnest($7::text[]) WITH ORDINALITY AS c(claim_id, n) ON c.n = p.n
    WHERE t.seq = p.seq
    RETURNING t.*)
SELECT )sql" + std::string(k_trigger_columns) +
                                   R"sql(, t.status_claim_id, t.status_expires_at, t.status_tries
FROM claimed t JOIN deliveries d ON d.seq = t.delivery
ORDER BY t.status_due_at, t.seq)sql";

// A follow chore's trigger under the claim ($1 id, $2 claim id), locked until COMMIT: its
// outcome is computed from what is stored and what the update changes.
const std::string k_follow_read = "SELECT " + std::string(k_trigger_columns) + R"sql(, t.seq
FROM triggers t JOIN deliveries d ON d.seq = t.delivery
WHERE t.id = $1 AND t.follow_claim_id = $2
FOR UPDATE OF t)sql";

// $1 seq, $2 build record, $3 due again (NULL: following is over), $4 tries, $5 outcome,
// $6 a status wish ($7) for a trigger with a status target. Ends the claim.
constexpr std::string_view k_follow_done = R"sql(
UPDATE triggers
SET build = $2, follow_due_at = $3, follow_tries = $4, outcome = $5, follow_claim_id = NULL,
    follow_owner = NULL, follow_expires_at = NULL,
    status_wanted = CASE WHEN $6 THEN $7 ELSE status_wanted END,
    status_wanted_seq = CASE WHEN $6 THEN status_wanted_seq + 1 ELSE status_wanted_seq END,
    status_tries = CASE WHEN $6 THEN 0 ELSE status_tries END,
    status_error = CASE WHEN $6 THEN ''::bytea ELSE status_error END,
    status_due_at = CASE WHEN $6 THEN 0 ELSE status_due_at END
WHERE seq = $1)sql";

// Only under the claim given out ($1 id, $2 claim id); ends it. $3 tries, $4 error, $5 posted
// given ($6), $7 due again (NULL: the wish $8 names is dealt with: posted_seq becomes it, and
// a newer wish is due at once with tries 0).
constexpr std::string_view k_status_done = R"sql(
UPDATE triggers
SET status_claim_id = NULL, status_owner = NULL, status_expires_at = NULL, status_error = $4,
    status_posted = CASE WHEN $5 THEN $6 ELSE status_posted END,
    status_posted_seq = CASE WHEN $7::bigint IS NULL THEN GREATEST(status_posted_seq, $8)
                             ELSE status_posted_seq END,
    status_tries = CASE WHEN $7::bigint IS NULL
                             AND status_wanted_seq > GREATEST(status_posted_seq, $8)
                        THEN 0 ELSE $3 END,
    status_due_at = CASE WHEN $7::bigint IS NOT NULL THEN $7
                         WHEN status_wanted_seq > GREATEST(status_posted_seq, $8) THEN 0
                         ELSE NULL END
WHERE id = $1 AND status_claim_id = $2)sql";

Params& time_or_null(Params& p, const std::optional<TimePoint>& t) {
    return t ? p.int8(to_ms_not_before(*t)) : p.null(oid::int8);
}

}  // namespace

asio::awaitable<ChoreBatch> Core::claim_chores(ChoreRequest r) {
    ChoreBatch batch;
    const bool follow = r.chore == Chore::follow;
    std::size_t wanted = std::min(r.limit, k_max_chore_claims);
    if (r.max_in_flight > 0) wanted = std::min(wanted, r.max_in_flight);
    const bool capped = r.max_in_flight > 0 && wanted > 0;

    std::vector<Step> body;
    if (capped) {
        Params p;
        p.int4(follow ? locks::k_follow_space : locks::k_status_space).text(r.key);
        body.push_back({k_lock_key, std::move(p)});
    }
    const std::size_t hold_step = k_body + body.size();
    if (follow) body.push_back({k_select_hold, std::move(Params().text(r.key))});
    const std::size_t claim_step = k_body + body.size();
    if (wanted > 0) {
        std::vector<std::string> ids;
        ids.reserve(wanted);
        for (std::size_t i = 0; i < wanted; ++i) ids.push_back(make_claim_id());
        Params p;
        p.text(r.key).int8(to_ms(r.now)).int8(static_cast<std::int64_t>(wanted));
        p.int8(static_cast<std::int64_t>(r.max_in_flight)).text(instance_id());
        p.int8(to_ms_not_before(r.now + r.lease)).text_array(ids);
        body.push_back({follow ? k_claim_follow : k_claim_status, std::move(p)});
    }
    if (body.empty()) co_return batch;
    std::vector<Step> steps = unsynced_open(std::move(body));
    steps.push_back({"COMMIT", {}});

    auto lease = co_await pool_.acquire();
    const std::vector<Rows> rows = co_await lease->pipeline(std::move(steps));
    if (wanted > 0) {
        const Rows& claimed = rows.at(claim_step);
        for (int i = 0; i < claimed.size(); ++i) {
            ChoreClaim c;
            c.trigger = read_trigger(claimed, i);
            c.claim_id = claimed.text(i, k_trigger_column_count);
            c.expires_at = from_ms(claimed.int64(i, k_trigger_column_count + 1));
            c.tries = static_cast<int>(claimed.int64(i, k_trigger_column_count + 2));
            batch.claims.push_back(std::move(c));
        }
    }
    if (follow && batch.claims.empty()) {
        const Rows& hold = rows.at(hold_step);
        if (!hold.empty()) {
            batch.hold = read_hold(hold, 0, 0);
        }
    }
    co_return batch;
}

asio::awaitable<Completion> Core::complete_chore(Chore chore, std::string claim_id, ChoreUpdate u) {
    auto lease = co_await pool_.acquire();
    if (chore == Chore::status) {
        Params p;
        p.text(u.id).text(claim_id).int4(u.tries).bytes(u.error).boolean(u.posted.has_value());
        p.bytes(u.posted ? status_wish_json(*u.posted) : std::string());
        time_or_null(p, u.next_at).int8(u.posted_seq);
        std::vector<Step> body;
        body.push_back({k_status_done, std::move(p)});
        std::vector<Step> steps = unsynced_open(std::move(body));
        steps.push_back({"COMMIT", {}});
        const std::vector<Rows> rows = co_await lease->pipeline(std::move(steps));
        co_return rows.at(k_body).affected() > 0 ? Completion::applied : Completion::stale;
    }

    // Follow: the outcome depends on the stored trigger, read (and locked) first.
    std::vector<Step> body;
    body.push_back({k_follow_read, std::move(Params().text(u.id).text(claim_id))});
    const std::vector<Rows> read = co_await lease->pipeline(unsynced_open(std::move(body)));
    const Rows& found = read.at(k_body);
    if (found.empty()) {
        co_await lease->exec("ROLLBACK");
        co_return Completion::stale;
    }
    StoredTrigger t = read_trigger(found, 0);
    const std::int64_t seq = found.int64(0, k_trigger_column_count);
    if (u.build) t.build = std::move(*u.build);
    t.following = u.next_at.has_value();
    const bool wish = u.status.has_value() && t.request.status.has_value();

    Params p;
    p.int8(seq).bytes(build_record_json(t.build));
    time_or_null(p, u.next_at).int4(u.tries).text(trigger_outcome(t)).boolean(wish);
    p.bytes(wish ? status_wish_json(*u.status) : std::string());
    std::vector<Step> steps;
    steps.push_back({k_follow_done, std::move(p)});
    steps.push_back({"COMMIT", {}});
    co_await lease->pipeline(std::move(steps));
    co_return Completion::applied;
}

asio::awaitable<void> Core::release_chores(Chore chore, std::vector<std::string> claim_ids) {
    if (claim_ids.empty()) co_return;
    const std::string_view sql = chore == Chore::follow ? k_release_follow : k_release_status;
    std::vector<Step> body;
    body.push_back({sql, std::move(Params().text_array(claim_ids).text(instance_id()))});
    auto lease = co_await pool_.acquire();
    co_await lease->pipeline(unsynced(std::move(body)));
}

asio::awaitable<CompletionAndClaims> Core::complete_and_claim(Chore chore, std::string claim_id,
                                                              ChoreUpdate update,
                                                              ChoreRequest next) {
    CompletionAndClaims out;
    out.completion = co_await complete_chore(chore, std::move(claim_id), std::move(update));
    out.next = co_await claim_chores(std::move(next));
    co_return out;
}

}  // namespace hookrelay::store::postgres
