#include "ingest/ingest.hpp"

#include "ingest/github/normalize.hpp"
#include "ingest/gitlab/normalize.hpp"
#include "ingest/hmac.hpp"

#include <boost/json/parse.hpp>
#include <boost/url/encoding_opts.hpp>
#include <boost/url/parse_query.hpp>

namespace hookrelay::ingest {
namespace {

namespace json = boost::json;

constexpr std::string_view k_github_event = "X-GitHub-Event";
constexpr std::string_view k_gitlab_event = "X-Gitlab-Event";

std::string_view trim(std::string_view s) noexcept {
    const auto is_space = [](char c) { return c == ' ' || c == '\t'; };
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// A header that is absent, empty, or only the bare algorithm prefix carries no signature; all
// three mean "not signed" rather than "signed wrongly".
std::optional<std::string_view> signature_header(const HeaderMap& headers, std::string_view name,
                                                 std::string_view prefix) {
    const auto value = headers.find(name);
    if (!value) return std::nullopt;
    const auto text = trim(*value);
    if (text.empty() || iequals(text, prefix)) return std::nullopt;
    return text;
}

result<void> check_hub_signature(const SourceConfig& source, std::string_view header,
                                 std::string_view prefix, Digest digest, std::size_t hex_size,
                                 std::string_view body) {
    if (!istarts_with(header, prefix)) return errc::signature_malformed;
    const auto hex = header.substr(prefix.size());
    if (hex.size() != hex_size) return errc::signature_malformed;
    const auto expected = decode_hex(hex);
    if (!expected) return errc::signature_malformed;
    if (!any_hmac_matches(digest, source.secrets, body, *expected)) {
        return errc::signature_mismatch;
    }
    return {};
}

result<void> verify_github(const SourceConfig& source, const HeaderMap& headers,
                           std::string_view body) {
    if (const auto sha256 = signature_header(headers, "X-Hub-Signature-256", "sha256=")) {
        return check_hub_signature(source, *sha256, "sha256=", Digest::sha256, 64, body);
    }
    // SHA-1 is the legacy header; it is consulted only when opted in and no SHA-256 was sent,
    // so a forged SHA-1 cannot stand in for a failing SHA-256.
    if (source.allow_sha1) {
        if (const auto sha1 = signature_header(headers, "X-Hub-Signature", "sha1=")) {
            return check_hub_signature(source, *sha1, "sha1=", Digest::sha1, 40, body);
        }
    }
    return errc::signature_missing;
}

result<void> verify_gitlab(const SourceConfig& source, const HeaderMap& headers) {
    const auto token = headers.find("X-Gitlab-Token");
    if (!token || trim(*token).empty()) return errc::signature_missing;
    if (!any_token_matches(source.secrets, trim(*token))) return errc::signature_mismatch;
    return {};
}

result<json::value> parse_json_object(std::string_view text) {
    boost::system::error_code ec;
    json::parse_options options;
    // Real payloads nest about ten levels; the default (32) leaves little room for forge changes,
    // while a hard bound still keeps hostile nesting from exhausting the stack.
    options.max_depth = 64;
    auto value = json::parse(text, ec, {}, options);
    if (ec || !value.is_object()) return errc::malformed_json;
    return value;
}

result<json::value> parse_form(std::string_view body) {
    // Boost.URL 1.81's parse_query crashes on a view without storage (data() == nullptr), which
    // is how an empty body may arrive; an empty body has no payload field anyway.
    if (body.empty()) return errc::malformed_form;
    const auto params = boost::urls::parse_query(body);
    if (!params) return errc::malformed_form;
    // HTML form encoding writes spaces as '+'.
    const boost::urls::encoding_opts form_encoding(/*space_as_plus=*/true);
    for (const auto param : *params) {
        if (!param.has_value || param.key.decode(form_encoding) != "payload") continue;
        return parse_json_object(param.value.decode(form_encoding));
    }
    return errc::malformed_form;
}

}  // namespace

result<void> verify(const SourceConfig& source, const HeaderMap& headers, std::string_view body) {
    if (source.insecure && source.secrets.empty()) return {};
    switch (source.provider) {
        case Provider::github:
            return verify_github(source, headers, body);
        case Provider::gitlab:
            return verify_gitlab(source, headers);
    }
    return errc::signature_mismatch;
}

result<json::value> parse_body(std::string_view content_type, std::string_view body) {
    // Media types are case-insensitive and parameters such as charset change nothing for JSON.
    const auto media_type = trim(content_type.substr(0, content_type.find(';')));
    if (iequals(media_type, "application/json")) return parse_json_object(body);
    if (iequals(media_type, "application/x-www-form-urlencoded")) return parse_form(body);
    return errc::unsupported_media_type;
}

std::string delivery_id(Provider provider, const HeaderMap& headers) {
    switch (provider) {
        case Provider::github:
            return std::string(trim(headers.find("X-GitHub-Delivery").value_or("")));
        case Provider::gitlab: {
            // Idempotency-Key survives retries and manual resends; the event UUID is older.
            auto id = trim(headers.find("Idempotency-Key").value_or(""));
            if (id.empty()) id = trim(headers.find("X-Gitlab-Event-UUID").value_or(""));
            return std::string(id);
        }
    }
    return {};
}

result<Event> normalize(const SourceConfig& source, const HeaderMap& headers,
                        std::shared_ptr<const json::value> payload) {
    const auto header =
        headers.find(source.provider == Provider::github ? k_github_event : k_gitlab_event);
    const auto event_name = trim(header.value_or(""));
    if (event_name.empty()) return errc::missing_event_header;
    if (!payload || !payload->is_object()) return errc::missing_field;

    Event event;
    event.source = source.name;
    event.provider = source.provider;
    event.delivery_id = delivery_id(source.provider, headers);
    event.forge_event = std::string(event_name);

    const auto filled = source.provider == Provider::github
                            ? github::normalize(event_name, *payload, event)
                            : gitlab::normalize(event_name, *payload, event);
    if (!filled) return filled.error();
    event.payload = std::move(payload);
    return event;
}

}  // namespace hookrelay::ingest
