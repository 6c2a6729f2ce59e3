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
    // A certificate or key the loader already found missing has its error there.
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
