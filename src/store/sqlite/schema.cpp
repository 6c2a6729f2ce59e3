#include "store/sqlite/schema.hpp"

#include "store/sqlite/connection.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

namespace hookrelay::store::sqlite {
namespace {

// Version 1. triggers.seq is the rowid: it gives "created order" a stable meaning (an implicit
// rowid may be renumbered by VACUUM) at the same cost as a TEXT primary key, which SQLite keeps as
// a separate unique index anyway. delivery_id is NULL when the forge sent none: NULLs never
// collide in a UNIQUE index, so such deliveries are never deduplicated.
constexpr const char* k_schema_v1 = R"sql(
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
-- Only open triggers, in the order the dispatcher takes them: claims and next_due() read the
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

// Version 3: the leased queue. A claimed trigger has a claim_id (the fencing token an outcome
// must present), its owner instance and the lease's expiry; claims are few (at most what is in
// flight), so both indexes are partial and cost nothing for the unclaimed rest: one finds a
// claim by its id, the other counts a Jenkins' live claims (max_in_flight) and an instance's.
// Adding columns with defaults rewrites no rows, so the upgrade is instant on any size of file.
constexpr const char* k_schema_v3 = R"sql(
ALTER TABLE triggers ADD COLUMN claim_id TEXT;
ALTER TABLE triggers ADD COLUMN claim_owner TEXT;
ALTER TABLE triggers ADD COLUMN claim_expires_at INTEGER;
CREATE UNIQUE INDEX triggers_claim ON triggers (claim_id) WHERE claim_id IS NOT NULL;
CREATE INDEX triggers_claimed ON triggers (jenkins, claim_expires_at)
    WHERE claim_id IS NOT NULL;
ALTER TABLE attempts ADD COLUMN instance TEXT NOT NULL DEFAULT '';
CREATE TABLE holds (
    jenkins TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    since INTEGER NOT NULL,
    next_probe_at INTEGER NOT NULL,
    probes INTEGER NOT NULL,
    probe_owner TEXT,
    probe_expires_at INTEGER
);
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
PRAGMA user_version = 3;
)sql";

// Version 4: why the rules that queued nothing did not (DeliveryRecord::rule_reasons), as JSON
// text; NULL for deliveries recorded before, which `deliveries show` tells apart from "every rule
// matched". A column without a default rewrites no rows.
constexpr const char* k_schema_v4 = R"sql(
ALTER TABLE deliveries ADD COLUMN rule_reasons TEXT;
PRAGMA user_version = 4;
)sql";

// Version 5: following builds and posting commit statuses (issue 9). Every column has a default
// (or is NULL), so adding them rewrites no rows and a submit's insert names only follow and
// status_target beyond what it did. `outcome` is trigger_outcome() as of the trigger's last
// write, for the listing's filter: rows written before are rewritten once to their state (a
// trigger delivered before had no build record, so its outcome is its state).
//  * follow_*: the follow chore; follow_due_at is NULL unless the build is still followed.
//  * status_*: the status chore; status_due_at is NULL unless a wish is still to be posted
//    (status_wanted_seq > status_posted_seq). 0 means "due at once".
// The chore indexes are partial: an ordinary trigger (not followed, no status wished) has no
// entry in them, and the claims read only open chores.
constexpr const char* k_schema_v5 = R"sql(
ALTER TABLE deliveries ADD COLUMN repository TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN ref TEXT NOT NULL DEFAULT '';
ALTER TABLE triggers ADD COLUMN follow TEXT NOT NULL DEFAULT 'none';
ALTER TABLE triggers ADD COLUMN status_target TEXT;
ALTER TABLE triggers ADD COLUMN build TEXT;
ALTER TABLE triggers ADD COLUMN outcome TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE triggers ADD COLUMN follow_due_at INTEGER;
ALTER TABLE triggers ADD COLUMN follow_claim_id TEXT;
ALTER TABLE triggers ADD COLUMN follow_owner TEXT;
ALTER TABLE triggers ADD COLUMN follow_expires_at INTEGER;
ALTER TABLE triggers ADD COLUMN follow_tries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE triggers ADD COLUMN status_wanted TEXT;
ALTER TABLE triggers ADD COLUMN status_wanted_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE triggers ADD COLUMN status_posted_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE triggers ADD COLUMN status_posted TEXT;
ALTER TABLE triggers ADD COLUMN status_tries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE triggers ADD COLUMN status_error TEXT NOT NULL DEFAULT '';
ALTER TABLE triggers ADD COLUMN status_due_at INTEGER;
ALTER TABLE triggers ADD COLUMN status_claim_id TEXT;
ALTER TABLE triggers ADD COLUMN status_owner TEXT;
ALTER TABLE triggers ADD COLUMN status_expires_at INTEGER;
UPDATE triggers SET outcome = state WHERE state != 'pending';
-- The listing filtered by outcome walks this backwards from its cursor, like triggers_state.
-- Only delivered triggers: before, the outcome is the state (triggers_state serves it), and a
-- submit's insert adds no entry here.
CREATE INDEX triggers_outcome ON triggers (outcome, delivery) WHERE state = 'delivered';
-- Follow chores of one Jenkins in due order; their live claims (max_in_flight).
CREATE INDEX triggers_follow_due ON triggers (jenkins, follow_due_at, seq)
    WHERE follow_due_at IS NOT NULL;
CREATE INDEX triggers_follow_claimed ON triggers (jenkins, follow_expires_at)
    WHERE follow_claim_id IS NOT NULL;
-- Status chores in due order (the source is the delivery's); their live claims.
CREATE INDEX triggers_status_due ON triggers (status_due_at, seq) WHERE status_due_at IS NOT NULL;
CREATE INDEX triggers_status_claimed ON triggers (status_expires_at)
    WHERE status_claim_id IS NOT NULL;
-- A merged delivery's partner: the other trigger Jenkins gave the same queue item. Delivered
-- triggers only; a submit inserts '' and adds no entry.
CREATE INDEX triggers_queue_url ON triggers (queue_url) WHERE queue_url != '';
PRAGMA user_version = 5;
)sql";

// Version 6: coalescing and multibranch scans (issue 10). The request's new fields and
// superseded_by get columns with defaults (no row is rewritten); `scope` is coalesce_scope() of
// the request, '' for a trigger without a coalesce key. Both scope indexes are partial on a
// non-empty scope, so a plain submit (no `coalesce:`) adds no index entry: one serves the
// supersede at submit and complete (open triggers of a scope), the other queued_predecessors
// (delivered ones). `scans` holds each multibranch project's last requested scan.
constexpr const char* k_schema_v6 = R"sql(
ALTER TABLE triggers ADD COLUMN coalesce_key TEXT NOT NULL DEFAULT '';
ALTER TABLE triggers ADD COLUMN cancel_superseded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE triggers ADD COLUMN multibranch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE triggers ADD COLUMN scan_only INTEGER NOT NULL DEFAULT 0;
ALTER TABLE triggers ADD COLUMN superseded_by TEXT NOT NULL DEFAULT '';
ALTER TABLE triggers ADD COLUMN scope TEXT NOT NULL DEFAULT '';
CREATE INDEX triggers_scope_open ON triggers (scope, delivery)
    WHERE scope != '' AND state IN ('pending', 'retrying');
CREATE INDEX triggers_scope_delivered ON triggers (scope, delivery)
    WHERE scope != '' AND state = 'delivered';
CREATE TABLE scans (
    jenkins TEXT NOT NULL,
    project TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    PRIMARY KEY (jenkins, project)
) WITHOUT ROWID;
PRAGMA user_version = 6;
)sql";

// Version 7: the deliveries without a trigger ("unmatched"), for the listing's filter, which
// otherwise had to probe every stored delivery for a trigger to find none (840 ms on a million).
// A row is added by the submit of a delivery that queued nothing and removed when a trigger is
// added to it later (redeliver) or when it is pruned; a submit that queues something writes
// nothing here. The upgrade fills it once from the triggers table: one pass over the deliveries
// (seconds on millions), inserting small rows only; no delivery is rewritten.
constexpr const char* k_schema_v7 = R"sql(
CREATE TABLE unmatched (delivery INTEGER PRIMARY KEY REFERENCES deliveries (id));
INSERT INTO unmatched (delivery)
    SELECT id FROM deliveries d WHERE NOT EXISTS (SELECT 1 FROM triggers t WHERE t.delivery = d.id);
PRAGMA user_version = 7;
)sql";

// Version 8: no index on delivery_id alone. Finding a delivery id in every source (`deliveries
// show <id>` without a source) searches the (source, delivery_id) index once per source instead,
// the sources found by seeks in deliveries_source. Forge delivery ids are random, so that index
// put each submit's entry on a random page of its own: one more page written to the WAL and
// checkpointed per delivery. Dropping an index is instant on any size of file.
constexpr const char* k_schema_v8 = R"sql(
DROP INDEX IF EXISTS deliveries_delivery_id;
PRAGMA user_version = 8;
)sql";

// Version 9: the listing's `since` filter walks a bounded range (issue 12). It walked the
// deliveries newest first testing received_at on each, so a `since` later than most deliveries
// read all of them (289 ms on 400,000). received_marks maps time to ids: for each second that
// the running maximum of received_at (over deliveries in id order) reached, the first delivery
// that reached it. The running maximum never falls as ids grow, so the first mark at or after a
// `since` gives an id below which no delivery has received_at >= since, whatever steps the clock
// took; the listing walks down to it and no further, still testing received_at. A submit adds a
// row only when the second moves on (about one a second under load, one page write), where an
// index on received_at would add an entry to every submit's write; and an index alone would not
// do, as the lowest id of a range of received_at is not a seek. The upgrade computes the marks
// of the stored deliveries in one pass in id order, inserting small rows only.
constexpr const char* k_schema_v9 = R"sql(
CREATE TABLE received_marks (first_delivery INTEGER PRIMARY KEY, second INTEGER NOT NULL);
CREATE UNIQUE INDEX received_marks_second ON received_marks (second);
INSERT OR IGNORE INTO received_marks (first_delivery, second)
    SELECT id, max(received_at / 1000) OVER (ORDER BY id) FROM deliveries ORDER BY id;
PRAGMA user_version = 9;
)sql";

// Version 10: bodies compressed with LZ4 (store/sqlite/stored_body.hpp). body_lz4_size is the
// body's size before compression, NULL for a body stored as received: every body stored before
// this version keeps its bytes and reads back as it did. An added column with no default is
// instant on any size of file. The 8.8 KB GitHub push is stored in ~2.9 KB: each submit writes
// its body twice (into the WAL, then at the checkpoint into the file), and the file holds a third
// of the bodies' bytes.
constexpr const char* k_schema_v10 = R"sql(
ALTER TABLE deliveries ADD COLUMN body_lz4_size INTEGER;
PRAGMA user_version = 10;
)sql";

// Version 11: rule reasons of 1 KiB or more compressed with LZ4 (pack_reasons in
// store/sqlite/stored_body.hpp), rule_reasons_lz4_size their size before; NULL for reasons stored
// as text, as every one before this version. A delivery records why each rule that queued nothing
// did not (~86 bytes a rule): with 1,000 rules 86 KB of text a row, ten times its packed body,
// written into the WAL and again at the checkpoint. Packed, ~11 KB (docs/performance.md, "No
// string per rule, and the daemon with 1,000 rules").
constexpr const char* k_schema_v11 = R"sql(
ALTER TABLE deliveries ADD COLUMN rule_reasons_lz4_size INTEGER;
PRAGMA user_version = 11;
)sql";

// Version 12: how far the intake log (store.intake_log; store/sqlite/intake_log.hpp) is indexed
// into this database. One row, updated in the transaction that indexes the records: at start,
// the log's records above it are indexed again (and only those), so none is lost or doubled.
constexpr const char* k_schema_v12 = R"sql(
CREATE TABLE IF NOT EXISTS intake_position (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_through INTEGER NOT NULL
);
INSERT OR IGNORE INTO intake_position (id, indexed_through) VALUES (1, 0);
PRAGMA user_version = 12;
)sql";

// Version 13: the id of the intake log this database indexes (store/sqlite/intake_log.hpp,
// IntakeLog::read_id), so that a start on another database than the log's (a new file, or a
// copy) is refused instead of replaying the log's records into it (sqlite_store.cpp,
// check_log_identity). No row until a start with the log records it.
constexpr const char* k_schema_v13 = R"sql(
CREATE TABLE IF NOT EXISTS intake_log_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    log_id TEXT NOT NULL
);
PRAGMA user_version = 13;
)sql";

// The new state 'superseded' in the triggers table's CHECK constraint, which ALTER TABLE cannot
// change. The documented procedure for it (https://www.sqlite.org/lang_altertable.html, "Making
// Other Kinds Of Table Schema Changes") edits the table's CREATE text in sqlite_schema under
// writable_schema and bumps schema_version so every connection re-reads the schema: instant on
// any size of file, where rebuilding the table would copy every row and every index. It is safe
// here because the constraint only gets wider (every stored row satisfies the new one), and no
// stored data, index or view depends on the text of a CHECK; the edit is in the upgrade's
// transaction, so a failure leaves the file as it was. The text is checked to be exactly the one
// version 1 wrote, so a hand-edited schema is refused rather than edited blindly.
void allow_superseded_state(sqlite3* db) {
    constexpr const char* k_old = "'pending', 'retrying', 'delivered', 'dead')";
    constexpr const char* k_new = "'pending', 'retrying', 'delivered', 'dead', 'superseded')";
    const auto version = query_int(db, "PRAGMA schema_version");
    exec(db, "PRAGMA writable_schema = ON");
    try {
        int edited = 0;
        {
            Statement edit(db, "widen triggers.state", R"sql(
UPDATE sqlite_master SET sql = replace(sql, ?1, ?2)
WHERE type = 'table' AND name = 'triggers' AND instr(sql, ?1) > 0)sql");
            Query(edit).bind_text(k_old).bind_text(k_new).run();
            edited = sqlite3_changes(db);
        }
        if (edited != 1) {
            throw StoreError(errc::store_incompatible,
                             "the triggers table's state constraint is not the one hookrelay "
                             "created; cannot upgrade the schema");
        }
        exec(db, ("PRAGMA schema_version = " + std::to_string(version + 1)).c_str());
    } catch (...) {
        sqlite3_exec(db, "PRAGMA writable_schema = OFF", nullptr, nullptr, nullptr);
        throw;
    }
    exec(db, "PRAGMA writable_schema = OFF");
}

void enable_wal(sqlite3* db) {
    Statement statement(db, "PRAGMA journal_mode", "PRAGMA journal_mode = WAL");
    Query query(statement);
    const std::string mode = query.step() ? query.text(0) : std::string();
    if (mode != "wal")
        throw std::runtime_error("cannot enable WAL journal mode (got '" + mode + "')");
}

}  // namespace

int prepare(sqlite3* db, const StoreConfig& config, std::chrono::milliseconds busy_timeout) {
    sqlite3_extended_result_codes(db, 1);
    const auto busy =
        std::clamp<std::int64_t>(busy_timeout.count(), 0, std::numeric_limits<int>::max());
    sqlite3_busy_timeout(db, static_cast<int>(busy));

    enable_wal(db);
    // FULL: the WAL is synced at every commit, which is what lets a submit answer only once the
    // delivery survives a crash or power loss.
    exec(db, "PRAGMA synchronous = FULL");
    exec(db, "PRAGMA foreign_keys = ON");
    // FAST: a delete zeroes what it frees only where that costs no extra write. Debian builds
    // SQLite with secure_delete on, so each prune step wrote zeros over every body page it freed
    // (into the WAL, and again at checkpoint) while submits waited behind it. The freed pages go
    // to the free list and are overwritten by the next deliveries' bodies.
    exec(db, "PRAGMA secure_delete = FAST");
    // 8 MiB of page cache (the default is 2 MiB): the open-trigger index and the recent pages
    // stay in memory under load instead of being re-read from the OS for every query.
    exec(db, "PRAGMA cache_size = -8192");
    // Temporary files in memory. Every job of a group transaction runs under a savepoint, which
    // keeps the first image of each page the job changes in a statement journal; past 64 KiB
    // SQLite moved that journal to a new file in /var/tmp for the rest of the transaction, and
    // then wrote each page's image there with two system calls: ~40 files a second under load.
    // In memory, a journal holds at most what one job changes (it is emptied when the job's
    // savepoint is released); sorts and temporary tables are those of bounded queries.
    exec(db, "PRAGMA temp_store = MEMORY");
    if (config.max_size > 0) {
        // A full database answers SQLITE_FULL, which fails the submit (503 to the forge) exactly
        // like a full disk would, but before the disk is actually full.
        const auto page_size = std::max<std::int64_t>(query_int(db, "PRAGMA page_size"), 512);
        const auto pages =
            std::max<std::int64_t>(static_cast<std::int64_t>(config.max_size) / page_size, 1);
        exec(db, ("PRAGMA max_page_count = " + std::to_string(pages)).c_str());
    }

    const auto version = query_int(db, "PRAGMA user_version");
    if (version > k_schema_version) {
        throw StoreError(errc::store_incompatible,
                         "schema version " + std::to_string(version) +
                             " is newer than this hookrelay understands (" +
                             std::to_string(k_schema_version) +
                             "); run a newer hookrelay or move the file away");
    }
    if (version == k_schema_version) return static_cast<int>(version);

    // IMMEDIATE and a second look: two processes opening a new file at once create it once.
    exec(db, "BEGIN IMMEDIATE");
    try {
        const auto current = query_int(db, "PRAGMA user_version");
        if (current < 1) exec(db, k_schema_v1);
        if (current < 2) exec(db, k_schema_v2);
        if (current < 3) exec(db, k_schema_v3);
        if (current < 4) exec(db, k_schema_v4);
        if (current < 5) exec(db, k_schema_v5);
        if (current < 6) {
            allow_superseded_state(db);
            exec(db, k_schema_v6);
        }
        if (current < 7) exec(db, k_schema_v7);
        if (current < 8) exec(db, k_schema_v8);
        if (current < 9) exec(db, k_schema_v9);
        if (current < 10) exec(db, k_schema_v10);
        if (current < 11) exec(db, k_schema_v11);
        if (current < 12) exec(db, k_schema_v12);
        if (current < 13) exec(db, k_schema_v13);
        exec(db, "COMMIT");
        return static_cast<int>(current);
    } catch (...) {
        if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

}  // namespace hookrelay::store::sqlite
