// A test server's close that its clients have seen when the call returns.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>
#include <vector>

namespace hookrelay::test {

/// Sends each socket's FIN (shutdown for writing) and waits, up to `deadline` for all of them,
/// until each peer's kernel has acknowledged it: from then on a client's read or peek on its end
/// sees the end of the stream. Loopback usually gets it there within the call, but under load
/// the receiving side runs later (ksoftirqd), and a test of how a client treats a connection its
/// server closed would race with that. Close the sockets after.
inline void shut_down_seen(const std::vector<int>& fds,
                           std::chrono::milliseconds deadline = std::chrono::seconds(1)) {
    std::vector<int> waiting;
    for (const int fd : fds) {
        if (::shutdown(fd, SHUT_WR) == 0) waiting.push_back(fd);
    }
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!waiting.empty() && std::chrono::steady_clock::now() < until) {
        std::vector<int> still;
        for (const int fd : waiting) {
            tcp_info info{};
            socklen_t length = sizeof info;
            if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) continue;
            // FIN_WAIT1, LAST_ACK and CLOSING: the FIN is sent (or queued), not acknowledged.
            const auto state = info.tcpi_state;
            if (state == TCP_FIN_WAIT1 || state == TCP_LAST_ACK || state == TCP_CLOSING) {
                still.push_back(fd);
            }
        }
        waiting.swap(still);
        // A peer may hold its acknowledgement back (a delayed ACK: tens of ms).
        if (!waiting.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

}  // namespace hookrelay::test
