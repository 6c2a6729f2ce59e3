// The YAML config loader with secret resolution off (as `explain` runs it), then rule
// compilation; a config that compiles has its rules evaluated against the sample events.
// Checks: every error carries a message; a config without errors compiles only when its rules
// are valid, and a compiled rule set decides something for every rule.
#include "config/load.hpp"
#include "rules/rules.hpp"
#include "sample_events.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace hookrelay;
    const std::string_view yaml(reinterpret_cast<const char*>(data), size);
    config::LoadOptions options;
    options.resolve_secrets = false;
    auto loaded = config::load_string(yaml, "fuzz.yaml", options);
    for (const auto& error : loaded.errors) {
        if (error.message.empty()) std::abort();
        (void)to_string(error);
    }
    if (!loaded.config) return 0;
    std::vector<ConfigError> errors;
    const auto rules = rules::RuleSet::compile(*loaded.config, errors);
    if ((rules == nullptr) != !errors.empty()) std::abort();
    if (!rules) return 0;
    for (const auto& event : fuzz::sample_events()) {
        const auto decision = rules->evaluate(event);
        if (decision.rules.size() != loaded.config->rules.size()) std::abort();
    }
    return 0;
}
