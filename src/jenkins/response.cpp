#include "jenkins/response.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>

namespace hookrelay::jenkins {

std::string resolve_location(const BaseUrl& base, std::string_view location) {
    if (location.empty()) return {};
    if (location.find("://") != std::string_view::npos) return std::string(location);
    if (location.front() == '/') return base.origin + std::string(location);
    return base.origin + base.path + std::string(location);
}

std::optional<Crumb> parse_crumb(std::string_view body,
                                 const std::vector<std::string>& set_cookies) {
    boost::system::error_code ec;
    const auto json = boost::json::parse(body, ec);
    const auto* object = ec ? nullptr : json.if_object();
    const auto* value = object ? object->if_contains("crumb") : nullptr;
    const auto* field = object ? object->if_contains("crumbRequestField") : nullptr;
    if (!value || !field || !value->is_string() || !field->is_string() ||
        !valid_header_name(field->get_string()) ||
        value->get_string().find_first_of("\r\n") != boost::json::string::npos) {
        return std::nullopt;
    }
    Crumb crumb;
    crumb.field = std::string(field->get_string());
    crumb.value = std::string(value->get_string());
    for (const auto& header : set_cookies) {
        auto pair = cookie_pair(header);
        if (pair.empty()) continue;
        if (!crumb.cookie.empty()) crumb.cookie += "; ";
        crumb.cookie += pair;
    }
    return crumb;
}

std::string cookie_pair(std::string_view set_cookie) {
    auto pair = set_cookie.substr(0, set_cookie.find(';'));
    while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t')) pair.remove_prefix(1);
    while (!pair.empty() && (pair.back() == ' ' || pair.back() == '\t')) pair.remove_suffix(1);
    if (pair.find('=') == std::string_view::npos || pair.front() == '=') return {};
    return std::string(pair);
}

bool valid_header_name(std::string_view name) {
    if (name.empty()) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.';
    });
}

}  // namespace hookrelay::jenkins
