// The store contract suite against SQLite: every instance of a test opens the same file in a
// temporary state directory. They are opened without the state-directory lock, as two daemons
// sharing one store would be (the lock itself has tests of its own, sqlite_lock_test.cpp).
#include "store/contract/contract.hpp"
#include "store/factory.hpp"

#include <stdexcept>

namespace hookrelay::store::contract {
namespace {

class SqliteBackend final : public Backend {
  public:
    /// intake_log: store.intake_log on for the first instance a test opens (and for it again
    /// when reopened); the others on the same file go without it, as only one store may own
    /// the state directory's log. yields: opened as the daemon opens it where every answer
    /// comes from the log (the store's thread below the others, bodies digested there); without
    /// it, as where a rule coalesces or a source compares bodies.
    explicit SqliteBackend(bool intake_log = false, bool yields = false)
        : intake_log_(intake_log), yields_(yields) {}

    std::shared_ptr<Store> open(Config config, const std::string& instance_id) override {
        config.state_dir = dir_.path();
        config.store.backend = StoreConfig::Backend::sqlite;
        OpenOptions options;
        options.instance_id = instance_id;
        options.version = "contract-test";
        options.lock_state_dir = false;
        // Without the log, the backlog is counted two triggers per turn of the store's thread:
        // its tests then count across turns and across Jenkins (the others keep the default).
        if (!intake_log_) options.sqlite_backlog_step = 2;
        config.store.intake_log = intake_log_;
        if (intake_log_) {
            if (first_.empty()) first_ = instance_id;
            options.intake_log_without_lock = instance_id == first_;
            options.store_thread_yields = yields_;
        }
        std::string why;
        auto store = open_store(config, options, &why);
        if (!store) throw std::runtime_error("cannot open the SQLite store: " + why);
        return *store;
    }

    Capabilities capabilities() const override {
        Capabilities c;
        c.one_intake_per_file = intake_log_;
        return c;
    }

  private:
    TempDir dir_;
    const bool intake_log_;
    const bool yields_;
    std::string first_;
};

std::unique_ptr<Backend> make_sqlite_backend() {
    return std::make_unique<SqliteBackend>();
}

std::unique_ptr<Backend> make_sqlite_intake_log_backend() {
    return std::make_unique<SqliteBackend>(true, true);
}

std::unique_ptr<Backend> make_sqlite_intake_log_at_network_priority_backend() {
    return std::make_unique<SqliteBackend>(true, false);
}

INSTANTIATE_TEST_SUITE_P(
    Sqlite, StoreContract,
    ::testing::Values(BackendParam{"sqlite", &make_sqlite_backend},
                      BackendParam{"sqlite_intake_log", &make_sqlite_intake_log_backend, "sqlite"},
                      BackendParam{"sqlite_intake_log_at_network_priority",
                                   &make_sqlite_intake_log_at_network_priority_backend, "sqlite"}),
    backend_name);

}  // namespace
}  // namespace hookrelay::store::contract
