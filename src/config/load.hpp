// Loading hookrelay's YAML configuration: parse, check the shape against the schema (unknown keys
// are errors), resolve secret references. Every problem is collected with file:line:column so a
// user fixes them all in one round. Rules are compiled separately (rules::RuleSet::compile).
#pragma once

#include <hookrelay/config.hpp>

#include "secrets/resolve.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::config {

struct LoadOptions {
    /// Resolve ${env:..}/${file:..}/${credential:..}. `explain` turns this off: a dry run must
    /// work on a laptop without the production secrets; the secrets are then empty placeholders.
    bool resolve_secrets = true;
    secrets::Environment environment = secrets::Environment::process();
    /// Read the `admin:` section only (the admin commands: the rest of the file may hold a
    /// mistake made since the running daemon loaded it, which must not stop a probe).
    bool admin_only = false;
};

struct LoadResult {
    /// Set whenever the YAML parsed, even with errors, so later stages (rule compilation) can
    /// report their problems in the same round. Use it to run only when errors is empty.
    std::shared_ptr<Config> config;
    std::vector<ConfigError> errors;
};

/// Reads and validates the file at `path`.
LoadResult load_file(const std::string& path, const LoadOptions& options = {});

/// Validates YAML text; `file_name` is used in error messages.
LoadResult load_string(std::string_view yaml, const std::string& file_name,
                       const LoadOptions& options = {});

/// Parses "250ms", "10s", "5m", "2h", "1d" (a unit is required). nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// Parses "1048576", "512KiB", "25MiB", "1GiB" (also KB/MB/GB as powers of 1000). nullopt when
/// malformed.
std::optional<std::size_t> parse_size(std::string_view text);

}  // namespace hookrelay::config
