#include "forge_status/requests.hpp"

#include "httpclient/encoding.hpp"

#include <openssl/sha.h>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <charconv>
#include <utility>
#include <vector>

namespace hookrelay::forge_status {

namespace {

namespace json = boost::json;

bool all_digits(std::string_view text) {
    return !text.empty() &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

char ascii_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool icontains(std::string_view haystack, std::string_view needle) {
    if (needle.empty()) return true;
    auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                          [](char a, char b) { return ascii_lower(a) == ascii_lower(b); });
    return it != haystack.end();
}

// Runs of ASCII whitespace (newlines of an HTML page included) become one space; ends trimmed.
std::string one_line(std::string_view text) {
    std::string out;
    bool space = false;
    for (char c : text) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

std::string redact(std::string text, std::string_view token) {
    if (token.empty()) return text;
    for (auto at = text.find(token); at != std::string::npos; at = text.find(token, at + 3)) {
        text.replace(at, token.size(), "***");
    }
    return text;
}

std::optional<json::object> parse_object(std::string_view body) {
    boost::system::error_code ec;
    auto value = json::parse(body, ec);
    if (ec || !value.is_object()) return std::nullopt;
    return std::move(value.as_object());
}

// x-ratelimit-reset: the epoch second the window resets.
std::optional<std::chrono::milliseconds> until_reset(std::string_view value,
                                                     std::chrono::system_clock::time_point now) {
    long long epoch = 0;
    const auto* end = value.data() + value.size();
    auto [ptr, ec] = std::from_chars(value.data(), end, epoch);
    if (ec != std::errc{} || ptr != end || epoch < 0) return std::nullopt;
    const auto reset = std::chrono::system_clock::time_point(std::chrono::seconds(epoch));
    if (reset <= now) return std::chrono::milliseconds(0);
    return std::min<std::chrono::milliseconds>(
        std::chrono::ceil<std::chrono::milliseconds>(reset - now), httpclient::k_max_retry_after);
}

std::optional<std::chrono::milliseconds> retry_after_of(const httpclient::Response& response,
                                                        std::chrono::system_clock::time_point now) {
    const auto header = response.header("Retry-After");
    if (header.empty()) return std::nullopt;
    return httpclient::parse_retry_after(header, now);
}

}  // namespace

std::string base_url_for(Provider provider, std::string_view api_url) {
    std::string url(api_url.empty() ? default_api_url(provider) : api_url);
    if (!url.empty() && url.back() != '/') url += '/';
    return url;
}

namespace {

// "owner/repo" as its two parts, or nullopt with a reason in `why` (also for an empty sha).
std::optional<std::pair<std::string_view, std::string_view>> two_parts(std::string_view repository,
                                                                       std::string_view sha,
                                                                       std::string_view shape,
                                                                       std::string& why) {
    const auto slash = repository.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == repository.size() ||
        repository.find('/', slash + 1) != std::string_view::npos) {
        why = "repository '" + std::string(repository) + "' is not " + std::string(shape);
        return std::nullopt;
    }
    if (sha.empty()) {
        why = "no commit sha";
        return std::nullopt;
    }
    return std::pair{repository.substr(0, slash), repository.substr(slash + 1)};
}

}  // namespace

std::optional<std::string> github_target(std::string_view base_path, std::string_view repository,
                                         std::string_view sha, std::string& why) {
    const auto parts = two_parts(repository, sha, "owner/repo", why);
    if (!parts) return std::nullopt;
    return std::string(base_path) + "repos/" + httpclient::percent_encode(parts->first) + "/" +
           httpclient::percent_encode(parts->second) + "/statuses/" +
           httpclient::percent_encode(sha);
}

std::optional<std::string> bitbucket_cloud_target(std::string_view base_path,
                                                  std::string_view repository, std::string_view sha,
                                                  std::string& why) {
    const auto parts = two_parts(repository, sha, "workspace/repo_slug", why);
    if (!parts) return std::nullopt;
    return std::string(base_path) + "repositories/" + httpclient::percent_encode(parts->first) +
           "/" + httpclient::percent_encode(parts->second) + "/commit/" +
           httpclient::percent_encode(sha) + "/statuses/build";
}

std::optional<std::string> bitbucket_server_target(std::string_view base_path,
                                                   std::string_view repository,
                                                   std::string_view sha, std::string& why) {
    const auto parts = two_parts(repository, sha, "PROJECT/slug", why);
    if (!parts) return std::nullopt;
    return std::string(base_path) + "rest/api/latest/projects/" +
           httpclient::percent_encode(parts->first) + "/repos/" +
           httpclient::percent_encode(parts->second) + "/commits/" +
           httpclient::percent_encode(sha) + "/builds";
}

std::string bitbucket_commit_page(Provider provider, std::string_view web_root,
                                  std::string_view repository, std::string_view sha) {
    std::string why;
    const auto parts = two_parts(repository, sha, "", why);
    if (!parts) return {};
    const auto owner = httpclient::percent_encode(parts->first);
    const auto name = httpclient::percent_encode(parts->second);
    const auto commit = httpclient::percent_encode(sha);
    if (provider == Provider::bitbucket_cloud) {
        return "https://bitbucket.org/" + owner + "/" + name + "/commits/" + commit;
    }
    return std::string(web_root) + "projects/" + owner + "/repos/" + name + "/commits/" + commit;
}

std::optional<std::string> gitlab_target(std::string_view base_path, std::string_view project,
                                         std::string_view sha, std::string& why) {
    if (project.empty()) {
        why = "no project";
        return std::nullopt;
    }
    if (sha.empty()) {
        why = "no commit sha";
        return std::nullopt;
    }
    // A numeric id as it is; a path URL-encoded whole, its slashes included (GitLab's API).
    const std::string id =
        all_digits(project) ? std::string(project) : httpclient::percent_encode(project);
    return std::string(base_path) + "projects/" + id + "/statuses/" +
           httpclient::percent_encode(sha);
}

std::optional<std::string> github_body(const StatusTarget& target, const StatusWish& wish) {
    const auto state = github_state(wish.state);
    if (state.empty()) return std::nullopt;
    json::object body;
    body["state"] = state;
    if (!wish.target_url.empty()) body["target_url"] = wish.target_url;
    body["description"] = shorten(wish.description);
    if (!target.context.empty()) body["context"] = target.context;
    return json::serialize(body);
}

constexpr std::size_t k_gitlab_max_target_url = 255;

std::optional<std::string> gitlab_body(const StatusTarget& target, const StatusWish& wish) {
    const auto state = gitlab_state(wish.state);
    if (state.empty()) return std::nullopt;
    json::object body;
    body["state"] = state;
    if (!target.context.empty()) body["name"] = target.context;
    // Without `ref` GitLab guesses the pipeline (or a branch that holds the commit, which a fork's
    // merge request commit is on none of): the reference's advice is to always send it.
    if (!target.ref.empty()) body["ref"] = target.ref;
    // GitLab refuses a target_url over 255 characters (400), which would drop the status: a
    // build's URL in deep folders with a long branch name can be longer. The status goes without.
    if (!wish.target_url.empty() && wish.target_url.size() <= k_gitlab_max_target_url) {
        body["target_url"] = wish.target_url;
    }
    body["description"] = shorten(wish.description);
    return json::serialize(body);
}

std::string bitbucket_key(Provider provider, std::string_view context) {
    if (provider != Provider::bitbucket_cloud ||
        code_points(context) <= k_bitbucket_cloud_max_key) {
        return std::string(context);
    }
    // Stable from post to post (the key is what a later post replaces), and 40 characters.
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(context.data()), context.size(), digest);
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string key = "hookrelay-";
    for (std::size_t i = 0; key.size() < k_bitbucket_cloud_max_key; ++i) {
        key += k_hex[(digest[i / 2] >> (i % 2 == 0 ? 4 : 0)) & 0xF];
    }
    return key;
}

namespace {

bool ascii_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool letter_like(char c) {  // a letter, or a byte of a non-ASCII character (Django's \u00a1-)
    return (c >= 'a' && c <= 'z') || static_cast<unsigned char>(c) >= 0x80;
}

// A host name as Django's URLValidator takes it (lower case here): labels of letters, digits,
// non-ASCII characters and inner hyphens, at most 63 each, and a top level of two or more
// letters (or xn--...), with an optional trailing dot.
bool django_host_name(std::string host) {
    if (host.ends_with('.')) host.pop_back();
    std::vector<std::string_view> labels;
    for (std::string_view rest = host;;) {
        const auto dot = rest.find('.');
        labels.push_back(rest.substr(0, dot));
        if (dot == std::string_view::npos) break;
        rest.remove_prefix(dot + 1);
    }
    if (labels.size() < 2) return false;
    for (const auto label : labels) {
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
            !std::all_of(label.begin(), label.end(),
                         [](char c) { return ascii_alnum(c) || letter_like(c) || c == '-'; })) {
            return false;
        }
    }
    const auto top = labels.back();
    if (top.starts_with("xn--")) {
        return top.size() > 4 && std::all_of(top.begin() + 4, top.end(), ascii_alnum);
    }
    return top.size() >= 2 &&
           std::all_of(top.begin(), top.end(), [](char c) { return letter_like(c) || c == '-'; });
}

bool ipv4_address(std::string_view host) {
    int parts = 0;
    for (std::string_view rest = host;; ++parts) {
        const auto dot = rest.find('.');
        const auto part = rest.substr(0, dot);
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
        if (part.empty() || ec != std::errc{} || end != part.data() + part.size() || value > 255) {
            return false;
        }
        if (dot == std::string_view::npos) break;
        rest.remove_prefix(dot + 1);
    }
    return parts == 3;
}

}  // namespace

bool bitbucket_takes_url(Provider provider, std::string_view url) {
    if (url.empty() || code_points(url) > k_bitbucket_max_url) return false;
    if (provider != Provider::bitbucket_cloud) return true;
    // Bitbucket Cloud validates links as Django does: localhost, an address, or a host name
    // with a top level domain ("http://jenkins:8080/..." and "http://ci.k8s/..." are refused).
    const auto scheme = url.find("://");
    if (scheme == std::string_view::npos) return false;
    auto authority = url.substr(scheme + 3);
    authority = authority.substr(0, authority.find_first_of("/?#"));
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
        authority.remove_prefix(at + 1);
    }
    if (authority.starts_with('[')) return true;  // an IPv6 literal
    std::string host(authority.substr(0, authority.find(':')));
    for (char& c : host) c = ascii_lower(c);
    return host == "localhost" || ipv4_address(host) || django_host_name(host);
}

std::optional<std::string> bitbucket_body(Provider provider, const StatusTarget& target,
                                          const StatusWish& wish, std::string_view fallback_url) {
    const auto state = bitbucket_state(provider, wish.state);
    if (state.empty()) return std::nullopt;
    json::object body;
    // The key tells this status from the commit's others: the same key again replaces it.
    body["key"] = bitbucket_key(provider, target.context);
    body["name"] = shorten(target.context, k_bitbucket_max_name);
    body["state"] = state;
    // A link Bitbucket would refuse (400, and the status dropped) gives way to the commit's page.
    body["url"] = bitbucket_takes_url(provider, wish.target_url) ? std::string_view(wish.target_url)
                                                                 : fallback_url;
    body["description"] = shorten(wish.description);
    return json::serialize(body);
}

std::string forge_message(std::string_view body) {
    std::string text;
    if (auto object = parse_object(body)) {
        if (const auto* message = object->if_contains("message")) {
            text = message->is_string() ? std::string(message->as_string())
                                        : json::serialize(*message);
            // GitHub's 422 says what failed validation in errors[]: the useful part.
            if (const auto* errors = object->if_contains("errors");
                errors && errors->is_array() && !errors->as_array().empty()) {
                const auto& first = errors->as_array().front();
                if (first.is_object()) {
                    if (const auto* m = first.as_object().if_contains("message");
                        m && m->is_string()) {
                        text += ": " + std::string(m->as_string());
                    } else if (const auto* code = first.as_object().if_contains("code");
                               code && code->is_string()) {
                        text += ": " + std::string(code->as_string());
                    }
                } else if (first.is_string()) {
                    text += ": " + std::string(first.as_string());
                }
            }
        } else if (const auto* error = object->if_contains("error"); error && error->is_string()) {
            text = std::string(error->as_string());
        } else if (error && error->is_object()) {
            // Bitbucket Cloud: {"type": "error", "error": {"message": ..., "fields": {...}}}.
            if (const auto* m = error->as_object().if_contains("message"); m && m->is_string()) {
                text = std::string(m->as_string());
            }
            if (const auto* fields = error->as_object().if_contains("fields"); fields) {
                text += (text.empty() ? "" : ": ") + json::serialize(*fields);
            }
        } else if (const auto* errors = object->if_contains("errors");
                   errors && errors->is_array() && !errors->as_array().empty() &&
                   errors->as_array().front().is_object()) {
            // Bitbucket Data Center: {"errors": [{"context", "message", "exceptionName"}]}.
            const auto& first = errors->as_array().front().as_object();
            if (const auto* m = first.if_contains("message"); m && m->is_string()) {
                text = std::string(m->as_string());
            }
        }
    }
    if (text.empty()) text = std::string(body);
    return shorten(one_line(text), k_detail_message_limit);
}

PostResult classify(Provider provider, const httpclient::Response& response,
                    std::chrono::system_clock::time_point now, std::string_view token) {
    using Kind = PostResult::Kind;
    PostResult out;
    out.http_status = response.status;
    const int status = response.status;
    const std::string message = response.head_too_large ? "" : forge_message(response.body);
    out.detail = httpclient::status_text(status);
    if (!message.empty()) out.detail += ": " + message;
    out.detail = redact(std::move(out.detail), token);

    if (status >= 200 && status < 300) {
        out.kind = Kind::posted;
        return out;
    }
    if (status == 429) {
        out.kind = Kind::retry;
        out.retry_after = retry_after_of(response, now);
        if (!out.retry_after && response.header("x-ratelimit-remaining") == "0") {
            out.retry_after = until_reset(response.header("x-ratelimit-reset"), now);
        }
        return out;
    }
    if (provider == Provider::github && status == 403) {
        // GitHub answers its rate limits with 403 as well as 429: tell them from a token
        // without the permission by what comes with them.
        if (auto after = retry_after_of(response, now)) {
            out.kind = Kind::retry;
            out.retry_after = after;
            return out;
        }
        if (response.header("x-ratelimit-remaining") == "0") {
            out.kind = Kind::retry;
            out.retry_after = until_reset(response.header("x-ratelimit-reset"), now);
            return out;
        }
        if (icontains(response.body, "secondary rate limit")) {
            out.kind = Kind::retry;
            out.retry_after = k_secondary_rate_limit_wait;
            return out;
        }
    }
    if (provider == Provider::gitlab && status == 400 &&
        icontains(response.body, "Cannot transition status")) {
        // GitLab never moves a finished status back (nor onto the state it has): it keeps what
        // it shows, and this wish is done.
        out.kind = Kind::ignored;
        return out;
    }
    if (status >= 500) {
        out.kind = Kind::retry;
        out.retry_after = retry_after_of(response, now);
        return out;
    }
    // 4xx: the token, the repository or the sha is wrong. 1xx and 3xx (redirects are not
    // followed): nothing a retry would change either.
    out.kind = Kind::refused;
    return out;
}

}  // namespace hookrelay::forge_status
