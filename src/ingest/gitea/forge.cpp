#include "ingest/gitea/forge.hpp"

#include "ingest/form.hpp"
#include "ingest/gitea/normalize.hpp"
#include "ingest/signature.hpp"

namespace hookrelay::ingest::gitea {
namespace {

constexpr std::string_view k_keys[] = {"secret", "secrets", "authorization"};
constexpr std::string_view k_event[] = {"X-Gitea-Event"};
constexpr std::string_view k_delivery[] = {"X-Gitea-Delivery"};
// Gitea repeats its event and delivery headers under Gogs' and GitHub's names.
constexpr std::string_view k_recorded[] = {
    "X-Gitea-Event",  "X-Gitea-Event-Type",  "X-Gitea-Delivery",
    "X-Gogs-Event",   "X-Gogs-Event-Type",   "X-Gogs-Delivery",
    "X-GitHub-Event", "X-GitHub-Event-Type", "X-GitHub-Delivery",
};
constexpr std::string_view k_signature[] = {"X-Gitea-Signature"};

result<void> verify_gitea(const Request& r) {
    return verify(r, k_signature);
}

std::string credentials_gitea(const Request& r) {
    return credentials(r, k_signature);
}

result<void> normalize_events(const Payload& p, std::vector<Event>& events) {
    return normalize(p.event_name, p.json, events.front());
}

// GitHub's words, with `synchronized` mapped to `synchronize`; label_updated and label_cleared
// have no GitHub equivalent and pass through.
constexpr std::string_view k_pull_request[] = {
    "opened",
    "reopened",
    "closed",
    "edited",
    "synchronize",
    "assigned",
    "unassigned",
    "label_updated",
    "label_cleared",
    "milestoned",
    "demilestoned",
    "review_requested",
    "review_request_removed",
};
constexpr std::string_view k_release[] = {"published", "updated", "deleted"};
// issues, issue_comment, pull request reviews, repository, wiki.
constexpr std::string_view k_other[] = {
    "opened",     "reopened",      "closed",        "edited",     "assigned",
    "unassigned", "label_updated", "label_cleared", "milestoned", "demilestoned",
    "created",    "deleted",       "reviewed",
};

constexpr Forge k_forge{
    .provider = Provider::gitea,
    .title = "Gitea",
    .config_keys = k_keys,
    .secret_key = "secret",
    .event_headers = k_event,
    .delivery_headers = k_delivery,
    .recorded_headers = k_recorded,
    .form_bodies = true,
    .verify = verify_gitea,
    .credentials = credentials_gitea,
    .normalize = normalize_events,
    .actions = {.pull_request = k_pull_request, .release = k_release, .other = k_other},
};

}  // namespace

result<void> verify(const Request& r, std::span<const std::string_view> signature_headers) {
    bool verified = false;
    if (!r.source.secrets.empty()) {
        // Without a secret Gitea still sends the header, empty: unsigned, not signed wrongly.
        const auto signature = credential_header(r.headers, signature_headers);
        if (!signature) return errc::signature_missing;
        // Gitea signs the JSON payload; for a form delivery that is the decoded `payload`
        // field, not the bytes on the wire.
        std::optional<std::string> decoded;
        std::string_view content = r.body;
        if (is_form_content_type(r.headers.find("Content-Type").value_or(""))) {
            decoded = form_payload(r.body);
            if (!decoded) return errc::signature_mismatch;
            content = *decoded;
        }
        const std::string_view parts[] = {content};
        if (auto v = check_hex_hmac(*signature, "", Digest::sha256, r.source.secrets, parts); !v) {
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

std::string credentials(const Request& r, std::span<const std::string_view> signature_headers) {
    std::string signature;
    if (!r.source.secrets.empty()) {
        signature = signature_headers.front();
        if (signature_headers.size() > 1) {
            signature += " (or " + std::string(signature_headers[1]) + ")";
        }
    }
    return joined_names({signature, r.source.authorization.empty() ? "" : "Authorization"},
                        " and ");
}

Actions actions() noexcept {
    return k_forge.actions;
}

const Forge& forge() noexcept {
    return k_forge;
}

}  // namespace hookrelay::ingest::gitea
