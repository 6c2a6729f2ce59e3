// The forge table: everything hookrelay knows about one forge's webhooks in one place. Each forge
// lives in its own folder (ingest/<forge>/) and describes itself with a Forge; ingest, the
// webhook handler, the config loader and the rules' value checks read the table instead of
// branching on Provider. Adding a forge: a Provider value and its name (event.hpp), a folder with
// its Forge, one line in forges.cpp, its fixtures and its tests.
// Pure data and pure functions; thread-safe.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/error.hpp>
#include <hookrelay/event.hpp>
#include <hookrelay/headers.hpp>
#include <hookrelay/json_document.hpp>

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::ingest {

/// One delivery as received, for a forge's verify().
struct Request {
    const SourceConfig& source;
    const HeaderMap& headers;
    std::string_view body;                      ///< the raw body, exactly as received
    std::chrono::system_clock::time_point now;  ///< for signed timestamps
};

/// One parsed delivery, for a forge's normalize().
struct Payload {
    const SourceConfig& source;
    const HeaderMap& headers;
    /// The forge's event header (trimmed, never empty), or for a forge without event headers
    /// the source's configured `event:` header; empty when neither applies.
    std::string_view event_name;
    JsonRef json;  ///< always an object
};

/// The normalized `action` values a forge's events can carry, per event kind (push, tag and
/// ping carry none). For `other`, the forge's own words as far as known: only a guide for typo
/// hints (see rules/vocabulary.hpp).
struct Actions {
    std::span<const std::string_view> pull_request;
    std::span<const std::string_view> release;
    std::span<const std::string_view> other;
};

/// Most events one delivery may carry (a Bitbucket push names every ref it changed; a push of a
/// whole mirror can name thousands). More is refused with errc::too_many_events, not cut short:
/// a relay that drops builds silently is worse than one that says no.
inline constexpr std::size_t k_max_events_per_delivery = 1000;

/// One forge.
struct Forge {
    Provider provider;
    std::string_view title;  ///< for people: "Bitbucket Data Center"

    /// Source keys this forge takes besides provider, path, insecure, allow_from and
    /// duplicate_body_window (every source takes those).
    std::span<const std::string_view> config_keys;
    /// The key naming its shared secret: "secret" (HMAC key) or "token" (GitLab's plain token);
    /// its plural takes a list (rotation). Empty: the forge has none.
    std::string_view secret_key;

    /// The headers naming the event: the first one present and not blank wins. Empty: the forge
    /// has no fixed event header (generic; its source may configure one).
    std::span<const std::string_view> event_headers;
    /// The headers carrying the delivery id, in order of preference.
    std::span<const std::string_view> delivery_headers;
    /// Request headers kept with a stored delivery besides the common ones (see
    /// recorded_header() in ingest.hpp): never a credential.
    std::span<const std::string_view> recorded_headers;
    /// Whether it may send application/x-www-form-urlencoded bodies (`payload=<json>`); JSON is
    /// always accepted.
    bool form_bodies = false;

    /// Checks the delivery's credentials over the raw body, in constant time, before anything
    /// is parsed. Called only for a source that has credentials configured (or is not insecure).
    /// Errors: errc::signature_missing, signature_mismatch, signature_malformed,
    /// timestamp_malformed, timestamp_out_of_window.
    result<void> (*verify)(const Request& request);
    /// For a 401 whose credentials are missing: the headers `request.source` is checked with,
    /// as its config asks ("X-Hub-Signature-256", "X-Gitea-Signature and Authorization",
    /// "X-Gitlab-Token or webhook-signature"), and what the request sent that this source does
    /// not take, if anything. Header names only, never a value.
    std::string (*credentials)(const Request& request);

    /// Fills `events`, which arrives holding one event with source, provider, delivery_id and
    /// forge_event set, from the payload: kind, action, repository, refs, shas and the rest
    /// (see event.hpp). A delivery that carries several events (one per ref change) appends the
    /// others, copies of the first with their own facts, in payload order, at most
    /// k_max_events_per_delivery in all. Leaves `payload` alone (the caller attaches it).
    /// Errors: errc::missing_field, errc::ref_mismatch, errc::too_many_events,
    /// errc::other_forge_event.
    result<void> (*normalize)(const Payload& payload, std::vector<Event>& events);

    Actions actions;
};

/// Every forge, in Provider order.
std::span<const Forge* const> forges() noexcept;

/// The forge of `provider`.
const Forge& forge(Provider provider) noexcept;

}  // namespace hookrelay::ingest
