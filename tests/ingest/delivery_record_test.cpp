// What ingest decides about how a delivery is recorded: which headers are kept, and how long a
// body identifies a delivery.
#include "ingest/fixture.hpp"

#include <filesystem>

namespace hookrelay {
namespace {

using namespace std::chrono_literals;
using ingest::recorded_header;

TEST(RecordedHeader, KeepsEveryHeaderOfTheRealFixtures) {
    std::size_t checked = 0;
    for (const auto& dir : std::filesystem::directory_iterator(HOOKRELAY_TEST_DATA_DIR)) {
        if (!dir.is_directory()) continue;
        const auto forge = dir.path().filename().string();
        const auto provider = test::provider_of(forge);
        for (const auto& file : std::filesystem::directory_iterator(dir.path())) {
            if (file.path().extension() != ".headers") continue;
            auto body = file.path();
            const bool form = !std::filesystem::exists(body.replace_extension(".json"));
            const auto delivery =
                test::load_delivery(forge, file.path().stem().string(), form ? "form" : "json");
            for (const auto& [header, value] : delivery.headers.fields()) {
                EXPECT_TRUE(recorded_header(provider, header)) << forge << " " << header;
                ++checked;
            }
        }
    }
    EXPECT_GT(checked, 200u);
}

TEST(RecordedHeader, NeverKeepsCredentials) {
    for (const auto provider : providers()) {
        for (const auto* name :
             {"Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "X-Hub-Signature",
              "X-Hub-Signature-256", "X-Gitlab-Token", "webhook-signature", "X-Gitea-Signature",
              "X-Gogs-Signature", "X-Forgejo-Signature", "X-Auth-Token", "Set-Cookie",
              "X-Amz-Security-Token", "authorization"}) {
            EXPECT_FALSE(recorded_header(provider, name)) << to_string(provider) << " " << name;
        }
    }
}

TEST(RecordedHeader, KeepsProxyAndContentHeadersInAnyCase) {
    for (const auto* name : {"content-type", "USER-AGENT", "X-Forwarded-For", "Forwarded",
                             "X-Real-IP", "Content-Length"}) {
        EXPECT_TRUE(recorded_header(Provider::github, name)) << name;
        EXPECT_TRUE(recorded_header(Provider::gitlab, name)) << name;
    }
}

TEST(RecordedHeader, KeepsOnlyTheSourcesOwnForgeHeaders) {
    EXPECT_TRUE(recorded_header(Provider::github, "x-github-hook-id"));
    EXPECT_FALSE(recorded_header(Provider::gitlab, "X-GitHub-Hook-ID"));
    EXPECT_TRUE(recorded_header(Provider::gitlab, "Idempotency-Key"));
    EXPECT_FALSE(recorded_header(Provider::github, "Idempotency-Key"));
    EXPECT_FALSE(recorded_header(Provider::github, "X-Custom-Header"));
}

TEST(DuplicateBodyWindow, DeliveriesWithoutAnIdAreComparedByBodyByDefault) {
    const auto source = test::source_for(Provider::gitlab);
    EXPECT_EQ(ingest::duplicate_body_window(source, /*has_delivery_id=*/false), 1h);
    EXPECT_EQ(ingest::duplicate_body_window(source, /*has_delivery_id=*/true), 0ms);
}

TEST(DuplicateBodyWindow, TheSourceSettingAppliesToEveryDelivery) {
    auto source = test::source_for(Provider::github);
    source.duplicate_body_window = 10min;
    EXPECT_EQ(ingest::duplicate_body_window(source, true), 10min);
    EXPECT_EQ(ingest::duplicate_body_window(source, false), 10min);
    source.duplicate_body_window = 0ms;
    EXPECT_EQ(ingest::duplicate_body_window(source, false), 0ms);
}

}  // namespace
}  // namespace hookrelay
