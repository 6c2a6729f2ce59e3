// A secret value (webhook secret, token, API token) that never prints itself.
#pragma once

#include <fmt/format.h>

#include <ostream>
#include <string>
#include <string_view>

namespace hookrelay {

/// Holds a secret's bytes. Formatting (fmt, spdlog, iostream) always yields "***"; the only way
/// to the bytes is reveal(), which call sites use for HMAC keys and Authorization headers only.
/// Copyable and immutable; safe to share between threads.
class Secret {
  public:
    Secret() = default;
    explicit Secret(std::string value) : value_(std::move(value)) {}

    /// The raw bytes. Never log, format or return the result to a client.
    [[nodiscard]] std::string_view reveal() const noexcept { return value_; }
    [[nodiscard]] bool empty() const noexcept { return value_.empty(); }

    friend std::ostream& operator<<(std::ostream& os, const Secret&) { return os << "***"; }

  private:
    std::string value_;
};

}  // namespace hookrelay

template <>
struct fmt::formatter<hookrelay::Secret> : fmt::formatter<std::string_view> {
    template <class Ctx>
    auto format(const hookrelay::Secret&, Ctx& ctx) const {
        return fmt::formatter<std::string_view>::format("***", ctx);
    }
};
