#include <hookrelay/config.hpp>

#include <fmt/format.h>

namespace hookrelay {

std::string to_string(const ConfigError& error) {
    if (error.where.line > 0) {
        return fmt::format("{}:{}:{}: {}", error.file, error.where.line, error.where.column,
                           error.message);
    }
    return fmt::format("{}: {}", error.file, error.message);
}

const SourceConfig* Config::find_source(std::string_view name) const noexcept {
    for (const auto& source : sources) {
        if (source.name == name) return &source;
    }
    return nullptr;
}

const JenkinsConfig* Config::find_jenkins(std::string_view name) const noexcept {
    for (const auto& j : jenkins) {
        if (j.name == name) return &j;
    }
    return nullptr;
}

}  // namespace hookrelay
