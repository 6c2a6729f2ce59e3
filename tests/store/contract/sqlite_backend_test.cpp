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
    std::shared_ptr<Store> open(Config config, const std::string& instance_id) override {
        config.state_dir = dir_.path();
        config.store.backend = StoreConfig::Backend::sqlite;
        OpenOptions options;
        options.instance_id = instance_id;
        options.version = "contract-test";
        options.lock_state_dir = false;
        std::string why;
        auto store = open_store(config, options, &why);
        if (!store) throw std::runtime_error("cannot open the SQLite store: " + why);
        return *store;
    }

  private:
    TempDir dir_;
};

std::unique_ptr<Backend> make_sqlite_backend() {
    return std::make_unique<SqliteBackend>();
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreContract,
                         ::testing::Values(BackendParam{"sqlite", &make_sqlite_backend}),
                         backend_name);

}  // namespace
}  // namespace hookrelay::store::contract
