// HTTP request headers as ingest sees them: no dependency on the HTTP library.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hookrelay {

/// An ordered list of header fields with case-insensitive lookup. Small (a webhook has ~10-20
/// headers), so lookups are linear.
class HeaderMap {
  public:
    HeaderMap() = default;
    HeaderMap(std::initializer_list<std::pair<std::string, std::string>> fields)
        : fields_(fields) {}

    void add(std::string name, std::string value) {
        fields_.emplace_back(std::move(name), std::move(value));
    }

    /// The first field named `name` (ASCII case-insensitive), or nullopt.
    [[nodiscard]] std::optional<std::string_view> find(std::string_view name) const noexcept;

    [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& fields() const noexcept {
        return fields_;
    }

  private:
    std::vector<std::pair<std::string, std::string>> fields_;
};

/// ASCII case-insensitive equality.
bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace hookrelay
