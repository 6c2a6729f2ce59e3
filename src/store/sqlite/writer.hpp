// The writer thread: the only user of a store's SQLite connection. Submissions are committed in
// groups (one WAL sync for up to store.max_batch deliveries); queue operations (claims, renewals,
// outcomes, releases, holds) waiting when such a group commits join its transaction (their pages
// are mostly the ones the group just wrote, so they cost little more WAL; not while index work
// that failed is tried again: what they do then is their Op::while_held), and otherwise share one
// transaction without a sync of their own;
// admin writes get a synced transaction each; reads run between them in posting order. It also
// heartbeats the instance and prunes every store.prune_interval.
#pragma once

#include "store/sqlite/admin.hpp"
#include "store/sqlite/chores.hpp"
#include "store/sqlite/connection.hpp"
#include "store/sqlite/intake.hpp"
#include "store/sqlite/queue.hpp"
#include "store/sqlite/state_dir_lock.hpp"
#include "util/rate_limit.hpp"

#include <hookrelay/config.hpp>
#include <hookrelay/store.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace hookrelay::store::sqlite {

/// Runs `done(args...)` unless it is empty, swallowing what it throws: the job is answered either
/// way, and there is no one to tell on the writer thread, which must stay alive for the other
/// jobs. (Not named `invoke`: for a std::function argument, an unqualified call would find
/// std::invoke by argument-dependent lookup and prefer it, which neither checks nor catches.)
template <class Handler, class... Args>
void answer_quietly(const Handler& done, Args&&... args) noexcept {
    try {
        if (done) done(std::forward<Args>(args)...);
    } catch (...) {
    }
}

struct WriterSettings {
    InstanceRecord instance;
    TimePoint started_at;
    /// How often the instance row is refreshed (0: never).
    std::chrono::milliseconds heartbeat_interval{0};
};

class Writer {
  public:
    /// read: no transaction. queue: batched with the queue operations next to it in one
    /// transaction that does not sync the WAL (a lost claim or outcome only repeats an attempt:
    /// at-least-once, never lost; the next synced commit makes it durable). write: a synced
    /// transaction of its own.
    enum class Mode { read, queue, write };
    /// Delivers a job's result to its caller, once its transaction committed.
    using Answer = std::function<void()>;
    /// What an operation does while index work that failed (a full store, an I/O error) waits
    /// to be tried again, possibly for hours: the answered webhooks it holds must reach the file
    /// before anything posted after them may rely on them.
    enum class WhileHeld {
        /// Behind that work, in order: what must not be lost (an outcome, a release, a hold, an
        /// operator's write). Each stands for a request in flight or an action, so they stay
        /// few.
        waits,
        /// Before it: what relies on nothing that work holds. Reads (always), prune steps (they
        /// may free the room it waits for), renewals (a request still at Jenkins keeps its
        /// lease while the database takes the renewal), the next due time, and a Jenkins' hold
        /// and probes (only the holds table: a Jenkins that is down is probed with its backoff).
        runs,
        /// Answered at once with that work's failure: a request for new work (a claim, a chore
        /// claim). Its caller asks again; waiting, each would be one more entry queued for as
        /// long as the failure lasts, and a claim nobody awaits once it runs. (A chore's
        /// completion that claims the next waits: it records an outcome, and there is one per
        /// worker at most.)
        refused,
    };
    struct Op {
        Mode mode = Mode::read;
        const char* what = "";  ///< for error reports: "claim", "replay", ...
        /// The work, on the writer thread (inside the transaction for queue and write). Throws on
        /// failure.
        std::function<Answer(Writer&)> run;
        /// Answers the caller with a failure: the work did not happen or was rolled back.
        std::function<void(boost::system::error_code)> fail;
        /// What it does while index work that failed waits to be tried again (hold_back()).
        WhileHeld while_held = WhileHeld::waits;
    };
    struct Submit {
        DeliveryRecord delivery;
        std::vector<TriggerRequest> triggers;
        DeliveryIntake::SubmitHandler done;
        /// The body as stored (store.keep_body), packed by the submitting thread: compressing
        /// stays off the writer's one thread.
        std::optional<StoredBody> body;
        /// The rule reasons' JSON as stored, encoded and packed by the submitting thread too.
        StoredReasons reasons;
        /// Set for a submission the intake log already holds and answered (store.intake_log):
        /// its record's number there, and the trigger ids its answer gave. 0: an ordinary
        /// submit, answered once committed here.
        std::uint64_t log_seq = 0;
        std::vector<std::string> trigger_ids;
        /// With log_seq: about what it holds in memory until it is indexed (IntakeLogger).
        std::size_t held_bytes = 0;
    };
    /// After the commit that indexed intake log records: their (source, delivery id) keys
    /// (intake_key()), and the highest record number a synced commit has indexed since the last
    /// call (0: none; the log must keep what is not synced here yet).
    using Indexed = std::function<void(std::vector<std::string>, std::uint64_t)>;
    using CommitStats = std::function<void(std::chrono::duration<double>, std::size_t)>;

    /// Prepares every statement (throws SqliteError). Keeps `lock` (may be null) until the
    /// connection is closed.
    Writer(std::unique_ptr<StateDirLock> lock, DbPtr db, const StoreConfig& config,
           WriterSettings settings);
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    /// Before start(), on the opening thread: registers the instance and, when `owner` (this
    /// process holds the state directory), ends the claims, probe leases and instance rows a
    /// previous process left. Throws on failure.
    void open(bool owner);

    /// Starts the thread. It holds its own reference, so the Writer outlives a store destroyed
    /// from one of its own callbacks (the thread then cannot be joined and is detached instead).
    /// `nice_steps` lowers the thread's priority (lower_this_threads_priority): with the intake
    /// log, answering webhooks does not wait for this thread, and under contention for the CPU
    /// it yields to the threads that do. Where setpriority is refused it runs as before (the
    /// daemon's log says so for hookrelay-out, which is refused the same way).
    static void start(const std::shared_ptr<Writer>& writer, int nice_steps = 0);

    /// Runs what is queued, ends this instance's claims and probe leases, removes its instance
    /// row, releases the state directory's lock and stops the thread; later posts are dropped
    /// (their callbacks never run). Joins the thread unless called on it. Idempotent.
    void stop();

    void post(Submit job);
    void post(Op op);
    /// Index work from the intake log, in its order; `done` is empty in each (already answered).
    void post_indexed(std::vector<Submit> jobs);
    /// Index work queued and not yet committed.
    std::size_t index_backlog() const;
    /// The held_bytes of that index work.
    std::size_t index_backlog_bytes() const;
    /// While a transaction holding index work fails and waits to be tried again (the database
    /// full or at store.max_size, busy, an I/O error), its failure; nullopt once one commits.
    /// The intake log refuses new records with it meanwhile, as a submit without the log would
    /// be refused, rather than answering webhooks it cannot index.
    std::optional<boost::system::error_code> index_failure() const;

    /// Before start(), on the opening thread: how far the intake log is indexed.
    std::uint64_t intake_position();
    /// Before start(), on the opening thread: the id of the intake log this database indexes;
    /// "" when none is recorded (a new file, or one older than schema version 13).
    std::string intake_log_id();
    /// Before start(), on the opening thread: records `id` as that log's, committed and synced.
    void set_intake_log_id(const std::string& id);
    /// From the intake log's thread: a group of `n` submissions made durable in `seconds`.
    void report_commit_stats(std::chrono::duration<double> seconds, std::size_t n) {
        report_commit(seconds, n);
    }
    /// From the intake log's thread: reports `line` as the writer's own failures are, and makes
    /// the store unhealthy until the next commit.
    void report_failure(boost::system::error_code code, const std::string& line);
    /// From any thread: reports `line` as the writer's own failures are, leaving health alone.
    void report_line(const std::string& line) { report(line); }
    /// Before start(): called after each commit that indexed intake log records.
    void on_indexed(Indexed callback) { indexed_ = std::move(callback); }

    void add_committed(std::function<void()> callback);
    void add_error(std::function<void(std::string_view)> callback);
    void add_commit_stats(CommitStats callback);
    StoreHealth health() const;
    /// The store's configuration as opened (any thread: it never changes).
    const StoreConfig& config() const noexcept { return config_; }

    // --- For the ops, on the writer thread.
    Intake& intake() noexcept { return intake_; }
    Queue& queue() noexcept { return queue_; }
    Chores& chores() noexcept { return chores_; }
    Admin& admin() noexcept { return admin_; }
    const WriterSettings& settings() const noexcept { return settings_; }
    /// The running transaction makes triggers claimable: on_committed runs after its commit.
    void made_claimable() noexcept { claimable_ = true; }
    /// The running transaction deletes records (prune): once it commits, a full store
    /// (store_full) may take deliveries again.
    void freed_space() noexcept { freed_ = true; }

  private:
    void run();
    struct Committed {
        bool ok = false;        ///< false when the transaction failed as a whole
        bool indexing = false;  ///< the jobs held index work (records of the intake log)
    };
    Committed commit_submits(std::span<Submit> jobs, std::span<Op> ops);
    /// Inside the transaction: inserts the job as its delivery and triggers (with the ids the
    /// intake log gave, for index work).
    Receipt insert(const Submit& job);
    void hold_back(std::span<Submit> failed, std::span<Submit> later, std::vector<Op>& ops);
    void run_ops(std::vector<Op>& ops);
    void run_queue_ops(std::span<Op> ops);
    /// After the commit of queue operations run in one transaction: each one's answer, or the
    /// failure that rolled back its own part.
    void answer_ops(std::span<Op> ops, const std::vector<Answer>& answers,
                    const std::vector<std::optional<Failure>>& failures);
    void run_one(Op& op);
    void heartbeat();
    void scheduled_prune();
    void finish();

    void notify_committed();
    void report(const std::string& message);
    /// Hands the early lines to the first on_error() callback, once it is registered.
    void replay_early();
    /// sqlite3_wal_hook, after every commit: checkpoints the WAL once it holds
    /// k_checkpoint_pages, as SQLite's automatic checkpoint would, and reports a checkpoint that
    /// fails (SQLite's own ignores the failure, and the WAL then grows with every commit).
    static int after_wal_commit(void* writer, sqlite3* db, const char* name, int pages) noexcept;
    void checkpoint(sqlite3* db, const char* name, int pages);
    void report_commit(std::chrono::duration<double> seconds, std::size_t batch);
    /// Health after a commit: ok, except that after store_full only a commit that could have
    /// cleared it (a submit, a prune) counts; claims and heartbeats fit in a full file.
    /// `indexed`: the commit held index work, which ends index_failure().
    void note_commit(bool clears_full, bool indexed = false);
    void note_failure(const Failure& failure, const std::string& detail);

    // Released when the thread ends, or (never started) after the connection is closed.
    std::unique_ptr<StateDirLock> lock_;
    /// " (the database reached store.max_size, N bytes, …)" for a store_full failure when a
    /// limit is set; "" otherwise.
    std::string full_hint(const boost::system::error_code& code) const;
    const StoreConfig config_;
    const WriterSettings settings_;
    Connection db_;
    Chores chores_;
    Intake intake_;
    Queue queue_;
    Admin admin_;
    bool claimable_ = false;
    bool freed_ = false;
    bool pruning_ = false;          ///< a scheduled prune pass is under way (writer thread only)
    RateLimit checkpoint_reports_;  ///< failed checkpoints reported

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Submit> submits_;
    std::deque<Op> ops_;
    std::size_t index_backlog_ = 0;        ///< index work in submits_ and being committed
    std::size_t index_backlog_bytes_ = 0;  ///< its Submit::held_bytes
    std::size_t last_index_group_ = 0;     ///< index records taken together last time
    std::chrono::steady_clock::time_point last_index_take_{};  ///< when
    /// When the oldest operation in ops_ was queued (by post()).
    std::chrono::steady_clock::time_point ops_since_{};
    std::optional<boost::system::error_code> index_failure_;  ///< see index_failure()
    /// While index_failure_ is set: when the held index work is tried again (writer thread).
    std::chrono::steady_clock::time_point retry_held_at_{};
    std::uint64_t unsynced_through_ = 0;  ///< indexed by commits not synced yet (writer thread)
    std::chrono::steady_clock::time_point last_sync_{};  ///< of index work (writer thread)
    /// When the oldest index work in submits_ was queued ({}: none).
    std::chrono::steady_clock::time_point index_since_{};
    /// When index work was last queued.
    std::chrono::steady_clock::time_point index_latest_{};
    Indexed indexed_;
    Statement set_intake_position_;
    bool stop_ = false;
    std::vector<std::function<void()>> committed_;
    std::vector<std::function<void(std::string_view)>> errors_;
    // What report() got before the first on_error() callback (while the store opened), up to
    // k_early_errors lines (and how many more it dropped), until the thread hands them to that
    // callback alone (replay_early()), before any later line.
    std::vector<std::string> early_errors_;
    std::size_t early_dropped_ = 0;
    struct EarlyReplay {
        std::function<void(std::string_view)> callback;
        std::vector<std::string> lines;
    };
    std::optional<EarlyReplay> replay_;
    std::vector<CommitStats> commit_stats_;
    StoreHealth health_;
    bool full_ = false;  ///< the last store_full has not been followed by a submit or prune
    std::thread thread_;
};

/// An Op that runs `work(Writer&)` (returning T, or nothing for void) and answers `done` with its
/// value after the commit, or with the failure.
template <class T, class Work>
Writer::Op make_op(Writer::Mode mode, const char* what, std::function<void(result<T>)> done,
                   Work work, Writer::WhileHeld while_held = Writer::WhileHeld::waits) {
    auto handler = std::make_shared<std::function<void(result<T>)>>(std::move(done));
    Writer::Op op;
    op.mode = mode;
    op.what = what;
    op.while_held = while_held;
    op.run = [handler, work = std::move(work)](Writer& writer) -> Writer::Answer {
        if constexpr (std::is_void_v<T>) {
            work(writer);
            return [handler] { answer_quietly(*handler, result<void>()); };
        } else {
            auto value = std::make_shared<T>(work(writer));
            return [handler, value] { answer_quietly(*handler, result<T>(std::move(*value))); };
        }
    };
    op.fail = [handler](boost::system::error_code error) {
        answer_quietly(*handler, result<T>(error));
    };
    return op;
}

}  // namespace hookrelay::store::sqlite
