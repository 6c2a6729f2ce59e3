// IP addresses and CIDR ranges for allowlists and trusted proxies, without a network library.
// Pure functions; thread-safe.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay {

/// An IPv4 or IPv6 address. IPv4-mapped IPv6 addresses (::ffff:192.0.2.1) are kept as IPv4, so
/// a dual-stack listener's peers compare equal to the IPv4 ranges admins write.
struct IpAddress {
    bool v4 = true;
    std::array<unsigned char, 16> bytes{};  ///< first 4 used for IPv4

    bool operator==(const IpAddress&) const = default;
};

/// Parses "192.0.2.1", "2001:db8::1", "[2001:db8::1]", "::ffff:192.0.2.1"; nullopt otherwise
/// (host names, ports, zone ids, empty).
std::optional<IpAddress> parse_ip(std::string_view text) noexcept;

/// "192.0.2.1" or "2001:db8::1".
std::string to_string(const IpAddress& address);

/// The client per-client limits count `address` as: itself for IPv4; for IPv6 its /64
/// ("2001:db8:1:2::/64"), the block one host or site is given and may take any address of.
std::string client_key(const IpAddress& address);

/// An address range: "10.0.0.0/8", "2001:db8::/32"; a bare address is a /32 (/128).
struct Cidr {
    IpAddress base;  ///< with the host bits cleared
    unsigned prefix = 32;

    /// Whether `address` lies in the range (an IPv4 range never contains an IPv6 address).
    bool contains(const IpAddress& address) const noexcept;
};

/// Parses a range as above. nullopt when malformed (prefix out of range, host bits in a bare
/// "/" form are allowed and cleared).
std::optional<Cidr> parse_cidr(std::string_view text) noexcept;

/// Whether any range in `ranges` contains `address`.
bool contains_any(const std::vector<Cidr>& ranges, const IpAddress& address) noexcept;

}  // namespace hookrelay
