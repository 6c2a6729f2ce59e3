// Loads real deliveries from tests/data/<forge>/ and runs them through ingest, for the ingest
// tests.
#pragma once

#include "ingest/hmac.hpp"
#include "ingest/ingest.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

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

inline SourceConfig source_for(Provider provider, std::vector<std::string> secrets = {}) {
    SourceConfig s;
    s.name = provider == Provider::github ? "gh" : "gl";
    s.provider = provider;
    for (auto& secret : secrets) s.secrets.emplace_back(std::move(secret));
    return s;
}

/// Parses and normalizes a delivery; fails the test on any error.
inline Event normalize_delivery(Provider provider, const Delivery& d) {
    auto parsed = ingest::parse_body(d.content_type, d.body);
    EXPECT_TRUE(parsed) << "parse_body: " << parsed.error().message();
    if (!parsed) return {};
    auto payload = std::make_shared<const boost::json::value>(std::move(*parsed));
    auto event = ingest::normalize(source_for(provider), d.headers, payload);
    EXPECT_TRUE(event) << "normalize: " << event.error().message();
    if (!event) return {};
    return *event;
}

inline Event normalize_fixture(std::string_view forge, std::string_view name,
                               std::string_view ext = "json") {
    return normalize_delivery(forge == "github" ? Provider::github : Provider::gitlab,
                              load_delivery(forge, name, ext));
}

/// Normalizes an in-memory payload with the given event header (no parse step).
inline result<Event> normalize_json(Provider provider, std::string_view event_name,
                                    boost::json::value payload) {
    HeaderMap headers;
    headers.add(provider == Provider::github ? "X-GitHub-Event" : "X-Gitlab-Event",
                std::string(event_name));
    return ingest::normalize(source_for(provider), headers,
                             std::make_shared<const boost::json::value>(std::move(payload)));
}

/// The fixture's body parsed as JSON, for tests that tamper with a real payload.
inline boost::json::value fixture_json(std::string_view forge, std::string_view name) {
    return boost::json::parse(load_delivery(forge, name).body);
}

}  // namespace hookrelay::test
