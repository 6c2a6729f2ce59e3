#include "app/discovery.hpp"

#include <cstdlib>
#include <filesystem>

namespace hookrelay::app {

std::optional<std::string> discover_config(const std::string& explicit_path) {
    if (!explicit_path.empty()) return explicit_path;
    if (const char* env = std::getenv("HOOKRELAY_CONFIG"); env != nullptr && *env != 0) {
        return std::string(env);
    }
    std::error_code ec;
    if (std::filesystem::exists(k_system_config, ec)) return std::string(k_system_config);
    return std::nullopt;
}

std::string no_config_message() {
    return std::string("no config: pass --config FILE or set $HOOKRELAY_CONFIG (") +
           k_system_config + " does not exist)";
}

}  // namespace hookrelay::app
