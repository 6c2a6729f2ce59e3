// Secret references: a secret is never written inline in the config, only referenced:
//   ${env:NAME}         environment variable NAME
//   ${file:PATH}        contents of PATH (one trailing newline stripped)
//   ${credential:NAME}  $CREDENTIALS_DIRECTORY/NAME (systemd LoadCredential=)
#pragma once

#include <hookrelay/error.hpp>
#include <hookrelay/secret.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace hookrelay::secrets {

/// Where references are looked up; tests substitute their own environment.
struct Environment {
    /// Returns the variable's value, or nullopt when unset. Defaults to ::getenv.
    std::function<std::optional<std::string>(const std::string&)> getenv;

    /// The process environment.
    static Environment process();
};

/// Whether `text` has the shape of a reference: "${kind:name}".
bool is_reference(std::string_view text) noexcept;

/// Resolves one reference. On failure returns errc::secret_unresolved and sets *why to a reason
/// that names the reference but never any secret value, e.g. "environment variable
/// GITHUB_SECRET is not set", "cannot read /run/secrets/x: No such file or directory",
/// "${file:/x} is empty". A text that is not a reference fails too ("secrets must be references
/// such as ${env:NAME}, never written inline").
result<Secret> resolve(std::string_view reference, const Environment& env,
                       std::string* why = nullptr);

}  // namespace hookrelay::secrets
