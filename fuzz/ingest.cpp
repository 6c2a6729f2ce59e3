// One forge's ingest path as the webhook handler runs it: verify, parse_body (JSON or form),
// normalize, then the event through a fixed rule set. Built once per forge
// (HOOKRELAY_FUZZ_GITLAB=0: GitHub, 1: GitLab).
//
// Input: "Name: value" header lines, an empty line, then the body, exactly as in
// tests/data/<forge>/*.headers + *.json; FuzzedDataProvider takes one option byte from the end:
//   bit 0  sign the body correctly with the configured secret (so verify must succeed)
//   bit 1  allow_sha1
//   bit 2  no secrets configured, insecure: true
// Checks: a correctly signed delivery verifies; normalize, the event accessors and rule
// evaluation never throw (an exception escapes as a crash); a normalized event carries the
// source, provider and forge event name.
#include "ingest/ingest.hpp"
#include "config/load.hpp"
#include "ingest/hmac.hpp"
#include "rules/rules.hpp"

#include <hookrelay/event.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#ifndef HOOKRELAY_FUZZ_GITLAB
#error "define HOOKRELAY_FUZZ_GITLAB to 0 (GitHub) or 1 (GitLab)"
#endif

namespace {

using namespace hookrelay;

constexpr Provider k_provider = HOOKRELAY_FUZZ_GITLAB ? Provider::gitlab : Provider::github;
constexpr std::string_view k_secret = "fuzz-secret";

// Rules touching every kind of condition and filter, payload paths included.
constexpr std::string_view k_rules_yaml = R"(
sources:
  forge: {provider: github, insecure: true}
jenkins:
  ci: {url: "http://127.0.0.1:8081/"}
rules:
  - name: branches
    when:
      event: push
      branch: [main, "release/*", "re:^feat(ure)?/.+$"]
      paths: ["!docs/**", "!*.md", "src/**/*.{c,h}pp"]
    trigger:
      jenkins: ci
      job: "{{ repository.namespace }}/{{ repository.name }}/{{ branch }}"
      parameters:
        SHA: "{{ commit | short_sha(12) }}"
        MSG: "{{ message | replace('\n', ' ') | default('none') }}"
        FILES: "{{ changed_files }}"
  - name: pulls
    when:
      any:
        - event: pull_request
        - not: {action: [closed, edited]}
      payload.sender.type: "!Bot"
    trigger:
      jenkins: ci
      job: "pr/{{ repository.full_name | lower }}/{{ pull_request.number | default('0') }}"
      parameters:
        HEAD: "{{ pull_request.head_sha | upper }}"
        TITLE: "{{ pull_request.title | default('') }}"
        SENDER: "{{ payload.sender.login | default('?') }}"
  - name: tags
    when:
      event: [tag, release]
      tag: "re:v?[0-9]+(\\.[0-9]+)*"
      deleted: [true, false]
    stop: true
    trigger:
      jenkins: ci
      job: "release/{{ repository.name }}"
      parameters: {TAG: "{{ tag }}", ACTOR: "{{ actor }}", FIRST: "{{ payload.commits.0.id }}"}
  - name: never-evaluated
    when: {repository: "*"}
    trigger: {jenkins: ci, job: "x"}
)";

const rules::RuleSet& rule_set() {
    static const auto compiled = [] {
        config::LoadOptions options;
        options.resolve_secrets = false;
        auto loaded = config::load_string(k_rules_yaml, "ingest-fuzz.yaml", options);
        std::vector<ConfigError> errors = loaded.errors;
        std::shared_ptr<const rules::RuleSet> set;
        if (loaded.config) set = rules::RuleSet::compile(*loaded.config, errors);
        if (!errors.empty() || !set) std::abort();  // the harness's own config must be valid
        return set;
    }();
    return *compiled;
}

// "Name: value" lines up to the first empty line; lines without ':' are skipped.
HeaderMap parse_headers(std::string_view head) {
    HeaderMap headers;
    while (!head.empty()) {
        const auto end = head.find('\n');
        auto line = head.substr(0, end);
        head = end == std::string_view::npos ? std::string_view{} : head.substr(end + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        headers.add(std::string(line.substr(0, colon)), std::string(value));
    }
    return headers;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider provider(data, size);
    const auto options = provider.ConsumeIntegral<std::uint8_t>();
    const std::string text = provider.ConsumeRemainingBytesAsString();
    const bool sign = (options & 1) != 0;

    std::string_view head = text;
    std::string_view body;
    if (const auto blank = text.find("\n\n"); blank != std::string::npos) {
        head = std::string_view(text).substr(0, blank);
        body = std::string_view(text).substr(blank + 2);
    }

    SourceConfig source;
    source.name = "forge";
    source.provider = k_provider;
    source.allow_sha1 = (options & 2) != 0;
    if ((options & 4) != 0 && !sign) {
        source.insecure = true;
    } else {
        source.secrets = {Secret(std::string(k_secret)), Secret("second-secret")};
    }

    HeaderMap headers;
    if (sign) {
        // First, so that it is the one found whatever the input's headers say.
        if (k_provider == Provider::github) {
            headers.add("X-Hub-Signature-256",
                        "sha256=" + ingest::hmac_hex(ingest::Digest::sha256, k_secret, body));
        } else {
            headers.add("X-Gitlab-Token", std::string(k_secret));
        }
    }
    const auto received = parse_headers(head);
    for (const auto& [name, value] : received.fields()) headers.add(name, value);

    const auto verified = ingest::verify(source, headers, body);
    if (sign && !verified) std::abort();

    // Parsed and normalized whatever verify said: the parsers are the attack surface behind a
    // leaked or weak secret, and most mutations would never get past the signature.
    const auto content_type = headers.find("Content-Type").value_or("");
    auto parsed = ingest::parse_body(content_type, body);
    if (!parsed) return 0;
    if (!(*parsed)->root().is_object()) std::abort();  // parse_body promises an object
    auto events = ingest::normalize(source, headers, std::move(*parsed));
    if (!events) return 0;
    if (events->empty()) std::abort();  // a delivery that normalizes is at least one event
    for (const auto& event : *events) {
        if (event.source != source.name || event.provider != k_provider ||
            event.forge_event.empty()) {
            std::abort();
        }
        for (const auto name : event_field_names()) (void)event_field(event, name);
        (void)to_json(event);
        (void)rule_set().evaluate(event);
    }
    return 0;
}
