// The triggers a daemon's store holds, as integration tests check them: through the admin API
// while the daemon runs (what an operator sees), or through the store interface once it has
// stopped. Nothing reads the store's files directly, so the checks hold for every backend.
#pragma once

#include <hookrelay/config.hpp>

#include <string>
#include <vector>

namespace hookrelay::test {

class Daemon;

struct TriggerRow {
    std::string id;
    std::string rule;
    std::string jenkins;
    std::string job;  ///< display path: "acme/app/feature%2Fx"
    std::string state;
    int attempts = 0;
    std::string last_outcome;
    std::string queue_url;
};

/// Every trigger in the running daemon's store, oldest delivery first and each delivery's in
/// creation order, from GET /api/v1/deliveries and then each delivery (`admin_token` is the
/// daemon's admin.token). Empty when the admin API does not answer 200 throughout.
std::vector<TriggerRow> read_triggers(const Daemon& daemon, const std::string& admin_token);

/// The same, read through the store interface (open_store() without the state-directory lock)
/// from the store `config` names, e.g. {state_dir: the stopped daemon's}. Throws when the store
/// cannot be opened or read.
std::vector<TriggerRow> read_stored_triggers(const Config& config);

}  // namespace hookrelay::test
