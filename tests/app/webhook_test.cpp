// The webhook pipeline's pure parts: what prepare() answers, and how echoed values are bounded.
#include "app/webhook.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <string>

namespace hookrelay::app {
namespace {

constexpr std::string_view k_ellipsis = "\u2026";

TEST(Echoed, ShortValueIsUnchanged) {
    EXPECT_EQ(echoed("refs/heads/main"), "refs/heads/main");
    const std::string exactly(k_max_echoed_bytes, 'a');
    EXPECT_EQ(echoed(exactly), exactly);
}

TEST(Echoed, LongValueIsCutToTheLimitWithAnEllipsis) {
    const auto out = echoed("refs/heads/" + std::string(20'000'000, 'a'));
    EXPECT_EQ(out.size(), k_max_echoed_bytes);
    EXPECT_TRUE(out.starts_with("refs/heads/aaa"));
    EXPECT_TRUE(out.ends_with(k_ellipsis));
}

TEST(Echoed, NeverCutsAUtf8Character) {
    // 'é' is two bytes: wherever the cut falls, no half character may remain before the "…".
    for (std::size_t pad = 0; pad < 2; ++pad) {
        std::string value(pad, 'x');
        while (value.size() < 2 * k_max_echoed_bytes) value += "\u00e9";
        const auto out = echoed(value);
        EXPECT_LE(out.size(), k_max_echoed_bytes);
        const auto kept = std::string_view(out).substr(0, out.size() - k_ellipsis.size());
        EXPECT_EQ(kept, std::string_view(value).substr(0, kept.size()));
        // Only whole characters: no continuation byte right after the kept text in the input
        // means the cut fell on a character boundary.
        EXPECT_NE(static_cast<unsigned char>(value[kept.size()]) & 0xc0, 0x80) << pad;
        EXPECT_NO_THROW(boost::json::parse(boost::json::serialize(boost::json::string(out))));
    }
}

Runtime runtime_with(const Config& config) {
    std::vector<ConfigError> errors;
    auto rules = rules::RuleSet::compile(config, errors);
    EXPECT_TRUE(errors.empty());
    return Runtime{std::make_shared<const Config>(config), rules, nullptr};
}

TEST(Prepare, BodyTooLargeToParseIs413NamingTheLimit) {
    Config config;
    config.server.parse_memory_limit = 1024 * 1024;
    SourceConfig source;
    source.name = "github";
    source.provider = Provider::github;
    source.insecure = true;
    config.sources.push_back(source);
    const auto runtime = runtime_with(config);

    std::string body = R"({"a":[0)";
    for (int i = 0; i < 100'000; ++i) body += ",0";
    body += "]}";
    const HeaderMap headers{{"Content-Type", "application/json"}, {"X-GitHub-Event", "push"}};
    const auto prepared = prepare(runtime, config.sources[0], headers, body);
    EXPECT_FALSE(prepared.event);
    EXPECT_EQ(prepared.status, 413u);
    EXPECT_EQ(prepared.body.at("error"),
              "payload too large to parse: more than 1 MiB of JSON structure "
              "(server.parse_memory_limit)");

    config.server.parse_memory_limit = 64 * 1024 * 1024;
    const auto roomy = runtime_with(config);
    // Parsed now; it fails later, for want of a ref.
    EXPECT_EQ(prepare(roomy, config.sources[0], headers, body).status, 400u);
}

}  // namespace
}  // namespace hookrelay::app
