// Condition patterns: the first line of the input is a pattern as written in a rule (glob,
// "!glob", "re:<RE2>"); every following line is a value matched against it. Checks: an error
// offset lies inside the pattern; a compiled glob without wildcards matches its own text.
#include "rules/pattern.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using hookrelay::rules::Pattern;
    std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto newline = input.find('\n');
    const auto text = input.substr(0, newline);
    std::string_view values =
        newline == std::string_view::npos ? std::string_view{} : input.substr(newline + 1);

    std::string why;
    std::size_t offset = 0;
    (void)hookrelay::rules::glob_to_re2(text, &why, &offset);
    auto pattern = Pattern::compile(text, &why, &offset);
    if (!pattern) {
        if (offset > text.size() || why.empty()) std::abort();
        return 0;
    }
    const bool literal_glob = !text.starts_with('!') && !text.starts_with("re:") &&
                              text.find_first_of("*?[{") == std::string_view::npos;
    if (literal_glob && !pattern->matches(text)) std::abort();
    while (!values.empty()) {
        const auto end = values.find('\n');
        (void)pattern->matches(values.substr(0, end));
        values = end == std::string_view::npos ? std::string_view{} : values.substr(end + 1);
    }
    return 0;
}
