#include "ingest/generic/forge.hpp"

#include "ingest/json_access.hpp"
#include "ingest/signature.hpp"

namespace hookrelay::ingest::generic {
namespace {

constexpr std::string_view k_keys[] = {"secret",           "secrets", "signature",
                                       "timestamp_window", "event",   "delivery_id"};

Digest digest_of(SignatureSpec::Algorithm algorithm) noexcept {
    switch (algorithm) {
        case SignatureSpec::Algorithm::sha1:
            return Digest::sha1;
        case SignatureSpec::Algorithm::sha256:
            return Digest::sha256;
        case SignatureSpec::Algorithm::sha512:
            return Digest::sha512;
    }
    return Digest::sha256;
}

bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// `content` with its placeholders ({body}, {timestamp}, {delivery_id}; the config loader
// admits no others) replaced, as pieces to feed the HMAC in order.
std::vector<std::string_view> signed_parts(std::string_view content, std::string_view body,
                                           std::string_view timestamp,
                                           std::string_view delivery_id) {
    std::vector<std::string_view> parts;
    while (!content.empty()) {
        const auto open = content.find('{');
        if (open == std::string_view::npos) {
            parts.push_back(content);
            break;
        }
        if (open > 0) parts.push_back(content.substr(0, open));
        content.remove_prefix(open);
        if (content.starts_with("{body}")) {
            parts.push_back(body);
            content.remove_prefix(6);
        } else if (content.starts_with("{timestamp}")) {
            parts.push_back(timestamp);
            content.remove_prefix(11);
        } else if (content.starts_with("{delivery_id}")) {
            parts.push_back(delivery_id);
            content.remove_prefix(13);
        } else {
            parts.push_back(content.substr(0, 1));
            content.remove_prefix(1);
        }
    }
    return parts;
}

result<void> verify(const Request& r) {
    const auto& spec = r.source.signature;
    // The config loader requires `signature:` with a secret; without one nothing can verify.
    if (!spec || r.source.secrets.empty()) return errc::signature_missing;
    const std::string_view names[] = {spec->header};
    const auto value = credential_header(r.headers, names, spec->prefix);
    if (!value) return errc::signature_missing;
    if (!istarts_with(*value, spec->prefix)) return errc::signature_malformed;
    const auto text = value->substr(spec->prefix.size());
    const auto digest = digest_of(spec->algorithm);
    const auto expected =
        spec->encoding == SignatureSpec::Encoding::hex ? decode_hex(text) : decode_base64(text);
    if (!expected || expected->size() != digest_size(digest)) return errc::signature_malformed;

    std::string_view timestamp;
    std::optional<std::int64_t> signed_at;
    if (!spec->timestamp_header.empty()) {
        timestamp = trim(r.headers.find(spec->timestamp_header).value_or(""));
        signed_at = parse_unix_seconds(timestamp);
        if (!signed_at) return errc::timestamp_malformed;
    }
    std::string_view delivery_id;
    if (r.source.delivery_id.from == ValueRef::From::header) {
        delivery_id = trim(r.headers.find(r.source.delivery_id.name).value_or(""));
    }
    const auto parts = signed_parts(spec->content, r.body, timestamp, delivery_id);
    std::vector<std::string_view> keys;
    keys.reserve(r.source.secrets.size());
    for (const auto& secret : r.source.secrets) keys.push_back(secret.reveal());
    const std::string want[] = {*expected};
    if (!any_hmac_matches(digest, keys, parts, want)) return errc::signature_mismatch;
    if (signed_at) return check_window(*signed_at, r.source.timestamp_window, r.now);
    return {};
}

// A payload field as text: strings as they are, numbers in decimal; nullopt for anything else.
std::optional<std::string> field_text(JsonRef root, std::string_view path) {
    JsonRef v = root;
    while (v && !path.empty()) {
        const auto dot = path.find('.');
        v = detail::member(v, path.substr(0, dot));
        path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
    }
    if (const auto s = detail::as_string_view(v); s && !s->empty()) return std::string(*s);
    if (const auto i = detail::as_int(v)) return std::to_string(*i);
    return std::nullopt;
}

std::string credentials(const Request& r) {
    if (!r.source.signature) return "a signature: header (this source has none configured)";
    return r.source.signature->header;
}

result<void> normalize_events(const Payload& p, std::vector<Event>& events) {
    auto& event = events.front();
    event.kind = EventKind::other;
    // Nothing but the payload itself says more; no file lists.
    event.changed_files_complete = false;
    if (p.source.event_name.from == ValueRef::From::payload) {
        auto name = field_text(p.json, p.source.event_name.name);
        if (!name) return errc::missing_field;
        event.forge_event = std::move(*name);
    }
    if (p.source.delivery_id.from == ValueRef::From::payload) {
        event.delivery_id = field_text(p.json, p.source.delivery_id.name).value_or("");
    }
    return {};
}

constexpr Forge k_forge{
    .provider = Provider::generic,
    .title = "generic",
    .config_keys = k_keys,
    .secret_key = "secret",
    .event_headers = {},
    .delivery_headers = {},
    .recorded_headers = {},
    .form_bodies = false,
    .verify = verify,
    .credentials = credentials,
    .normalize = normalize_events,
    .actions = {},
};

}  // namespace

const Forge& forge() noexcept {
    return k_forge;
}

}  // namespace hookrelay::ingest::generic
