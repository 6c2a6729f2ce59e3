// The forge table itself: one forge per provider, each reading only its own headers, and the
// facts the config loader and the rules rely on.
#include "ingest/fixture.hpp"
#include "support/json_document.hpp"

#include <set>

namespace hookrelay {
namespace {

TEST(ForgeTable, OneForgePerProviderInProviderOrder) {
    const auto forges = ingest::forges();
    ASSERT_EQ(forges.size(), providers().size());
    for (std::size_t i = 0; i < forges.size(); ++i) {
        EXPECT_EQ(forges[i]->provider, providers()[i]);
        EXPECT_EQ(&ingest::forge(providers()[i]), forges[i]);
        EXPECT_FALSE(forges[i]->title.empty());
        EXPECT_NE(forges[i]->verify, nullptr);
        EXPECT_NE(forges[i]->normalize, nullptr);
    }
}

TEST(ForgeTable, ProviderNamesRoundTrip) {
    std::set<std::string_view> names;
    for (const auto provider : providers()) {
        const auto name = to_string(provider);
        EXPECT_TRUE(names.insert(name).second) << name;
        EXPECT_EQ(provider_from_string(name), provider) << name;
    }
    EXPECT_FALSE(provider_from_string("bitbucket"));
    EXPECT_FALSE(provider_from_string("GitHub"));
}

TEST(ForgeTable, EveryForgeTakesItsSecretKey) {
    for (const auto* forge : ingest::forges()) {
        const auto& keys = forge->config_keys;
        ASSERT_FALSE(forge->secret_key.empty()) << forge->title;
        EXPECT_NE(std::find(keys.begin(), keys.end(), forge->secret_key), keys.end())
            << forge->title;
        const auto plural = std::string(forge->secret_key) + "s";
        EXPECT_NE(std::find(keys.begin(), keys.end(), plural), keys.end()) << forge->title;
    }
}

TEST(ForgeTable, EachForgeReadsOnlyItsOwnEventHeader) {
    // A delivery carrying every other forge's event header, but not this forge's, names no
    // event for it: no forge falls back on another's header and normalizer.
    const auto payload = test::document(boost::json::object{});
    for (const auto* forge : ingest::forges()) {
        if (forge->event_headers.empty()) continue;
        HeaderMap headers;
        for (const auto* other : ingest::forges()) {
            for (const auto name : other->event_headers) {
                const auto& own = forge->event_headers;
                if (std::find_if(own.begin(), own.end(), [&](std::string_view n) {
                        return iequals(n, name);
                    }) == own.end()) {
                    headers.add(std::string(name), "push");
                }
            }
        }
        EXPECT_EQ(ingest::normalize(test::source_for(forge->provider), headers, payload).error(),
                  errc::missing_event_header)
            << forge->title;
    }
}

TEST(ForgeTable, EachForgeReadsOnlyItsOwnDeliveryHeader) {
    for (const auto* forge : ingest::forges()) {
        HeaderMap headers;
        for (const auto* other : ingest::forges()) {
            if (other == forge) continue;
            for (const auto name : other->delivery_headers) {
                const auto& own = forge->delivery_headers;
                if (std::find_if(own.begin(), own.end(), [&](std::string_view n) {
                        return iequals(n, name);
                    }) == own.end()) {
                    headers.add(std::string(name), "someone-else's-id");
                }
            }
        }
        EXPECT_EQ(ingest::delivery_id(test::source_for(forge->provider), headers), "")
            << forge->title;
    }
}

}  // namespace
}  // namespace hookrelay
