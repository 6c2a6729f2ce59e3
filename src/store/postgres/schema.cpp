#include "store/postgres/schema.hpp"

#include <array>
#include <string>
#include <string_view>

namespace hookrelay::store::postgres {
namespace {

namespace asio = boost::asio;

// Version 1. Times are milliseconds since the epoch (bigint), as callers pass them (`now` is an
// argument, so tests move time without waiting). Columns holding bytes from outside (forges,
// Jenkins) are bytea, since those bytes need not be UTF-8 and must come back unchanged; names
// from the configuration and the store's own words are text. delivery_id is NULL when the forge
// sent none: NULLs never collide in the unique constraint, so such deliveries are never
// deduplicated by id. A trigger's claim (claim_id, claim_owner, claim_expires_at) is NULL when it
// has none; claim_id is the fencing token complete() must present.
constexpr std::array<std::string_view, 17> k_v1 = {
    R"sql(CREATE TABLE hookrelay_schema (version integer NOT NULL))sql",
    R"sql(INSERT INTO hookrelay_schema (version) VALUES (0))sql",
    R"sql(CREATE TABLE deliveries (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL,
    provider text NOT NULL,
    delivery_id bytea,
    kind text NOT NULL,
    forge_event bytea NOT NULL,
    received_at bigint NOT NULL,
    headers bytea NOT NULL,
    body bytea,
    body_sha256 text NOT NULL,
    body_key bigint,
    UNIQUE (source, delivery_id)
))sql",
    // The admin listing walks one source newest first; a delivery id is looked up over every
    // source; a body (duplicate_body_window) by the first 64 bits of its digest, indexed only for
    // deliveries submitted with a window.
    R"sql(CREATE INDEX deliveries_source ON deliveries (source, seq))sql",
    R"sql(CREATE INDEX deliveries_delivery_id ON deliveries (delivery_id))sql",
    R"sql(CREATE INDEX deliveries_body ON deliveries (body_key) WHERE body_key IS NOT NULL)sql",
    R"sql(CREATE TABLE triggers (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    delivery bigint NOT NULL REFERENCES deliveries (seq),
    rule text NOT NULL,
    jenkins text NOT NULL,
    job bytea NOT NULL,
    parameters bytea NOT NULL,
    cause bytea NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'retrying', 'delivered', 'dead')),
    attempts integer NOT NULL,
    created_at bigint NOT NULL,
    next_attempt_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    last_outcome bytea NOT NULL,
    queue_url bytea NOT NULL,
    claim_id text,
    claim_owner text,
    claim_expires_at bigint
))sql",
    // Only open triggers, in the order claims take them: claim() and next_due() read one
    // Jenkins' range, however many finished triggers the table holds.
    R"sql(CREATE INDEX triggers_due ON triggers (jenkins, next_attempt_at, seq)
    WHERE state IN ('pending', 'retrying'))sql",
    // Claimed triggers only (a few per instance): live claims per Jenkins (max_in_flight) and per
    // instance, and the claim ids renew/release name.
    R"sql(CREATE INDEX triggers_claimed ON triggers (jenkins, claim_expires_at)
    WHERE claim_id IS NOT NULL)sql",
    R"sql(CREATE INDEX triggers_claim_id ON triggers (claim_id) WHERE claim_id IS NOT NULL)sql",
    R"sql(CREATE INDEX triggers_delivery ON triggers (delivery, seq))sql",
    // The admin listing filtered by state walks this backwards from its cursor.
    R"sql(CREATE INDEX triggers_state ON triggers (state, delivery))sql",
    R"sql(CREATE TABLE attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trigger_seq bigint NOT NULL REFERENCES triggers (seq) ON DELETE CASCADE,
    at bigint NOT NULL,
    http_status integer NOT NULL,
    outcome bytea NOT NULL,
    duration_ms bigint NOT NULL,
    queue_url bytea NOT NULL,
    counted boolean NOT NULL,
    instance text NOT NULL
))sql",
    R"sql(CREATE INDEX attempts_trigger ON attempts (trigger_seq, id))sql",
    // One row per held Jenkins, shared by every instance; the probe lease lets one instance at a
    // time probe it.
    R"sql(CREATE TABLE holds (
    jenkins text PRIMARY KEY,
    reason bytea NOT NULL,
    since bigint NOT NULL,
    next_probe_at bigint NOT NULL,
    probes integer NOT NULL,
    probe_owner text,
    probe_expires_at bigint
))sql",
    // The daemons using the store, heartbeating from their store threads.
    R"sql(CREATE TABLE instances (
    id text PRIMARY KEY,
    host text NOT NULL,
    version text NOT NULL,
    started_at bigint NOT NULL,
    heartbeat_at bigint NOT NULL
))sql",
    R"sql(CREATE INDEX instances_heartbeat ON instances (heartbeat_at))sql",
};

// Version 2: why the rules that queued nothing did not (DeliveryRecord::rule_reasons), as JSON in
// bytea (a reason quotes payload values); NULL for deliveries recorded before, which `deliveries
// show` tells apart from "every rule matched". Adding a column without a default rewrites no
// rows.
constexpr std::array<std::string_view, 1> k_v2 = {
    R"sql(ALTER TABLE deliveries ADD COLUMN rule_reasons bytea)sql",
};

// Version 3 (issue 9): following delivered triggers to their builds and posting commit statuses.
// Every column comes with a constant default, so adding it rewrites no rows.
//  * deliveries: the repository and ref of the event, for listings.
//  * triggers: the request's follow mode and status target (JSON; NULL when none); the build
//    record (JSON; '' while empty); `outcome`, trigger_outcome() stored with every write so the
//    listing filters on it by index (the triggers of older schemas are delivered, dead or
//    open, and their outcome then is their state); the follow chore (follow_due_at NULL when
//    not following, its claim, failed polls in a row); the status chore (the newest wish and
//    its number, the number posted, what the forge last accepted, failed posts, the last error,
//    when due, its claim).
constexpr std::array<std::string_view, 29> k_v3 = {
    R"sql(ALTER TABLE deliveries ADD COLUMN repository bytea NOT NULL DEFAULT '')sql",
    R"sql(ALTER TABLE deliveries ADD COLUMN ref bytea NOT NULL DEFAULT '')sql",
    R"sql(ALTER TABLE triggers ADD COLUMN follow text NOT NULL DEFAULT 'none'
    CHECK (follow IN ('none', 'started', 'finished')))sql",
    R"sql(ALTER TABLE triggers ADD COLUMN status_target bytea)sql",
    R"sql(ALTER TABLE triggers ADD COLUMN build bytea NOT NULL DEFAULT '')sql",
    // The first default only stands for the rows already there (delivered ones, the most); the
    // others get their state below. Every write of this version names the outcome; the later
    // default is for the triggers instances of version 2 still running queue (prune() corrects
    // the outcome of those they finish).
    R"sql(ALTER TABLE triggers ADD COLUMN outcome text NOT NULL DEFAULT 'delivered')sql",
    R"sql(UPDATE triggers SET outcome = state WHERE state <> 'delivered')sql",
    R"sql(ALTER TABLE triggers ALTER COLUMN outcome SET DEFAULT 'pending')sql",
    R"sql(ALTER TABLE triggers ADD COLUMN follow_due_at bigint)sql",
    R"sql(ALTER TABLE triggers ADD COLUMN follow_claim_id text)sql",
    R"sql(ALTER TABLE triggers ADD COLUMN follow_owner text)sql",
    R"sql(ALTER TABLE triggers ADD COLUMN follow_expires_at bigint)sql",
    R"sql(ALTER TABLE triggers ADD COLUMN follow_tries integer NOT NULL DEFAULT 0)sql",
    R"sql(ALTER TABLE triggers ADD COLUMN status_wanted bytea NOT NULL DEFAULT '')sql",
    R"sql(ALTER TABLE triggers ADD COLUMN status_wanted_seq bigint NOT NULL DEFAULT 0)sql",
    R"sql(ALTER TABLE triggers ADD COLUMN status_posted_seq bigint NOT NULL DEFAULT 0)sql",
    R"sql(ALTER TABLE triggers ADD COLUMN status_posted bytea NOT NULL DEFAULT '')sql",
    R"sql(ALTER TABLE triggers ADD COLUMN status_tries integer NOT NULL DEFAULT 0)sql",
    R"sql(ALTER TABLE triggers ADD COLUMN status_error bytea NOT NULL DEFAULT '')sql",
    R"sql(ALTER TABLE triggers ADD COLUMN status_due_at bigint)sql",
    R"sql(ALTER TABLE triggers ADD COLUMN status_claim_id text)sql",
    R"sql(ALTER TABLE triggers ADD COLUMN status_owner text)sql",
    R"sql(ALTER TABLE triggers ADD COLUMN status_expires_at bigint)sql",
    // The chores' indexes are partial, like triggers_due and triggers_claimed: a submitted
    // trigger enters none of them, and claiming a chore reads only the open ones (following,
    // a status to post) and the claimed ones.
    R"sql(CREATE INDEX triggers_follow_due ON triggers (jenkins, follow_due_at, seq)
    WHERE follow_due_at IS NOT NULL)sql",
    R"sql(CREATE INDEX triggers_follow_claimed ON triggers (jenkins, follow_expires_at)
    WHERE follow_claim_id IS NOT NULL)sql",
    // Status chores are keyed by the delivery's source: the few open ones are joined with it.
    R"sql(CREATE INDEX triggers_status_due ON triggers (status_due_at, seq)
    WHERE status_wanted_seq > status_posted_seq)sql",
    R"sql(CREATE INDEX triggers_status_claimed ON triggers (status_expires_at)
    WHERE status_claim_id IS NOT NULL)sql",
    // The listing filtered by outcome walks this backwards from its cursor. Only delivered
    // triggers: the outcome of the others is their state (triggers_state), and a submitted
    // trigger enters no index more than before.
    R"sql(CREATE INDEX triggers_outcome ON triggers (outcome, delivery)
    WHERE state = 'delivered')sql",
    // BuildRecord::merged_with: the newest other trigger given the same queue item.
    R"sql(CREATE INDEX triggers_queue_url ON triggers (queue_url, seq) WHERE queue_url <> '')sql",
};

// Version 4 (issue 10): coalescing and multibranch scans. Every column comes with a constant
// default, so adding it rewrites no rows.
//  * triggers: the state `superseded` (the CHECK is replaced: checking it reads the table once,
//    rewrites nothing); the request's coalesce key, cancel_superseded, multibranch and scan_only;
//    coalesce_scope(), the bytes submit() compares (bytea: the key quotes payload values);
//    superseded_by, '' unless superseded.
//  * scans: the last multibranch scan requested per (jenkins, project), shared by every
//    instance (request_scan()).
constexpr std::array<std::string_view, 11> k_v4 = {
    R"sql(ALTER TABLE triggers DROP CONSTRAINT triggers_state_check)sql",
    R"sql(ALTER TABLE triggers ADD CONSTRAINT triggers_state_check
    CHECK (state IN ('pending', 'retrying', 'delivered', 'dead', 'superseded')))sql",
    R"sql(ALTER TABLE triggers ADD COLUMN coalesce bytea NOT NULL DEFAULT '')sql",
    R"sql(ALTER TABLE triggers ADD COLUMN coalesce_scope bytea NOT NULL DEFAULT '')sql",
    R"sql(ALTER TABLE triggers ADD COLUMN cancel_superseded boolean NOT NULL DEFAULT false)sql",
    R"sql(ALTER TABLE triggers ADD COLUMN multibranch integer NOT NULL DEFAULT 0)sql",
    R"sql(ALTER TABLE triggers ADD COLUMN scan_only boolean NOT NULL DEFAULT false)sql",
    R"sql(ALTER TABLE triggers ADD COLUMN superseded_by text NOT NULL DEFAULT '')sql",
    // Partial, like triggers_due: a trigger without a coalesce key enters neither. The open ones
    // are what submit() supersedes and complete() looks for; the delivered ones are the
    // predecessors whose queue items cancel_superseded cancels.
    R"sql(CREATE INDEX triggers_coalesce_open ON triggers (coalesce_scope, delivery)
    WHERE state IN ('pending', 'retrying') AND coalesce_scope <> '')sql",
    R"sql(CREATE INDEX triggers_coalesce_delivered ON triggers (coalesce_scope, delivery)
    WHERE state = 'delivered' AND coalesce_scope <> '')sql",
    R"sql(CREATE TABLE scans (
    jenkins text NOT NULL,
    project bytea NOT NULL,
    requested_at bigint NOT NULL,
    PRIMARY KEY (jenkins, project)
))sql",
};

// Version 5 (issue 12): the deliveries without a trigger ("unmatched"), for the listing's
// filter, which otherwise probed every stored delivery for a trigger to find none. submit()
// adds a row for a delivery that queued nothing, add_triggers() removes it, and it goes with its
// delivery. Filled once from the triggers table: one pass over the deliveries, small rows only.
// An instance of version 4 still running during the upgrade does not add rows: a delivery it
// accepts with no trigger is missing from that filter (only from it).
constexpr std::array<std::string_view, 2> k_v5 = {
    R"sql(CREATE TABLE unmatched (
    delivery bigint PRIMARY KEY REFERENCES deliveries (seq) ON DELETE CASCADE
))sql",
    R"sql(INSERT INTO unmatched (delivery)
    SELECT d.seq FROM deliveries d
    WHERE NOT EXISTS (SELECT 1 FROM triggers t WHERE t.delivery = d.seq))sql",
};

// Version 6 (issue 12): a body over ~2 KB is compressed where it is stored (TOAST), with pglz by
// default, inside the INSERT a submit waits for. With lz4 instead the server spends a fifth to a
// third less CPU per accepted delivery and the load benchmark accepts ~30 % more
// (docs/performance.md).
// Changes only the column's setting, without a rewrite: stored bodies keep their pglz (each datum
// says how it was compressed; both read back). Servers before 14, or built without lz4, keep pglz.
constexpr std::string_view k_v6_offers_lz4 = R"sql(SELECT EXISTS (
    SELECT 1 FROM pg_settings
    WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)))sql";
constexpr std::string_view k_v6 =
    R"sql(ALTER TABLE deliveries ALTER COLUMN body SET COMPRESSION lz4)sql";

// Version 7 (issue 12): the listing's `since` filter walked the deliveries newest first testing
// received_at on each, so a `since` later than most deliveries read all of them (515 ms at
// 1,000,000). With an index on received_at the planner, which plans each listing for its values,
// reads the few deliveries received since then from it when there are few, and still walks the
// key newest first when there are many (its estimate for a value past the histogram looks at the
// index's actual end). The entries are appended at the index's right edge, as received_at grows.
// And the triggers whose outcome a version 2 instance left stale (prune() corrects them, see
// k_correct_outcomes in admin.cpp) in a partial index of their own, empty unless such an instance
// ran: the correction read every dead and retrying trigger at the start of each prune pass
// (585 ms at 450,000). Its predicate is over columns that other indexes hold already, so it costs
// updates nothing more than checking it.
// Building each index reads its table once, in the migration's transaction, holding a SHARE lock
// on it until COMMIT: the writes of instances still running wait (their reads go on). Nothing here
// takes a stronger lock: dropping the index on delivery_id alone (a random page written per
// submit; SQLite dropped its own in schema 8) would stop their reads too, and wait behind any long
// reader such as a backup while everything else queued behind it. So it stays.
constexpr std::array<std::string_view, 2> k_v7 = {
    R"sql(CREATE INDEX deliveries_received_at ON deliveries (received_at))sql",
    R"sql(CREATE INDEX triggers_outcome_stale ON triggers (seq)
    WHERE (state = 'delivered' AND outcome IN ('pending', 'retrying'))
       OR (state IN ('retrying', 'dead') AND outcome <> state))sql",
};

// Version 8 (issue 12): bodies in a table of their own, partitioned by the UTC hour a delivery
// was received (received_at / 3,600,000), one partition per hour (bodies.cpp adds them). A prune
// pass deleted each expired body row by row, and every TOAST page it changed was written to the
// WAL whole and then again to its file: ~1.5 GB for 500,000 bodies, the disk busy for the whole
// pass and the accepts' commits waiting behind it. Dropping an hour whose deliveries are all gone
// writes nearly nothing. There is no foreign key to deliveries: a delivery's row may go before its
// hour's partition does, and its body is then no longer read. Bodies stored before stay in
// deliveries.body (read first, pruned with their rows); so does a body whose hour has no partition
// yet. An instance of version 7 still running during the upgrade writes its bodies there too, but
// does not read the new table: it shows the deliveries the others accept without their body.
// Dropping a partition without holding up inserts needs PostgreSQL 14: on an older server the
// table is not created (the bodies stay in their rows, as before) until the server is upgraded.
constexpr std::array<std::string_view, 1> k_v8 = {
    R"sql(CREATE TABLE bodies (
    hour bigint NOT NULL,
    delivery bigint NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (delivery, hour)
) PARTITION BY RANGE (hour))sql",
};
constexpr std::string_view k_v8_wanted = R"sql(
SELECT current_setting('server_version_num')::integer >= 140000
   AND to_regclass('bodies') IS NULL)sql";
// Partitions copy the parent's compression (CREATE TABLE ... LIKE ... INCLUDING ALL).
constexpr std::string_view k_v8_lz4 =
    R"sql(ALTER TABLE bodies ALTER COLUMN body SET COMPRESSION lz4)sql";

// Version 10 (issue 12): a delivery's rule reasons likewise. They are ~86 bytes a rule: with
// 1,000 rules 86 KB of JSON a row, which the server compressed with pglz inside the submit's
// INSERT (~1.8 ms of its CPU per delivery; docs/performance.md, "No string per rule, and the
// daemon with 1,000 rules"). Reasons stored before keep their pglz.
constexpr std::string_view k_v10 =
    R"sql(ALTER TABLE deliveries ALTER COLUMN rule_reasons SET COMPRESSION lz4)sql";

// Version 11: each instance's Jenkins entries as a JSON object of name → url, written with its
// heartbeat; NULL for an instance of an older version.
constexpr std::string_view k_v11 =
    R"sql(ALTER TABLE instances ADD COLUMN IF NOT EXISTS jenkins text)sql";

}  // namespace

asio::awaitable<int> migrate(Connection& c, std::chrono::milliseconds timeout) {
    co_await c.exec("BEGIN");
    {
        // Waiting for another instance's migration may take longer than one statement may.
        Params p;
        p.text(std::to_string(timeout.count()) + "ms");
        co_await c.exec("SELECT set_config('statement_timeout', $1, true)", std::move(p));
    }
    {
        Params p;
        p.int4(locks::k_space).int4(locks::k_migrate);
        co_await c.exec("SELECT pg_advisory_xact_lock($1, $2)", std::move(p), timeout);
    }
    // Read after the lock: each statement sees what committed before it started.
    const Rows found = co_await c.exec(
        "SELECT to_regclass('hookrelay_schema') IS NOT NULL, "
        "to_regclass('deliveries') IS NOT NULL OR to_regclass('triggers') IS NOT NULL");
    int version = 0;
    if (found.boolean(0, 0)) {
        const Rows rows = co_await c.exec("SELECT max(version) FROM hookrelay_schema");
        version = rows.is_null(0, 0) ? 0 : static_cast<int>(rows.int64(0, 0));
    } else if (found.boolean(0, 1)) {
        throw DbError(
            errc::store_incompatible,
            "the database has tables named like hookrelay's (deliveries, triggers) but no "
            "hookrelay_schema: it is not a hookrelay store; use a database of its own");
    }
    if (version > k_schema_version) {
        throw DbError(errc::store_incompatible, "schema version " + std::to_string(version) +
                                                    " is newer than this hookrelay knows (" +
                                                    std::to_string(k_schema_version) +
                                                    "): upgrade hookrelay");
    }
    if (version < 1) {
        for (std::string_view statement : k_v1) co_await c.exec(statement, {}, timeout);
    }
    if (version < 2) {
        for (std::string_view statement : k_v2) co_await c.exec(statement, {}, timeout);
    }
    if (version < 3) {
        for (std::string_view statement : k_v3) co_await c.exec(statement, {}, timeout);
    }
    if (version < 4) {
        for (std::string_view statement : k_v4) co_await c.exec(statement, {}, timeout);
    }
    if (version < 5) {
        for (std::string_view statement : k_v5) co_await c.exec(statement, {}, timeout);
    }
    if (version < 6) {
        const Rows lz4 = co_await c.exec(k_v6_offers_lz4);
        if (lz4.boolean(0, 0)) co_await c.exec(k_v6, {}, timeout);
    }
    if (version < 7) {
        for (std::string_view statement : k_v7) co_await c.exec(statement, {}, timeout);
    }
    {
        // Version 8's table, on PostgreSQL 14 or later (DETACH PARTITION ... CONCURRENTLY); an
        // older server keeps the bodies in their rows, and gets the table once it is upgraded.
        const Rows wanted = co_await c.exec(k_v8_wanted);
        if (wanted.boolean(0, 0)) {
            for (std::string_view statement : k_v8) co_await c.exec(statement, {}, timeout);
            const Rows lz4 = co_await c.exec(k_v6_offers_lz4);
            if (lz4.boolean(0, 0)) co_await c.exec(k_v8_lz4, {}, timeout);
        }
    }
    if (version < 10) {
        const Rows lz4 = co_await c.exec(k_v6_offers_lz4);
        if (lz4.boolean(0, 0)) co_await c.exec(k_v10, {}, timeout);
    }
    if (version < 11) co_await c.exec(k_v11, {}, timeout);
    if (version < k_schema_version) {
        Params p;
        p.int4(k_schema_version);
        co_await c.exec("UPDATE hookrelay_schema SET version = $1", std::move(p));
    }
    co_await c.exec("COMMIT");
    co_return version;
}

}  // namespace hookrelay::store::postgres
