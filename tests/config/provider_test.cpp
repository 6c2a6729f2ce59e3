// A source's `provider:` is one of a closed set; a typo names the closest one.
#include "config/load.hpp"

#include <gmock/gmock.h>

namespace hookrelay::config {
namespace {

using ::testing::ElementsAre;

TEST(ConfigProvider, UnknownProviderSuggestsTheClosest) {
    const auto loaded =
        load_string("sources:\n  gl: {provider: gitlba, insecure: true}\n", "c.yaml");
    std::vector<std::string> shown;
    for (const auto& e : loaded.errors) shown.push_back(to_string(e));
    EXPECT_THAT(shown, ElementsAre("c.yaml:2:18: source 'gl': unknown provider 'gitlba' (did you "
                                   "mean 'gitlab'?); use github, gitlab, gitea, forgejo, "
                                   "bitbucket-cloud, bitbucket-server or generic"));
}

}  // namespace
}  // namespace hookrelay::config
