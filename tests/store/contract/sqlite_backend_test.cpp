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
    /// the state directory's log.
    explicit SqliteBackend(bool intake_log = false) : intake_log_(intake_log) {}

    std::shared_ptr<Store> open(Config config, const std::string& instance_id) override {
        config.state_dir = dir_.path();
        config.store.backend = StoreConfig::Backend::sqlite;
        OpenOptions options;
        options.instance_id = instance_id;
        options.version = "contract-test";
        options.lock_state_dir = false;
        config.store.intake_log = intake_log_;
        if (intake_log_) {
            if (first_.empty()) first_ = instance_id;
            options.intake_log_without_lock = instance_id == first_;
            // As the daemon opens it where every answer comes from the log: the store's thread
            // below the others, and bodies digested there.
            options.store_thread_yields = true;
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
    std::string first_;
};

std::unique_ptr<Backend> make_sqlite_backend() {
    return std::make_unique<SqliteBackend>();
}

std::unique_ptr<Backend> make_sqlite_intake_log_backend() {
    return std::make_unique<SqliteBackend>(true);
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreContract,
                         ::testing::Values(BackendParam{"sqlite", &make_sqlite_backend},
                                           BackendParam{"sqlite_intake_log",
                                                        &make_sqlite_intake_log_backend, "sqlite"}),
                         backend_name);

}  // namespace
}  // namespace hookrelay::store::contract
