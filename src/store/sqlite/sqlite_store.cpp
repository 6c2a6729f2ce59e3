#include "store/sqlite/sqlite_store.hpp"

#include "store/codec.hpp"
#include "store/factory.hpp"
#include "store/sqlite/gathering_vfs.hpp"
#include "store/sqlite/intake_logger.hpp"
#include "store/sqlite/intake_record.hpp"
#include "store/sqlite/prune.hpp"
#include "store/sqlite/schema.hpp"
#include "store/sqlite/writer.hpp"
#include "util/rate_limit.hpp"

#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <utility>

namespace hookrelay::store::sqlite {
namespace {

using Clock = std::chrono::system_clock;
using Mode = Writer::Mode;

constexpr const char* k_db_file = "hookrelay.db";
// instances() lists those heard from within this many leases.
constexpr int k_instance_leases = 3;

std::string host_name() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0) return "unknown";
    return name;
}

}  // namespace

namespace {

// How much lower the store's thread runs than the network threads with the intake log (which
// answers webhooks without it): under contention for the CPU, accepting comes first, and index
// work, claims and outcomes take what is left (docs/performance.md, "The store's thread below
// the network threads"). Not without the log, nor where deliveries go the ordinary way
// (SqliteOptions::store_thread_yields): then answers wait for this thread.
constexpr int k_store_nice_with_log = 5;

// With the intake log: about how much memory the records answered and not yet indexed may hold
// before the log waits for the index (IntakeLogger), whatever store.max_batch allows: ~1,900
// GitHub pushes. Under the load of bench/load/profile.sh the daemon's peak RSS was 49-51 MB with
// it, and 46-101 MB with the 4,096 records that 8 x max_batch allows (docs/performance.md).
constexpr std::size_t k_max_unindexed_bytes = 16u << 20;

// The intake log's directory in a state directory.
std::filesystem::path intake_dir(const std::string& state_dir) {
    return std::filesystem::path(state_dir) / "intake";
}

// Opens the log in `o.dir` and decodes every record it holds beyond `released_through` (records
// answered before the last stop or crash and not indexed then) into the writer's index work, in
// order. Throws on failure.
std::unique_ptr<IntakeLog> replay_intake_log(const IntakeLog::Options& o,
                                             std::uint64_t released_through,
                                             std::vector<Writer::Submit>& replayed) {
    std::string undecodable;
    std::string why;
    auto log = IntakeLog::open(
        o, released_through,
        [&](const IntakeLog::Position& at, std::string_view payload) {
            auto record = decode_intake_record(payload);
            if (!record) {
                if (undecodable.empty()) undecodable = std::to_string(at.seq);
                return;
            }
            Writer::Submit job;
            job.delivery = std::move(record->delivery);
            job.triggers = std::move(record->triggers);
            job.body = std::move(record->stored_body);
            job.reasons = std::move(record->reasons);
            job.log_seq = at.seq;
            job.trigger_ids = std::move(record->trigger_ids);
            job.held_bytes = IntakeLogger::held_estimate(payload.size());
            replayed.push_back(std::move(job));
        },
        &why);
    if (!log) throw StoreError(static_cast<errc>(log.error().value()), why);
    if (!undecodable.empty()) {
        throw StoreError(errc::store_incompatible,
                         "intake log record " + undecodable + " in " + o.dir.string() +
                             " is not one this hookrelay can read (written by another "
                             "version?); run that version to index it, or move the directory "
                             "away");
    }
    return std::move(*log);
}

// The file in the intake log's directory that lets a start index the log into a database that
// is not the log's (check_log_identity); removed once it has.
constexpr const char* k_adopt_file = "adopt";

// Ties the intake log in `dir` to the database at `db_path`: both hold the same id
// (IntakeLog::read_id, Writer::intake_log_id). A log whose id the database does not hold
// (another, or none: a new file, or a copy from before the ids), or a log without one next to a
// database made at this start (`new_database`; the log is from before the ids), was written for
// another database: when it holds records beyond this database's position (`unindexed`),
// indexing them would queue their builds again, so the start is refused
// (errc::store_incompatible) unless <dir>/adopt asks for it; that file is removed (and the
// removal synced) before anything is recorded, so that it never outlives the one start it was
// made for. Otherwise the database takes the log's id, or a log without one the database's (a
// new one for both when it has none), the database's written first: a crash between the two
// writes leaves a log without an id, which takes it. Throws on failure.
void check_log_identity(const std::filesystem::path& dir, const std::string& db_path,
                        bool new_database, Writer& writer, std::size_t unindexed,
                        const std::function<void(const std::string&)>& warn) {
    std::string why;
    const auto log_id = IntakeLog::read_id(dir, &why);
    if (!log_id) throw StoreError(errc::store_unavailable, why);
    const std::string db_id = writer.intake_log_id();
    const auto adopt = dir / k_adopt_file;
    std::error_code ec;
    const bool adopting = std::filesystem::exists(adopt, ec);
    const bool foreign = log_id->empty() ? new_database : *log_id != db_id;
    if (foreign && unindexed > 0) {
        if (!adopting) {
            throw StoreError(
                errc::store_incompatible,
                "the intake log in " + dir.string() + " was written for another database (its id " +
                    (log_id->empty() ? std::string("none: older than the ids") : *log_id) +
                    "; the database's " +
                    (db_id.empty() ? std::string("none: a new file, or a copy older than the log")
                                   : db_id) +
                    ") and holds " + std::to_string(unindexed) +
                    " deliveries this database has not indexed: indexing them would send their "
                    "builds to Jenkins again. Start on the database the log was written with, or "
                    "move " +
                    dir.string() +
                    " away to start without those deliveries; to index them into this database "
                    "all the same, create the file " +
                    adopt.string() + " and start again");
        }
        if (warn) {
            warn("intake log: indexing " + std::to_string(unindexed) + " deliveries of " +
                 dir.string() + " into " + db_path +
                 ", a database the log was not written for, as " + adopt.string() +
                 " asks; builds they queued before may run again");
        }
    } else if (adopting && warn) {
        warn("intake log: " + adopt.string() +
             " removed: the log and the database go together, nothing to adopt");
    }
    if (adopting) {
        std::filesystem::remove(adopt, ec);
        if (ec || !IntakeLog::sync(dir, &why)) {
            throw StoreError(errc::store_unavailable,
                             ec ? "cannot remove " + adopt.string() + ": " + ec.message() : why);
        }
    }
    if (!log_id->empty()) {
        if (*log_id != db_id) writer.set_intake_log_id(*log_id);
        return;
    }
    const std::string id = db_id.empty() ? random_hex(16) : db_id;
    if (db_id.empty()) writer.set_intake_log_id(id);
    if (!IntakeLog::write_id(dir, id, &why)) throw StoreError(errc::store_unavailable, why);
}

// replay_intake_log() of <state_dir>/intake into `replayed`, then check_log_identity(); the
// scan's warnings go to `warn` only once the log is known to be this database's, so that a
// refused start says why alone. Throws on failure.
std::unique_ptr<IntakeLog> replay_own_log(const std::string& state_dir, const std::string& db_path,
                                          bool new_database, Writer& writer,
                                          const std::function<void(const std::string&)>& warn,
                                          std::vector<Writer::Submit>& replayed) {
    IntakeLog::Options o;
    o.dir = intake_dir(state_dir);
    std::vector<std::string> warnings;
    o.warn = [&](const std::string& line) { warnings.push_back(line); };
    auto log = replay_intake_log(o, writer.intake_position(), replayed);
    check_log_identity(o.dir, db_path, new_database, writer, replayed.size(), warn);
    if (warn) {
        for (const auto& line : warnings) warn(line);
    }
    return log;
}

// Opens <state_dir>/intake, indexes what it holds beyond the database's intake_position, and
// makes the log's thread. Throws on failure.
std::shared_ptr<IntakeLogger> open_intake_log(const std::string& state_dir,
                                              const std::string& db_path, bool new_database,
                                              const StoreConfig& config,
                                              const SqliteOptions& options,
                                              const std::shared_ptr<Writer>& writer) {
    std::vector<Writer::Submit> replayed;
    auto log = replay_own_log(state_dir, db_path, new_database, *writer, options.warn, replayed);
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(db_path.c_str(), &raw,
                                   SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, gathering_vfs());
    DbPtr read(raw);
    if (rc != SQLITE_OK) {
        throw SqliteError(rc, std::string("open a read-only connection: ") +
                                  (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
    }
    const auto busy =
        std::clamp<std::int64_t>(options.busy_timeout.count(), 0, std::numeric_limits<int>::max());
    sqlite3_busy_timeout(read.get(), static_cast<int>(busy));
    // The writer holds each record in memory until it is indexed: at most 8 x max_batch of them
    // (~4 MB per max_batch of 8.8 KB pushes), and records of about k_max_unindexed_bytes (a few
    // large bodies reach that long before the count).
    const std::size_t backlog = std::max<std::size_t>(config.max_batch, 1) * 8;
    auto logger = std::make_shared<IntakeLogger>(std::move(log), std::move(read), writer, backlog,
                                                 k_max_unindexed_bytes);
    // Indexed by the writer first thing, before anything submitted after this start (a store
    // that cannot index them now, full say, still opens, and prunes, and retries them).
    logger->replayed(replayed);
    writer->post_indexed(std::move(replayed));
    return logger;
}

// store.intake_log off, over a state directory whose log holds records the database has not
// indexed (the daemon ran with the log on and was stopped by a crash or kill -9, then started
// with it off): those webhooks were answered, so they are indexed now, first thing, the same way
// a start with the log on would; the log is then closed. Until a synced commit covers them they
// stay in the log and a later start indexes them again (intake_position moves with them).
// Throws on failure.
void index_what_the_log_holds(const std::string& state_dir, const std::string& db_path,
                              bool new_database, const SqliteOptions& options,
                              const std::shared_ptr<Writer>& writer) {
    // Only a log with a segment: a directory without one (or none at all) has nothing to index,
    // and opening it would make segments.
    std::string why;
    const auto segments = IntakeLog::has_segments(intake_dir(state_dir), &why);
    if (!segments) {
        throw StoreError(errc::store_unavailable,
                         why + " (the intake log, to index what it holds)");
    }
    if (!*segments) return;
    std::vector<Writer::Submit> replayed;
    replay_own_log(state_dir, db_path, new_database, *writer, options.warn, replayed);
    if (!replayed.empty()) writer->post_indexed(std::move(replayed));
}

}  // namespace

result<std::shared_ptr<SqliteStore>> SqliteStore::open(const std::string& state_dir,
                                                       const StoreConfig& config,
                                                       const SqliteOptions& options,
                                                       std::string* why) {
    const std::string path = (std::filesystem::path(state_dir) / k_db_file).string();
    const auto fail = [&](errc code, const std::string& reason) {
        if (why) *why = "cannot open " + path + ": " + reason;
        return result<std::shared_ptr<SqliteStore>>{make_error_code(code)};
    };
    if (state_dir.empty()) return fail(errc::store_unavailable, "the state directory is empty");
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    if (ec) {
        return fail(errc::store_unavailable,
                    "cannot create directory " + state_dir + ": " + ec.message());
    }

    std::unique_ptr<StateDirLock> lock;
    if (options.lock_state_dir) {
        auto taken = StateDirLock::acquire(state_dir, why);
        if (!taken) return taken.error();
        lock = std::move(*taken);
    }

    // The database holds every stored webhook body: only its owner may read it. SQLite would
    // create it with 0644 (less the umask), and gives the -wal and -shm files the same mode.
    if (const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600); fd >= 0) {
        ::close(fd);
    } else {
        return fail(errc::store_unavailable,
                    std::string("cannot create the database file: ") + std::strerror(errno));
    }
    // Process-wide, and only before SQLite initializes (which opening does): no memory
    // statistics, which hookrelay never reads and which cost a global mutex round trip in every
    // allocation and free SQLite makes.
    static const bool configured = [] {
        return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
    }();
    (void)configured;
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &raw,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                   gathering_vfs());
    DbPtr db(raw);
    if (rc != SQLITE_OK) {
        return fail(classify(rc), raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
    }
    WriterSettings settings;
    settings.instance.id = options.instance_id.empty() ? make_instance_id() : options.instance_id;
    settings.instance.host = host_name();
    settings.instance.version = options.version;
    settings.started_at = Clock::now();
    settings.heartbeat_interval = options.heartbeat_interval;
    try {
        // Made at this start (or left without a schema by one that failed): an intake log next
        // to it that holds records is another database's (check_log_identity).
        const bool new_database = prepare(db.get(), config, options.busy_timeout) == 0;
        const bool owner = lock != nullptr;
        auto writer = std::make_shared<Writer>(std::move(lock), std::move(db), config, settings);
        writer->open(owner);
        std::shared_ptr<IntakeLogger> logger;
        if (config.intake_log && (owner || options.intake_log_without_lock)) {
            logger = open_intake_log(state_dir, path, new_database, config, options, writer);
        } else if (owner) {
            index_what_the_log_holds(state_dir, path, new_database, options, writer);
        }
        // The store exists before the threads, so a failure to start them still stops cleanly.
        const bool yields = logger && options.store_thread_yields;
        std::shared_ptr<SqliteStore> store(
            new SqliteStore(writer, logger, settings.instance.id, options));
        if (logger) logger->attach();
        Writer::start(writer, yields ? k_store_nice_with_log : 0);
        if (logger) IntakeLogger::start(logger);
        return store;
    } catch (...) {
        const Failure failure = current_failure();
        return fail(static_cast<errc>(failure.code.value()), failure.what);
    }
}

// The submissions handed to the store and not answered yet (SqliteOptions::max_unanswered).
struct SqliteStore::Unanswered {
    std::atomic<std::size_t> count{0};
    std::atomic<std::size_t> bytes{0};
    RateLimit reports{1, std::chrono::minutes(1)};  ///< one per refusal; a line when it allows
    std::atomic<bool> refusing{false};              ///< the last submission was refused
    std::atomic<std::size_t> refused_bytes{0};      ///< its body's size
};

namespace {

// What admit()'s line and health() say of the submissions waiting at the bound.
std::string waiting_at_the_bound(std::size_t count, std::size_t bytes) {
    return std::to_string(count) + " webhooks (" + std::to_string(bytes) +
           " bytes of bodies) wait for the store to take them, twice what the listener can have "
           "waiting";
}

}  // namespace

bool SqliteStore::over_bounds(std::size_t count, std::size_t held, std::size_t bytes) const {
    return (max_unanswered_ > 0 && count >= max_unanswered_) ||
           (max_unanswered_bytes_ > 0 && count > 0 && held + bytes > max_unanswered_bytes_);
}

SqliteStore::SqliteStore(std::shared_ptr<Writer> writer, std::shared_ptr<IntakeLogger> logger,
                         std::string instance_id, const SqliteOptions& options)
    : writer_(std::move(writer)),
      logger_(std::move(logger)),
      instance_id_(std::move(instance_id)),
      claim_lease_(options.claim_lease),
      backlog_step_(options.backlog_step),
      max_unanswered_(options.max_unanswered),
      max_unanswered_bytes_(options.max_unanswered_bytes),
      unanswered_(std::make_shared<Unanswered>()) {}

bool SqliteStore::admit(SubmitHandler& done, std::size_t bytes) {
    if (max_unanswered_ == 0 && max_unanswered_bytes_ == 0) return true;
    Unanswered& u = *unanswered_;
    const std::size_t count = u.count.load(std::memory_order_relaxed);
    const std::size_t held = u.bytes.load(std::memory_order_relaxed);
    if (over_bounds(count, held, bytes)) {
        u.refused_bytes.store(bytes, std::memory_order_relaxed);
        u.refusing.store(true, std::memory_order_relaxed);
        if (std::size_t suppressed = 0; u.reports.allow(&suppressed)) {
            writer_->report_line(waiting_at_the_bound(count, held) +
                                 ": the disk may have stopped answering; " +
                                 std::to_string(suppressed + 1) +
                                 " webhooks answered 503 at once since the last such line");
        }
        return false;
    }
    // Written only when it changes: every webhook passes here, from every network thread.
    if (u.refusing.load(std::memory_order_relaxed)) {
        u.refusing.store(false, std::memory_order_relaxed);
    }
    // Counted until it is answered (before its caller hears it), or its handler is released
    // unanswered (dropped at a stop).
    class Token {
      public:
        Token(std::shared_ptr<Unanswered> of, std::size_t bytes)
            : of_(std::move(of)), bytes_(bytes) {
            of_->count.fetch_add(1, std::memory_order_relaxed);
            of_->bytes.fetch_add(bytes_, std::memory_order_relaxed);
        }
        Token(const Token&) = delete;
        Token& operator=(const Token&) = delete;
        ~Token() { release(); }
        void release() noexcept {
            if (released_.exchange(true)) return;
            of_->count.fetch_sub(1, std::memory_order_relaxed);
            of_->bytes.fetch_sub(bytes_, std::memory_order_relaxed);
        }

      private:
        std::shared_ptr<Unanswered> of_;
        std::size_t bytes_;
        std::atomic<bool> released_{false};
    };
    done = [token = std::make_shared<Token>(unanswered_, bytes),
            inner = std::move(done)](result<Receipt> receipt) {
        token->release();
        answer_quietly(inner, std::move(receipt));
    };
    return true;
}

SqliteStore::~SqliteStore() {
    close();
}

void SqliteStore::close() {
    // The log's thread hands over what it holds first; the writer indexes it before it stops.
    if (logger_) logger_->stop();
    writer_->stop();
}

StoreHealth SqliteStore::health() const {
    // Webhooks refused because too many wait for the store (admit()): not healthy while the
    // last one refused would be refused still, whatever the last commit did (with the intake
    // log, claims may still commit while its writes hang).
    if (unanswered_->refusing.load(std::memory_order_relaxed)) {
        const std::size_t count = unanswered_->count.load(std::memory_order_relaxed);
        const std::size_t bytes = unanswered_->bytes.load(std::memory_order_relaxed);
        if (over_bounds(count, bytes, unanswered_->refused_bytes.load(std::memory_order_relaxed))) {
            return StoreHealth{false, waiting_at_the_bound(count, bytes) +
                                          ": new ones are answered 503; the disk may have "
                                          "stopped answering"};
        }
    }
    // A broken intake log refuses every webhook until a restart, whatever the database does.
    if (logger_) {
        if (std::string why = logger_->why_broken(); !why.empty()) {
            return StoreHealth{false,
                               "the intake log takes no webhook since a write or sync "
                               "of it failed (" +
                                   why + "); restart hookrelay once the disk is sound"};
        }
    }
    return writer_->health();
}

std::size_t SqliteStore::unindexed() const {
    return writer_->index_backlog();
}

void SqliteStore::submit(DeliveryRecord delivery, std::vector<TriggerRequest> triggers,
                         SubmitHandler done) {
    if (!admit(done, delivery.body.size())) {
        answer_quietly(done, result<Receipt>{make_error_code(errc::store_busy)});
        return;
    }
    std::optional<StoredBody> body;
    if (writer_->config().keep_body) body = pack_body(delivery.body);
    // A body not kept: its digest now, on this (network) thread, so that nothing carries the body
    // further. A kept body's digest is taken from it when the delivery is shown
    // (Admin::read_detail), or by the store's thread where a body window compares it
    // (Intake::insert).
    if (!body && !is_sha256_hex(delivery.body_sha256)) {
        delivery.body_sha256 = sha256_hex(delivery.body);
    }
    // Moved: nothing reads delivery.rule_reasons again (the record carries them packed).
    auto reasons = pack_reasons(delivery.rule_reasons.empty() ? std::string("[]")
                                                              : std::move(delivery.rule_reasons));
    Writer::Submit job{std::move(delivery),
                       std::move(triggers),
                       std::move(done),
                       std::move(body),
                       std::move(reasons),
                       0,
                       {}};
    if (logger_) {
        logger_->post(std::move(job));
    } else {
        writer_->post(std::move(job));
    }
}

// --- TriggerQueue ---------------------------------------------------------------------------

void SqliteStore::claim(ClaimRequest request, ClaimHandler done) {
    writer_->post(make_op<ClaimBatch>(
        Mode::queue, "claim", std::move(done),
        [request = std::move(request)](Writer& w) { return w.queue().claim(request); },
        Writer::WhileHeld::refused));
}

void SqliteStore::renew(std::vector<std::string> claim_ids, TimePoint now,
                        std::chrono::milliseconds lease, IdsHandler done) {
    writer_->post(make_op<std::vector<std::string>>(
        Mode::queue, "renew", std::move(done),
        [ids = std::move(claim_ids), now, lease](Writer& w) {
            return w.queue().renew(ids, now, lease);
        },
        Writer::WhileHeld::runs));
}

void SqliteStore::complete(std::string claim_id, TriggerUpdate update, CompleteHandler done) {
    writer_->post(make_op<Completion>(
        Mode::queue, "complete", std::move(done),
        [claim_id = std::move(claim_id), update = std::move(update)](Writer& w) {
            return w.queue().complete(claim_id, update, Clock::now());
        }));
}

void SqliteStore::release(std::vector<std::string> claim_ids, VoidHandler done) {
    writer_->post(make_op<void>(Mode::queue, "release", std::move(done),
                                [ids = std::move(claim_ids)](Writer& w) {
                                    if (w.queue().release(ids) > 0) w.made_claimable();
                                }));
}

void SqliteStore::next_due(std::string jenkins, TimeHandler done) {
    writer_->post(make_op<std::optional<TimePoint>>(
        Mode::queue, "next due", std::move(done),
        [jenkins = std::move(jenkins)](Writer& w) { return w.queue().next_due(jenkins); },
        Writer::WhileHeld::runs));
}

void SqliteStore::hold(std::string jenkins, JenkinsHold hold, VoidHandler done) {
    // The holds, probes and their outcomes touch only the holds table: they run while index work
    // waits for room (WhileHeld::runs, all of them, so in their order), so that a Jenkins that is
    // down is probed with its backoff meanwhile, and nothing of them piles up.
    writer_->post(make_op<void>(
        Mode::queue, "hold", std::move(done),
        [jenkins = std::move(jenkins), hold = std::move(hold)](Writer& w) {
            w.queue().hold(jenkins, hold);
        },
        Writer::WhileHeld::runs));
}

void SqliteStore::try_probe(std::string jenkins, TimePoint now, std::chrono::milliseconds lease,
                            HoldHandler done) {
    writer_->post(make_op<std::optional<JenkinsHold>>(
        Mode::queue, "try probe", std::move(done),
        [jenkins = std::move(jenkins), now, lease](Writer& w) {
            return w.queue().try_probe(jenkins, now, lease);
        },
        Writer::WhileHeld::runs));
}

void SqliteStore::probe_failed(std::string jenkins, TimePoint next_probe_at, std::string reason,
                               VoidHandler done) {
    writer_->post(make_op<void>(
        Mode::queue, "probe failed", std::move(done),
        [jenkins = std::move(jenkins), next_probe_at, reason = std::move(reason)](Writer& w) {
            w.queue().probe_failed(jenkins, next_probe_at, reason);
        },
        Writer::WhileHeld::runs));
}

void SqliteStore::unhold(std::string jenkins, VoidHandler done) {
    writer_->post(make_op<void>(
        Mode::queue, "unhold", std::move(done),
        [jenkins = std::move(jenkins)](Writer& w) {
            if (w.queue().unhold(jenkins)) w.made_claimable();
        },
        Writer::WhileHeld::runs));
}

void SqliteStore::queued_predecessors(std::string id, std::size_t limit, PredecessorsHandler done) {
    writer_->post(make_op<std::vector<QueuedPredecessor>>(
        Mode::read, "queued predecessors", std::move(done), [id = std::move(id), limit](Writer& w) {
            return w.queue().queued_predecessors(id, limit);
        }));
}

void SqliteStore::add_note(std::string id, Attempt note, VoidHandler done) {
    writer_->post(make_op<void>(
        Mode::queue, "add note", std::move(done),
        [id = std::move(id), note = std::move(note)](Writer& w) { w.queue().add_note(id, note); }));
}

void SqliteStore::request_scan(std::string jenkins, std::string project, TimePoint since,
                               TimePoint now, std::chrono::milliseconds interval,
                               ScanHandler done) {
    writer_->post(make_op<ScanGate>(
        Mode::queue, "request scan", std::move(done),
        [jenkins = std::move(jenkins), project = std::move(project), since, now, interval](
            Writer& w) { return w.queue().request_scan(jenkins, project, since, now, interval); }));
}

void SqliteStore::forget_scan(std::string jenkins, std::string project, TimePoint requested_at,
                              VoidHandler done) {
    writer_->post(make_op<void>(
        Mode::queue, "forget scan", std::move(done),
        [jenkins = std::move(jenkins), project = std::move(project), requested_at](Writer& w) {
            w.queue().forget_scan(jenkins, project, requested_at);
        }));
}

// --- ChoreQueue -----------------------------------------------------------------------------

void SqliteStore::claim_chores(ChoreRequest request, ChoreHandler done) {
    writer_->post(make_op<ChoreBatch>(
        Mode::queue, "claim chores", std::move(done),
        [request = std::move(request)](Writer& w) { return w.chores().claim(request); },
        Writer::WhileHeld::refused));
}

void SqliteStore::complete_chore(Chore chore, std::string claim_id, ChoreUpdate update,
                                 ChoreQueue::CompleteHandler done) {
    writer_->post(make_op<Completion>(
        Mode::queue, "complete chore", std::move(done),
        [chore, claim_id = std::move(claim_id), update = std::move(update)](Writer& w) {
            return w.chores().complete(chore, claim_id, update, Clock::now());
        }));
}

void SqliteStore::complete_and_claim(Chore chore, std::string claim_id, ChoreUpdate update,
                                     ChoreRequest next, CompleteAndClaimHandler done) {
    writer_->post(make_op<CompletionAndClaims>(
        Mode::queue, "complete chore and claim", std::move(done),
        [chore, claim_id = std::move(claim_id), update = std::move(update),
         next = std::move(next)](Writer& w) {
            CompletionAndClaims out;
            out.completion = w.chores().complete(chore, claim_id, update, Clock::now());
            out.next = w.chores().claim(next);
            return out;
        }));
}

void SqliteStore::release_chores(Chore chore, std::vector<std::string> claim_ids,
                                 std::function<void(result<void>)> done) {
    writer_->post(make_op<void>(Mode::queue, "release chore claims", std::move(done),
                                [chore, claim_ids = std::move(claim_ids)](Writer& w) {
                                    w.chores().release(chore, claim_ids);
                                }));
}

// --- AdminQueries ---------------------------------------------------------------------------

void SqliteStore::list_deliveries(DeliveryQuery query, PageHandler done) {
    writer_->post(make_op<DeliveryPage>(
        Mode::read, "list deliveries", std::move(done),
        [query = std::move(query)](Writer& w) { return w.admin().list_page(query); }));
}

void SqliteStore::get_delivery(std::string source, std::string delivery_id, DetailHandler done) {
    writer_->post(make_op<std::optional<DeliveryDetail>>(
        Mode::read, "get delivery", std::move(done),
        [source = std::move(source), delivery_id = std::move(delivery_id)](Writer& w) {
            return w.admin().read_detail(source, delivery_id, Clock::now());
        }));
}

void SqliteStore::get_delivery_of_trigger(std::string trigger_id, DetailHandler done) {
    writer_->post(make_op<std::optional<DeliveryDetail>>(
        Mode::read, "get delivery of trigger", std::move(done),
        [trigger_id = std::move(trigger_id)](Writer& w) {
            return w.admin().read_detail_of_trigger(trigger_id, Clock::now());
        }));
}

void SqliteStore::replay(std::vector<std::string> trigger_ids, TimePoint now, ReplayHandler done) {
    writer_->post(make_op<Replayed>(Mode::write, "replay", std::move(done),
                                    [ids = std::move(trigger_ids), now](Writer& w) {
                                        auto replayed = w.admin().replay_ids(ids, now);
                                        if (!replayed.ids.empty()) w.made_claimable();
                                        return replayed;
                                    }));
}

void SqliteStore::replay_matching(ReplayQuery query, TimePoint now, ReplayHandler done) {
    // A dry run changes nothing, so it reads only.
    const auto mode = query.dry_run ? Mode::read : Mode::write;
    writer_->post(make_op<Replayed>(mode, "replay matching", std::move(done),
                                    [query = std::move(query), now](Writer& w) {
                                        auto replayed = w.admin().replay_query(query, now);
                                        if (!query.dry_run && !replayed.ids.empty())
                                            w.made_claimable();
                                        return replayed;
                                    }));
}

void SqliteStore::add_triggers(std::string source, std::string delivery_id,
                               std::vector<TriggerRequest> triggers, IdsHandler done) {
    writer_->post(make_op<std::vector<std::string>>(
        Mode::write, "add triggers", std::move(done),
        [source = std::move(source), delivery_id = std::move(delivery_id),
         triggers = std::move(triggers)](Writer& w) {
            auto added = w.admin().add_to_delivery(source, delivery_id, triggers, Clock::now());
            if (!added.empty()) w.made_claimable();
            return added;
        }));
}

namespace {

// A count of the open triggers (SqliteStore::backlog), a bounded step at a time (each
// Admin::backlog_step), so that a /metrics read on a large backlog never holds the store's
// thread for long: one statement held it 75 ms with a million open.
struct BacklogCount {
    std::size_t step = 0;
    Admin::BacklogCursor cursor;
    std::map<std::string, std::size_t> counts;
    SqliteStore::CountsHandler done;
};

Writer::Op backlog_step_op(std::shared_ptr<BacklogCount> count) {
    Writer::Op op;
    op.mode = Mode::read;
    op.what = "backlog";
    op.run = [count](Writer& writer) -> Writer::Answer {
        const bool last = writer.admin().backlog_step(count->cursor, count->step, count->counts);
        return [count, last, w = &writer] {
            if (!last) {
                w->post(backlog_step_op(count));
                return;
            }
            std::vector<std::pair<std::string, std::size_t>> out(count->counts.begin(),
                                                                 count->counts.end());
            answer_quietly(count->done, result<decltype(out)>(std::move(out)));
        };
    };
    op.fail = [count](boost::system::error_code error) {
        answer_quietly(count->done,
                       result<std::vector<std::pair<std::string, std::size_t>>>(error));
    };
    return op;
}

}  // namespace

void SqliteStore::backlog(CountsHandler done) {
    auto count = std::make_shared<BacklogCount>();
    count->step = backlog_step_;
    count->done = std::move(done);
    writer_->post(backlog_step_op(std::move(count)));
}

void SqliteStore::instances(InstancesHandler done) {
    writer_->post(make_op<std::vector<InstanceInfo>>(
        Mode::read, "instances", std::move(done), [lease = claim_lease_](Writer& w) {
            const auto now = Clock::now();
            return w.admin().instances(now - k_instance_leases * lease, now);
        }));
}

void SqliteStore::holds(HoldsHandler done) {
    writer_->post(make_op<std::map<std::string, JenkinsHold>>(
        Mode::read, "holds", std::move(done), [](Writer& w) { return w.admin().holds(); }));
}

// --- Lifecycle and observers ----------------------------------------------------------------

void SqliteStore::prune(TimePoint now, std::function<void(result<std::size_t>)> done) {
    post_prune_pass(*writer_, now, std::move(done));
}

void SqliteStore::on_committed(std::function<void()> callback) {
    writer_->add_committed(std::move(callback));
}

void SqliteStore::on_error(std::function<void(std::string_view)> callback) {
    writer_->add_error(std::move(callback));
}

void SqliteStore::on_commit_stats(
    std::function<void(std::chrono::duration<double>, std::size_t)> callback) {
    writer_->add_commit_stats(std::move(callback));
}

}  // namespace hookrelay::store::sqlite
