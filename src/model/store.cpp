#include <hookrelay/store.hpp>

namespace hookrelay {

std::string job_display_path(const std::vector<std::string>& job) {
    std::string out;
    for (const auto& segment : job) {
        if (!out.empty()) out += '/';
        for (char c : segment) {
            if (c == '/') {
                out += "%2F";
            } else {
                out += c;
            }
        }
    }
    return out;
}

}  // namespace hookrelay
