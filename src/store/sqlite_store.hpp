// The durable store: one SQLite database in WAL mode, owned by one dedicated thread that commits
// queued submissions in groups, so fsync-per-commit durability does not cap throughput.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/store.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::store {

/// Settings of the SQLite store that are not user configuration.
struct SqliteOptions {
    /// How long a statement waits for a lock held by another connection (an operator's `sqlite3`
    /// shell, a backup) before it fails; a submit that fails this way gets store_unavailable.
    std::chrono::milliseconds busy_timeout{5'000};
};

/// Store backed by <state_dir>/hookrelay.db.
///
/// Threading: every public member except open() may be called from any thread, concurrently, and
/// never blocks on I/O (it queues a job). After open(), SQLite runs only on the store's own
/// thread, which calls each `done` exactly once after the work (submit: after the commit);
/// callers post back to their executors. Callbacks must not block for long: they delay every
/// later job.
///
/// Failures: any SQLite or I/O failure is answered with errc::store_unavailable; a failed submit
/// transaction is rolled back, so nothing of it is kept. The store writes no logs itself; register
/// on_error() to see why.
class SqliteStore final : public Store {
  public:
    /// Creates `state_dir` if missing (like mkdir -p), opens or creates hookrelay.db in it, creates
    /// the schema (version 2; a version 1 database is upgraded in place), enables WAL,
    /// synchronous=FULL, foreign keys and the busy timeout, and starts the store thread. Blocks for
    /// file I/O: call it at startup, not on a network thread. On failure returns
    /// errc::store_unavailable and, when `why` is given, sets it to "cannot open
    /// <state_dir>/hookrelay.db: <reason>" (also for a database written by a newer hookrelay, which
    /// is refused rather than misread).
    static result<std::shared_ptr<SqliteStore>> open(const std::string& state_dir,
                                                     const StoreConfig& config,
                                                     std::string* why = nullptr,
                                                     SqliteOptions options = {});

    /// Finishes every queued job (calling its callback), stops the thread and closes the
    /// database. When the last reference is dropped inside one of the store's own callbacks, the
    /// thread finishes the queue and closes the database on its own after this returns.
    ~SqliteStore() override;

    /// Finishes the work already queued, then stops the store thread; nothing posted afterwards
    /// runs (its callback is dropped, so a caller waiting with a deadline times out). After it
    /// returns no callback runs any more, so the executors callbacks post to may go away.
    /// Idempotent; the destructor does the same.
    void close();

    SqliteStore(const SqliteStore&) = delete;
    SqliteStore& operator=(const SqliteStore&) = delete;

    /// Queued and committed together with the other submissions waiting at that moment (up to
    /// StoreConfig::max_batch per transaction). New triggers are pending with attempts 0 and due
    /// at delivery.received_at. A delivery id seen before for the same source (or earlier in the
    /// same batch) gives Receipt{duplicate = true} and queues nothing; an empty delivery id never
    /// deduplicates by id. With delivery.duplicate_body_window above zero, a stored delivery of
    /// the same source with the same body SHA-256 received in [received_at - window, ...] (the
    /// newest such, batch included) makes it a duplicate too, with same_body set unless that
    /// delivery has the same non-empty id; only deliveries that were themselves submitted with a
    /// window are compared (the others are not indexed by body). The body is kept only when
    /// StoreConfig::keep_body; its SHA-256 (delivery.body_sha256 when that is 64 lowercase hex
    /// digits, else computed here) always is.
    void submit(DeliveryRecord delivery, std::vector<TriggerRequest> triggers,
                SubmitHandler done) override;

    /// Ordered by next_attempt_at, then by creation; `limit` 0 answers an empty list.
    void due(std::string jenkins, std::chrono::system_clock::time_point now, std::size_t limit,
             std::vector<std::string> exclude, DueHandler done) override;

    /// Sets state, next_attempt_at and last_outcome, sets updated_at to the store's wall clock,
    /// replaces queue_url when update.attempt.queue_url is non-empty, adds 1 to attempts when
    /// update.attempt.counted, and appends the attempt to the history. An id that names no stored
    /// trigger changes nothing and is answered with errc::store_unavailable. Updates waiting
    /// together share one transaction.
    void update(TriggerUpdate update, UpdateHandler done) override;

    void next_due(std::string jenkins,
                  std::function<void(result<std::optional<std::chrono::system_clock::time_point>>)>
                      done) override;

    /// Called on the store thread after each commit that inserted at least one trigger.
    /// Callbacks accumulate; there is no way to remove one.
    void on_committed(std::function<void()> callback) override;

    // --- Admin queries. Each runs on the store thread, in the order posted relative to the other
    // jobs, and any failure is answered with errc::store_unavailable (see on_error()).

    /// Newest first by DeliverySummary::seq (the deliveries table's integer key). `query.source`
    /// matches exactly; `query.state` keeps deliveries with at least one trigger in exactly that
    /// state (pending means pending, not retrying); `query.since` keeps received_at >= since;
    /// `query.before_seq` keeps seq < before_seq. `query.limit` is capped at k_max_page; 0
    /// answers an empty page. next_before_seq is the last item's seq when the page is full.
    void list_deliveries(DeliveryQuery query, PageHandler done) override;

    /// Looks the delivery up by (source, delivery_id); `source` "" takes the newest delivery
    /// with that id from any source. "#<seq>" looks up by seq instead (then a non-empty `source`
    /// must match too); any other text, "#" included, is a forge delivery id. An empty
    /// `delivery_id` finds nothing (such deliveries have no id). Headers come back as submitted,
    /// body is nullopt when it was not kept, triggers are in creation order, each with its whole
    /// history, oldest attempt first.
    void get_delivery(std::string source, std::string delivery_id, DetailHandler done) override;

    /// Sets each trigger named in `trigger_ids`, whatever its state, to pending with attempts 0,
    /// created_at, next_attempt_at and updated_at = `now` and last_outcome "replayed", and
    /// appends an uncounted attempt {at now, http_status 0, outcome "replayed by admin"}. One
    /// transaction, synced like a submit: either every listed trigger is re-queued or none.
    /// Unknown and repeated ids are skipped; `done` gets the re-queued ids in the order given.
    /// A trigger in flight at the dispatcher is re-queued too; its outcome, when it arrives,
    /// overwrites the replay. Runs the on_committed() callbacks after `done` when any was
    /// re-queued.
    void replay(std::vector<std::string> trigger_ids, std::chrono::system_clock::time_point now,
                IdsHandler done) override;

    /// replay() of the triggers with state == query.state, updated_at >= query.since (when set)
    /// and jenkins == query.jenkins (when non-empty), at most query.limit of them (0: none),
    /// oldest (first created) first, all in one transaction.
    void replay_matching(ReplayQuery query, std::chrono::system_clock::time_point now,
                         IdsHandler done) override;

    /// Finds the delivery as get_delivery() does and adds `triggers` to it: pending, attempts 0,
    /// created and due at the store's wall clock, with new random ids, in one synced
    /// transaction. `done` gets the new ids in order; an EMPTY vector when the delivery is
    /// unknown (nothing is stored then; check with get_delivery() to tell this from an empty
    /// `triggers`). Runs the on_committed() callbacks after `done` when any was added.
    void add_triggers(std::string source, std::string delivery_id,
                      std::vector<TriggerRequest> triggers, IdsHandler done) override;

    /// (jenkins, pending + retrying count) for every Jenkins with open triggers, by name.
    void backlog(CountsHandler done) override;

    /// Largest page list_deliveries() answers.
    static constexpr std::size_t k_max_page = 1000;

    std::string_view kind() const noexcept override { return "sqlite"; }
    bool durable() const noexcept override { return true; }

    /// Deletes delivered and dead triggers last updated before `now - StoreConfig::retention`,
    /// their attempts, and every delivery received before that cutoff that has no triggers
    /// left. `done` gets the number of deliveries removed. The store also does this by itself,
    /// with the wall clock, when it starts and every StoreConfig::prune_interval (0: never).
    void prune(std::chrono::system_clock::time_point now,
               std::function<void(result<std::size_t>)> done);

    /// Number of triggers of Jenkins `jenkins` in each state, indexed by TriggerState:
    /// {pending, retrying, delivered, dead}.
    void counts(std::string jenkins, std::function<void(result<std::array<std::size_t, 4>>)> done);

    /// The history of one trigger, oldest attempt first; empty for an unknown id.
    void attempts(std::string trigger_id, std::function<void(result<std::vector<Attempt>>)> done);

    /// Registers a callback run on the store thread with a one-line description each time a
    /// job fails inside the store ("submit of 12 deliveries failed: database is locked"), so the
    /// owner can log it. Callbacks accumulate.
    void on_error(std::function<void(std::string_view)> callback);

    /// Registers a callback run on the store thread after every submit transaction, committed or
    /// failed, with its duration (BEGIN to the end of COMMIT, including the WAL sync, or to the
    /// failure) and the number of deliveries in it; it runs before the submits are answered.
    /// Callbacks accumulate; they must be cheap (a metrics histogram).
    void on_commit_stats(
        std::function<void(std::chrono::duration<double> seconds, std::size_t batch)> callback);

  private:
    class Core;

    explicit SqliteStore(std::shared_ptr<Core> core);

    std::shared_ptr<Core> core_;
};

}  // namespace hookrelay::store
