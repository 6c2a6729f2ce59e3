// A test server's close that its client has seen when the call returns.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

namespace hookrelay::test {

/// Sends this side's FIN (shutdown for writing) and waits, up to `deadline`, until the peer's
/// kernel has acknowledged it: from then on the client's read or peek on its end sees the end of
/// the stream. Loopback usually gets it there within the call, but under load the receiving side
/// runs later (ksoftirqd), and a test of how a client treats a connection its server closed would
/// race with that. Close the socket after.
inline void shut_down_seen(int fd, std::chrono::milliseconds deadline = std::chrono::seconds(2)) {
    if (::shutdown(fd, SHUT_WR) != 0) return;
    const auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
        tcp_info info{};
        socklen_t length = sizeof info;
        if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return;
        // FIN_WAIT1, LAST_ACK and CLOSING: the FIN is sent (or queued) and not acknowledged yet.
        const auto state = info.tcpi_state;
        if (state != TCP_FIN_WAIT1 && state != TCP_LAST_ACK && state != TCP_CLOSING) return;
        if (std::chrono::steady_clock::now() >= until) return;
        std::this_thread::yield();
    }
}

}  // namespace hookrelay::test
