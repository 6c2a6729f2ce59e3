#include "store/sqlite/admin.hpp"

#include "store/sqlite/codec.hpp"
#include "store/sqlite/stored_body.hpp"

#include <algorithm>
#include <limits>
#include <unordered_set>

namespace hookrelay::store::sqlite {
namespace {

constexpr auto k_max_int = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
constexpr std::int64_t k_max_id = std::numeric_limits<std::int64_t>::max();

// A listed delivery's columns, in the order read_summary() reads them.
constexpr const char* k_summary_columns =
    "d.id, d.source, d.provider, d.delivery_id, d.kind, d.forge_event, d.received_at, "
    "d.repository, d.ref";

ListShape shape_of(const DeliveryQuery& q) {
    ListShape shape;
    shape.by_source = !q.source.empty();
    shape.by_since = q.since.has_value();
    shape.by_state = q.state.has_value();
    if (q.outcome == "held") {
        shape.outcome = OutcomeFilter::held;
    } else if (q.outcome == "unmatched") {
        shape.outcome = OutcomeFilter::unmatched;
    } else if (q.outcome == "pending" || q.outcome == "retrying" || q.outcome == "dead" ||
               q.outcome == "superseded") {
        shape.outcome = OutcomeFilter::state_word;
    } else if (!q.outcome.empty()) {
        shape.outcome = OutcomeFilter::word;
    }
    return shape;
}

// Whether the listing walks an index of the triggers (by state or outcome) to find its deliveries.
bool walks_triggers(const ListShape& shape) {
    return shape.outcome == OutcomeFilter::word || shape.outcome == OutcomeFilter::state_word ||
           shape.outcome == OutcomeFilter::held ||
           (shape.by_state && shape.outcome == OutcomeFilter::none);
}

}  // namespace

// The listing's SQL for one combination of filters, with the order its parameters are bound in.
// An outcome filter drives the walk from the triggers_outcome index (delivered triggers) or, for
// the outcomes that are states, triggers_state, and so does a state filter (without an outcome), so
// a rare outcome or state does not scan every delivery; "held" walks the open triggers of held
// Jenkins; "unmatched" walks the unmatched table's key backwards; otherwise the walk is down the
// deliveries' own key (or deliveries_source), newest first, and stops at the page size.
// (Unmatched with a state matches nothing and is answered without a statement, see list_page.)
// A checks_every_row() shape has no LIMIT: its filters checked row by row are a last column,
// `keep`, and step_walks steps the walk, counting the rows it reads. "held" is two such walks,
// one per open state (`held_state`), each down its own range of triggers_state in delivery order,
// merged by step_walks: one walk over `state IN (both)` would read every open trigger to sort them.
ListSql listing_sql(const ListShape& shape, const char* held_state) {
    ListSql out;
    const bool stepped = checks_every_row(shape);
    const bool by_triggers = walks_triggers(shape);
    // A stepped walk reads only the id and `keep` of each row (the source comes before the body in
    // a row, repository and ref after it: reading them would read a kept body's overflow pages
    // for every row walked); list_page reads the summaries of the deliveries it keeps by id.
    std::string page = std::string("\n    SELECT ") + (stepped ? "d.id" : k_summary_columns);
    // The filters checked on each row: in the WHERE clause, or as `keep` for a stepped walk.
    std::string checked;
    std::vector<ListParam> checked_params;
    if (shape.by_source) {
        checked += " AND d.source = ?";
        checked_params.push_back(ListParam::source);
    }
    if (shape.by_state && shape.outcome != OutcomeFilter::none) {
        checked += " AND EXISTS (SELECT 1 FROM triggers x WHERE x.delivery = d.id AND x.state = ?)";
        checked_params.push_back(ListParam::state);
    }
    if (shape.outcome == OutcomeFilter::held) {
        checked += " AND s.jenkins IN (SELECT jenkins FROM holds)";
    }
    if (stepped) {
        page += ",\n           (" + checked.substr(5) + ") AS keep";  // without the first " AND "
        out.params = checked_params;
    }
    if (by_triggers) {
        page += "\n    FROM triggers s CROSS JOIN deliveries d ON d.id = s.delivery\n    WHERE ";
        switch (shape.outcome) {
            case OutcomeFilter::word:
                page += "s.state = 'delivered' AND s.outcome = ?";
                out.params.push_back(ListParam::outcome);
                break;
            case OutcomeFilter::state_word:
                // The outcome of a trigger not delivered is its state.
                page += "s.state = ?";
                out.params.push_back(ListParam::outcome);
                break;
            case OutcomeFilter::held:
                page += "s.state = '" + std::string(held_state ? held_state : "pending") + "'";
                break;
            case OutcomeFilter::none:
            case OutcomeFilter::unmatched:  // not walked from the triggers
                page += "s.state = ?";
                out.params.push_back(ListParam::state);
                break;
        }
        page += " AND s.delivery < ?";
    } else if (shape.outcome == OutcomeFilter::unmatched) {
        page +=
            "\n    FROM unmatched u CROSS JOIN deliveries d ON d.id = u.delivery"
            "\n    WHERE u.delivery < ?";
    } else {
        page += "\n    FROM deliveries d\n    WHERE d.id < ?";
    }
    out.params.push_back(ListParam::cursor);
    const char* walked = "d.id";
    if (by_triggers) {
        walked = "s.delivery";
    } else if (shape.outcome == OutcomeFilter::unmatched) {
        walked = "u.delivery";
    }
    if (shape.by_since) {
        // The walk stops at the first delivery whose running maximum of received_at reached the
        // second of `since` (received_marks, schema version 9): none below it can match. None
        // at all: NULL, and the walk reads nothing.
        page += std::string(" AND ") + walked + " >= " + k_since_bound_sql;
        out.params.push_back(ListParam::since);
        page += " AND d.received_at >= ?";
        out.params.push_back(ListParam::since);
    }
    if (stepped) {
        page += std::string("\n    ORDER BY ") + walked + " DESC";
    } else {
        page += checked;
        out.params.insert(out.params.end(), checked_params.begin(), checked_params.end());
        if (by_triggers) {
            page += "\n    GROUP BY s.delivery ORDER BY s.delivery DESC LIMIT ?";
        } else if (shape.outcome == OutcomeFilter::unmatched) {
            page += "\n    ORDER BY u.delivery DESC LIMIT ?";
        } else {
            page += "\n    ORDER BY d.id DESC LIMIT ?";
        }
        out.params.push_back(ListParam::limit);
    }
    out.sql = page;
    return out;
}

bool checks_every_row(const ListShape& shape) {
    const bool by_triggers = walks_triggers(shape);
    return (shape.by_source && (by_triggers || shape.outcome == OutcomeFilter::unmatched)) ||
           (shape.by_state && shape.outcome != OutcomeFilter::none) ||
           shape.outcome == OutcomeFilter::held;
}

Admin::Admin(Connection& connection, Intake& intake, const StoreConfig& config)
    : db_(connection),
      intake_(intake),
      config_(config),
      find_delivery_by_seq_(db_.get(), "find delivery by seq", R"sql(
SELECT id FROM deliveries WHERE id = ?1 AND (?2 = '' OR source = ?2))sql"),
      find_delivery_in_source_(db_.get(), "find delivery in source", R"sql(
SELECT id FROM deliveries WHERE source = ? AND delivery_id = ?)sql"),
      find_delivery_anywhere_(db_.get(), "find delivery", k_find_delivery_anywhere_sql),
      select_delivery_(db_.get(), "select delivery", R"sql(
SELECT id, source, provider, delivery_id, kind, forge_event, received_at, repository, ref,
       headers, body, body_sha256, rule_reasons, body_lz4_size, rule_reasons_lz4_size
FROM deliveries WHERE id = ?)sql"),
      select_delivery_triggers_(db_.get(), "select delivery triggers",
                                (R"sql(
SELECT t.id, d.source, d.delivery_id, t.rule, t.jenkins, t.job, t.parameters, t.cause, t.state,
       t.attempts, t.created_at, t.next_attempt_at, t.last_outcome, t.queue_url, )sql" +
                                 std::string(k_trigger_chore_columns) + R"sql(,
       t.updated_at,
       CASE WHEN t.claim_id IS NOT NULL AND t.claim_expires_at > ?2 THEN t.claim_owner END
FROM triggers t JOIN deliveries d ON d.id = t.delivery
WHERE t.delivery = ?1 ORDER BY t.seq)sql")
                                    .c_str()),
      // A delivery a stepped listing keeps (see step_walks).
      select_summary_(
          db_.get(), "select summary",
          (std::string("SELECT ") + k_summary_columns + " FROM deliveries d WHERE d.id = ?")
              .c_str()),
      // A listed delivery's triggers: the counts per state and each one's outcome.
      select_delivery_outcomes_(db_.get(), "select delivery outcomes", R"sql(
SELECT state, jenkins, outcome FROM triggers WHERE delivery = ? ORDER BY seq)sql"),
      select_attempts_(db_.get(), "select attempts", R"sql(
SELECT at, http_status, outcome, duration_ms, queue_url, counted, instance FROM attempts
WHERE trigger_id = ? ORDER BY id)sql"),
      replay_trigger_(db_.get(), "replay trigger", R"sql(
UPDATE triggers
SET state = 'pending', attempts = 0, created_at = ?1, next_attempt_at = ?1, updated_at = ?1,
    last_outcome = 'replayed', claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL,
    build = NULL, follow_due_at = NULL, follow_tries = 0, follow_claim_id = NULL,
    follow_owner = NULL, follow_expires_at = NULL, outcome = 'pending', superseded_by = ''
WHERE id = ?2 AND (claim_id IS NULL OR claim_expires_at <= ?1))sql"),
      // Whether a trigger exists (one that replay_trigger_ left alone was then claimed), and
      // its delivery.
      trigger_exists_(db_.get(), "trigger exists", "SELECT delivery FROM triggers WHERE id = ?"),
      // Uncounted: the replay is not a try, and the budget starts over anyway.
      insert_replay_entry_(db_.get(), "insert replay entry", R"sql(
INSERT INTO attempts (trigger_id, at, http_status, outcome, duration_ms, queue_url, counted,
                      instance)
VALUES (?1, ?2, 0, 'replayed by admin', 0, '', 0, ''))sql"),
      select_replayable_(db_.get(), "select replayable", R"sql(
SELECT id, claim_id IS NOT NULL AND claim_expires_at > ?5 FROM triggers
WHERE state = ?1 AND updated_at >= ?2 AND (?3 = '' OR jenkins = ?3)
ORDER BY seq
LIMIT ?4)sql"),
      // The backlog's count walks triggers_due, whose predicate is its filter and whose order
      // its cursor follows, a Jenkins at a time, skipping to the key `limit` triggers on (the
      // OFFSET) and counting what is left of a Jenkins with COUNT: both inside SQLite, as fast as
      // one COUNT(*) over them all, rather than a row at a time out to us (2.2x the time). Left
      // to itself the planner picks triggers_state and reads each open trigger's row for its
      // Jenkins: 11x slower (a million open: 813 ms against 75 ms in one statement).
      backlog_next_jenkins_(db_.get(), "backlog: next Jenkins", R"sql(
SELECT MIN(jenkins) FROM triggers INDEXED BY triggers_due
WHERE state IN ('pending', 'retrying') AND jenkins > ?1)sql"),
      backlog_key_after_(db_.get(), "backlog: key after a step", R"sql(
SELECT next_attempt_at, seq FROM triggers INDEXED BY triggers_due
WHERE state IN ('pending', 'retrying') AND jenkins = ?1 AND (next_attempt_at, seq) > (?2, ?3)
ORDER BY next_attempt_at, seq
LIMIT 1 OFFSET ?4)sql"),
      backlog_count_after_(db_.get(), "backlog: count the rest", R"sql(
SELECT COUNT(*) FROM triggers INDEXED BY triggers_due
WHERE state IN ('pending', 'retrying') AND jenkins = ?1 AND (next_attempt_at, seq) > (?2, ?3))sql"),
      select_holds_(db_.get(), "select holds", R"sql(
SELECT jenkins, reason, since, next_probe_at, probes FROM holds ORDER BY jenkins)sql"),
      any_hold_(db_.get(), "any hold", "SELECT 1 FROM holds LIMIT 1"),
      matched_(db_.get(), "matched", "DELETE FROM unmatched WHERE delivery = ?"),
      // A prune step: the next deliveries in received order (the key), from the cursor on; the
      // step takes those received before the cutoff up to the first one that is not.
      select_prune_range_(db_.get(), "select prune range", R"sql(
SELECT id, received_at FROM deliveries WHERE id > ?1 ORDER BY id LIMIT ?2)sql"),
      // Then, for the deliveries in (?1, ?2], the finished triggers last updated before ?3,
      // children first (the foreign keys are enforced); not while a trigger's build is followed
      // or a status wish of it is still to be posted. INDEXED BY: without statistics the planner
      // may walk triggers_state, every finished trigger of the store.
      prune_attempts_(db_.get(), "prune attempts", R"sql(
DELETE FROM attempts WHERE trigger_id IN (
    SELECT id FROM triggers INDEXED BY triggers_delivery
    WHERE delivery > ?1 AND delivery <= ?2
        AND state IN ('delivered', 'dead', 'superseded') AND updated_at < ?3
        AND follow_due_at IS NULL AND status_wanted_seq <= status_posted_seq))sql"),
      prune_triggers_(db_.get(), "prune triggers", R"sql(
DELETE FROM triggers INDEXED BY triggers_delivery
WHERE delivery > ?1 AND delivery <= ?2
    AND state IN ('delivered', 'dead', 'superseded') AND updated_at < ?3
    AND follow_due_at IS NULL AND status_wanted_seq <= status_posted_seq)sql"),
      // An unmatched delivery has no trigger: every one in the range goes.
      prune_unmatched_(db_.get(), "prune unmatched", R"sql(
DELETE FROM unmatched WHERE delivery > ?1 AND delivery <= ?2)sql"),
      prune_deliveries_(db_.get(), "prune deliveries", R"sql(
DELETE FROM deliveries WHERE id > ?1 AND id <= ?2
    AND NOT EXISTS (SELECT 1 FROM triggers t WHERE t.delivery = deliveries.id))sql"),
      // The marks of the deliveries pruned (received_marks, schema version 9). Below: those
      // before the one the oldest delivery left is under; it stays, as it bounds that delivery.
      // Above: those of deliveries past the newest left (the whole store expired), whose ids the
      // next submits take again; left, a mark of the same second would hide them from `since`.
      prune_marks_below_(db_.get(), "prune marks below", R"sql(
DELETE FROM received_marks WHERE first_delivery < (
    SELECT max(first_delivery) FROM received_marks
    WHERE first_delivery <= (SELECT min(id) FROM deliveries)))sql"),
      prune_marks_above_(db_.get(), "prune marks above", R"sql(
DELETE FROM received_marks
WHERE first_delivery > coalesce((SELECT max(id) FROM deliveries), 0))sql"),
      upsert_instance_(db_.get(), "register instance", R"sql(
INSERT INTO instances (id, host, version, started_at, heartbeat_at) VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (id) DO UPDATE SET host = excluded.host, version = excluded.version,
    started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at)sql"),
      deregister_(db_.get(), "deregister instance", "DELETE FROM instances WHERE id = ?"),
      forget_others_(db_.get(), "forget instances", "DELETE FROM instances WHERE id != ?"),
      select_instances_(db_.get(), "select instances", R"sql(
SELECT i.id, i.host, i.version, i.started_at, i.heartbeat_at,
       (SELECT COUNT(*) FROM triggers t
        WHERE t.claim_id IS NOT NULL AND t.claim_owner = i.id AND t.claim_expires_at > ?2)
FROM instances i WHERE i.heartbeat_at >= ?1
ORDER BY i.started_at, i.id)sql") {}

namespace {

// Binds a listing statement's parameters from the query.
void bind_listing(Query& query, const std::vector<ListParam>& params, const DeliveryQuery& q,
                  std::size_t limit) {
    for (const ListParam param : params) {
        switch (param) {
            case ListParam::cursor:
                query.bind_int(q.before_seq.value_or(k_max_id));
                break;
            case ListParam::source:
                query.bind_text(q.source);
                break;
            case ListParam::since:
                query.bind_int(to_ms(*q.since));
                break;
            case ListParam::state:
                query.bind_text(to_string(*q.state));
                break;
            case ListParam::outcome:
                query.bind_text(q.outcome);
                break;
            case ListParam::limit:
                query.bind_int(static_cast<std::int64_t>(limit));
                break;
        }
    }
}

// The column of a stepped walk's `keep` (after the delivery's id).
constexpr int k_keep_column = 1;

}  // namespace

DeliveryPage Admin::list_page(const DeliveryQuery& q) {
    DeliveryPage page;
    const std::size_t limit = std::min(q.limit, k_max_page);
    const ListShape shape = shape_of(q);
    // A delivery without a trigger has none in any state.
    if (limit == 0 || (shape.outcome == OutcomeFilter::unmatched && shape.by_state)) return page;
    // No Jenkins held: nothing to walk the open triggers for (page after page of them).
    if (shape.outcome == OutcomeFilter::held && !Query(any_hold_).step()) return page;
    if (checks_every_row(shape)) {
        step_walks(q, shape, limit, page);
    } else {
        const ListStatement& listing = list_statement(shape, nullptr);
        Query query(*listing.statement);
        bind_listing(query, listing.params, q, limit);
        while (query.step()) page.items.push_back(read_summary(query));
        if (page.items.size() == limit) page.next_before_seq = page.items.back().seq;
    }
    for (DeliverySummary& summary : page.items) {
        Query query(select_delivery_outcomes_);
        query.bind_int(summary.seq);
        while (query.step()) {
            const auto state = trigger_state_from_string(query.text(0));
            if (state == TriggerState::pending || state == TriggerState::retrying) {
                ++summary.pending;
            } else if (state == TriggerState::delivered) {
                ++summary.delivered;
            } else if (state == TriggerState::dead) {
                ++summary.dead;
            }
            summary.outcomes.emplace_back(query.text(1), query.text(2));
        }
    }
    return page;
}

// Steps the walk (for "held" the two, merged newest first), reading k_list_window deliveries at
// most; a delivery's rows are adjacent in a walk (several triggers), and read once.
void Admin::step_walks(const DeliveryQuery& q, const ListShape& shape, std::size_t limit,
                       DeliveryPage& page) {
    std::vector<const char*> states{nullptr};
    if (shape.outcome == OutcomeFilter::held) states = {"pending", "retrying"};
    std::vector<std::unique_ptr<Query>> walks;
    std::vector<bool> live;
    for (const char* state : states) {
        const ListStatement& listing = list_statement(shape, state);
        walks.push_back(std::make_unique<Query>(*listing.statement));
        bind_listing(*walks.back(), listing.params, q, limit);
        live.push_back(walks.back()->step());
    }
    std::int64_t read = 0;
    std::optional<std::int64_t> last;
    for (;;) {
        std::optional<std::size_t> next;
        for (std::size_t i = 0; i < walks.size(); ++i) {
            if (live[i] && (!next || walks[i]->int64(0) > walks[*next]->int64(0))) next = i;
        }
        if (!next) return;  // every walk ended: nothing below
        Query& row = *walks[*next];
        const std::int64_t id = row.int64(0);
        if (id != last) {
            if (read == k_list_window) {
                page.next_before_seq = last;  // read down to `last`, all of its rows
                return;
            }
            ++read;
            last = id;
            if (row.int64(k_keep_column) != 0) {
                Query summary(select_summary_);
                summary.bind_int(id);
                if (summary.step()) page.items.push_back(read_summary(summary));
                if (page.items.size() == limit) {
                    page.next_before_seq = id;
                    return;
                }
            }
        }
        live[*next] = row.step();
    }
}

std::optional<DeliveryDetail> Admin::read_detail(const std::string& source,
                                                 const std::string& delivery_id, TimePoint now) {
    const auto seq = find_delivery(source, delivery_id);
    if (!seq) return std::nullopt;
    DeliveryDetail detail;
    {
        Query query(select_delivery_);
        query.bind_int(*seq);
        if (!query.step()) return std::nullopt;
        detail.summary = read_summary(query);
        detail.headers = parse_pairs(query.text(9));
        if (!query.is_null(10)) {
            std::optional<std::int64_t> size;
            if (!query.is_null(13)) size = query.int64(13);
            try {
                detail.body = unpack_body(query.text(10), size);
            } catch (const std::exception& e) {
                // The rest of the delivery still reads: the admin API says why the body does not.
                detail.body_error = e.what();
            }
        }
        detail.body_sha256 = query.text(11);
        // Left empty while indexing a kept body (Intake::insert): the body's own. Unknown when the
        // body no longer reads (body_error says why).
        if (detail.body_sha256.empty() && detail.body)
            detail.body_sha256 = sha256_hex(*detail.body);
        if (!query.is_null(12)) {
            std::optional<std::int64_t> size;
            if (!query.is_null(14)) size = query.int64(14);
            detail.rule_reasons =
                parse_rule_reasons(unpack_body(query.text(12), size, "rule reasons' JSON"));
        }
    }
    {
        Query query(select_delivery_triggers_);
        query.bind_int(*seq).bind_int(to_ms(now));
        while (query.step()) {
            TriggerHistory h;
            h.trigger = read_trigger(query);
            h.updated_at = from_ms(query.int64(k_trigger_columns));
            h.claimed_by = query.text(k_trigger_columns + 1);
            detail.triggers.push_back(std::move(h));
        }
    }
    for (TriggerHistory& h : detail.triggers) {
        h.attempts = select_attempts(h.trigger.id);
        detail.summary.outcomes.emplace_back(h.trigger.request.jenkins, trigger_outcome(h.trigger));
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
                break;  // DeliverySummary has no count of them; its outcomes show them
        }
    }
    return detail;
}

Replayed Admin::replay_ids(const std::vector<std::string>& ids, TimePoint now) {
    Replayed out;
    std::unordered_set<std::string> seen;
    for (const std::string& id : ids) {
        if (!seen.insert(id).second) continue;
        switch (requeue(id, now)) {
            case Requeued::done:
                out.ids.push_back(id);
                break;
            case Requeued::in_flight:
                out.in_flight.push_back(id);
                break;
            case Requeued::unknown:
                break;
        }
    }
    return out;
}

Replayed Admin::replay_query(const ReplayQuery& q, TimePoint now) {
    Replayed found;
    if (q.limit == 0) return found;
    // Read first, then write: an UPDATE under an open SELECT of the same rows could make the
    // SELECT see a row twice, or not at all.
    {
        Query query(select_replayable_);
        query.bind_text(to_string(q.state));
        query.bind_int(q.since ? to_ms(*q.since) : std::numeric_limits<std::int64_t>::min());
        query.bind_text(q.jenkins);
        query.bind_int(static_cast<std::int64_t>(std::min(q.limit, k_max_int)));
        query.bind_int(to_ms(now));
        while (query.step()) {
            (query.int64(1) != 0 ? found.in_flight : found.ids).push_back(query.text(0));
        }
    }
    if (q.dry_run) return found;
    Replayed out;
    out.in_flight = std::move(found.in_flight);
    for (std::string& id : found.ids) {
        // The same transaction: what the read found is what is written.
        if (requeue(id, now) == Requeued::done) out.ids.push_back(std::move(id));
    }
    return out;
}

std::vector<std::string> Admin::add_to_delivery(const std::string& source,
                                                const std::string& delivery_id,
                                                const std::vector<TriggerRequest>& triggers,
                                                TimePoint now) {
    std::vector<std::string> out;
    if (triggers.empty()) return out;
    const auto seq = find_delivery(source, delivery_id);
    if (!seq) return out;
    const std::int64_t at = to_ms(now);
    for (const TriggerRequest& t : triggers) out.push_back(intake_.add_trigger(*seq, t, at));
    Query(matched_).bind_int(*seq).run();
    return out;
}

bool Admin::backlog_step(BacklogCursor& cursor, std::size_t limit,
                         std::map<std::string, std::size_t>& counts) {
    constexpr std::int64_t k_before_all = std::numeric_limits<std::int64_t>::min();
    // Moves the cursor to the first Jenkins with open triggers after its own; false: none.
    const auto next_jenkins = [&] {
        Query next(backlog_next_jenkins_);
        next.bind_text(cursor.jenkins);
        if (!next.step() || next.is_null(0)) return false;
        cursor.jenkins = next.text(0);
        cursor.within = true;
        cursor.due = k_before_all;
        cursor.seq = k_before_all;
        return true;
    };
    if (!cursor.within && !next_jenkins()) return true;
    const auto step = static_cast<std::int64_t>(std::max<std::size_t>(limit, 1));
    {
        Query key(backlog_key_after_);
        key.bind_text(cursor.jenkins).bind_int(cursor.due).bind_int(cursor.seq).bind_int(step - 1);
        if (key.step()) {
            counts[cursor.jenkins] += static_cast<std::size_t>(step);
            cursor.due = key.int64(0);
            cursor.seq = key.int64(1);
            return false;
        }
    }
    // Fewer than `limit` left of this Jenkins: the rest, then on to the next one.
    Query rest(backlog_count_after_);
    rest.bind_text(cursor.jenkins).bind_int(cursor.due).bind_int(cursor.seq);
    const std::int64_t left = rest.step() ? rest.int64(0) : 0;
    if (left > 0) counts[cursor.jenkins] += static_cast<std::size_t>(left);
    cursor.within = false;
    return !next_jenkins();
}

std::map<std::string, JenkinsHold> Admin::holds() {
    std::map<std::string, JenkinsHold> out;
    Query query(select_holds_);
    while (query.step()) out.emplace(query.text(0), read_hold(query, 1));
    return out;
}

std::int64_t Admin::prune_cutoff(TimePoint now) const {
    // In milliseconds, saturating: a retention as long as a duration may be is no cutoff in the
    // future.
    return plus_ms(now, -config_.retention);
}

// Deliveries are walked in key order, which is the order they were received in: a step reads at
// most `max_deliveries` rows of the key, however large the store, and the pass ends at the first
// delivery received at or after the cutoff (a later one received before it, after a step back of
// the clock, waits for the next pass that reaches it). What a step deletes is by range of the
// key: the triggers through triggers_delivery, the attempts through attempts_trigger.
PruneStep Admin::prune_step(std::int64_t cutoff_ms, std::int64_t& cursor,
                            std::size_t max_deliveries) {
    PruneStep step;
    const auto limit =
        static_cast<std::int64_t>(std::min(std::max<std::size_t>(max_deliveries, 1), k_max_int));
    std::int64_t last = cursor;
    std::int64_t read = 0;
    {
        Query query(select_prune_range_);
        query.bind_int(cursor).bind_int(limit);
        while (query.step()) {
            ++read;
            if (query.int64(1) >= cutoff_ms) {
                step.done = true;
                break;
            }
            last = query.int64(0);
        }
    }
    if (read < limit) step.done = true;
    if (last == cursor) return step;
    for (Statement* statement : {&prune_attempts_, &prune_triggers_}) {
        Query(*statement).bind_int(cursor).bind_int(last).bind_int(cutoff_ms).run();
    }
    Query(prune_unmatched_).bind_int(cursor).bind_int(last).run();
    Query(prune_deliveries_).bind_int(cursor).bind_int(last).run();
    step.removed = static_cast<std::size_t>(db_.changes());
    Query(prune_marks_below_).run();
    Query(prune_marks_above_).run();
    cursor = last;
    return step;
}

void Admin::register_instance(const InstanceRecord& instance, TimePoint now) {
    heartbeat(instance, now, now);
}

void Admin::heartbeat(const InstanceRecord& instance, TimePoint started_at, TimePoint now) {
    Query query(upsert_instance_);
    query.bind_text(instance.id).bind_text(instance.host).bind_text(instance.version);
    query.bind_int(to_ms(started_at)).bind_int(to_ms(now)).run();
}

void Admin::deregister(const std::string& instance_id) {
    Query(deregister_).bind_text(instance_id).run();
}

void Admin::forget_other_instances(const std::string& instance_id) {
    Query(forget_others_).bind_text(instance_id).run();
}

std::vector<InstanceInfo> Admin::instances(TimePoint cutoff, TimePoint now) {
    std::vector<InstanceInfo> out;
    Query query(select_instances_);
    query.bind_int(to_ms(cutoff)).bind_int(to_ms(now));
    while (query.step()) {
        InstanceInfo i;
        i.id = query.text(0);
        i.host = query.text(1);
        i.version = query.text(2);
        i.started_at = from_ms(query.int64(3));
        i.heartbeat_at = from_ms(query.int64(4));
        i.claims = static_cast<std::size_t>(query.int64(5));
        out.push_back(std::move(i));
    }
    return out;
}

const Admin::ListStatement& Admin::list_statement(const ListShape& shape, const char* held_state) {
    const bool retrying = held_state != nullptr && std::string_view(held_state) == "retrying";
    const int key = (shape.by_source ? 1 : 0) | (shape.by_since ? 2 : 0) |
                    (shape.by_state ? 4 : 0) | (static_cast<int>(shape.outcome) << 3) |
                    (retrying ? 64 : 0);
    auto& slot = list_statements_[key];
    if (!slot.statement) {
        ListSql listing = listing_sql(shape, held_state);
        slot.statement =
            std::make_unique<Statement>(db_.get(), "list deliveries", listing.sql.c_str());
        slot.params = std::move(listing.params);
    }
    return slot;
}

std::optional<DeliveryDetail> Admin::read_detail_of_trigger(const std::string& trigger_id,
                                                            TimePoint now) {
    std::int64_t seq = 0;
    {
        Query query(trigger_exists_);
        query.bind_text(trigger_id);
        if (!query.step()) return std::nullopt;
        seq = query.int64(0);
    }  // reset before read_detail()'s statements run
    return read_detail("", "#" + std::to_string(seq), now);
}

std::optional<std::int64_t> Admin::find_delivery(const std::string& source,
                                                 const std::string& delivery_id) {
    if (const auto seq = parse_seq(delivery_id)) {
        Query query(find_delivery_by_seq_);
        query.bind_int(*seq).bind_text(source);
        if (query.step()) return query.int64(0);
        return std::nullopt;
    }
    if (delivery_id.empty()) return std::nullopt;
    if (source.empty()) {
        Query query(find_delivery_anywhere_);
        query.bind_text(delivery_id);
        if (query.step()) return query.int64(0);
        return std::nullopt;
    }
    Query query(find_delivery_in_source_);
    query.bind_text(source).bind_text(delivery_id);
    if (query.step()) return query.int64(0);
    return std::nullopt;
}

Admin::Requeued Admin::requeue(const std::string& id, TimePoint now) {
    const std::int64_t at = to_ms(now);
    Query(replay_trigger_).bind_int(at).bind_text(id).run();
    if (db_.changes() == 0) {
        Query exists(trigger_exists_);
        exists.bind_text(id);
        return exists.step() ? Requeued::in_flight : Requeued::unknown;
    }
    Query(insert_replay_entry_).bind_text(id).bind_int(at).run();
    return Requeued::done;
}

std::vector<Attempt> Admin::select_attempts(const std::string& trigger_id) {
    std::vector<Attempt> out;
    Query query(select_attempts_);
    query.bind_text(trigger_id);
    while (query.step()) out.push_back(read_attempt(query));
    return out;
}

}  // namespace hookrelay::store::sqlite
