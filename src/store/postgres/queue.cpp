// The trigger queue on PostgreSQL: claim, renew, complete, release, and the shared holds.
//
// A trigger is claimable when it is open (pending, retrying), due (next_attempt_at <= now) and
// not under an unexpired claim. claim() locks candidates with FOR UPDATE SKIP LOCKED, so
// concurrent claims from any instance never take the same trigger, and gives each a random
// claim_id, the fencing token: complete() applies only while the trigger still carries it, so
// an instance whose lease expired and was taken over (or whose trigger was replayed) changes
// nothing. With a max_in_flight cap, claims of that Jenkins serialize on a transaction advisory
// lock, so counting the live claims and claiming more is atomic across instances.
//
// Queue transactions commit without waiting for their WAL flush (synchronous_commit off, as
// SQLite batches them unsynced): a PostgreSQL crash (not a clean restart) can lose the last
// fraction of a second of claims, renewals and outcomes, so a trigger in flight then may be sent
// again: at least once, never lost. Accepted deliveries (submit) always commit synchronously.
#include "store/postgres/codec.hpp"
#include "store/postgres/core.hpp"
#include "store/postgres/schema.hpp"
#include "store/postgres/statements.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <unordered_set>

namespace hookrelay::store::postgres {
namespace {

// More claims than this per call are not taken (the dispatcher asks for its free slots).
constexpr std::size_t k_max_claims = 1000;

// record_outcomes(): outcomes recorded in one transaction at most.
constexpr std::size_t k_outcomes_per_transaction = 64;

// $1 jenkins, $2 now, $3 limit, $4 max_in_flight (0: none), $5 this instance, $6 expiry,
// $7 claim ids (as many as may be claimed).
// The live claims are counted through triggers_claimed, which holds only claimed triggers:
// OFFSET 0 keeps the state filter out of that scan, because with it the planner may take
// triggers_due (whose predicate the filter matches) and read every open trigger of the Jenkins
// to count the few claimed ones: ~10 ms a claim with a backlog of 18,000, growing with it.
const std::string k_claim = R"sql(
WITH live AS (
    SELECT count(*) AS n FROM (
        SELECT state FROM triggers
        WHERE jenkins = $1 AND claim_id IS NOT NULL AND claim_expires_at > $2
        OFFSET 0) claims
    WHERE state IN ('pending', 'retrying')),
room AS (
    SELECT CASE WHEN $4 = 0 THEN $3 ELSE LEAST($3, GREATEST($4 - (SELECT n FROM live), 0)) END
        AS n),
candidates AS (
    SELECT seq, next_attempt_at FROM triggers
    WHERE jenkins = $1 AND state IN ('pending', 'retrying') AND next_attempt_at <= $2
      AND (claim_expires_at IS NULL OR claim_expires_at <= $2)
      AND NOT EXISTS (SELECT 1 FROM holds WHERE jenkins = $1)
    ORDER BY next_attempt_at, seq
    LIMIT (SELECT n FROM room)
    FOR UPDATE SKIP LOCKED),
numbered AS (
    SELECT seq, row_number() OVER (ORDER BY next_attempt_at, seq) AS n FROM candidates),
claimed AS (
    UPDATE triggers t
    SET claim_id = c.claim_id, claim_owner = $5, claim_expires_at = $6
    FROM numbered p JOIN unnest($7::text[]) WITH ORDINALITY AS c(claim_id, n) ON c.n = p.n
    WHERE t.seq = p.seq
    RETURNING t.*)
SELECT )sql" + std::string(k_trigger_columns) +
                            R"sql(, t.claim_id, t.claim_expires_at
FROM claimed t JOIN deliveries d ON d.seq = t.delivery
ORDER BY t.next_attempt_at, t.seq)sql";

// For the claim's transaction: the live claims are counted with a plain index scan, never a
// bitmap scan. The index of claims keeps an entry for every claim made within the last lease,
// most of them of triggers since completed (their old row versions, dead until vacuum). A plain
// index scan marks such entries dead as it passes, so the next claim no longer visits their rows;
// a bitmap scan (which the planner chose mid-drain) visits every one of them again at every
// claim: ~10,000 rows during a drain at ~2,000/s, most of each claim's time.
constexpr std::string_view k_index_scans_only =
    "SELECT set_config('enable_bitmapscan', 'off', true)";

// $1 claim ids, $2 this instance, $3 new expiry. A renewal committed after a later one (on another
// connection) leaves the later lease as it was.
constexpr std::string_view k_renew = R"sql(
UPDATE triggers SET claim_expires_at = GREATEST(claim_expires_at, $3)
WHERE claim_id = ANY($1) AND claim_owner = $2 AND state IN ('pending', 'retrying')
RETURNING claim_id)sql";

// Applies only while the trigger carries the claim; clears it. $15: replace the build record
// with $16; $17-$19: the outcome when the trigger follows none, started, finished; $20: the
// follow chore starts (due $4) unless the trigger follows nothing; $21: a status wish ($22)
// for a trigger with a status target.
constexpr std::string_view k_complete = R"sql(
WITH done AS (
    UPDATE triggers
    SET state = $3, next_attempt_at = $4, last_outcome = $5, updated_at = $6,
        queue_url = CASE WHEN $7 = ''::bytea THEN queue_url ELSE $7 END,
        attempts = attempts + $8, claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL,
        build = CASE WHEN $15 THEN $16 ELSE build END,
        outcome = CASE follow WHEN 'none' THEN $17 WHEN 'started' THEN $18 ELSE $19 END,
        follow_due_at = CASE WHEN $20 AND follow <> 'none' THEN $4 ELSE follow_due_at END,
        follow_tries = CASE WHEN $20 AND follow <> 'none' THEN 0 ELSE follow_tries END,
        follow_claim_id = CASE WHEN $20 AND follow <> 'none' THEN NULL ELSE follow_claim_id END,
        follow_owner = CASE WHEN $20 AND follow <> 'none' THEN NULL ELSE follow_owner END,
        follow_expires_at =
            CASE WHEN $20 AND follow <> 'none' THEN NULL ELSE follow_expires_at END,
        status_wanted = CASE WHEN $21 AND status_target IS NOT NULL THEN $22 ELSE status_wanted END,
        status_wanted_seq = CASE WHEN $21 AND status_target IS NOT NULL
                                 THEN status_wanted_seq + 1 ELSE status_wanted_seq END,
        status_tries = CASE WHEN $21 AND status_target IS NOT NULL THEN 0 ELSE status_tries END,
        status_error =
            CASE WHEN $21 AND status_target IS NOT NULL THEN ''::bytea ELSE status_error END,
        status_due_at =
            CASE WHEN $21 AND status_target IS NOT NULL THEN 0 ELSE status_due_at END
    WHERE id = $1 AND claim_id = $2
    RETURNING seq)
INSERT INTO attempts (trigger_seq, at, http_status, outcome, duration_ms, queue_url, counted,
                      instance)
SELECT seq, $9, $10, $11, $12, $7, $13, $14 FROM done)sql";

// What complete() reads first when the outcome depends on what is stored (a delivered trigger
// whose update has no build record), or the build record on another trigger (merged): the
// trigger under the claim, locked until COMMIT.
constexpr std::string_view k_complete_read = R"sql(
SELECT follow, build, follow_due_at IS NOT NULL FROM triggers
WHERE id = $1 AND claim_id = $2
FOR UPDATE)sql";

// BuildRecord::merged_with: the delivery of the newest other trigger given the same queue item.
constexpr std::string_view k_merged_with = R"sql(
SELECT d.seq, d.delivery_id FROM triggers o JOIN deliveries d ON d.seq = o.delivery
WHERE o.queue_url = $2 AND o.queue_url <> '' AND o.id <> $1
ORDER BY o.seq DESC
LIMIT 1)sql";

// An update leaving a coalesced trigger open first takes its scope's lock (as submit() does), so
// a newer trigger is either committed and seen below, or submitted after and then supersedes it.
// $1 lock class, $2 id, $3 claim id.
const std::string k_complete_lock =
    "SELECT pg_advisory_xact_lock($1, " + locks::scope_key("coalesce_scope") + R"sql() FROM triggers
WHERE id = $2 AND claim_id = $3 AND coalesce_scope <> '')sql";

// The newest open trigger of a later delivery with the same scope, else the newest delivered one
// (once a newer commit went to Jenkins, retrying this one would build an older commit after it),
// except for a trigger an admin queued again (replayed, redelivered: created_at is then their
// time, where a submit sets the delivery's received_at), whose build was asked for. Its id,
// delivery id, seq, status target. $1 id, $2 claim id. Each branch reads its partial index
// (triggers_coalesce_open, triggers_coalesce_delivered) backwards from the newest delivery.
constexpr std::string_view k_newer = R"sql(
SELECT n.id, d.delivery_id, d.seq, n.status_target
FROM triggers o
     LEFT JOIN deliveries od ON od.seq = o.delivery
     CROSS JOIN LATERAL (
         (SELECT 0 AS preference, w.id, w.delivery, w.status_target
          FROM triggers w
          WHERE w.coalesce_scope = o.coalesce_scope AND w.delivery > o.delivery
            AND w.coalesce_scope <> '' AND w.state IN ('pending', 'retrying')
          ORDER BY w.delivery DESC, w.seq DESC
          LIMIT 1)
         UNION ALL
         (SELECT 1, b.id, b.delivery, b.status_target
          FROM triggers b
          WHERE b.coalesce_scope = o.coalesce_scope AND b.delivery > o.delivery
            AND b.coalesce_scope <> '' AND b.state = 'delivered' AND o.created_at = od.received_at
          ORDER BY b.delivery DESC, b.seq DESC
          LIMIT 1)
         ORDER BY preference
         LIMIT 1) n
     JOIN deliveries d ON d.seq = n.delivery
WHERE o.id = $1 AND o.claim_id = $2 AND o.coalesce_scope <> '')sql";

// complete() when a newer trigger took the place of one left open: the attempt is recorded,
// the trigger superseded by $3 ($4 last_outcome, $12 the status wish), its claim and follow
// chore end. Parameters as k_complete's where they match: $5 updated_at, $6 queue url,
// $7 counted (0/1), $8-$11 the attempt, $13 counted, $14 instance.
constexpr std::string_view k_complete_superseded = R"sql(
WITH done AS (
    UPDATE triggers
    SET state = 'superseded', outcome = 'superseded', superseded_by = $3, last_outcome = $4,
        updated_at = $5, queue_url = CASE WHEN $6 = ''::bytea THEN queue_url ELSE $6 END,
        attempts = attempts + $7, claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL,
        follow_due_at = NULL, follow_claim_id = NULL, follow_owner = NULL,
        follow_expires_at = NULL,
        status_wanted = CASE WHEN status_target IS NULL THEN status_wanted ELSE $12 END,
        status_wanted_seq = CASE WHEN status_target IS NULL THEN status_wanted_seq
                                 ELSE status_wanted_seq + 1 END,
        status_tries = CASE WHEN status_target IS NULL THEN status_tries ELSE 0 END,
        status_error = CASE WHEN status_target IS NULL THEN status_error ELSE ''::bytea END,
        status_due_at = CASE WHEN status_target IS NULL THEN status_due_at ELSE 0 END
    WHERE id = $1 AND claim_id = $2
    RETURNING seq)
INSERT INTO attempts (trigger_seq, at, http_status, outcome, duration_ms, queue_url, counted,
                      instance)
SELECT seq, $8, $9, $10, $11, $6, $13, $14 FROM done)sql";

// Delivered triggers of earlier deliveries with trigger $1's scope, newest first, with their
// build record (filtered by the caller: JSON). $2 how many rows to read at most.
constexpr std::string_view k_predecessors = R"sql(
SELECT o.id, d.delivery_id, d.seq, o.build, t.build
FROM triggers t
     JOIN triggers o ON o.coalesce_scope = t.coalesce_scope AND o.delivery < t.delivery
     JOIN deliveries d ON d.seq = o.delivery
WHERE t.id = $1 AND t.coalesce_scope <> '' AND o.coalesce_scope <> ''
  AND o.state = 'delivered'
ORDER BY o.delivery DESC, o.seq DESC
LIMIT $2)sql";

// $1 id, $2-$7 the note.
constexpr std::string_view k_add_note = R"sql(
INSERT INTO attempts (trigger_seq, at, http_status, outcome, duration_ms, queue_url, counted,
                      instance)
SELECT seq, $2, $3, $4, $5, $6, false, $7 FROM triggers WHERE id = $1)sql";

// The scan of ($1 jenkins, $2 project) is granted at $3 (now) when none was requested, or the
// last one was before $4 (since) and at or before $5 (now - interval). ON CONFLICT locks the
// row either way, so the read after it sees what the decision was made on, and a concurrent
// caller waits for this transaction and then finds the scan just granted.
constexpr std::string_view k_request_scan = R"sql(
INSERT INTO scans (jenkins, project, requested_at) VALUES ($1, $2, $3)
ON CONFLICT (jenkins, project) DO UPDATE SET requested_at = EXCLUDED.requested_at
WHERE scans.requested_at < $4 AND scans.requested_at <= $5
RETURNING requested_at)sql";
constexpr std::string_view k_forget_scan =
    "DELETE FROM scans WHERE jenkins = $1 AND project = $2 AND requested_at = $3";
constexpr std::string_view k_last_scan =
    "SELECT requested_at FROM scans WHERE jenkins = $1 AND project = $2";

constexpr std::string_view k_release = R"sql(
UPDATE triggers SET claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL
WHERE claim_id = ANY($1) AND claim_owner = $2)sql";

constexpr std::string_view k_next_due = R"sql(
SELECT min(GREATEST(next_attempt_at, COALESCE(claim_expires_at, next_attempt_at)))
FROM triggers WHERE jenkins = $1 AND state IN ('pending', 'retrying'))sql";

constexpr std::string_view k_hold = R"sql(
INSERT INTO holds (jenkins, reason, since, next_probe_at, probes) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (jenkins) DO UPDATE SET reason = EXCLUDED.reason,
                                    next_probe_at = EXCLUDED.next_probe_at)sql";

// Granted when held, due for a probe, and nobody else holds an unexpired probe lease.
constexpr std::string_view k_try_probe = R"sql(
UPDATE holds SET probe_owner = $4, probe_expires_at = $3
WHERE jenkins = $1 AND next_probe_at <= $2
  AND (probe_owner IS NULL OR probe_owner = $4 OR probe_expires_at <= $2)
RETURNING reason, since, next_probe_at, probes)sql";

// Only by the probe's holder: one whose lease ran out and was granted to another instance
// meanwhile changes nothing (the other's probe counts).
constexpr std::string_view k_probe_failed = R"sql(
UPDATE holds SET probes = probes + 1, next_probe_at = $2, reason = $3, probe_owner = NULL,
                 probe_expires_at = NULL
WHERE jenkins = $1 AND (probe_owner IS NULL OR probe_owner = $4))sql";

constexpr std::string_view k_unhold = "DELETE FROM holds WHERE jenkins = $1";

}  // namespace

const std::string& claim_sql() {
    return k_claim;
}

asio::awaitable<ClaimBatch> Core::claim(ClaimRequest r) {
    ClaimBatch batch;
    const std::int64_t now = to_ms(r.now);
    std::size_t wanted = std::min(r.limit, k_max_claims);
    if (r.max_in_flight > 0) wanted = std::min(wanted, r.max_in_flight);
    // With a cap, claims of this Jenkins take turns (the lock lasts until COMMIT).
    const bool capped = r.max_in_flight > 0 && wanted > 0;

    std::vector<Step> body;
    if (capped) {
        Params p;
        p.int4(locks::k_claim_space).text(r.jenkins);
        body.push_back({k_lock_key, std::move(p)});
    }
    const std::size_t hold_step = k_body + body.size();
    body.push_back({k_select_hold, std::move(Params().text(r.jenkins))});
    if (wanted > 0) {
        std::vector<std::string> ids;
        ids.reserve(wanted);
        for (std::size_t i = 0; i < wanted; ++i) ids.push_back(make_claim_id());
        Params p;
        p.text(r.jenkins).int8(now).int8(static_cast<std::int64_t>(wanted));
        p.int8(static_cast<std::int64_t>(r.max_in_flight)).text(instance_id());
        p.int8(to_ms_not_before(r.now + r.lease)).text_array(ids);
        body.push_back({k_index_scans_only, {}});
        body.push_back({k_claim, std::move(p)});
    }

    auto lease = co_await pool_.acquire();
    const std::vector<Rows> rows = co_await lease->pipeline(unsynced(std::move(body)));
    if (wanted > 0) {
        const Rows& claimed = rows.at(hold_step + 2);
        for (int i = 0; i < claimed.size(); ++i) {
            Claim c;
            c.trigger = read_trigger(claimed, i);
            c.claim_id = claimed.text(i, k_trigger_column_count);
            c.expires_at = from_ms(claimed.int64(i, k_trigger_column_count + 1));
            batch.claims.push_back(std::move(c));
        }
    }
    // A hold that began after the claims were taken does not take them back.
    const Rows& hold = rows.at(hold_step);
    if (batch.claims.empty() && !hold.empty()) batch.hold = read_hold(hold, 0, 0);
    co_return batch;
}

asio::awaitable<std::vector<std::string>> Core::renew(std::vector<std::string> claim_ids,
                                                      TimePoint now,
                                                      std::chrono::milliseconds lease_for) {
    std::vector<std::string> out;
    if (claim_ids.empty()) co_return out;
    Params p;
    p.text_array(claim_ids).text(instance_id()).int8(to_ms_not_before(now + lease_for));
    std::vector<Step> body;
    body.push_back({k_renew, std::move(p)});
    auto lease = co_await pool_.acquire();
    const std::vector<Rows> results = co_await lease->pipeline(unsynced(std::move(body)));
    const Rows& rows = results.at(k_body);
    std::unordered_set<std::string> held;
    for (int i = 0; i < rows.size(); ++i) held.insert(rows.text(i, 0));
    for (std::string& id : claim_ids) {
        if (held.erase(id) > 0) out.push_back(std::move(id));
    }
    co_return out;
}

namespace {

// complete()'s statement for `u` under `claim_id`, with the trigger's outcome for each follow
// mode. `follow_starts`: the update starts the follow chore (it came with a build record);
// otherwise `following`: whether the stored one goes on.
Params complete_params(const std::string& claim_id, const TriggerUpdate& u, bool follow_starts,
                       bool following, const std::string& instance) {
    const auto outcomes =
        outcomes_by_follow(u.state, u.build ? *u.build : BuildRecord{}, follow_starts, following);
    Params p;
    p.text(u.id).text(claim_id).text(to_string(u.state)).int8(to_ms_not_before(u.next_attempt_at));
    p.bytes(u.last_outcome).int8(wall_ms()).bytes(u.attempt.queue_url);
    p.int4(u.attempt.counted ? 1 : 0).int8(to_ms(u.attempt.at)).int4(u.attempt.http_status);
    p.bytes(u.attempt.outcome).int8(u.attempt.duration.count()).boolean(u.attempt.counted);
    p.text(u.attempt.instance.empty() ? instance : u.attempt.instance);
    p.boolean(u.build.has_value()).bytes(u.build ? build_record_json(*u.build) : std::string());
    p.text(outcomes[0]).text(outcomes[1]).text(outcomes[2]).boolean(follow_starts);
    p.boolean(u.status.has_value()).bytes(u.status ? status_wish_json(*u.status) : std::string());
    return p;
}

}  // namespace

// An outcome waiting for record_outcomes() (backend thread only).
struct Core::PendingOutcome {
    explicit PendingOutcome(asio::io_context& io)
        : wake(io, std::chrono::steady_clock::time_point::max()) {}
    Params params;
    bool done = false;
    Completion completion = Completion::stale;
    std::optional<DbError> failure;
    asio::steady_timer wake;  // cancelled when done
};

asio::awaitable<Completion> Core::complete(std::string claim_id, TriggerUpdate u) {
    if (u.state == TriggerState::pending || u.state == TriggerState::retrying) {
        auto lease = co_await pool_.acquire();
        co_return co_await complete_open(*lease, std::move(claim_id), std::move(u));
    }
    const bool delivered = u.state == TriggerState::delivered;
    const bool follow_starts = delivered && u.build.has_value();
    // The outcome follows from the update alone unless a delivered trigger keeps its stored
    // build record; a merged one names the trigger it was merged with: both read first.
    const bool read_first = delivered && (!u.build || u.build->merged);
    if (!read_first) {
        // Recorded with the other outcomes waiting, in one transaction (record_outcomes()).
        auto pending = std::make_shared<PendingOutcome>(io_);
        pending->params = complete_params(claim_id, u, follow_starts, false, instance_id());
        outcomes_.push_back(pending);
        if (!recording_outcomes_) {
            recording_outcomes_ = true;
            asio::co_spawn(io_, record_outcomes(),
                           failed("recording outcomes", &Core::outcomes_recorded));
        }
        if (!pending->done) {
            co_await pending->wake.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        if (pending->failure) throw *pending->failure;
        co_return pending->completion;
    }

    auto lease = co_await pool_.acquire();
    std::vector<Step> body;
    body.push_back({k_complete_read, std::move(Params().text(u.id).text(claim_id))});
    const bool merged = u.build && u.build->merged && !u.build->queue_url.empty();
    if (merged) {
        body.push_back({k_merged_with, std::move(Params().text(u.id).bytes(u.build->queue_url))});
    }
    std::vector<Step> steps = unsynced(std::move(body));
    steps.pop_back();  // the transaction stays open: COMMIT comes with the update
    const std::vector<Rows> rows = co_await lease->pipeline(std::move(steps));
    const Rows& found = rows.at(k_body);
    if (found.empty()) {
        co_await lease->exec("ROLLBACK");
        co_return Completion::stale;
    }
    if (!u.build) u.build = parse_build_record(found.text(0, 1));
    const bool following = found.boolean(0, 2);
    if (merged) {
        const Rows& other = rows.at(k_body + 1);
        u.build->merged_with = other.empty()         ? std::string()
                               : other.is_null(0, 1) ? "#" + std::to_string(other.int64(0, 0))
                                                     : other.text(0, 1);
    } else if (u.build->merged) {
        u.build->merged_with.clear();
    }

    std::vector<Step> update;
    update.push_back(
        {k_complete, complete_params(claim_id, u, follow_starts, following, instance_id())});
    // The claim's slot is free again (a Jenkins' max_in_flight is shared), and an open trigger
    // may be due at once: tell the other instances.
    if (notify_slot()) update.push_back(notify_step());
    update.push_back({"COMMIT", {}});
    const std::vector<Rows> done = co_await lease->pipeline(std::move(update));
    co_return done.at(0).affected() > 0 ? Completion::applied : Completion::stale;
}

namespace {

// A failure of a transaction of several outcomes that one of them may have caused (a value, a
// constraint, a trigger of the database refusing it): each is then recorded again alone. Not
// when the connection, the server or the pool failed (no SQLSTATE, or classes 08, 53, 57, 58):
// that would fail the same way once per outcome, one after another.
bool maybe_one_outcomes(const DbError& e) {
    const std::string_view s = e.sqlstate();
    if (s.size() < 2) return false;
    const std::string_view c = s.substr(0, 2);
    return c != "08" && c != "53" && c != "57" && c != "58";
}

}  // namespace

asio::awaitable<void> Core::record_outcomes() {
    // One transaction at a time, for the outcomes waiting (at most k_outcomes_per_transaction).
    // An outcome that arrives while one runs waits for the next: the first outcome of a quiet
    // moment goes at once, and those that come while it is recorded (a Jenkins' slots answered
    // within a millisecond or two) share the next transaction. Each outcome is still one
    // statement; BEGIN, COMMIT, the NOTIFY and the round trip are shared. In the drain
    // benchmark the server's CPU per trigger fell by a quarter; two or four such transactions
    // at once did worse than one (docs/performance.md). When a transaction of several fails
    // for a reason one outcome may have caused, each is recorded again alone, so that one
    // outcome's failure is its own. Nothing escapes: every outcome taken is answered.
    while (!outcomes_.empty()) {
        std::vector<std::shared_ptr<PendingOutcome>> batch;
        std::optional<DbError> failure;
        try {
            const std::size_t size = std::min(outcomes_.size(), k_outcomes_per_transaction);
            batch.assign(outcomes_.begin(), outcomes_.begin() + size);
            outcomes_.erase(outcomes_.begin(), outcomes_.begin() + size);
            try {
                co_await record_outcome_group(batch);
            } catch (const DbError& e) {
                failure = e;
            }
            if (failure && batch.size() > 1 && maybe_one_outcomes(*failure)) {
                failure.reset();
                for (const auto& pending : batch) {
                    std::vector<std::shared_ptr<PendingOutcome>> alone(1, pending);
                    try {
                        co_await record_outcome_group(std::move(alone));
                    } catch (const DbError& e) {
                        pending->failure = e;
                    }
                }
            }
        } catch (const std::exception& e) {
            failure = DbError(errc::store_unavailable, info_->scrub(e.what()));
        } catch (...) {
            failure = DbError(errc::store_unavailable, "an unknown exception");
        }
        for (const auto& pending : batch) {
            if (failure) pending->failure = *failure;
            pending->done = true;
            pending->wake.cancel();
        }
        // The woken callers (and whoever waits for a connection) run before the next batch
        // takes one: with a small pool, submits and claims get their turn.
        if (!outcomes_.empty()) co_await asio::post(io_, asio::use_awaitable);
    }
    recording_outcomes_ = false;
}

asio::awaitable<void> Core::record_outcome_group(
    std::vector<std::shared_ptr<PendingOutcome>> group) {
    std::vector<Step> body;
    body.reserve(group.size() + 1);
    for (const auto& pending : group) body.push_back({k_complete, pending->params});
    // Each claim's slot is free again (a Jenkins' max_in_flight is shared), and an open trigger
    // may be due at once: tell the other instances.
    if (notify_slot()) body.push_back(notify_step());
    auto lease = co_await pool_.acquire();
    const std::vector<Rows> rows = co_await lease->pipeline(unsynced(std::move(body)));
    for (std::size_t i = 0; i < group.size(); ++i) {
        group[i]->completion =
            rows.at(k_body + i).affected() > 0 ? Completion::applied : Completion::stale;
    }
}

void Core::outcomes_recorded() {
    recording_outcomes_ = false;
}

asio::awaitable<Completion> Core::complete_open(Connection& c, std::string claim_id,
                                                TriggerUpdate u) {
    std::vector<Step> body;
    body.push_back({k_complete_lock,
                    std::move(Params().int4(locks::k_coalesce_space).text(u.id).text(claim_id))});
    body.push_back({k_newer, std::move(Params().text(u.id).text(claim_id))});
    const std::vector<Rows> found = co_await c.pipeline(unsynced_open(std::move(body)));
    const Rows& newer = found.at(k_body + 1);

    std::vector<Step> steps;
    if (newer.empty()) {
        StoredTrigger t;
        t.state = u.state;
        const std::string outcome = trigger_outcome(t);  // an open trigger's is its state
        Params p;
        p.text(u.id).text(claim_id).text(to_string(u.state));
        p.int8(to_ms_not_before(u.next_attempt_at));
        p.bytes(u.last_outcome).int8(wall_ms()).bytes(u.attempt.queue_url);
        p.int4(u.attempt.counted ? 1 : 0).int8(to_ms(u.attempt.at)).int4(u.attempt.http_status);
        p.bytes(u.attempt.outcome).int8(u.attempt.duration.count()).boolean(u.attempt.counted);
        p.text(u.attempt.instance.empty() ? instance_id() : u.attempt.instance);
        p.boolean(u.build.has_value()).bytes(u.build ? build_record_json(*u.build) : "");
        p.text(outcome).text(outcome).text(outcome).boolean(false);
        p.boolean(u.status.has_value()).bytes(u.status ? status_wish_json(*u.status) : "");
        steps.push_back({k_complete, std::move(p)});
    } else {
        const std::string newer_id = newer.text(0, 0);
        TriggerRequest request;
        if (!newer.is_null(0, 3)) request.status = parse_status_target(newer.text(0, 3));
        Params p;
        p.text(u.id).text(claim_id).text(newer_id);
        p.bytes(superseded_outcome(newer_id, delivery_name(newer, 0, 1, 2)));
        p.int8(wall_ms()).bytes(u.attempt.queue_url).int4(u.attempt.counted ? 1 : 0);
        p.int8(to_ms(u.attempt.at)).int4(u.attempt.http_status).bytes(u.attempt.outcome);
        p.int8(u.attempt.duration.count());
        p.bytes(status_wish_json(superseded_wish(request, newer_id)));
        p.boolean(u.attempt.counted);
        p.text(u.attempt.instance.empty() ? instance_id() : u.attempt.instance);
        steps.push_back({k_complete_superseded, std::move(p)});
    }
    if (notify_slot()) steps.push_back(notify_step());
    steps.push_back({"COMMIT", {}});
    const std::vector<Rows> rows = co_await c.pipeline(std::move(steps));
    if (rows.at(0).affected() == 0) co_return Completion::stale;
    co_return newer.empty() ? Completion::applied : Completion::superseded;
}

asio::awaitable<void> Core::release(std::vector<std::string> claim_ids) {
    if (claim_ids.empty()) co_return;
    std::vector<Step> body;
    body.push_back({k_release, std::move(Params().text_array(claim_ids).text(instance_id()))});
    if (notify_slot()) body.push_back(notify_step());
    auto lease = co_await pool_.acquire();
    const std::vector<Rows> rows = co_await lease->pipeline(unsynced(std::move(body)));
    if (rows.at(k_body).affected() > 0) run_committed_observers();
}

asio::awaitable<std::optional<TimePoint>> Core::next_due(std::string jenkins) {
    auto lease = co_await pool_.acquire();
    const Rows rows = co_await lease->exec(k_next_due, std::move(Params().text(jenkins)));
    if (rows.empty() || rows.is_null(0, 0)) co_return std::nullopt;
    co_return from_ms(rows.int64(0, 0));
}

asio::awaitable<void> Core::hold(std::string jenkins, JenkinsHold h) {
    Params p;
    p.text(jenkins).bytes(h.reason).int8(to_ms(h.since)).int8(to_ms_not_before(h.next_probe_at));
    p.int4(h.probes);
    std::vector<Step> body;
    body.push_back({k_hold, std::move(p)});
    auto lease = co_await pool_.acquire();
    co_await lease->pipeline(unsynced(std::move(body)));
}

asio::awaitable<std::optional<JenkinsHold>> Core::try_probe(std::string jenkins, TimePoint now,
                                                            std::chrono::milliseconds lease_for) {
    Params p;
    p.text(jenkins).int8(to_ms(now)).int8(to_ms_not_before(now + lease_for)).text(instance_id());
    std::vector<Step> body;
    body.push_back({k_try_probe, std::move(p)});
    auto lease = co_await pool_.acquire();
    const std::vector<Rows> rows = co_await lease->pipeline(unsynced(std::move(body)));
    if (rows.at(k_body).empty()) co_return std::nullopt;
    co_return read_hold(rows.at(k_body), 0, 0);
}

asio::awaitable<void> Core::probe_failed(std::string jenkins, TimePoint next_probe_at,
                                         std::string reason) {
    Params p;
    p.text(jenkins).int8(to_ms_not_before(next_probe_at)).bytes(reason).text(instance_id());
    std::vector<Step> body;
    body.push_back({k_probe_failed, std::move(p)});
    auto lease = co_await pool_.acquire();
    co_await lease->pipeline(unsynced(std::move(body)));
}

asio::awaitable<void> Core::unhold(std::string jenkins) {
    std::vector<Step> body;
    body.push_back({k_unhold, std::move(Params().text(jenkins))});
    if (notify_slot()) body.push_back(notify_step());
    auto lease = co_await pool_.acquire();
    co_await lease->pipeline(unsynced(std::move(body)));
    run_committed_observers();
}

asio::awaitable<std::vector<QueuedPredecessor>> Core::queued_predecessors(std::string id,
                                                                          std::size_t limit) {
    std::vector<QueuedPredecessor> out;
    if (limit == 0) co_return out;
    // Predecessors whose build started are skipped: read some more than `limit`, then the rest.
    std::int64_t window = static_cast<std::int64_t>(std::min(limit, k_max_claims)) * 4;
    auto lease = co_await pool_.acquire();
    for (;;) {
        const Rows rows =
            co_await lease->exec(k_predecessors, std::move(Params().text(id).int8(window)));
        out.clear();
        for (int i = 0; i < rows.size() && out.size() < limit; ++i) {
            const BuildRecord b = parse_build_record(rows.text(i, 3));
            const BuildRecord mine = parse_build_record(rows.text(i, 4));
            if (b.queue_id <= 0 || b.number != 0 || !b.result.empty() || !b.error.empty()) continue;
            if (b.queue_id == mine.queue_id) continue;
            out.push_back({rows.text(i, 0), delivery_name(rows, i, 1, 2), b.queue_id, b.queue_url});
        }
        if (out.size() >= limit || rows.size() < window) co_return out;
        window *= 4;
    }
}

asio::awaitable<void> Core::add_note(std::string id, Attempt note) {
    Params p;
    p.text(id).int8(to_ms(note.at)).int4(note.http_status).bytes(note.outcome);
    p.int8(note.duration.count()).bytes(note.queue_url).text(note.instance);
    std::vector<Step> body;
    body.push_back({k_add_note, std::move(p)});
    auto lease = co_await pool_.acquire();
    co_await lease->pipeline(unsynced(std::move(body)));
}

asio::awaitable<void> Core::forget_scan(std::string jenkins, std::string project,
                                        TimePoint requested_at) {
    Params p;
    p.text(jenkins).bytes(project).int8(to_ms(requested_at));
    std::vector<Step> body;
    body.push_back({k_forget_scan, std::move(p)});
    auto lease = co_await pool_.acquire();
    co_await lease->pipeline(unsynced(std::move(body)));
}

asio::awaitable<ScanGate> Core::request_scan(std::string jenkins, std::string project,
                                             TimePoint since, TimePoint now,
                                             std::chrono::milliseconds interval) {
    const std::int64_t now_ms = to_ms(now);
    Params p;
    p.text(jenkins).bytes(project).int8(now_ms).int8(to_ms(since));
    p.int8(add_ms(now_ms, -interval));
    std::vector<Step> body;
    body.push_back({k_request_scan, std::move(p)});
    body.push_back({k_last_scan, std::move(Params().text(jenkins).bytes(project))});
    auto lease = co_await pool_.acquire();
    const std::vector<Rows> rows = co_await lease->pipeline(unsynced(std::move(body)));
    if (!rows.at(k_body).empty()) co_return ScanGate{ScanGate::Verdict::granted, now};
    const std::int64_t last = rows.at(k_body + 1).int64(0, 0);
    if (last >= to_ms(since)) co_return ScanGate{ScanGate::Verdict::covered, from_ms(last)};
    co_return ScanGate{ScanGate::Verdict::wait, from_ms(add_ms(last, interval))};
}

}  // namespace hookrelay::store::postgres
