#include "util/resolve.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace hookrelay {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto k_use_tuple = asio::as_tuple(asio::use_awaitable);

using Channel = asio::experimental::concurrent_channel<void(error_code, Resolved)>;

// Where an answer goes while its caller still waits. The caller closes it (on its own thread,
// under the lock) before its channel goes away, so an answer never reaches a channel, or an
// io_context, that is gone.
struct Mailbox {
    std::mutex mutex;
    std::shared_ptr<Channel> channel;  // null once closed
};

// The mailboxes of one io_context whose callers still wait. Shut down before the context's
// channel service (it is registered after it: see await_lookup), it closes them, so that an
// answer arriving while the context is destroyed (its waiting coroutines are destroyed last)
// never reaches a channel whose service has shut down.
class OpenMailboxes final : public asio::execution_context::service {
  public:
    static asio::execution_context::id id;
    explicit OpenMailboxes(asio::execution_context& context) : service(context) {}

    void add(const std::shared_ptr<Mailbox>& mailbox) {
        std::lock_guard lock(mutex_);
        if (shut_) {
            std::lock_guard inner(mailbox->mutex);
            mailbox->channel.reset();
            return;
        }
        open_.push_back(mailbox);
    }
    void remove(const Mailbox* mailbox) {
        std::lock_guard lock(mutex_);
        std::erase_if(open_, [&](const std::weak_ptr<Mailbox>& m) {
            const auto held = m.lock();
            return !held || held.get() == mailbox;
        });
    }

  private:
    void shutdown() override {
        std::lock_guard lock(mutex_);
        shut_ = true;
        for (const auto& weak : open_) {
            if (auto mailbox = weak.lock()) {
                std::lock_guard inner(mailbox->mutex);
                mailbox->channel.reset();
            }
        }
        open_.clear();
    }

    std::mutex mutex_;
    bool shut_ = false;
    std::vector<std::weak_ptr<Mailbox>> open_;
};
asio::execution_context::id OpenMailboxes::id;

// The lookups running now, by host and service, with who waits for each. Never destroyed: a
// lookup thread may outlive main().
struct Running {
    std::mutex mutex;
    std::map<std::pair<std::string, std::string>, std::vector<std::function<void(Resolved)>>>
        waiting;
};
Running& running() {
    static auto* r = new Running;
    return *r;
}

Resolved getaddrinfo_now(const std::string& host, const std::string& service) {
    Resolved resolved;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const int rc =
        ::getaddrinfo(host.c_str(), service.empty() ? nullptr : service.c_str(), &hints, &list);
    if (rc != 0) {
        resolved.error =
            rc == EAI_SYSTEM ? std::system_category().message(errno) : ::gai_strerror(rc);
        return resolved;
    }
    for (const addrinfo* a = list; a; a = a->ai_next) {
        if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
        tcp::endpoint endpoint;
        std::memcpy(endpoint.data(), a->ai_addr, a->ai_addrlen);
        endpoint.resize(a->ai_addrlen);
        resolved.endpoints.push_back(endpoint);
    }
    ::freeaddrinfo(list);
    if (resolved.endpoints.empty()) resolved.error = "no addresses";
    return resolved;
}

// Ends the lookup for `key`: the callers that waited for it.
std::vector<std::function<void(Resolved)>> take_waiting(
    const std::pair<std::string, std::string>& key) {
    std::lock_guard lock(running().mutex);
    auto it = running().waiting.find(key);
    auto waiting = std::move(it->second);
    running().waiting.erase(it);
    return waiting;
}

// Tells each caller; one that fails (out of memory) does not keep it from the others.
void answer_all(const std::vector<std::function<void(Resolved)>>& waiting,
                const Resolved& resolved) {
    for (const auto& answer : waiting) {
        try {
            answer(resolved);
        } catch (...) {
            // That caller's wait ends at its timer.
        }
    }
}

}  // namespace

void look_up_in_background(const std::string& host, const std::string& service,
                           std::function<void(Resolved)> done) {
    auto key = std::make_pair(host, service);
    {
        std::lock_guard lock(running().mutex);
        auto [it, first] = running().waiting.try_emplace(key);
        it->second.push_back(std::move(done));
        if (!first) return;  // joins the lookup running for them
    }
    try {
        std::thread([key] {
            Resolved resolved;
            try {
                resolved = getaddrinfo_now(key.first, key.second);
            } catch (const std::exception& e) {
                resolved.error = e.what();
            }
            answer_all(take_waiting(key), resolved);
        }).detach();
    } catch (const std::exception& e) {
        // No thread to be had: everyone waiting for this name hears it now.
        Resolved failed;
        failed.error = std::string("cannot start a lookup: ") + e.what();
        answer_all(take_waiting(key), failed);
    }
}

asio::awaitable<Resolved> await_lookup(asio::any_io_executor executor, StartLookup start,
                                       asio::steady_timer& timer) {
    auto channel = std::make_shared<Channel>(executor, 1);
    auto mailbox = std::make_shared<Mailbox>();
    mailbox->channel = channel;
    // After the channel: a service made now is registered after the channel's, and shuts down
    // before it.
    auto& open = asio::use_service<OpenMailboxes>(asio::query(executor, asio::execution::context));
    open.add(mailbox);
    struct Close {
        OpenMailboxes& open;
        Mailbox& mailbox;
        ~Close() {
            open.remove(&mailbox);
            std::lock_guard lock(mailbox.mutex);
            mailbox.channel.reset();
        }
    } close{open, *mailbox};
    start([mailbox](Resolved resolved) {
        std::lock_guard lock(mailbox->mutex);
        if (mailbox->channel) mailbox->channel->try_send(error_code{}, std::move(resolved));
    });
    auto answer = co_await (channel->async_receive(k_use_tuple) || timer.async_wait(k_use_tuple));
    if (answer.index() == 1) {
        Resolved late;
        late.timed_out = true;
        co_return late;
    }
    auto [ec, resolved] = std::move(std::get<0>(answer));
    if (ec) resolved.error = ec.message();
    co_return resolved;
}

asio::awaitable<Resolved> resolve_within(asio::any_io_executor executor, std::string host,
                                         std::string service, asio::steady_timer& timer) {
    co_return co_await await_lookup(
        executor,
        [&host, &service](auto done) { look_up_in_background(host, service, std::move(done)); },
        timer);
}

}  // namespace hookrelay
