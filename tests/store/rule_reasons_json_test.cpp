// The rule reasons' JSON, as both backends store it (DeliveryRecord::rule_reasons): written
// without a DOM, it must be what Boost.JSON's serializer writes, and read back to the same
// reasons, whatever bytes a reason holds.
#include "store/codec.hpp"

#include <gtest/gtest.h>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <string>
#include <vector>

namespace hookrelay::store::test {
namespace {

std::string through_a_dom(const std::vector<RuleReason>& reasons) {
    boost::json::array out;
    for (const RuleReason& r : reasons) {
        out.push_back(boost::json::array{r.rule, r.reason, r.event, r.matched});
    }
    return boost::json::serialize(out);
}

TEST(RuleReasonsJson, IsWhatTheSerializerWritesAndReadsBack) {
    std::string every_control;
    for (int c = 0; c < 0x20; ++c) every_control += static_cast<char>(c);
    std::vector<std::vector<RuleReason>> cases = {
        {},
        {{"prs", "event: 'push' matches none of [pull_request]"}},
        {{"quotes", R"(message: 'say "hi"' matches none of [a\b])", false, 2},
         {"render", "matched, but {{ x }} is not set", true, 0}},
        {{"controls", every_control + "\x7f end"}},
        {{"utf-8", "branch: 'fünf ✓ 日本' matches none of [main]"}},
        {{"not utf-8", std::string("bytes \xff\xfe\xc3 as sent")}},
        {{"", ""}, {"unicode\u2028sep", "tab\there\r\n"}},
    };
    // Long runs are scanned eight bytes at a time: an escape at every place in and around them.
    std::vector<RuleReason> placed;
    for (const char c : {'"', '\\', '\x01', '\x1f', '\n', '\x7f', '\x80', ' ', '!', '#', '['}) {
        for (std::size_t at = 0; at < 40; ++at) {
            std::string text(39, 'a');
            text.insert(at, 1, c);
            placed.push_back({text, text + text, false, at});
        }
    }
    cases.push_back(std::move(placed));
    for (const auto& reasons : cases) {
        const auto json = rule_reasons_json(reasons);
        EXPECT_EQ(json, through_a_dom(reasons));
        EXPECT_EQ(parse_rule_reasons(json), reasons) << json;
    }
}

}  // namespace
}  // namespace hookrelay::store::test
