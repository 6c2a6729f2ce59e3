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

std::optional<std::vector<std::string>> literal_job(const TriggerSpec& spec) {
    const auto& text = spec.job.text;
    if (text.find("{{") != std::string::npos) return std::nullopt;
    std::vector<std::string> segments;
    std::size_t start = 0;
    while (true) {
        const auto slash = text.find('/', start);
        segments.push_back(text.substr(start, slash - start));
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    return segments;
}

std::optional<Secret> job_token(const Config& config, const TriggerRequest& request) {
    const auto job = project_of(request);
    const auto on_its_jenkins = [&](const TriggerSpec& spec) {
        return spec.jenkins == request.jenkins && spec.scan == request.scan_only &&
               spec.multibranch == (request.multibranch > 0);
    };
    for (const auto& rule : config.rules) {
        if (rule.name != request.rule) continue;
        const TriggerSpec* templated = nullptr;
        for (const auto& spec : rule.triggers) {
            if (!on_its_jenkins(spec)) continue;
            if (const auto literal = literal_job(spec)) {
                if (*literal == job) return spec.token;
            } else if (templated == nullptr) {
                templated = &spec;
            }
        }
        return templated != nullptr ? templated->token : std::nullopt;
    }
    // Its rule is gone (renamed or removed while the trigger waited): the token every rule gives
    // that job on that Jenkins, written out, else the one every templated trigger there has;
    // none when they differ.
    struct Agreed {
        bool seen = false;
        bool differ = false;
        std::optional<Secret> token;
        void add(const std::optional<Secret>& t) {
            if (!seen) {
                seen = true;
                token = t;
            } else if (t.has_value() != token.has_value() ||
                       (t && t->reveal() != token->reveal())) {
                differ = true;
            }
        }
    };
    Agreed written, templated;
    for (const auto& rule : config.rules) {
        for (const auto& spec : rule.triggers) {
            if (!on_its_jenkins(spec)) continue;
            if (const auto literal = literal_job(spec)) {
                if (*literal == job) written.add(spec.token);
            } else {
                templated.add(spec.token);
            }
        }
    }
    const Agreed& agreed = written.seen ? written : templated;
    return agreed.seen && !agreed.differ ? agreed.token : std::nullopt;
}

}  // namespace hookrelay
