// systemd integration: readiness and status notifications (sd_notify), the service watchdog and
// socket activation (sd_listen_fds). libsystemd stays inside notify.cpp.
//
// Outside systemd every function is a no-op: the notify functions return false when
// NOTIFY_SOCKET is not set, watchdog_interval() returns nullopt without WatchdogSec=, and
// listen_sockets() returns nothing without LISTEN_FDS. The daemon can call them unconditionally.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::systemd {

/// Sends "READY=1" with "STATUS=<status>" (the text `systemctl status` shows). Call once the
/// listeners accept connections, and again after a reload has finished. Returns true when the
/// message was sent, false outside systemd or when sending failed. Thread-safe.
bool notify_ready(std::string_view status);

/// Sends "STOPPING=1": the daemon has begun shutting down. Same return value and thread safety.
bool notify_stopping();

/// Sends "RELOADING=1" (with MONOTONIC_USEC, which systemd 253's Type=notify-reload requires and
/// older versions ignore): a reload started. Follow it with notify_ready() when the reload is over,
/// whether the new config was taken or refused. Same return value and thread safety.
bool notify_reloading();

/// Sends "STATUS=<status>". Line breaks in `status` are sent as spaces (a line break would end the
/// field). Same return value and thread safety.
bool notify_status(std::string_view status);

/// Sends "WATCHDOG=1": the daemon is alive. Same return value and thread safety.
bool notify_watchdog();

/// WatchdogSec= from sd_watchdog_enabled (WATCHDOG_USEC, and WATCHDOG_PID when set): the ping
/// interval to use, half the timeout, so one late ping is not fatal. nullopt when there is no
/// watchdog for this process.
std::optional<std::chrono::microseconds> watchdog_interval();

/// A socket systemd passed to the process.
struct ListenSocket {
    int fd;            ///< owned by the caller from now on (close-on-exec is set)
    std::string name;  ///< FileDescriptorName= of the socket unit; "" when none was passed
};

/// The sockets passed by systemd (socket activation: LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES),
/// read through sd_listen_fds_with_names, which also unsets those variables so that they are not
/// inherited. Each is checked to be a listening TCP stream socket (IPv4 or IPv6). Returns the
/// good ones, in the order they were passed; every fd that is not such a socket, or a malformed
/// environment, is described in `*error` (left empty when all is well; may be null) and the bad
/// fds are left open. Returns an empty vector when not socket-activated.
/// Not thread-safe (reads and changes the environment): call once at start-up, before any thread.
std::vector<ListenSocket> listen_sockets(std::string* error);

}  // namespace hookrelay::systemd
