// The admin queries in SQL (listing, showing, replaying, redelivering, backlog, holds), the
// instance table (registration, heartbeat, listing) and pruning. Semantics are AdminQueries' and
// Store::prune's (include/hookrelay/store.hpp).
#pragma once

#include "store/sqlite/connection.hpp"
#include "store/sqlite/intake.hpp"

#include <hookrelay/config.hpp>
#include <hookrelay/store.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hookrelay::store::sqlite {

/// The listing's outcome filter (DeliveryQuery::outcome): none, a trigger_outcome() word of a
/// delivered trigger, one that is a state (pending, retrying, dead), "held", "unmatched".
enum class OutcomeFilter { none, word, state_word, held, unmatched };

/// Which filters a listing has: each combination is one prepared statement.
struct ListShape {
    bool by_source = false;
    bool by_since = false;
    bool by_state = false;
    OutcomeFilter outcome = OutcomeFilter::none;
};

/// A listing statement's parameters, in the order they are bound.
enum class ListParam { cursor, source, since, state, outcome, limit };

struct ListSql {
    std::string sql;
    std::vector<ListParam> params;
};

/// The lowest delivery id a listing with `since` (bound to ?, in ms) can list: the first that
/// received_marks records at or after the second of `since`; NULL when no delivery was received
/// then or later. A seek in received_marks_second.
inline constexpr const char* k_since_bound_sql =
    "(SELECT first_delivery FROM received_marks WHERE second >= ? / 1000 ORDER BY second LIMIT 1)";

/// The listing's statement for one combination of filters (Admin::list_page; public for its plan
/// tests). "held" is two walks: `held_state` "pending" or "retrying" says which.
ListSql listing_sql(const ListShape& shape, const char* held_state = nullptr);

/// Whether a listing of this shape checks a filter on every row its walk reads (a source over a
/// walk of triggers or of unmatched deliveries, a state with an outcome, "held": which Jenkins
/// are held), rather than walking an index of exactly what it lists. Such a walk reads every row
/// below the cursor when few match, so one page reads at most k_list_window deliveries of its
/// walk and, when that ends it, answers with what it found and a cursor to go on from.
bool checks_every_row(const ListShape& shape);

/// How many deliveries one page of a checks_every_row() listing reads at most: the listing runs on
/// the store's one thread, between the submits' commits, so it must not hold them up. Unbounded,
/// `source=gitlab&state=pending` matching nothing read all of 360,000 pending triggers in 140 ms
/// (bench/scale/run.sh, 400,000 deliveries): linear in the store. 10,000 a page took 42–58 ms on
/// the slower 2-core guest (the goal is 50 ms), 5,000 half that. docs/performance.md has the
/// bounded figures.
inline constexpr std::int64_t k_list_window = 5'000;

/// What one step of a prune did (Admin::prune_step).
struct PruneStep {
    std::size_t removed = 0;  ///< deliveries deleted
    bool done = false;        ///< nothing more is expired beyond the cursor
};

/// What an instance registers about itself.
struct InstanceRecord {
    std::string id;
    std::string host;
    std::string version;
};

/// Every member runs on the writer thread; the writing ones inside a transaction the writer
/// opened.
/// A delivery id in any source, the newest: the (source, delivery_id) index, searched once per
/// source. The sources come from deliveries_source, a seek each (there are few), so no index on
/// delivery_id alone is kept up to date on every submit for this lookup.
inline constexpr const char* k_find_delivery_anywhere_sql = R"sql(
WITH RECURSIVE sources(source) AS (
    SELECT MIN(source) FROM deliveries
    UNION ALL
    SELECT (SELECT MIN(source) FROM deliveries WHERE source > sources.source)
    FROM sources WHERE sources.source IS NOT NULL)
SELECT id FROM deliveries
WHERE delivery_id = ?1 AND source IN (SELECT source FROM sources WHERE source IS NOT NULL)
ORDER BY id DESC LIMIT 1)sql";

class Admin {
  public:
    /// Largest page list_page() answers.
    static constexpr std::size_t k_max_page = 1000;

    Admin(Connection& connection, Intake& intake, const StoreConfig& config);

    /// Newest first by seq. `query.source` matches exactly; `query.state` keeps deliveries with
    /// at least one trigger in exactly that state; `query.outcome` those with a trigger of that
    /// stored outcome, "held" those with an open trigger of a held Jenkins, "unmatched" those
    /// without triggers; `query.since` keeps received_at >= since;
    /// `query.before_seq` keeps seq < before_seq. The limit is capped at k_max_page; 0 answers an
    /// empty page. next_before_seq is the last item's seq when the page is full; a
    /// checks_every_row() listing reads k_list_window deliveries of its walk at most, and when
    /// its walk goes on below them it sets next_before_seq to the lowest it read, even on a page
    /// with fewer items than the limit (none, too).
    DeliveryPage list_page(const DeliveryQuery& query);

    /// By (source, delivery id), source "" taking the newest of any source, or by "#<seq>" (a
    /// non-empty source must match then); an empty id finds nothing. `now` decides which claims
    /// are live (claimed_by).
    std::optional<DeliveryDetail> read_detail(const std::string& source,
                                              const std::string& delivery_id, TimePoint now);
    /// The delivery that holds trigger `trigger_id`, as read_detail() reads it.
    std::optional<DeliveryDetail> read_detail_of_trigger(const std::string& trigger_id,
                                                         TimePoint now);

    /// Re-queues the named triggers (pending, attempts 0, created and due at `now`, last_outcome
    /// "replayed", an expired claim ended, an uncounted "replayed by admin" entry); one claimed
    /// at `now` is left as it is (Replayed::in_flight); unknown and repeated ids are skipped.
    /// Both lists in the order given.
    Replayed replay_ids(const std::vector<std::string>& ids, TimePoint now);
    /// The triggers in query.state, updated at or after query.since, of query.jenkins (when
    /// non-empty), at most query.limit, first created first; re-queued unless query.dry_run,
    /// those claimed at `now` left as they are.
    Replayed replay_query(const ReplayQuery& query, TimePoint now);
    /// New pending triggers, created and due at `now`, on the delivery read_detail() would find;
    /// none (and an empty answer) when it is unknown.
    std::vector<std::string> add_to_delivery(const std::string& source,
                                             const std::string& delivery_id,
                                             const std::vector<TriggerRequest>& triggers,
                                             TimePoint now);

    /// Where a count of the open triggers goes on from, in triggers_due's order (Jenkins, due
    /// time, seq). The default is before the first.
    struct BacklogCursor {
        std::string jenkins;  ///< the Jenkins being counted, or the last one counted
        bool within = false;  ///< counting `jenkins`, up to (due, seq) so far
        std::int64_t due = 0;
        std::int64_t seq = 0;
    };
    /// One bounded step of counting the open (pending and retrying) triggers by Jenkins: adds at
    /// most `limit` of those after `cursor` to `counts` and moves the cursor past them. True when
    /// none are left after it. A count made of several steps, with other work between them, may
    /// miss or count twice a trigger that opened, closed or was rescheduled meanwhile.
    bool backlog_step(BacklogCursor& cursor, std::size_t limit,
                      std::map<std::string, std::size_t>& counts);
    std::map<std::string, JenkinsHold> holds();

    /// The prune's cutoff at `now` (ms since the epoch): `now - store.retention`.
    std::int64_t prune_cutoff(TimePoint now) const;
    /// One bounded step of a prune pass (Store::prune), in the running transaction. Takes the
    /// deliveries after `cursor` (a seq; 0 to start a pass) in seq order, at most
    /// `max_deliveries`, up to the first one received at or after `cutoff_ms`; deletes their
    /// finished triggers last updated before the cutoff (not while a build is followed or a
    /// status is still to be posted) with their history, then those of them with no trigger
    /// left. Advances `cursor` past what it took. A pass is the steps from cursor 0 until one
    /// answers done.
    PruneStep prune_step(std::int64_t cutoff_ms, std::int64_t& cursor, std::size_t max_deliveries);

    /// Registers (or re-registers) `instance`, started and heard from at `now`.
    void register_instance(const InstanceRecord& instance, TimePoint now);
    /// The instance's heartbeat; registers it again when its row is gone.
    void heartbeat(const InstanceRecord& instance, TimePoint started_at, TimePoint now);
    void deregister(const std::string& instance_id);
    /// Removes every other instance's row (at open, by the owner of the state directory).
    void forget_other_instances(const std::string& instance_id);
    /// Instances heard from at or after `cutoff`, oldest started first, with their claims live
    /// at `now`.
    std::vector<InstanceInfo> instances(TimePoint cutoff, TimePoint now);

  private:
    struct ListStatement {
        std::unique_ptr<Statement> statement;
        std::vector<ListParam> params;
    };
    const ListStatement& list_statement(const ListShape& shape, const char* held_state);
    void step_walks(const DeliveryQuery& q, const ListShape& shape, std::size_t limit,
                    DeliveryPage& page);
    std::optional<std::int64_t> find_delivery(const std::string& source,
                                              const std::string& delivery_id);
    enum class Requeued { done, in_flight, unknown };
    Requeued requeue(const std::string& id, TimePoint now);
    std::vector<Attempt> select_attempts(const std::string& trigger_id);

    Connection& db_;
    Intake& intake_;
    const StoreConfig& config_;
    Statement find_delivery_by_seq_, find_delivery_in_source_, find_delivery_anywhere_;
    Statement select_delivery_, select_delivery_triggers_, select_summary_,
        select_delivery_outcomes_;
    Statement select_attempts_;
    Statement replay_trigger_, trigger_exists_, insert_replay_entry_, select_replayable_;
    Statement backlog_next_jenkins_, backlog_key_after_, backlog_count_after_;
    Statement select_holds_, any_hold_;
    Statement matched_, select_prune_range_;
    Statement prune_attempts_, prune_triggers_, prune_unmatched_, prune_deliveries_;
    Statement prune_marks_below_, prune_marks_above_;
    Statement upsert_instance_, deregister_, forget_others_, select_instances_;
    // Prepared on first use, one per combination of listing filters (see list_sql()).
    std::map<int, ListStatement> list_statements_;
};

}  // namespace hookrelay::store::sqlite
