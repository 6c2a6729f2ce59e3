// Makes the Store the config asks for: SQLite in state_dir (the embedded default) or PostgreSQL
// (store.backend: postgres). The one place that knows the concrete backends.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/store.hpp>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace hookrelay::store {

struct OpenOptions {
    /// This daemon's id in the store; empty: "<host>-<pid>-<random>".
    std::string instance_id;
    std::string version;  ///< shown in the instance list
    /// SQLite: take the exclusive lock on the state directory (`check` and tools that only read
    /// do not). A second daemon on the same directory is refused with errc::store_locked.
    bool lock_state_dir = true;
    /// SQLite: use store.intake_log without the lock too (tests opening the first of several
    /// instances on one file; SqliteOptions::intake_log_without_lock).
    bool intake_log_without_lock = false;
    /// SQLite with store.intake_log: the store's thread runs below the network threads
    /// (SqliteOptions::store_thread_yields). Set it only where no answer waits for that thread
    /// (the daemon decides from its configuration).
    bool store_thread_yields = false;
    /// SQLite: open triggers counted per turn of the store's thread by backlog()
    /// (SqliteOptions::backlog_step); 0: that default. Tests make it small.
    std::size_t sqlite_backlog_step = 0;
    /// Told at open of what the store found damaged or missing and went on without (SQLite: the
    /// intake log's records that cannot be replayed); the daemon logs it as an error.
    std::function<void(const std::string&)> warn;
};

/// Opens (creating or migrating the schema where needed) the configured store and starts its
/// threads. Blocking: call it at start-up, never on a network thread. On failure `why` (when
/// given) is one line for the operator, e.g. "state_dir ./var is in use by another hookrelay
/// (pid 1234)" or "PostgreSQL at host=db: schema version 7 is newer than this hookrelay knows
/// (3): upgrade hookrelay"; it never contains a password.
result<std::shared_ptr<Store>> open_store(const Config& config, const OpenOptions& options,
                                          std::string* why = nullptr);

/// What open_store() would refuse in `config` that can be told without opening anything (for
/// `hookrelay check`): a store.postgres.url libpq cannot parse. "" when nothing; never contains
/// a password.
std::string config_problem(const Config& config);

/// "<host>-<pid>-<8 random hex digits>".
std::string make_instance_id();

/// `config`'s Jenkins entries as the instance list shows them (Store::set_jenkins_urls()): name
/// → url (a url never holds credentials: the config refuses user info).
std::map<std::string, std::string> jenkins_urls(const Config& config);

}  // namespace hookrelay::store
