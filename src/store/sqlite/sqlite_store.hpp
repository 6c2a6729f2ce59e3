// The embedded store: one SQLite database in WAL mode in the state directory, owned by one
// dedicated thread that commits queued submissions in groups, so fsync-per-commit durability
// does not cap throughput. One hookrelay owns a state directory (an exclusive lock), so its
// claims are simple: nobody else takes them, and whatever a previous process left is released
// at open.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/store.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace hookrelay::store::sqlite {

class Writer;
class IntakeLogger;

/// How to open a SQLite store, beyond StoreConfig.
struct SqliteOptions {
    /// This store's instance id (claims, history, instance list); empty: make_instance_id().
    std::string instance_id;
    std::string version;  ///< shown in the instance list
    /// Take the exclusive lock on the state directory; then claims, probe leases and instance
    /// rows left in the file are released at open (whoever held them is gone). Without it (tools,
    /// tests opening a second instance on one file) nothing of other instances is touched.
    bool lock_state_dir = true;
    /// instances() lists the instances heard from within 3 leases (DispatchConfig::claim_lease).
    std::chrono::milliseconds claim_lease{10'000};
    /// How often the instance row is refreshed (DispatchConfig::claim_renew_interval); 0: never.
    std::chrono::milliseconds heartbeat_interval{2'000};
    /// How long a statement waits for a lock held by another connection (an operator's `sqlite3`
    /// shell, a backup) before it fails with store_busy.
    std::chrono::milliseconds busy_timeout{5'000};
    /// store.intake_log is used only by the holder of the state directory's lock (the log is
    /// the directory's, and its replay indexes what it holds); true: by this store without the
    /// lock too (tests opening the first of several instances on one file).
    bool intake_log_without_lock = false;
    /// With the intake log, the store's thread runs below the network threads (Writer::start).
    /// Only where no answer waits for it: not for a configuration whose deliveries are answered
    /// after the store's own commit (a `coalesce:` rule, a body window, deliveries without an id).
    bool store_thread_yields = false;
    /// How many open triggers backlog() counts per turn on the store's thread; other work runs
    /// between turns (1-2 ms each with the default, docs/performance.md). Tests make it small.
    std::size_t backlog_step = 16'384;
    /// Submissions handed to the store and not answered yet, at most this many (0: no bound), and
    /// their bodies at most this many bytes (0: no bound; one alone always goes in). Beyond
    /// either a submission is refused at once with store_busy. What the daemon's listener can
    /// have waiting is less (the factory derives both from server.*): more are webhooks whose
    /// callers stopped waiting (server.store_timeout), left queued behind a disk that stopped
    /// answering, each holding its body.
    std::size_t max_unanswered = 0;
    std::size_t max_unanswered_bytes = 0;
    /// OpenOptions::warn.
    std::function<void(const std::string&)> warn;
};

/// Store backed by <state_dir>/hookrelay.db.
///
/// Threading: every public member may be called from any thread, concurrently, and never blocks
/// on I/O (it queues a job). SQLite runs only on the store's own thread, which calls each `done`
/// exactly once after the work (a write: after its commit), in posting order except that
/// submissions waiting together are committed first, as one group. Callbacks must not block for
/// long: they delay every later job. With store.intake_log, a submission the log can answer is
/// answered on the log's thread once its record is synced there (IntakeLogger), and indexed on
/// the store's thread after; anything posted after that answer runs after the indexing.
///
/// Failures are answered with the errc of their cause (classify() in connection.hpp): a lock
/// held by another connection is store_busy, store.max_size or a full disk store_full, anything
/// else store_unavailable; a failed transaction is rolled back, so nothing of it is kept. The
/// store writes no logs itself; register on_error() to see why. health() turns not ok at any
/// failure and ok again at the next committed write (the instance heartbeat is one, so a store
/// that recovered reports it within a heartbeat interval), except after store_full: claims,
/// outcomes and heartbeats still fit in a full file, so only a submit or a prune that commits
/// makes it ok again.
class SqliteStore final : public Store {
  public:
    /// Largest page list_deliveries() answers.
    static constexpr std::size_t k_max_page = 1000;

    /// Creates `state_dir` if missing (like mkdir -p), takes its lock (options.lock_state_dir),
    /// opens or creates hookrelay.db in it, creates the schema (or upgrades an older one in
    /// place), enables WAL, synchronous=FULL, foreign keys and the busy timeout, registers the
    /// instance and starts the store thread. Blocks for file I/O: call it at startup, not on a
    /// network thread. On failure returns store_locked (another hookrelay owns the directory:
    /// `why` is "state_dir <dir> is in use by another hookrelay (pid <pid>)"),
    /// store_incompatible (a file written by a newer hookrelay, or not a database; an intake
    /// log written for another database, holding records this one has not indexed) or
    /// store_unavailable, and sets `why` to "cannot open <state_dir>/hookrelay.db: <reason>".
    static result<std::shared_ptr<SqliteStore>> open(const std::string& state_dir,
                                                     const StoreConfig& config,
                                                     const SqliteOptions& options = {},
                                                     std::string* why = nullptr);

    /// close(). When the last reference is dropped inside one of the store's own callbacks, the
    /// thread finishes the queue and closes the database on its own after this returns.
    ~SqliteStore() override;
    SqliteStore(const SqliteStore&) = delete;
    SqliteStore& operator=(const SqliteStore&) = delete;

    // DeliveryIntake: submissions waiting together (up to store.max_batch) share one transaction
    // and one WAL sync.
    void submit(DeliveryRecord delivery, std::vector<TriggerRequest> triggers,
                SubmitHandler done) override;

    // TriggerQueue: operations waiting together share one transaction that does not sync the WAL.
    void claim(ClaimRequest request, ClaimHandler done) override;
    void renew(std::vector<std::string> claim_ids, TimePoint now, std::chrono::milliseconds lease,
               IdsHandler done) override;
    void complete(std::string claim_id, TriggerUpdate update, CompleteHandler done) override;
    void release(std::vector<std::string> claim_ids, VoidHandler done) override;
    void next_due(std::string jenkins, TimeHandler done) override;
    void hold(std::string jenkins, JenkinsHold hold, VoidHandler done) override;
    void try_probe(std::string jenkins, TimePoint now, std::chrono::milliseconds lease,
                   HoldHandler done) override;
    void probe_failed(std::string jenkins, TimePoint next_probe_at, std::string reason,
                      VoidHandler done) override;
    void unhold(std::string jenkins, VoidHandler done) override;

    void queued_predecessors(std::string id, std::size_t limit, PredecessorsHandler done) override;
    void add_note(std::string id, Attempt note, VoidHandler done) override;
    void forget_scan(std::string jenkins, std::string project, TimePoint requested_at,
                     VoidHandler done) override;
    void request_scan(std::string jenkins, std::string project, TimePoint since, TimePoint now,
                      std::chrono::milliseconds interval, ScanHandler done) override;

    // ChoreQueue: batched with the trigger queue's operations.
    void claim_chores(ChoreRequest request, ChoreHandler done) override;
    void complete_chore(Chore chore, std::string claim_id, ChoreUpdate update,
                        ChoreQueue::CompleteHandler done) override;
    void complete_and_claim(Chore chore, std::string claim_id, ChoreUpdate update,
                            ChoreRequest next, CompleteAndClaimHandler done) override;
    void release_chores(Chore chore, std::vector<std::string> claim_ids,
                        std::function<void(result<void>)> done) override;

    // AdminQueries: writes (replay, add_triggers) are synced like a submit.
    void list_deliveries(DeliveryQuery query, PageHandler done) override;
    void get_delivery(std::string source, std::string delivery_id, DetailHandler done) override;
    void get_delivery_of_trigger(std::string trigger_id, DetailHandler done) override;
    void replay(std::vector<std::string> trigger_ids, TimePoint now, ReplayHandler done) override;
    void replay_matching(ReplayQuery query, TimePoint now, ReplayHandler done) override;
    void add_triggers(std::string source, std::string delivery_id,
                      std::vector<TriggerRequest> triggers, IdsHandler done) override;
    void backlog(CountsHandler done) override;
    void instances(InstancesHandler done) override;
    void holds(HoldsHandler done) override;

    std::string_view kind() const noexcept override { return "sqlite"; }
    bool single_instance() const noexcept override { return true; }
    const std::string& instance_id() const noexcept override { return instance_id_; }
    StoreHealth health() const override;
    std::size_t unindexed() const override;
    void close() override;
    void prune(TimePoint now, std::function<void(result<std::size_t>)> done) override;
    void on_committed(std::function<void()> callback) override;
    void on_error(std::function<void(std::string_view)> callback) override;
    void on_commit_stats(
        std::function<void(std::chrono::duration<double>, std::size_t)> callback) override;

  private:
    SqliteStore(std::shared_ptr<Writer> writer, std::shared_ptr<IntakeLogger> logger,
                std::string instance_id, const SqliteOptions& options);
    struct Unanswered;
    /// Counts a submission as unanswered until its handler is released, and wraps `done` for
    /// that; false (and `done` untouched) when the bounds are reached.
    bool admit(SubmitHandler& done, std::size_t bytes);
    /// Whether a body of `bytes` is refused while `count` submissions with `held` bytes wait.
    bool over_bounds(std::size_t count, std::size_t held, std::size_t bytes) const;

    std::shared_ptr<Writer> writer_;
    std::shared_ptr<IntakeLogger> logger_;  ///< store.intake_log; null without it
    const std::string instance_id_;
    const std::chrono::milliseconds claim_lease_;
    const std::size_t backlog_step_;
    const std::size_t max_unanswered_;
    const std::size_t max_unanswered_bytes_;
    std::shared_ptr<Unanswered> unanswered_;
};

}  // namespace hookrelay::store::sqlite
