#include "systemd/notify.hpp"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace hookrelay::systemd {

namespace {

// sd_notify returns > 0 when sent, 0 when NOTIFY_SOCKET is not set, < 0 on failure. The
// environment is kept (unset_environment = 0): the daemon notifies many times over its life.
bool send(const std::string& message) {
    return sd_notify(0, message.c_str()) > 0;
}

std::string status_field(std::string_view status) {
    std::string field = "STATUS=";
    field.reserve(field.size() + status.size());
    for (const char c : status) field += (c == '\n' || c == '\r') ? ' ' : c;
    return field;
}

}  // namespace

bool notify_ready(std::string_view status) {
    return send("READY=1\n" + status_field(status));
}

bool notify_stopping() {
    return send("STOPPING=1");
}

bool notify_reloading() {
    // CLOCK_MONOTONIC in microseconds: systemd 253+ uses it to tell this reload from an older one.
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1'000'000ULL +
                      static_cast<unsigned long long>(now.tv_nsec) / 1'000ULL;
    return send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

bool notify_status(std::string_view status) {
    return send(status_field(status));
}

bool notify_watchdog() {
    return send("WATCHDOG=1");
}

std::optional<std::chrono::microseconds> watchdog_interval() {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
    return std::chrono::microseconds(usec / 2);
}

std::vector<ListenSocket> listen_sockets(std::string* error) {
    if (error != nullptr) error->clear();
    // sd_listen_fds_with_names reports "unknown" for every fd when LISTEN_FDNAMES is absent; we
    // report "" then, so a caller can tell "unnamed" from a socket unit really named "unknown".
    const bool named = std::getenv("LISTEN_FDNAMES") != nullptr;
    char** names = nullptr;
    // unset_environment = 1: the variables describe this process only, never a child.
    const int n = sd_listen_fds_with_names(1, &names);
    std::vector<ListenSocket> sockets;
    if (n < 0) {
        if (error != nullptr) {
            *error = std::string("invalid socket activation environment (LISTEN_FDS): ") +
                     std::strerror(-n);
        }
        return sockets;
    }
    std::string problems;
    for (int i = 0; i < n; ++i) {
        const int fd = SD_LISTEN_FDS_START + i;
        std::string name = (named && names != nullptr && names[i] != nullptr) ? names[i] : "";
        // AF_UNSPEC with the _inet variant: IPv4 or IPv6, never a Unix socket, which the HTTP
        // server could not take.
        const int r = sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0);
        if (r > 0) {
            sockets.push_back({fd, std::move(name)});
            continue;
        }
        if (!problems.empty()) problems += "; ";
        problems += "fd " + std::to_string(fd) + (name.empty() ? "" : " (" + name + ")") + ": " +
                    (r < 0 ? std::string(std::strerror(-r)) : "not a listening TCP socket");
    }
    if (names != nullptr) {
        for (char** p = names; *p != nullptr; ++p) std::free(*p);  // a NULL-terminated strv
        std::free(names);
    }
    if (error != nullptr) *error = std::move(problems);
    return sockets;
}

}  // namespace hookrelay::systemd
