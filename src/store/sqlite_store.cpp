#include "store/sqlite_store.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <variant>

namespace hookrelay::store {
namespace {

using Clock = std::chrono::system_clock;

constexpr int k_schema_version = 2;
constexpr const char* k_db_file = "hookrelay.db";
// A larger interval is treated as this, so the deadline arithmetic cannot overflow.
constexpr std::chrono::milliseconds k_max_prune_interval = std::chrono::hours(24 * 365);

// Version 1. triggers.seq is the rowid: it gives "created order" a stable meaning (an implicit
// rowid may be renumbered by VACUUM) at the same cost as a TEXT primary key, which SQLite keeps as
// a separate unique index anyway. delivery_id is NULL when the forge sent none: NULLs never
// collide in a UNIQUE index, so such deliveries are never deduplicated.
constexpr const char* k_schema = R"sql(
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    provider TEXT NOT NULL,
    delivery_id TEXT,
    kind TEXT NOT NULL,
    forge_event TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    headers TEXT NOT NULL,
    body BLOB,
    body_sha256 TEXT NOT NULL,
    UNIQUE (source, delivery_id)
);
-- The admin listing walks one source newest first (an index also holds the rowid, so this is
-- (source, id)); the lookup of a delivery id over every source needs its own index.
CREATE INDEX deliveries_source ON deliveries (source);
CREATE INDEX deliveries_delivery_id ON deliveries (delivery_id);
CREATE TABLE triggers (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    delivery INTEGER NOT NULL REFERENCES deliveries (id),
    rule TEXT NOT NULL,
    jenkins TEXT NOT NULL,
    job TEXT NOT NULL,
    parameters TEXT NOT NULL,
    cause TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'retrying', 'delivered', 'dead')),
    attempts INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_outcome TEXT NOT NULL,
    queue_url TEXT NOT NULL
);
-- Only open triggers, in the order the dispatcher takes them: due() and next_due() read the
-- first rows of one Jenkins' range and stop, however many finished triggers the table holds.
CREATE INDEX triggers_due ON triggers (jenkins, next_attempt_at, seq)
    WHERE state IN ('pending', 'retrying');
CREATE INDEX triggers_delivery ON triggers (delivery);
-- The admin listing filtered by state walks this backwards from its cursor and stops at the page
-- size, whether the state is rare (dead) or common (delivered).
CREATE INDEX triggers_state ON triggers (state, delivery);
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    trigger_id TEXT NOT NULL REFERENCES triggers (id),
    at INTEGER NOT NULL,
    http_status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    queue_url TEXT NOT NULL,
    counted INTEGER NOT NULL
);
CREATE INDEX attempts_trigger ON attempts (trigger_id);
PRAGMA user_version = 1;
)sql";

// Version 2: finding an earlier delivery with the same body (duplicate_body_window). body_key is
// the first 64 bits of the body's SHA-256, set only for deliveries submitted with a window, and
// the index is partial: a delivery without one (a forge delivery id and no window, the common
// case) costs no index entry at all, and one with a window an 8-byte integer entry. The lookup
// compares the whole digest on the row.
constexpr const char* k_schema_v2 = R"sql(
ALTER TABLE deliveries ADD COLUMN body_key INTEGER;
CREATE INDEX deliveries_body ON deliveries (body_key) WHERE body_key IS NOT NULL;
PRAGMA user_version = 2;
)sql";

std::int64_t to_ms(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Clock::time_point from_ms(std::int64_t ms) {
    return Clock::time_point(
        std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(ms)));
}

/// A failed SQLite call: the (extended) result code and "<step>: <message>".
class SqliteError : public std::runtime_error {
  public:
    SqliteError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
    int code() const noexcept { return code_; }

  private:
    int code_;
};

// Failures that concern one job's data and leave the transaction usable; anything else (I/O,
// disk full, busy, corruption) may have rolled the transaction back and fails the whole batch.
bool confined_to_job(int code) noexcept {
    switch (code & 0xff) {
        case SQLITE_TOOBIG:
        case SQLITE_CONSTRAINT:
        case SQLITE_MISMATCH:
        case SQLITE_RANGE:
            return true;
        default:
            return false;
    }
}

struct DbClose {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbClose>;

struct StmtFinalize {
    void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};

/// A prepared statement, compiled once and reused through Query.
class Statement {
  public:
    Statement(sqlite3* db, const char* name, const char* sql) : db_(db), name_(name) {
        sqlite3_stmt* raw = nullptr;
        const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
        stmt_.reset(raw);
        if (rc != SQLITE_OK) {
            throw SqliteError(rc, std::string("preparing ") + name + ": " + sqlite3_errmsg(db));
        }
    }

    sqlite3* db() const noexcept { return db_; }
    sqlite3_stmt* get() const noexcept { return stmt_.get(); }
    const char* name() const noexcept { return name_; }

  private:
    sqlite3* db_;
    const char* name_;
    std::unique_ptr<sqlite3_stmt, StmtFinalize> stmt_;
};

/// One execution of a Statement: binds parameters left to right, steps, reads columns. Resets
/// the statement and clears its bindings when it goes out of scope, so a half-read SELECT never
/// keeps a read transaction open (which would stall WAL checkpoints).
class Query {
  public:
    explicit Query(Statement& statement) : statement_(statement), stmt_(statement.get()) {}
    ~Query() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;

    /// Copies the text.
    Query& bind_text(std::string_view text) {
        return check_bind(sqlite3_bind_text64(stmt_, next_++, text.data(), text.size(),
                                              SQLITE_TRANSIENT, SQLITE_UTF8));
    }
    /// References `bytes` without copying (bodies run to megabytes): they must outlive the Query.
    Query& bind_blob_ref(std::string_view bytes) {
        return check_bind(
            sqlite3_bind_blob64(stmt_, next_++, bytes.data(), bytes.size(), SQLITE_STATIC));
    }
    Query& bind_int(std::int64_t value) {
        return check_bind(sqlite3_bind_int64(stmt_, next_++, value));
    }
    Query& bind_null() { return check_bind(sqlite3_bind_null(stmt_, next_++)); }

    /// True when a row is ready, false when done; throws SqliteError on failure.
    bool step() {
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        fail(rc);
    }
    /// Runs a statement that returns no rows.
    void run() {
        while (step()) {
        }
    }

    bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
    std::int64_t int64(int column) const { return sqlite3_column_int64(stmt_, column); }
    std::string text(int column) const {
        const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
        const int size = sqlite3_column_bytes(stmt_, column);
        return data ? std::string(data, static_cast<std::size_t>(size)) : std::string();
    }

  private:
    Query& check_bind(int rc) {
        if (rc != SQLITE_OK) fail(rc);
        return *this;
    }
    [[noreturn]] void fail(int rc) const {
        throw SqliteError(rc,
                          std::string(statement_.name()) + ": " + sqlite3_errmsg(statement_.db()));
    }

    Statement& statement_;
    sqlite3_stmt* stmt_;
    int next_ = 1;
};

void exec(sqlite3* db, const char* sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
        std::string text = message ? message : sqlite3_errstr(rc);
        sqlite3_free(message);
        throw SqliteError(rc, text);
    }
}

std::int64_t pragma_int(sqlite3* db, const char* sql) {
    Statement statement(db, sql, sql);
    Query query(statement);
    return query.step() ? query.int64(0) : 0;
}

std::string pairs_json(const std::vector<std::pair<std::string, std::string>>& pairs) {
    boost::json::array out;
    out.reserve(pairs.size());
    for (const auto& [name, value] : pairs) out.push_back(boost::json::array{name, value});
    return boost::json::serialize(out);
}

std::string strings_json(const std::vector<std::string>& strings) {
    boost::json::array out;
    out.reserve(strings.size());
    for (const auto& s : strings) out.emplace_back(s);
    return boost::json::serialize(out);
}

std::optional<EventKind> kind_from_string(std::string_view text) noexcept {
    for (auto kind : {EventKind::push, EventKind::tag, EventKind::pull_request, EventKind::release,
                      EventKind::ping, EventKind::other}) {
        if (to_string(kind) == text) return kind;
    }
    return std::nullopt;
}

// What we wrote ourselves; bytes that are not UTF-8 (a forge may send them) went in verbatim and
// must come back the same way.
boost::json::array parse_array(std::string_view text) {
    boost::json::parse_options options;
    options.allow_invalid_utf8 = true;
    return boost::json::parse(text, {}, options).as_array();
}

std::vector<std::string> parse_strings(std::string_view text) {
    std::vector<std::string> out;
    for (const auto& v : parse_array(text)) out.emplace_back(v.as_string());
    return out;
}

std::vector<std::pair<std::string, std::string>> parse_pairs(std::string_view text) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& v : parse_array(text)) {
        const auto& pair = v.as_array();
        out.emplace_back(pair.at(0).as_string(), pair.at(1).as_string());
    }
    return out;
}

std::string to_hex(const unsigned char* data, std::size_t size) {
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(size * 2);
    for (std::size_t i = 0; i < size; ++i) {
        out += k_digits[data[i] >> 4];
        out += k_digits[data[i] & 0x0f];
    }
    return out;
}

std::string sha256_hex(std::string_view bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
        throw std::runtime_error("SHA-256 failed");
    }
    return to_hex(digest, size);
}

bool is_sha256_hex(std::string_view text) noexcept {
    return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

// The first 64 bits of a digest from sha256_hex(), as the signed integer SQLite stores.
std::int64_t body_key(std::string_view digest) noexcept {
    std::uint64_t key = 0;
    std::from_chars(digest.data(), digest.data() + 16, key, 16);
    return static_cast<std::int64_t>(key);
}

// Random ids (not rowids) so a trigger id never repeats across pruning or a recreated database,
// and means nothing to whoever sees it in a Jenkins cause or a log line.
std::string make_trigger_id() {
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
    const std::string hex = to_hex(b, sizeof b);
    return hex.substr(0, 8) + '-' + hex.substr(8, 4) + '-' + hex.substr(12, 4) + '-' +
           hex.substr(16, 4) + '-' + hex.substr(20);
}

void configure(sqlite3* db, const SqliteOptions& options, const StoreConfig& config) {
    sqlite3_extended_result_codes(db, 1);
    const auto busy =
        std::clamp<std::int64_t>(options.busy_timeout.count(), 0, std::numeric_limits<int>::max());
    sqlite3_busy_timeout(db, static_cast<int>(busy));

    {
        Statement statement(db, "PRAGMA journal_mode", "PRAGMA journal_mode = WAL");
        Query query(statement);
        const std::string mode = query.step() ? query.text(0) : std::string();
        if (mode != "wal") {
            throw std::runtime_error("cannot enable WAL journal mode (got '" + mode + "')");
        }
    }
    // FULL: the WAL is synced at every commit, which is what lets a submit answer only once the
    // delivery survives a crash or power loss.
    exec(db, "PRAGMA synchronous = FULL");
    exec(db, "PRAGMA foreign_keys = ON");
    // 8 MiB of page cache (the default is 2 MiB): the open-trigger index and the recent pages
    // stay in memory under load instead of being re-read from the OS for every query.
    exec(db, "PRAGMA cache_size = -8192");
    if (config.max_size > 0) {
        // A full database answers SQLITE_FULL, which fails the submit (503 to the forge) exactly
        // like a full disk would, but before the disk is actually full.
        const auto page_size = std::max<std::int64_t>(pragma_int(db, "PRAGMA page_size"), 512);
        const auto pages =
            std::max<std::int64_t>(static_cast<std::int64_t>(config.max_size) / page_size, 1);
        exec(db, ("PRAGMA max_page_count = " + std::to_string(pages)).c_str());
    }

    const auto version = pragma_int(db, "PRAGMA user_version");
    if (version > k_schema_version) {
        throw std::runtime_error("schema version " + std::to_string(version) +
                                 " is newer than this hookrelay understands (" +
                                 std::to_string(k_schema_version) +
                                 "); run a newer hookrelay or move the file away");
    }
    if (version == k_schema_version) return;

    // IMMEDIATE and a second look: two processes opening a new file at once create it once.
    exec(db, "BEGIN IMMEDIATE");
    try {
        const auto current = pragma_int(db, "PRAGMA user_version");
        if (current == 0) exec(db, k_schema);
        if (current < 2) exec(db, k_schema_v2);
        exec(db, "COMMIT");
    } catch (...) {
        if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

template <class Handler, class... Args>
void invoke(const Handler& done, Args&&... args) noexcept {
    try {
        if (done) done(std::forward<Args>(args)...);
    } catch (...) {
        // The caller's handler threw. The job is answered either way, and there is no one to
        // tell on the store thread; keep the thread alive for the other jobs.
    }
}

boost::system::error_code unavailable() {
    return make_error_code(errc::store_unavailable);
}

TriggerState read_state(const std::string& text, const std::string& trigger_id) {
    const auto state = trigger_state_from_string(text);
    if (!state) throw std::runtime_error("trigger " + trigger_id + " has an unknown state");
    return *state;
}

/// Columns 0-6: id, source, provider, delivery_id, kind, forge_event, received_at.
DeliverySummary read_summary(const Query& query) {
    DeliverySummary s;
    s.seq = query.int64(0);
    s.source = query.text(1);
    const auto provider = provider_from_string(query.text(2));
    const auto kind = kind_from_string(query.text(4));
    if (!provider || !kind) {
        throw std::runtime_error("delivery #" + std::to_string(s.seq) +
                                 " has an unknown provider or kind");
    }
    s.provider = *provider;
    s.delivery_id = query.text(3);
    s.kind = *kind;
    s.forge_event = query.text(5);
    s.received_at = from_ms(query.int64(6));
    return s;
}

// The listing's SQL for one combination of filters. Parameters, in order: [state], cursor,
// [source], [since], limit. A state filter drives the walk from the triggers_state index, so a
// rare state does not scan every delivery; otherwise the walk is down the deliveries' own key (or
// deliveries_source), newest first, and stops at the page size.
std::string list_sql(bool by_source, bool by_since, bool by_state) {
    std::string page = by_state ? R"sql(
    SELECT d.id, d.source, d.provider, d.delivery_id, d.kind, d.forge_event, d.received_at
    FROM triggers s CROSS JOIN deliveries d ON d.id = s.delivery
    WHERE s.state = ? AND s.delivery < ?)sql"
                                : R"sql(
    SELECT d.id, d.source, d.provider, d.delivery_id, d.kind, d.forge_event, d.received_at
    FROM deliveries d
    WHERE d.id < ?)sql";
    if (by_source) page += " AND d.source = ?";
    if (by_since) page += " AND d.received_at >= ?";
    page += by_state ? "\n    GROUP BY s.delivery ORDER BY s.delivery DESC LIMIT ?"
                     : "\n    ORDER BY d.id DESC LIMIT ?";
    return "WITH page AS (" + page + R"sql()
SELECT p.id, p.source, p.provider, p.delivery_id, p.kind, p.forge_event, p.received_at,
       COUNT(CASE WHEN t.state IN ('pending', 'retrying') THEN 1 END),
       COUNT(CASE WHEN t.state = 'delivered' THEN 1 END),
       COUNT(CASE WHEN t.state = 'dead' THEN 1 END)
FROM page p LEFT JOIN triggers t ON t.delivery = p.id
GROUP BY p.id
ORDER BY p.id DESC)sql";
}

/// The seq named by "#<seq>", or nullopt when `text` is not of that form.
std::optional<std::int64_t> parse_seq(std::string_view text) {
    if (text.size() < 2 || text.front() != '#') return std::nullopt;
    std::int64_t seq = 0;
    const char* first = text.data() + 1;
    const char* last = text.data() + text.size();
    const auto [end, ec] = std::from_chars(first, last, seq);
    if (ec != std::errc() || end != last) return std::nullopt;
    return seq;
}

}  // namespace

class SqliteStore::Core {
  public:
    struct SubmitJob {
        DeliveryRecord delivery;
        std::vector<TriggerRequest> triggers;
        SubmitHandler done;
    };
    struct UpdateJob {
        TriggerUpdate update;
        UpdateHandler done;
    };
    using Task = std::function<void(Core&)>;
    using Op = std::variant<UpdateJob, Task>;
    using CommitStats = std::function<void(std::chrono::duration<double>, std::size_t)>;

    Core(DbPtr db, const StoreConfig& config)
        : db_(std::move(db)),
          config_(config),
          begin_(db_.get(), "BEGIN IMMEDIATE", "BEGIN IMMEDIATE"),
          commit_(db_.get(), "COMMIT", "COMMIT"),
          rollback_(db_.get(), "ROLLBACK", "ROLLBACK"),
          savepoint_(db_.get(), "SAVEPOINT", "SAVEPOINT job"),
          release_(db_.get(), "RELEASE", "RELEASE job"),
          rollback_to_(db_.get(), "ROLLBACK TO", "ROLLBACK TO job"),
          insert_delivery_(db_.get(), "insert delivery", R"sql(
INSERT INTO deliveries (source, provider, delivery_id, kind, forge_event, received_at, headers,
                        body, body_sha256, body_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (source, delivery_id) DO NOTHING)sql"),
          // INDEXED BY: without statistics the planner would rather walk deliveries_source, all
          // of the source's deliveries for every submit.
          find_body_(db_.get(), "find body", R"sql(
SELECT id, delivery_id FROM deliveries INDEXED BY deliveries_body
WHERE body_key = ?1 AND body_sha256 = ?2 AND source = ?3 AND received_at >= ?4
ORDER BY id DESC LIMIT 1)sql"),
          insert_trigger_(db_.get(), "insert trigger", R"sql(
INSERT INTO triggers (id, delivery, rule, jenkins, job, parameters, cause, state, attempts,
                      created_at, next_attempt_at, updated_at, last_outcome, queue_url)
VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, '', ''))sql"),
          select_due_(db_.get(), "select due", R"sql(
SELECT t.id, d.source, d.delivery_id, t.rule, t.jenkins, t.job, t.parameters, t.cause, t.state,
       t.attempts, t.created_at, t.next_attempt_at, t.last_outcome, t.queue_url
FROM triggers t JOIN deliveries d ON d.id = t.delivery
WHERE t.jenkins = ?1 AND t.state IN ('pending', 'retrying') AND t.next_attempt_at <= ?2
ORDER BY t.next_attempt_at, t.seq
LIMIT ?3)sql"),
          update_trigger_(db_.get(), "update trigger", R"sql(
UPDATE triggers
SET state = ?1, next_attempt_at = ?2, last_outcome = ?3, updated_at = ?4,
    queue_url = CASE WHEN ?5 = '' THEN queue_url ELSE ?5 END, attempts = attempts + ?6
WHERE id = ?7)sql"),
          insert_attempt_(db_.get(), "insert attempt", R"sql(
INSERT INTO attempts (trigger_id, at, http_status, outcome, duration_ms, queue_url, counted)
VALUES (?, ?, ?, ?, ?, ?, ?))sql"),
          select_next_due_(db_.get(), "select next due", R"sql(
SELECT MIN(next_attempt_at) FROM triggers
WHERE jenkins = ? AND state IN ('pending', 'retrying'))sql"),
          select_counts_(db_.get(), "select counts", R"sql(
SELECT state, COUNT(*) FROM triggers WHERE jenkins = ? GROUP BY state)sql"),
          select_attempts_(db_.get(), "select attempts", R"sql(
SELECT at, http_status, outcome, duration_ms, queue_url, counted FROM attempts
WHERE trigger_id = ? ORDER BY id)sql"),
          prune_attempts_(db_.get(), "prune attempts", R"sql(
DELETE FROM attempts WHERE trigger_id IN (
    SELECT id FROM triggers WHERE state IN ('delivered', 'dead') AND updated_at < ?1))sql"),
          prune_triggers_(db_.get(), "prune triggers", R"sql(
DELETE FROM triggers WHERE state IN ('delivered', 'dead') AND updated_at < ?1)sql"),
          prune_deliveries_(db_.get(), "prune deliveries", R"sql(
DELETE FROM deliveries WHERE received_at < ?1
    AND NOT EXISTS (SELECT 1 FROM triggers t WHERE t.delivery = deliveries.id))sql"),
          find_delivery_by_seq_(db_.get(), "find delivery by seq", R"sql(
SELECT id FROM deliveries WHERE id = ?1 AND (?2 = '' OR source = ?2))sql"),
          find_delivery_in_source_(db_.get(), "find delivery in source", R"sql(
SELECT id FROM deliveries WHERE source = ? AND delivery_id = ?)sql"),
          find_delivery_anywhere_(db_.get(), "find delivery", R"sql(
SELECT id FROM deliveries WHERE delivery_id = ? ORDER BY id DESC LIMIT 1)sql"),
          select_delivery_(db_.get(), "select delivery", R"sql(
SELECT id, source, provider, delivery_id, kind, forge_event, received_at, headers, body,
       body_sha256
FROM deliveries WHERE id = ?)sql"),
          select_delivery_triggers_(db_.get(), "select delivery triggers", R"sql(
SELECT id, rule, jenkins, job, parameters, cause, state, attempts, created_at, next_attempt_at,
       last_outcome, queue_url, updated_at
FROM triggers WHERE delivery = ? ORDER BY seq)sql"),
          replay_trigger_(db_.get(), "replay trigger", R"sql(
UPDATE triggers
SET state = 'pending', attempts = 0, created_at = ?1, next_attempt_at = ?1, updated_at = ?1,
    last_outcome = 'replayed'
WHERE id = ?2)sql"),
          select_replayable_(db_.get(), "select replayable", R"sql(
SELECT id FROM triggers
WHERE state = ?1 AND updated_at >= ?2 AND (?3 = '' OR jenkins = ?3)
ORDER BY seq
LIMIT ?4)sql"),
          select_backlog_(db_.get(), "select backlog", R"sql(
SELECT jenkins, COUNT(*) FROM triggers WHERE state IN ('pending', 'retrying')
GROUP BY jenkins ORDER BY jenkins)sql") {}

    Core(const Core&) = delete;
    Core& operator=(const Core&) = delete;

    // The thread holds its own reference, so the Core outlives a store destroyed from one of its
    // own callbacks (the thread then cannot be joined and is detached instead).
    static void start(const std::shared_ptr<Core>& core) {
        core->thread_ = std::thread([self = core] { self->run(); });
    }

    void stop() {
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

    void post(SubmitJob job) {
        // Notifying under the lock: once it is released the job may already be done, and its
        // callback may have dropped the last reference to the store.
        std::lock_guard lock(mutex_);
        if (stop_) return;  // closed: nothing runs any more; waiting callers time out
        submits_.push_back(std::move(job));
        cv_.notify_one();
    }

    void post(Op op) {
        // Under the lock, as above.
        std::lock_guard lock(mutex_);
        if (stop_) return;
        ops_.push_back(std::move(op));
        cv_.notify_one();
    }

    void add_committed(std::function<void()> callback) {
        std::lock_guard lock(mutex_);
        committed_.push_back(std::move(callback));
    }

    void add_error(std::function<void(std::string_view)> callback) {
        std::lock_guard lock(mutex_);
        errors_.push_back(std::move(callback));
    }

    void add_commit_stats(CommitStats callback) {
        std::lock_guard lock(mutex_);
        commit_stats_.push_back(std::move(callback));
    }

    /// Runs `fn` and passes its value to `done`; any exception becomes store_unavailable.
    template <class T, class Fn>
    void answer(const std::function<void(result<T>)>& done, std::string_view what, Fn&& fn) {
        result<T> outcome{unavailable()};
        try {
            outcome = fn();
        } catch (const std::exception& e) {
            report(std::string(what) + " failed: " + e.what());
        } catch (...) {
            report(std::string(what) + " failed");
        }
        invoke(done, std::move(outcome));
    }

    std::vector<StoredTrigger> select_due(const std::string& jenkins, Clock::time_point now,
                                          std::size_t limit,
                                          const std::vector<std::string>& exclude) {
        std::vector<StoredTrigger> out;
        if (limit == 0) return out;
        const std::unordered_set<std::string> skip(exclude.begin(), exclude.end());
        // Over-fetch by the number of exclusions so that skipping them can still fill `limit`.
        constexpr auto k_max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
        const std::size_t fetch = limit >= k_max - skip.size() ? k_max : limit + skip.size();

        Query query(select_due_);
        query.bind_text(jenkins).bind_int(to_ms(now)).bind_int(static_cast<std::int64_t>(fetch));
        while (out.size() < limit && query.step()) {
            std::string id = query.text(0);
            if (skip.contains(id)) continue;
            StoredTrigger t;
            t.id = std::move(id);
            t.source = query.text(1);
            t.delivery_id = query.text(2);
            t.request.rule = query.text(3);
            t.request.jenkins = query.text(4);
            t.request.job = parse_strings(query.text(5));
            t.request.parameters = parse_pairs(query.text(6));
            t.request.cause = query.text(7);
            const auto state = trigger_state_from_string(query.text(8));
            if (!state) throw std::runtime_error("trigger " + t.id + " has an unknown state");
            t.state = *state;
            t.attempts = static_cast<int>(query.int64(9));
            t.created_at = from_ms(query.int64(10));
            t.next_attempt_at = from_ms(query.int64(11));
            t.last_outcome = query.text(12);
            t.queue_url = query.text(13);
            out.push_back(std::move(t));
        }
        return out;
    }

    std::optional<Clock::time_point> select_next_due(const std::string& jenkins) {
        Query query(select_next_due_);
        query.bind_text(jenkins);
        if (!query.step() || query.is_null(0)) return std::nullopt;
        return from_ms(query.int64(0));
    }

    std::array<std::size_t, 4> select_counts(const std::string& jenkins) {
        std::array<std::size_t, 4> out{};
        Query query(select_counts_);
        query.bind_text(jenkins);
        while (query.step()) {
            const auto state = trigger_state_from_string(query.text(0));
            if (!state) throw std::runtime_error("a trigger has an unknown state");
            out[static_cast<std::size_t>(*state)] = static_cast<std::size_t>(query.int64(1));
        }
        return out;
    }

    std::vector<Attempt> select_attempts(const std::string& trigger_id) {
        std::vector<Attempt> out;
        Query query(select_attempts_);
        query.bind_text(trigger_id);
        while (query.step()) {
            Attempt a;
            a.at = from_ms(query.int64(0));
            a.http_status = static_cast<int>(query.int64(1));
            a.outcome = query.text(2);
            a.duration = std::chrono::milliseconds(query.int64(3));
            a.queue_url = query.text(4);
            a.counted = query.int64(5) != 0;
            out.push_back(std::move(a));
        }
        return out;
    }

    DeliveryPage list_page(const DeliveryQuery& q) {
        DeliveryPage page;
        const std::size_t limit = std::min(q.limit, SqliteStore::k_max_page);
        if (limit == 0) return page;
        Query query(list_statement(!q.source.empty(), q.since.has_value(), q.state.has_value()));
        if (q.state) query.bind_text(to_string(*q.state));
        query.bind_int(q.before_seq.value_or(std::numeric_limits<std::int64_t>::max()));
        if (!q.source.empty()) query.bind_text(q.source);
        if (q.since) query.bind_int(to_ms(*q.since));
        query.bind_int(static_cast<std::int64_t>(limit));
        while (query.step()) {
            DeliverySummary summary = read_summary(query);
            summary.pending = static_cast<std::size_t>(query.int64(7));
            summary.delivered = static_cast<std::size_t>(query.int64(8));
            summary.dead = static_cast<std::size_t>(query.int64(9));
            page.items.push_back(std::move(summary));
        }
        if (page.items.size() == limit) page.next_before_seq = page.items.back().seq;
        return page;
    }

    std::optional<DeliveryDetail> read_detail(const std::string& source,
                                              const std::string& delivery_id) {
        const auto seq = find_delivery(source, delivery_id);
        if (!seq) return std::nullopt;
        DeliveryDetail detail;
        {
            Query query(select_delivery_);
            query.bind_int(*seq);
            if (!query.step()) return std::nullopt;
            detail.summary = read_summary(query);
            detail.headers = parse_pairs(query.text(7));
            if (!query.is_null(8)) detail.body = query.text(8);
            detail.body_sha256 = query.text(9);
        }
        {
            Query query(select_delivery_triggers_);
            query.bind_int(*seq);
            while (query.step()) {
                TriggerHistory h;
                StoredTrigger& t = h.trigger;
                t.id = query.text(0);
                t.source = detail.summary.source;
                t.delivery_id = detail.summary.delivery_id;
                t.request.rule = query.text(1);
                t.request.jenkins = query.text(2);
                t.request.job = parse_strings(query.text(3));
                t.request.parameters = parse_pairs(query.text(4));
                t.request.cause = query.text(5);
                t.state = read_state(query.text(6), t.id);
                t.attempts = static_cast<int>(query.int64(7));
                t.created_at = from_ms(query.int64(8));
                t.next_attempt_at = from_ms(query.int64(9));
                t.last_outcome = query.text(10);
                t.queue_url = query.text(11);
                h.updated_at = from_ms(query.int64(12));
                detail.triggers.push_back(std::move(h));
            }
        }
        for (TriggerHistory& h : detail.triggers) {
            h.attempts = select_attempts(h.trigger.id);
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
            }
        }
        return detail;
    }

    std::vector<std::string> replay_ids(const std::vector<std::string>& ids,
                                        Clock::time_point now) {
        std::vector<std::string> out;
        transaction([&] {
            std::unordered_set<std::string> seen;
            for (const std::string& id : ids) {
                if (seen.insert(id).second && requeue(id, now)) out.push_back(id);
            }
        });
        return out;
    }

    std::vector<std::string> replay_query(const ReplayQuery& q, Clock::time_point now) {
        std::vector<std::string> out;
        if (q.limit == 0) return out;
        constexpr auto k_max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
        transaction([&] {
            // Read first, then write: an UPDATE under an open SELECT of the same rows could make
            // the SELECT see a row twice, or not at all.
            std::vector<std::string> ids;
            {
                Query query(select_replayable_);
                query.bind_text(to_string(q.state));
                query.bind_int(q.since ? to_ms(*q.since)
                                       : std::numeric_limits<std::int64_t>::min());
                query.bind_text(q.jenkins);
                query.bind_int(static_cast<std::int64_t>(std::min(q.limit, k_max)));
                while (query.step()) ids.push_back(query.text(0));
            }
            if (q.dry_run) {
                out = std::move(ids);
                return;
            }
            for (std::string& id : ids) {
                if (requeue(id, now)) out.push_back(std::move(id));
            }
        });
        return out;
    }

    std::vector<std::string> add_to_delivery(const std::string& source,
                                             const std::string& delivery_id,
                                             const std::vector<TriggerRequest>& triggers) {
        std::vector<std::string> out;
        if (triggers.empty()) return out;
        const std::int64_t now = to_ms(Clock::now());
        transaction([&] {
            const auto seq = find_delivery(source, delivery_id);
            if (!seq) return;
            for (const TriggerRequest& t : triggers) {
                std::string id = make_trigger_id();
                const std::string job_json = strings_json(t.job);
                const std::string parameters = pairs_json(t.parameters);
                Query query(insert_trigger_);
                query.bind_text(id).bind_int(*seq).bind_text(t.rule).bind_text(t.jenkins);
                query.bind_text(job_json).bind_text(parameters).bind_text(t.cause);
                query.bind_int(now).bind_int(now).bind_int(now).run();
                out.push_back(std::move(id));
            }
        });
        return out;
    }

    std::vector<std::pair<std::string, std::size_t>> select_backlog() {
        std::vector<std::pair<std::string, std::size_t>> out;
        Query query(select_backlog_);
        while (query.step()) {
            out.emplace_back(query.text(0), static_cast<std::size_t>(query.int64(1)));
        }
        return out;
    }

    /// answer() for a job that queued triggers: runs the on_committed callbacks after `done`
    /// when it queued any.
    void answer_queued(const IdsHandler& done, std::string_view what,
                       const std::function<std::vector<std::string>()>& fn) {
        bool queued = false;
        answer(done, what, [&] {
            auto ids = fn();
            queued = !ids.empty();
            return ids;
        });
        if (queued) notify_committed();
    }

    std::size_t prune_before(Clock::time_point now) {
        const std::int64_t cutoff = to_ms(now - config_.retention);
        std::size_t removed = 0;
        transaction([&] {
            // Children first: the foreign keys are enforced.
            for (Statement* statement : {&prune_attempts_, &prune_triggers_, &prune_deliveries_}) {
                Query query(*statement);
                query.bind_int(cutoff).run();
            }
            removed = static_cast<std::size_t>(sqlite3_changes64(db_.get()));
        });
        return removed;
    }

  private:
    Statement& list_statement(bool by_source, bool by_since, bool by_state) {
        const std::size_t key = (by_source ? 1u : 0u) | (by_since ? 2u : 0u) | (by_state ? 4u : 0u);
        auto& slot = list_statements_[key];
        if (!slot) {
            const std::string sql = list_sql(by_source, by_since, by_state);
            slot = std::make_unique<Statement>(db_.get(), "list deliveries", sql.c_str());
        }
        return *slot;
    }

    std::optional<std::int64_t> find_delivery(const std::string& source,
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

    // Inside a transaction. False when `id` names no trigger.
    bool requeue(const std::string& id, Clock::time_point now) {
        const std::int64_t at = to_ms(now);
        {
            Query query(replay_trigger_);
            query.bind_int(at).bind_text(id).run();
        }
        if (sqlite3_changes64(db_.get()) == 0) return false;
        // Uncounted: the replay is not a try, and the budget starts over anyway.
        Query query(insert_attempt_);
        query.bind_text(id).bind_int(at).bind_int(0).bind_text("replayed by admin").bind_int(0);
        query.bind_text("").bind_int(0).run();
        return true;
    }

    void run() {
        using Steady = std::chrono::steady_clock;
        const auto interval = std::min(config_.prune_interval, k_max_prune_interval);
        const bool periodic = interval.count() > 0;
        // The first prune runs at start: a daemon restarted more often than the interval would
        // otherwise never prune.
        auto next_prune = Steady::now();
        for (;;) {
            std::vector<SubmitJob> submits;
            std::vector<Op> ops;
            {
                std::unique_lock lock(mutex_);
                const auto ready = [&] { return stop_ || !submits_.empty() || !ops_.empty(); };
                if (periodic) {
                    cv_.wait_until(lock, next_prune, ready);
                } else {
                    cv_.wait(lock, ready);
                }
                const std::size_t batch =
                    std::min(submits_.size(), std::max<std::size_t>(config_.max_batch, 1));
                const auto end = submits_.begin() + static_cast<std::ptrdiff_t>(batch);
                submits.assign(std::make_move_iterator(submits_.begin()),
                               std::make_move_iterator(end));
                submits_.erase(submits_.begin(), end);
                ops.assign(std::make_move_iterator(ops_.begin()),
                           std::make_move_iterator(ops_.end()));
                ops_.clear();
                if (stop_ && submits.empty() && ops.empty()) return;
            }
            if (!submits.empty()) commit_submits(submits);
            run_ops(ops);
            if (periodic && Steady::now() >= next_prune) {
                answer<std::size_t>({}, "scheduled prune",
                                    [&] { return prune_before(Clock::now()); });
                next_prune = Steady::now() + interval;
            }
        }
    }

    // Group commit: one BEGIN IMMEDIATE .. COMMIT, so one WAL sync, for the whole batch.
    void commit_submits(std::vector<SubmitJob>& jobs) {
        std::vector<result<Receipt>> results(jobs.size(), result<Receipt>{unavailable()});
        bool queued = false;
        const auto started = std::chrono::steady_clock::now();
        try {
            transaction([&] {
                for (std::size_t i = 0; i < jobs.size(); ++i) {
                    Receipt receipt;
                    if (isolated("submit", [&] { receipt = insert_submission(jobs[i]); })) {
                        results[i] = std::move(receipt);
                    }
                }
            });
            queued = std::any_of(results.begin(), results.end(), [](const result<Receipt>& r) {
                return r && !r->trigger_ids.empty();
            });
        } catch (const std::exception& e) {
            // Nothing of the batch was kept: answers computed before the failure are void.
            std::fill(results.begin(), results.end(), result<Receipt>{unavailable()});
            report("submit of " + std::to_string(jobs.size()) + " deliveries failed: " + e.what() +
                   full_hint(e));
        }
        report_commit(std::chrono::steady_clock::now() - started, jobs.size());
        for (std::size_t i = 0; i < jobs.size(); ++i) invoke(jobs[i].done, std::move(results[i]));
        if (queued) notify_committed();
    }

    Receipt insert_submission(const SubmitJob& job) {
        const DeliveryRecord& d = job.delivery;
        const std::int64_t received = to_ms(d.received_at);
        const std::string digest =
            is_sha256_hex(d.body_sha256) ? d.body_sha256 : sha256_hex(d.body);
        const bool by_body = d.duplicate_body_window.count() > 0;
        const std::int64_t key = by_body ? body_key(digest) : 0;
        if (by_body) {
            if (auto earlier = find_same_body(d, digest, key, received)) return std::move(*earlier);
        }
        {
            const std::string headers = pairs_json(d.headers);
            Query query(insert_delivery_);
            query.bind_text(d.source).bind_text(to_string(d.provider));
            if (d.delivery_id.empty()) {
                query.bind_null();
            } else {
                query.bind_text(d.delivery_id);
            }
            query.bind_text(to_string(d.kind)).bind_text(d.forge_event).bind_int(received);
            query.bind_text(headers);
            if (config_.keep_body) {
                query.bind_blob_ref(d.body);
            } else {
                query.bind_null();
            }
            query.bind_text(digest);
            if (by_body) {
                query.bind_int(key);
            } else {
                query.bind_null();
            }
            query.run();
        }
        Receipt receipt;
        // DO NOTHING on the unique key: no row means this (source, delivery id) is already stored,
        // by an earlier transaction or earlier in this one.
        if (sqlite3_changes64(db_.get()) == 0) {
            receipt.duplicate = true;
            receipt.duplicate_of = d.delivery_id;
            return receipt;
        }
        const std::int64_t delivery = sqlite3_last_insert_rowid(db_.get());
        for (const TriggerRequest& t : job.triggers) {
            std::string id = make_trigger_id();
            const std::string job_json = strings_json(t.job);
            const std::string parameters = pairs_json(t.parameters);
            Query query(insert_trigger_);
            query.bind_text(id).bind_int(delivery).bind_text(t.rule).bind_text(t.jenkins);
            query.bind_text(job_json).bind_text(parameters).bind_text(t.cause);
            query.bind_int(received).bind_int(received).bind_int(received).run();
            receipt.trigger_ids.push_back(std::move(id));
        }
        return receipt;
    }

    // The newest delivery of d.source with body `digest` received within the window, as a
    // duplicate receipt; nullopt when there is none.
    std::optional<Receipt> find_same_body(const DeliveryRecord& d, const std::string& digest,
                                          std::int64_t key, std::int64_t received) {
        const std::int64_t window = d.duplicate_body_window.count();
        const std::int64_t since =
            window > received ? std::numeric_limits<std::int64_t>::min() : received - window;
        Query query(find_body_);
        query.bind_int(key).bind_text(digest).bind_text(d.source).bind_int(since);
        if (!query.step()) return std::nullopt;
        Receipt receipt;
        receipt.duplicate = true;
        if (query.is_null(1)) {
            receipt.duplicate_of = "#" + std::to_string(query.int64(0));
        } else {
            receipt.duplicate_of = query.text(1);
        }
        // The same id too: a redelivery, reported as such.
        receipt.same_body = d.delivery_id.empty() || receipt.duplicate_of != d.delivery_id;
        return receipt;
    }

    // Updates waiting together share one transaction; a Task between them keeps its place in
    // the order, so a due() posted after an update() sees it.
    void run_ops(std::vector<Op>& ops) {
        std::vector<UpdateJob> updates;
        for (Op& op : ops) {
            if (auto* update = std::get_if<UpdateJob>(&op)) {
                updates.push_back(std::move(*update));
                continue;
            }
            apply_updates(updates);
            try {
                std::get<Task>(op)(*this);
            } catch (...) {
                // Tasks answer their own callbacks through answer(); nothing is left to fail.
            }
        }
        apply_updates(updates);
    }

    void apply_updates(std::vector<UpdateJob>& jobs) {
        if (jobs.empty()) return;
        std::vector<result<void>> results(jobs.size(), result<void>{unavailable()});
        // Outcomes of attempts commit without their own fsync: the next FULL commit (or
        // checkpoint) makes them durable. A power cut in between can only lose "delivered",
        // so the trigger is sent again: at-least-once, never lost. This halves the syncs per
        // busy cycle, since deliveries and their outcomes alternate.
        exec(db_.get(), "PRAGMA synchronous = NORMAL");
        struct RestoreFull {
            sqlite3* db;
            ~RestoreFull() {
                sqlite3_exec(db, "PRAGMA synchronous = FULL", nullptr, nullptr, nullptr);
            }
        } restore{db_.get()};
        try {
            const auto now = Clock::now();
            transaction([&] {
                for (std::size_t i = 0; i < jobs.size(); ++i) {
                    bool found = false;
                    if (!isolated("update", [&] { found = apply_update(jobs[i].update, now); })) {
                        continue;
                    }
                    if (found) {
                        results[i] = result<void>();
                    } else {
                        report("update of unknown trigger " + jobs[i].update.id);
                    }
                }
            });
        } catch (const std::exception& e) {
            std::fill(results.begin(), results.end(), result<void>{unavailable()});
            report("update of " + std::to_string(jobs.size()) + " triggers failed: " + e.what() +
                   full_hint(e));
        }
        for (std::size_t i = 0; i < jobs.size(); ++i) invoke(jobs[i].done, std::move(results[i]));
        jobs.clear();
    }

    bool apply_update(const TriggerUpdate& u, Clock::time_point now) {
        {
            Query query(update_trigger_);
            query.bind_text(to_string(u.state)).bind_int(to_ms(u.next_attempt_at));
            query.bind_text(u.last_outcome).bind_int(to_ms(now)).bind_text(u.attempt.queue_url);
            query.bind_int(u.attempt.counted ? 1 : 0).bind_text(u.id).run();
        }
        if (sqlite3_changes64(db_.get()) == 0) return false;
        Query query(insert_attempt_);
        query.bind_text(u.id).bind_int(to_ms(u.attempt.at)).bind_int(u.attempt.http_status);
        query.bind_text(u.attempt.outcome).bind_int(u.attempt.duration.count());
        query.bind_text(u.attempt.queue_url).bind_int(u.attempt.counted ? 1 : 0).run();
        return true;
    }

    template <class Fn>
    void transaction(Fn&& fn) {
        Query(begin_).run();
        try {
            fn();
            Query(commit_).run();
        } catch (...) {
            // A failed COMMIT (or a failed step under SQLITE_BUSY) can leave the transaction
            // open; I/O errors may already have rolled it back.
            if (!sqlite3_get_autocommit(db_.get())) {
                try {
                    Query(rollback_).run();
                } catch (...) {
                }
            }
            throw;
        }
    }

    // A savepoint per job, so a failure confined to one job's data (a body over SQLite's size
    // limit, a constraint) fails only that job. Failures that doom the transaction propagate.
    // Returns whether the job's changes stand (until the transaction's fate decides for all).
    template <class Fn>
    bool isolated(std::string_view what, Fn&& fn) {
        Query(savepoint_).run();
        try {
            fn();
            Query(release_).run();
            return true;
        } catch (const SqliteError& e) {
            if (!confined_to_job(e.code())) throw;
            undo_savepoint(what, e.what());
        } catch (const std::exception& e) {
            undo_savepoint(what, e.what());
        }
        return false;
    }

    void undo_savepoint(std::string_view what, const char* why) {
        if (sqlite3_get_autocommit(db_.get())) throw std::runtime_error(why);
        Query(rollback_to_).run();
        Query(release_).run();
        report(std::string(what) + " failed: " + why);
    }

    void notify_committed() {
        std::vector<std::function<void()>> callbacks;
        {
            std::lock_guard lock(mutex_);
            callbacks = committed_;
        }
        for (const auto& callback : callbacks) invoke(callback);
    }

    void report_commit(std::chrono::duration<double> seconds, std::size_t batch) {
        std::vector<CommitStats> callbacks;
        {
            std::lock_guard lock(mutex_);
            callbacks = commit_stats_;
        }
        for (const auto& callback : callbacks) invoke(callback, seconds, batch);
    }

    // SQLite says "database or disk is full" for both; with store.max_size set, name the limit.
    std::string full_hint(const std::exception& e) const {
        const auto* sqlite = dynamic_cast<const SqliteError*>(&e);
        if (sqlite == nullptr || (sqlite->code() & 0xff) != SQLITE_FULL || config_.max_size == 0) {
            return {};
        }
        return " (the database reached store.max_size, " + std::to_string(config_.max_size) +
               " bytes, unless the disk itself is full; pruning frees room)";
    }

    void report(const std::string& message) {
        std::vector<std::function<void(std::string_view)>> callbacks;
        {
            std::lock_guard lock(mutex_);
            callbacks = errors_;
        }
        for (const auto& callback : callbacks) invoke(callback, std::string_view(message));
    }

    // Declared first so it is closed last, after every statement is finalized.
    DbPtr db_;
    const StoreConfig config_;
    Statement begin_, commit_, rollback_, savepoint_, release_, rollback_to_;
    Statement insert_delivery_, find_body_, insert_trigger_, select_due_, update_trigger_;
    Statement insert_attempt_;
    Statement select_next_due_, select_counts_, select_attempts_;
    Statement prune_attempts_, prune_triggers_, prune_deliveries_;
    Statement find_delivery_by_seq_, find_delivery_in_source_, find_delivery_anywhere_;
    Statement select_delivery_, select_delivery_triggers_, replay_trigger_, select_replayable_;
    Statement select_backlog_;
    // Prepared on first use, one per combination of listing filters (see list_sql()).
    std::array<std::unique_ptr<Statement>, 8> list_statements_;

    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<SubmitJob> submits_;
    std::deque<Op> ops_;
    bool stop_ = false;
    std::vector<std::function<void()>> committed_;
    std::vector<std::function<void(std::string_view)>> errors_;
    std::vector<CommitStats> commit_stats_;
    std::thread thread_;
};

result<std::shared_ptr<SqliteStore>> SqliteStore::open(const std::string& state_dir,
                                                       const StoreConfig& config, std::string* why,
                                                       SqliteOptions options) {
    const std::string path = (std::filesystem::path(state_dir) / k_db_file).string();
    const auto fail = [&](const std::string& reason) {
        if (why) *why = "cannot open " + path + ": " + reason;
        return result<std::shared_ptr<SqliteStore>>{unavailable()};
    };
    if (state_dir.empty()) return fail("the state directory is empty");
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    if (ec) return fail("cannot create directory " + state_dir + ": " + ec.message());

    // The database holds every stored webhook body: only its owner may read it. SQLite would
    // create it with 0644 (less the umask), and gives the -wal and -shm files the same mode.
    if (const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600); fd >= 0) {
        ::close(fd);
    } else {
        return fail(std::string("cannot create the database file: ") + std::strerror(errno));
    }
    sqlite3* raw = nullptr;
    const int rc =
        sqlite3_open_v2(path.c_str(), &raw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    DbPtr db(raw);
    if (rc != SQLITE_OK) return fail(raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
    try {
        configure(db.get(), options, config);
        auto core = std::make_shared<Core>(std::move(db), config);
        // The store exists before the thread, so a failure to start it still stops cleanly.
        std::shared_ptr<SqliteStore> store(new SqliteStore(core));
        Core::start(core);
        return store;
    } catch (const std::exception& e) {
        return fail(e.what());
    }
}

SqliteStore::SqliteStore(std::shared_ptr<Core> core) : core_(std::move(core)) {}

SqliteStore::~SqliteStore() {
    core_->stop();
}

void SqliteStore::close() {
    core_->stop();
}

void SqliteStore::submit(DeliveryRecord delivery, std::vector<TriggerRequest> triggers,
                         SubmitHandler done) {
    core_->post(Core::SubmitJob{std::move(delivery), std::move(triggers), std::move(done)});
}

void SqliteStore::due(std::string jenkins, std::chrono::system_clock::time_point now,
                      std::size_t limit, std::vector<std::string> exclude, DueHandler done) {
    core_->post(
        Core::Op{Core::Task{[jenkins = std::move(jenkins), now, limit, exclude = std::move(exclude),
                             done = std::move(done)](Core& core) {
            core.answer(done, "due", [&] { return core.select_due(jenkins, now, limit, exclude); });
        }}});
}

void SqliteStore::update(TriggerUpdate update, UpdateHandler done) {
    core_->post(Core::Op{Core::UpdateJob{std::move(update), std::move(done)}});
}

void SqliteStore::next_due(
    std::string jenkins,
    std::function<void(result<std::optional<std::chrono::system_clock::time_point>>)> done) {
    core_->post(
        Core::Op{Core::Task{[jenkins = std::move(jenkins), done = std::move(done)](Core& core) {
            core.answer(done, "next_due", [&] { return core.select_next_due(jenkins); });
        }}});
}

void SqliteStore::on_committed(std::function<void()> callback) {
    core_->add_committed(std::move(callback));
}

void SqliteStore::prune(std::chrono::system_clock::time_point now,
                        std::function<void(result<std::size_t>)> done) {
    core_->post(Core::Op{Core::Task{[now, done = std::move(done)](Core& core) {
        core.answer(done, "prune", [&] { return core.prune_before(now); });
    }}});
}

void SqliteStore::counts(std::string jenkins,
                         std::function<void(result<std::array<std::size_t, 4>>)> done) {
    core_->post(
        Core::Op{Core::Task{[jenkins = std::move(jenkins), done = std::move(done)](Core& core) {
            core.answer(done, "counts", [&] { return core.select_counts(jenkins); });
        }}});
}

void SqliteStore::attempts(std::string trigger_id,
                           std::function<void(result<std::vector<Attempt>>)> done) {
    core_->post(Core::Op{
        Core::Task{[trigger_id = std::move(trigger_id), done = std::move(done)](Core& core) {
            core.answer(done, "attempts", [&] { return core.select_attempts(trigger_id); });
        }}});
}

void SqliteStore::on_error(std::function<void(std::string_view)> callback) {
    core_->add_error(std::move(callback));
}

void SqliteStore::on_commit_stats(
    std::function<void(std::chrono::duration<double> seconds, std::size_t batch)> callback) {
    core_->add_commit_stats(std::move(callback));
}

void SqliteStore::list_deliveries(DeliveryQuery query, PageHandler done) {
    core_->post(Core::Op{Core::Task{[query = std::move(query), done = std::move(done)](Core& core) {
        core.answer(done, "list deliveries", [&] { return core.list_page(query); });
    }}});
}

void SqliteStore::get_delivery(std::string source, std::string delivery_id, DetailHandler done) {
    core_->post(Core::Op{Core::Task{[source = std::move(source),
                                     delivery_id = std::move(delivery_id),
                                     done = std::move(done)](Core& core) {
        core.answer(done, "get delivery", [&] { return core.read_detail(source, delivery_id); });
    }}});
}

void SqliteStore::replay(std::vector<std::string> trigger_ids,
                         std::chrono::system_clock::time_point now, IdsHandler done) {
    core_->post(Core::Op{
        Core::Task{[ids = std::move(trigger_ids), now, done = std::move(done)](Core& core) {
            core.answer_queued(done, "replay", [&] { return core.replay_ids(ids, now); });
        }}});
}

void SqliteStore::replay_matching(ReplayQuery query, std::chrono::system_clock::time_point now,
                                  IdsHandler done) {
    core_->post(Core::Op{Core::Task{[query = std::move(query), now,
                                     done = std::move(done)](Core& core) {
        if (query.dry_run) {
            // Nothing is re-queued, so the dispatcher has nothing new to look at.
            core.answer(done, "replay matching (dry run)",
                        [&] { return core.replay_query(query, now); });
            return;
        }
        core.answer_queued(done, "replay matching", [&] { return core.replay_query(query, now); });
    }}});
}

void SqliteStore::add_triggers(std::string source, std::string delivery_id,
                               std::vector<TriggerRequest> triggers, IdsHandler done) {
    core_->post(
        Core::Op{Core::Task{[source = std::move(source), delivery_id = std::move(delivery_id),
                             triggers = std::move(triggers), done = std::move(done)](Core& core) {
            core.answer_queued(done, "add triggers",
                               [&] { return core.add_to_delivery(source, delivery_id, triggers); });
        }}});
}

void SqliteStore::backlog(CountsHandler done) {
    core_->post(Core::Op{Core::Task{[done = std::move(done)](Core& core) {
        core.answer(done, "backlog", [&] { return core.select_backlog(); });
    }}});
}

}  // namespace hookrelay::store
