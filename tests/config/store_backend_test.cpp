// store.backend and store.postgres.*: which store, and how to reach PostgreSQL.
#include "config/load.hpp"

#include <gtest/gtest.h>

namespace hookrelay::config {
namespace {

using namespace std::chrono_literals;

const std::string k_source = R"(
sources:
  github: {provider: github, insecure: true}
)";

LoadResult load(const std::string& yaml, bool resolve_secrets = false) {
    LoadOptions options;
    options.resolve_secrets = resolve_secrets;
    options.environment.getenv = [](const std::string& name) -> std::optional<std::string> {
        if (name == "HOOKRELAY_DATABASE_URL") return "postgresql://hr:pw@db/hookrelay";
        return std::nullopt;
    };
    return load_string(yaml + k_source, "test.yaml", options);
}

TEST(StoreBackend, IsSqliteByDefault) {
    const auto r = load("");
    ASSERT_TRUE(r.errors.empty()) << to_string(r.errors.at(0));
    EXPECT_EQ(r.config->store.backend, StoreConfig::Backend::sqlite);
}

// Durations stop at 100 years, which every clock can add to now: "keep forever" is 36500d, and
// a longer one is an error naming the key, not a retention that wraps around.
TEST(StoreBackend, ARetentionOfAtMostAHundredYearsIsTakenAndALongerOneRefused) {
    const auto forever = load("store: {retention: 36500d}\n");
    ASSERT_TRUE(forever.errors.empty()) << to_string(forever.errors.at(0));
    EXPECT_EQ(forever.config->store.retention, std::chrono::hours(24) * 36500);
    for (const char* longer : {"36501d", "365000d", "1099511627776d", "876001h"}) {
        SCOPED_TRACE(longer);
        const auto bad = load(std::string("store: {retention: ") + longer + "}\n");
        ASSERT_FALSE(bad.errors.empty());
        const auto text = to_string(bad.errors.at(0));
        EXPECT_NE(text.find("store.retention"), std::string::npos) << text;
        EXPECT_NE(text.find("at most 36500d"), std::string::npos) << text;
    }
}

TEST(StoreBackend, IntakeLogIsOnByDefaultForSqliteAndASqliteSetting) {
    EXPECT_TRUE(load("").config->store.intake_log);
    const auto off = load("store: {intake_log: false}\n");
    ASSERT_TRUE(off.errors.empty()) << to_string(off.errors.at(0));
    EXPECT_FALSE(off.config->store.intake_log);

    const auto bad = load("store: {intake_log: maybe}\n");
    ASSERT_FALSE(bad.errors.empty());
    EXPECT_NE(to_string(bad.errors.at(0)).find("store.intake_log"), std::string::npos)
        << to_string(bad.errors.at(0));

    const auto postgres = load(R"(
store:
  backend: postgres
  intake_log: true
  postgres:
    url: "${env:HOOKRELAY_DATABASE_URL}"
)");
    ASSERT_FALSE(postgres.errors.empty());
    EXPECT_NE(to_string(postgres.errors.at(0))
                  .find("store.intake_log applies to the sqlite backend only"),
              std::string::npos)
        << to_string(postgres.errors.at(0));

    // PostgreSQL has none: off without a word, and `false` is accepted.
    for (const char* line : {"", "  intake_log: false\n"}) {
        const auto pg = load(std::string("store:\n  backend: postgres\n") + line +
                             "  postgres:\n    url: \"${env:HOOKRELAY_DATABASE_URL}\"\n");
        ASSERT_TRUE(pg.errors.empty()) << to_string(pg.errors.at(0));
        EXPECT_FALSE(pg.config->store.intake_log) << line;
    }
}

TEST(StoreBackend, PostgresTakesItsUrlFromASecretReferenceAndHasDefaults) {
    const auto r = load(R"(
store:
  backend: postgres
  postgres:
    url: "${env:HOOKRELAY_DATABASE_URL}"
)",
                        true);
    ASSERT_TRUE(r.errors.empty()) << to_string(r.errors.at(0));
    const auto& p = r.config->store.postgres;
    EXPECT_EQ(r.config->store.backend, StoreConfig::Backend::postgres);
    EXPECT_EQ(p.url.reveal(), "postgresql://hr:pw@db/hookrelay");
    EXPECT_EQ(p.pool_size, 4u);
    EXPECT_EQ(p.connect_timeout, 5s);
    EXPECT_EQ(p.statement_timeout, 5s);
    EXPECT_EQ(p.reconnect_max, 10s);
}

TEST(StoreBackend, PostgresKeysAreRead) {
    const auto r = load(R"(
store:
  backend: postgres
  postgres:
    url: "${env:HOOKRELAY_DATABASE_URL}"
    pool_size: 8
    connect_timeout: 2s
    statement_timeout: 750ms
    reconnect_max: 30s
)");
    ASSERT_TRUE(r.errors.empty()) << to_string(r.errors.at(0));
    const auto& p = r.config->store.postgres;
    EXPECT_EQ(p.pool_size, 8u);
    EXPECT_EQ(p.connect_timeout, 2s);
    EXPECT_EQ(p.statement_timeout, 750ms);
    EXPECT_EQ(p.reconnect_max, 30s);
}

TEST(StoreBackend, RefusesAUrlWrittenIntoTheConfig) {
    const auto r = load(R"(
store:
  backend: postgres
  postgres: {url: "postgresql://hr:pw@db/hookrelay"}
)");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_NE(r.errors[0].message.find("must be a secret reference"), std::string::npos);
    EXPECT_EQ(r.errors[0].message.find("pw@db"), std::string::npos) << r.errors[0].message;
}

TEST(StoreBackend, PostgresWithoutAUrlIsRefused) {
    const auto r = load("store: {backend: postgres}\n");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].message, "store.backend: postgres needs `store.postgres.url`");
}

TEST(StoreBackend, UnknownBackendSuggestsTheNearestName) {
    const auto r = load("store: {backend: postgresql}\n");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_NE(r.errors[0].message.find("'postgresql' is not one of sqlite, postgres"),
              std::string::npos)
        << r.errors[0].message;
}

TEST(StoreBackend, PostgresSettingsWithoutThePostgresBackendAreRefused) {
    const auto r = load("store:\n  postgres: {url: \"${env:HOOKRELAY_DATABASE_URL}\"}\n");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_NE(r.errors[0].message.find("store.backend is not postgres"), std::string::npos);
}

TEST(StoreBackend, TimeoutsOfZeroAreRefused) {
    // A statement_timeout of 0 would turn the server's limit off; a connect_timeout of 0 would
    // fail every connect; a reconnect_max of 0 would hammer a server that is down.
    for (const char* key : {"connect_timeout", "statement_timeout", "reconnect_max"}) {
        const auto r = load(std::string(R"(
store:
  backend: postgres
  postgres:
    url: "${env:HOOKRELAY_DATABASE_URL}"
    )") + key + ": 0s\n");
        ASSERT_EQ(r.errors.size(), 1u) << key;
        EXPECT_EQ(r.errors[0].message,
                  std::string("store.postgres.") + key + ": must be above zero");
    }
}

TEST(StoreBackend, PoolSizeIsAPositiveNumber) {
    const auto r = load(R"(
store:
  backend: postgres
  postgres: {url: "${env:HOOKRELAY_DATABASE_URL}", pool_size: 0}
)");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_NE(r.errors[0].message.find("store.postgres.pool_size"), std::string::npos);
}

}  // namespace
}  // namespace hookrelay::config
