#include "ingest/form.hpp"

#include "ingest/signature.hpp"

#include <boost/url/encoding_opts.hpp>
#include <boost/url/parse_query.hpp>

namespace hookrelay::ingest {

bool is_form_content_type(std::string_view content_type) noexcept {
    return iequals(trim(content_type.substr(0, content_type.find(';'))),
                   "application/x-www-form-urlencoded");
}

std::optional<std::string> form_payload(std::string_view body) {
    // Boost.URL 1.81's parse_query crashes on a view without storage (data() == nullptr), which
    // is how an empty body may arrive; an empty body has no payload field anyway.
    if (body.empty()) return std::nullopt;
    const auto params = boost::urls::parse_query(body);
    if (!params) return std::nullopt;
    // HTML form encoding writes spaces as '+'.
    const boost::urls::encoding_opts form_encoding(/*space_as_plus=*/true);
    for (const auto param : *params) {
        if (!param.has_value || param.key.decode(form_encoding) != "payload") continue;
        return param.value.decode(form_encoding);
    }
    return std::nullopt;
}

}  // namespace hookrelay::ingest
