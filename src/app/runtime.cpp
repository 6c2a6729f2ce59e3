#include "app/runtime.hpp"

#include "http/server.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace hookrelay::app {

namespace {

// A PEM item from a file path or a secret reference; nullopt with `why` set on failure.
std::optional<Secret> read_pem(const std::string& where, const config::LoadOptions& options,
                               std::string& why) {
    if (secrets::is_reference(where)) {
        auto secret = secrets::resolve(where, options.environment, &why);
        if (!secret) return std::nullopt;
        return *secret;
    }
    std::ifstream in(where, std::ios::binary);
    if (!in) {
        why = fmt::format("cannot read {}: {}", where, std::strerror(errno));
        return std::nullopt;
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return Secret(buffer.str());
}

void load_tls(const Config& config, const config::LoadOptions& options, Runtime& runtime,
              std::vector<ConfigError>& errors) {
    const auto& tls = *config.server.tls;
    // A certificate or key left out (or empty) is the loader's error already.
    if (tls.certificate.empty() || tls.key.empty()) return;
    std::string why;
    auto certificate = read_pem(tls.certificate, options, why);
    if (!certificate) {
        errors.push_back({config.file, tls.certificate_where, "server.tls.certificate: " + why});
    }
    auto key = read_pem(tls.key, options, why);
    if (!key) errors.push_back({config.file, tls.key_where, "server.tls.key: " + why});
    if (!certificate || !key) return;
    http::TlsCredentials credentials{std::string(certificate->reveal()), *key};
    runtime.tls = http::make_tls_context(credentials, &why);
    if (!runtime.tls) errors.push_back({config.file, tls.certificate_where, "server.tls: " + why});
}

}  // namespace

std::string listeners_clash(const Config& config) {
    const auto& s = config.server;
    const auto& a = config.admin;
    if (!a.enabled || a.port == 0 || a.port != s.port) return {};
    const auto v6 = [](const std::string& host) { return host.find(':') != std::string::npos; };
    // "::" takes both families (Linux's default, bindv6only 0); 0.0.0.0 every IPv4 address.
    const auto covers = [&](const std::string& all, const std::string& other) {
        return all == "::" || (all == "0.0.0.0" && !v6(other));
    };
    if (a.host != s.host && !covers(a.host, s.host) && !covers(s.host, a.host)) return {};
    const auto shown = [&](const std::string& host, std::uint16_t port) {
        return v6(host) ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
    };
    return fmt::format(
        "admin.listen ({}) and listen ({}) are the same port: give the admin API a "
        "port of its own (its default is 127.0.0.1:9090)",
        shown(a.host, a.port), shown(s.host, s.port));
}

RuntimeResult load_runtime(const std::string& path, const config::LoadOptions& options) {
    RuntimeResult out;
    auto loaded = config::load_file(path, options);
    out.errors = std::move(loaded.errors);
    if (!loaded.config) return out;
    // Compile the rules even when the config had errors, so every problem shows in one round.
    auto rules = rules::RuleSet::compile(*loaded.config, out.errors);
    auto runtime = std::make_shared<Runtime>();
    if (loaded.config->server.tls && options.resolve_secrets) {
        load_tls(*loaded.config, options, *runtime, out.errors);
    }
    if (!out.errors.empty()) return out;
    runtime->config = std::move(loaded.config);
    runtime->rules = std::move(rules);
    out.runtime = std::move(runtime);
    return out;
}

}  // namespace hookrelay::app
