#include "config/load.hpp"

#include "config/known_keys.hpp"
#include "httpclient/encoding.hpp"
#include "ingest/forge.hpp"
#include "ingest/signature.hpp"
#include "util/suggest.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace hookrelay::config {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    std::uint64_t value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || ptr == text.data()) return std::nullopt;
    const std::string_view unit(ptr, text.data() + text.size() - ptr);
    std::uint64_t factor = 0;
    if (unit == "ms") factor = 1;
    if (unit == "s") factor = 1000;
    if (unit == "m" || unit == "min") factor = 60'000;
    if (unit == "h") factor = 3'600'000;
    if (unit == "d") factor = 86'400'000;
    // At most 100 years: the clocks count nanoseconds in 64 bits (~292 years either side of
    // 1970), and no setting may overflow where a clock adds it to now or takes it away (a
    // retention of 365000d once made the prune's cutoff a time in the future).
    constexpr std::uint64_t k_max_ms = std::uint64_t{36'500} * 86'400'000;
    if (factor == 0 || value > k_max_ms / factor) return std::nullopt;
    return std::chrono::milliseconds(value * factor);
}

std::optional<std::size_t> parse_size(std::string_view text) {
    std::uint64_t value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || ptr == text.data()) return std::nullopt;
    const std::string_view unit(ptr, text.data() + text.size() - ptr);
    std::uint64_t factor = 0;
    if (unit.empty() || unit == "B") factor = 1;
    if (unit == "KiB") factor = 1024;
    if (unit == "MiB") factor = 1024 * 1024;
    if (unit == "GiB") factor = 1024 * 1024 * 1024;
    if (unit == "KB") factor = 1000;
    if (unit == "MB") factor = 1000 * 1000;
    if (unit == "GB") factor = 1000 * 1000 * 1000;
    // At most 2^50 bytes (1 PiB) whatever the unit, checked before multiplying: a count in
    // range times a unit must not wrap around (17179869185GiB was once taken as 1 GiB).
    constexpr std::uint64_t k_max_bytes = std::uint64_t{1} << 50;
    if (factor == 0 || value > k_max_bytes / factor) return std::nullopt;
    return static_cast<std::size_t>(value * factor);
}

namespace {

using httpclient::shown_url;
using Keys = std::vector<std::string_view>;

// Every table of keys that check_keys() is given is listed in known_keys() below, and every table
// of values in known_values(): the test that docs/configuration.md documents each key and value
// reads them there.
const Keys k_top_keys = {"listen", "state_dir", "log",     "server",  "store",
                         "admin",  "dispatch",  "sources", "jenkins", "rules"};
const Keys k_admin_keys = {"enabled", "listen", "token", "max_connections",
                           "max_connections_per_client"};
const Keys k_log_formats = {"auto", "text", "json"};
const Keys k_store_keys = {"backend",   "keep_body", "retention", "prune_interval",
                           "max_batch", "max_size",  "postgres",  "intake_log"};
const Keys k_store_backends = {"sqlite", "postgres"};
const Keys k_postgres_keys = {"url", "pool_size", "connect_timeout", "statement_timeout",
                              "reconnect_max"};
const Keys k_dispatch_keys = {"max_in_flight", "poll_interval", "claim_lease",
                              "claim_renew_interval"};
const Keys k_retry_keys = {"initial", "max_delay", "max_age"};
const Keys k_server_keys = {"body_limit",
                            "header_limit",
                            "header_timeout",
                            "body_timeout",
                            "idle_timeout",
                            "write_timeout",
                            "store_timeout",
                            "max_connections",
                            "max_connections_per_client",
                            "body_memory",
                            "body_memory_per_client",
                            "threads",
                            "shutdown_grace",
                            "trusted_proxies",
                            "forwarded_header",
                            "tls",
                            "parse_memory_limit"};
const Keys k_tls_keys = {"certificate", "key"};
const Keys k_forwarded_headers = {"x-forwarded-for", "forwarded"};
const Keys k_log_keys = {"level", "format"};
// Keys every source takes; each forge adds its own (ingest/forge.hpp: Forge::config_keys).
const Keys k_common_source_keys = {
    "provider", "path", "insecure", "allow_from", "duplicate_body_window", "status"};
const Keys k_status_keys = {"token",         "context",         "api_url",         "ca_file",
                            "max_in_flight", "connect_timeout", "request_timeout", "retry_initial",
                            "retry_max",     "max_tries"};
const Keys k_rule_status_keys = {"context"};
const Keys k_signature_keys = {"header", "algorithm", "encoding",
                               "prefix", "content",   "timestamp_header"};
const Keys k_signature_algorithms = {"sha1", "sha256", "sha512"};
const Keys k_signature_encodings = {"hex", "base64"};
const Keys k_signed_placeholders = {"{body}", "{timestamp}", "{delivery_id}"};
// A Jenkins url copied from a job page ("https://ci/job/acme/job/app/"): the Jenkins root
// ("https://ci/") and the job path a rule would use ("acme/app"); nullopt for any other url. Only
// the path after the host counts, so a context path ("https://host/jenkins/") is fine.
static std::optional<std::pair<std::string, std::string>> jenkins_root_of_job_url(
    const std::string& url) {
    const auto scheme = url.find("://");
    if (scheme == std::string::npos) return std::nullopt;
    const auto path = url.find('/', scheme + 3);
    if (path == std::string::npos) return std::nullopt;
    const auto job = url.find("/job/", path);
    if (job == std::string::npos) return std::nullopt;
    std::string job_path;
    std::size_t at = job + 1;  // at "job/<name>/job/<name>/..."
    while (url.compare(at, 4, "job/") == 0) {
        const auto end = url.find('/', at + 4);
        if (end == std::string::npos) break;
        if (!job_path.empty()) job_path += '/';
        job_path += url.substr(at + 4, end - at - 4);
        at = end + 1;
    }
    return std::pair(url.substr(0, job + 1), job_path);
}

const Keys k_jenkins_keys = {"url",
                             "user",
                             "api_token",
                             "ca_file",
                             "connect_timeout",
                             "io_timeout",
                             "request_timeout",
                             "max_in_flight",
                             "retry",
                             "probe_initial",
                             "probe_max",
                             "follow",
                             "follow_max_in_flight",
                             "follow_poll_initial",
                             "follow_poll_max",
                             "follow_max_age",
                             "scan_interval",
                             "branch_wait",
                             "branch_poll"};
const Keys k_rule_keys = {"name",   "when",   "stop",     "trigger",          "retry",
                          "follow", "status", "coalesce", "cancel_superseded"};
const Keys k_trigger_keys = {"jenkins", "job",         "parameters", "token",
                             "scan",    "multibranch", "branch"};
const Keys k_log_levels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
// What follow_mode_from_string() takes (model/config.hpp: FollowMode).
const Keys k_follow_modes = {"none", "started", "finished"};

// What the listener can bind: an IPv4 or IPv6 literal; IPv6 may carry a zone ("fe80::1%eth0").
bool is_ip_address(const std::string& host) {
    std::array<unsigned char, sizeof(in6_addr)> buffer{};
    if (inet_pton(AF_INET, host.c_str(), buffer.data()) == 1) return true;
    const auto address = host.substr(0, host.find('%'));
    return inet_pton(AF_INET6, address.c_str(), buffer.data()) == 1;
}

bool is_localhost(std::string_view host) {
    std::string lower(host);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return lower == "localhost" || lower == "localhost." || lower.ends_with(".localhost");
}

Location location_of(const YAML::Node& node) {
    const auto mark = node.Mark();
    if (mark.is_null()) return {};
    return {mark.line + 1, mark.column + 1};
}

// Where a scalar's text starts: one column past the opening quote of a quoted scalar
// (yaml-cpp tags quoted scalars "!").
Location content_location(const YAML::Node& node) {
    auto where = location_of(node);
    if (node.Tag() == "!" && where.line > 0) ++where.column;
    return where;
}

std::string describe(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Map:
            return "a map";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Scalar:
            return "a scalar";
        case YAML::NodeType::Null:
            return "empty";
        default:
            return "undefined";
    }
}

class Loader {
  public:
    Loader(std::string file, const LoadOptions& options) : options_(options) {
        config_ = std::make_shared<Config>();
        config_->file = std::move(file);
    }

    LoadResult run(const YAML::Node& root) {
        if (!root.IsMap()) {
            error(root, fmt::format("the config must be a map, not {}", describe(root)));
            return finish();
        }
        if (options_.admin_only) {
            if (auto n = root["admin"]) admin(n);
            return finish();
        }
        duplicate_keys(root, "");
        check_keys(root, k_top_keys, "top level");
        if (auto n = root["listen"]) listen(n);
        if (auto n = root["state_dir"]) {
            if (plain(n, "state_dir", config_->state_dir) && config_->state_dir.empty()) {
                error(n,
                      "state_dir is empty: name the directory for the store (default: "
                      "/var/lib/hookrelay)");
            }
        }
        if (auto n = root["log"]) log(n);
        if (auto n = root["server"]) server(n);
        if (auto n = root["store"]) store(n);
        if (auto n = root["admin"]) admin(n);
        if (auto n = root["dispatch"]) dispatch(n);
        if (auto n = root["sources"]) {
            sources(n);
        } else {
            error(root, "no `sources:`: configure at least one webhook source");
        }
        if (auto n = root["jenkins"]) jenkins(n);
        if (auto n = root["rules"]) rules(n);
        return finish();
    }

    void error(const YAML::Node& node, std::string message) {
        errors_.push_back({config_->file, location_of(node), std::move(message)});
    }
    void error_at(Location where, std::string message) {
        errors_.push_back({config_->file, where, std::move(message)});
    }

  private:
    // A base URL as the HTTP client will take it (a run refuses what it cannot parse, so check
    // refuses it first). User info is refused without being shown: it belongs in `user:` and
    // `api_token:`, where it is a secret.
    void base_url(const YAML::Node& node, const std::string& what, const std::string& url) {
        std::string why;
        if (httpclient::parse_base_url(url, why)) return;
        if (shown_url(url) != url) {
            why =
                "it holds user info (user:password@); put the user into `user:` and the "
                "password or API token into a secret reference";
        }
        error(node, fmt::format("{} '{}' cannot be used: {}", what, shown_url(url), why));
    }

    // A PEM bundle named by `ca_file`: read by the client at start, so check says when it cannot
    // be (not where secrets are not resolved either: `explain` runs away from the service).
    void ca_file(const YAML::Node& node, const std::string& what, std::string& path) {
        if (!scalar(node, what, path) || !options_.resolve_secrets) return;
        std::error_code ec;
        if (std::filesystem::is_directory(path, ec)) {
            error(node, fmt::format("{} '{}' is a directory, not a PEM file", what, path));
            return;
        }
        std::ifstream in(path);
        if (!in) {
            error(node,
                  fmt::format("{} '{}' cannot be read: {}", what, path, std::strerror(errno)));
        }
    }

    // A key written twice in one map (a second `rules:` pasted below the first, `trigger:` twice
    // in a rule): YAML keeps both, every lookup finds the first, and the second would be ignored
    // without a word. Refused wherever it is.
    void duplicate_keys(const YAML::Node& node, const std::string& path) {
        if (node.IsSequence()) {
            for (std::size_t i = 0; i < node.size(); ++i) {
                duplicate_keys(node[i], fmt::format("{}[{}]", path, i));
            }
            return;
        }
        if (!node.IsMap()) return;
        std::map<std::string, Location> seen;
        for (const auto& entry : node) {
            if (!entry.first.IsScalar()) continue;
            const std::string key = entry.first.Scalar();
            const std::string at = path.empty() ? key : path + "." + key;
            const auto [first, inserted] = seen.emplace(key, location_of(entry.first));
            if (!inserted) {
                error(entry.first,
                      fmt::format("`{}` is written twice (first on line {}); YAML would use only "
                                  "the first, so merge the two",
                                  at, first->second.line));
                continue;
            }
            duplicate_keys(entry.second, at);
        }
    }

    LoadResult finish() {
        LoadResult result;
        result.errors = std::move(errors_);
        result.config = std::move(config_);
        return result;
    }

    bool expect_map(const YAML::Node& node, std::string_view what) {
        if (node.IsMap()) return true;
        error(node, fmt::format("{} must be a map, not {}", what, describe(node)));
        return false;
    }

    void check_keys(const YAML::Node& map, const Keys& allowed, std::string_view context) {
        assert(std::any_of(known_keys().begin(), known_keys().end(),
                           [&](const KeyTable& t) { return t.keys.data() == allowed.data(); }) &&
               "a table of keys missing from known_keys()");
        for (const auto& item : map) {
            const auto key = item.first.as<std::string>();
            if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
                error(item.first, fmt::format("unknown key '{}' in {}{}", key, context,
                                              did_you_mean(key, allowed)));
            }
        }
    }

    bool scalar(const YAML::Node& node, std::string_view what, std::string& out) {
        if (!node.IsScalar()) {
            error(node, fmt::format("{} must be a single value, not {}", what, describe(node)));
            return false;
        }
        out = node.Scalar();
        return true;
    }

    // A scalar that is not a secret: a reference there would be taken as the text it is.
    bool plain(const YAML::Node& node, std::string_view what, std::string& out) {
        if (!scalar(node, what, out)) return false;
        if (secrets::is_reference(out)) {
            error(node, fmt::format("{}: {} is taken as written here: references (${{env:…}}, "
                                    "${{file:…}}, ${{credential:…}}) are read only where a secret "
                                    "goes (tokens, secrets, passwords, store.postgres.url)",
                                    what, out));
            return false;
        }
        return true;
    }

    // A backoff that doubles from `initial` up to `most`: both written, the first step cannot be
    // above the cap. (One left at its default is held to the other: a cap alone below the
    // default first step makes every step the cap.)
    void backoff(const YAML::Node& node, std::string_view context, std::string_view initial_key,
                 std::chrono::milliseconds initial, std::string_view most_key,
                 std::chrono::milliseconds most) {
        const auto at = node[std::string(initial_key)];
        if (at && node[std::string(most_key)] && initial > most) {
            error(at, fmt::format("{}: {} ({} ms) is above {} ({} ms): the delay doubles from "
                                  "the first up to the second",
                                  context, initial_key, initial.count(), most_key, most.count()));
        }
    }

    void boolean(const YAML::Node& node, std::string_view what, bool& out) {
        bool value = false;
        if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
            error(node, fmt::format("{} must be true or false", what));
            return;
        }
        out = value;
    }

    void duration(const YAML::Node& node, std::string_view what, std::chrono::milliseconds& out) {
        std::string text;
        if (!scalar(node, what, text)) return;
        if (auto d = parse_duration(text)) {
            out = *d;
        } else {
            error(node, fmt::format("{}: '{}' is not a duration (e.g. 500ms, 10s, 5m, 1h; at most "
                                    "36500d)",
                                    what, text));
        }
    }

    // A timeout, an interval or a backoff's start: 0 would make every request fail at once or a
    // loop spin (a poll, a probe or a retry with no pause), so it is refused.
    void positive_duration(const YAML::Node& node, std::string_view what,
                           std::chrono::milliseconds& out) {
        const auto before = errors_.size();
        auto value = out;
        duration(node, what, value);
        if (errors_.size() != before) return;
        if (value.count() <= 0) {
            error(node, fmt::format("{} must be above zero (e.g. 500ms or 10s)", what));
            return;
        }
        out = value;
    }

    void size(const YAML::Node& node, std::string_view what, std::size_t& out) {
        std::string text;
        if (!scalar(node, what, text)) return;
        if (auto s = parse_size(text); s && *s > 0) {
            out = *s;
        } else {
            error(node,
                  fmt::format("{}: '{}' is not a size (e.g. 65536, 64KiB, 25MiB; above 0, at most "
                              "1 PiB)",
                              what, text));
        }
    }

    template <class T>
    void positive(const YAML::Node& node, std::string_view what, T& out, T max) {
        std::string text;
        if (!scalar(node, what, text)) return;
        T value{};
        const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc{} || ptr != text.data() + text.size() || value == 0 || value > max) {
            error(node,
                  fmt::format("{}: '{}' must be a whole number from 1 to {}", what, text, max));
            return;
        }
        out = value;
    }

    Secret secret(const YAML::Node& node, std::string_view what) {
        std::string text;
        if (!scalar(node, what, text)) return {};
        if (!secrets::is_reference(text)) {
            error(node, fmt::format("{} must be a secret reference such as ${{env:NAME}}, "
                                    "${{file:PATH}} or ${{credential:NAME}}, never the secret "
                                    "itself",
                                    what));
            return {};
        }
        if (!options_.resolve_secrets) return Secret("unresolved");
        std::string why;
        auto resolved = secrets::resolve(text, options_.environment, &why);
        if (!resolved) {
            error(node, fmt::format("{}: {}", what, why));
            return {};
        }
        return *resolved;
    }

    // host:port, [v6]:port, or :port (all interfaces).
    bool host_port(const YAML::Node& node, std::string_view what, std::string& host_out,
                   std::uint16_t& port_out) {
        std::string text;
        if (!scalar(node, what, text)) return false;
        const auto colon = text.rfind(':');
        std::string host = colon == std::string::npos ? "" : text.substr(0, colon);
        const std::string port = colon == std::string::npos ? text : text.substr(colon + 1);
        if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
            host = host.substr(1, host.size() - 2);
        }
        unsigned value = 0;
        const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (colon == std::string::npos || ec != std::errc{} || ptr != port.data() + port.size() ||
            value > 65535) {
            error(node, fmt::format("{}: '{}' is not host:port (e.g. 0.0.0.0:8080, "
                                    "[::]:8080, 127.0.0.1:0)",
                                    what, text));
            return false;
        }
        if (!host.empty() && !is_ip_address(host)) {
            // Refused rather than resolved: a name can resolve to several addresses (localhost:
            // 127.0.0.1 and ::1) of which a listener binds one, resolving would make start-up and
            // reload wait on DNS, and what `check` approved could resolve differently at `run`.
            const auto fix = is_localhost(host)
                                 ? fmt::format("use 127.0.0.1:{0} or [::1]:{0}", port)
                                 : fmt::format(
                                       "use the address of the interface to listen on, "
                                       "0.0.0.0:{0} (every IPv4 interface) or [::]:{0} "
                                       "(every interface)",
                                       port);
            error_at(content_location(node),
                     fmt::format("{}: '{}' is not an IP address (hookrelay does not resolve host "
                                 "names): {}",
                                 what, host, fix));
            return false;
        }
        host_out = host.empty() ? "0.0.0.0" : host;
        port_out = static_cast<std::uint16_t>(value);
        return true;
    }

    void listen(const YAML::Node& node) {
        host_port(node, "listen", config_->server.host, config_->server.port);
    }

    void admin(const YAML::Node& node) {
        if (!expect_map(node, "admin")) return;
        check_keys(node, k_admin_keys, "admin");
        auto& a = config_->admin;
        if (auto n = node["enabled"]) boolean(n, "admin.enabled", a.enabled);
        if (auto n = node["listen"]) host_port(n, "admin.listen", a.host, a.port);
        if (auto n = node["token"]) {
            if (auto t = secret(n, "admin.token"); !t.empty()) a.token = t;
        }
        if (auto n = node["max_connections"]) {
            positive<std::size_t>(n, "admin.max_connections", a.max_connections, 100'000);
        }
        if (auto n = node["max_connections_per_client"]) {
            positive<std::size_t>(n, "admin.max_connections_per_client",
                                  a.max_connections_per_client, 100'000);
        }
    }

    // A list of address ranges ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7").
    std::vector<Cidr> cidr_list(const YAML::Node& node, std::string_view what) {
        std::vector<Cidr> out;
        auto one = [&](const YAML::Node& item) {
            std::string text;
            if (!scalar(item, what, text)) return;
            if (auto range = parse_cidr(text)) {
                out.push_back(*range);
            } else {
                error(item, fmt::format("{}: '{}' is not an IP address or range (e.g. "
                                        "192.30.252.0/22, 2001:db8::/32, 10.1.2.3); host names "
                                        "are not resolved",
                                        what, text));
            }
        };
        if (node.IsSequence()) {
            if (node.size() == 0) error(node, fmt::format("{} is an empty list", what));
            for (const auto& item : node) one(item);
        } else {
            one(node);
        }
        return out;
    }

    void tls(const YAML::Node& node) {
        if (!expect_map(node, "server.tls")) return;
        check_keys(node, k_tls_keys, "server.tls");
        ServerConfig::Tls t;
        if (auto n = node["certificate"]; !n) {
            error(node, "server.tls: `certificate:` is required (a PEM file path or a reference)");
        } else if (scalar(n, "server.tls.certificate", t.certificate)) {
            t.certificate_where = content_location(n);
            if (t.certificate.empty()) error(n, "server.tls.certificate is empty");
        }
        if (auto n = node["key"]; !n) {
            error(node, "server.tls: `key:` is required (a PEM file path or a reference)");
        } else if (scalar(n, "server.tls.key", t.key)) {
            t.key_where = content_location(n);
            if (t.key.empty()) error(n, "server.tls.key is empty");
        }
        config_->server.tls = std::move(t);
    }

    void log(const YAML::Node& node) {
        if (!expect_map(node, "log")) return;
        check_keys(node, k_log_keys, "log");
        if (auto n = node["level"]) {
            std::string level;
            if (scalar(n, "log.level", level)) {
                if (std::find(k_log_levels.begin(), k_log_levels.end(), level) ==
                    k_log_levels.end()) {
                    error(n, fmt::format("log.level: '{}' is not one of trace, debug, info, "
                                         "warn, error, critical, off",
                                         level));
                } else {
                    config_->log.level = level;
                }
            }
        }
        if (auto n = node["format"]) {
            std::string format;
            if (scalar(n, "log.format", format)) {
                if (std::find(k_log_formats.begin(), k_log_formats.end(), format) ==
                    k_log_formats.end()) {
                    error(n,
                          fmt::format("log.format: '{}' is not one of auto, text, json", format));
                } else {
                    config_->log.format = format;
                }
            }
        }
    }

    void server(const YAML::Node& node) {
        if (!expect_map(node, "server")) return;
        check_keys(node, k_server_keys, "server");
        auto& s = config_->server;
        if (auto n = node["body_limit"]) size(n, "server.body_limit", s.body_limit);
        if (auto n = node["parse_memory_limit"]) {
            size(n, "server.parse_memory_limit", s.parse_memory_limit);
        } else {
            // Real payloads parse into at most about three times their size.
            s.parse_memory_limit = s.body_limit > SIZE_MAX / 4 ? SIZE_MAX : 4 * s.body_limit;
        }
        if (auto n = node["header_limit"]) {
            size(n, "server.header_limit", s.header_limit);
            // The HTTP parser counts a head in 32 bits; no forge sends a head near this.
            constexpr std::size_t k_max_header_limit = 1024 * 1024;
            if (s.header_limit > k_max_header_limit) {
                error(n, fmt::format("server.header_limit ({} bytes) is over the most a request "
                                     "head may be (1MiB)",
                                     s.header_limit));
            }
        }
        if (auto n = node["header_timeout"])
            positive_duration(n, "server.header_timeout", s.header_timeout);
        if (auto n = node["body_timeout"])
            positive_duration(n, "server.body_timeout", s.body_timeout);
        if (auto n = node["idle_timeout"])
            positive_duration(n, "server.idle_timeout", s.idle_timeout);
        if (auto n = node["write_timeout"])
            positive_duration(n, "server.write_timeout", s.write_timeout);
        if (auto n = node["store_timeout"])
            positive_duration(n, "server.store_timeout", s.store_timeout);
        if (auto n = node["shutdown_grace"]) duration(n, "server.shutdown_grace", s.shutdown_grace);
        if (auto n = node["max_connections"]) {
            positive<std::size_t>(n, "server.max_connections", s.max_connections, 1'000'000);
        }
        if (auto n = node["threads"]) positive<unsigned>(n, "server.threads", s.threads, 64);
        if (auto n = node["max_connections_per_client"]) {
            positive<std::size_t>(n, "server.max_connections_per_client",
                                  s.max_connections_per_client, 1'000'000);
        }
        if (auto n = node["body_memory"]) size(n, "server.body_memory", s.body_memory);
        if (auto n = node["body_memory_per_client"]) {
            size(n, "server.body_memory_per_client", s.body_memory_per_client);
        }
        if (s.body_memory < s.body_limit) {
            error(node["body_memory"] ? node["body_memory"] : node,
                  fmt::format("server.body_memory ({} bytes) must be at least body_limit ({} "
                              "bytes), or no body of the largest allowed size could be received",
                              s.body_memory, s.body_limit));
        }
        if (s.body_memory_per_client < s.body_limit || s.body_memory_per_client > s.body_memory) {
            error(node["body_memory_per_client"] ? node["body_memory_per_client"] : node,
                  fmt::format("server.body_memory_per_client ({} bytes) must lie between "
                              "body_limit ({} bytes) and body_memory ({} bytes)",
                              s.body_memory_per_client, s.body_limit, s.body_memory));
        }
        if (auto n = node["trusted_proxies"]) {
            s.trusted_proxies = cidr_list(n, "server.trusted_proxies");
        }
        if (auto n = node["forwarded_header"]) {
            std::string header;
            if (scalar(n, "server.forwarded_header", header)) {
                for (auto& c : header)
                    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                if (std::find(k_forwarded_headers.begin(), k_forwarded_headers.end(), header) ==
                    k_forwarded_headers.end()) {
                    error(n, fmt::format("server.forwarded_header: '{}' is not one of "
                                         "x-forwarded-for, forwarded{}",
                                         header, did_you_mean(header, k_forwarded_headers)));
                } else {
                    s.forwarded_header = header;
                }
            }
            s.forwarded_where = location_of(n);
            if (!node["trusted_proxies"]) {
                error(n,
                      "server.forwarded_header is only read from `trusted_proxies`; list "
                      "your proxies' addresses there");
            }
        }
        if (auto n = node["tls"]) tls(n);
    }

    void store(const YAML::Node& node) {
        if (!expect_map(node, "store")) return;
        check_keys(node, k_store_keys, "store");
        auto& s = config_->store;
        if (auto n = node["keep_body"]) boolean(n, "store.keep_body", s.keep_body);
        // 0 would prune every finished delivery at each pass, and with it what recognizes a
        // forge's redelivery as a duplicate: refused.
        if (auto n = node["retention"]) positive_duration(n, "store.retention", s.retention);
        if (auto n = node["prune_interval"])
            positive_duration(n, "store.prune_interval", s.prune_interval);
        if (auto n = node["max_size"]) size(n, "store.max_size", s.max_size);
        if (auto n = node["max_batch"]) {
            positive<std::size_t>(n, "store.max_batch", s.max_batch, 100'000);
        }
        if (auto n = node["backend"]) {
            std::string backend;
            if (scalar(n, "store.backend", backend)) {
                if (backend == "sqlite") {
                    s.backend = StoreConfig::Backend::sqlite;
                } else if (backend == "postgres") {
                    s.backend = StoreConfig::Backend::postgres;
                } else {
                    error(n, fmt::format("store.backend: '{}' is not one of sqlite, postgres{}",
                                         backend, did_you_mean(backend, k_store_backends)));
                }
            }
        }
        const bool postgres = s.backend == StoreConfig::Backend::postgres;
        if (auto n = node["postgres"]) {
            if (expect_map(n, "store.postgres")) {
                check_keys(n, k_postgres_keys, "store.postgres");
                auto& p = s.postgres;
                p.where = location_of(n);
                if (auto u = n["url"]) {
                    p.url = secret(u, "store.postgres.url");
                } else {
                    error(n,
                          "store.postgres: `url:` is required, as a secret reference (it "
                          "holds the password), e.g. \"${env:HOOKRELAY_DATABASE_URL}\"");
                }
                if (auto v = n["pool_size"]) {
                    positive<unsigned>(v, "store.postgres.pool_size", p.pool_size, 64);
                }
                // Zero is not "no limit" here: it would fail every connect, turn the server's
                // statement_timeout off, or retry a server that is down without pause.
                for (auto [key, out] : {std::pair{"connect_timeout", &p.connect_timeout},
                                        std::pair{"statement_timeout", &p.statement_timeout},
                                        std::pair{"reconnect_max", &p.reconnect_max}}) {
                    const auto v = n[key];
                    if (!v) continue;
                    const std::string what = std::string("store.postgres.") + key;
                    duration(v, what, *out);
                    if (out->count() <= 0) error(v, what + ": must be above zero");
                }
            }
            if (!postgres) {
                error(n,
                      "store.postgres is set but store.backend is not postgres; add "
                      "`backend: postgres`");
            }
        } else if (postgres) {
            error(node["backend"], "store.backend: postgres needs `store.postgres.url`");
        }
        // On by default for SQLite; PostgreSQL has no intake log (its instances share one
        // database, and each commit is the answer).
        if (postgres) s.intake_log = false;
        if (auto n = node["intake_log"]) {
            bool on = s.intake_log;
            boolean(n, "store.intake_log", on);
            if (postgres && on) {
                error(n, "store.intake_log applies to the sqlite backend only");
            }
            s.intake_log = on && !postgres;
        }
        if (postgres && node["max_size"]) {
            error(node["max_size"],
                  "store.max_size applies to the sqlite backend only; limit "
                  "the database's size in PostgreSQL itself");
        }
    }

    void dispatch(const YAML::Node& node) {
        if (!expect_map(node, "dispatch")) return;
        check_keys(node, k_dispatch_keys, "dispatch");
        auto& d = config_->dispatch;
        if (auto n = node["max_in_flight"]) {
            positive<unsigned>(n, "dispatch.max_in_flight", d.max_in_flight, 10'000);
        }
        if (auto n = node["poll_interval"])
            positive_duration(n, "dispatch.poll_interval", d.poll_interval);
        if (auto n = node["claim_lease"]) duration(n, "dispatch.claim_lease", d.claim_lease);
        if (auto n = node["claim_renew_interval"]) {
            duration(n, "dispatch.claim_renew_interval", d.claim_renew_interval);
        }
        if (d.claim_renew_interval.count() <= 0 || d.claim_renew_interval * 2 > d.claim_lease) {
            error(node, fmt::format("dispatch: claim_renew_interval ({} ms) must be above zero and "
                                    "at most half of claim_lease ({} ms), so a live instance "
                                    "renews its claims before they expire",
                                    d.claim_renew_interval.count(), d.claim_lease.count()));
        }
    }

    RetryPolicy retry(const YAML::Node& node, std::string_view context, RetryPolicy policy) {
        if (!expect_map(node, context)) return policy;
        check_keys(node, k_retry_keys, context);
        if (auto n = node["initial"])
            duration(n, fmt::format("{}.initial", context), policy.initial);
        if (auto n = node["max_delay"]) {
            duration(n, fmt::format("{}.max_delay", context), policy.max_delay);
        }
        if (auto n = node["max_age"])
            duration(n, fmt::format("{}.max_age", context), policy.max_age);
        if (policy.initial.count() <= 0 || policy.max_delay < policy.initial) {
            error(node, fmt::format("{}: need 0 < initial <= max_delay", context));
        }
        return policy;
    }

    void secret_list(const YAML::Node& node, std::string_view what, std::vector<Secret>& out) {
        if (node.IsSequence()) {
            if (node.size() == 0) error(node, fmt::format("{} is an empty list", what));
            for (const auto& item : node) {
                if (auto s = secret(item, what); !s.empty()) out.push_back(s);
            }
        } else if (auto s = secret(node, what); !s.empty()) {
            out.push_back(s);
        }
    }

    // Every key any source takes: the common ones and every forge's.
    static const Keys& all_source_keys() {
        static const Keys keys = [] {
            Keys out = k_common_source_keys;
            for (const auto* forge : ingest::forges()) {
                for (const auto key : forge->config_keys) {
                    if (std::find(out.begin(), out.end(), key) == out.end()) out.push_back(key);
                }
            }
            return out;
        }();
        return keys;
    }

    static bool takes(const ingest::Forge& forge, std::string_view key) {
        return std::find(k_common_source_keys.begin(), k_common_source_keys.end(), key) !=
                   k_common_source_keys.end() ||
               std::find(forge.config_keys.begin(), forge.config_keys.end(), key) !=
                   forge.config_keys.end();
    }

    // "github and gitea sources", naming the forges that take `key`.
    static std::string forges_taking(std::string_view key) {
        std::vector<std::string_view> names;
        for (const auto* forge : ingest::forges()) {
            if (takes(*forge, key)) names.push_back(to_string(forge->provider));
        }
        std::string out;
        for (std::size_t i = 0; i < names.size(); ++i) {
            if (i > 0) out += i + 1 == names.size() ? " and " : ", ";
            out += names[i];
        }
        return out + " sources";
    }

    static std::string provider_names(std::string_view last_separator) {
        std::string out;
        const auto all = providers();
        for (std::size_t i = 0; i < all.size(); ++i) {
            if (i > 0) out += i + 1 == all.size() ? last_separator : ", ";
            out += to_string(all[i]);
        }
        return out;
    }

    // Unknown keys, and keys another forge takes but this one does not (`forge`: null when the
    // provider is unknown; only unknown keys are reported then).
    void check_source_keys(const YAML::Node& body, const ingest::Forge* forge,
                           std::string_view context) {
        for (const auto& item : body) {
            const auto key = item.first.as<std::string>();
            const auto& all = all_source_keys();
            if (std::find(all.begin(), all.end(), key) == all.end()) {
                error(item.first, fmt::format("unknown key '{}' in {}{}", key, context,
                                              did_you_mean(key, all)));
                continue;
            }
            if (forge == nullptr || takes(*forge, key)) continue;
            const auto name = to_string(forge->provider);
            const bool secret_key =
                key == "secret" || key == "secrets" || key == "token" || key == "tokens";
            if (secret_key && !forge->secret_key.empty()) {
                error(item.second,
                      fmt::format("{}: {} sources take `{}` (rotation: `{}s` as a list)", context,
                                  name, forge->secret_key, forge->secret_key));
            } else {
                error(item.first, fmt::format("{}: `{}` applies to {} only, not to {}", context,
                                              key, forges_taking(key), name));
            }
        }
    }

    // A generic source's `event:` / `delivery_id:`: "payload.<path>" or a header name.
    ValueRef value_ref(const YAML::Node& node, std::string_view what) {
        ValueRef ref;
        std::string text;
        if (!scalar(node, what, text)) return ref;
        ref.where = content_location(node);
        static constexpr std::string_view k_payload = "payload.";
        if (text.starts_with(k_payload)) {
            ref.from = ValueRef::From::payload;
            ref.name = text.substr(k_payload.size());
            if (ref.name.empty() || ref.name.front() == '.' || ref.name.back() == '.' ||
                ref.name.find("..") != std::string::npos) {
                error_at(ref.where, fmt::format("{}: '{}' is not a payload field path (e.g. "
                                                "payload.event, payload.data.id)",
                                                what, text));
            }
        } else {
            ref.from = ValueRef::From::header;
            ref.name = text;
            if (!is_header_name(text)) {
                error_at(ref.where, fmt::format("{}: '{}' is neither a header name nor a "
                                                "payload field (payload.<path>)",
                                                what, text));
            }
        }
        return ref;
    }

    static bool is_header_name(std::string_view name) {
        // RFC 9110 token characters.
        if (name.empty()) return false;
        return std::all_of(name.begin(), name.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) ||
                   std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
        });
    }

    // One of `allowed`, with a did-you-mean.
    bool one_of(const YAML::Node& node, std::string_view what, const Keys& allowed,
                std::string& out) {
        assert(
            std::any_of(known_values().begin(), known_values().end(),
                        [&](const ValueTable& t) { return t.values.data() == allowed.data(); }) &&
            "a table of values missing from known_values()");
        if (!scalar(node, what, out)) return false;
        if (std::find(allowed.begin(), allowed.end(), out) != allowed.end()) return true;
        std::string list;
        for (const auto v : allowed) list += (list.empty() ? "" : ", ") + std::string(v);
        error_at(content_location(node), fmt::format("{}: '{}' is not one of {}{}", what, out, list,
                                                     did_you_mean(out, allowed)));
        return false;
    }

    void signature(const YAML::Node& node, std::string_view context, SourceConfig& source) {
        const auto what = fmt::format("{}.signature", context);
        if (!expect_map(node, what)) return;
        check_keys(node, k_signature_keys, what);
        SignatureSpec spec;
        spec.where = location_of(node);
        if (auto n = node["header"]; !n) {
            error(node, fmt::format("{}: `header:` is required (the header carrying the "
                                    "signature)",
                                    what));
        } else if (scalar(n, what + ".header", spec.header) && !is_header_name(spec.header)) {
            error_at(content_location(n),
                     fmt::format("{}.header: '{}' is not a header name", what, spec.header));
        }
        std::string text;
        if (auto n = node["algorithm"];
            n && one_of(n, what + ".algorithm", k_signature_algorithms, text)) {
            spec.algorithm = text == "sha1"     ? SignatureSpec::Algorithm::sha1
                             : text == "sha512" ? SignatureSpec::Algorithm::sha512
                                                : SignatureSpec::Algorithm::sha256;
        }
        if (auto n = node["encoding"];
            n && one_of(n, what + ".encoding", k_signature_encodings, text)) {
            spec.encoding =
                text == "base64" ? SignatureSpec::Encoding::base64 : SignatureSpec::Encoding::hex;
        }
        if (auto n = node["prefix"]) scalar(n, what + ".prefix", spec.prefix);
        if (auto n = node["timestamp_header"]) {
            if (scalar(n, what + ".timestamp_header", spec.timestamp_header) &&
                !is_header_name(spec.timestamp_header)) {
                error_at(content_location(n), fmt::format("{}.timestamp_header: '{}' is not a "
                                                          "header name",
                                                          what, spec.timestamp_header));
            }
        }
        const auto content_node = node["content"];
        if (content_node) scalar(content_node, what + ".content", spec.content);
        const auto content_where = content_node ? content_location(content_node) : spec.where;
        signed_content(spec, source, content_where, what);
        source.signature = std::move(spec);
    }

    // The placeholders of `content` are known, {body} is there once, and a timestamp header is
    // signed (an unsigned timestamp stops no replay: the replayer writes a fresh one).
    void signed_content(const SignatureSpec& spec, const SourceConfig& source, Location where,
                        std::string_view what) {
        std::size_t bodies = 0;
        bool timestamp = false;
        bool delivery_id = false;
        for (std::size_t i = spec.content.find('{'); i != std::string::npos;
             i = spec.content.find('{', i + 1)) {
            const auto close = spec.content.find('}', i);
            const auto placeholder = std::string_view(spec.content)
                                         .substr(i, close == std::string::npos ? 1 : close - i + 1);
            if (placeholder == "{body}") {
                ++bodies;
            } else if (placeholder == "{timestamp}") {
                timestamp = true;
            } else if (placeholder == "{delivery_id}") {
                delivery_id = true;
            } else {
                Location at = where;
                if (at.line > 0) at.column += static_cast<int>(i);
                error_at(at, fmt::format("{}.content: unknown placeholder '{}'{}; use {{body}}, "
                                         "{{timestamp}} or {{delivery_id}}",
                                         what, placeholder,
                                         did_you_mean(placeholder, k_signed_placeholders)));
            }
        }
        if (bodies != 1) {
            error_at(where, fmt::format("{}.content: '{}' must contain {{body}} exactly once", what,
                                        spec.content));
        }
        if (timestamp && spec.timestamp_header.empty()) {
            error_at(where,
                     fmt::format("{}.content: {{timestamp}} needs a `timestamp_header`", what));
        }
        if (!timestamp && !spec.timestamp_header.empty()) {
            error_at(where, fmt::format("{}.content: the timestamp must be signed (add "
                                        "{{timestamp}}, e.g. '{{timestamp}}.{{body}}'), or a "
                                        "replay could carry a fresh one",
                                        what));
        }
        if (delivery_id && source.delivery_id.from != ValueRef::From::header) {
            error_at(where, fmt::format("{}.content: {{delivery_id}} needs `delivery_id:` to "
                                        "name a header",
                                        what));
        }
    }

    void sources(const YAML::Node& node) {
        if (!expect_map(node, "sources")) return;
        if (node.size() == 0) error(node, "sources: configure at least one webhook source");
        std::set<std::string> paths;
        for (const auto& item : node) {
            SourceConfig source;
            source.name = item.first.as<std::string>();
            source.where = location_of(item.first);
            const auto& body = item.second;
            const auto context = fmt::format("source '{}'", source.name);
            if (!expect_map(body, context)) continue;

            const ingest::Forge* forge = nullptr;
            std::string provider;
            if (auto n = body["provider"]; !n) {
                error(item.first, fmt::format("{}: `provider:` is required ({})", context,
                                              provider_names(" or ")));
            } else if (scalar(n, "provider", provider)) {
                if (auto p = provider_from_string(provider)) {
                    source.provider = *p;
                    forge = &ingest::forge(*p);
                } else {
                    std::vector<std::string_view> names;
                    for (const auto p2 : providers()) names.push_back(to_string(p2));
                    error(n, fmt::format("{}: unknown provider '{}'{}; use {}", context, provider,
                                         did_you_mean(provider, names), provider_names(" or ")));
                }
            }
            check_source_keys(body, forge, context);
            // Keys of another forge were reported above; only this forge's are read.
            const auto given = [&](std::string_view key) {
                return body[std::string(key)] && (forge == nullptr || takes(*forge, key));
            };
            for (const auto key : {"secret", "secrets", "token", "tokens"}) {
                if (given(key)) {
                    secret_list(body[key], fmt::format("{}.{}", context, key), source.secrets);
                }
            }
            for (const auto key : {"signing_token", "signing_tokens"}) {
                if (!given(key)) continue;
                const auto n = body[key];
                const auto before = source.signing_tokens.size();
                secret_list(n, fmt::format("{}.{}", context, key), source.signing_tokens);
                // Only a resolved value can be checked; what is wrong is said, never the value.
                if (!options_.resolve_secrets) continue;
                for (auto i = before; i < source.signing_tokens.size(); ++i) {
                    if (!ingest::signing_key(source.signing_tokens[i].reveal())) {
                        error(n, fmt::format("{}.{}: not a signing token (GitLab shows it as "
                                             "whsec_ followed by base64)",
                                             context, key));
                    }
                }
            }
            if (given("authorization")) {
                secret_list(body["authorization"], context + ".authorization",
                            source.authorization);
            }
            if (given("timestamp_window")) {
                duration(body["timestamp_window"], context + ".timestamp_window",
                         source.timestamp_window);
                if (source.timestamp_window.count() < 1000) {
                    error(body["timestamp_window"],
                          fmt::format("{}.timestamp_window must be at least 1s", context));
                }
            }
            if (given("event")) source.event_name = value_ref(body["event"], context + ".event");
            if (given("delivery_id")) {
                source.delivery_id = value_ref(body["delivery_id"], context + ".delivery_id");
            }
            if (given("signature")) signature(body["signature"], context, source);
            if (auto n = body["insecure"]) boolean(n, "insecure", source.insecure);
            if (auto n = body["allow_from"]) {
                source.allow_from = cidr_list(n, context + ".allow_from");
            }
            if (given("allow_sha1")) boolean(body["allow_sha1"], "allow_sha1", source.allow_sha1);
            if (auto n = body["duplicate_body_window"]) {
                std::chrono::milliseconds window{0};
                duration(n, fmt::format("{}.duplicate_body_window", context), window);
                source.duplicate_body_window = window;
            }
            if (auto n = body["status"]) status(n, context + ".status", source);
            source.path = "/hooks/" + source.name;
            if (!body["path"] &&
                (source.name.empty() || source.name.find_first_of(" ?#") != std::string::npos)) {
                error(item.first,
                      fmt::format("{}: its name makes the path '{}', which no forge can reach: "
                                  "name it without spaces, '?' or '#', or give it a `path:`",
                                  context, source.path));
            }
            if (auto n = body["path"]) {
                if (scalar(n, "path", source.path) &&
                    (!source.path.starts_with('/') ||
                     source.path.find_first_of(" ?#") != std::string::npos)) {
                    error(n, fmt::format("{}: path '{}' must start with '/' and contain no "
                                         "spaces, '?' or '#'",
                                         context, source.path));
                }
            }
            if (!paths.insert(source.path).second) {
                error(item.first, fmt::format("{}: path {} is already used by another source",
                                              context, source.path));
            }
            if (forge != nullptr) credentials(body, *forge, source, item.first, context);
            config_->sources.push_back(std::move(source));
        }
    }

    // Whether the source can verify anything, and has what its credentials need.
    void credentials(const YAML::Node& body, const ingest::Forge& forge, const SourceConfig& source,
                     const YAML::Node& name_node, std::string_view context) {
        const auto has = [&](std::string_view key) {
            return body[std::string(key)] && takes(forge, key);
        };
        const bool has_secret = has("secret") || has("secrets") || has("token") || has("tokens");
        const bool has_credential =
            has_secret || has("signing_token") || has("signing_tokens") || has("authorization");
        if (!has_credential && !source.insecure) {
            std::string others;
            if (takes(forge, "signing_token")) others += " or a `signing_token`";
            if (takes(forge, "authorization")) others += " or an `authorization` value";
            error(name_node,
                  fmt::format("{}: no {} configured; set one (a reference such as "
                              "${{env:NAME}}){} or say `insecure: true` to accept unsigned "
                              "deliveries",
                              context, forge.secret_key, others));
        }
        // A forge that is told how its sender signs (generic) needs that with a secret, and a
        // secret with it.
        if (takes(forge, "signature")) {
            if (has_secret && !body["signature"]) {
                error(name_node, fmt::format("{}: a {} source with a secret needs `signature:` "
                                             "(at least its `header:`)",
                                             context, to_string(forge.provider)));
            }
            if (!has_secret && body["signature"]) {
                error(body["signature"],
                      fmt::format("{}: `signature:` needs a `secret` to verify with", context));
            }
        }
        if (source.signature && !source.signature->header.empty()) {
            const auto& header = source.signature->header;
            const auto clash = [&](const ValueRef& ref) {
                return ref.from == ValueRef::From::header && iequals(ref.name, header);
            };
            if (clash(source.event_name) || clash(source.delivery_id) ||
                iequals(source.signature->timestamp_header, header)) {
                error(body["signature"], fmt::format("{}: the signature header {} is also named "
                                                     "as the event, delivery id or timestamp "
                                                     "header",
                                                     context, header));
            }
        }
    }

    // A status' context: sent as written, so that a forge can require it by name; a template
    // in it would be posted literally.
    void status_context(const YAML::Node& node, const std::string& context, std::string& out) {
        if (!scalar(node, "context", out)) return;
        if (out.find("{{") != std::string::npos) {
            error(node, fmt::format("{} '{}' is sent as written, not rendered: a status' name "
                                    "stays the same from push to push, so that a forge can "
                                    "require it. Leave the template out",
                                    context, out));
        }
    }

    // `status:` of a source: commit statuses back to the forge.
    void status(const YAML::Node& node, const std::string& context, SourceConfig& source) {
        if (!expect_map(node, context)) return;
        check_keys(node, k_status_keys, context);
        StatusConfig st;
        st.where = location_of(node);
        if (source.provider == Provider::generic) {
            error(node, fmt::format("{}: a generic source has no forge to post commit statuses "
                                    "to; they are posted for github, gitlab, gitea, forgejo, "
                                    "bitbucket-cloud and bitbucket-server sources",
                                    context));
        }
        if (auto n = node["token"]; !n) {
            error(node, fmt::format("{}: `token:` is required (a reference such as "
                                    "${{env:STATUS_TOKEN}})",
                                    context));
        } else {
            st.token = secret(n, context + ".token");
        }
        if (auto n = node["context"]) status_context(n, context + ".context", st.context);
        if (auto n = node["api_url"]) {
            if (scalar(n, "api_url", st.api_url)) {
                while (st.api_url.ends_with('/')) st.api_url.pop_back();
                if (!st.api_url.starts_with("http://") && !st.api_url.starts_with("https://")) {
                    error(n, fmt::format("{}.api_url '{}' must start with http:// or https://",
                                         context, shown_url(st.api_url)));
                } else {
                    base_url(n, context + ".api_url", st.api_url + "/");
                }
            }
        }
        // Self-hosted only: no address to default to.
        if (!node["api_url"] &&
            (source.provider == Provider::gitea || source.provider == Provider::forgejo ||
             source.provider == Provider::bitbucket_server)) {
            error(node, fmt::format("{}: `api_url:` is required for a {} source ({})", context,
                                    to_string(source.provider),
                                    source.provider == Provider::bitbucket_server
                                        ? "https://HOST, with its context path if it has one"
                                        : "https://HOST/api/v1"));
        }
        if (auto n = node["ca_file"]) ca_file(n, context + ".ca_file", st.ca_file);
        if (auto n = node["max_in_flight"]) {
            positive<unsigned>(n, context + ".max_in_flight", st.max_in_flight, 1000);
        }
        if (auto n = node["connect_timeout"]) {
            positive_duration(n, context + ".connect_timeout", st.connect_timeout);
        }
        if (auto n = node["request_timeout"]) {
            positive_duration(n, context + ".request_timeout", st.request_timeout);
        }
        if (auto n = node["retry_initial"]) {
            positive_duration(n, context + ".retry_initial", st.retry_initial);
        }
        if (auto n = node["retry_max"]) positive_duration(n, context + ".retry_max", st.retry_max);
        backoff(node, context, "retry_initial", st.retry_initial, "retry_max", st.retry_max);
        if (auto n = node["max_tries"]) {
            positive<unsigned>(n, context + ".max_tries", st.max_tries, 1'000'000);
        }
        source.status = std::move(st);
    }

    // `follow:` of a Jenkins entry or a rule.
    void follow_mode(const YAML::Node& node, std::string_view context, FollowMode& out) {
        std::string text;
        if (!scalar(node, "follow", text)) return;
        if (auto mode = follow_mode_from_string(text)) {
            out = *mode;
        } else {
            error(node, fmt::format("{}.follow: '{}' is not one of none, started, finished{}",
                                    context, text, did_you_mean(text, k_follow_modes)));
        }
    }

    void jenkins(const YAML::Node& node) {
        if (!expect_map(node, "jenkins")) return;
        for (const auto& item : node) {
            JenkinsConfig j;
            j.name = item.first.as<std::string>();
            j.where = location_of(item.first);
            const auto& body = item.second;
            const auto context = fmt::format("jenkins '{}'", j.name);
            if (!expect_map(body, context)) continue;
            check_keys(body, k_jenkins_keys, context);
            if (auto n = body["url"]; !n) {
                error(item.first, fmt::format("{}: `url:` is required", context));
            } else if (scalar(n, "url", j.url)) {
                if (!j.url.starts_with("http://") && !j.url.starts_with("https://")) {
                    error(n, fmt::format("{}: url '{}' must start with http:// or https://",
                                         context, shown_url(j.url)));
                }
                if (!j.url.ends_with('/')) j.url += '/';
                if (auto fix = jenkins_root_of_job_url(j.url)) {
                    error(n, fmt::format("{}: url '{}' points at a job, not at Jenkins: write url "
                                         "'{}' and put the job path '{}' into the rules' "
                                         "trigger `job:`",
                                         context, shown_url(j.url), shown_url(fix->first),
                                         fix->second));
                } else if (j.url.starts_with("http://") || j.url.starts_with("https://")) {
                    base_url(n, context + ": url", j.url);
                }
            }
            if (auto n = body["user"]) plain(n, context + ".user", j.user);
            if (auto n = body["api_token"]) j.api_token = secret(n, context + ".api_token");
            if (auto n = body["ca_file"]) ca_file(n, context + ".ca_file", j.ca_file);
            if (auto n = body["connect_timeout"]) {
                positive_duration(n, context + ".connect_timeout", j.connect_timeout);
            }
            if (auto n = body["io_timeout"])
                positive_duration(n, context + ".io_timeout", j.io_timeout);
            if (auto n = body["request_timeout"]) {
                positive_duration(n, context + ".request_timeout", j.request_timeout);
            }
            if (auto n = body["max_in_flight"]) {
                positive<unsigned>(n, context + ".max_in_flight", j.max_in_flight, 1000);
            }
            if (auto n = body["retry"]) j.retry = retry(n, context + ".retry", j.retry);
            if (auto n = body["probe_initial"]) {
                positive_duration(n, context + ".probe_initial", j.probe_initial);
            }
            if (auto n = body["probe_max"])
                positive_duration(n, context + ".probe_max", j.probe_max);
            if (auto n = body["follow"]) follow_mode(n, context, j.follow);
            if (auto n = body["follow_max_in_flight"]) {
                positive<unsigned>(n, context + ".follow_max_in_flight", j.follow_max_in_flight,
                                   1000);
            }
            if (auto n = body["follow_poll_initial"]) {
                positive_duration(n, context + ".follow_poll_initial", j.follow_poll_initial);
            }
            if (auto n = body["follow_poll_max"]) {
                positive_duration(n, context + ".follow_poll_max", j.follow_poll_max);
            }
            // (follow_poll_initial may be above follow_poll_max: the first read waits out a
            // long quiet period, later ones come at most follow_poll_max apart.)
            backoff(body, context, "probe_initial", j.probe_initial, "probe_max", j.probe_max);
            if (auto n = body["follow_max_age"]) {
                positive_duration(n, context + ".follow_max_age", j.follow_max_age);
            }
            if (auto n = body["scan_interval"]) {
                duration(n, context + ".scan_interval", j.scan_interval);
            }
            if (auto n = body["branch_wait"]) {
                positive_duration(n, context + ".branch_wait", j.branch_wait);
            }
            if (auto n = body["branch_poll"]) {
                duration(n, context + ".branch_poll", j.branch_poll);
                if (j.branch_poll < std::chrono::milliseconds(100)) {
                    error(n, fmt::format("{}.branch_poll: at least 100ms", context));
                }
            }
            if (!j.user.empty() && !body["api_token"]) {
                error(item.first, fmt::format("{}: `user` needs an `api_token`", context));
            }
            if (body["api_token"] && j.user.empty()) {
                error(item.first, fmt::format("{}: `api_token` needs a `user`", context));
            }
            config_->jenkins.push_back(std::move(j));
        }
    }

    // A `when:` map: each key is a field condition or all/any/not.
    ConditionSpec conditions(const YAML::Node& node, std::string_view context) {
        ConditionSpec all;
        all.kind = ConditionSpec::Kind::all;
        all.where = location_of(node);
        if (node.IsNull()) return all;
        if (!expect_map(node, context)) return all;
        for (const auto& item : node) {
            const auto key = item.first.as<std::string>();
            const auto& value = item.second;
            ConditionSpec c;
            c.where = location_of(item.first);
            if (key == "all" || key == "any") {
                c.kind = key == "all" ? ConditionSpec::Kind::all : ConditionSpec::Kind::any;
                if (!value.IsSequence() || value.size() == 0) {
                    error(value, fmt::format("{}.{} must be a non-empty list of condition maps",
                                             context, key));
                    continue;
                }
                for (const auto& child : value) {
                    c.children.push_back(conditions(child, fmt::format("{}.{}", context, key)));
                }
            } else if (key == "not") {
                c.kind = ConditionSpec::Kind::not_;
                c.children.push_back(conditions(value, fmt::format("{}.not", context)));
            } else {
                c.kind = ConditionSpec::Kind::field;
                c.field = key;
                auto add = [&](const YAML::Node& p) {
                    if (!p.IsScalar()) {
                        error(p, fmt::format("{}.{}: each value must be a single pattern, not {}",
                                             context, key, describe(p)));
                        return;
                    }
                    c.patterns.push_back({p.Scalar(), content_location(p)});
                };
                if (value.IsSequence()) {
                    if (value.size() == 0) {
                        error(value, fmt::format("{}.{} is an empty list", context, key));
                    }
                    for (const auto& p : value) add(p);
                } else {
                    add(value);
                }
            }
            all.children.push_back(std::move(c));
        }
        return all;
    }

    TemplateSpec template_spec(const YAML::Node& node, std::string_view what) {
        TemplateSpec t;
        t.where = content_location(node);
        scalar(node, what, t.text);
        return t;
    }

    void trigger(const YAML::Node& node, RuleSpec& rule, std::string_view context) {
        if (!expect_map(node, context)) return;
        check_keys(node, k_trigger_keys, context);
        TriggerSpec t;
        if (auto n = node["jenkins"]; !n) {
            error(node, fmt::format("{}: `jenkins:` is required", context));
        } else {
            scalar(n, "jenkins", t.jenkins);
            t.jenkins_where = location_of(n);
        }
        // What to build: a job, a multibranch project's branch job, or only a scan.
        const int forms =
            (node["job"] ? 1 : 0) + (node["multibranch"] ? 1 : 0) + (node["scan"] ? 1 : 0);
        if (forms == 0) {
            error(node, fmt::format("{}: `job:` is required (or `multibranch:` with `branch:`, "
                                    "or `scan:`)",
                                    context));
        } else if (forms > 1) {
            error(node, fmt::format("{}: give one of `job:`, `multibranch:` (with `branch:`) "
                                    "and `scan:`",
                                    context));
        } else if (auto n = node["job"]) {
            t.job = template_spec(n, "job");
        } else if (auto n = node["multibranch"]) {
            t.job = template_spec(n, "multibranch");
            t.multibranch = true;
        } else if (auto n = node["scan"]) {
            t.job = template_spec(n, "scan");
            t.scan = true;
        }
        if (auto n = node["branch"]) {
            if (!t.multibranch) {
                error(n,
                      fmt::format("{}: `branch:` goes with `multibranch:` (the project)", context));
            } else {
                t.branch = template_spec(n, "branch");
            }
        } else if (t.multibranch) {
            error(node, fmt::format("{}: `multibranch:` needs `branch:` (e.g. branch: "
                                    "\"{{{{ branch }}}}\")",
                                    context));
        }
        if (t.scan && node["parameters"]) {
            error(node["parameters"],
                  fmt::format("{}: a `scan:` trigger builds nothing and takes no `parameters:`",
                              context));
        }
        if (t.scan && node["token"]) {
            error(node["token"],
                  fmt::format("{}: a `scan:` trigger takes no job `token:` (a scan needs the "
                              "Jenkins entry's user and api_token)",
                              context));
        }
        if (auto n = node["parameters"]) {
            if (expect_map(n, fmt::format("{}.parameters", context))) {
                for (const auto& p : n) {
                    t.parameters.emplace_back(p.first.as<std::string>(),
                                              template_spec(p.second, "parameter"));
                }
            }
        }
        if (auto n = node["token"]) t.token = secret(n, fmt::format("{}.token", context));
        rule.triggers.push_back(std::move(t));
    }

    void rules(const YAML::Node& node) {
        if (!node.IsSequence()) {
            error(node, fmt::format("rules must be a list, not {}", describe(node)));
            return;
        }
        std::size_t index = 0;
        for (const auto& item : node) {
            ++index;
            RuleSpec rule;
            rule.where = location_of(item);
            if (!expect_map(item, fmt::format("rule #{}", index))) continue;
            if (auto n = item["name"]) {
                scalar(n, "name", rule.name);
            } else {
                error(item, fmt::format("rule #{}: `name:` is required", index));
            }
            const auto context = rule.name.empty() ? fmt::format("rule #{}", index)
                                                   : fmt::format("rule '{}'", rule.name);
            check_keys(item, k_rule_keys, context);
            if (auto n = item["when"]) {
                rule.when = conditions(n, "when");
            } else {
                rule.when.where = rule.where;
            }
            if (auto n = item["stop"]) boolean(n, "stop", rule.stop);
            // Defaults are filled from the rule's Jenkins at dispatch time; here only the keys
            // given are recorded, on top of the built-in defaults.
            if (auto n = item["retry"]) rule.retry = retry(n, context + ".retry", RetryPolicy{});
            if (auto n = item["follow"]) {
                FollowMode mode = FollowMode::finished;
                follow_mode(n, context, mode);
                rule.follow = mode;
            }
            if (auto n = item["status"]) {
                if (n.IsMap()) {
                    check_keys(n, k_rule_status_keys, context + ".status");
                    rule.status_enabled = true;
                    if (auto c = n["context"]) {
                        status_context(c, context + ".status.context", rule.status_context);
                    }
                } else {
                    bool enabled = true;
                    boolean(n, "status", enabled);
                    rule.status_enabled = enabled;
                }
            }
            if (auto n = item["coalesce"]) rule.coalesce = template_spec(n, "coalesce");
            if (auto n = item["cancel_superseded"]) {
                boolean(n, "cancel_superseded", rule.cancel_superseded);
                if (rule.cancel_superseded && !rule.coalesce) {
                    error(n, fmt::format("{}: `cancel_superseded:` needs `coalesce:` (the key "
                                         "that says which builds supersede which)",
                                         context));
                }
            }
            if (auto n = item["trigger"]; !n) {
                error(item, fmt::format("{}: `trigger:` is required", context));
            } else if (n.IsSequence()) {
                if (n.size() == 0) error(n, fmt::format("{}: trigger list is empty", context));
                for (const auto& t : n) trigger(t, rule, fmt::format("{}.trigger", context));
            } else {
                trigger(n, rule, fmt::format("{}.trigger", context));
            }
            config_->rules.push_back(std::move(rule));
        }
    }

    const LoadOptions& options_;
    std::shared_ptr<Config> config_;
    std::vector<ConfigError> errors_;
};

}  // namespace

std::span<const KeyTable> known_keys() noexcept {
    static const std::vector<KeyTable> tables = [] {
        std::vector<KeyTable> out = {
            {"", "", k_top_keys},
            {"log", "", k_log_keys},
            {"server", "", k_server_keys},
            {"server.tls", "", k_tls_keys},
            {"store", "", k_store_keys},
            {"store.postgres", "", k_postgres_keys},
            {"admin", "", k_admin_keys},
            {"dispatch", "", k_dispatch_keys},
            {"sources.*", "", k_common_source_keys},
            {"sources.*.status", "", k_status_keys},
            {"sources.*.signature", "", k_signature_keys},
            {"jenkins.*", "", k_jenkins_keys},
            {"jenkins.*.retry", "", k_retry_keys},
            {"rules[]", "", k_rule_keys},
            {"rules[].retry", "", k_retry_keys},
            {"rules[].status", "", k_rule_status_keys},
            {"rules[].trigger", "", k_trigger_keys},
        };
        for (const auto* forge : ingest::forges()) {
            out.push_back({"sources.*", to_string(forge->provider), forge->config_keys});
        }
        return out;
    }();
    return tables;
}

std::span<const ValueTable> known_values() noexcept {
    static const std::vector<std::string_view> provider_names = [] {
        std::vector<std::string_view> out;
        for (const auto p : providers()) out.push_back(to_string(p));
        return out;
    }();
    static const std::vector<ValueTable> tables = {
        {"sources.*", "provider", provider_names},
        {"jenkins.*", "follow", k_follow_modes},
        {"rules[]", "follow", k_follow_modes},
        {"log", "level", k_log_levels},
        {"log", "format", k_log_formats},
        {"server", "forwarded_header", k_forwarded_headers},
        {"store", "backend", k_store_backends},
        {"sources.*.signature", "algorithm", k_signature_algorithms},
        {"sources.*.signature", "encoding", k_signature_encodings},
        {"sources.*.signature", "content", k_signed_placeholders},
    };
    return tables;
}

LoadResult load_string(std::string_view yaml, const std::string& file_name,
                       const LoadOptions& options) {
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
        LoadResult result;
        result.errors.push_back(
            {file_name, {e.mark.line + 1, e.mark.column + 1}, "YAML syntax: " + e.msg});
        return result;
    }
    try {
        return Loader(file_name, options).run(root);
    } catch (const YAML::Exception& e) {
        // yaml-cpp throws on malformed nodes (e.g. a map key that is itself a map).
        LoadResult result;
        result.errors.push_back(
            {file_name, {e.mark.line + 1, e.mark.column + 1}, "invalid structure: " + e.msg});
        return result;
    }
}

LoadResult load_file(const std::string& path, const LoadOptions& options) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        LoadResult result;
        result.errors.push_back({path, {}, fmt::format("cannot read: {}", std::strerror(errno))});
        return result;
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return load_string(buffer.str(), path, options);
}

}  // namespace hookrelay::config
