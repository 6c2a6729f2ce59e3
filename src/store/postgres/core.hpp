// The PostgreSQL backend's engine: its thread and io_context, the pool, the operations as
// coroutines (intake.cpp, queue.cpp, admin.cpp), the background loops and the observers.
// Implementation header of the backend; pulls in Asio.
#pragma once

#include "store/postgres/connection.hpp"
#include "store/postgres/pool.hpp"
#include "store/postgres/postgres_store.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace hookrelay::store::postgres {

namespace asio = boost::asio;

/// The NOTIFY channel of "triggers became claimable"; the payload is the sender's instance id.
inline constexpr std::string_view k_channel = "hookrelay_due";
inline constexpr std::string_view k_listen = "LISTEN hookrelay_due";
/// The client-side deadline of a statement is statement_timeout plus this, so the server's own
/// timeout (which leaves the connection usable) normally comes first.
inline constexpr std::chrono::milliseconds k_client_margin{1'000};

class Core : public std::enable_shared_from_this<Core> {
  public:
    Core(const StoreConfig& config, PostgresOptions options, std::shared_ptr<const ConnInfo> info);
    ~Core();
    Core(const Core&) = delete;
    Core& operator=(const Core&) = delete;

    /// Starts the thread, connects, migrates and registers the instance; then the background
    /// loops. Blocking. On failure the thread is stopped again.
    result<void> start(std::string* why);
    /// See Store::close().
    void close();

    /// Runs `fn(*this)` on the backend's thread, unless the store is closing (then never).
    template <class Fn>
    void post(Fn fn) {
        if (closing_.load()) return;
        asio::post(io_, [self = shared_from_this(), fn = std::move(fn)]() mutable { fn(*self); });
    }

    /// On the backend's thread: runs `work` and answers `done` with its value or its failure.
    template <class T>
    void spawn(const char* what, asio::awaitable<T> work, std::function<void(result<T>)> done) {
        ++active_;
        asio::co_spawn(io_, guarded<T>(what, std::move(work), std::move(done)),
                       [self = shared_from_this()](std::exception_ptr) {});
    }

    const std::string& instance_id() const noexcept { return options_.instance_id; }
    /// This instance's Jenkins entries, written with its next heartbeat (any thread).
    void set_jenkins_urls(const std::map<std::string, std::string>& urls);
    const StoreConfig& config() const noexcept { return config_; }
    const PostgresOptions& options() const noexcept { return options_; }
    StoreHealth health() const;

    // --- Observers (any thread to register; run on the backend's thread).
    void add_committed(std::function<void()> callback);
    void add_error(std::function<void(std::string_view)> callback);
    void add_commit_stats(std::function<void(std::chrono::duration<double>, std::size_t)> cb);

    // --- Accepting deliveries (intake.cpp).
    struct SubmitJob {
        DeliveryRecord delivery;
        std::vector<TriggerRequest> triggers;
        DeliveryIntake::SubmitHandler done;
    };
    void enqueue(SubmitJob job);

    // --- The trigger queue (queue.cpp).
    asio::awaitable<ClaimBatch> claim(ClaimRequest request);
    asio::awaitable<std::vector<std::string>> renew(std::vector<std::string> claim_ids,
                                                    TimePoint now, std::chrono::milliseconds lease);
    asio::awaitable<Completion> complete(std::string claim_id, TriggerUpdate update);
    asio::awaitable<std::vector<QueuedPredecessor>> queued_predecessors(std::string id,
                                                                        std::size_t limit);
    asio::awaitable<void> add_note(std::string id, Attempt note);
    asio::awaitable<void> forget_scan(std::string jenkins, std::string project,
                                      TimePoint requested_at);
    asio::awaitable<ScanGate> request_scan(std::string jenkins, std::string project,
                                           TimePoint since, TimePoint now,
                                           std::chrono::milliseconds interval);
    asio::awaitable<void> release(std::vector<std::string> claim_ids);
    asio::awaitable<std::optional<TimePoint>> next_due(std::string jenkins);
    asio::awaitable<void> hold(std::string jenkins, JenkinsHold hold);
    asio::awaitable<std::optional<JenkinsHold>> try_probe(std::string jenkins, TimePoint now,
                                                          std::chrono::milliseconds lease);
    asio::awaitable<void> probe_failed(std::string jenkins, TimePoint next_probe_at,
                                       std::string reason);
    asio::awaitable<void> unhold(std::string jenkins);

    // --- Chores (chores.cpp).
    asio::awaitable<ChoreBatch> claim_chores(ChoreRequest request);
    asio::awaitable<Completion> complete_chore(Chore chore, std::string claim_id,
                                               ChoreUpdate update);
    /// complete_chore(), then claim_chores(next): two transactions, one call into the core.
    asio::awaitable<CompletionAndClaims> complete_and_claim(Chore chore, std::string claim_id,
                                                            ChoreUpdate update, ChoreRequest next);
    asio::awaitable<void> release_chores(Chore chore, std::vector<std::string> claim_ids);

    // --- Admin queries (admin.cpp).
    asio::awaitable<DeliveryPage> list_deliveries(DeliveryQuery query);
    asio::awaitable<std::optional<DeliveryDetail>> get_delivery(std::string source,
                                                                std::string delivery_id);
    asio::awaitable<std::optional<DeliveryDetail>> get_delivery_of_trigger(std::string trigger_id);
    asio::awaitable<Replayed> replay(std::vector<std::string> trigger_ids, TimePoint now);
    asio::awaitable<Replayed> replay_matching(ReplayQuery query, TimePoint now);
    asio::awaitable<std::vector<std::string>> add_triggers(std::string source,
                                                           std::string delivery_id,
                                                           std::vector<TriggerRequest> triggers);
    asio::awaitable<std::vector<std::pair<std::string, std::size_t>>> backlog();
    asio::awaitable<std::vector<InstanceInfo>> instances();
    asio::awaitable<std::map<std::string, JenkinsHold>> holds();
    asio::awaitable<std::size_t> prune(TimePoint now);

  private:
    template <class T>
    asio::awaitable<void> guarded(const char* what, asio::awaitable<T> work,
                                  std::function<void(result<T>)> done) {
        std::optional<result<T>> out;
        try {
            if constexpr (std::is_void_v<T>) {
                co_await std::move(work);
                out.emplace();
            } else {
                out.emplace(co_await std::move(work));
            }
            succeeded();
        } catch (const DbError& e) {
            out.emplace(make_error_code(e.code()));
            failed(what, e.what(), e.code());
        } catch (const std::exception& e) {
            out.emplace(make_error_code(errc::store_unavailable));
            failed(what, e.what(), errc::store_unavailable);
        }
        answer(done, std::move(*out));
        finished_one();
    }

    template <class Handler, class... Args>
    void answer(const Handler& done, Args&&... args) noexcept {
        if (callbacks_off_.load() || !done) return;
        try {
            done(std::forward<Args>(args)...);
        } catch (...) {
            // The caller's handler threw; the work is answered either way.
        }
    }

    void succeeded();
    void failed(std::string_view what, std::string_view message, errc code);
    void report(std::string_view message);
    void finished_one();
    void loop_ended();
    /// The on_committed observers, on the backend's thread.
    void run_committed_observers();

    // queue.cpp: complete() of an update that leaves the trigger open (it may be superseded).
    asio::awaitable<Completion> complete_open(Connection& connection, std::string claim_id,
                                              TriggerUpdate update);
    /// queue.cpp: an outcome complete() recorded with others (record_outcomes()).
    struct PendingOutcome;
    /// Records the outcomes waiting in outcomes_, a transaction of them at a time, until none
    /// is left; answers each.
    asio::awaitable<void> record_outcomes();
    /// One transaction recording `group`; throws DbError when it failed.
    asio::awaitable<void> record_outcome_group(std::vector<std::shared_ptr<PendingOutcome>> group);
    void outcomes_recorded();

    // intake.cpp
    asio::awaitable<void> writer();
    asio::awaitable<void> commit_batch(std::vector<SubmitJob> jobs);
    /// A submit transaction's steps, from BEGIN to the last submit (no NOTIFY, no COMMIT): the
    /// steps, the index of the first submit's answer among them, the trigger ids they queue.
    struct SubmitSteps {
        std::vector<Step> steps;
        std::size_t first_answer = 0;
        std::vector<std::vector<std::string>> trigger_ids;
        bool any_triggers = false;
    };
    SubmitSteps submit_steps(std::span<const SubmitJob> jobs);
    /// Each kind of submit, rolled back, on a new connection (the pool's warm-up).
    asio::awaitable<void> rehearse(Connection& connection);
    /// One transaction for jobs[first, first + count); throws DbError when it failed.
    asio::awaitable<std::vector<result<Receipt>>> run_batch(std::vector<SubmitJob>& jobs,
                                                            std::size_t first, std::size_t count);

    // bodies.cpp: the hours of the bodies table (schema version 8).
    /// Reads which hours have a partition (attached, not being detached) into body_hours_.
    asio::awaitable<void> refresh_body_hours();
    /// Adds the partition of `hour` (hours since the epoch) unless it is there. A failure is
    /// reported, and the hour not tried again for a while.
    asio::awaitable<void> add_body_hour(std::int64_t hour);
    /// Whether a body received in `hour` goes to the bodies table; starts adding the partitions
    /// of that hour and the next in the background when they are missing (the body goes to
    /// deliveries.body meanwhile: a submit never waits for DDL).
    bool body_hour_ready(std::int64_t hour);
    bool want_body_hour(std::int64_t hour);
    asio::awaitable<void> adding_body_hour(std::int64_t hour);
    /// In a prune pass (`c` holds the prune lock): drops the partitions of the hours that ended
    /// at or before `cutoff` (ms) and whose deliveries are all gone.
    asio::awaitable<void> drop_expired_body_hours(Connection& c, std::int64_t cutoff);
    /// The schema-qualified name of `hour`'s table.
    std::string body_table(std::int64_t hour) const;
    /// The body of delivery `delivery` (its seq) in the bodies table, if there.
    asio::awaitable<std::optional<std::string>> read_body(Connection& c, std::int64_t delivery,
                                                          std::int64_t received_ms);

    // Notifications and observers.
    /// Whether this commit may NOTIFY now (at most one per notify_interval); otherwise a
    /// deferred NOTIFY is scheduled. Backend thread only.
    bool notify_slot();
    /// The pg_notify step for a transaction.
    Step notify_step() const;
    asio::awaitable<void> deferred_notify();

    // Background loops (postgres_store.cpp).
    asio::awaitable<void> heartbeat_loop();
    asio::awaitable<void> prune_loop();
    asio::awaitable<void> listen_loop();
    /// Connects listener_ and LISTENs; on failure reports it and leaves listener_ empty.
    asio::awaitable<void> listen();
    /// The completion handler of a spawned coroutine: logs what escaped it, then calls `ended`.
    std::function<void(std::exception_ptr)> failed(const char* what, void (Core::*ended)());
    asio::awaitable<void> register_instance();
    asio::awaitable<void> shutdown();
    asio::awaitable<void> open_work(std::string* why, boost::system::error_code* failure);
    /// Makes (and warms up) the pool's first connections, up to four.
    asio::awaitable<void> open_pool();
    void stop_loops();
    /// Sleeps on `timer` for `duration` (false when cancelled or stopping).
    asio::awaitable<bool> sleep(asio::steady_timer& timer, std::chrono::milliseconds duration);

    // Declared first: destroyed last, after every I/O object below.
    asio::io_context io_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;

    const StoreConfig config_;
    const PostgresOptions options_;
    std::shared_ptr<const ConnInfo> info_;
    Pool pool_;

    // Backend thread only.
    std::deque<SubmitJob> submits_;
    asio::steady_timer writer_wake_;
    bool writer_busy_ = false;
    std::size_t active_ = 0;
    /// Outcomes waiting for record_outcomes(), and whether it runs.
    std::deque<std::shared_ptr<PendingOutcome>> outcomes_;
    bool recording_outcomes_ = false;
    bool stopping_ = false;
    asio::steady_timer drained_;
    asio::steady_timer heartbeat_timer_;
    asio::steady_timer prune_timer_;
    asio::steady_timer listen_timer_;
    std::unique_ptr<Connection> listener_;
    std::chrono::steady_clock::time_point last_notify_{};
    bool notify_pending_ = false;
    std::int64_t started_at_ = 0;
    bool registered_ = false;
    std::size_t loops_ = 0;                     // background loops still running
    bool bodies_table_ = false;                 // there is one (PostgreSQL 14 or later)
    std::string bodies_schema_;                 // its schema, quoted
    std::set<std::int64_t> body_hours_;         // hours whose partition of bodies is there
    std::set<std::int64_t> body_hours_adding_;  // being added in the background
    std::map<std::int64_t, std::chrono::steady_clock::time_point> body_hours_failed_;  // retry then

    // Any thread.
    std::atomic<bool> closing_{false};
    std::atomic<bool> callbacks_off_{false};
    mutable std::mutex mutex_;
    StoreHealth health_;
    std::string jenkins_json_;  // set_jenkins_urls(), as the heartbeat writes it
    std::vector<std::function<void()>> committed_;
    std::vector<std::function<void(std::string_view)>> errors_;
    /// What report() said before an on_error observer was registered, for the first one.
    static constexpr std::size_t k_early_errors = 16;
    std::vector<std::string> early_errors_;
    std::vector<std::function<void(std::chrono::duration<double>, std::size_t)>> commit_stats_;
    std::thread thread_;
    std::mutex close_mutex_;
};

}  // namespace hookrelay::store::postgres
