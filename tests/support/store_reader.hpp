// Reads the daemon's SQLite store (read-only) so tests can assert trigger states and reasons.
#pragma once

#include <string>
#include <vector>

namespace hookrelay::test {

struct TriggerRow {
    std::string id;
    std::string rule;
    std::string job;  ///< JSON array text as stored
    std::string state;
    int attempts = 0;
    std::string last_outcome;
    std::string queue_url;
};

/// Every trigger in <state_dir>/hookrelay.db, oldest first; empty if the file is not there.
std::vector<TriggerRow> read_triggers(const std::string& state_dir);

}  // namespace hookrelay::test
