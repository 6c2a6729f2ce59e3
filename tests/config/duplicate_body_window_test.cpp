// sources.<name>.duplicate_body_window: how long an equal body makes a delivery a duplicate.
#include "config/load.hpp"

#include <gtest/gtest.h>

namespace hookrelay::config {
namespace {

using namespace std::chrono_literals;

LoadResult load(const std::string& github_keys) {
    LoadOptions options;
    options.resolve_secrets = false;
    return load_string(
        "sources:\n  github: {provider: github, insecure: true" + github_keys + "}\n", "test.yaml",
        options);
}

TEST(DuplicateBodyWindow, IsUnsetByDefault) {
    const auto r = load("");
    ASSERT_TRUE(r.errors.empty()) << to_string(r.errors.at(0));
    EXPECT_FALSE(r.config->sources.at(0).duplicate_body_window);
}

TEST(DuplicateBodyWindow, TakesADurationAndZero) {
    auto r = load(", duplicate_body_window: 15m");
    ASSERT_TRUE(r.errors.empty()) << to_string(r.errors.at(0));
    EXPECT_EQ(r.config->sources.at(0).duplicate_body_window, 15min);

    r = load(", duplicate_body_window: 0s");
    ASSERT_TRUE(r.errors.empty()) << to_string(r.errors.at(0));
    EXPECT_EQ(r.config->sources.at(0).duplicate_body_window, 0ms);
}

TEST(DuplicateBodyWindow, RejectsADurationWithoutUnit) {
    const auto r = load(", duplicate_body_window: 15");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_NE(to_string(r.errors[0])
                  .find("source 'github'.duplicate_body_window: '15' is not a "
                        "duration"),
              std::string::npos)
        << to_string(r.errors[0]);
}

}  // namespace
}  // namespace hookrelay::config
