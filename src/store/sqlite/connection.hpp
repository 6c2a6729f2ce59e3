// The SQLite connection of one store: prepared statements run one at a time (Query), transactions
// and per-job savepoints, and SQLite's result codes mapped to the store's errc values. Used only
// by the thread that owns the connection.
#pragma once

#include <hookrelay/error.hpp>

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace hookrelay::store::sqlite {

/// A failed SQLite call: the (extended) result code and "<step>: <message>".
class SqliteError : public std::runtime_error {
  public:
    SqliteError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
    int code() const noexcept { return code_; }

  private:
    int code_;
};

/// A failure that is not SQLite's own, with the errc it is answered with (e.g. a file written
/// by a newer hookrelay: store_incompatible).
class StoreError : public std::runtime_error {
  public:
    StoreError(errc code, const std::string& what) : std::runtime_error(what), code_(code) {}
    errc code() const noexcept { return code_; }

  private:
    errc code_;
};

/// The errc a SQLite result code is answered with: busy and locked are store_busy, a full
/// database (store.max_size) or disk store_full, a file that is no database
/// store_incompatible, anything else store_unavailable.
errc classify(int sqlite_code) noexcept;

/// A failure as the store answers and reports it.
struct Failure {
    boost::system::error_code code;
    std::string what;  ///< one line, for on_error()
};

/// The failure being handled; call only inside a catch block.
Failure current_failure() noexcept;

/// Failures that concern one job's data and leave the transaction usable; anything else (I/O,
/// disk full, busy, corruption) may have rolled the transaction back and fails the whole batch.
bool confined_to_job(int sqlite_code) noexcept;

struct DbClose {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbClose>;

/// A prepared statement, compiled once and reused through Query.
class Statement {
  public:
    /// Throws SqliteError when `sql` does not compile.
    Statement(sqlite3* db, const char* name, const char* sql);

    sqlite3* db() const noexcept { return db_; }
    sqlite3_stmt* get() const noexcept { return stmt_.get(); }
    const char* name() const noexcept { return name_; }

  private:
    struct Finalize {
        void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
    };
    sqlite3* db_;
    const char* name_;
    std::unique_ptr<sqlite3_stmt, Finalize> stmt_;
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
    Query& bind_text(std::string_view text);
    /// NULL for an empty text.
    Query& bind_text_or_null(std::string_view text);
    /// References `bytes` without copying (bodies run to megabytes): they must outlive the Query.
    Query& bind_blob_ref(std::string_view bytes);
    Query& bind_int(std::int64_t value);
    Query& bind_null();

    /// True when a row is ready, false when done; throws SqliteError on failure.
    bool step();
    /// Runs a statement to its end, ignoring any rows.
    void run() {
        while (step()) {
        }
    }

    bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
    std::int64_t int64(int column) const { return sqlite3_column_int64(stmt_, column); }
    /// The column as text; "" for NULL.
    std::string text(int column) const;

  private:
    Query& check_bind(int rc);
    [[noreturn]] void fail(int rc) const;

    Statement& statement_;
    sqlite3_stmt* stmt_;
    int next_ = 1;
};

/// Runs `sql` (any number of statements); throws SqliteError.
void exec(sqlite3* db, const char* sql);

/// The first column of the first row of `sql` (e.g. a PRAGMA); 0 when there is no row.
std::int64_t query_int(sqlite3* db, const char* sql);

/// The store's connection with its transaction statements.
class Connection {
  public:
    explicit Connection(DbPtr db);
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    sqlite3* get() const noexcept { return db_.get(); }
    /// Rows changed by the last INSERT, UPDATE or DELETE.
    std::int64_t changes() const noexcept { return sqlite3_changes64(db_.get()); }
    std::int64_t last_insert_rowid() const noexcept { return sqlite3_last_insert_rowid(db_.get()); }

    /// BEGIN IMMEDIATE, fn(), COMMIT; rolled back when anything throws (and rethrown). Commits
    /// with synchronous = FULL unless inside unsynced(); throws when FULL cannot be set back.
    template <class Fn>
    void transaction(Fn&& fn) {
        if (full_unsure_) {
            exec(db_.get(), "PRAGMA synchronous = FULL");
            full_unsure_ = false;
        }
        Query(begin_).run();
        try {
            fn();
            Query(commit_).run();
        } catch (...) {
            roll_back();
            throw;
        }
    }

    /// fn() under a savepoint, inside a transaction, so a failure confined to one job's data (a
    /// body over SQLite's size limit, a constraint, a row that does not decode) undoes only that
    /// job: its failure is returned and the transaction goes on. Failures that doom the
    /// transaction propagate.
    template <class Fn>
    std::optional<Failure> isolated(Fn&& fn) {
        Query(savepoint_).run();
        std::optional<Failure> failure;
        try {
            fn();
            Query(release_).run();
            return std::nullopt;
        } catch (const SqliteError& e) {
            if (!confined_to_job(e.code())) throw;
            failure = current_failure();
        } catch (const std::exception&) {
            failure = current_failure();
        }
        undo_savepoint(*failure);
        return failure;
    }

    /// fn() with synchronous = NORMAL: its commits do not sync the WAL; the next FULL commit (or
    /// checkpoint) makes them durable. For writes whose loss in a power cut only repeats work.
    /// When FULL cannot be set back afterwards (out of memory, a schema that fails to load), the
    /// next transaction() sets it, or fails: a commit never goes unsynced by mistake.
    template <class Fn>
    void unsynced(Fn&& fn) {
        exec(db_.get(), "PRAGMA synchronous = NORMAL");
        struct RestoreFull {
            sqlite3* db;
            bool& unsure;
            ~RestoreFull() {
                if (sqlite3_exec(db, "PRAGMA synchronous = FULL", nullptr, nullptr, nullptr) !=
                    SQLITE_OK) {
                    unsure = true;
                }
            }
        } restore{db_.get(), full_unsure_};
        fn();
    }

  private:
    void roll_back() noexcept;
    void undo_savepoint(const Failure& failure);

    // Declared first so it is closed last, after every statement is finalized.
    DbPtr db_;
    Statement begin_, commit_, rollback_, savepoint_, release_, rollback_to_;
    // unsynced() could not set synchronous = FULL back.
    bool full_unsure_ = false;
};

}  // namespace hookrelay::store::sqlite
