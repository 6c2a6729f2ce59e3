// A host name looked up without blocking the caller's thread and within a deadline. getaddrinfo
// cannot be cancelled: the lookup runs on Asio's resolver thread, detached, and reports through a
// channel that the caller stops waiting on at the deadline (a lookup past it finishes on its own
// and is dropped). Include only in .cpp files (pulls in Asio).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace hookrelay {

struct Resolved {
    std::vector<boost::asio::ip::tcp::endpoint> endpoints;  ///< at least one unless failed()
    bool timed_out = false;                                 ///< the deadline passed first
    std::string error;  ///< why there is none: getaddrinfo's reason, or "no addresses"
    bool failed() const noexcept { return timed_out || !error.empty(); }
};

/// The addresses of `host` for `service` (a port number as text, or ""), or why there are none,
/// by `deadline`.
boost::asio::awaitable<Resolved> resolve_within(boost::asio::any_io_executor executor,
                                                std::string host, std::string service,
                                                std::chrono::steady_clock::time_point deadline);

}  // namespace hookrelay
