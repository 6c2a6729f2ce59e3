// The store contract suite against PostgreSQL: each test gets a database of its own on the
// throwaway server of the CTest fixture `postgres` (tests/support/pg_server.sh); every instance
// of a test opens that database, as daemons sharing one store do.
#include "store/contract/contract.hpp"
#include "store/factory.hpp"
#include "store/postgres/pg_test_support.hpp"

#include <stdexcept>

namespace hookrelay::store::contract {
namespace {

class PostgresBackend final : public Backend {
  public:
    std::shared_ptr<Store> open(Config config, const std::string& instance_id) override {
        const StoreConfig settings = test::pg_config(db_.conninfo());
        config.store.backend = StoreConfig::Backend::postgres;
        config.store.postgres = settings.postgres;
        OpenOptions options;
        options.instance_id = instance_id;
        options.version = "contract-test";
        std::string why;
        auto store = open_store(config, options, &why);
        if (!store) throw std::runtime_error("cannot open the PostgreSQL store: " + why);
        return *store;
    }

    Capabilities capabilities() const override {
        Capabilities c;
        c.notifies_across_instances = true;
        return c;
    }

  private:
    test::TestDatabase db_;
};

std::unique_ptr<Backend> make_postgres_backend() {
    return std::make_unique<PostgresBackend>();
}

INSTANTIATE_TEST_SUITE_P(Postgres, StoreContract,
                         ::testing::Values(BackendParam{"postgres", &make_postgres_backend}),
                         backend_name);

}  // namespace
}  // namespace hookrelay::store::contract
