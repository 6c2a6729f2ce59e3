// server.parse_memory_limit: what one JSON parse may use.
#include "config/load.hpp"

#include <gtest/gtest.h>

namespace hookrelay::config {
namespace {

constexpr std::size_t k_mib = 1024 * 1024;

const std::string k_source = R"(
sources:
  github: {provider: github, insecure: true}
)";

LoadResult load(const std::string& yaml) {
    LoadOptions options;
    options.resolve_secrets = false;
    return load_string(yaml + k_source, "test.yaml", options);
}

TEST(ParseMemoryLimit, DefaultsToFourTimesTheBodyLimit) {
    auto r = load("");
    ASSERT_TRUE(r.errors.empty()) << to_string(r.errors.at(0));
    EXPECT_EQ(r.config->server.parse_memory_limit, 100 * k_mib);

    r = load("server: {body_limit: 1MiB}");
    ASSERT_TRUE(r.errors.empty()) << to_string(r.errors.at(0));
    EXPECT_EQ(r.config->server.parse_memory_limit, 4 * k_mib);
}

TEST(ParseMemoryLimit, TakesASize) {
    auto r = load("server: {body_limit: 1MiB, parse_memory_limit: 300MiB}");
    ASSERT_TRUE(r.errors.empty()) << to_string(r.errors.at(0));
    EXPECT_EQ(r.config->server.parse_memory_limit, 300 * k_mib);
}

TEST(ParseMemoryLimit, RejectsWhatIsNotASize) {
    const auto r = load("server:\n  parse_memory_limit: lots\n");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(to_string(r.errors[0]),
              "test.yaml:2:23: server.parse_memory_limit: 'lots' is not a size (e.g. 65536, "
              "64KiB, 25MiB; above 0, at most 1 PiB)");
}

}  // namespace
}  // namespace hookrelay::config
