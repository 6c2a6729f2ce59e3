// The hours of the bodies table (schema versions 8 and 9): adding an hour's partition ahead of
// its submits, and dropping the hours a prune pass has emptied of deliveries.
//
// Why hours: dropping a table frees its files, and on ext4 here freeing 1.5 GB held a concurrent
// commit's fsync for 37-67 ms, 275 MB for 4.5 ms (docs/performance.md). 10,000,000 deliveries
// within a 7-day retention are ~60,000 an hour, ~180 MB of bodies: an hour is dropped without
// holding up the accepts. At that rate a day is ~4 GB. Partitions are only ever read one at a time
// (a submit routes to one; `deliveries show` names its table), so 168 of them for 7 days cost
// nothing per statement.
//
// Why an hour is split again, by a hash of the delivery, into k_tables_per_hour tables (schema
// version 9): a burst of hundreds of thousands of deliveries within one hour makes that hour's
// table gigabytes large, and dropping it whole held commits up for 44 ms here (one 1.5 GB table,
// the median of six trials), against 22 ms for the same bodies in eight tables dropped one after
// another, each in a transaction of its own (docs/performance.md). A statement that names the
// hour's table reads only the one table of its delivery (partition pruning); an hour made by
// version 8 (one table) is read and dropped as it is.
//
// A partition is added as a table of its own, then attached: ATTACH PARTITION takes a SHARE
// UPDATE EXCLUSIVE lock on the parent, which the submits' inserts do not wait for (CREATE TABLE
// ... PARTITION OF would take an ACCESS EXCLUSIVE one, and every submit would queue behind it).
// The hour's own tables are made before it is attached, so nothing waits for them either. An hour
// is dropped the same way round: DETACH PARTITION ... CONCURRENTLY, which waits for the
// transactions that may still read it without holding up new ones, then DROP TABLE of each of
// its tables and of the hour. A detach left half done (the connection lost in between) is
// finished by the next pass (FINALIZE); so is a drop left half done.
#include "store/postgres/bodies.hpp"

#include "store/postgres/codec.hpp"
#include "store/postgres/core.hpp"
#include "store/postgres/schema.hpp"

#include <chrono>
#include <cstdio>
#include <limits>
#include <vector>

namespace hookrelay::store::postgres {
namespace {

using Steady = std::chrono::steady_clock;

// An hour whose partition could not be added is not tried again before this.
constexpr std::chrono::seconds k_retry_after{60};

// The tables an hour's bodies are spread over (by a hash of the delivery's seq).
constexpr int k_tables_per_hour = 8;

// Every table named like an hour of bodies (one table, or one split into k_tables_per_hour), in
// the parent's schema: whether it is a partition of it, and whether it is being detached.
constexpr std::string_view k_body_tables = R"sql(
SELECT c.relname, i.inhrelid IS NOT NULL, COALESCE(i.inhdetachpending, false)
FROM pg_class c
     LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'bodies'::regclass
WHERE c.relkind IN ('r', 'p') AND c.relname ~ '^bodies_[0-9]{10}$'
  AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'bodies'::regclass)
ORDER BY c.relname)sql";

// Whether a delivery received in [$1, $2) is still stored (deliveries_received_at).
constexpr std::string_view k_hour_has_deliveries =
    "SELECT EXISTS (SELECT 1 FROM deliveries WHERE received_at >= $1 AND received_at < $2)";

// `text` as a SQL string literal.
std::string literal(std::string_view text) {
    std::string out = "'";
    for (char c : text) {
        if (c == '\'') out += '\'';
        out += c;
    }
    return out + "'";
}

// `body` as one anonymous block under (k_space, k_body_hours): instances adding an hour, or
// dropping one of a detached hour's tables, take turns.
std::string under_hours_lock(const std::string& body) {
    return "DO $$BEGIN\nPERFORM pg_advisory_xact_lock(" + std::to_string(locks::k_space) + ", " +
           std::to_string(locks::k_body_hours) + ");\n" + body + "END$$";
}

// A row when the hour's table (`table`, schema-qualified) is a partition of the bodies, one
// being detached included.
std::string attached_sql(const std::string& table) {
    return "SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(" + literal(table) +
           ") AND inhparent = 'bodies'::regclass";
}

// Adds the hour's partition (`table`, schema-qualified) unless it is there, instances adding the
// same hour taking turns: the hour's table, split by a hash of the delivery into
// k_tables_per_hour tables named `table`_0, _1, ..., attached once they are all there. A table of
// that name left over unattached is attached as it is (an hour of version 8 is one table), with
// any of its own tables that is missing made first.
std::string add_hour_sql(const std::string& table, std::int64_t hour) {
    std::string sql = "IF NOT EXISTS (" + attached_sql(table) +
                      " AND NOT inhdetachpending) THEN\n"
                      "    CREATE TABLE IF NOT EXISTS " +
                      table +
                      " (LIKE bodies INCLUDING ALL) PARTITION BY HASH (delivery);\n"
                      "    IF (SELECT relkind FROM pg_class WHERE oid = to_regclass(" +
                      literal(table) + ")) = 'p' THEN\n";
    for (int r = 0; r < k_tables_per_hour; ++r) {
        sql += "        CREATE TABLE IF NOT EXISTS " + table + "_" + std::to_string(r) +
               " PARTITION OF " + table + " FOR VALUES WITH (MODULUS " +
               std::to_string(k_tables_per_hour) + ", REMAINDER " + std::to_string(r) + ");\n";
    }
    sql += "    END IF;\n    ALTER TABLE bodies ATTACH PARTITION " + table + " FOR VALUES FROM (" +
           std::to_string(hour) + ") TO (" + std::to_string(hour + 1) + ");\nEND IF;\n";
    return under_hours_lock(sql);
}

// Drops `table` (schema-qualified), one of a detached hour's tables or the hour's own (`hour`),
// under the lock add_hour_sql() takes, and only while the hour is still detached: an instance
// may attach it again meanwhile, making its missing tables first (its clock behind by more than
// the retention, a delivery of that hour stored). Then the hour stays and the drop fails,
// saying so.
std::string drop_hour_table_sql(const std::string& table, const std::string& hour) {
    return under_hours_lock("IF EXISTS (" + attached_sql(hour) +
                            ") THEN\n"
                            "    RAISE EXCEPTION '% was attached again meanwhile (a delivery of "
                            "its hour was stored); it is kept', " +
                            literal(hour) + ";\nEND IF;\nDROP TABLE IF EXISTS " + table + ";\n");
}

// The tables of a detached hour ($1), each schema-qualified: none for an hour of version 8 (one
// table).
constexpr std::string_view k_hour_parts = R"sql(
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_inherits i
     JOIN pg_class c ON c.oid = i.inhrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.inhparent = to_regclass($1)
ORDER BY c.relname)sql";

// The schema of the bodies table, quoted as an identifier; no row when there is no such table
// (a server before PostgreSQL 14: schema.cpp).
constexpr std::string_view k_bodies_schema = R"sql(
SELECT quote_ident(n.nspname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass('bodies')
  AND current_setting('server_version_num')::integer >= 140000)sql";

}  // namespace

std::string body_hour_table(std::int64_t hour) {
    const std::chrono::sys_days day{std::chrono::days{hour / 24}};
    const std::chrono::year_month_day date{day};
    char name[32];
    std::snprintf(name, sizeof name, "bodies_%04d%02u%02u%02d", static_cast<int>(date.year()),
                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                  static_cast<int>(hour % 24));
    return name;
}

std::optional<std::int64_t> body_hour_of_table(std::string_view name) {
    constexpr std::string_view prefix = "bodies_";
    if (name.size() != prefix.size() + 10 || name.substr(0, prefix.size()) != prefix) {
        return std::nullopt;
    }
    int digits[10];
    for (std::size_t i = 0; i < 10; ++i) {
        const char c = name[prefix.size() + i];
        if (c < '0' || c > '9') return std::nullopt;
        digits[i] = c - '0';
    }
    const int y = digits[0] * 1000 + digits[1] * 100 + digits[2] * 10 + digits[3];
    const unsigned m = static_cast<unsigned>(digits[4] * 10 + digits[5]);
    const unsigned d = static_cast<unsigned>(digits[6] * 10 + digits[7]);
    const int h = digits[8] * 10 + digits[9];
    const std::chrono::year_month_day date{std::chrono::year{y}, std::chrono::month{m},
                                           std::chrono::day{d}};
    if (!date.ok() || h > 23) return std::nullopt;
    return std::int64_t{std::chrono::sys_days{date}.time_since_epoch().count()} * 24 + h;
}

std::string Core::body_table(std::int64_t hour) const {
    return bodies_schema_ + "." + body_hour_table(hour);
}

asio::awaitable<void> Core::refresh_body_hours() {
    auto lease = co_await pool_.acquire();
    const Rows schema = co_await lease->exec(k_bodies_schema);
    body_hours_.clear();
    bodies_table_ = !schema.empty();
    if (!bodies_table_) co_return;
    bodies_schema_ = schema.text(0, 0);
    const Rows rows = co_await lease->exec(k_body_tables);
    for (int i = 0; i < rows.size(); ++i) {
        if (!rows.boolean(i, 1) || rows.boolean(i, 2)) continue;
        if (const auto hour = body_hour_of_table(rows.text(i, 0))) body_hours_.insert(*hour);
    }
}

asio::awaitable<void> Core::add_body_hour(std::int64_t hour) {
    if (body_hours_.contains(hour) || !bodies_table_) co_return;
    std::string failure;
    try {
        auto lease = co_await pool_.acquire();
        co_await lease->exec_once(add_hour_sql(body_table(hour), hour));
        body_hours_.insert(hour);
        body_hours_failed_.erase(hour);
        co_return;
    } catch (const DbError& e) {
        if (e.code() == errc::store_closed) co_return;
        failure = e.what();
    } catch (const std::exception& e) {
        failure = info_->scrub(e.what());
    }
    body_hours_failed_[hour] = Steady::now() + k_retry_after;
    report("adding " + body_hour_table(hour) +
           " (for the bodies received in that hour) failed; they are kept with their deliveries "
           "meanwhile: " +
           failure);
}

bool Core::body_hour_ready(std::int64_t hour) {
    // The next hour's partition is added while this one is written, so that the first submits
    // of the next hour find theirs.
    want_body_hour(hour + 1);
    return want_body_hour(hour);
}

bool Core::want_body_hour(std::int64_t hour) {
    if (body_hours_.contains(hour)) return true;
    if (!bodies_table_ || stopping_ || body_hours_adding_.contains(hour)) return false;
    if (auto it = body_hours_failed_.find(hour); it != body_hours_failed_.end()) {
        if (Steady::now() < it->second) return false;
    }
    body_hours_adding_.insert(hour);
    ++active_;
    asio::co_spawn(io_, adding_body_hour(hour),
                   failed("adding an hour's partition of the bodies", &Core::finished_one));
    return false;
}

asio::awaitable<void> Core::adding_body_hour(std::int64_t hour) {
    co_await add_body_hour(hour);  // reports its own failures
    body_hours_adding_.erase(hour);
    finished_one();
}

asio::awaitable<void> Core::drop_expired_body_hours(Connection& c, std::int64_t cutoff) {
    if (!bodies_table_) co_return;
    struct Table {
        std::int64_t hour;
        bool attached;
        bool detaching;
    };
    // Hours before this one ended at or before the cutoff.
    const std::int64_t first_kept = cutoff > 0 ? cutoff / k_hour_ms : 0;
    std::vector<Table> tables;
    {
        const Rows rows = co_await c.exec(k_body_tables);
        for (int i = 0; i < rows.size(); ++i) {
            const auto hour = body_hour_of_table(rows.text(i, 0));
            if (hour) tables.push_back({*hour, rows.boolean(i, 1), rows.boolean(i, 2)});
        }
    }
    // Whether a delivery received in the hour is still stored (a trigger still open, say): then
    // the hour's bodies are kept.
    const auto still_stored = [&](std::int64_t hour) -> asio::awaitable<bool> {
        Params p;
        p.int8(hour == 0 ? std::numeric_limits<std::int64_t>::min() : hour * k_hour_ms);
        p.int8((hour + 1) * k_hour_ms);
        const Rows left = co_await c.exec(k_hour_has_deliveries, std::move(p));
        co_return left.boolean(0, 0);
    };
    // A detached hour, table by table: each drop frees its files in a transaction of its own,
    // so that no commit waits for the whole hour's to be freed at once.
    const auto drop_hour = [&](std::int64_t hour) -> asio::awaitable<void> {
        const std::string table = body_table(hour);
        const Rows parts = co_await c.exec(k_hour_parts, std::move(Params().text(table)));
        for (int i = 0; i < parts.size(); ++i) {
            co_await c.exec_once(drop_hour_table_sql(parts.text(i, 0), table));
        }
        co_await c.exec_once(drop_hour_table_sql(table, table));
    };
    // A detached hour: dropped, unless a delivery of it was committed while it was being
    // detached (an instance whose clock is behind by more than the retention): then attached
    // back. Every transaction that could still write into it has ended by now.
    const auto drop_detached = [&](std::int64_t hour) -> asio::awaitable<void> {
        if (co_await still_stored(hour)) {
            co_await c.exec_once(add_hour_sql(body_table(hour), hour));
        } else {
            co_await drop_hour(hour);
        }
    };
    // Each hour on its own: a failure is reported and the pass goes on (the connection broken,
    // or the store closing, ends it).
    bool detach_pending = false;
    const auto attempt = [&](const Table& t, auto step) -> asio::awaitable<bool> {
        std::string failure;
        try {
            co_await step();
            co_return true;
        } catch (const DbError& e) {
            if (c.broken() || e.code() == errc::store_closed) throw;
            failure = e.what();
        }
        report("dropping " + body_hour_table(t.hour) +
               " (the bodies received in that hour) failed; the next prune pass tries again: " +
               failure);
        co_return false;
    };
    // First a detach left half done (a pass that ended during it): a table may have only one
    // partition being detached at a time, so until it is finished no other detach can start.
    for (const Table& t : tables) {
        if (!t.detaching) continue;
        body_hours_.erase(t.hour);
        bool finished = false;
        co_await attempt(t, [&]() -> asio::awaitable<void> {
            co_await c.exec_once("ALTER TABLE bodies DETACH PARTITION " + body_table(t.hour) +
                                 " FINALIZE");
            finished = true;
            co_await drop_detached(t.hour);
        });
        if (!finished) detach_pending = true;
    }
    for (const Table& t : tables) {
        if (t.detaching || t.hour >= first_kept) continue;
        if (t.attached && detach_pending) continue;  // the next pass
        const bool done = co_await attempt(t, [&]() -> asio::awaitable<void> {
            if (co_await still_stored(t.hour)) co_return;
            if (!t.attached) {  // left over from a pass that ended before its drop was done
                co_await drop_hour(t.hour);
                co_return;
            }
            body_hours_.erase(t.hour);  // this instance no longer writes there
            co_await c.exec_once("ALTER TABLE bodies DETACH PARTITION " + body_table(t.hour) +
                                 " CONCURRENTLY");
            co_await drop_detached(t.hour);
        });
        if (!done && t.attached) detach_pending = true;  // it may be left half done
    }
}

asio::awaitable<std::optional<std::string>> Core::read_body(Connection& c, std::int64_t delivery,
                                                            std::int64_t received_ms) {
    if (!bodies_table_) co_return std::nullopt;
    try {
        const Rows rows = co_await c.exec_once(
            "SELECT body FROM " + body_table(body_hour(received_ms)) + " WHERE delivery = $1",
            std::move(Params().int8(delivery)));
        if (rows.empty()) co_return std::nullopt;
        co_return rows.text(0, 0);
    } catch (const DbError& e) {
        if (e.sqlstate() != "42P01") throw;  // undefined_table: that hour has no bodies (now)
    }
    co_return std::nullopt;
}

}  // namespace hookrelay::store::postgres
