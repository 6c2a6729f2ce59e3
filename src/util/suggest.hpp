// "Did you mean ...?" suggestions for config keys, fields and template variables.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hookrelay {

/// The candidate closest to `word` by edit distance, if it is close enough to be a plausible
/// typo (distance <= max(1, word.size() / 3)); empty otherwise.
std::string closest_match(std::string_view word, const std::vector<std::string_view>& candidates);

/// " (did you mean 'x'?)" or "" when nothing is close.
std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates);

}  // namespace hookrelay
