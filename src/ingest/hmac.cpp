#include "ingest/hmac.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstddef>
#include <iterator>

namespace hookrelay::ingest {
namespace {

const char* digest_name(Digest digest) noexcept {
    switch (digest) {
        case Digest::sha1:
            return "SHA1";
        case Digest::sha256:
            return "SHA256";
        case Digest::sha512:
            return "SHA512";
    }
    return "SHA256";
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

int base64_value(char c) noexcept {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// The HMAC implementation and SHA-256, fetched once: fetching (a lookup in the provider's method
// store, under its lock) is the costly part of OpenSSL 3's one-shot `HMAC()` and of `EVP_Digest`
// with `EVP_sha256()`, ~1.5 us of a webhook's ~7 us verification (docs/performance.md).
EVP_MAC* hmac_mac() noexcept {
    static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    return mac;
}

// One HMAC context per digest on each thread, its digest set once: `EVP_MAC_init` with a key and
// no parameters only rekeys it, where parameters would fetch the digest again. Freed when its
// thread ends.
EVP_MAC_CTX* thread_context(Digest digest) noexcept {
    struct Contexts {
        EVP_MAC_CTX* by_digest[3] = {};
        Contexts() = default;
        Contexts(const Contexts&) = delete;
        Contexts& operator=(const Contexts&) = delete;
        ~Contexts() {
            for (auto* ctx : by_digest) EVP_MAC_CTX_free(ctx);
        }
    };
    thread_local Contexts contexts;
    // Digest's enumerators are 0, 1, 2 in order; anything else is not a Digest, and nothing
    // verifies under it.
    const auto index = static_cast<std::size_t>(digest);
    if (index >= std::size(contexts.by_digest)) return nullptr;
    EVP_MAC_CTX*& slot = contexts.by_digest[index];
    if (slot != nullptr) return slot;
    EVP_MAC* mac = hmac_mac();
    if (mac == nullptr) return nullptr;
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
    if (ctx == nullptr) return nullptr;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>(digest_name(digest)), 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(ctx, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return nullptr;
    }
    slot = ctx;
    return slot;
}

// HMAC(key, parts joined) into `out` (EVP_MAX_MD_SIZE bytes); its length, 0 if OpenSSL fails.
std::size_t hmac_into(Digest digest, std::string_view key, std::span<const std::string_view> parts,
                      unsigned char* out) noexcept {
    EVP_MAC_CTX* ctx = thread_context(digest);
    if (ctx == nullptr) return 0;
    std::size_t out_len = 0;
    bool ok = EVP_MAC_init(ctx, bytes(key), key.size(), nullptr) == 1;
    for (const auto part : parts) {
        ok = ok && EVP_MAC_update(ctx, bytes(part), part.size()) == 1;
    }
    ok = ok && EVP_MAC_final(ctx, out, &out_len, EVP_MAX_MD_SIZE) == 1;
    // Rekeyed with the empty key at once: the context's copy of the secret and the states derived
    // from it do not outlive the call (a secret rotated out of the config is gone from memory
    // here as it was when each call freed its context). Two compressions of SHA-256.
    const bool wiped = EVP_MAC_init(ctx, bytes({}), 0, nullptr) == 1;
    return ok && wiped ? out_len : 0;
}

}  // namespace

bool equal_constant_time(std::string_view a, std::string_view b) noexcept {
    // Digest sizes are public, so comparing the lengths first leaks nothing.
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::size_t digest_size(Digest digest) noexcept {
    switch (digest) {
        case Digest::sha1:
            return 20;
        case Digest::sha256:
            return 32;
        case Digest::sha512:
            return 64;
    }
    return 32;
}

std::string hmac(Digest digest, std::string_view key, std::string_view data) {
    const std::string_view parts[] = {data};
    return hmac(digest, key, parts);
}

std::string hmac(Digest digest, std::string_view key, std::span<const std::string_view> parts) {
    unsigned char out[EVP_MAX_MD_SIZE];
    const std::size_t n = hmac_into(digest, key, parts, out);
    return std::string(reinterpret_cast<const char*>(out), n);
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

std::optional<std::string> decode_base64(std::string_view text) {
    std::size_t padding = 0;
    while (padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
    if (padding > 2 || (padding > 0 && text.size() % 4 != 0)) return std::nullopt;
    text.remove_suffix(padding);
    // 4n + 1 characters cannot come from whole bytes.
    if (text.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(text.size() * 3 / 4);
    unsigned buffer = 0;
    int bits = 0;
    for (const char c : text) {
        const int v = base64_value(c);
        if (v < 0) return std::nullopt;
        buffer = (buffer << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((buffer >> bits) & 0xff));
        }
    }
    return out;
}

std::string encode_base64(std::string_view raw) {
    std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(raw),
                                  static_cast<int>(raw.size()));
    out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
    return out;
}

bool any_hmac_matches(Digest digest, std::span<const std::string_view> keys,
                      std::span<const std::string_view> parts,
                      std::span<const std::string> expected) {
    bool matched = false;
    // As below: no early exit, so the time depends on the counts alone.
    for (const auto key : keys) {
        if (key.empty()) continue;
        const auto mac = hmac(digest, key, parts);
        if (mac.empty()) continue;
        for (const auto& candidate : expected) matched |= equal_constant_time(mac, candidate);
    }
    return matched;
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
