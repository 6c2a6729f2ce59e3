#include "ingest/bitbucket_server/forge.hpp"

#include "ingest/bitbucket_server/normalize.hpp"
#include "ingest/signature.hpp"

namespace hookrelay::ingest::bitbucket_server {
namespace {

constexpr std::string_view k_keys[] = {"secret", "secrets", "authorization"};
constexpr std::string_view k_event[] = {"X-Event-Key"};
constexpr std::string_view k_delivery[] = {"X-Request-Id"};
constexpr std::string_view k_recorded[] = {"X-Event-Key", "X-Request-Id"};
constexpr std::string_view k_signature[] = {"X-Hub-Signature"};
constexpr std::string_view k_authorization[] = {"Authorization"};

result<void> verify(const Request& r) {
    const auto signature = credential_header(r.headers, k_signature, "sha256=");
    const auto authorization = credential_header(r.headers, k_authorization);
    // "Test connection" may come unsigned. A ping is answered and nothing else happens, so it is
    // let through rather than making a correctly configured webhook look broken; anything it
    // presents is still checked.
    if (!signature && !authorization &&
        trim(r.headers.find("X-Event-Key").value_or("")) == "diagnostics:ping") {
        return {};
    }
    bool verified = false;
    if (!r.source.secrets.empty()) {
        if (!signature) return errc::signature_missing;
        const std::string_view parts[] = {r.body};
        if (auto v = check_hex_hmac(*signature, "sha256=", Digest::sha256, r.source.secrets, parts);
            !v) {
            return v;
        }
        verified = true;
    }
    if (!r.source.authorization.empty()) {
        if (auto v = check_token(r.headers, "Authorization", r.source.authorization); !v) return v;
        verified = true;
    }
    if (!verified) return errc::signature_missing;
    return {};
}

std::string credentials(const Request& r) {
    return joined_names({r.source.secrets.empty() ? "" : k_signature[0],
                         r.source.authorization.empty() ? "" : k_authorization[0]},
                        " and ");
}

result<void> normalize_events(const Payload& p, std::vector<Event>& events) {
    return normalize(p.event_name, p.json, events);
}

constexpr std::string_view k_pull_request[] = {"opened", "synchronize", "edited",
                                               "closed", "approved",    "unapproved"};
// The rest of each other event key after its first ':' (Bitbucket's "Event payload" page).
constexpr std::string_view k_other[] = {
    "modified",
    "forked",
    "comment:added",
    "comment:edited",
    "comment:deleted",
    "repo_synchronized",
    "secret_detected",
    "to_ref_updated",
    "reviewer:updated",
    "reviewer:needs_work",
    "reviewer:changes_requested",
};

constexpr Forge k_forge{
    .provider = Provider::bitbucket_server,
    .title = "Bitbucket Data Center",
    .config_keys = k_keys,
    .secret_key = "secret",
    .event_headers = k_event,
    .delivery_headers = k_delivery,
    .recorded_headers = k_recorded,
    .form_bodies = false,
    .verify = verify,
    .credentials = credentials,
    .normalize = normalize_events,
    .actions = {.pull_request = k_pull_request, .release = {}, .other = k_other},
};

}  // namespace

const Forge& forge() noexcept {
    return k_forge;
}

}  // namespace hookrelay::ingest::bitbucket_server
