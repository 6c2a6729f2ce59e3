#include "ingest/forgejo/forge.hpp"

#include "ingest/gitea/forge.hpp"
#include "ingest/gitea/normalize.hpp"

namespace hookrelay::ingest::forgejo {
namespace {

constexpr std::string_view k_keys[] = {"secret", "secrets", "authorization"};
// Forgejo sends its own headers and Gitea's (and Gogs' and GitHub's); its own win.
constexpr std::string_view k_event[] = {"X-Forgejo-Event", "X-Gitea-Event"};
constexpr std::string_view k_delivery[] = {"X-Forgejo-Delivery", "X-Gitea-Delivery"};
constexpr std::string_view k_recorded[] = {
    "X-Forgejo-Event",    "X-Forgejo-Event-Type", "X-Forgejo-Delivery",  "X-Gitea-Event",
    "X-Gitea-Event-Type", "X-Gitea-Delivery",     "X-Gogs-Event",        "X-Gogs-Event-Type",
    "X-Gogs-Delivery",    "X-GitHub-Event",       "X-GitHub-Event-Type", "X-GitHub-Delivery",
};
// Both carry the same value; a delivery through a proxy that dropped one still verifies.
constexpr std::string_view k_signature[] = {"X-Forgejo-Signature", "X-Gitea-Signature"};

result<void> verify(const Request& r) {
    return gitea::verify(r, k_signature);
}

std::string credentials(const Request& r) {
    return gitea::credentials(r, k_signature);
}

result<void> normalize_events(const Payload& p, std::vector<Event>& events) {
    return gitea::normalize(p.event_name, p.json, events.front());
}

}  // namespace

const Forge& forge() noexcept {
    static const Forge k_forge{
        .provider = Provider::forgejo,
        .title = "Forgejo",
        .config_keys = k_keys,
        .secret_key = "secret",
        .event_headers = k_event,
        .delivery_headers = k_delivery,
        .recorded_headers = k_recorded,
        .form_bodies = true,
        .verify = verify,
        .credentials = credentials,
        .normalize = normalize_events,
        .actions = gitea::actions(),
    };
    return k_forge;
}

}  // namespace hookrelay::ingest::forgejo
