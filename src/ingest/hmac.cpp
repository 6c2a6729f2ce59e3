#include "ingest/hmac.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <climits>

namespace hookrelay::ingest {
namespace {

const EVP_MD* evp(Digest digest) noexcept {
    return digest == Digest::sha1 ? EVP_sha1() : EVP_sha256();
}

// OpenSSL wants a non-null pointer even for zero bytes; an empty string_view may hold nullptr.
const unsigned char* bytes(std::string_view s) noexcept {
    static const unsigned char empty = 0;
    return s.empty() ? &empty : reinterpret_cast<const unsigned char*>(s.data());
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool equal_constant_time(std::string_view a, std::string_view b) noexcept {
    // Digest sizes are public, so comparing the lengths first leaks nothing.
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string hmac(Digest digest, std::string_view key, std::string_view data) {
    // No configured secret comes anywhere near INT_MAX bytes; refuse rather than truncate.
    if (key.size() > static_cast<std::size_t>(INT_MAX)) return {};
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int out_len = 0;
    if (HMAC(evp(digest), bytes(key), static_cast<int>(key.size()), bytes(data), data.size(), out,
             &out_len) == nullptr) {
        return {};
    }
    return std::string(reinterpret_cast<const char*>(out), out_len);
}

namespace {

std::string to_hex(std::string_view raw) {
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(raw.size() * 2);
    for (const unsigned char c : raw) {
        hex.push_back(k_digits[c >> 4]);
        hex.push_back(k_digits[c & 0x0f]);
    }
    return hex;
}

}  // namespace

std::string hmac_hex(Digest digest, std::string_view key, std::string_view data) {
    return to_hex(hmac(digest, key, data));
}

std::string sha256_hex(std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int out_len = 0;
    if (EVP_Digest(bytes(data), data.size(), out, &out_len, EVP_sha256(), nullptr) != 1) return {};
    return to_hex(std::string_view(reinterpret_cast<const char*>(out), out_len));
}

std::optional<std::string> decode_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) return std::nullopt;
    std::string out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = hex_value(hex[i]);
        const int lo = hex_value(hex[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>((hi << 4) | lo));
    }
    return out;
}

bool any_hmac_matches(Digest digest, std::span<const Secret> secrets, std::string_view body,
                      std::string_view expected) {
    bool matched = false;
    // No early exit: the time taken depends only on the number of secrets, not on which matched.
    for (const auto& secret : secrets) {
        if (secret.empty()) continue;
        const auto mac = hmac(digest, secret.reveal(), body);
        matched |= !mac.empty() && equal_constant_time(mac, expected);
    }
    return matched;
}

bool any_token_matches(std::span<const Secret> secrets, std::string_view token) {
    // Hashing both sides turns a variable-length compare into a fixed 32-byte one. The key only
    // has to be fixed, not secret: the digests never leave this function.
    static constexpr std::string_view k_compare_key = "hookrelay-token-compare";
    const auto presented = hmac(Digest::sha256, k_compare_key, token);
    bool matched = false;
    for (const auto& secret : secrets) {
        if (secret.empty()) continue;
        const auto configured = hmac(Digest::sha256, k_compare_key, secret.reveal());
        matched |= !presented.empty() && equal_constant_time(presented, configured);
    }
    return matched;
}

}  // namespace hookrelay::ingest
