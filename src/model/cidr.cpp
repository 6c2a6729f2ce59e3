#include <hookrelay/cidr.hpp>

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace hookrelay {

std::optional<IpAddress> parse_ip(std::string_view text) noexcept {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
        text = text.substr(1, text.size() - 2);
    }
    // INET6_ADDRSTRLEN bounds every textual form inet_pton accepts.
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    char buffer[INET6_ADDRSTRLEN] = {};
    std::memcpy(buffer, text.data(), text.size());
    IpAddress out;
    if (text.find(':') == std::string_view::npos) {
        if (inet_pton(AF_INET, buffer, out.bytes.data()) != 1) return std::nullopt;
        out.v4 = true;
        return out;
    }
    if (inet_pton(AF_INET6, buffer, out.bytes.data()) != 1) return std::nullopt;
    static constexpr unsigned char k_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(out.bytes.data(), k_mapped, sizeof(k_mapped)) == 0) {
        IpAddress v4;
        std::memcpy(v4.bytes.data(), out.bytes.data() + 12, 4);
        v4.v4 = true;
        return v4;
    }
    out.v4 = false;
    return out;
}

std::string to_string(const IpAddress& address) {
    char buffer[INET6_ADDRSTRLEN] = {};
    inet_ntop(address.v4 ? AF_INET : AF_INET6, address.bytes.data(), buffer, sizeof(buffer));
    return buffer;
}

namespace {

void clear_host_bits(IpAddress& address, unsigned prefix) {
    const unsigned bits = address.v4 ? 32 : 128;
    for (unsigned bit = prefix; bit < bits; ++bit) {
        address.bytes[bit / 8] &= static_cast<unsigned char>(~(0x80u >> (bit % 8)));
    }
}

}  // namespace

std::string client_key(const IpAddress& address) {
    if (address.v4) return to_string(address);
    IpAddress block = address;
    clear_host_bits(block, 64);
    return to_string(block) + "/64";
}

bool Cidr::contains(const IpAddress& address) const noexcept {
    if (address.v4 != base.v4) return false;
    IpAddress masked = address;
    clear_host_bits(masked, prefix);
    return masked == base;
}

std::optional<Cidr> parse_cidr(std::string_view text) noexcept {
    const auto slash = text.find('/');
    auto address = parse_ip(text.substr(0, slash));
    if (!address) return std::nullopt;
    Cidr cidr;
    cidr.prefix = address->v4 ? 32 : 128;
    if (slash != std::string_view::npos) {
        const auto digits = text.substr(slash + 1);
        unsigned prefix = 0;
        const auto [ptr, ec] =
            std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
        if (digits.empty() || ec != std::errc{} || ptr != digits.data() + digits.size() ||
            prefix > cidr.prefix) {
            return std::nullopt;
        }
        cidr.prefix = prefix;
    }
    clear_host_bits(*address, cidr.prefix);
    cidr.base = *address;
    return cidr;
}

bool contains_any(const std::vector<Cidr>& ranges, const IpAddress& address) noexcept {
    for (const auto& range : ranges) {
        if (range.contains(address)) return true;
    }
    return false;
}

}  // namespace hookrelay
