#include "ingest/signature.hpp"

#include <charconv>
#include <vector>

namespace hookrelay::ingest {
namespace {

bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

constexpr std::string_view k_signing_token_prefix = "whsec_";

}  // namespace

std::string_view trim(std::string_view s) noexcept {
    const auto is_space = [](char c) { return c == ' ' || c == '\t'; };
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

std::optional<std::string_view> credential_header(const HeaderMap& headers,
                                                  std::span<const std::string_view> names,
                                                  std::string_view bare_prefix) {
    for (const auto name : names) {
        const auto value = headers.find(name);
        if (!value) continue;
        const auto text = trim(*value);
        if (text.empty() || (!bare_prefix.empty() && iequals(text, bare_prefix))) continue;
        return text;
    }
    return std::nullopt;
}

result<void> check_hex_hmac(std::string_view value, std::string_view prefix, Digest digest,
                            std::span<const Secret> secrets,
                            std::span<const std::string_view> parts) {
    if (!istarts_with(value, prefix)) return errc::signature_malformed;
    const auto hex = value.substr(prefix.size());
    if (hex.size() != 2 * digest_size(digest)) return errc::signature_malformed;
    const auto expected = decode_hex(hex);
    if (!expected) return errc::signature_malformed;
    // HMAC(secret, content) for every non-empty secret, compared in constant time; an empty
    // secret never verifies (anyone can compute an HMAC under an empty key). Most forges sign
    // the body alone: that path allocates nothing.
    if (parts.size() == 1) {
        if (!any_hmac_matches(digest, secrets, parts.front(), *expected)) {
            return errc::signature_mismatch;
        }
        return {};
    }
    std::vector<std::string_view> keys;
    keys.reserve(secrets.size());
    for (const auto& secret : secrets) keys.push_back(secret.reveal());
    const std::string want[] = {std::move(*expected)};
    if (!any_hmac_matches(digest, keys, parts, want)) return errc::signature_mismatch;
    return {};
}

result<void> check_token(const HeaderMap& headers, std::string_view name,
                         std::span<const Secret> tokens) {
    const auto value = headers.find(name);
    if (!value || trim(*value).empty()) return errc::signature_missing;
    if (!any_token_matches(tokens, trim(*value))) return errc::signature_mismatch;
    return {};
}

std::string joined_names(std::initializer_list<std::string_view> names,
                         std::string_view separator) {
    std::string out;
    for (const auto name : names) {
        if (name.empty()) continue;
        if (!out.empty()) out += separator;
        out += name;
    }
    return out;
}

std::optional<std::int64_t> parse_unix_seconds(std::string_view text) noexcept {
    // Digits only (no sign, no fraction); 18 digits cannot overflow and reach far past any clock.
    if (text.empty() || text.size() > 18) return std::nullopt;
    std::int64_t value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || ptr != text.data() + text.size() || text.front() == '-') {
        return std::nullopt;
    }
    return value;
}

result<void> check_window(std::int64_t signed_at, std::chrono::milliseconds window,
                          std::chrono::system_clock::time_point now) {
    const auto now_s =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    // Both sides are below 10^18, so the difference cannot overflow.
    const auto skew = signed_at > now_s ? signed_at - now_s : now_s - signed_at;
    if (skew > window.count() / 1000) return errc::timestamp_out_of_window;
    return {};
}

std::optional<std::string> signing_key(std::string_view token) {
    if (token.starts_with(k_signing_token_prefix)) {
        token.remove_prefix(k_signing_token_prefix.size());
    }
    auto key = decode_base64(token);
    if (!key || key->empty()) return std::nullopt;
    return key;
}

result<void> check_standard_webhook(const HeaderMap& headers, std::string_view body,
                                    std::span<const Secret> signing_tokens,
                                    std::chrono::milliseconds window,
                                    std::chrono::system_clock::time_point now) {
    static constexpr std::string_view k_signature[] = {"webhook-signature"};
    const auto signature = credential_header(headers, k_signature);
    if (!signature) return errc::signature_missing;
    const auto id = trim(headers.find("webhook-id").value_or(""));
    if (id.empty()) return errc::signature_malformed;
    const auto timestamp_text = trim(headers.find("webhook-timestamp").value_or(""));
    const auto signed_at = parse_unix_seconds(timestamp_text);
    if (!signed_at) return errc::timestamp_malformed;

    // "v1,<base64> v1,<base64> ...": several during a key rotation; other versions (v1a is the
    // asymmetric scheme) are not for a shared secret and are skipped.
    std::vector<std::string> expected;
    auto rest = *signature;
    while (!rest.empty()) {
        const auto space = rest.find(' ');
        const auto entry = rest.substr(0, space);
        rest = space == std::string_view::npos ? std::string_view{} : rest.substr(space + 1);
        if (!entry.starts_with("v1,")) continue;
        if (auto mac = decode_base64(entry.substr(3)); mac && mac->size() == 32) {
            expected.push_back(std::move(*mac));
        }
    }
    if (expected.empty()) return errc::signature_malformed;

    std::vector<std::string> decoded;
    decoded.reserve(signing_tokens.size());
    for (const auto& token : signing_tokens) {
        if (auto key = signing_key(token.reveal())) decoded.push_back(std::move(*key));
    }
    const std::vector<std::string_view> keys(decoded.begin(), decoded.end());
    const std::string_view parts[] = {id, ".", timestamp_text, ".", body};
    if (!any_hmac_matches(Digest::sha256, keys, parts, expected)) {
        return errc::signature_mismatch;
    }
    return check_window(*signed_at, window, now);
}

}  // namespace hookrelay::ingest
