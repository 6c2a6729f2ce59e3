// Loads real deliveries from tests/data/<forge>/ and runs them through ingest, for the ingest
// tests.
#pragma once

#include "ingest/forge.hpp"
#include "ingest/hmac.hpp"
#include "ingest/ingest.hpp"
#include "support/json_document.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <cctype>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace hookrelay::test {

/// One recorded delivery: the body bytes exactly as sent and the request headers.
struct Delivery {
    std::string body;
    HeaderMap headers;
    std::string content_type;
};

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << "cannot open " << path;
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

/// tests/data/<forge>/<name>.<ext> with headers from <name>.headers ("Name: value" per line).
inline Delivery load_delivery(std::string_view forge, std::string_view name,
                              std::string_view ext = "json") {
    const auto base =
        std::string(HOOKRELAY_TEST_DATA_DIR) + "/" + std::string(forge) + "/" + std::string(name);
    Delivery d;
    d.body = read_file(base + "." + std::string(ext));
    std::istringstream lines(read_file(base + ".headers"));
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        d.headers.add(line.substr(0, colon), value);
    }
    d.content_type = std::string(d.headers.find("Content-Type").value_or(""));
    return d;
}

/// The provider whose fixtures are in tests/data/<forge>/ (the directory is the provider name).
inline Provider provider_of(std::string_view forge) {
    const auto provider = provider_from_string(forge);
    EXPECT_TRUE(provider) << "no provider named " << forge;
    return provider.value_or(Provider::github);
}

inline SourceConfig source_for(Provider provider, std::vector<std::string> secrets = {}) {
    SourceConfig s;
    s.name = provider == Provider::github   ? "gh"
             : provider == Provider::gitlab ? "gl"
                                            : std::string(to_string(provider));
    s.provider = provider;
    for (auto& secret : secrets) s.secrets.emplace_back(std::move(secret));
    return s;
}

/// Parses and normalizes a delivery into all its events; fails the test on any error.
inline std::vector<Event> normalize_delivery_events(Provider provider, const Delivery& d) {
    auto parsed = ingest::parse_body(d.content_type, d.body);
    EXPECT_TRUE(parsed) << "parse_body: " << parsed.error().message();
    if (!parsed) return {};
    auto payload = std::move(*parsed);
    auto events = ingest::normalize(source_for(provider), d.headers, payload);
    EXPECT_TRUE(events) << "normalize: " << events.error().message();
    if (!events) return {};
    return std::move(*events);
}

/// The only event of a delivery; fails the test on any error or when it carries several.
inline Event normalize_delivery(Provider provider, const Delivery& d) {
    auto events = normalize_delivery_events(provider, d);
    EXPECT_EQ(events.size(), 1u) << "expected one event";
    if (events.empty()) return {};
    return std::move(events.front());
}

inline Event normalize_fixture(std::string_view forge, std::string_view name,
                               std::string_view ext = "json") {
    return normalize_delivery(provider_of(forge), load_delivery(forge, name, ext));
}

inline std::vector<Event> normalize_fixture_events(std::string_view forge, std::string_view name) {
    return normalize_delivery_events(provider_of(forge), load_delivery(forge, name));
}

/// Normalizes an in-memory payload with the given event header (the forge's first event
/// header; no parse step) into all its events.
inline result<std::vector<Event>> normalize_json_events(Provider provider,
                                                        std::string_view event_name,
                                                        boost::json::value payload) {
    HeaderMap headers;
    const auto& names = ingest::forge(provider).event_headers;
    if (!names.empty()) headers.add(std::string(names.front()), std::string(event_name));
    return ingest::normalize(source_for(provider), headers, test::document(payload));
}

/// As above, for a delivery that carries one event: that event.
inline result<Event> normalize_json(Provider provider, std::string_view event_name,
                                    boost::json::value payload) {
    auto events = normalize_json_events(provider, event_name, std::move(payload));
    if (!events) return events.error();
    EXPECT_EQ(events->size(), 1u) << "expected one event";
    return std::move(events->front());
}

// application/x-www-form-urlencoded encoding of `text`, as Go's url.Values.Encode writes it.
inline std::string form_encode(std::string_view text) {
    static constexpr char k_hex[] = "0123456789ABCDEF";
    std::string out;
    for (const unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else if (c == ' ') {
            out.push_back('+');
        } else {
            out.push_back('%');
            out.push_back(k_hex[c >> 4]);
            out.push_back(k_hex[c & 0x0f]);
        }
    }
    return out;
}

/// The fixture's body parsed as JSON, for tests that tamper with a real payload.
inline boost::json::value fixture_json(std::string_view forge, std::string_view name) {
    return boost::json::parse(load_delivery(forge, name).body);
}

}  // namespace hookrelay::test
