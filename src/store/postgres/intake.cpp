// Accepting deliveries: group commit. Submissions waiting together go into one transaction, one
// statement each, pipelined in a single round trip and committed synchronously.
#include "store/postgres/bodies.hpp"
#include "store/postgres/codec.hpp"
#include "store/postgres/core.hpp"
#include "store/postgres/schema.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <limits>
#include <span>

namespace hookrelay::store::postgres {
namespace {

using Steady = std::chrono::steady_clock;

// A batch that hit a deadlock or a serialization failure (another instance inserting the same
// delivery ids in another order) is tried again this many times in all.
constexpr int k_batch_attempts = 3;

// One delivery and its triggers: the delivery ON CONFLICT DO NOTHING (its (source, delivery
// id) is stored already: a duplicate, `inserted` stays empty), then its triggers from the arrays
// $12-$17, $21-$26 ($18: the rule reasons, $19-$20: repository and ref), and the open triggers
// of earlier deliveries they supersede ($27-$30, below). The statement answers one row: the new
// delivery's seq (NULL when a duplicate), the earlier delivery found by body (seq, delivery id;
// NULL without a window), the number of triggers queued, and the superseded triggers as
// "old new" pairs joined by ','. Separate statements rather than one with an optional body
// check or coalescing, so the common one has a plan of its own: a parameter deciding whether to
// look at bodies made the planner plan the statement again for every delivery, and a delivery
// whose triggers have no coalesce key does not pay for looking for triggers to supersede.
//
// Coalescing: of the new triggers with a scope ($27, '' for none), the last one per scope
// supersedes the open triggers of earlier deliveries with that scope not under an unexpired
// claim at $6. The statement's snapshot does not hold its own triggers, so those of one
// submission never supersede each other; it does hold those of the statements before it in the
// transaction (an earlier delivery of the same batch) and, after the scope locks the batch took
// first, everything another instance committed with the same scope. A row claimed or updated
// concurrently is checked again once its lock is free (a claim that won keeps its trigger).
// last_outcome is $28 || (the new delivery's seq when it has no id) || $29; $30 the status wish
// (JSON) for those with a status target. `o.coalesce_scope <> ''` lets the planner use the
// partial index triggers_coalesce_open whatever the parameters (a generic plan reads the open
// coalesced triggers of every scope there: one per scope, and those in flight).
const std::string k_queue = R"sql(,
queued AS (
    INSERT INTO triggers (id, delivery, rule, jenkins, job, parameters, cause, state, attempts,
                          created_at, next_attempt_at, updated_at, last_outcome, queue_url,
                          follow, status_target, outcome, coalesce, cancel_superseded,
                          multibranch, scan_only, coalesce_scope)
    SELECT t.id, i.seq, t.rule, t.jenkins, t.job, t.parameters, t.cause, 'pending', 0,
           $6, $6, $6, '', '', t.follow, NULLIF(t.status_target, ''::bytea), 'pending',
           t.coalesce, t.cancel_superseded <> 0, t.multibranch, t.scan_only <> 0, t.scope
    FROM inserted i,
         unnest($12::text[], $13::text[], $14::text[], $15::bytea[], $16::bytea[], $17::bytea[],
                $21::text[], $22::bytea[], $23::bytea[], $24::bigint[], $25::bigint[],
                $26::bigint[], $27::bytea[])
             WITH ORDINALITY AS t(id, rule, jenkins, job, parameters, cause, follow,
                                  status_target, coalesce, cancel_superseded, multibranch,
                                  scan_only, scope, n)
    ORDER BY t.n
    RETURNING 1),
unmatched_row AS (
    INSERT INTO unmatched (delivery)
    SELECT seq FROM inserted WHERE cardinality($12::text[]) = 0
    RETURNING 1))sql";

const std::string k_coalesce = R"sql(,
newest AS (
    SELECT DISTINCT ON (t.scope) t.id, t.scope, t.head, t.tail, t.wish
    FROM inserted i,
         unnest($12::text[], $27::bytea[], $28::bytea[], $29::bytea[], $30::bytea[])
             WITH ORDINALITY AS t(id, scope, head, tail, wish, n)
    WHERE t.scope <> ''::bytea
    ORDER BY t.scope, t.n DESC),
superseded AS (
    UPDATE triggers o
    SET state = 'superseded', outcome = 'superseded', superseded_by = s.id, updated_at = $6,
        last_outcome = s.head || CASE WHEN $3 IS NULL THEN convert_to(i.seq::text, 'UTF8')
                                      ELSE ''::bytea END || s.tail,
        claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL, follow_due_at = NULL,
        follow_claim_id = NULL, follow_owner = NULL, follow_expires_at = NULL,
        status_wanted = CASE WHEN o.status_target IS NULL THEN o.status_wanted ELSE s.wish END,
        status_wanted_seq = CASE WHEN o.status_target IS NULL THEN o.status_wanted_seq
                                 ELSE o.status_wanted_seq + 1 END,
        status_tries = CASE WHEN o.status_target IS NULL THEN o.status_tries ELSE 0 END,
        status_error = CASE WHEN o.status_target IS NULL THEN o.status_error ELSE ''::bytea END,
        status_due_at = CASE WHEN o.status_target IS NULL THEN o.status_due_at ELSE 0 END
    FROM inserted i, newest s
    WHERE o.coalesce_scope = s.scope AND o.coalesce_scope <> ''::bytea
      AND o.state IN ('pending', 'retrying') AND o.delivery < i.seq
      AND (o.claim_expires_at IS NULL OR o.claim_expires_at <= $6)
    RETURNING o.seq, o.id, s.id AS by_id))sql";

// The answer's last column: what was superseded, when the statement coalesces.
const std::string k_superseded =
    "(SELECT string_agg(id || ' ' || by_id, ',' ORDER BY seq) FROM superseded)";

// A delivery without a body window ($10 and $11 unused).
const std::string k_insert = R"sql(
WITH inserted AS (
    INSERT INTO deliveries (source, provider, delivery_id, kind, forge_event, received_at,
                            headers, body, body_sha256, body_key, rule_reasons, repository,
                            ref)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $18, $19, $20)
    ON CONFLICT (source, delivery_id) DO NOTHING
    RETURNING seq))sql";
const std::string k_answer = R"sql(
SELECT (SELECT seq FROM inserted), NULL::bigint, NULL::bytea, (SELECT count(*) FROM queued), )sql";

// A delivery with a body window. A stored delivery of the same source with the
// same body ($10: the first 64 bits of its digest $9) received since $11 makes it a duplicate.
const std::string k_insert_by_body = R"sql(
WITH same_body AS (
    SELECT seq, delivery_id FROM deliveries
    WHERE body_key = $10 AND body_sha256 = $9 AND source = $1 AND received_at >= $11
    ORDER BY seq DESC
    LIMIT 1),
inserted AS (
    INSERT INTO deliveries (source, provider, delivery_id, kind, forge_event, received_at,
                            headers, body, body_sha256, body_key, rule_reasons, repository,
                            ref)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $18, $19, $20
    WHERE NOT EXISTS (SELECT 1 FROM same_body)
    ON CONFLICT (source, delivery_id) DO NOTHING
    RETURNING seq))sql";
const std::string k_answer_by_body = R"sql(
SELECT (SELECT seq FROM inserted), (SELECT seq FROM same_body),
       (SELECT delivery_id FROM same_body), (SELECT count(*) FROM queued), )sql";

// The body, when it goes to the bodies table ($31 its hour, $32 the body; NULL: none there).
const std::string k_body_row = R"sql(,
body_row AS (
    INSERT INTO bodies (hour, delivery, body)
    SELECT $31, seq, $32 FROM inserted WHERE $32 IS NOT NULL
    RETURNING 1))sql";

// The submit statement: with a body window or not, coalescing or not, and with the bodies table
// or not (a server before PostgreSQL 14 has none: the statement must not name it; $31 and $32
// are then declared and unused).
const std::string& submit_sql(bool by_body, bool coalescing, bool bodies_table) {
    static const std::array<std::string, 8> k_all = [] {
        std::array<std::string, 8> out;
        for (int i = 0; i < 8; ++i) {
            const bool body = (i & 1) != 0;
            const bool coalesce = (i & 2) != 0;
            const bool table = (i & 4) != 0;
            out[static_cast<std::size_t>(i)] =
                (body ? k_insert_by_body : k_insert) + (table ? k_body_row : "") + k_queue +
                (coalesce ? k_coalesce : "") + (body ? k_answer_by_body : k_answer) +
                (coalesce ? k_superseded : "NULL::text");
        }
        return out;
    }();
    return k_all[(by_body ? 1u : 0u) | (coalescing ? 2u : 0u) | (bodies_table ? 4u : 0u)];
}

// Submissions with a coalesce scope serialize per scope ($2: every scope of the batch), each
// lock taken in the order of its key, so two batches sharing scopes cannot deadlock.
const std::string k_lock_scopes = "SELECT count(pg_advisory_xact_lock($1, k)) FROM (SELECT " +
                                  locks::scope_key("s") +
                                  " AS k FROM unnest($2::bytea[]) AS s GROUP BY 1 ORDER BY 1) AS x";

// The pieces of superseded_outcome() around the delivery's seq, which only the statement
// knows when the delivery has no id.
std::pair<std::string, std::string> outcome_pieces(const std::string& new_id,
                                                   const std::string& delivery_id) {
    if (!delivery_id.empty()) return {superseded_outcome(new_id, delivery_id), std::string()};
    constexpr char k_mark = '\x1e';  // never in a trigger id
    const std::string full = superseded_outcome(new_id, std::string("#") + k_mark);
    const auto at = full.find(k_mark);
    return {full.substr(0, at), full.substr(at + 1)};
}

// "old new,old new" (the statement's last column) as Receipt::superseded.
std::vector<std::pair<std::string, std::string>> parse_superseded(std::string_view text) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!text.empty()) {
        const auto comma = text.find(',');
        const std::string_view pair = text.substr(0, comma);
        const auto space = pair.find(' ');
        out.emplace_back(std::string(pair.substr(0, space)), std::string(pair.substr(space + 1)));
        text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    }
    return out;
}

// Deliveries compared by body serialize on their body key, so two instances given the same
// body at once see each other (the second waits for the first to commit).
constexpr std::string_view k_lock_bodies =
    "SELECT count(pg_advisory_xact_lock($1, k::integer)) FROM unnest($2::bigint[]) AS k";

bool is_conflict(const DbError& e) {
    return e.sqlstate() == "40P01" || e.sqlstate() == "40001";
}

// Failures that concern one submission's data (a value too large, a check failing): the batch
// is then committed job by job, so only the offending submission fails.
bool confined_to_data(const DbError& e) {
    const std::string_view s = e.sqlstate();
    return s.substr(0, 2) == "22" || s.substr(0, 2) == "23" || s.substr(0, 2) == "54";
}

}  // namespace

void Core::enqueue(SubmitJob job) {
    submits_.push_back(std::move(job));
    writer_wake_.cancel();
}

asio::awaitable<void> Core::writer() {
    for (;;) {
        while (submits_.empty()) {
            if (stopping_) {
                --loops_;
                drained_.cancel();
                co_return;
            }
            writer_wake_.expires_at(Steady::time_point::max());
            co_await writer_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        const std::size_t size =
            std::min(submits_.size(), std::max<std::size_t>(config_.max_batch, 1));
        std::vector<SubmitJob> batch;
        batch.reserve(size);
        for (std::size_t i = 0; i < size; ++i) {
            batch.push_back(std::move(submits_.front()));
            submits_.pop_front();
        }
        writer_busy_ = true;
        co_await commit_batch(std::move(batch));
        writer_busy_ = false;
    }
}

asio::awaitable<void> Core::commit_batch(std::vector<SubmitJob> jobs) {
    const auto report_stats = [this](Steady::time_point started, std::size_t size) {
        std::vector<std::function<void(std::chrono::duration<double>, std::size_t)>> callbacks;
        {
            std::lock_guard lock(mutex_);
            callbacks = commit_stats_;
        }
        const std::chrono::duration<double> seconds = Steady::now() - started;
        for (const auto& callback : callbacks) answer(callback, seconds, size);
    };

    std::vector<result<Receipt>> results;
    std::optional<DbError> failure;
    bool hours_read = false;
    for (int attempt = 0; attempt < k_batch_attempts; ++attempt) {
        failure.reset();
        const auto started = Steady::now();
        try {
            results = co_await run_batch(jobs, 0, jobs.size());
        } catch (const DbError& e) {
            failure = e;
        } catch (const std::exception& e) {
            failure = DbError(errc::store_unavailable, e.what());
        }
        report_stats(started, jobs.size());
        if (failure && failure->sqlstate() == "23514" && !hours_read) {
            // "No partition of relation found for row", among others: an hour this instance took
            // for having its partition of the bodies has none (another instance dropped it).
            // Read the hours again and try once more: such a body then goes with its delivery.
            // (The message would say which; it comes in the server's language.)
            hours_read = true;
            std::optional<DbError> unread;
            try {
                co_await refresh_body_hours();
            } catch (const DbError& e) {
                unread = e;
            } catch (const std::exception& e) {
                unread = DbError(errc::store_unavailable, info_->scrub(e.what()));
            }
            if (unread) {
                failed("reading the hours of the bodies table", unread->what(), unread->code());
            }
            continue;
        }
        if (!failure || !is_conflict(*failure)) break;
    }
    if (failure && confined_to_data(*failure) && jobs.size() > 1) {
        failed("submit", failure->what(), failure->code());
        failure.reset();
        results.clear();
        for (std::size_t i = 0; i < jobs.size(); ++i) {
            const auto started = Steady::now();
            std::optional<DbError> one;
            try {
                auto r = co_await run_batch(jobs, i, 1);
                results.push_back(std::move(r.front()));
            } catch (const DbError& e) {
                one = e;
            } catch (const std::exception& e) {
                one = DbError(errc::store_unavailable, e.what());
            }
            report_stats(started, 1);
            if (one) {
                results.emplace_back(make_error_code(one->code()));
                failed("submit", one->what(), one->code());
            }
        }
    } else if (failure) {
        results.assign(jobs.size(), result<Receipt>{make_error_code(failure->code())});
        failed("submit of " + std::to_string(jobs.size()) + " deliveries", failure->what(),
               failure->code());
    } else {
        succeeded();
    }
    bool queued = false;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        if (results[i] && !results[i]->trigger_ids.empty()) queued = true;
        answer(jobs[i].done, std::move(results[i]));
    }
    if (queued) run_committed_observers();
}

Core::SubmitSteps Core::submit_steps(std::span<const SubmitJob> jobs) {
    SubmitSteps out;
    std::vector<std::string> digests;
    std::vector<std::int64_t> body_keys;
    for (const SubmitJob& job : jobs) {
        const DeliveryRecord& d = job.delivery;
        digests.push_back(is_sha256_hex(d.body_sha256) ? d.body_sha256 : sha256_hex(d.body));
        if (d.duplicate_body_window.count() > 0) {
            body_keys.push_back(static_cast<std::int32_t>(body_key(digests.back())));
        }
        std::vector<std::string> ids;
        for (std::size_t i = 0; i < job.triggers.size(); ++i) ids.push_back(make_trigger_id());
        out.any_triggers = out.any_triggers || !ids.empty();
        out.trigger_ids.push_back(std::move(ids));
    }
    std::sort(body_keys.begin(), body_keys.end());
    body_keys.erase(std::unique(body_keys.begin(), body_keys.end()), body_keys.end());
    std::vector<std::string> scopes;
    std::vector<std::vector<std::string>> trigger_scopes;
    for (const SubmitJob& job : jobs) {
        std::vector<std::string> mine;
        for (const TriggerRequest& t : job.triggers) {
            mine.push_back(coalesce_scope(t));
            if (!mine.back().empty()) scopes.push_back(mine.back());
        }
        trigger_scopes.push_back(std::move(mine));
    }

    std::vector<Step>& steps = out.steps;
    steps.push_back({"BEGIN", {}});
    if (!body_keys.empty()) {
        Params p;
        p.int4(locks::k_body_space).int8_array(body_keys);
        steps.push_back({k_lock_bodies, std::move(p)});
    }
    if (!scopes.empty()) {
        Params p;
        p.int4(locks::k_coalesce_space).bytea_array(scopes);
        steps.push_back({k_lock_scopes, std::move(p)});
    }
    for (std::size_t j = 0; j < jobs.size(); ++j) {
        const DeliveryRecord& d = jobs[j].delivery;
        const std::int64_t received = to_ms(d.received_at);
        const bool by_body = d.duplicate_body_window.count() > 0;
        Params p;
        p.text(d.source).text(to_string(d.provider));
        if (d.delivery_id.empty()) {
            p.null(oid::bytea);
        } else {
            p.bytes(d.delivery_id);
        }
        p.text(to_string(d.kind)).bytes(d.forge_event).int8(received);
        p.bytes(pairs_json(d.headers));
        // The body goes to its hour's partition of the bodies table when the hour has one, to
        // the delivery's row otherwise ($8; $32 below).
        const std::int64_t hour = body_hour(received);
        const bool in_bodies = config_.keep_body && body_hour_ready(hour);
        const auto body_if = [&](bool here) {
            if (here) {
                p.bytes_ref(d.body);
            } else {
                p.null(oid::bytea);
            }
        };
        body_if(config_.keep_body && !in_bodies);
        p.text(digests[j]);
        if (by_body) {
            p.int8(body_key(digests[j])).int8(add_ms(received, -d.duplicate_body_window));
        } else {
            p.null(oid::int8).null(oid::int8);
        }
        std::vector<std::string> rules, jenkins, job_paths, parameters, causes, follows, targets;
        std::vector<std::string> keys, heads, tails, wishes;
        std::vector<std::int64_t> cancels, multibranch, scan_only;
        for (std::size_t k = 0; k < jobs[j].triggers.size(); ++k) {
            const TriggerRequest& t = jobs[j].triggers[k];
            keys.push_back(t.coalesce);
            cancels.push_back(t.cancel_superseded ? 1 : 0);
            multibranch.push_back(static_cast<std::int64_t>(t.multibranch));
            scan_only.push_back(t.scan_only ? 1 : 0);
            if (trigger_scopes[j][k].empty()) {
                heads.emplace_back();
                tails.emplace_back();
                wishes.emplace_back();
            } else {
                auto [head, tail] = outcome_pieces(out.trigger_ids[j][k], d.delivery_id);
                heads.push_back(std::move(head));
                tails.push_back(std::move(tail));
                wishes.push_back(status_wish_json(superseded_wish(t, out.trigger_ids[j][k])));
            }
            rules.push_back(t.rule);
            jenkins.push_back(t.jenkins);
            job_paths.push_back(strings_json(t.job));
            parameters.push_back(pairs_json(t.parameters));
            causes.push_back(t.cause);
            follows.emplace_back(to_string(t.follow));
            targets.push_back(status_target_json(t.status));
        }
        p.text_array(out.trigger_ids[j]).text_array(rules).text_array(jenkins);
        p.bytea_array(job_paths).bytea_array(parameters).bytea_array(causes);
        p.bytes(d.rule_reasons.empty() ? std::string_view("[]") : std::string_view(d.rule_reasons))
            .bytes(d.repository)
            .bytes(d.ref);
        p.text_array(follows).bytea_array(targets);
        p.bytea_array(keys).int8_array(cancels).int8_array(multibranch).int8_array(scan_only);
        p.bytea_array(trigger_scopes[j]).bytea_array(heads).bytea_array(tails);
        p.bytea_array(wishes);
        p.int8(hour);
        body_if(in_bodies);
        const bool coalescing = std::any_of(trigger_scopes[j].begin(), trigger_scopes[j].end(),
                                            [](const std::string& x) { return !x.empty(); });
        steps.push_back({submit_sql(by_body, coalescing, bodies_table_), std::move(p)});
    }
    out.first_answer = 1 + (body_keys.empty() ? 0 : 1) + (scopes.empty() ? 0 : 1);
    return out;
}

// A submit of each of the four kinds (with a body window or not, coalescing or not), with a
// body and a trigger, in one transaction that is rolled back: what a new connection runs before
// it is first lent (Pool::set_warm_up). A server process plans a statement, and reads the
// catalog entries of every table, index and partition it touches, the first time it runs it:
// 10-30 ms of its CPU for a submit (more while a prune pass takes the other core), which the
// first webhooks after a start would otherwise wait for, once on each connection. Nothing stays
// in the database; the identity columns skip the numbers the rehearsal drew.
asio::awaitable<void> Core::rehearse(Connection& connection) {
    if (stopping_) co_return;  // a connection made to release this instance's claims at close
    // Keys of its own (delivery id, body, coalesce scope), so that rehearsals running at once,
    // here or on other instances, never wait for each other's advisory locks.
    const std::string own = make_trigger_id();
    std::vector<SubmitJob> jobs;
    const auto now = std::chrono::system_clock::now();
    for (int kind = 0; kind < 4; ++kind) {
        SubmitJob job;
        DeliveryRecord& d = job.delivery;
        d.source = "hookrelay-warm-up";
        d.delivery_id = "hookrelay-warm-up " + own + " " + std::to_string(kind);
        d.kind = EventKind::push;
        d.forge_event = "push";
        d.received_at = now;
        d.body = "{\"warm-up\":\"" + own + " " + std::to_string(kind) + "\"}";
        if ((kind & 1) != 0) d.duplicate_body_window = std::chrono::milliseconds(1);
        TriggerRequest t;
        t.rule = "warm-up";
        t.jenkins = "hookrelay-warm-up";
        t.job = {"warm-up"};
        if ((kind & 2) != 0) t.coalesce = own;
        job.triggers.push_back(std::move(t));
        jobs.push_back(std::move(job));
    }
    SubmitSteps batch = submit_steps(jobs);
    batch.steps.push_back({"ROLLBACK", {}});
    std::optional<DbError> failure;
    try {
        co_await connection.pipeline(std::move(batch.steps));
    } catch (const DbError& e) {
        failure = e;
    }
    if (!failure) co_return;
    report(std::string("warming a connection up: ") + failure->what());
    // One that broke is closed by the pool (as a failed connect, when new); else it is lent as
    // usual (its submits then say what is wrong, if anything still is), out of the transaction
    // that failed.
    if (connection.broken()) co_return;
    try {
        co_await connection.exec("ROLLBACK");
    } catch (const DbError&) {
        // Not idle, or broken: the pool closes it.
    }
}

asio::awaitable<std::vector<result<Receipt>>> Core::run_batch(std::vector<SubmitJob>& all,
                                                              std::size_t first,
                                                              std::size_t count) {
    const std::span<const SubmitJob> jobs(all.data() + first, count);
    SubmitSteps batch = submit_steps(jobs);
    if (batch.any_triggers && notify_slot()) batch.steps.push_back(notify_step());
    batch.steps.push_back({"COMMIT", {}});

    auto lease = co_await pool_.acquire();
    const std::vector<Rows> rows = co_await lease->pipeline(std::move(batch.steps));

    std::vector<result<Receipt>> out;
    for (std::size_t j = 0; j < jobs.size(); ++j) {
        const DeliveryRecord& d = jobs[j].delivery;
        const Rows& r = rows.at(batch.first_answer + j);
        Receipt receipt;
        if (!r.is_null(0, 0)) {
            receipt.trigger_ids = std::move(batch.trigger_ids[j]);
            if (!r.is_null(0, 4)) receipt.superseded = parse_superseded(r.text(0, 4));
        } else if (!r.is_null(0, 1)) {
            receipt.duplicate = true;
            receipt.duplicate_of =
                r.is_null(0, 2) ? "#" + std::to_string(r.int64(0, 1)) : r.text(0, 2);
            // The same id too: a redelivery, reported as such.
            receipt.same_body = d.delivery_id.empty() || receipt.duplicate_of != d.delivery_id;
        } else {
            receipt.duplicate = true;
            receipt.duplicate_of = d.delivery_id;
        }
        out.emplace_back(std::move(receipt));
    }
    co_return out;
}

}  // namespace hookrelay::store::postgres
