#include "support/store_reader.hpp"

#include <sqlite3.h>

namespace hookrelay::test {

std::vector<TriggerRow> read_triggers(const std::string& state_dir) {
    std::vector<TriggerRow> rows;
    sqlite3* db = nullptr;
    const auto path = state_dir + "/hookrelay.db";
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        sqlite3_close(db);
        return rows;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* stmt = nullptr;
    const char* sql =
        "SELECT id, rule, job, state, attempts, COALESCE(last_outcome, ''), "
        "COALESCE(queue_url, '') FROM triggers ORDER BY created_at, rowid";
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK) {
        auto text = [&](int col) {
            const auto* p = sqlite3_column_text(stmt, col);
            return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p));
        };
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            rows.push_back({text(0), text(1), text(2), text(3), sqlite3_column_int(stmt, 4),
                            text(5), text(6)});
        }
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return rows;
}

}  // namespace hookrelay::test
