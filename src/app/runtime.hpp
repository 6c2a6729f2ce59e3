// The running configuration: parsed config plus compiled rules, immutable once built, swapped as
// a whole (shared_ptr<const Runtime>) so in-flight deliveries keep the version they started with.
#pragma once

#include <hookrelay/config.hpp>

#include "config/load.hpp"
#include "rules/rules.hpp"

#include <memory>
#include <string>
#include <vector>

namespace hookrelay::http {
struct TlsContext;
}

namespace hookrelay::app {

struct Runtime {
    std::shared_ptr<const Config> config;
    std::shared_ptr<const rules::RuleSet> rules;
    /// The webhook listener's TLS context when server.tls is set (certificate and key read and
    /// checked); null otherwise, and null when secrets were not resolved (explain).
    std::shared_ptr<const http::TlsContext> tls;
};

struct RuntimeResult {
    std::shared_ptr<const Runtime> runtime;  ///< set when errors is empty
    std::vector<ConfigError> errors;         ///< every problem, config and rules alike
};

/// When listen and admin.listen are one port of one address, or of all addresses (0.0.0.0 for
/// IPv4, [::] for both families): what that is. The daemon cannot bind both, unless systemd
/// passes the webhook socket (then `listen` does not apply). "" otherwise.
std::string listeners_clash(const Config& config);

/// Loads, validates and compiles the config at `path`, and reads the TLS certificate and key.
/// Blocking (reads files).
RuntimeResult load_runtime(const std::string& path, const config::LoadOptions& options = {});

}  // namespace hookrelay::app
