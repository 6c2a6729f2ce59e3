#include "store/postgres/pool.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <optional>

namespace hookrelay::store::postgres {
namespace {
namespace asio = boost::asio;
using Steady = std::chrono::steady_clock;
constexpr auto k_use_tuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

Lease::~Lease() {
    if (pool_ && connection_) pool_->give_back(std::move(connection_));
}

Pool::Pool(asio::any_io_executor executor, std::shared_ptr<const ConnInfo> info,
           PoolSettings settings)
    : executor_(executor), info_(std::move(info)), settings_(std::move(settings)) {
    settings_.size = std::max<std::size_t>(settings_.size, 1);
}

Pool::~Pool() {
    close();
}

void Pool::close() {
    closed_ = true;
    idle_.clear();
    for (Waiter* waiter : waiters_) {
        waiter->woken = true;
        waiter->timer.cancel();
    }
}

bool Pool::backing_off(std::string* why) const {
    if (Steady::now() >= retry_at_) return false;
    if (why) *why = backoff_message();
    return true;
}

std::string Pool::backoff_message() const {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(retry_at_ - Steady::now());
    return last_error_ + " (next attempt in " +
           std::to_string(std::max<long long>(left.count(), 0)) + " ms)";
}

asio::awaitable<Lease> Pool::acquire() {
    const auto deadline = Steady::now() + settings_.acquire_timeout;
    for (;;) {
        if (closed_) throw DbError(errc::store_closed, "the store is closed");
        while (!idle_.empty()) {
            std::unique_ptr<Connection> connection = std::move(idle_.back());
            idle_.pop_back();
            if (connection->alive() && co_await warm(*connection)) {
                if (closed_) {
                    --open_;
                    throw DbError(errc::store_closed, "the store is closed");
                }
                co_return Lease(*this, std::move(connection));
            }
            --open_;  // lost while idle (e.g. the server restarted): connect a new one
        }
        if (open_ < settings_.size) {
            if (Steady::now() < retry_at_) {
                throw DbError(errc::store_unavailable, backoff_message());
            }
            ++open_;
            auto connection = std::make_unique<Connection>(executor_, info_, settings_.timeouts,
                                                           settings_.application_name);
            std::optional<DbError> failure;
            try {
                co_await connection->connect();
            } catch (const DbError& e) {
                failure = e;
            }
            if (!failure && !co_await warm(*connection)) {
                failure = DbError(errc::store_unavailable,
                                  "the connection was lost while it was warmed up");
            }
            if (failure) {
                --open_;
                connect_failed(*failure);
                wake_one();  // a waiter learns of the backoff at once
                throw *failure;
            }
            if (closed_) throw DbError(errc::store_closed, "the store is closed");
            connected();
            co_return Lease(*this, std::move(connection));
        }
        if (Steady::now() >= deadline) {
            throw DbError(errc::store_busy, "all " + std::to_string(settings_.size) +
                                                " PostgreSQL connections stayed in use for " +
                                                std::to_string(settings_.acquire_timeout.count()) +
                                                " ms");
        }
        Waiter waiter(executor_);
        waiter.timer.expires_at(deadline);
        const auto it = waiters_.insert(waiters_.end(), &waiter);
        co_await waiter.timer.async_wait(k_use_tuple);
        waiters_.erase(it);
    }
}

asio::awaitable<bool> Pool::warm(Connection& connection) {
    if (!warm_up_ || connection.warmed()) co_return true;
    connection.mark_warmed();
    try {
        co_await warm_up_(connection);
    } catch (const std::exception&) {
        connection.mark_broken();
    }
    co_return !connection.broken() && connection.idle();
}

void Pool::give_back(std::unique_ptr<Connection> connection) {
    if (closed_ || connection->broken() || !connection->idle()) {
        // Broken, or left inside a transaction by a failure: closing it rolls that back.
        --open_;
        connection.reset();
    } else {
        idle_.push_back(std::move(connection));
    }
    wake_one();
}

void Pool::wake_one() {
    for (Waiter* waiter : waiters_) {
        if (waiter->woken) continue;
        waiter->woken = true;
        waiter->timer.cancel();
        return;
    }
}

void Pool::connected() {
    backoff_ = std::chrono::milliseconds(0);
    retry_at_ = {};
    last_error_.clear();
}

void Pool::connect_failed(const DbError& error) {
    backoff_ = backoff_.count() == 0 ? settings_.reconnect_min
                                     : std::min(backoff_ * 2, settings_.reconnect_max);
    backoff_ = std::min(backoff_, settings_.reconnect_max);
    retry_at_ = Steady::now() + backoff_;
    last_error_ = error.what();
}

}  // namespace hookrelay::store::postgres
