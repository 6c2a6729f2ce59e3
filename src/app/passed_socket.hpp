// A webhook socket that systemd passes (hookrelay.socket) is served wherever the socket unit put
// it, whatever `listen:` says: whether the two name the same place, so that the daemon can say
// so at start when they do not.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hookrelay::app {

/// "127.0.0.1:8080", "[::]:8080": an address and port as `listen:` and ListenStream= write them.
std::string host_port(std::string_view host, std::uint16_t port);

/// Whether `listen: <listen_host>:<listen_port>` names where a passed socket is bound
/// (`bound_host`, as getsockname gives it). The same port, and: the same address (an IPv4-mapped
/// IPv6 address is its IPv4 one); or `listen:` 0.0.0.0 (every IPv4 address) and a socket on
/// every address of either family (ListenStream=8080 binds [::], which takes IPv4 too). A socket
/// on 0.0.0.0 does not serve `listen: [::]`'s IPv6. False when either is not an IP address.
bool listen_names(std::string_view listen_host, std::uint16_t listen_port,
                  std::string_view bound_host, std::uint16_t bound_port);

}  // namespace hookrelay::app
