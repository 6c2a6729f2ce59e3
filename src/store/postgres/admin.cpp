// Admin queries on PostgreSQL: listing and finding deliveries, replay and redelivery, the
// backlog, the instances and holds, and retention pruning.
#include "store/postgres/codec.hpp"
#include "store/postgres/core.hpp"
#include "store/postgres/schema.hpp"
#include "store/postgres/statements.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace hookrelay::store::postgres {
namespace {

// instances.jenkins as the heartbeat wrote it (a JSON object of name → url); what does not read
// as that (a hand edit) is left out rather than failing the whole list.
std::map<std::string, std::string> jenkins_urls(const std::string& text) {
    std::map<std::string, std::string> out;
    boost::system::error_code ec;
    const auto v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) return out;
    for (const auto& [name, url] : v.get_object()) {
        if (url.is_string()) out.emplace(std::string(name), std::string(url.get_string()));
    }
    return out;
}

constexpr auto k_int64_max = std::numeric_limits<std::int64_t>::max();
constexpr auto k_int64_min = std::numeric_limits<std::int64_t>::min();

// Triggers one page of a windowed() listing walks at most (see there).
constexpr std::int64_t k_list_window = 10'000;

// Deliveries a prune step reads at most: a large backlog of finished records is removed in
// steps, each well within statement_timeout and without a burst of WAL.
constexpr std::int64_t k_prune_step = 1'000;

// How the listing is filtered by outcome (DeliveryQuery::outcome).
// `open_or_dead`: "pending", "retrying", "dead", "superseded", which are the trigger's state (see
// trigger_outcome()); `word`: any other outcome, which only delivered triggers have.
enum class ByOutcome : unsigned { any, word, open_or_dead, held, unmatched };
constexpr unsigned k_outcome_filters = 5;

ByOutcome by_outcome(std::string_view outcome) {
    if (outcome.empty()) return ByOutcome::any;
    if (outcome == "held") return ByOutcome::held;
    if (outcome == "unmatched") return ByOutcome::unmatched;
    if (outcome == "pending" || outcome == "retrying" || outcome == "dead" ||
        outcome == "superseded") {
        return ByOutcome::open_or_dead;
    }
    return ByOutcome::word;
}

bool outcome_drives(ByOutcome outcome) {
    return outcome == ByOutcome::word || outcome == ByOutcome::open_or_dead ||
           outcome == ByOutcome::held;
}

// Whether a listing walks the triggers of an outcome checking each one's delivery for a trigger
// in a state, which reads every row of its walk when few match (a hash join over the triggers in
// the state did it in one pass: 29-52 ms at 450,000 dead triggers, growing with the store): a page
// reads at most k_list_window triggers of its walk, looking each delivery up (nested loops: at
// most k_list_window lookups), and answers a cursor to go on from. Not "held" (the open triggers of
// the held Jenkins): that walk is two states, not one index range in delivery order.
bool windowed(bool by_state, ByOutcome outcome) {
    return by_state && (outcome == ByOutcome::word || outcome == ByOutcome::open_or_dead);
}

// The triggers a windowed() walk reads, below the cursor: "FROM ... WHERE ..." over triggers s,
// with the outcome (its parameter `outcome_param`) and the cursor (`cursor_param`).
std::string walk_sql(ByOutcome outcome, const std::string& outcome_param,
                     const std::string& cursor_param) {
    std::string walk = "FROM triggers s";
    if (outcome == ByOutcome::word) {
        walk += " WHERE s.state = 'delivered' AND s.outcome = " + outcome_param;
    } else {
        walk += " WHERE s.state = " + outcome_param;
    }
    return walk + " AND s.delivery < " + cursor_param;
}

// The window of a windowed() walk as two CTEs: window_rows, its newest k_list_window triggers
// below the cursor, and window_low, the lowest delivery of a full window (below which the page
// does not look), or k_no_low when the window holds the rest of the walk.
constexpr std::string_view k_no_low = "-9223372036854775808";
std::string window_ctes(const std::string& walk) {
    return "window_rows AS (SELECT s.delivery " + walk + " ORDER BY s.delivery DESC LIMIT " +
           std::to_string(k_list_window) +
           "),\nwindow_low AS (SELECT CASE WHEN count(*) = " + std::to_string(k_list_window) +
           " THEN min(delivery) ELSE " + std::string(k_no_low) + " END AS low FROM window_rows)";
}

// The listing's SQL for one combination of filters. Parameters, in order: [outcome] or [state]
// (whichever drives the walk), cursor, [state] (when an outcome drives), [source], [since],
// limit. An outcome filter walks triggers_outcome backwards from the cursor (triggers_state for
// the outcomes that are states), "held" the open triggers of the held Jenkins (triggers_due), a
// state filter triggers_state, so a rare one does not scan every delivery; "unmatched" walks the
// unmatched table's key; otherwise the walk is down the deliveries' key (or deliveries_source),
// newest first, and stops at the page size. Each row of the page comes with its triggers, one row
// each, in creation order.
std::string list_sql(bool by_source, bool by_since, bool by_state, ByOutcome outcome) {
    // Numbered one statement at a time: the operands of one `+` chain are evaluated in no
    // particular order.
    int n = 0;
    const auto next = [&n] { return "$" + std::to_string(++n); };
    constexpr std::string_view k_columns =
        "d.seq, d.source, d.provider, d.delivery_id, d.kind, d.forge_event, d.received_at, "
        "d.repository, d.ref";
    const bool by_trigger = by_state || outcome_drives(outcome);
    std::string page;
    std::string walk;  // a windowed() listing's walk
    if (by_trigger) {
        page = "\n    SELECT DISTINCT ON (s.delivery) ";
        page += k_columns;
        page += "\n    FROM triggers s JOIN deliveries d ON d.seq = s.delivery";
        if (outcome == ByOutcome::held) {
            page += " JOIN holds h ON h.jenkins = s.jenkins";
            page += "\n    WHERE s.state IN ('pending', 'retrying')";
        } else if (outcome == ByOutcome::word) {
            page += "\n    WHERE s.state = 'delivered' AND s.outcome = ";
            page += next();
        } else {
            page += "\n    WHERE s.state = ";
            page += next();
        }
        page += " AND s.delivery < ";
        page += next();
        if (windowed(by_state, outcome)) {
            const std::string cursor = "$" + std::to_string(n);
            walk = walk_sql(outcome, "$1", cursor);
            page += " AND s.delivery >= (SELECT low FROM window_low)";
        }
        if (by_state && outcome_drives(outcome)) {
            page += "\n      AND EXISTS (SELECT 1 FROM triggers x WHERE x.delivery = s.delivery ";
            page += "AND x.state = ";
            page += next();
            page += ")";
        }
    } else if (outcome == ByOutcome::unmatched) {
        page = "\n    SELECT ";
        page += k_columns;
        page += "\n    FROM unmatched u JOIN deliveries d ON d.seq = u.delivery";
        page += "\n    WHERE u.delivery < ";
        page += next();
    } else {
        page = "\n    SELECT ";
        page += k_columns;
        page += "\n    FROM deliveries d\n    WHERE d.seq < ";
        page += next();
    }
    if (outcome == ByOutcome::unmatched && by_trigger) {
        // Never run: with a state it matches nothing (see list_deliveries()).
        page += "\n      AND NOT EXISTS (SELECT 1 FROM triggers x WHERE x.delivery = d.seq)";
    }
    if (by_source) {
        page += " AND d.source = ";
        page += next();
    }
    if (by_since) {
        page += " AND d.received_at >= ";
        page += next();
    }
    if (by_trigger) {
        page += "\n    ORDER BY s.delivery DESC LIMIT ";
    } else if (outcome == ByOutcome::unmatched) {
        page += "\n    ORDER BY u.delivery DESC LIMIT ";
    } else {
        page += "\n    ORDER BY d.seq DESC LIMIT ";
    }
    page += next();
    std::string with = "WITH ";
    if (!walk.empty()) {
        with += window_ctes(walk) + ",\n";
    }
    return with + "page AS (" + page + R"sql()
SELECT p.seq, p.source, p.provider, p.delivery_id, p.kind, p.forge_event, p.received_at,
       p.repository, p.ref, t.jenkins, t.state, t.outcome
FROM page p LEFT JOIN triggers t ON t.delivery = p.seq
ORDER BY p.seq DESC, t.seq)sql";
}

// For the listing's transaction. Planned for its values each time: a generic plan (PostgreSQL
// may switch a prepared statement to one after five executions) cannot tell a rare outcome or
// state (walk its index) from a common one (walk the deliveries and filter), and walks the
// deliveries for every value (measured with the generic plan forced: 21 ms instead of 2 ms for a
// page of an outcome 300 of 270,000 triggers have, growing with the table). And with nested
// loops only: every listing walks one index in order and stops at its page, joining each row it
// keeps to its delivery and triggers. A merge join instead walks the deliveries' key from the
// newest down to where the walked index starts matching: with the oldest 500,000 of 1,000,000
// deliveries dead, `state=dead` read 500,056 deliveries for a page of 50 (178 ms; 1.5 ms with
// nested loops), and a hash join reads the whole triggers table for the page's triggers.
// Except for "held" with a state (k_list_settings_combined): that walk checks every open trigger
// of the held Jenkins for a trigger in the state, and a combination that matches nothing reads them
// all; a hash or merge join does that in one pass (for a state with another outcome, 51 ms at
// 450,000 dead triggers where a lookup per row took 625 ms, before such a walk was windowed()).
const std::string k_list_settings =
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
    "set_config('enable_mergejoin', 'off', true), set_config('enable_hashjoin', 'off', true)";
const std::string k_list_settings_combined =
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)";

// A listing statement's index in list_statements().
unsigned list_key(bool by_source, bool by_since, bool by_state, ByOutcome outcome) {
    return (by_source ? 1u : 0u) | (by_since ? 2u : 0u) | (by_state ? 4u : 0u) |
           (static_cast<unsigned>(outcome) << 3);
}

// Indexed by source (1), since (2), state (4) and the outcome filter (8 × ByOutcome).
const std::array<std::string, 8 * k_outcome_filters>& list_statements() {
    static const std::array<std::string, 8 * k_outcome_filters> k_all = [] {
        std::array<std::string, 8 * k_outcome_filters> out;
        for (unsigned key = 0; key < out.size(); ++key) {
            out[key] = list_sql(key & 1, key & 2, key & 4, static_cast<ByOutcome>(key >> 3));
        }
        return out;
    }();
    return k_all;
}

// For a windowed() listing, in the same snapshot: where its window ended when it was full (the
// cursor to go on from), else NULL. $1 the outcome, $2 the cursor.
const std::string& window_end_sql(ByOutcome outcome) {
    static const std::array<std::string, k_outcome_filters> k_all = [] {
        std::array<std::string, k_outcome_filters> out;
        for (unsigned o = 0; o < k_outcome_filters; ++o) {
            const auto by = static_cast<ByOutcome>(o);
            if (!windowed(true, by)) continue;
            out[o] = "WITH " + window_ctes(walk_sql(by, "$1", "$2")) + "\nSELECT NULLIF(low, " +
                     std::string(k_no_low) + ") FROM window_low";
        }
        return out;
    }();
    return k_all[static_cast<unsigned>(outcome)];
}

}  // namespace

const std::string& list_by_state_sql() {
    return list_statements()[list_key(false, false, true, ByOutcome::any)];
}

const std::string& list_by_since_sql(bool by_state) {
    return list_statements()[list_key(false, true, by_state, ByOutcome::any)];
}

const std::string& list_by_state_and_outcome_sql() {
    return list_statements()[list_key(false, false, true, ByOutcome::open_or_dead)];
}

const std::string& list_settings_sql() {
    return k_list_settings;
}

namespace {

/// Columns 0-6: seq, source, provider, delivery_id, kind, forge_event, received_at.
DeliverySummary read_summary(const Rows& rows, int row) {
    DeliverySummary s;
    s.seq = rows.int64(row, 0);
    s.source = rows.text(row, 1);
    const auto provider = provider_from_string(rows.text(row, 2));
    const auto kind = kind_from_string(rows.text(row, 4));
    if (!provider || !kind) {
        throw DbError(errc::store_unavailable,
                      "delivery #" + std::to_string(s.seq) + " has an unknown provider or kind");
    }
    s.provider = *provider;
    s.delivery_id = rows.is_null(row, 3) ? std::string() : rows.text(row, 3);
    s.kind = *kind;
    s.forge_event = rows.text(row, 5);
    s.received_at = from_ms(rows.int64(row, 6));
    return s;
}

constexpr std::string_view k_find_by_seq =
    "SELECT seq FROM deliveries WHERE seq = $1 AND ($2 = '' OR source = $2)";
constexpr std::string_view k_find_in_source =
    "SELECT seq FROM deliveries WHERE source = $1 AND delivery_id = $2";
constexpr std::string_view k_find_anywhere =
    "SELECT seq FROM deliveries WHERE delivery_id = $1 ORDER BY seq DESC LIMIT 1";
constexpr std::string_view k_find_by_trigger = "SELECT delivery FROM triggers WHERE id = $1";

// The body is here (stored before schema version 8, or while its hour had no partition), or in
// its hour's partition of the bodies table (read_body()).
constexpr std::string_view k_select_delivery = R"sql(
SELECT seq, source, provider, delivery_id, kind, forge_event, received_at, headers, body,
       body_sha256, rule_reasons, repository, ref
FROM deliveries WHERE seq = $1)sql";

// $1 delivery, $2 now (a claim counts while unexpired).
const std::string k_select_delivery_triggers = "SELECT " + std::string(k_trigger_columns) +
                                               R"sql(, t.seq, t.updated_at,
       CASE WHEN t.claim_expires_at > $2 THEN t.claim_owner ELSE '' END
FROM triggers t JOIN deliveries d ON d.seq = t.delivery
WHERE t.delivery = $1
ORDER BY t.seq)sql";

constexpr std::string_view k_select_delivery_attempts = R"sql(
SELECT a.trigger_seq, a.at, a.http_status, a.outcome, a.duration_ms, a.queue_url, a.counted,
       a.instance
FROM attempts a JOIN triggers t ON t.seq = a.trigger_seq
WHERE t.delivery = $1
ORDER BY a.trigger_seq, a.id)sql";

// Re-queues with a fresh budget, ending any claim (its holder's outcome is then stale), the
// build record and the follow chore (the status progress stays), and what superseded it.
// $1 trigger ids, $2 now.
// A trigger claimed at $2 is left as it is (its build request may be on its way): the rows
// answered with claimed true. An update that meets a claim committed meanwhile checks it again.
constexpr std::string_view k_replay = R"sql(
WITH replayed AS (
    UPDATE triggers
    SET state = 'pending', attempts = 0, created_at = $2, next_attempt_at = $2, updated_at = $2,
        last_outcome = 'replayed', claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL,
        build = '', outcome = 'pending', follow_due_at = NULL, follow_claim_id = NULL,
        follow_owner = NULL, follow_expires_at = NULL, follow_tries = 0, superseded_by = ''
    WHERE id = ANY($1) AND (claim_id IS NULL OR claim_expires_at <= $2)
    RETURNING seq, id),
noted AS (
    INSERT INTO attempts (trigger_seq, at, http_status, outcome, duration_ms, queue_url, counted,
                          instance)
    SELECT seq, $2, 0, 'replayed by admin', 0, '', false, '' FROM replayed)
SELECT id, false FROM replayed
UNION ALL
SELECT id, true FROM triggers WHERE id = ANY($1) AND id NOT IN (SELECT id FROM replayed))sql";

// $1 state, $2 updated since, $3 jenkins ('' = any), $4 limit, $5 now (which claims are live).
constexpr std::string_view k_select_replayable = R"sql(
SELECT id, claim_id IS NOT NULL AND claim_expires_at > $5 FROM triggers
WHERE state = $1 AND updated_at >= $2 AND ($3 = '' OR jenkins = $3)
ORDER BY seq
LIMIT $4)sql";

// The same, re-queued in one statement, those claimed at $5 left as they are.
constexpr std::string_view k_replay_matching = R"sql(
WITH matching AS (
    SELECT seq, id, claim_id IS NOT NULL AND claim_expires_at > $5 AS claimed FROM triggers
    WHERE state = $1 AND updated_at >= $2 AND ($3 = '' OR jenkins = $3)
    ORDER BY seq
    LIMIT $4
    FOR UPDATE),
replayed AS (
    UPDATE triggers t
    SET state = 'pending', attempts = 0, created_at = $5, next_attempt_at = $5, updated_at = $5,
        last_outcome = 'replayed', claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL,
        build = '', outcome = 'pending', follow_due_at = NULL, follow_claim_id = NULL,
        follow_owner = NULL, follow_expires_at = NULL, follow_tries = 0, superseded_by = ''
    FROM matching m
    WHERE t.seq = m.seq AND NOT m.claimed
    RETURNING t.seq, t.id),
noted AS (
    INSERT INTO attempts (trigger_seq, at, http_status, outcome, duration_ms, queue_url, counted,
                          instance)
    SELECT seq, $5, 0, 'replayed by admin', 0, '', false, '' FROM replayed)
SELECT id, false, seq FROM replayed
UNION ALL
SELECT id, true, seq FROM matching WHERE claimed
ORDER BY 3)sql";

// $1 delivery, $2 now, then the triggers as arrays. The delivery is no longer unmatched.
constexpr std::string_view k_add_triggers = R"sql(
WITH matched AS (DELETE FROM unmatched WHERE delivery = $1)
INSERT INTO triggers (id, delivery, rule, jenkins, job, parameters, cause, state, attempts,
                      created_at, next_attempt_at, updated_at, last_outcome, queue_url, follow,
                      status_target, outcome, coalesce, cancel_superseded, multibranch,
                      scan_only, coalesce_scope)
SELECT t.id, $1, t.rule, t.jenkins, t.job, t.parameters, t.cause, 'pending', 0, $2, $2, $2, '',
       '', t.follow, NULLIF(t.status_target, ''::bytea), 'pending', t.coalesce,
       t.cancel_superseded <> 0, t.multibranch, t.scan_only <> 0, t.scope
FROM unnest($3::text[], $4::text[], $5::text[], $6::bytea[], $7::bytea[], $8::bytea[],
            $9::text[], $10::bytea[], $11::bytea[], $12::bigint[], $13::bigint[],
            $14::bigint[], $15::bytea[])
    WITH ORDINALITY AS t(id, rule, jenkins, job, parameters, cause, follow, status_target,
                         coalesce, cancel_superseded, multibranch, scan_only, scope, n)
ORDER BY t.n)sql";

constexpr std::string_view k_backlog = R"sql(
SELECT jenkins, count(*) FROM triggers WHERE state IN ('pending', 'retrying')
GROUP BY jenkins ORDER BY jenkins)sql";

// $1 now, $2 alive since.
constexpr std::string_view k_instances = R"sql(
SELECT i.id, i.host, i.version, i.started_at, i.heartbeat_at,
       (SELECT count(*) FROM triggers t
        WHERE t.claim_owner = i.id AND t.claim_id IS NOT NULL AND t.claim_expires_at > $1
          AND t.state IN ('pending', 'retrying')),
       i.jenkins
FROM instances i
WHERE i.heartbeat_at >= $2
ORDER BY i.started_at, i.id)sql";

constexpr std::string_view k_holds =
    "SELECT jenkins, reason, since, next_probe_at, probes FROM holds ORDER BY jenkins";

constexpr std::string_view k_try_prune_lock = "SELECT pg_try_advisory_lock($1, $2)";
constexpr std::string_view k_prune_unlock = "SELECT pg_advisory_unlock($1, $2)";
constexpr std::string_view k_flush_as_it_goes =
    "SELECT set_config('backend_flush_after', '256kB', false)";
// A prune step: the next deliveries in seq order from the cursor ($1), at most $2; the step
// takes those received before the cutoff up to the first one that is not. Then, for the
// deliveries in ($1, $2], the finished triggers last updated before $3 (attempts go with them:
// ON DELETE CASCADE; not while a trigger's build is followed or a status is still to be posted),
// then those deliveries with no trigger left (their unmatched row goes with them). Each statement
// reads a range of a key (the deliveries', triggers_delivery), however large the tables.
constexpr std::string_view k_prune_range = R"sql(
SELECT seq, received_at FROM deliveries WHERE seq > $1 ORDER BY seq LIMIT $2)sql";
constexpr std::string_view k_prune_triggers = R"sql(
DELETE FROM triggers
WHERE delivery > $1 AND delivery <= $2
  AND state IN ('delivered', 'dead', 'superseded') AND updated_at < $3
  AND follow_due_at IS NULL
  AND status_wanted_seq <= status_posted_seq)sql";
constexpr std::string_view k_prune_deliveries = R"sql(
DELETE FROM deliveries d
WHERE d.seq > $1 AND d.seq <= $2
  AND NOT EXISTS (SELECT 1 FROM triggers t WHERE t.delivery = d.seq))sql";
// The outcome of triggers that instances of schema version 2 (which do not know the column)
// finished after the migration: still the "pending" they were queued with. Their state is the
// outcome, or "delivered" (they followed nothing). A no-op for every other trigger: the outcome
// of a trigger this version writes is its state unless it is delivered, and never "pending" or
// "retrying" then. The WHERE is the predicate of the partial index triggers_outcome_stale
// (schema version 7), which holds just those rows, so the statement reads none of the others:
// the two must stay the same.
constexpr std::string_view k_correct_outcomes = R"sql(
UPDATE triggers SET outcome = CASE WHEN state = 'delivered' THEN 'delivered' ELSE state END
WHERE (state = 'delivered' AND outcome IN ('pending', 'retrying'))
   OR (state IN ('retrying', 'dead') AND outcome <> state))sql";
// Instances gone for longer than the retention (their claims expired long ago).
constexpr std::string_view k_prune_instances = "DELETE FROM instances WHERE heartbeat_at < $1";

// Rows of (id, claimed) as Replayed: each list in the order of `given` (repeats once).
Replayed in_given_order(std::vector<std::string> given, const Rows& rows) {
    std::unordered_set<std::string> done, claimed;
    for (int i = 0; i < rows.size(); ++i) {
        (rows.boolean(i, 1) ? claimed : done).insert(rows.text(i, 0));
    }
    Replayed out;
    for (std::string& id : given) {
        if (done.erase(id) > 0) {
            out.ids.push_back(std::move(id));
        } else if (claimed.erase(id) > 0) {
            out.in_flight.push_back(std::move(id));
        }
    }
    return out;
}

// Rows of (id, claimed, ...) in their order as Replayed.
Replayed in_row_order(const Rows& rows) {
    Replayed out;
    for (int i = 0; i < rows.size(); ++i) {
        (rows.boolean(i, 1) ? out.in_flight : out.ids).push_back(rows.text(i, 0));
    }
    return out;
}

}  // namespace

asio::awaitable<DeliveryPage> Core::list_deliveries(DeliveryQuery q) {
    DeliveryPage page;
    const std::size_t limit = std::min(q.limit, PostgresStore::k_max_page);
    if (limit == 0) co_return page;
    const ByOutcome outcome = by_outcome(q.outcome);
    // A delivery without a trigger has none in any state.
    if (outcome == ByOutcome::unmatched && q.state) co_return page;
    const bool outcome_first = outcome_drives(outcome);
    const unsigned key =
        list_key(!q.source.empty(), q.since.has_value(), q.state.has_value(), outcome);
    Params p;
    if (outcome == ByOutcome::word || outcome == ByOutcome::open_or_dead) {
        p.text(q.outcome);
    } else if (q.state && !outcome_first) {
        p.text(to_string(*q.state));
    }
    p.int8(q.before_seq.value_or(k_int64_max));
    if (q.state && outcome_first) p.text(to_string(*q.state));
    if (!q.source.empty()) p.text(q.source);
    if (q.since) p.int8(to_ms(*q.since));
    p.int8(static_cast<std::int64_t>(limit));
    const bool window = windowed(q.state.has_value(), outcome);
    std::vector<Step> steps;
    // A windowed listing asks where its window ended in a second statement, which must see what
    // the first one saw.
    steps.push_back({window ? "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY" : "BEGIN", {}});
    const bool combined = q.state && outcome_first && !window;  // held, with a state
    steps.push_back({combined ? k_list_settings_combined : k_list_settings, {}});
    steps.push_back({list_statements()[key], std::move(p)});
    if (window) {
        Params w;
        w.text(q.outcome).int8(q.before_seq.value_or(k_int64_max));
        steps.push_back({window_end_sql(outcome), std::move(w)});
    }
    steps.push_back({"COMMIT", {}});
    auto lease = co_await pool_.acquire();
    const std::vector<Rows> results = co_await lease->pipeline(std::move(steps));
    const Rows& rows = results.at(2);
    for (int i = 0; i < rows.size(); ++i) {
        const std::int64_t seq = rows.int64(i, 0);
        if (page.items.empty() || page.items.back().seq != seq) {
            DeliverySummary s = read_summary(rows, i);
            s.repository = rows.text(i, 7);
            s.ref = rows.text(i, 8);
            page.items.push_back(std::move(s));
        }
        if (rows.is_null(i, 9)) continue;  // no trigger
        DeliverySummary& s = page.items.back();
        const std::string state = rows.text(i, 10);
        if (state == "delivered") {
            ++s.delivered;
        } else if (state == "dead") {
            ++s.dead;
        } else if (state != "superseded") {
            ++s.pending;
        }
        s.outcomes.emplace_back(rows.text(i, 9), rows.text(i, 11));
    }
    if (page.items.size() == limit) {
        page.next_before_seq = page.items.back().seq;
    } else if (window && !results.at(3).is_null(0, 0)) {
        page.next_before_seq = results.at(3).int64(0, 0);  // the walk goes on below the window
    }
    co_return page;
}

// The delivery get_delivery() and add_triggers() name: "#<seq>" (in `source` when given), or a
// forge delivery id in `source`, or the newest with that id in any source.
static asio::awaitable<std::optional<std::int64_t>> find_delivery(Connection& c, std::string source,
                                                                  std::string delivery_id) {
    Rows rows;
    if (const auto seq = parse_seq(delivery_id)) {
        rows = co_await c.exec(k_find_by_seq, std::move(Params().int8(*seq).text(source)));
    } else if (delivery_id.empty()) {
        co_return std::nullopt;  // such deliveries have no id to be found by
    } else if (source.empty()) {
        rows = co_await c.exec(k_find_anywhere, std::move(Params().bytes(delivery_id)));
    } else {
        rows =
            co_await c.exec(k_find_in_source, std::move(Params().text(source).bytes(delivery_id)));
    }
    if (rows.empty()) co_return std::nullopt;
    co_return rows.int64(0, 0);
}

asio::awaitable<std::optional<DeliveryDetail>> Core::get_delivery_of_trigger(
    std::string trigger_id) {
    std::int64_t seq = 0;
    {
        auto lease = co_await pool_.acquire();
        const Rows rows =
            co_await lease->exec(k_find_by_trigger, std::move(Params().text(trigger_id)));
        if (rows.empty()) co_return std::nullopt;
        seq = rows.int64(0, 0);
    }
    co_return co_await get_delivery("", "#" + std::to_string(seq));
}

asio::awaitable<std::optional<DeliveryDetail>> Core::get_delivery(std::string source,
                                                                  std::string delivery_id) {
    auto lease = co_await pool_.acquire();
    const auto seq = co_await find_delivery(*lease, std::move(source), std::move(delivery_id));
    if (!seq) co_return std::nullopt;
    std::vector<Step> steps;
    steps.push_back({k_select_delivery, std::move(Params().int8(*seq))});
    steps.push_back({k_select_delivery_triggers, std::move(Params().int8(*seq).int8(wall_ms()))});
    steps.push_back({k_select_delivery_attempts, std::move(Params().int8(*seq))});
    const std::vector<Rows> rows = co_await lease->pipeline(std::move(steps));
    const Rows& d = rows.at(0);
    if (d.empty()) co_return std::nullopt;  // pruned in between

    DeliveryDetail detail;
    detail.summary = read_summary(d, 0);
    detail.headers = parse_pairs(d.text(0, 7));
    if (!d.is_null(0, 8)) {
        detail.body = d.text(0, 8);
    } else {
        // Any instance may have kept it, whatever this one's keep_body.
        detail.body = co_await read_body(*lease, *seq, d.int64(0, 6));
    }
    detail.body_sha256 = d.text(0, 9);
    if (!d.is_null(0, 10)) detail.rule_reasons = parse_rule_reasons(d.text(0, 10));
    detail.summary.repository = d.text(0, 11);
    detail.summary.ref = d.text(0, 12);

    const Rows& t = rows.at(1);
    std::unordered_map<std::int64_t, std::size_t> by_seq;
    for (int i = 0; i < t.size(); ++i) {
        TriggerHistory h;
        h.trigger = read_trigger(t, i);
        by_seq[t.int64(i, k_trigger_column_count)] = detail.triggers.size();
        h.updated_at = from_ms(t.int64(i, k_trigger_column_count + 1));
        h.claimed_by = t.is_null(i, k_trigger_column_count + 2)
                           ? std::string()
                           : t.text(i, k_trigger_column_count + 2);
        switch (h.trigger.state) {
            case TriggerState::pending:
            case TriggerState::retrying:
                ++detail.summary.pending;
                break;
            case TriggerState::delivered:
                ++detail.summary.delivered;
                break;
            case TriggerState::dead:
                ++detail.summary.dead;
                break;
            case TriggerState::superseded:
                break;  // final, and counted in none of the three
        }
        detail.summary.outcomes.emplace_back(h.trigger.request.jenkins, trigger_outcome(h.trigger));
        detail.triggers.push_back(std::move(h));
    }
    const Rows& a = rows.at(2);
    for (int i = 0; i < a.size(); ++i) {
        const auto it = by_seq.find(a.int64(i, 0));
        if (it == by_seq.end()) continue;
        Attempt attempt;
        attempt.at = from_ms(a.int64(i, 1));
        attempt.http_status = static_cast<int>(a.int64(i, 2));
        attempt.outcome = a.text(i, 3);
        attempt.duration = std::chrono::milliseconds(a.int64(i, 4));
        attempt.queue_url = a.text(i, 5);
        attempt.counted = a.boolean(i, 6);
        attempt.instance = a.text(i, 7);
        detail.triggers[it->second].attempts.push_back(std::move(attempt));
    }
    co_return detail;
}

asio::awaitable<Replayed> Core::replay(std::vector<std::string> trigger_ids, TimePoint now) {
    if (trigger_ids.empty()) co_return Replayed{};
    std::vector<Step> steps;
    steps.push_back({k_replay, std::move(Params().text_array(trigger_ids).int8(to_ms(now)))});
    if (notify_slot()) steps.push_back(notify_step());
    auto lease = co_await pool_.acquire();
    const std::vector<Rows> rows = co_await lease->pipeline(std::move(steps));
    auto out = in_given_order(std::move(trigger_ids), rows.at(0));
    if (!out.ids.empty()) run_committed_observers();
    co_return out;
}

asio::awaitable<Replayed> Core::replay_matching(ReplayQuery q, TimePoint now) {
    if (q.limit == 0) co_return Replayed{};
    Params p;
    p.text(to_string(q.state)).int8(q.since ? to_ms(*q.since) : k_int64_min).text(q.jenkins);
    p.int8(static_cast<std::int64_t>(
        std::min<std::size_t>(q.limit, static_cast<std::size_t>(k_int64_max))));
    p.int8(to_ms(now));
    auto lease = co_await pool_.acquire();
    if (q.dry_run) co_return in_row_order(co_await lease->exec(k_select_replayable, std::move(p)));
    std::vector<Step> steps;
    steps.push_back({k_replay_matching, std::move(p)});
    if (notify_slot()) steps.push_back(notify_step());
    const std::vector<Rows> rows = co_await lease->pipeline(std::move(steps));
    auto out = in_row_order(rows.at(0));
    if (!out.ids.empty()) run_committed_observers();
    co_return out;
}

asio::awaitable<std::vector<std::string>> Core::add_triggers(std::string source,
                                                             std::string delivery_id,
                                                             std::vector<TriggerRequest> triggers) {
    std::vector<std::string> ids;
    if (triggers.empty()) co_return ids;
    auto lease = co_await pool_.acquire();
    const auto seq = co_await find_delivery(*lease, std::move(source), std::move(delivery_id));
    if (!seq) co_return ids;
    std::vector<std::string> rules, jenkins, jobs, parameters, causes, follows, targets;
    std::vector<std::string> keys, scopes;
    std::vector<std::int64_t> cancels, multibranch, scan_only;
    for (const TriggerRequest& t : triggers) {
        ids.push_back(make_trigger_id());
        keys.push_back(t.coalesce);
        scopes.push_back(coalesce_scope(t));
        cancels.push_back(t.cancel_superseded ? 1 : 0);
        multibranch.push_back(static_cast<std::int64_t>(t.multibranch));
        scan_only.push_back(t.scan_only ? 1 : 0);
        rules.push_back(t.rule);
        jenkins.push_back(t.jenkins);
        jobs.push_back(strings_json(t.job));
        parameters.push_back(pairs_json(t.parameters));
        causes.push_back(t.cause);
        follows.emplace_back(to_string(t.follow));
        targets.push_back(status_target_json(t.status));
    }
    Params p;
    p.int8(*seq).int8(wall_ms()).text_array(ids).text_array(rules).text_array(jenkins);
    p.bytea_array(jobs).bytea_array(parameters).bytea_array(causes);
    p.text_array(follows).bytea_array(targets);
    p.bytea_array(keys).int8_array(cancels).int8_array(multibranch).int8_array(scan_only);
    p.bytea_array(scopes);
    std::vector<Step> steps;
    steps.push_back({k_add_triggers, std::move(p)});
    if (notify_slot()) steps.push_back(notify_step());
    co_await lease->pipeline(std::move(steps));
    run_committed_observers();
    co_return ids;
}

asio::awaitable<std::vector<std::pair<std::string, std::size_t>>> Core::backlog() {
    std::vector<std::pair<std::string, std::size_t>> out;
    auto lease = co_await pool_.acquire();
    const Rows rows = co_await lease->exec(k_backlog);
    for (int i = 0; i < rows.size(); ++i) {
        out.emplace_back(rows.text(i, 0), static_cast<std::size_t>(rows.int64(i, 1)));
    }
    co_return out;
}

asio::awaitable<std::vector<InstanceInfo>> Core::instances() {
    std::vector<InstanceInfo> out;
    const std::int64_t now = wall_ms();
    Params p;
    p.int8(now).int8(add_ms(now, -3 * options_.claim_lease));
    auto lease = co_await pool_.acquire();
    const Rows rows = co_await lease->exec(k_instances, std::move(p));
    for (int i = 0; i < rows.size(); ++i) {
        InstanceInfo info;
        info.id = rows.text(i, 0);
        info.host = rows.text(i, 1);
        info.version = rows.text(i, 2);
        info.started_at = from_ms(rows.int64(i, 3));
        info.heartbeat_at = from_ms(rows.int64(i, 4));
        info.claims = static_cast<std::size_t>(rows.int64(i, 5));
        if (!rows.is_null(i, 6)) info.jenkins = jenkins_urls(rows.text(i, 6));
        out.push_back(std::move(info));
    }
    co_return out;
}

asio::awaitable<std::map<std::string, JenkinsHold>> Core::holds() {
    std::map<std::string, JenkinsHold> out;
    auto lease = co_await pool_.acquire();
    const Rows rows = co_await lease->exec(k_holds);
    for (int i = 0; i < rows.size(); ++i) {
        JenkinsHold h;
        h.reason = rows.text(i, 1);
        h.since = from_ms(rows.int64(i, 2));
        h.next_probe_at = from_ms(rows.int64(i, 3));
        h.probes = static_cast<int>(rows.int64(i, 4));
        out.emplace(rows.text(i, 0), std::move(h));
    }
    co_return out;
}

asio::awaitable<std::size_t> Core::prune(TimePoint now) {
    if (stopping_) throw DbError(errc::store_closed, "the store is closed");
    const std::int64_t cutoff = add_ms(to_ms(now), -config_.retention);
    // A connection of its own, outside the pool, made for the pass and closed after it: the pass
    // holds it from start to end (with a session lock), and on one of the pool's the submits,
    // claims and outcomes would have one connection fewer for the whole pass (none at all with
    // `pool_size: 1`: webhooks refused until it ended). Closing it releases the lock when
    // anything below fails.
    const Timeouts timeouts{config_.postgres.connect_timeout, config_.postgres.statement_timeout,
                            k_client_margin};
    auto connection = std::make_unique<Connection>(io_.get_executor(), info_, timeouts,
                                                   "hookrelay " + instance_id() + " prune");
    co_await connection->connect();
    const Rows locked = co_await connection->exec(
        k_try_prune_lock, std::move(Params().int4(locks::k_space).int4(locks::k_prune)));
    if (!locked.boolean(0, 0)) co_return 0;  // another instance is pruning
    // The pages this session dirties are handed to the kernel to write as it goes (every 256 kB)
    // instead of piling up until a checkpoint's or the kernel's flush, which then held the
    // accepts' commits up for 155-309 ms while bodies stored in their rows were deleted
    // (docs/performance.md). This session only, until the end of the pass.
    co_await connection->exec(k_flush_as_it_goes);
    co_await connection->exec(k_correct_outcomes);
    // Deliveries in seq order, which is about the order they were received in: the pass ends at
    // the first one received at or after the cutoff (one received before it, by an instance whose
    // clock is behind, waits for the next pass that reaches it).
    std::size_t removed = 0;
    std::int64_t cursor = 0;
    for (bool done = false; !done;) {
        const Rows range = co_await connection->exec(
            k_prune_range, std::move(Params().int8(cursor).int8(k_prune_step)));
        std::int64_t last = cursor;
        done = range.size() < k_prune_step;
        for (int i = 0; i < range.size(); ++i) {
            if (range.int64(i, 1) >= cutoff) {
                done = true;
                break;
            }
            last = range.int64(i, 0);
        }
        if (last == cursor) break;
        co_await connection->exec(k_prune_triggers,
                                  std::move(Params().int8(cursor).int8(last).int8(cutoff)));
        const Rows r = co_await connection->exec(k_prune_deliveries,
                                                 std::move(Params().int8(cursor).int8(last)));
        removed += static_cast<std::size_t>(r.affected());
        cursor = last;
    }
    // The bodies of the hours whose deliveries are now all gone, a partition at a time.
    co_await drop_expired_body_hours(*connection, cutoff);
    co_await connection->exec(k_prune_instances, std::move(Params().int8(cutoff)));
    // At once, not when the server sees the connection close: a pass right after this one (here
    // or on another instance) must find the lock free.
    co_await connection->exec(k_prune_unlock,
                              std::move(Params().int4(locks::k_space).int4(locks::k_prune)));
    co_return removed;
}

std::string_view correct_outcomes_sql() {
    return k_correct_outcomes;
}

}  // namespace hookrelay::store::postgres
