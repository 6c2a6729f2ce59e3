// The config tests' view of a load: every error as `file:line:column: message`.
#pragma once

#include "config/load.hpp"

#include <string>
#include <vector>

namespace hookrelay::config {

inline std::vector<std::string> load_errors(const std::string& yaml,
                                            const LoadOptions& options = {}) {
    std::vector<std::string> out;
    for (const auto& e : load_string(yaml, "c.yaml", options).errors) out.push_back(to_string(e));
    return out;
}

}  // namespace hookrelay::config
