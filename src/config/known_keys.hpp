// The configuration's vocabulary as the loader checks it: every map whose unknown keys are errors,
// with the keys it accepts there, and every key that takes one of a closed set of values. The
// tables are the loader's own (defined in load.cpp), so whatever holds something to them, such as
// the test that docs/configuration.md documents every key, cannot drift from what `check`
// accepts. Kept apart from load.hpp, which app/runtime.hpp (and so much of app/) includes.
#pragma once

#include <span>
#include <string_view>

namespace hookrelay::config {

/// One map of the configuration and the keys the loader accepts in it.
struct KeyTable {
    /// Where the map is, as a path of keys: "" (the top level), "server.tls", "sources.*" (`*`:
    /// a name the user chooses), "rules[].trigger" (`[]`: each item of a list).
    std::string_view section;
    /// For the keys one forge's sources take besides the common ones (ingest/forge.hpp:
    /// Forge::config_keys), the forge's provider name ("gitlab"); empty otherwise.
    std::string_view forge;
    std::span<const std::string_view> keys;
};

/// One key that takes a value from a closed set, and the set.
struct ValueTable {
    std::string_view section;  ///< as KeyTable::section
    std::string_view key;
    std::span<const std::string_view> values;
};

/// Every table the loader checks a map's keys against, each map once (a table used in several
/// places, such as the retry policy of a Jenkins entry and of a rule, once per place), the common
/// source keys followed by each forge's, in Provider order. Built at the first call; the views
/// stay valid for the life of the program. Thread-safe.
std::span<const KeyTable> known_keys() noexcept;

/// Every closed set of values the loader checks a key's value against ("log.format": auto,
/// text, json; for `signature.content`, the placeholders its text may hold). Built at the first
/// call; the views stay valid for the life of the program. Thread-safe.
std::span<const ValueTable> known_values() noexcept;

}  // namespace hookrelay::config
