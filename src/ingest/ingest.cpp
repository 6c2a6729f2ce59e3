#include "ingest/ingest.hpp"

#include "ingest/forge.hpp"
#include "ingest/form.hpp"
#include "ingest/json_access.hpp"
#include "ingest/signature.hpp"

#include <boost/url/encoding_opts.hpp>
#include <boost/url/parse_query.hpp>

namespace hookrelay::ingest {

bool has_credentials(const SourceConfig& source) noexcept {
    return !source.secrets.empty() || !source.signing_tokens.empty() ||
           !source.authorization.empty();
}

namespace {

bool listed(std::span<const std::string_view> names, std::string_view name) noexcept {
    for (const auto allowed : names) {
        if (iequals(name, allowed)) return true;
    }
    return false;
}

// The first of `names` that is present and not blank, trimmed; empty when none is.
std::string_view first_header(const HeaderMap& headers, std::span<const std::string_view> names) {
    for (const auto name : names) {
        const auto value = trim(headers.find(name).value_or(""));
        if (!value.empty()) return value;
    }
    return {};
}

// Parses `text`, which must hold a JSON object, within `memory_limit` bytes.
result<std::shared_ptr<const JsonDocument>> parse_json_object(std::string_view text,
                                                              std::size_t memory_limit) {
    auto error = JsonDocument::Error::malformed;
    auto doc = JsonDocument::parse(text, memory_limit, error);
    if (!doc) {
        return error == JsonDocument::Error::too_large ? errc::payload_too_large
                                                       : errc::malformed_json;
    }
    if (!doc->root().is_object()) return errc::malformed_json;
    return doc;
}

result<std::shared_ptr<const JsonDocument>> parse_form(std::string_view body,
                                                       std::size_t memory_limit) {
    // Boost.URL 1.81's parse_query crashes on a view without storage (data() == nullptr), which
    // is how an empty body may arrive; an empty body has no payload field anyway.
    if (body.empty()) return errc::malformed_form;
    const auto params = boost::urls::parse_query(body);
    if (!params) return errc::malformed_form;
    // HTML form encoding writes spaces as '+'.
    const boost::urls::encoding_opts form_encoding(/*space_as_plus=*/true);
    for (const auto param : *params) {
        if (!param.has_value || param.key.decode(form_encoding) != "payload") continue;
        // The decoded text is part of what this parse holds, while it parses.
        const auto size = param.value.decoded_size();
        if (size > memory_limit) return errc::payload_too_large;
        return parse_json_object(param.value.decode(form_encoding), memory_limit - size);
    }
    return errc::malformed_form;
}

}  // namespace

result<void> verify(const SourceConfig& source, const HeaderMap& headers, std::string_view body,
                    std::chrono::system_clock::time_point now) {
    if (source.insecure && !has_credentials(source)) return {};
    return forge(source.provider).verify(Request{source, headers, body, now});
}

std::string expected_credentials(const SourceConfig& source, const HeaderMap& headers) {
    return forge(source.provider)
        .credentials(Request{source, headers, {}, std::chrono::system_clock::time_point{}});
}

result<std::shared_ptr<const JsonDocument>> parse_body(std::string_view content_type,
                                                       std::string_view body,
                                                       std::size_t memory_limit) {
    // Media types are case-insensitive and parameters such as charset change nothing for JSON.
    const auto media_type = trim(content_type.substr(0, content_type.find(';')));
    const bool is_json = iequals(media_type, "application/json");
    if (!is_json && !iequals(media_type, "application/x-www-form-urlencoded")) {
        return errc::unsupported_media_type;
    }
    return is_json ? parse_json_object(body, memory_limit) : parse_form(body, memory_limit);
}

std::string_view media_kind(Provider provider, std::string_view content_type) noexcept {
    const auto media = trim(content_type.substr(0, content_type.find(';')));
    if (iequals(media, "application/json")) return "json";
    if (forge(provider).form_bodies && iequals(media, "application/x-www-form-urlencoded")) {
        return "form";
    }
    return "";
}

bool carries_delivery_ids(const SourceConfig& source) {
    return source.delivery_id.from != ValueRef::From::none ||
           !forge(source.provider).delivery_headers.empty();
}

std::string delivery_id(const SourceConfig& source, const HeaderMap& headers) {
    if (source.delivery_id.from == ValueRef::From::header) {
        return std::string(trim(headers.find(source.delivery_id.name).value_or("")));
    }
    return std::string(first_header(headers, forge(source.provider).delivery_headers));
}

bool recorded_header(Provider provider, std::string_view name) noexcept {
    // What tells where a delivery came from and how to read it again (prepare() needs the
    // content type, the event header and the delivery id header to normalize a stored body).
    static constexpr std::string_view k_common[] = {
        "Content-Type", "Content-Length",  "Content-Encoding", "User-Agent",
        "Host",         "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
        "X-Real-IP",    "Forwarded",       "X-Request-Id",
    };
    return listed(k_common, name) || listed(forge(provider).recorded_headers, name);
}

bool recorded_header(const SourceConfig& source, std::string_view name) noexcept {
    if (recorded_header(source.provider, name)) return true;
    // A generic source's own event, delivery and timestamp headers; the loader refuses a
    // signature header that is one of them.
    const auto configured = [&](const ValueRef& ref) {
        return ref.from == ValueRef::From::header && iequals(name, ref.name);
    };
    if (configured(source.event_name) || configured(source.delivery_id)) return true;
    return source.signature && !source.signature->timestamp_header.empty() &&
           iequals(name, source.signature->timestamp_header);
}

std::chrono::milliseconds duplicate_body_window(const SourceConfig& source, bool has_delivery_id) {
    if (source.duplicate_body_window) return *source.duplicate_body_window;
    return has_delivery_id ? std::chrono::milliseconds(0) : k_default_idless_duplicate_window;
}

std::string_view event_name(const SourceConfig& source, const HeaderMap& headers) {
    if (source.event_name.from == ValueRef::From::header) {
        const std::string_view configured[] = {source.event_name.name};
        return first_header(headers, configured);
    }
    return first_header(headers, forge(source.provider).event_headers);
}

result<std::vector<Event>> normalize(const SourceConfig& source, const HeaderMap& headers,
                                     std::shared_ptr<const JsonDocument> payload) {
    const auto& f = forge(source.provider);
    const std::string_view event_name = ingest::event_name(source, headers);
    if (event_name.empty() &&
        (source.event_name.from == ValueRef::From::header || !f.event_headers.empty())) {
        return errc::missing_event_header;
    }
    if (!payload || !payload->root().is_object()) return errc::missing_field;

    std::vector<Event> events(1);
    auto& first = events.front();
    first.source = source.name;
    first.provider = source.provider;
    first.delivery_id = delivery_id(source, headers);
    first.forge_event = std::string(event_name);

    const auto filled = f.normalize(Payload{source, headers, event_name, payload->root()}, events);
    if (!filled) return filled.error();
    if (events.size() > k_max_events_per_delivery) return errc::too_many_events;
    for (auto& event : events) {
        // Cut short by collect_changed_files(): some paths are missing.
        if (event.changed_files.size() >= detail::k_max_changed_files) {
            event.changed_files_complete = false;
        }
        // A forced push may have dropped commits whose changes no listed commit shows, and a
        // push to an existing branch that lists no change at all moved it back (`git push -f
        // origin <older>:main`, a rollback) or onto a commit it already had: neither list says
        // what changed since `before`, so `paths` conditions pass.
        if (event.kind == EventKind::push && !event.created && !event.deleted &&
            (event.forced || event.changed_files.empty())) {
            event.changed_files_complete = false;
        }
        event.payload = payload;
    }
    return events;
}

}  // namespace hookrelay::ingest
