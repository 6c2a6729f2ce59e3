#include "util/suggest.hpp"

#include <gtest/gtest.h>

namespace hookrelay {
namespace {

const std::vector<std::string_view> k_events = {"push",    "tag",  "pull_request",
                                                "release", "ping", "other"};

TEST(Suggest, SwappedNeighboursAreOneTypo) {
    EXPECT_EQ(closest_match("psuh", k_events), "push");
    EXPECT_EQ(closest_match("flase", {"true", "false"}), "false");
}

TEST(Suggest, OneEditAwayIsSuggested) {
    EXPECT_EQ(closest_match("pull-request", k_events), "pull_request");
    EXPECT_EQ(closest_match("githb", {"github", "gitlab"}), "github");
    EXPECT_EQ(did_you_mean("relase", k_events), " (did you mean 'release'?)");
}

TEST(Suggest, FarWordsGetNoSuggestion) {
    EXPECT_EQ(closest_match("merge", k_events), "");
    EXPECT_EQ(did_you_mean("yes", {"true", "false"}), "");
}

}  // namespace
}  // namespace hookrelay
