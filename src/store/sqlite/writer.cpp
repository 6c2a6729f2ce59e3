#include "store/sqlite/writer.hpp"

#include "store/sqlite/intake_record.hpp"
#include "store/sqlite/prune.hpp"
#include "util/thread_name.hpp"

#include <algorithm>
#include <exception>
#include <iterator>
#include <optional>

namespace hookrelay::store::sqlite {
namespace {

using Clock = std::chrono::system_clock;
using Steady = std::chrono::steady_clock;

// SQLite's automatic checkpoint threshold (SQLITE_DEFAULT_WAL_AUTOCHECKPOINT), which the WAL hook
// replaces.
constexpr int k_checkpoint_pages = 1000;
// Lines reported before the first on_error() callback that are kept for it.
constexpr std::size_t k_early_errors = 16;

// A transaction of index work alone (store.intake_log) commits without syncing the WAL: the
// intake log holds those records durably already. At most this long after the last synced one,
// the next is synced, and only then may the log let go of what it covers.
constexpr std::chrono::milliseconds k_index_sync_every{200};
// Index work waits for more before it commits, while more keeps coming: until this many records
// are queued (or store.max_batch, when smaller: a transaction holds no more), or none came for
// k_index_gap, or k_index_wait passed since the first (claims and other operations wait with it;
// a submit answered here, or stopping, ends the wait). Larger transactions write each index's
// pages once for more records (docs/performance.md). Only when the last group of index work held
// more than one record and was taken less than k_index_wait ago: a webhook after a quiet spell is
// indexed (and its trigger claimable) at once, and the first group of a burst is taken at once
// too (the next finds more waiting).
constexpr std::chrono::milliseconds k_index_wait{50};
constexpr std::chrono::milliseconds k_index_gap{5};
constexpr std::size_t k_index_group = 512;
// An operation (a claim, an outcome, an admin read) queued while index work gathers waits this
// long at most: under a burst the dispatcher's claims and outcomes keep flowing, so builds start
// while webhooks still arrive.
constexpr std::chrono::milliseconds k_op_wait{2};
// Index work whose transaction failed as a whole (a full store, an I/O error) is tried again
// this long after it last failed; operations are dealt with meanwhile (hold_back()).
constexpr std::chrono::seconds k_held_retry{1};

// A longer interval is treated as this, so the deadline arithmetic cannot overflow.
constexpr std::chrono::milliseconds k_max_interval = std::chrono::hours(24 * 365);

}  // namespace

Writer::Writer(std::unique_ptr<StateDirLock> lock, DbPtr db, const StoreConfig& config,
               WriterSettings settings)
    : lock_(std::move(lock)),
      config_(config),
      settings_(std::move(settings)),
      db_(std::move(db)),
      chores_(db_, settings_.instance.id),
      intake_(db_, chores_),
      queue_(db_, chores_, settings_.instance.id),
      admin_(db_, intake_, config_),
      // A checkpoint that keeps failing (every commit past the threshold tries again) is
      // reported at most once a minute.
      checkpoint_reports_(1, std::chrono::minutes(1)),
      set_intake_position_(db_.get(), "record the intake log's position",
                           "UPDATE intake_position SET indexed_through = ?1 "
                           "WHERE id = 1 AND indexed_through < ?1") {
    sqlite3_wal_hook(db_.get(), &Writer::after_wal_commit, this);
}

void Writer::open(bool owner) {
    db_.transaction([&] {
        if (owner) {
            // The file is ours alone: whoever held these claims and leases is gone.
            queue_.release_all();
            admin_.forget_other_instances(settings_.instance.id);
        }
        admin_.register_instance(settings_.instance, settings_.started_at);
    });
}

void Writer::start(const std::shared_ptr<Writer>& writer, int nice_steps) {
    writer->thread_ = std::thread([self = writer, nice_steps] {
        // Named after: a thread with the name has its priority.
        if (nice_steps > 0) lower_this_threads_priority(nice_steps);
        name_this_thread("hookrelay-store");
        self->run();
    });
}

void Writer::stop() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.get_id() == std::this_thread::get_id()) {
        thread_.detach();
    } else if (thread_.joinable()) {
        thread_.join();
    }
}

void Writer::post(Submit job) {
    // Notifying under the lock: once it is released the job may already be done, and its
    // callback may have dropped the last reference to the store.
    std::lock_guard lock(mutex_);
    if (stop_) return;  // closed: nothing runs any more
    submits_.push_back(std::move(job));
    cv_.notify_one();
}

void Writer::post_indexed(std::vector<Submit> jobs) {
    std::lock_guard lock(mutex_);
    if (stop_) return;  // closed: the records stay in the log, indexed at the next start
    index_latest_ = Steady::now();
    if (index_since_ == Steady::time_point{}) index_since_ = index_latest_;
    index_backlog_ += jobs.size();
    for (Submit& job : jobs) {
        index_backlog_bytes_ += job.held_bytes;
        submits_.push_back(std::move(job));
    }
    cv_.notify_one();
}

std::size_t Writer::index_backlog() const {
    std::lock_guard lock(mutex_);
    return index_backlog_;
}

std::size_t Writer::index_backlog_bytes() const {
    std::lock_guard lock(mutex_);
    return index_backlog_bytes_;
}

std::optional<boost::system::error_code> Writer::index_failure() const {
    std::lock_guard lock(mutex_);
    return index_failure_;
}

std::uint64_t Writer::intake_position() {
    const auto through = query_int(db_.get(), "SELECT indexed_through FROM intake_position");
    return through > 0 ? static_cast<std::uint64_t>(through) : 0;
}

std::string Writer::intake_log_id() {
    Statement read(db_.get(), "read the intake log's id",
                   "SELECT log_id FROM intake_log_identity WHERE id = 1");
    Query query(read);
    return query.step() ? query.text(0) : std::string();
}

void Writer::set_intake_log_id(const std::string& id) {
    Statement write(db_.get(), "record the intake log's id",
                    "INSERT INTO intake_log_identity (id, log_id) VALUES (1, ?1) "
                    "ON CONFLICT (id) DO UPDATE SET log_id = excluded.log_id");
    Query(write).bind_text(id).run();
}

Receipt Writer::insert(const Submit& job) {
    const bool given = job.log_seq != 0;
    return intake_.insert(job.delivery, job.body ? &*job.body : nullptr, job.reasons, job.triggers,
                          given ? &job.trigger_ids : nullptr);
}

void Writer::post(Op op) {
    std::lock_guard lock(mutex_);
    if (stop_) return;
    if (ops_.empty()) ops_since_ = Steady::now();
    ops_.push_back(std::move(op));
    cv_.notify_one();
}

void Writer::add_committed(std::function<void()> callback) {
    std::lock_guard lock(mutex_);
    committed_.push_back(std::move(callback));
}

void Writer::add_error(std::function<void(std::string_view)> callback) {
    {
        std::lock_guard lock(mutex_);
        const bool first = errors_.empty();
        errors_.push_back(callback);
        if (!first || early_errors_.empty()) return;
        if (early_dropped_ > 0) {
            early_errors_.push_back(std::to_string(early_dropped_) +
                                    " more lines reported while the store opened were dropped");
        }
        replay_ = EarlyReplay{std::move(callback), std::exchange(early_errors_, {})};
    }
    cv_.notify_one();  // the thread hands them over (callbacks run on it)
}

void Writer::add_commit_stats(CommitStats callback) {
    std::lock_guard lock(mutex_);
    commit_stats_.push_back(std::move(callback));
}

StoreHealth Writer::health() const {
    std::lock_guard lock(mutex_);
    return health_;
}

void Writer::run() {
    const auto prune_every = std::min(config_.prune_interval, k_max_interval);
    const auto beat_every = std::min(settings_.heartbeat_interval, k_max_interval);
    // The first prune runs at start: a daemon restarted more often than the interval would
    // otherwise never prune.
    auto next_prune = Steady::now();
    auto next_beat = Steady::now() + beat_every;
    for (;;) {
        std::vector<Submit> submits;
        std::vector<Op> ops;
        bool stopping = false;
        bool stop_seen = false;
        bool failing = false;
        {
            std::unique_lock lock(mutex_);
            const auto ready = [&] {
                return stop_ || !submits_.empty() || !ops_.empty() || replay_.has_value();
            };
            std::optional<Steady::time_point> deadline;
            if (prune_every.count() > 0) deadline = next_prune;
            if (beat_every.count() > 0)
                deadline = std::min(deadline.value_or(next_beat), next_beat);
            if (deadline) {
                cv_.wait_until(lock, *deadline, ready);
            } else {
                cv_.wait(lock, ready);
            }
            // When all that is queued is index work, it waits for more (see k_index_wait), so
            // that it commits in larger groups (less CPU and fewer pages per delivery). Queued
            // operations wait with it, k_op_wait at most; a submit answered here, or stopping,
            // ends the wait.
            const std::size_t index_group =
                std::min(k_index_group, std::max<std::size_t>(config_.max_batch, 1));
            const bool grouping =
                last_index_group_ > 1 && Steady::now() - last_index_take_ < k_index_wait;
            while (!stop_ && !submits_.empty() && index_backlog_ == submits_.size() &&
                   submits_.size() < index_group && grouping) {
                auto until = std::min(index_since_ + k_index_wait, index_latest_ + k_index_gap);
                if (!ops_.empty()) until = std::min(until, ops_since_ + k_op_wait);
                if (Steady::now() >= until) break;
                cv_.wait_until(lock, until);
            }
            // Every submit queued before the ops taken with them: an op a caller posted after
            // an answer must find that submission stored, and the intake log answers before
            // its index work is done here. They commit in groups of store.max_batch below.
            submits.assign(std::make_move_iterator(submits_.begin()),
                           std::make_move_iterator(submits_.end()));
            submits_.clear();
            if (index_backlog_ > 0) {
                last_index_group_ = index_backlog_;
                last_index_take_ = Steady::now();
            }
            index_since_ = {};
            ops.assign(std::make_move_iterator(ops_.begin()), std::make_move_iterator(ops_.end()));
            ops_.clear();
            stopping = stop_ && submits.empty() && ops.empty();
            stop_seen = stop_;
            failing = index_failure_.has_value();
        }
        replay_early();
        if (stopping) break;
        if (failing && !stop_seen && Steady::now() < retry_held_at_) {
            // Index work that failed waits for its retry: meanwhile the operations taken with it
            // run, are refused or wait, and submissions the ordinary way are refused.
            hold_back({}, submits, ops);
            submits.clear();
        }
        if (!submits.empty()) {
            // The queue operations waiting at the head of `ops` join the last group's
            // transaction (they were posted after every submit taken with them). Not while
            // index work fails: a failure of the group would take them with it, an outcome too,
            // and hold_back() decides what they do meanwhile.
            std::size_t lead = 0;
            while (!failing && lead < ops.size() && ops[lead].mode == Mode::queue) ++lead;
            // While index work fails (a full store, say), one submission per transaction: as
            // much of it goes in as fits, in order, rather than none until a whole group fits.
            const std::size_t batch = failing ? 1 : std::max<std::size_t>(config_.max_batch, 1);
            bool held = false;
            for (std::size_t at = 0; at < submits.size() && !held; at += batch) {
                const std::size_t size = std::min(batch, submits.size() - at);
                const bool last = at + size == submits.size();
                const auto commit = commit_submits(std::span<Submit>(submits).subspan(at, size),
                                                   std::span<Op>(ops).first(last ? lead : 0));
                if (!commit.ok && commit.indexing) {
                    // Answered submissions that did not get into the file: nothing after them
                    // may commit first (it would move intake_position past them, and the log
                    // would let go of them), and no operation may run before them, unless its
                    // WhileHeld says so. The queue operations that joined it (the last group)
                    // were rolled back with it, unanswered: they go with the rest (an outcome
                    // among them is recorded once the work is, not lost).
                    hold_back(std::span<Submit>(submits).subspan(at, size),
                              std::span<Submit>(submits).subspan(at + size), ops);
                    held = true;
                    lead = 0;
                }
            }
            // Held: hold_back() ran, refused or queued again each of `ops` (by its WhileHeld),
            // and the heartbeat and the scheduled prune below still run (a prune frees the room
            // a full store's index work waits for).
            ops.erase(ops.begin(), ops.begin() + static_cast<std::ptrdiff_t>(lead));
        }
        run_ops(ops);
        if (beat_every.count() > 0 && Steady::now() >= next_beat) {
            heartbeat();
            next_beat = Steady::now() + beat_every;
        }
        if (prune_every.count() > 0 && Steady::now() >= next_prune) {
            scheduled_prune();
            next_prune = Steady::now() + prune_every;
        }
    }
    finish();
}

// Group commit: one BEGIN IMMEDIATE .. COMMIT, so one WAL sync, for the whole batch.
Writer::Committed Writer::commit_submits(std::span<Submit> jobs, std::span<Op> ops) {
    std::vector<result<Receipt>> results(jobs.size(),
                                         result<Receipt>{make_error_code(errc::store_unavailable)});
    std::vector<Answer> answers(ops.size());
    std::vector<std::optional<Failure>> failures(ops.size());
    claimable_ = false;
    bool queued = false;
    bool committed = false;
    std::uint64_t through = 0;  // the highest intake log record indexed
    const auto started = Steady::now();
    const auto is_index = [](const Submit& job) { return job.log_seq != 0; };
    const bool index_only = std::all_of(jobs.begin(), jobs.end(), is_index);
    const bool indexing = index_only || std::any_of(jobs.begin(), jobs.end(), is_index);
    // Without the log's callback (a start with store.intake_log off indexing what the log held)
    // nothing would release the log after a later synced commit, and none may come: synced now.
    const bool synced = !index_only || !indexed_ || started - last_sync_ >= k_index_sync_every;
    const auto commit = [&](auto&& work) {
        if (synced) {
            db_.transaction(work);
        } else {
            db_.unsynced([&] { db_.transaction(work); });
        }
    };
    try {
        commit([&] {
            for (std::size_t i = 0; i < jobs.size(); ++i) {
                Receipt receipt;
                const auto failure = db_.isolated([&] { receipt = insert(jobs[i]); });
                if (failure && jobs[i].log_seq != 0) {
                    // Answered already: nothing to tell the forge, so tell the operator.
                    report("an accepted delivery (" + jobs[i].delivery.source + " " +
                           jobs[i].delivery.delivery_id + ", intake log record " +
                           std::to_string(jobs[i].log_seq) +
                           ") could not be indexed: " + failure->what);
                } else if (failure) {
                    results[i] = failure->code;
                    report("submit failed: " + failure->what + full_hint(failure->code));
                } else {
                    queued = queued || !receipt.trigger_ids.empty();
                    results[i] = std::move(receipt);
                }
            }
            for (std::size_t i = 0; i < ops.size(); ++i) {
                failures[i] = db_.isolated([&] { answers[i] = ops[i].run(*this); });
            }
            for (const Submit& job : jobs) through = std::max(through, job.log_seq);
            if (through > 0) {
                Query(set_intake_position_).bind_int(static_cast<std::int64_t>(through)).run();
            }
        });
        committed = true;
    } catch (...) {
        // Nothing of the batch was kept: answers computed before the failure are void.
        const Failure failure = current_failure();
        std::fill(results.begin(), results.end(), result<Receipt>{failure.code});
        const std::string line = "submit of " + std::to_string(jobs.size()) +
                                 " deliveries failed: " + failure.what + full_hint(failure.code);
        report(line);
        note_failure(failure, line);
        if (indexing) {
            // The operations that joined it are the caller's to hold back (run()).
            retry_held_at_ = Steady::now() + k_held_retry;
            std::lock_guard lock(mutex_);
            index_failure_ = failure.code;
        } else {
            for (Op& op : ops) op.fail(failure.code);
        }
    }
    if (committed) note_commit(true, indexing);
    // Index work was reported when the intake log made it durable.
    const auto answered_here = static_cast<std::size_t>(std::count_if(
        jobs.begin(), jobs.end(), [](const Submit& job) { return job.log_seq == 0; }));
    if (answered_here > 0) report_commit(Steady::now() - started, answered_here);
    for (std::size_t i = 0; i < jobs.size(); ++i)
        answer_quietly(std::exchange(jobs[i].done, nullptr), std::move(results[i]));
    if (committed) answer_ops(ops, answers, failures);
    if (committed && (queued || claimable_)) notify_committed();
    // What the log may let go of: everything indexed up to a synced commit.
    std::uint64_t releasable = 0;
    if (committed && synced) {
        last_sync_ = Steady::now();
        releasable = std::max(through, unsynced_through_);
        unsynced_through_ = 0;
    } else if (committed) {
        unsynced_through_ = std::max(unsynced_through_, through);
    }
    if (committed && through > 0) {
        std::vector<std::string> keys;
        std::size_t held = 0;
        for (const Submit& job : jobs) {
            if (job.log_seq != 0) {
                keys.push_back(intake_key(job.delivery.source, job.delivery.delivery_id));
                held += job.held_bytes;
            }
        }
        {
            std::lock_guard lock(mutex_);
            index_backlog_ -= std::min(index_backlog_, keys.size());
            index_backlog_bytes_ -= std::min(index_backlog_bytes_, held);
        }
        if (indexed_) indexed_(std::move(keys), releasable);
    }
    return {committed, indexing};
}

// After a transaction holding index work failed as a whole (busy, full, I/O), and between its
// retries: its index work (its other submissions were answered with the failure) and the index
// work after it go back to the head of their queue in their order; the submissions after it that
// are not index work are refused; the operations `ops` run, are refused or go back to the head
// of theirs, by their WhileHeld. The work is tried again a second after it last failed (or once
// the thread is stopped); operations posted meanwhile are dealt with as they come. Those
// webhooks were answered; the log keeps them until they are indexed. Stopping, index work is left
// to the log instead (indexed at the next start), and the rest goes on as usual.
void Writer::hold_back(std::span<Submit> failed, std::span<Submit> later, std::vector<Op>& ops) {
    const auto is_index = [](const Submit& job) { return job.log_seq != 0; };
    std::unique_lock lock(mutex_);
    if (stop_) {
        // The index work still queued behind goes too (the log handed it over as it stopped):
        // committed after the failed work, it would move intake_position past it, and the next
        // start would not index the failed work from the log. Nothing more is queued after stop.
        std::vector<Submit> queued_index;
        for (auto it = submits_.begin(); it != submits_.end();) {
            if (is_index(*it)) {
                queued_index.push_back(std::move(*it));
                it = submits_.erase(it);
            } else {
                ++it;
            }
        }
        const auto left =
            static_cast<std::size_t>(std::count_if(failed.begin(), failed.end(), is_index) +
                                     std::count_if(later.begin(), later.end(), is_index)) +
            queued_index.size();
        index_backlog_ -= std::min(index_backlog_, left);
        std::size_t held = 0;
        for (const auto* part : {&failed, &later}) {
            for (const Submit& job : *part) held += is_index(job) ? job.held_bytes : 0;
        }
        for (const Submit& job : queued_index) held += job.held_bytes;
        index_backlog_bytes_ -= std::min(index_backlog_bytes_, held);
        lock.unlock();
        report(std::to_string(left) +
               " accepted deliveries stay in the intake log unindexed; they are indexed at the "
               "next start");
        std::vector<Submit> rest;
        for (Submit& job : later) {
            if (!is_index(job)) rest.push_back(std::move(job));
        }
        if (!rest.empty()) commit_submits(rest, {});
        run_ops(ops);
        ops.clear();
        return;
    }
    // Submissions the ordinary way (not answered yet) are refused with the failure, as the
    // intake log refuses new records meanwhile: each would otherwise hold its body here for as
    // long as the failure lasts, its webhook answered 503 after server.store_timeout all the
    // same.
    const boost::system::error_code failure =
        index_failure_.value_or(make_error_code(errc::store_unavailable));
    std::vector<Submit> refused_submits;
    for (auto it = later.rbegin(); it != later.rend(); ++it) {
        if (is_index(*it)) {
            submits_.push_front(std::move(*it));
        } else {
            refused_submits.push_back(std::move(*it));
        }
    }
    for (auto it = failed.rbegin(); it != failed.rend(); ++it) {
        if (is_index(*it)) submits_.push_front(std::move(*it));
    }
    // Reads run now (what they read is the database, which cannot hold that work yet: an
    // operator's listing, a metrics scrape, answered instead of timing out), and so do the
    // operations that rely on nothing it holds (WhileHeld::runs: a prune step, which may free
    // the room it waits for; a renewal). Requests for new work are refused; every other
    // operation waits behind the held work.
    std::vector<Op> now;
    std::vector<Op> refused;
    std::vector<Op> waiting;
    for (Op& op : ops) {
        if (op.mode == Mode::read || op.while_held == WhileHeld::runs) {
            now.push_back(std::move(op));
        } else if (op.while_held == WhileHeld::refused) {
            refused.push_back(std::move(op));
        } else {
            waiting.push_back(std::move(op));
        }
    }
    const std::size_t still_waiting = waiting.size();
    for (auto it = waiting.rbegin(); it != waiting.rend(); ++it) ops_.push_front(std::move(*it));
    ops.clear();
    lock.unlock();
    for (auto it = refused_submits.rbegin(); it != refused_submits.rend(); ++it) {
        answer_quietly(std::exchange(it->done, nullptr), result<Receipt>{failure});
    }
    for (Op& op : refused) answer_quietly(op.fail, failure);
    if (!now.empty()) {
        // Back to the loop at once: each prune step posts the next, so a pass goes on at its own
        // pace between the retries.
        run_ops(now);
        return;
    }
    // Until the retry, or an operation posted meanwhile (a read answered now, not after the
    // second).
    lock.lock();
    cv_.wait_until(lock, retry_held_at_, [&] { return stop_ || ops_.size() > still_waiting; });
}

void Writer::run_ops(std::vector<Op>& ops) {
    std::size_t i = 0;
    while (i < ops.size()) {
        if (ops[i].mode != Mode::queue) {
            run_one(ops[i++]);
            continue;
        }
        std::size_t end = i;
        while (end < ops.size() && ops[end].mode == Mode::queue) ++end;
        run_queue_ops(std::span<Op>(ops).subspan(i, end - i));
        i = end;
    }
}

void Writer::run_queue_ops(std::span<Op> ops) {
    std::vector<Answer> answers(ops.size());
    std::vector<std::optional<Failure>> failures(ops.size());
    claimable_ = false;
    try {
        db_.unsynced([&] {
            db_.transaction([&] {
                for (std::size_t i = 0; i < ops.size(); ++i) {
                    failures[i] = db_.isolated([&] { answers[i] = ops[i].run(*this); });
                }
            });
        });
    } catch (...) {
        const Failure failure = current_failure();
        const std::string line =
            std::string(ops.front().what) +
            (ops.size() > 1 ? " and " + std::to_string(ops.size() - 1) + " more queue operations"
                            : std::string()) +
            " failed: " + failure.what;
        report(line);
        note_failure(failure, line);
        for (Op& op : ops) op.fail(failure.code);
        return;
    }
    note_commit(false);
    answer_ops(ops, answers, failures);
    if (claimable_) notify_committed();
}

void Writer::answer_ops(std::span<Op> ops, const std::vector<Answer>& answers,
                        const std::vector<std::optional<Failure>>& failures) {
    for (std::size_t i = 0; i < ops.size(); ++i) {
        if (failures[i]) {
            report(std::string(ops[i].what) + " failed: " + failures[i]->what);
            ops[i].fail(failures[i]->code);
        } else if (answers[i]) {
            answers[i]();
        }
    }
}

void Writer::run_one(Op& op) {
    Answer answer;
    claimable_ = false;
    freed_ = false;
    try {
        if (op.mode == Mode::write) {
            db_.transaction([&] { answer = op.run(*this); });
        } else {
            answer = op.run(*this);
        }
    } catch (...) {
        const Failure failure = current_failure();
        const std::string line = std::string(op.what) + " failed: " + failure.what;
        report(line);
        note_failure(failure, line);
        op.fail(failure.code);
        return;
    }
    if (op.mode == Mode::write) note_commit(freed_);
    if (answer) answer();
    if (claimable_) notify_committed();
}

void Writer::heartbeat() {
    try {
        db_.unsynced([&] {
            db_.transaction(
                [&] { admin_.heartbeat(settings_.instance, settings_.started_at, Clock::now()); });
        });
    } catch (...) {
        const Failure failure = current_failure();
        const std::string line = "heartbeat failed: " + failure.what;
        report(line);
        note_failure(failure, line);
        return;
    }
    note_commit(false);
}

// In steps, each a transaction queued behind what arrived meanwhile (prune.hpp): a pass over
// millions of expired deliveries never holds the submissions for longer than one step. A failed
// step is reported like any failed write; the next interval starts a new pass.
void Writer::scheduled_prune() {
    if (pruning_) return;  // the last pass is still going
    pruning_ = true;
    post_prune_pass(*this, Clock::now(), [this](const result<std::size_t>&) { pruning_ = false; });
}

void Writer::finish() {
    try {
        db_.unsynced([&] {
            db_.transaction([&] {
                queue_.release_own();
                admin_.deregister(settings_.instance.id);
            });
        });
    } catch (...) {
        // Claims expire by themselves, and the next owner of the directory ends them at open.
        report("releasing the claims at close failed: " + current_failure().what);
    }
    // Nothing is written any more: another hookrelay may have the directory.
    lock_.reset();
}

void Writer::notify_committed() {
    std::vector<std::function<void()>> callbacks;
    {
        std::lock_guard lock(mutex_);
        callbacks = committed_;
    }
    for (const auto& callback : callbacks) answer_quietly(callback);
}

std::string Writer::full_hint(const boost::system::error_code& code) const {
    // SQLite says "database or disk is full" for both; with store.max_size set, name the limit.
    if (code != make_error_code(errc::store_full) || config_.max_size == 0) return {};
    return " (the database reached store.max_size, " + std::to_string(config_.max_size) +
           " bytes, unless the disk itself is full; pruning frees room)";
}

void Writer::report(const std::string& message) {
    replay_early();  // older lines first
    std::vector<std::function<void(std::string_view)>> callbacks;
    {
        std::lock_guard lock(mutex_);
        if (errors_.empty()) {
            // Before anyone listens (while the store opens): kept for the first who does.
            if (early_errors_.size() < k_early_errors) {
                early_errors_.push_back(message);
            } else {
                ++early_dropped_;
            }
            return;
        }
        callbacks = errors_;
    }
    for (const auto& callback : callbacks) answer_quietly(callback, std::string_view(message));
}

void Writer::replay_early() {
    std::optional<EarlyReplay> replay;
    {
        std::lock_guard lock(mutex_);
        replay.swap(replay_);
    }
    if (!replay) return;
    for (const std::string& line : replay->lines)
        answer_quietly(replay->callback, std::string_view(line));
}

int Writer::after_wal_commit(void* writer, sqlite3* db, const char* name, int pages) noexcept {
    // Never an error, and nothing thrown into SQLite: the commit that called this is done, and
    // an error here would fail it.
    try {
        if (pages >= k_checkpoint_pages) static_cast<Writer*>(writer)->checkpoint(db, name, pages);
    } catch (...) {
        // Out of memory while reporting a failed checkpoint: the next commit tries again.
    }
    return SQLITE_OK;
}

void Writer::checkpoint(sqlite3* db, const char* name, int pages) {
    // PASSIVE, as SQLite's own: copies what no reader still needs, never waits for a lock.
    const int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    // Busy: another connection (another process on the file) is checkpointing it.
    if (rc == SQLITE_OK || (rc & 0xff) == SQLITE_BUSY) return;
    std::size_t suppressed = 0;
    if (!checkpoint_reports_.allow(&suppressed)) return;
    std::string message = std::string("checkpoint: cannot copy the WAL into the database file: ") +
                          sqlite3_errmsg(db) + "; the WAL holds every commit since the last " +
                          "checkpoint (" + std::to_string(pages) +
                          " pages) and grows until one succeeds";
    if (suppressed > 0) {
        message += " (" + std::to_string(suppressed + 1) +
                   " failed checkpoints since this was last reported)";
    }
    report(message);
}

void Writer::report_commit(std::chrono::duration<double> seconds, std::size_t batch) {
    std::vector<CommitStats> callbacks;
    {
        std::lock_guard lock(mutex_);
        callbacks = commit_stats_;
    }
    for (const auto& callback : callbacks) answer_quietly(callback, seconds, batch);
}

void Writer::note_commit(bool clears_full, bool indexed) {
    std::lock_guard lock(mutex_);
    // Under the same lock as the health: the intake log takes webhooks again once
    // index_failure_ is clear, and by then the store says it is healthy.
    if (indexed) index_failure_.reset();
    // Answered webhooks wait to be indexed, and new ones are refused: not healthy until that
    // work commits.
    if (index_failure_) return;
    if (full_ && !clears_full) return;
    full_ = false;
    health_ = StoreHealth{};
}

void Writer::report_failure(boost::system::error_code code, const std::string& line) {
    report(line);
    note_failure(Failure{code, line}, line);
}

void Writer::note_failure(const Failure& failure, const std::string& detail) {
    std::lock_guard lock(mutex_);
    full_ = failure.code == make_error_code(errc::store_full);
    health_ = StoreHealth{false, detail};
}

}  // namespace hookrelay::store::sqlite
