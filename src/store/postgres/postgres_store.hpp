// The PostgreSQL backend: several hookrelay instances sharing one database.
//
// Design notes
// - Client: libpq, from Debian's libpq-dev, not libpqxx. bookworm's libpqxx is 6.4 (2019): a
//   blocking API without pipeline mode, which would need a thread per connection. libpq has a
//   complete non-blocking API (PQconnectStartParams/PQconnectPoll, PQsendQueryPrepared,
//   PQconsumeInput, PQnotifies) and pipeline mode; its socket goes into an Asio
//   posix::stream_descriptor and is awaited with async_wait, so a few connections serve every
//   caller from one thread. A thin RAII layer (connection.hpp) is all the wrapping needed.
// - Threads: the backend runs on its OWN thread and io_context, never on the network threads.
//   Every public member posts its work there and returns; `done` runs on that thread.
// - Connections: a pool of StoreConfig::Postgres::pool_size connections, the first four made
//   and warmed up at open (each runs every kind of submit once, rolled back), the others on
//   demand and warmed up before their first use, plus one LISTEN connection. Every statement runs
//   under statement_timeout (set on the server for the session) and a client-side deadline a little
//   longer; connects under connect_timeout. After a failed connect the pool waits out a backoff
//   (doubling up to reconnect_max) and answers store_unavailable at once meanwhile, so a webhook
//   gets its 503 quickly while the server is down. health() is not ok after a failure, ok again
//   after a success.
// - Accept (submit): group commit as in SQLite: submissions waiting together go into one
//   transaction, each as one statement (insert the delivery ON CONFLICT DO NOTHING, its triggers
//   from arrays), pipelined in one round trip, committed synchronously. (source, delivery_id) is
//   a unique constraint, so the same delivery posted to two instances at once is accepted once.
//   Body-window deduplication takes a transaction advisory lock per body key, so it holds
//   across instances too.
// - Claim: FOR UPDATE SKIP LOCKED, and each claimed trigger gets a random claim_id (the fencing
//   token complete() must present) and claim_expires_at. With a max_in_flight cap, counting the
//   live claims of that Jenkins and claiming happen under a transaction advisory lock keyed by
//   the Jenkins, so concurrent claims from any instances never exceed the cap together.
// - Chores (chores.cpp): the follow and status chores are columns of the trigger with leases of
//   their own, claimed like triggers (SKIP LOCKED, claim ids, an advisory lock per Jenkins or
//   source under a cap); partial indexes hold only the open and the claimed ones. A trigger's
//   `outcome` (trigger_outcome()) is stored with each write, for the listing's filter: complete()
//   computes it from the update in its one round trip, unless it depends on what is stored
//   (then it reads the row first, in the same transaction).
// - Holds, probe leases and the instance registry are tables; the instance heartbeats from the
//   backend's thread every DispatchConfig::claim_renew_interval.
// - Wake-ups: commits that make triggers claimable NOTIFY channel hookrelay_due (payload: the
//   instance id), at most once per notify_interval per instance (a deferred NOTIFY covers the
//   rest); a dedicated LISTEN connection (reconnecting, pinged when idle) runs the on_committed
//   observers for other instances' notifications, and once after each reconnect. The
//   dispatcher's poll stays the safety net.
// - Schema: versioned migrations at open, in one transaction under an advisory lock (N
//   instances starting at once migrate once); a newer schema than this build knows is refused
//   with errc::store_incompatible. Retention pruning takes pg_try_advisory_lock: one instance
//   at a time, the others skip.
// - Secrets: the URL's password is never in an error, a health detail or a log line
//   (ConnInfo::scrub).
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/store.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::store {

namespace postgres {
class Core;
}

/// What the PostgreSQL backend needs beyond StoreConfig.
struct PostgresOptions {
    std::string instance_id;  ///< this daemon's id in the store; required, unique per daemon
    std::string host;         ///< shown in the instance list
    std::string version;      ///< shown in the instance list
    /// This instance's Jenkins entries (name → url) at open; set_jenkins_urls() after a reload.
    std::map<std::string, std::string> jenkins;
    /// DispatchConfig::claim_lease: instances() lists those with a heartbeat within 3 leases.
    std::chrono::milliseconds claim_lease{10'000};
    /// DispatchConfig::claim_renew_interval: how often the instance heartbeats.
    std::chrono::milliseconds heartbeat_interval{2'000};
    /// At most one NOTIFY per this interval from this instance; later ones are coalesced.
    std::chrono::milliseconds notify_interval{100};
    /// An idle LISTEN connection checks it still works this often (a lost one reconnects).
    std::chrono::milliseconds listen_ping_interval{10'000};
    /// The first reconnect delay after a failed connect (doubled up to reconnect_max).
    std::chrono::milliseconds reconnect_min{100};
    /// Tests: how the URL's host names are looked up (`done` gets the addresses, or why there
    /// are none; it may be called late or never). Unset: getaddrinfo on a thread of its own,
    /// within connect_timeout.
    std::function<void(const std::string& host,
                       std::function<void(std::vector<std::string>, std::string)> done)>
        lookup;
};

/// Store on a PostgreSQL database (store.backend: postgres). See the design notes above; the
/// contract of every member is the Store's (include/hookrelay/store.hpp).
class PostgresStore final : public Store {
  public:
    /// Connects (within connect_timeout), migrates the schema, registers the instance and starts
    /// the backend's thread. Blocking: call it at start-up, not on a network thread. Errors:
    /// store_unavailable (invalid URL, cannot connect), store_incompatible (schema newer than
    /// this build, or not a hookrelay database), store_timeout; `why` (when given) gets one
    /// line for the operator, naming the server but never the password.
    static result<std::shared_ptr<PostgresStore>> open(const StoreConfig& config,
                                                       PostgresOptions options,
                                                       std::string* why = nullptr);

    ~PostgresStore() override;
    PostgresStore(const PostgresStore&) = delete;
    PostgresStore& operator=(const PostgresStore&) = delete;

    void submit(DeliveryRecord delivery, std::vector<TriggerRequest> triggers,
                SubmitHandler done) override;

    void claim(ClaimRequest request, ClaimHandler done) override;
    void renew(std::vector<std::string> claim_ids, TimePoint now, std::chrono::milliseconds lease,
               TriggerQueue::IdsHandler done) override;
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

    void claim_chores(ChoreRequest request, ChoreHandler done) override;
    void complete_chore(Chore chore, std::string claim_id, ChoreUpdate update,
                        CompleteHandler done) override;
    void complete_and_claim(Chore chore, std::string claim_id, ChoreUpdate update,
                            ChoreRequest next, CompleteAndClaimHandler done) override;
    void release_chores(Chore chore, std::vector<std::string> claim_ids,
                        std::function<void(result<void>)> done) override;

    void list_deliveries(DeliveryQuery query, PageHandler done) override;
    void get_delivery(std::string source, std::string delivery_id, DetailHandler done) override;
    void get_delivery_of_trigger(std::string trigger_id, DetailHandler done) override;
    void replay(std::vector<std::string> trigger_ids, TimePoint now,
                AdminQueries::ReplayHandler done) override;
    void replay_matching(ReplayQuery query, TimePoint now,
                         AdminQueries::ReplayHandler done) override;
    void add_triggers(std::string source, std::string delivery_id,
                      std::vector<TriggerRequest> triggers, AdminQueries::IdsHandler done) override;
    void backlog(CountsHandler done) override;
    void instances(InstancesHandler done) override;
    void holds(HoldsHandler done) override;

    std::string_view kind() const noexcept override { return "postgres"; }
    void set_jenkins_urls(std::map<std::string, std::string> urls) override;
    const std::string& instance_id() const noexcept override;
    StoreHealth health() const override;
    void close() override;
    void prune(TimePoint now, std::function<void(result<std::size_t>)> done) override;

    void on_committed(std::function<void()> callback) override;
    void on_error(std::function<void(std::string_view)> callback) override;
    void on_commit_stats(
        std::function<void(std::chrono::duration<double>, std::size_t)> callback) override;

    /// Largest page list_deliveries() answers.
    static constexpr std::size_t k_max_page = 1000;

  private:
    explicit PostgresStore(std::shared_ptr<postgres::Core> core);

    std::shared_ptr<postgres::Core> core_;
};

}  // namespace hookrelay::store
