#include "ingest/json_access.hpp"

#include <algorithm>
#include <unordered_set>

namespace hookrelay::ingest::detail {

bool is_full_sha(std::string_view s) noexcept {
    if (s.size() != 40 && s.size() != 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    });
}

void split_full_name(std::string_view full_name, std::string& namespace_, std::string& name) {
    const auto slash = full_name.rfind('/');
    if (slash == std::string_view::npos) {
        namespace_.clear();
        name = std::string(full_name);
        return;
    }
    namespace_ = std::string(full_name.substr(0, slash));
    name = std::string(full_name.substr(slash + 1));
}

std::vector<std::string> collect_changed_files(JsonRef commits) {
    std::vector<std::string> files;
    // Views into the payload, which outlives this call; a push can list thousands of paths.
    std::unordered_set<std::string_view> seen;
    for (const JsonRef commit : commits.elements()) {
        for (const auto list : {"added", "modified", "removed"}) {
            for (const JsonRef path : member(commit, list).elements()) {
                const auto text = as_string_view(path);
                if (!text || text->empty()) continue;
                if (!seen.insert(*text).second) continue;
                files.emplace_back(*text);
                if (files.size() == k_max_changed_files) return files;
            }
        }
    }
    return files;
}

JsonRef find_commit(JsonRef commits, std::string_view id) {
    if (id.empty()) return {};
    for (const JsonRef commit : commits.elements()) {
        if (as_string_view(member(commit, "id")) == id) return commit;
    }
    return {};
}

}  // namespace hookrelay::ingest::detail
