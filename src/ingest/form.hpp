// application/x-www-form-urlencoded webhook bodies: `payload=<urlencoded JSON>` (GitHub, Gitea,
// Forgejo). Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hookrelay::ingest {

/// Whether `content_type` is application/x-www-form-urlencoded (any case, any parameters).
bool is_form_content_type(std::string_view content_type) noexcept;

/// The decoded value of the first `payload` field of a form body ('+' is a space), or nullopt
/// when the body is not a query string or has no such field.
std::optional<std::string> form_payload(std::string_view body);

}  // namespace hookrelay::ingest
