#include "app/passed_socket.hpp"

#include <fmt/format.h>

#include <boost/asio/ip/address.hpp>

#include <optional>

namespace hookrelay::app {

namespace {

namespace ip = boost::asio::ip;

// The address, an IPv4-mapped IPv6 one as its IPv4 address; nullopt for text that is none.
std::optional<ip::address> address_of(std::string_view text) {
    boost::system::error_code ec;
    const auto address = ip::make_address(text, ec);
    if (ec) return std::nullopt;
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
        return ip::make_address_v4(ip::v4_mapped, address.to_v6());
    }
    return address;
}

}  // namespace

std::string host_port(std::string_view host, std::uint16_t port) {
    return host.find(':') != std::string_view::npos ? fmt::format("[{}]:{}", host, port)
                                                    : fmt::format("{}:{}", host, port);
}

bool listen_names(std::string_view listen_host, std::uint16_t listen_port,
                  std::string_view bound_host, std::uint16_t bound_port) {
    const auto listen = address_of(listen_host);
    const auto bound = address_of(bound_host);
    if (!listen || !bound || listen_port != bound_port) return false;
    if (listen->is_unspecified() && bound->is_unspecified()) {
        return listen->is_v4() || bound->is_v6();
    }
    return *listen == *bound;
}

}  // namespace hookrelay::app
