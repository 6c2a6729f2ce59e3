// Helpers for tests against real PostgreSQL servers: the throwaway server the CTest fixture
// started (tests/support/pg_server.sh, fixture `postgres`), a fresh database per test, a private
// server a test may restart or stop, and a blocking libpq connection to look inside.
#pragma once

#include "store/postgres/postgres_store.hpp"
#include "store/store_test_support.hpp"

#include <libpq-fe.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

namespace hookrelay::store::test {

/// The connection string of the fixture's server: the file named by HOOKRELAY_TEST_POSTGRES
/// (CTest sets it), else the build tree's default. Throws, failing the test, when there is none:
/// these tests never skip and never use a server that happened to be running.
inline std::string fixture_conninfo() {
    const char* env = std::getenv("HOOKRELAY_TEST_POSTGRES");
    const std::string path = env && *env ? env : HOOKRELAY_TEST_POSTGRES_DEFAULT;
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line) || line.empty()) {
        throw std::runtime_error(
            "no PostgreSQL test server: " + path +
            " is missing. ctest starts one (fixture postgres_server_start); to run the test "
            "binary alone: tests/support/pg_server.sh start DIR and HOOKRELAY_TEST_POSTGRES="
            "DIR/conninfo");
    }
    return line;
}

/// A blocking libpq connection for setting up and looking inside.
class Sql {
  public:
    explicit Sql(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
        if (PQstatus(conn_) != CONNECTION_OK) {
            const std::string message = PQerrorMessage(conn_);
            PQfinish(conn_);
            conn_ = nullptr;
            throw std::runtime_error("cannot connect to the test server: " + message);
        }
    }
    ~Sql() {
        if (conn_) PQfinish(conn_);
    }
    Sql(const Sql&) = delete;
    Sql& operator=(const Sql&) = delete;

    /// Runs `sql` (one or more statements); throws on failure.
    void exec(const std::string& sql) {
        PGresult* r = PQexec(conn_, sql.c_str());
        const auto status = PQresultStatus(r);
        const std::string message = PQresultErrorMessage(r);
        PQclear(r);
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
            throw std::runtime_error(sql + ": " + message);
        }
    }

    /// The first column of the first row as text ("" for NULL or no row).
    std::string value(const std::string& sql) {
        PGresult* r = PQexec(conn_, sql.c_str());
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            const std::string message = PQresultErrorMessage(r);
            PQclear(r);
            throw std::runtime_error(sql + ": " + message);
        }
        std::string out = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "";
        PQclear(r);
        return out;
    }

  private:
    PGconn* conn_;
};

inline std::string random_suffix() {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < 12; ++i) out += k_digits[rng() % 16];
    return out;
}

/// A database of its own on `server` (the fixture's by default), dropped afterwards: every test
/// starts from nothing.
class TestDatabase {
  public:
    explicit TestDatabase(std::string server = fixture_conninfo())
        : server_(std::move(server)), name_("hookrelay_test_" + random_suffix()) {
        Sql(server_).exec("CREATE DATABASE " + name_);
        conninfo_ = server_ + " dbname=" + name_;
    }
    ~TestDatabase() {
        try {
            Sql(server_).exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
        } catch (...) {
            // The server may be gone (a test stopped it); its directory goes with it.
        }
    }
    TestDatabase(const TestDatabase&) = delete;
    TestDatabase& operator=(const TestDatabase&) = delete;

    /// libpq key=value string for this database (later keywords override earlier ones).
    const std::string& conninfo() const { return conninfo_; }
    const std::string& name() const { return name_; }

  private:
    std::string server_;
    std::string name_;
    std::string conninfo_;
};

/// A server of the test's own (tests/support/pg_server.sh), for tests that restart or stop it.
class PrivateServer {
  public:
    PrivateServer() {
        std::string pattern = "/tmp/hookrelay-pgstate-XXXXXX";
        if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        state_ = pattern;
        run("start");
        std::ifstream in(state_ + "/conninfo");
        std::getline(in, conninfo_);
        if (conninfo_.empty()) throw std::runtime_error("the private server wrote no conninfo");
    }
    ~PrivateServer() {
        try {
            run("stop");
        } catch (...) {
        }
        std::error_code ec;
        std::filesystem::remove_all(state_, ec);
    }
    PrivateServer(const PrivateServer&) = delete;
    PrivateServer& operator=(const PrivateServer&) = delete;

    const std::string& conninfo() const { return conninfo_; }
    /// pg_ctl restart (fast shutdown: every connection is cut), back when it returns.
    void restart() { run("restart"); }
    /// Stops the server, keeping its data.
    void halt() { run("halt"); }
    /// Starts it again after halt().
    void start_again() { run("start-again"); }

  private:
    void run(const std::string& command) {
        const std::string line =
            std::string(HOOKRELAY_PG_SERVER_SCRIPT) + " " + command + " " + state_ + " >/dev/null";
        if (std::system(line.c_str()) != 0) {
            throw std::runtime_error("pg_server.sh " + command + " failed");
        }
    }

    std::string state_;
    std::string conninfo_;
};

/// Store settings for tests: short timeouts so failures come quickly, no automatic pruning.
inline StoreConfig pg_config(const std::string& conninfo) {
    StoreConfig c;
    c.backend = StoreConfig::Backend::postgres;
    c.postgres.url = Secret(conninfo);
    c.postgres.pool_size = 4;
    c.postgres.connect_timeout = std::chrono::milliseconds(2'000);
    c.postgres.statement_timeout = std::chrono::milliseconds(2'000);
    c.postgres.reconnect_max = std::chrono::milliseconds(400);
    c.prune_interval = std::chrono::milliseconds(0);
    return c;
}

inline PostgresOptions pg_options(std::string instance_id) {
    PostgresOptions o;
    o.instance_id = std::move(instance_id);
    o.host = "test-host";
    o.version = "0.0.test";
    o.heartbeat_interval = std::chrono::milliseconds(200);
    o.listen_ping_interval = std::chrono::milliseconds(500);
    o.reconnect_min = std::chrono::milliseconds(50);
    return o;
}

/// Polls `condition` until it holds or the deadline passes; answers whether it held.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds deadline = k_deadline) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    for (;;) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() >= end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // a poll step, not a wait
    }
}

}  // namespace hookrelay::store::test
