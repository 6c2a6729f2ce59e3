// Host names looked up without blocking the caller's thread or holding its io_context, within a
// deadline. getaddrinfo cannot be cancelled, and Asio's resolver runs it as work of the caller's
// io_context (whose run() then cannot return until DNS answers: a store's close, the daemon's
// stop). So each lookup runs on a thread of its own, one per host and service at a time in the
// whole process (callers of the same name while one runs wait for its answer), and reports to
// callers still waiting; a caller stops waiting at its timer. Include only in .cpp files (pulls
// in Asio).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <string>
#include <vector>

namespace hookrelay {

struct Resolved {
    std::vector<boost::asio::ip::tcp::endpoint> endpoints;  ///< at least one unless failed()
    bool timed_out = false;  ///< the timer expired (or was cancelled) first
    std::string error;       ///< why there is none: getaddrinfo's reason, or "no addresses"
    bool failed() const noexcept { return timed_out || !error.empty(); }
};

/// Starts a lookup; `done` may be called on any thread, late or never.
using StartLookup = std::function<void(std::function<void(Resolved)> done)>;

/// Waits for the lookup `start` begins until it answers or `timer` expires (or is cancelled:
/// timed_out). Nothing of the caller's is touched by an answer that comes after.
boost::asio::awaitable<Resolved> await_lookup(boost::asio::any_io_executor executor,
                                              StartLookup start, boost::asio::steady_timer& timer);

/// getaddrinfo for `host` and `service` (a port number as text, or "") on a thread of its own,
/// or joined to the one running for them now; `done` is called on that thread.
void look_up_in_background(const std::string& host, const std::string& service,
                           std::function<void(Resolved)> done);

/// await_lookup of look_up_in_background: the addresses of `host` by `timer`'s expiry.
boost::asio::awaitable<Resolved> resolve_within(boost::asio::any_io_executor executor,
                                                std::string host, std::string service,
                                                boost::asio::steady_timer& timer);

}  // namespace hookrelay
