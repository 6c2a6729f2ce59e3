// The running configuration: parsed config plus compiled rules, immutable once built, swapped as
// a whole (shared_ptr<const Runtime>) so in-flight deliveries keep the version they started with.
#pragma once

#include <hookrelay/config.hpp>

#include "config/load.hpp"
#include "rules/rules.hpp"

#include <memory>
#include <string>
#include <vector>

namespace hookrelay::app {

struct Runtime {
    std::shared_ptr<const Config> config;
    std::shared_ptr<const rules::RuleSet> rules;
};

struct RuntimeResult {
    std::shared_ptr<const Runtime> runtime;  ///< set when errors is empty
    std::vector<ConfigError> errors;         ///< every problem, config and rules alike
};

/// Loads, validates and compiles the config at `path`. Blocking (reads files).
RuntimeResult load_runtime(const std::string& path, const config::LoadOptions& options = {});

}  // namespace hookrelay::app
