#include "app/runtime.hpp"

namespace hookrelay::app {

RuntimeResult load_runtime(const std::string& path, const config::LoadOptions& options) {
    RuntimeResult out;
    auto loaded = config::load_file(path, options);
    out.errors = std::move(loaded.errors);
    if (!loaded.config) return out;
    // Compile the rules even when the config had errors, so every problem shows in one round.
    auto rules = rules::RuleSet::compile(*loaded.config, out.errors);
    if (!out.errors.empty()) return out;
    auto runtime = std::make_shared<Runtime>();
    runtime->config = std::move(loaded.config);
    runtime->rules = std::move(rules);
    out.runtime = std::move(runtime);
    return out;
}

}  // namespace hookrelay::app
