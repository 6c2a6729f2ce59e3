// What integration tests read from a running daemon's admin API, in one place.
#pragma once

#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace hookrelay::test {

/// The first trigger of `delivery` as GET /api/v1/deliveries/{id} on `admin_port` shows it (with
/// `admin_token`); null when the API does not answer 200 or the delivery has no trigger.
boost::json::value first_trigger(std::uint16_t admin_port, const std::string& admin_token,
                                 const std::string& delivery);

/// Member `key` of a JSON object as text: a string unquoted, anything else serialized; "" when
/// `v` is not an object or has no such member.
std::string json_text(const boost::json::value& v, std::string_view key);

}  // namespace hookrelay::test
