// The rule reasons' JSON, as both backends store it (DeliveryRecord::rule_reasons): written
// without a DOM, it must be what Boost.JSON's serializer writes for the same values, and read back
// to the same reasons, whatever bytes a reason holds; a beginning that reasons share is written
// once; and what the stores wrote before (one array of four values per reason) still reads.
#include "store/codec.hpp"

#include <gtest/gtest.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <string>
#include <vector>

namespace hookrelay::store::test {
namespace {

// What the writer writes when no reason shares a beginning, built as a DOM.
std::string through_a_dom(const std::vector<RuleReason>& reasons) {
    if (reasons.empty()) return "[]";
    boost::json::array rows;
    for (const RuleReason& r : reasons) {
        boost::json::array row{r.rule, r.reason};
        if (r.event != 0 || r.matched) {
            row.push_back(r.event);
            row.push_back(r.matched);
        }
        rows.push_back(std::move(row));
    }
    boost::json::object out;
    out["reasons"] = std::move(rows);
    out["heads"] = boost::json::array{};
    return boost::json::serialize(out);
}

// As the stores wrote them before 2026-12-05.
std::string as_written_before(const std::vector<RuleReason>& reasons) {
    boost::json::array out;
    for (const RuleReason& r : reasons) {
        out.push_back(boost::json::array{r.rule, r.reason, r.event, r.matched});
    }
    return boost::json::serialize(out);
}

std::vector<std::vector<RuleReason>> cases() {
    std::string every_control;
    for (int c = 0; c < 0x20; ++c) every_control += static_cast<char>(c);
    std::vector<std::vector<RuleReason>> out = {
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
    out.push_back(std::move(placed));
    return out;
}

TEST(RuleReasonsJson, IsWhatTheSerializerWritesAndReadsBack) {
    for (const auto& reasons : cases()) {
        const auto json = rule_reasons_json(reasons);
        EXPECT_EQ(json, through_a_dom(reasons));
        EXPECT_EQ(parse_rule_reasons(json), reasons) << json;
    }
}

TEST(RuleReasonsJson, WhatTheStoresWroteBeforeStillReads) {
    for (const auto& reasons : cases()) {
        const auto json = as_written_before(reasons);
        EXPECT_EQ(parse_rule_reasons(json), reasons) << json;
    }
}

TEST(RuleReasonsJson, ABeginningReasonsShareIsWrittenOnce) {
    // As a thousand rules for other repositories give them: the same field and value, then each
    // rule's own patterns; every few rules a fixed reason, shared whole; one reason of its own.
    const std::string repository = "repository: 'acme/app \"x\"' matches none of ";
    const std::string fixed = "event: 'push' matches none of [pull_request]";
    std::vector<RuleReason> expected;
    for (int i = 0; i < 1000; ++i) {
        RuleReason r;
        r.rule = "rule-" + std::to_string(i);
        r.reason = i % 4 == 3 ? fixed : repository + "[org" + std::to_string(i) + "/svc]";
        r.event = i % 7 == 0 ? 1 : 0;
        expected.push_back(r);
    }
    expected.push_back({"own", "branch: 'dev' matches none of [main]", false, 0});
    expected.push_back({"render", "job: variable 'tag' is empty for this event", true, 0});

    RuleReasonsWriter w;
    for (const auto& r : expected) {
        std::size_t shared = 0;
        if (r.reason == fixed) {
            shared = fixed.size();
        } else if (r.reason.starts_with(repository)) {
            shared = repository.size();
        }
        w.add(r.rule, r.reason, shared, r.matched, r.event);
    }
    const auto json = std::move(w).finish();
    EXPECT_EQ(parse_rule_reasons(json), expected);

    const auto count = [&](std::string_view text) {
        std::size_t n = 0;
        for (auto at = json.find(text); at != std::string::npos; at = json.find(text, at + 1)) ++n;
        return n;
    };
    EXPECT_EQ(count("acme/app"), 1u) << json.substr(0, 400);
    EXPECT_EQ(count("pull_request"), 1u);
    // Each of the 1,002 reasons is still there with its own part.
    EXPECT_EQ(count("/svc]"), 750u);
    EXPECT_LT(json.size(), as_written_before(expected).size() / 2);
}

// A delivery of many events: each event's values give heads of their own, used again and again
// out of order. Each is still written once.
TEST(RuleReasonsJson, ManyBeginningsAreEachWrittenOnce) {
    std::vector<std::string> heads;
    for (int h = 0; h < 300; ++h)
        heads.push_back("branch: 'b" + std::to_string(h) + "' matches none of ");
    std::vector<RuleReason> expected;
    RuleReasonsWriter w;
    for (int round = 0; round < 3; ++round) {
        for (int h = 0; h < 300; ++h) {
            const auto& head = heads[static_cast<std::size_t>((h * 7 + round * 13) % 300)];
            RuleReason r{"rule-" + std::to_string(round), head + "[main]", false,
                         static_cast<std::size_t>(h)};
            w.add(r.rule, r.reason, head.size(), r.matched, r.event);
            expected.push_back(std::move(r));
        }
    }
    const auto json = std::move(w).finish();
    EXPECT_EQ(parse_rule_reasons(json), expected);
    const auto parsed = boost::json::parse(json);
    EXPECT_EQ(parsed.at("heads").as_array().size(), 300u);
}

TEST(RuleReasonsJson, ABeginningLongerThanItsReasonIsNotShared) {
    RuleReasonsWriter w;
    w.add("a", "short", 99, false, 0);
    w.add("b", "short", 5, false, 0);
    w.add("c", "shorter", 5, false, 0);
    EXPECT_EQ(parse_rule_reasons(std::move(w).finish()),
              (std::vector<RuleReason>{{"a", "short"}, {"b", "short"}, {"c", "shorter"}}));
}

TEST(RuleReasonsJson, TextNeitherWriterWroteIsRefused) {
    for (const std::string bad :
         {"", "{}", R"({"reasons":[["a",0,"x"]],"heads":[]})", R"({"reasons":[["a"]],"heads":[]})",
          R"({"reasons":[["a","b",0,false,1]],"heads":[]})", R"([["a","b"]])", "[1]"}) {
        EXPECT_ANY_THROW(parse_rule_reasons(bad)) << bad;
    }
}

}  // namespace
}  // namespace hookrelay::store::test
