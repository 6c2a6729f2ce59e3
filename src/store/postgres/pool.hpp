// A small pool of PostgreSQL connections on the backend's own io_context, with reconnection and
// backoff. Implementation header of the PostgreSQL backend; pulls in Asio.
#pragma once

#include "store/postgres/connection.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

namespace hookrelay::store::postgres {

class Pool;

/// One connection lent by the pool; given back (or discarded when broken or left inside a
/// transaction) when the lease ends.
class Lease {
  public:
    Lease(Pool& pool, std::unique_ptr<Connection> connection)
        : pool_(&pool), connection_(std::move(connection)) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), connection_(std::move(other.connection_)) {}
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease();

    Connection& operator*() const noexcept { return *connection_; }
    Connection* operator->() const noexcept { return connection_.get(); }

  private:
    Pool* pool_;
    std::unique_ptr<Connection> connection_;
};

struct PoolSettings {
    std::size_t size = 4;
    Timeouts timeouts;
    /// How long acquire() waits for a connection while all are in use (then store_busy).
    std::chrono::milliseconds acquire_timeout{5'000};
    /// The first wait after a failed connect; doubled after each failure up to reconnect_max.
    std::chrono::milliseconds reconnect_min{100};
    std::chrono::milliseconds reconnect_max{10'000};
    std::string application_name = "hookrelay";
};

/// Lends connections, connecting them on demand (at most `size`). After a failed connect no
/// new connection is tried until the backoff has passed: acquire() then fails at once with
/// store_unavailable, so callers get their answer quickly while the server is down.
/// Not thread-safe: used only on its executor's (single) thread.
class Pool {
  public:
    Pool(boost::asio::any_io_executor executor, std::shared_ptr<const ConnInfo> info,
         PoolSettings settings);
    ~Pool();
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    /// A live connection, idle and outside any transaction. Throws DbError: store_unavailable
    /// (cannot connect, or waiting out the backoff), store_busy (every connection stayed in
    /// use for acquire_timeout), store_closed (after close()).
    boost::asio::awaitable<Lease> acquire();

    /// Runs `warm_up` on every connection before it is first lent: those made from now on, and
    /// those already made, when next taken. It should not throw; a connection it leaves broken
    /// or inside a transaction is closed (a new one fails as a failed connect would).
    using WarmUp = std::function<boost::asio::awaitable<void>(Connection&)>;
    void set_warm_up(WarmUp warm_up) { warm_up_ = std::move(warm_up); }

    /// Whether the last connect failed and the backoff has not passed; `why` gets the reason.
    bool backing_off(std::string* why = nullptr) const;

    /// Refuses new leases (store_closed), wakes the waiters, closes the idle connections;
    /// connections still lent are closed when given back.
    void close();

    const ConnInfo& info() const noexcept { return *info_; }
    const PoolSettings& settings() const noexcept { return settings_; }

  private:
    friend class Lease;
    struct Waiter {
        explicit Waiter(boost::asio::any_io_executor executor) : timer(executor) {}
        boost::asio::steady_timer timer;
        bool woken = false;
    };

    void give_back(std::unique_ptr<Connection> connection);
    /// Runs the warm-up on `connection` unless it ran already; whether the connection is still
    /// usable after it.
    boost::asio::awaitable<bool> warm(Connection& connection);
    void wake_one();
    void connected();
    void connect_failed(const DbError& error);
    std::string backoff_message() const;

    boost::asio::any_io_executor executor_;
    std::shared_ptr<const ConnInfo> info_;
    PoolSettings settings_;
    std::vector<std::unique_ptr<Connection>> idle_;
    std::size_t open_ = 0;  // idle + lent + connecting
    std::list<Waiter*> waiters_;
    WarmUp warm_up_;
    std::chrono::steady_clock::time_point retry_at_{};
    std::chrono::milliseconds backoff_{0};
    std::string last_error_;
    bool closed_ = false;
};

}  // namespace hookrelay::store::postgres
