#include "support/admin_api.hpp"

#include "support/http_client.hpp"

#include <boost/json.hpp>

namespace hookrelay::test {

namespace json = boost::json;

json::value first_trigger(std::uint16_t admin_port, const std::string& admin_token,
                          const std::string& delivery) {
    const auto r = http_request(admin_port, "GET", "/api/v1/deliveries/" + delivery,
                                {{"Authorization", "Bearer " + admin_token}});
    if (r.status != 200) return nullptr;
    // Parsed into a local: a reference into a temporary parse result would dangle.
    const auto parsed = json::parse(r.body);
    const auto& triggers = parsed.at("triggers").as_array();
    return triggers.empty() ? json::value(nullptr) : triggers.at(0);
}

std::string json_text(const json::value& v, std::string_view key) {
    if (!v.is_object()) return "";
    const auto* at = v.as_object().if_contains(key);
    if (at == nullptr) return "";
    return at->is_string() ? std::string(at->as_string()) : json::serialize(*at);
}

}  // namespace hookrelay::test
