// The PostgreSQL backend's lifecycle (open, close), background loops (heartbeat, pruning, the
// LISTEN connection), notifications and observers, and the Store members, each of which posts
// its work to the backend's thread.
#include "store/postgres/postgres_store.hpp"

#include "store/postgres/bodies.hpp"
#include "store/postgres/codec.hpp"
#include "store/postgres/core.hpp"
#include "store/postgres/schema.hpp"
#include "util/thread_name.hpp"

#include <hookrelay/json_writer.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <future>

namespace hookrelay::store {
namespace postgres {
namespace {

using Steady = std::chrono::steady_clock;
constexpr auto k_use_tuple = asio::as_tuple(asio::use_awaitable);

// How long open() waits for another instance's migration to finish.
constexpr std::chrono::milliseconds k_migration_timeout{std::chrono::minutes(5)};
// The pool's connections made and warmed up at start (open_pool()); the default pool_size.
constexpr std::size_t k_made_at_start = 4;
// A larger prune interval is treated as this, so the deadline arithmetic cannot overflow.
constexpr std::chrono::milliseconds k_max_prune_interval = std::chrono::hours(24 * 365);

constexpr std::string_view k_register = R"sql(
INSERT INTO instances (id, host, version, started_at, heartbeat_at, jenkins)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at, jenkins = EXCLUDED.jenkins)sql";

constexpr std::string_view k_release_mine = R"sql(
UPDATE triggers SET claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL
WHERE claim_owner = $1 AND claim_id IS NOT NULL)sql";
constexpr std::string_view k_release_my_follows = R"sql(
UPDATE triggers SET follow_claim_id = NULL, follow_owner = NULL, follow_expires_at = NULL
WHERE follow_owner = $1 AND follow_claim_id IS NOT NULL)sql";
constexpr std::string_view k_release_my_statuses = R"sql(
UPDATE triggers SET status_claim_id = NULL, status_owner = NULL, status_expires_at = NULL
WHERE status_owner = $1 AND status_claim_id IS NOT NULL)sql";

constexpr std::string_view k_deregister = "DELETE FROM instances WHERE id = $1";

PoolSettings pool_settings(const StoreConfig& config, const PostgresOptions& options) {
    PoolSettings s;
    s.size = config.postgres.pool_size;
    s.timeouts.connect = config.postgres.connect_timeout;
    s.timeouts.statement = config.postgres.statement_timeout;
    s.timeouts.margin = k_client_margin;
    s.acquire_timeout = config.postgres.statement_timeout;
    s.reconnect_min = options.reconnect_min;
    s.reconnect_max = std::max(config.postgres.reconnect_max, options.reconnect_min);
    s.application_name = "hookrelay " + options.instance_id;
    return s;
}

}  // namespace

Core::Core(const StoreConfig& config, PostgresOptions options, std::shared_ptr<const ConnInfo> info)
    : config_(config),
      options_(std::move(options)),
      info_(std::move(info)),
      pool_(io_.get_executor(), info_, pool_settings(config_, options_)),
      writer_wake_(io_),
      drained_(io_),
      heartbeat_timer_(io_),
      prune_timer_(io_),
      listen_timer_(io_) {
    set_jenkins_urls(options_.jenkins);
}

void Core::set_jenkins_urls(const std::map<std::string, std::string>& urls) {
    JsonWriter w;
    w.begin_object();
    for (const auto& [name, url] : urls) w.member(name, url);
    w.end_object();
    std::lock_guard lock(mutex_);
    jenkins_json_ = w.take();
}

Core::~Core() {
    if (thread_.joinable()) thread_.detach();
}

StoreHealth Core::health() const {
    std::lock_guard lock(mutex_);
    return health_;
}

void Core::add_committed(std::function<void()> callback) {
    std::lock_guard lock(mutex_);
    committed_.push_back(std::move(callback));
}

void Core::add_error(std::function<void(std::string_view)> callback) {
    std::vector<std::string> early;
    {
        std::lock_guard lock(mutex_);
        errors_.push_back(callback);
        early.swap(early_errors_);
    }
    if (early.empty()) return;
    // A weak reference: after close() the io_context never runs again, and the handler must not
    // keep the backend alive from inside it.
    asio::post(io_,
               [weak = weak_from_this(), callback = std::move(callback), early = std::move(early)] {
                   if (auto self = weak.lock()) {
                       for (const std::string& message : early) self->answer(callback, message);
                   }
               });
}

void Core::add_commit_stats(std::function<void(std::chrono::duration<double>, std::size_t)> cb) {
    std::lock_guard lock(mutex_);
    commit_stats_.push_back(std::move(cb));
}

void Core::succeeded() {
    std::lock_guard lock(mutex_);
    health_ = StoreHealth{};
}

void Core::failed(std::string_view what, std::string_view message, errc code) {
    if (code == errc::store_closed) return;  // closing, not a fault
    // Busy (every pooled connection in use, a lock) is load, not a fault: readiness follows the
    // server's reachability, so a busy instance is not taken out of a load balancer.
    if (code != errc::store_busy) {
        std::lock_guard lock(mutex_);
        health_.ok = false;
        health_.detail = "PostgreSQL at " + info_->describe() + ": " + std::string(message);
    }
    report(std::string(what) + " failed: " + std::string(message));
}

void Core::report(std::string_view message) {
    std::vector<std::function<void(std::string_view)>> callbacks;
    {
        std::lock_guard lock(mutex_);
        if (errors_.empty()) {
            // Before anyone listens (while the store opens): kept for the first who does.
            if (early_errors_.size() < k_early_errors) early_errors_.emplace_back(message);
            return;
        }
        callbacks = errors_;
    }
    for (const auto& callback : callbacks) answer(callback, message);
}

void Core::run_committed_observers() {
    std::vector<std::function<void()>> callbacks;
    {
        std::lock_guard lock(mutex_);
        callbacks = committed_;
    }
    for (const auto& callback : callbacks) answer(callback);
}

void Core::finished_one() {
    --active_;
    if (stopping_) drained_.cancel();
}

void Core::loop_ended() {
    --loops_;
    if (stopping_) drained_.cancel();
}

// --- Notifications ----------------------------------------------------------------------------

bool Core::notify_slot() {
    const auto now = Steady::now();
    if (now - last_notify_ >= options_.notify_interval) {
        last_notify_ = now;
        return true;
    }
    if (!notify_pending_ && !stopping_) {
        notify_pending_ = true;
        ++active_;
        asio::co_spawn(io_, deferred_notify(), failed("a deferred NOTIFY", &Core::finished_one));
    }
    return false;
}

Step Core::notify_step() const {
    Params p;
    p.text(k_channel).text(instance_id());
    return Step{"SELECT pg_notify($1, $2)", std::move(p)};
}

asio::awaitable<void> Core::deferred_notify() {
    asio::steady_timer timer(io_);
    timer.expires_at(last_notify_ + options_.notify_interval);
    co_await timer.async_wait(k_use_tuple);
    last_notify_ = Steady::now();
    notify_pending_ = false;
    try {
        auto lease = co_await pool_.acquire();
        Step step = notify_step();
        co_await lease->exec(step.sql, std::move(step.params));
    } catch (const DbError& e) {
        // Other instances find the triggers at their next poll.
        if (e.code() != errc::store_closed) report(std::string("NOTIFY failed: ") + e.what());
    }
    finished_one();
}

// --- Lifecycle --------------------------------------------------------------------------------

result<void> Core::start(std::string* why) {
    work_.emplace(io_.get_executor());
    thread_ = std::thread([self = shared_from_this()] {
        name_this_thread("hookrelay-pg");
        self->io_.run();
    });
    auto opened = std::make_shared<std::promise<void>>();
    std::string reason;
    boost::system::error_code failure;
    asio::co_spawn(io_, open_work(&reason, &failure),
                   [opened](std::exception_ptr) { opened->set_value(); });
    opened->get_future().wait();
    if (failure) {
        close();
        if (why) *why = reason;
        return failure;
    }
    return {};
}

asio::awaitable<void> Core::open_work(std::string* why, boost::system::error_code* failure) {
    try {
        {
            // Given back before the steps below take theirs: a pool of one connection opens.
            auto lease = co_await pool_.acquire();
            co_await migrate(*lease, k_migration_timeout);
        }
        started_at_ = wall_ms();
        co_await register_instance();
        registered_ = true;
        co_await refresh_body_hours();
        const std::int64_t hour = body_hour(wall_ms());
        co_await add_body_hour(hour);
        co_await add_body_hour(hour + 1);
    } catch (const DbError& e) {
        *failure = make_error_code(e.code());
        *why = "PostgreSQL at " + info_->describe() + ": " + e.what();
    } catch (const std::exception& e) {
        *failure = make_error_code(errc::store_unavailable);
        *why = "PostgreSQL at " + info_->describe() + ": " + info_->scrub(e.what());
    }
    if (*failure) co_return;
    // The pool's first connections made and warmed up before open() returns, so that none of
    // the first webhooks after a start waits for that (intake.cpp, rehearse()).
    pool_.set_warm_up([this](Connection& c) { return rehearse(c); });
    co_await open_pool();
    // Listening before open() returns: a commit another instance makes right after this one
    // started is then a notification, not a wait for the next poll. When it fails the listen
    // loop keeps trying, with backoff.
    co_await listen();
    loops_ = 4;
    asio::co_spawn(io_, writer(), failed("the writer", &Core::loop_ended));
    asio::co_spawn(io_, heartbeat_loop(), failed("the heartbeat", &Core::loop_ended));
    asio::co_spawn(io_, prune_loop(), failed("pruning", &Core::loop_ended));
    asio::co_spawn(io_, listen_loop(), failed("the LISTEN connection", &Core::loop_ended));
}

// Takes the pool's first connections (all of them, up to k_made_at_start), so that each is
// made (or taken from the idle ones) and warmed up, and gives them back: 0.15-0.4 s for four on a
// 2-core machine (made side by side instead, they were no faster there). One that cannot be
// made is reported and made when needed, as are those past k_made_at_start.
asio::awaitable<void> Core::open_pool() {
    std::vector<Lease> leases;
    try {
        for (std::size_t i = 0; i < std::min(pool_.settings().size, k_made_at_start); ++i) {
            leases.push_back(co_await pool_.acquire());
        }
    } catch (const DbError& e) {
        report(std::string("opening the pool's connections: ") + e.what());
    }
}

// A coroutine of the backend handles database errors itself; anything else that escapes it ends
// it, is said in the log rather than lost, and is counted as ended (`ended`) so a shutdown does
// not wait for it.
std::function<void(std::exception_ptr)> Core::failed(const char* loop, void (Core::*ended)()) {
    return [self = shared_from_this(), loop, ended](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            self->report(std::string(loop) + " stopped: " + self->info_->scrub(x.what()));
        } catch (...) {
            self->report(std::string(loop) + " stopped: an unknown exception");
        }
        ((*self).*ended)();
    };
}

asio::awaitable<void> Core::listen() {
    const Timeouts timeouts{config_.postgres.connect_timeout, config_.postgres.statement_timeout,
                            k_client_margin};
    listener_ = std::make_unique<Connection>(io_.get_executor(), info_, timeouts,
                                             "hookrelay " + instance_id() + " listen");
    try {
        co_await listener_->connect();
        co_await listener_->exec(k_listen);
    } catch (const DbError& e) {
        listener_.reset();
        report(std::string("LISTEN connection: ") + e.what());
    }
}

asio::awaitable<void> Core::register_instance() {
    Params p;
    p.text(instance_id()).text(options_.host).text(options_.version).int8(started_at_);
    p.int8(wall_ms());
    {
        std::lock_guard lock(mutex_);
        p.text(jenkins_json_);
    }
    auto lease = co_await pool_.acquire();
    co_await lease->exec(k_register, std::move(p));
}

void Core::close() {
    std::unique_lock lock(close_mutex_);
    const bool own_thread = std::this_thread::get_id() == thread_.get_id();
    if (closing_.exchange(true)) {
        // Closed before (or being closed): a second caller waits for the thread too.
        if (!own_thread && thread_.joinable()) thread_.join();
        return;
    }
    if (!thread_.joinable()) return;
    if (own_thread) callbacks_off_ = true;  // close() returns before the work is finished
    auto finished = std::make_shared<std::promise<void>>();
    auto future = finished->get_future();
    asio::co_spawn(io_, shutdown(), [self = shared_from_this(), finished](std::exception_ptr) {
        // With no work left, io_.run() returns and the thread ends.
        self->work_.reset();
        finished->set_value();
    });
    if (own_thread) {
        thread_.detach();
        return;
    }
    future.wait();
    thread_.join();
}

void Core::stop_loops() {
    writer_wake_.cancel();
    heartbeat_timer_.cancel();
    prune_timer_.cancel();
    listen_timer_.cancel();
    if (listener_) listener_->cancel();
}

asio::awaitable<void> Core::shutdown() {
    stopping_ = true;
    stop_loops();
    // Work already posted runs to its end (the writer commits the submissions queued).
    while (active_ > 0 || loops_ > 0 || writer_busy_ || !submits_.empty()) {
        drained_.expires_at(Steady::time_point::max());
        co_await drained_.async_wait(k_use_tuple);
    }
    if (registered_) {
        try {
            std::vector<Step> steps;
            steps.push_back({"BEGIN", {}});
            steps.push_back({k_release_mine, std::move(Params().text(instance_id()))});
            steps.push_back({k_release_my_follows, std::move(Params().text(instance_id()))});
            steps.push_back({k_release_my_statuses, std::move(Params().text(instance_id()))});
            steps.push_back({k_deregister, std::move(Params().text(instance_id()))});
            steps.push_back(notify_step());  // the released triggers are claimable elsewhere
            steps.push_back({"COMMIT", {}});
            auto lease = co_await pool_.acquire();
            co_await lease->pipeline(std::move(steps));
        } catch (const DbError& e) {
            // The claims expire by themselves; the instance drops out of the list.
            report(std::string("releasing this instance's claims at close failed: ") + e.what());
        }
    }
    pool_.close();
}

asio::awaitable<bool> Core::sleep(asio::steady_timer& timer, std::chrono::milliseconds duration) {
    if (stopping_) co_return false;
    timer.expires_after(duration);
    auto [ec] = co_await timer.async_wait(k_use_tuple);
    co_return !ec && !stopping_;
}

// --- Background loops -------------------------------------------------------------------------

asio::awaitable<void> Core::heartbeat_loop() {
    while (co_await sleep(heartbeat_timer_, options_.heartbeat_interval)) {
        ++active_;
        try {
            co_await register_instance();
            succeeded();
        } catch (const DbError& e) {
            failed("heartbeat", e.what(), e.code());
        }
        finished_one();
    }
    loop_ended();
}

asio::awaitable<void> Core::prune_loop() {
    const auto interval = std::min(config_.prune_interval, k_max_prune_interval);
    // The first prune runs at start: a daemon restarted more often than the interval would
    // otherwise never prune.
    if (interval.count() > 0) {
        do {
            ++active_;
            try {
                co_await prune(std::chrono::system_clock::now());
            } catch (const DbError& e) {
                failed("scheduled prune", e.what(), e.code());
            }
            finished_one();
        } while (co_await sleep(prune_timer_, interval));
    }
    loop_ended();
}

asio::awaitable<void> Core::listen_loop() {
    std::chrono::milliseconds backoff{0};
    while (!stopping_) {
        std::optional<DbError> failure;
        try {
            if (!listener_) {
                co_await listen();
                if (!listener_) throw DbError(errc::store_unavailable, "not listening");
                // Notifications sent while this connection was down are lost: look once.
                run_committed_observers();
            }
            backoff = std::chrono::milliseconds(0);
            while (!stopping_) {
                const bool input = co_await listener_->wait_input(options_.listen_ping_interval);
                if (stopping_) break;
                if (!input) co_await listener_->exec("SELECT 1");  // still there?
                bool others = false;
                for (const std::string& payload : listener_->take_notifications()) {
                    others = others || payload != instance_id();
                }
                if (others) run_committed_observers();
            }
        } catch (const DbError& e) {
            failure = e;
        }
        const bool lost = listener_ != nullptr;  // else listen() reported why already
        listener_.reset();
        if (stopping_) break;
        if (failure && lost) report(std::string("LISTEN connection: ") + failure->what());
        backoff = backoff.count() == 0
                      ? options_.reconnect_min
                      : std::min(backoff * 2,
                                 std::max(config_.postgres.reconnect_max, options_.reconnect_min));
        if (!co_await sleep(listen_timer_, backoff)) break;
    }
    loop_ended();
}

}  // namespace postgres

// --- PostgresStore ----------------------------------------------------------------------------

using postgres::Core;

result<std::shared_ptr<PostgresStore>> PostgresStore::open(const StoreConfig& config,
                                                           PostgresOptions options,
                                                           std::string* why) {
    auto info = postgres::ConnInfo::parse(config.postgres.url.reveal(), why, options.lookup);
    if (!info) return make_error_code(errc::bad_config);
    if (options.instance_id.empty()) {
        if (why) *why = "the PostgreSQL store needs an instance id";
        return make_error_code(errc::bad_config);
    }
    auto core = std::make_shared<Core>(config, std::move(options), std::move(info));
    if (auto started = core->start(why); !started) return started.error();
    return std::shared_ptr<PostgresStore>(new PostgresStore(std::move(core)));
}

PostgresStore::PostgresStore(std::shared_ptr<Core> core) : core_(std::move(core)) {}

PostgresStore::~PostgresStore() {
    core_->close();
}

void PostgresStore::close() {
    core_->close();
}

void PostgresStore::set_jenkins_urls(std::map<std::string, std::string> urls) {
    core_->set_jenkins_urls(urls);
}

const std::string& PostgresStore::instance_id() const noexcept {
    return core_->instance_id();
}

StoreHealth PostgresStore::health() const {
    return core_->health();
}

void PostgresStore::on_committed(std::function<void()> callback) {
    core_->add_committed(std::move(callback));
}

void PostgresStore::on_error(std::function<void(std::string_view)> callback) {
    core_->add_error(std::move(callback));
}

void PostgresStore::on_commit_stats(
    std::function<void(std::chrono::duration<double>, std::size_t)> callback) {
    core_->add_commit_stats(std::move(callback));
}

void PostgresStore::submit(DeliveryRecord delivery, std::vector<TriggerRequest> triggers,
                           SubmitHandler done) {
    // The body's digest here, on the submitting (network) thread, not on the core's one thread.
    if (!is_sha256_hex(delivery.body_sha256)) delivery.body_sha256 = sha256_hex(delivery.body);
    core_->post([job = Core::SubmitJob{std::move(delivery), std::move(triggers), std::move(done)}](
                    Core& c) mutable { c.enqueue(std::move(job)); });
}

void PostgresStore::claim(ClaimRequest request, ClaimHandler done) {
    core_->post([request = std::move(request), done = std::move(done)](Core& c) mutable {
        c.spawn("claim", c.claim(std::move(request)), std::move(done));
    });
}

void PostgresStore::renew(std::vector<std::string> claim_ids, TimePoint now,
                          std::chrono::milliseconds lease, TriggerQueue::IdsHandler done) {
    core_->post([ids = std::move(claim_ids), now, lease, done = std::move(done)](Core& c) mutable {
        c.spawn("renew", c.renew(std::move(ids), now, lease), std::move(done));
    });
}

void PostgresStore::complete(std::string claim_id, TriggerUpdate update, CompleteHandler done) {
    core_->post([claim_id = std::move(claim_id), update = std::move(update),
                 done = std::move(done)](Core& c) mutable {
        c.spawn("complete", c.complete(std::move(claim_id), std::move(update)), std::move(done));
    });
}

void PostgresStore::release(std::vector<std::string> claim_ids, VoidHandler done) {
    core_->post([ids = std::move(claim_ids), done = std::move(done)](Core& c) mutable {
        c.spawn("release", c.release(std::move(ids)), std::move(done));
    });
}

void PostgresStore::next_due(std::string jenkins, TimeHandler done) {
    core_->post([jenkins = std::move(jenkins), done = std::move(done)](Core& c) mutable {
        c.spawn("next_due", c.next_due(std::move(jenkins)), std::move(done));
    });
}

void PostgresStore::hold(std::string jenkins, JenkinsHold hold, VoidHandler done) {
    core_->post([jenkins = std::move(jenkins), hold = std::move(hold),
                 done = std::move(done)](Core& c) mutable {
        c.spawn("hold", c.hold(std::move(jenkins), std::move(hold)), std::move(done));
    });
}

void PostgresStore::try_probe(std::string jenkins, TimePoint now, std::chrono::milliseconds lease,
                              HoldHandler done) {
    core_->post(
        [jenkins = std::move(jenkins), now, lease, done = std::move(done)](Core& c) mutable {
            c.spawn("try_probe", c.try_probe(std::move(jenkins), now, lease), std::move(done));
        });
}

void PostgresStore::probe_failed(std::string jenkins, TimePoint next_probe_at, std::string reason,
                                 VoidHandler done) {
    core_->post([jenkins = std::move(jenkins), next_probe_at, reason = std::move(reason),
                 done = std::move(done)](Core& c) mutable {
        c.spawn("probe_failed",
                c.probe_failed(std::move(jenkins), next_probe_at, std::move(reason)),
                std::move(done));
    });
}

void PostgresStore::unhold(std::string jenkins, VoidHandler done) {
    core_->post([jenkins = std::move(jenkins), done = std::move(done)](Core& c) mutable {
        c.spawn("unhold", c.unhold(std::move(jenkins)), std::move(done));
    });
}

void PostgresStore::queued_predecessors(std::string id, std::size_t limit,
                                        PredecessorsHandler done) {
    core_->post([id = std::move(id), limit, done = std::move(done)](Core& c) mutable {
        c.spawn("queued predecessors", c.queued_predecessors(std::move(id), limit),
                std::move(done));
    });
}

void PostgresStore::add_note(std::string id, Attempt note, VoidHandler done) {
    core_->post(
        [id = std::move(id), note = std::move(note), done = std::move(done)](Core& c) mutable {
            c.spawn("add note", c.add_note(std::move(id), std::move(note)), std::move(done));
        });
}

void PostgresStore::forget_scan(std::string jenkins, std::string project, TimePoint requested_at,
                                VoidHandler done) {
    core_->post([jenkins = std::move(jenkins), project = std::move(project), requested_at,
                 done = std::move(done)](Core& c) mutable {
        c.spawn("forget scan", c.forget_scan(std::move(jenkins), std::move(project), requested_at),
                std::move(done));
    });
}

void PostgresStore::request_scan(std::string jenkins, std::string project, TimePoint since,
                                 TimePoint now, std::chrono::milliseconds interval,
                                 ScanHandler done) {
    core_->post([jenkins = std::move(jenkins), project = std::move(project), since, now, interval,
                 done = std::move(done)](Core& c) mutable {
        c.spawn("request scan",
                c.request_scan(std::move(jenkins), std::move(project), since, now, interval),
                std::move(done));
    });
}

void PostgresStore::claim_chores(ChoreRequest request, ChoreHandler done) {
    core_->post([request = std::move(request), done = std::move(done)](Core& c) mutable {
        c.spawn("claim chores", c.claim_chores(std::move(request)), std::move(done));
    });
}

void PostgresStore::complete_chore(Chore chore, std::string claim_id, ChoreUpdate update,
                                   CompleteHandler done) {
    core_->post([chore, claim_id = std::move(claim_id), update = std::move(update),
                 done = std::move(done)](Core& c) mutable {
        c.spawn("complete chore", c.complete_chore(chore, std::move(claim_id), std::move(update)),
                std::move(done));
    });
}

void PostgresStore::complete_and_claim(Chore chore, std::string claim_id, ChoreUpdate update,
                                       ChoreRequest next, CompleteAndClaimHandler done) {
    core_->post([chore, claim_id = std::move(claim_id), update = std::move(update),
                 next = std::move(next), done = std::move(done)](Core& c) mutable {
        c.spawn(
            "complete chore and claim",
            c.complete_and_claim(chore, std::move(claim_id), std::move(update), std::move(next)),
            std::move(done));
    });
}

void PostgresStore::release_chores(Chore chore, std::vector<std::string> claim_ids,
                                   std::function<void(result<void>)> done) {
    core_->post([chore, claim_ids = std::move(claim_ids), done = std::move(done)](Core& c) mutable {
        c.spawn("release chore claims", c.release_chores(chore, std::move(claim_ids)),
                std::move(done));
    });
}

void PostgresStore::list_deliveries(DeliveryQuery query, PageHandler done) {
    core_->post([query = std::move(query), done = std::move(done)](Core& c) mutable {
        c.spawn("list deliveries", c.list_deliveries(std::move(query)), std::move(done));
    });
}

void PostgresStore::get_delivery(std::string source, std::string delivery_id, DetailHandler done) {
    core_->post([source = std::move(source), delivery_id = std::move(delivery_id),
                 done = std::move(done)](Core& c) mutable {
        c.spawn("get delivery", c.get_delivery(std::move(source), std::move(delivery_id)),
                std::move(done));
    });
}

void PostgresStore::get_delivery_of_trigger(std::string trigger_id, DetailHandler done) {
    core_->post([trigger_id = std::move(trigger_id), done = std::move(done)](Core& c) mutable {
        c.spawn("get delivery of trigger", c.get_delivery_of_trigger(std::move(trigger_id)),
                std::move(done));
    });
}

void PostgresStore::replay(std::vector<std::string> trigger_ids, TimePoint now,
                           AdminQueries::ReplayHandler done) {
    core_->post([ids = std::move(trigger_ids), now, done = std::move(done)](Core& c) mutable {
        c.spawn("replay", c.replay(std::move(ids), now), std::move(done));
    });
}

void PostgresStore::replay_matching(ReplayQuery query, TimePoint now,
                                    AdminQueries::ReplayHandler done) {
    core_->post([query = std::move(query), now, done = std::move(done)](Core& c) mutable {
        c.spawn("replay matching", c.replay_matching(std::move(query), now), std::move(done));
    });
}

void PostgresStore::add_triggers(std::string source, std::string delivery_id,
                                 std::vector<TriggerRequest> triggers,
                                 AdminQueries::IdsHandler done) {
    core_->post([source = std::move(source), delivery_id = std::move(delivery_id),
                 triggers = std::move(triggers), done = std::move(done)](Core& c) mutable {
        c.spawn("add triggers",
                c.add_triggers(std::move(source), std::move(delivery_id), std::move(triggers)),
                std::move(done));
    });
}

void PostgresStore::backlog(CountsHandler done) {
    core_->post([done = std::move(done)](Core& c) mutable {
        c.spawn("backlog", c.backlog(), std::move(done));
    });
}

void PostgresStore::instances(InstancesHandler done) {
    core_->post([done = std::move(done)](Core& c) mutable {
        c.spawn("instances", c.instances(), std::move(done));
    });
}

void PostgresStore::holds(HoldsHandler done) {
    core_->post([done = std::move(done)](Core& c) mutable {
        c.spawn("holds", c.holds(), std::move(done));
    });
}

void PostgresStore::prune(TimePoint now, std::function<void(result<std::size_t>)> done) {
    core_->post([now, done = std::move(done)](Core& c) mutable {
        c.spawn("prune", c.prune(now), std::move(done));
    });
}

}  // namespace hookrelay::store
