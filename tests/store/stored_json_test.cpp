// A submit's headers, job and parameters as both backends store them (pairs_json, strings_json):
// written without a DOM, they must be what Boost.JSON's serializer wrote before, and read back
// to the same values, whatever bytes they hold.
#include "store/codec.hpp"

#include <gtest/gtest.h>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <string>
#include <utility>
#include <vector>

namespace hookrelay::store::test {
namespace {

std::string every_byte() {
    std::string out;
    for (int c = 0; c < 256; ++c) out += static_cast<char>(c);
    return out;
}

TEST(StoredJson, PairsAreWhatTheSerializerWritesAndReadBack) {
    const std::vector<Pairs> cases = {
        {},
        {{"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"}},
        {{"", ""}, {"quote\"d", "back\\slash\ttab"}, {"caf\xc3\xa9", "\xff\xfe not UTF-8"}},
        {{"every byte", every_byte()}},
    };
    for (const auto& pairs : cases) {
        boost::json::array dom;
        for (const auto& [name, value] : pairs) dom.push_back(boost::json::array{name, value});
        const auto text = pairs_json(pairs);
        EXPECT_EQ(text, boost::json::serialize(dom));
        EXPECT_EQ(parse_pairs(text), pairs);
    }
}

TEST(StoredJson, StringsAreWhatTheSerializerWritesAndReadBack) {
    const std::vector<std::vector<std::string>> cases = {
        {},
        {"acme", "app", "main"},
        {"", "a/b", "release/1.0 \"quoted\"", "\x01\x1f\x7f", every_byte()},
    };
    for (const auto& strings : cases) {
        boost::json::array dom;
        for (const auto& s : strings) dom.emplace_back(s);
        const auto text = strings_json(strings);
        EXPECT_EQ(text, boost::json::serialize(dom));
        EXPECT_EQ(parse_strings(text), strings);
    }
}

}  // namespace
}  // namespace hookrelay::store::test
