// Text encodings only Jenkins needs: multibranch item names (job_path() in client.hpp builds on
// them). The generic ones (percent, form and base64 encoding, the base URL parser, Retry-After,
// the status line of a head too large to parse) are the HTTP client's, in
// httpclient/encoding.hpp, named here for the Jenkins code. Pure functions, no I/O.
#pragma once

#include "httpclient/encoding.hpp"

#include <string>
#include <string_view>

namespace hookrelay::jenkins {

using httpclient::base64;
using httpclient::BaseUrl;
using httpclient::form_encode;
using httpclient::k_max_retry_after;
using httpclient::parse_base_url;
using httpclient::parse_retry_after;
using httpclient::percent_encode;
using httpclient::status_line_code;

/// branch-api's NameEncoder.encode: # % / ? [ ] \ → %23 %25 %2F %3F %5B %5D %5C, "" → %00,
/// "." → %2E, ".." → %2E. (everything else unchanged).
std::string name_encode(std::string_view name);

}  // namespace hookrelay::jenkins
