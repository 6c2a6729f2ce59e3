#include "secrets/resolve.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace hookrelay::secrets {

Environment Environment::process() {
    return Environment{[](const std::string& name) -> std::optional<std::string> {
        const char* value = std::getenv(name.c_str());
        if (value == nullptr) return std::nullopt;
        return std::string(value);
    }};
}

bool is_reference(std::string_view text) noexcept {
    return text.size() > 4 && text.starts_with("${") && text.ends_with("}") &&
           text.find(':') != std::string_view::npos;
}

namespace {

result<Secret> fail(std::string* why, std::string reason) {
    if (why != nullptr) *why = std::move(reason);
    return errc::secret_unresolved;
}

result<Secret> read_file(const std::string& path, std::string_view reference, std::string* why) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return fail(why,
                    fmt::format("{}: cannot read {}: {}", reference, path, std::strerror(errno)));
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    std::string value = buffer.str();
    // Files written with `echo` end in a newline that is not part of the secret.
    if (value.ends_with("\r\n")) {
        value.resize(value.size() - 2);
    } else if (value.ends_with('\n')) {
        value.pop_back();
    }
    if (value.empty()) return fail(why, fmt::format("{}: {} is empty", reference, path));
    return Secret(std::move(value));
}

}  // namespace

result<Secret> resolve(std::string_view reference, const Environment& env, std::string* why) {
    if (!is_reference(reference)) {
        return fail(why,
                    "secrets must be references such as ${env:NAME}, ${file:PATH} or "
                    "${credential:NAME}, never written inline");
    }
    const auto inner = reference.substr(2, reference.size() - 3);
    const auto colon = inner.find(':');
    const auto kind = inner.substr(0, colon);
    const auto name = std::string(inner.substr(colon + 1));
    if (name.empty()) return fail(why, fmt::format("{}: the name is empty", reference));

    if (kind == "env") {
        auto value = env.getenv(name);
        if (!value) return fail(why, fmt::format("environment variable {} is not set", name));
        if (value->empty()) return fail(why, fmt::format("environment variable {} is empty", name));
        return Secret(std::move(*value));
    }
    if (kind == "file") return read_file(name, reference, why);
    if (kind == "credential") {
        if (name.find('/') != std::string::npos) {
            return fail(why, fmt::format("{}: a credential name cannot contain '/'", reference));
        }
        auto dir = env.getenv("CREDENTIALS_DIRECTORY");
        if (!dir || dir->empty()) {
            return fail(why, fmt::format("{}: CREDENTIALS_DIRECTORY is not set (run under systemd "
                                         "with LoadCredential={}:<path>)",
                                         reference, name));
        }
        return read_file(*dir + "/" + name, reference, why);
    }
    return fail(why, fmt::format("{}: unknown secret kind '{}' (use env, file or credential)",
                                 reference, kind));
}

}  // namespace hookrelay::secrets
