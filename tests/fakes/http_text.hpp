// Text helpers the loopback fakes (fake_jenkins.cpp, fake_forge_api.cpp) share for reading
// requests (case-insensitive comparison is hookrelay::iequals, <hookrelay/headers.hpp>).
#pragma once

#include <string>
#include <string_view>

namespace hookrelay::test {

/// Percent-decodes `text` once; with `plus_is_space` (query and form components) '+' is a space.
/// A malformed escape stays as it is.
std::string percent_decode(std::string_view text, bool plus_is_space);

}  // namespace hookrelay::test
