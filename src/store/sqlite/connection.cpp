#include "store/sqlite/connection.hpp"

#include <utility>

namespace hookrelay::store::sqlite {

errc classify(int sqlite_code) noexcept {
    switch (sqlite_code & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            return errc::store_busy;
        case SQLITE_FULL:
            return errc::store_full;
        case SQLITE_NOTADB:
            return errc::store_incompatible;
        default:
            return errc::store_unavailable;
    }
}

Failure current_failure() noexcept {
    try {
        throw;
    } catch (const SqliteError& e) {
        return {make_error_code(classify(e.code())), e.what()};
    } catch (const StoreError& e) {
        return {make_error_code(e.code()), e.what()};
    } catch (const std::exception& e) {
        return {make_error_code(errc::store_unavailable), e.what()};
    } catch (...) {
        return {make_error_code(errc::store_unavailable), "unknown failure"};
    }
}

bool confined_to_job(int sqlite_code) noexcept {
    switch (sqlite_code & 0xff) {
        case SQLITE_TOOBIG:
        case SQLITE_CONSTRAINT:
        case SQLITE_MISMATCH:
        case SQLITE_RANGE:
            return true;
        default:
            return false;
    }
}

Statement::Statement(sqlite3* db, const char* name, const char* sql) : db_(db), name_(name) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    stmt_.reset(raw);
    if (rc != SQLITE_OK) {
        throw SqliteError(rc, std::string("preparing ") + name + ": " + sqlite3_errmsg(db));
    }
}

Query& Query::bind_text(std::string_view text) {
    return check_bind(sqlite3_bind_text64(stmt_, next_++, text.data(), text.size(),
                                          SQLITE_TRANSIENT, SQLITE_UTF8));
}

Query& Query::bind_text_or_null(std::string_view text) {
    return text.empty() ? bind_null() : bind_text(text);
}

Query& Query::bind_blob_ref(std::string_view bytes) {
    return check_bind(
        sqlite3_bind_blob64(stmt_, next_++, bytes.data(), bytes.size(), SQLITE_STATIC));
}

Query& Query::bind_int(std::int64_t value) {
    return check_bind(sqlite3_bind_int64(stmt_, next_++, value));
}

Query& Query::bind_null() {
    return check_bind(sqlite3_bind_null(stmt_, next_++));
}

bool Query::step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(rc);
}

std::string Query::text(int column) const {
    const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    const int size = sqlite3_column_bytes(stmt_, column);
    return data ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

Query& Query::check_bind(int rc) {
    if (rc != SQLITE_OK) fail(rc);
    return *this;
}

void Query::fail(int rc) const {
    throw SqliteError(rc, std::string(statement_.name()) + ": " + sqlite3_errmsg(statement_.db()));
}

void exec(sqlite3* db, const char* sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
        std::string text = message ? message : sqlite3_errstr(rc);
        sqlite3_free(message);
        throw SqliteError(rc, text);
    }
}

std::int64_t query_int(sqlite3* db, const char* sql) {
    Statement statement(db, sql, sql);
    Query query(statement);
    return query.step() ? query.int64(0) : 0;
}

Connection::Connection(DbPtr db)
    : db_(std::move(db)),
      begin_(db_.get(), "BEGIN IMMEDIATE", "BEGIN IMMEDIATE"),
      commit_(db_.get(), "COMMIT", "COMMIT"),
      rollback_(db_.get(), "ROLLBACK", "ROLLBACK"),
      savepoint_(db_.get(), "SAVEPOINT", "SAVEPOINT job"),
      release_(db_.get(), "RELEASE", "RELEASE job"),
      rollback_to_(db_.get(), "ROLLBACK TO", "ROLLBACK TO job") {}

void Connection::roll_back() noexcept {
    // A failed COMMIT (or a failed step under SQLITE_BUSY) can leave the transaction open; I/O
    // errors may already have rolled it back.
    if (sqlite3_get_autocommit(db_.get())) return;
    try {
        Query(rollback_).run();
    } catch (...) {
    }
}

void Connection::undo_savepoint(const Failure& failure) {
    // SQLite rolled the whole transaction back by itself: there is nothing left to go on with.
    if (sqlite3_get_autocommit(db_.get())) {
        throw StoreError(static_cast<errc>(failure.code.value()), failure.what);
    }
    Query(rollback_to_).run();
    Query(release_).run();
}

}  // namespace hookrelay::store::sqlite
