#include "jenkins/encoding.hpp"

#include "jenkins/client.hpp"

namespace hookrelay::jenkins {

std::string name_encode(std::string_view name) {
    if (name.empty()) return "%00";
    if (name == ".") return "%2E";
    if (name == "..") return "%2E.";
    std::string out;
    out.reserve(name.size() + 8);
    for (char c : name) {
        switch (c) {
            case '#':
                out += "%23";
                break;
            case '%':
                out += "%25";
                break;
            case '/':
                out += "%2F";
                break;
            case '?':
                out += "%3F";
                break;
            case '[':
                out += "%5B";
                break;
            case ']':
                out += "%5D";
                break;
            case '\\':
                out += "%5C";
                break;
            default:
                out += c;
                break;
        }
    }
    return out;
}

std::string job_path(const std::vector<std::string>& job) {
    std::string out;
    for (const auto& segment : job) {
        out += "job/";
        out += percent_encode(name_encode(segment));
        out += '/';
    }
    return out;
}

JenkinsOutcome::Kind classify(int http_status) noexcept {
    using Kind = JenkinsOutcome::Kind;
    const int s = http_status;
    if (s == 201) return Kind::queued;
    if (s == 303) return Kind::merged;
    if (s == 302) return Kind::refused;
    if (s == 429) return Kind::throttled;
    if (s == 401) return Kind::auth_failed;
    if (s == 500) return Kind::server_error;
    if (s == 502 || s == 503 || s == 504) return Kind::unavailable;
    if (s == 0 || (s >= 100 && s < 200)) return Kind::unavailable;
    if (s >= 200 && s < 500) return Kind::permanent;
    if (s == 501 || s == 505) return Kind::permanent;
    if ((s >= 520 && s <= 524) || s == 598 || s == 599) return Kind::unavailable;
    if (s >= 500 && s < 600) return Kind::server_error;
    return Kind::permanent;
}

}  // namespace hookrelay::jenkins

namespace hookrelay {

std::string_view to_string(JenkinsOutcome::Kind kind) noexcept {
    switch (kind) {
        case JenkinsOutcome::Kind::queued:
            return "queued";
        case JenkinsOutcome::Kind::merged:
            return "merged";
        case JenkinsOutcome::Kind::refused:
            return "refused";
        case JenkinsOutcome::Kind::permanent:
            return "permanent";
        case JenkinsOutcome::Kind::server_error:
            return "server_error";
        case JenkinsOutcome::Kind::throttled:
            return "throttled";
        case JenkinsOutcome::Kind::unavailable:
            return "unavailable";
        case JenkinsOutcome::Kind::auth_failed:
            return "auth_failed";
    }
    return "unavailable";
}

}  // namespace hookrelay
