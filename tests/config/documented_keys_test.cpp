// docs/configuration.md documents every key the loader accepts (config/known_keys.hpp), where a
// reader looks for it: in the key column of a table in the section's part of the docs (`body_limit`
// under "## `server`"; `tls.key` there for the map server.tls), in the heading of a subsection
// ("### `store.postgres`"), or in a brace list in the row of the key that holds the map (`retry`:
// `{initial, max_delay, max_age}`). A key named only in passing elsewhere does not count.
#include "config/known_keys.hpp"

#include <hookrelay/event.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::config {
namespace {

constexpr std::string_view k_docs = "docs/configuration.md";

// Where the docs document each section of known_keys(): the heading of their part, and how the
// keys are written there (`prefix` + key: the top level's table writes `log.level`).
struct Place {
    std::string_view section;
    std::string_view heading;
    std::string_view prefix;
};

constexpr Place k_places[] = {
    {"", "## Top level", ""},
    {"log", "## Top level", "log."},
    {"admin", "## Top level", "admin."},
    {"server", "## `server`", ""},
    {"server.tls", "## `server`", "tls."},
    {"store", "## `store`", ""},
    {"store.postgres", "### `store.postgres`", ""},
    {"dispatch", "## `dispatch`", ""},
    {"sources.*", "## `sources`", ""},
    {"sources.*.status", "### Commit statuses", ""},
    {"sources.*.signature", "### Generic sources", ""},
    {"jenkins.*", "## `jenkins`", ""},
    {"jenkins.*.retry", "## `jenkins`", "retry."},
    {"rules[]", "## `rules`", ""},
    {"rules[].retry", "## `rules`", "retry."},
    {"rules[].status", "## `rules`", "status."},
    {"rules[].trigger", "### Triggers", ""},
};

const Place* place_of(std::string_view section) {
    const auto it = std::find_if(std::begin(k_places), std::end(k_places),
                                 [&](const Place& p) { return p.section == section; });
    return it == std::end(k_places) ? nullptr : it;
}

std::string describe(std::string_view section) {
    return section.empty() ? std::string("the top level") : std::string(section);
}

std::vector<std::string> read_docs() {
    std::ifstream in(std::string(HOOKRELAY_SOURCE_DIR) + "/" + std::string(k_docs));
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// "## `server`" is 2; a line that is no heading 0.
std::size_t heading_level(std::string_view line) {
    const auto hashes = line.find_first_not_of('#');
    if (hashes == 0 || hashes > 6 || hashes == std::string_view::npos || line[hashes] != ' ') {
        return 0;
    }
    return hashes;
}

// The texts between backticks.
std::vector<std::string> code_spans(std::string_view text) {
    std::vector<std::string> out;
    for (auto open = text.find('`'); open != std::string_view::npos;) {
        const auto close = text.find('`', open + 1);
        if (close == std::string_view::npos) break;
        out.emplace_back(text.substr(open + 1, close - open - 1));
        open = text.find('`', close + 1);
    }
    return out;
}

std::string trimmed(std::string_view text) {
    const auto first = text.find_first_not_of(' ');
    if (first == std::string_view::npos) return {};
    return std::string(text.substr(first, text.find_last_not_of(' ') - first + 1));
}

// The cells of a table row; a `|` inside backticks or escaped (`\|`) is part of its cell.
std::vector<std::string> cells_of(std::string_view row) {
    std::vector<std::string> cells;
    std::string cell;
    bool code = false;
    for (std::size_t i = 1; i < row.size(); ++i) {
        const char c = row[i];
        if (c == '`') code = !code;
        if (c == '|' && !code && row[i - 1] != '\\') {
            cells.push_back(trimmed(cell));
            cell.clear();
        } else {
            cell += c;
        }
    }
    return cells;
}

// The names in a key column: `pull_request.number`, `.title` names pull_request.title.
std::vector<std::string> names_in(std::string_view cell) {
    std::vector<std::string> names;
    std::string parent;
    for (auto span : code_spans(cell)) {
        if (span.starts_with('.') && !parent.empty()) span = parent + span.substr(1);
        if (const auto dot = span.rfind('.'); dot != std::string::npos) {
            parent = span.substr(0, dot + 1);
        }
        names.push_back(std::move(span));
    }
    return names;
}

// The keys of a brace list, `{initial, max_delay, max_age}` or `{context: "ci/app"}`; none for
// a template (`{{ branch }}`) or a list of values (`{1s, 5m, 24h}`).
std::vector<std::string> brace_keys(std::string_view span) {
    std::vector<std::string> keys;
    if (span.size() < 2 || span.front() != '{' || span.back() != '}' || span.starts_with("{{")) {
        return keys;
    }
    const auto inner = span.substr(1, span.size() - 2);
    for (std::size_t start = 0; start <= inner.size();) {
        auto end = inner.find(',', start);
        if (end == std::string_view::npos) end = inner.size();
        const auto item = trimmed(inner.substr(start, end - start));
        const auto key = item.substr(0, item.find_first_of(": "));
        const bool is_key = !key.empty() &&
                            (std::islower(static_cast<unsigned char>(key[0])) || key[0] == '_') &&
                            std::all_of(key.begin(), key.end(), [](unsigned char c) {
                                return std::islower(c) || std::isdigit(c) || c == '_';
                            });
        if (is_key) keys.push_back(key);
        start = end + 1;
    }
    return keys;
}

// A place where the docs name a key.
struct Mention {
    std::string name;                ///< as written: "body_limit", "tls.key", "retry.initial"
    std::vector<std::string> cells;  ///< the table row naming it; empty for a heading
};

// The keys named under `heading`: in the key column of its tables and in brace lists in their
// rows (the sub-keys of the row's keys), up to its first subsection, and in the headings of its
// subsections (less the section's path: "### `store.postgres`" names postgres in store).
// nullopt when the docs have no such heading.
std::optional<std::vector<Mention>> mentions_under(const std::vector<std::string>& lines,
                                                   std::string_view heading,
                                                   std::string_view section) {
    std::optional<std::vector<Mention>> out;
    std::size_t level = 0;
    bool fenced = false;
    bool in_subsection = false;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string_view line = lines[i];
        if (line.starts_with("```")) fenced = !fenced;
        if (fenced || line.starts_with("```")) continue;
        const auto this_level = heading_level(line);
        if (!out) {
            if (line == heading) {
                out.emplace();
                level = this_level;
            }
            continue;
        }
        if (this_level > 0 && this_level <= level) break;
        if (this_level > 0) {
            in_subsection = true;
            for (auto name : code_spans(line)) {
                const auto path = std::string(section) + ".";
                if (name.starts_with(path)) name.erase(0, path.size());
                out->push_back({name, {}});
            }
            continue;
        }
        // A table's first row is its header.
        if (in_subsection || !line.starts_with('|') || i == 0 || !lines[i - 1].starts_with('|')) {
            continue;
        }
        const auto cells = cells_of(line);
        if (cells.empty() || cells[0].find_first_not_of("-: ") == std::string::npos) continue;
        const auto keys = names_in(cells[0]);
        for (const auto& key : keys) out->push_back({key, cells});
        for (const auto& cell : cells) {
            for (const auto& span : code_spans(cell)) {
                for (const auto& sub : brace_keys(span)) {
                    for (const auto& key : keys) out->push_back({key + "." + sub, cells});
                }
            }
        }
    }
    return out;
}

// `written` names `key` itself, or a key of the map `key` holds (`tls.certificate` names tls).
bool names(std::string_view written, std::string_view key) {
    return written == key ||
           (written.starts_with(key) && written.size() > key.size() && written[key.size()] == '.');
}

// For a key of a map documented in its parent's row (`retry`): where else it may go.
std::string brace_hint(std::string_view prefix, std::string_view key) {
    if (prefix.empty()) return {};
    return " (nor a brace list such as `{..., " + std::string(key) + "}` in the row of `" +
           std::string(prefix.substr(0, prefix.size() - 1)) + "`)";
}

TEST(ConfigDocs, DocumentEveryKeyTheLoaderAccepts) {
    const auto lines = read_docs();
    ASSERT_FALSE(lines.empty()) << "cannot read " << k_docs;
    ASSERT_FALSE(known_keys().empty());
    for (const auto& table : known_keys()) {
        const auto* place = place_of(table.section);
        if (place == nullptr) {
            ADD_FAILURE() << "the loader checks the keys of " << describe(table.section)
                          << ", which k_places does not place in " << k_docs
                          << ": add the heading that documents them";
            continue;
        }
        const auto mentions = mentions_under(lines, place->heading, table.section);
        if (!mentions) {
            ADD_FAILURE() << k_docs << " has no heading \"" << place->heading << "\", where "
                          << describe(table.section) << " is documented";
            continue;
        }
        for (const auto key : table.keys) {
            const auto written = std::string(place->prefix) + std::string(key);
            const bool documented =
                std::any_of(mentions->begin(), mentions->end(),
                            [&](const Mention& m) { return names(m.name, written); });
            EXPECT_TRUE(documented)
                << describe(table.section) << ": the key '" << key << "'"
                << (table.forge.empty() ? "" : " (of " + std::string(table.forge) + " sources)")
                << " is not documented in " << k_docs << ": under \"" << place->heading
                << "\", no table's key column or subsection heading names `" << written << "`"
                << brace_hint(place->prefix, key);
        }
    }
}

// The sources table's "applies to" column names every forge that takes a key: "all" for the
// keys every source takes.
TEST(ConfigDocs, NameTheForgesThatTakeEachSourceKey) {
    const auto lines = read_docs();
    const auto* place = place_of("sources.*");
    ASSERT_NE(place, nullptr);
    const auto mentions = mentions_under(lines, place->heading, "sources.*");
    ASSERT_TRUE(mentions) << k_docs << " has no heading \"" << place->heading << "\"";
    for (const auto& table : known_keys()) {
        if (table.section != "sources.*") continue;
        for (const auto key : table.keys) {
            const auto row = std::find_if(mentions->begin(), mentions->end(), [&](const auto& m) {
                return m.name == key && m.cells.size() >= 2;
            });
            if (row == mentions->end()) continue;  // DocumentEveryKeyTheLoaderAccepts says so
            const auto& applies = row->cells[1];
            if (table.forge.empty()) {
                EXPECT_TRUE(applies.starts_with("all"))
                    << "sources.*: every source takes '" << key << "', but " << k_docs
                    << " says it applies to \"" << applies << "\"";
                continue;
            }
            std::vector<std::string> forges;
            for (std::size_t start = 0; start <= applies.size();) {
                auto end = applies.find(',', start);
                if (end == std::string::npos) end = applies.size();
                forges.push_back(trimmed(std::string_view(applies).substr(start, end - start)));
                start = end + 1;
            }
            EXPECT_TRUE(std::find(forges.begin(), forges.end(), table.forge) != forges.end())
                << "sources.*: " << table.forge << " sources take '" << key << "', but " << k_docs
                << " says it applies to \"" << applies << "\"";
        }
    }
}

// A key with a closed set of values lists each of them, in backticks, in its row.
TEST(ConfigDocs, DocumentEveryValueOfAClosedSet) {
    const auto lines = read_docs();
    ASSERT_FALSE(known_values().empty());
    for (const auto& table : known_values()) {
        const auto* place = place_of(table.section);
        ASSERT_NE(place, nullptr) << describe(table.section);
        const auto mentions = mentions_under(lines, place->heading, table.section);
        ASSERT_TRUE(mentions) << k_docs << " has no heading \"" << place->heading << "\"";
        const auto written = std::string(place->prefix) + std::string(table.key);
        for (const auto value : table.values) {
            const bool documented =
                std::any_of(mentions->begin(), mentions->end(), [&](const Mention& m) {
                    if (m.name != written) return false;
                    return std::any_of(m.cells.begin(), m.cells.end(), [&](const auto& cell) {
                        const auto spans = code_spans(cell);
                        return std::find(spans.begin(), spans.end(), value) != spans.end();
                    });
                });
            EXPECT_TRUE(documented) << describe(table.section) << ": the key '" << table.key
                                    << "' takes '" << value << "', which its row in " << k_docs
                                    << " (under \"" << place->heading << "\") does not name";
        }
    }
}

// The keys of a rule's `when:` are the event's fields (besides all, any, not and paths, which
// "Special keys" lists).
TEST(ConfigDocs, DocumentEveryConditionField) {
    const auto lines = read_docs();
    constexpr std::string_view heading = "### Event fields";
    const auto mentions = mentions_under(lines, heading, "");
    ASSERT_TRUE(mentions) << k_docs << " has no heading \"" << heading << "\"";
    for (const auto field : event_field_names()) {
        const bool documented = std::any_of(mentions->begin(), mentions->end(),
                                            [&](const Mention& m) { return m.name == field; });
        EXPECT_TRUE(documented) << "the event field '" << field << "' (a condition key) is not in "
                                << "the field column under \"" << heading << "\" in " << k_docs;
    }
}

}  // namespace
}  // namespace hookrelay::config
