// Reading what Jenkins answered: the pure pieces of the client that look at a server's bytes
// (the Location of a queued build, the crumb issuer's JSON and its session cookies). No I/O, no
// HTTP library; fuzzed by fuzz/jenkins_response.cpp. Thread-safe.
#pragma once

#include "jenkins/encoding.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::jenkins {

/// A CSRF crumb as crumbIssuer/api/json hands it out, with the session cookie it belongs to.
struct Crumb {
    std::string field;   ///< header name (crumbRequestField); empty: CSRF protection is off
    std::string value;   ///< header value (crumb)
    std::string cookie;  ///< "NAME=value; NAME2=value2" from the issuing response's Set-Cookie

    bool operator==(const Crumb&) const = default;
};

/// The queue item URL from a 201/303 `Location`: an absolute URL (one holding "://") as it is,
/// a path ("/queue/item/7/") on `base`'s origin, anything else relative to `base`'s path
/// (build-token-root answers "queue/item/7/"). Empty when `location` is empty.
std::string resolve_location(const BaseUrl& base, std::string_view location);

/// The crumb from crumbIssuer/api/json's 200 `body` ({"crumb": "...", "crumbRequestField":
/// "Jenkins-Crumb", ...}) and the Set-Cookie values of the same response, joined into `cookie`
/// (unusable Set-Cookie values are skipped). nullopt when the body is not a JSON object with
/// both members as strings, the field is not a valid header name (valid_header_name), or the
/// crumb holds CR or LF: such a crumb could not be sent.
std::optional<Crumb> parse_crumb(std::string_view body,
                                 const std::vector<std::string>& set_cookies);

/// What a scan's project is asked before anything is sent to it: jobs export nextBuildNumber,
/// folders (multibranch projects, organization folders) do not (jenkins-builds-and-jobs.md §2.3).
inline constexpr std::string_view k_project_tree = "api/json?tree=_class,nextBuildNumber";

/// Whether an item's k_project_tree answer is a job's: POST build on it would queue a build
/// rather than scan.
inline bool is_job_answer(std::string_view body) {
    return body.find("\"nextBuildNumber\"") != std::string_view::npos;
}

/// "NAME=value; Path=/; HttpOnly" → "NAME=value" (surrounding blanks trimmed); empty when the
/// first part is not a name=value pair.
std::string cookie_pair(std::string_view set_cookie);

/// Whether `name` is a non-empty run of A-Za-z0-9 '-' '_' '.' (what a crumb header may be named).
bool valid_header_name(std::string_view name);

}  // namespace hookrelay::jenkins
