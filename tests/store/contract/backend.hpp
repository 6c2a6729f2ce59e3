// The store contract suite's view of a backend. The suite (tests/store/contract/*_test.cpp) runs
// unchanged against every backend; a backend joins it with one file of its own that implements
// Backend and instantiates the suite:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StoreContract,
//                            ::testing::Values(BackendParam{"sqlite", &make_sqlite_backend}),
//                            backend_name);
//
// Time is passed explicitly (`now`) wherever the interface takes it, so no test sleeps.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/store.hpp>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include <gtest/gtest.h>

namespace hookrelay::store::contract {

/// What a backend does beyond what the contract asks of every backend.
struct Capabilities {
    /// on_committed also runs for commits made through another instance (PostgreSQL:
    /// LISTEN/NOTIFY). SQLite has one owner per file and does not.
    bool notifies_across_instances = false;
    /// Deliveries are submitted through one instance of a file at a time (SQLite with
    /// store.intake_log: the log's owner answers before the file holds them, so a second
    /// instance submitting the same ids meanwhile is not told apart).
    bool one_intake_per_file = false;
};

/// One test's store: created fresh for each test, and removed (with everything in it) when
/// destroyed, after every instance opened on it was.
class Backend {
  public:
    virtual ~Backend() = default;

    /// Opens an instance on this test's store as a daemon would, with id `instance_id` and the
    /// settings of `config` (store.*, dispatch.claim_*); the backend fills in where its store is
    /// (state_dir, store.backend, store.postgres). The first call finds an empty store; later ones
    /// (another instance, or one opened again after close) share it. Throws on failure.
    virtual std::shared_ptr<Store> open(Config config, const std::string& instance_id) = 0;

    virtual Capabilities capabilities() const { return {}; }
};

/// One backend as the suite is instantiated with.
struct BackendParam {
    std::string name;  ///< the test-name suffix: "sqlite", "postgres"
    std::function<std::unique_ptr<Backend>()> make;
    std::string kind = {};  ///< Store::kind() when it is not `name`
};

inline void PrintTo(const BackendParam& param, std::ostream* out) {
    *out << param.name;
}

/// The test-name generator for INSTANTIATE_TEST_SUITE_P: the backend's name.
inline std::string backend_name(const ::testing::TestParamInfo<BackendParam>& info) {
    return info.param.name;
}

}  // namespace hookrelay::store::contract
