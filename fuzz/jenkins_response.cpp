// What the Jenkins client reads from a Jenkins (or whatever answers in its place): the base URL
// it was configured with, a 201/303 Location, the crumb issuer's JSON body and Set-Cookie values,
// and the status code. FuzzedDataProvider splits the input: status (2 bytes from the end), then
// base URL, Location and up to three Set-Cookie values as escaped strings, the body last.
// Checks: a Location resolves to something non-empty exactly when it is non-empty; a parsed
// crumb can be sent as a header (valid name, no CR/LF in value or cookie).
#include "jenkins/client.hpp"
#include "jenkins/encoding.hpp"
#include "jenkins/response.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

constexpr std::size_t k_max_field = 4096;

bool sendable(const std::string& text) {
    return text.find_first_of("\r\n") == std::string::npos;
}

// Beast's response parser never yields CR or LF inside a header value (obs-fold becomes spaces).
std::string header_value(std::string text) {
    for (auto& c : text) {
        if (c == '\r' || c == '\n') c = ' ';
    }
    return text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace hookrelay::jenkins;
    FuzzedDataProvider provider(data, size);
    const int status = provider.ConsumeIntegralInRange<int>(0, 999);
    const std::string url = provider.ConsumeRandomLengthString(k_max_field);
    const std::string location = header_value(provider.ConsumeRandomLengthString(k_max_field));
    std::vector<std::string> cookies;
    const auto cookie_count = provider.ConsumeIntegralInRange<std::size_t>(0, 3);
    for (std::size_t i = 0; i < cookie_count; ++i) {
        cookies.push_back(header_value(provider.ConsumeRandomLengthString(k_max_field)));
    }
    const std::string body = provider.ConsumeRemainingBytesAsString();

    (void)classify(status);

    std::string why;
    auto base = parse_base_url(url, why);
    if (!base) {
        if (why.empty()) std::abort();
        BaseUrl fallback;
        fallback.origin = "http://jenkins";
        fallback.path = "/";
        base = fallback;
    }
    const auto resolved = resolve_location(*base, location);
    if (resolved.empty() != location.empty()) std::abort();

    for (const auto& cookie : cookies) (void)cookie_pair(cookie);
    if (const auto crumb = parse_crumb(body, cookies)) {
        if (!valid_header_name(crumb->field) || !sendable(crumb->value) ||
            !sendable(crumb->cookie)) {
            std::abort();
        }
    }
    return 0;
}
