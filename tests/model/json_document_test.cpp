#include <hookrelay/json_document.hpp>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <limits>
#include <string>
#include <vector>

namespace hookrelay {
namespace {

using Kind = JsonRef::Kind;

std::shared_ptr<const JsonDocument> parse(std::string_view text) {
    return JsonDocument::parse(text);
}

TEST(JsonDocument, ReadsEveryKindOfValue) {
    const auto doc = parse(R"({"s":"x","t":true,"f":false,"n":null,"i":-3,
        "u":18446744073709551615,"d":1.5,"a":[1,[2],{"k":3}],"o":{"p":{"q":"deep"}}})");
    const auto root = doc->root();
    EXPECT_EQ(root.kind(), Kind::object);
    EXPECT_EQ(root.size(), 9u);
    EXPECT_EQ(root.member("s").string(), "x");
    EXPECT_EQ(root.member("t").boolean(), true);
    EXPECT_EQ(root.member("f").boolean(), false);
    EXPECT_EQ(root.member("n").kind(), Kind::null);
    EXPECT_EQ(root.member("i").int64(), -3);
    EXPECT_EQ(root.member("u").uint64(), std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(root.member("u").int64(), std::nullopt);  // does not fit
    EXPECT_EQ(root.member("d").double_(), 1.5);
    EXPECT_EQ(root.member("a").size(), 3u);
    EXPECT_EQ(root.member("a").element(1).element(0).int64(), 2);
    EXPECT_EQ(root.member("a").element(2).member("k").int64(), 3);
    EXPECT_EQ(root.member("o").member("p").member("q").string(), "deep");
}

TEST(JsonDocument, AnswersAbsentForWhatIsNotThere) {
    const auto doc = parse(R"({"s":"x","a":[1],"o":{}})");
    const auto root = doc->root();
    EXPECT_FALSE(root.member("missing"));
    EXPECT_FALSE(root.member("s").member("x"));        // a string has no members
    EXPECT_FALSE(root.member("a").member("0"));        // nor has an array
    EXPECT_FALSE(root.member("a").element(1));         // past the end
    EXPECT_FALSE(root.member("o").element(0));         // an object has no elements
    EXPECT_FALSE(root.member("missing").member("x"));  // absent stays absent
    EXPECT_EQ(root.member("missing").size(), 0u);
    EXPECT_EQ(root.member("s").size(), 0u);
    EXPECT_EQ(root.member("a").string(), std::nullopt);
    EXPECT_EQ(root.member("s").int64(), std::nullopt);
    EXPECT_EQ(root.member("s").boolean(), std::nullopt);
    EXPECT_EQ(root.member("missing").serialize(), "");
    EXPECT_FALSE(root.member("missing").is_object());
    int seen = 0;
    for (const JsonRef e : root.member("o").elements()) seen += e ? 1 : 0;
    for (const auto member : root.member("a").members()) seen += member.value ? 1 : 0;
    EXPECT_EQ(seen, 0);
}

TEST(JsonDocument, TheLastOfDuplicateKeysWinsAsInABoostJsonDom) {
    const std::string text = R"({"a":1,"b":{"c":1},"a":2,"b":{"c":3},"a":{"x":[4]}})";
    const auto doc = parse(text);
    EXPECT_EQ(doc->root().member("a").member("x").element(0).int64(), 4);
    EXPECT_EQ(doc->root().member("b").member("c").int64(), 3);
    EXPECT_EQ(doc->root().serialize(), boost::json::serialize(boost::json::parse(text)));
}

TEST(JsonDocument, IteratesInDocumentOrder) {
    const auto doc = parse(R"({"z":[1,{"a":2},[3,4],"x"],"y":{"b":1,"a":[]},"x":null})");
    std::vector<std::string> keys;
    for (const auto [key, value] : doc->root().members()) keys.emplace_back(key);
    EXPECT_EQ(keys, (std::vector<std::string>{"z", "y", "x"}));
    std::vector<Kind> kinds;
    for (const JsonRef e : doc->root().member("z").elements()) kinds.push_back(e.kind());
    EXPECT_EQ(kinds, (std::vector<Kind>{Kind::int64, Kind::object, Kind::array, Kind::string}));
}

TEST(JsonDocument, SerializesAsBoostJsonDoes) {
    // payload.* paths that reach an object, an array or a number with a fraction read as the
    // JSON text a Boost.JSON DOM gave before documents replaced it.
    for (const char* text : {
             R"({"a":[1,-2,3.25,-0.0,1e300,1E-5,18446744073709551615,true,null,"s\"\\\/\u00e9"]})",
             R"([{"a":{"b":{}}},[],[[]],{}])",
             R"("only a string")",
             R"(123456789012345678901234567890)",
             R"({"big":1e400,"small":-1e400})",
             R"({"":{"":""},"k\u0000":"\ud83d\ude00"})",
         }) {
        EXPECT_EQ(parse(text)->root().serialize(), boost::json::serialize(boost::json::parse(text)))
            << text;
    }
}

TEST(JsonDocument, RefusesWhatIsNotJson) {
    for (const char* text : {"", " ", "{", R"({"a":})", "{} x", "[1,]", "\xff", R"("\ud800")",
                             "{\"a\":\"\xc3\"}", "nul", "01", "{'a':1}", "[1] [2]"}) {
        auto error = JsonDocument::Error::too_large;
        EXPECT_EQ(JsonDocument::parse(text, 1 << 20, error), nullptr) << text;
        EXPECT_EQ(error, JsonDocument::Error::malformed) << text;
    }
}

TEST(JsonDocument, RefusesNestingPastItsLimit) {
    const auto nested = [](int depth) {
        return std::string(static_cast<std::size_t>(depth), '[') +
               std::string(static_cast<std::size_t>(depth), ']');
    };
    auto error = JsonDocument::Error::too_large;
    EXPECT_NE(JsonDocument::parse(nested(64), 1 << 20, error), nullptr);
    EXPECT_EQ(JsonDocument::parse(nested(65), 1 << 20, error), nullptr);
    EXPECT_EQ(error, JsonDocument::Error::malformed);
    EXPECT_NE(JsonDocument::parse(nested(65), 1 << 20, error, 65), nullptr);
}

TEST(JsonDocument, NeverHoldsMoreThanItsLimit) {
    // A 16-byte node per 2 bytes of text: the densest JSON there is.
    std::string text = "[0";
    for (int i = 1; i < 10'000; ++i) text += ",0";
    text += "]";
    std::size_t smallest_fit = 0;
    for (std::size_t limit = text.size(); limit < 40 * text.size(); limit += 997) {
        auto error = JsonDocument::Error::malformed;
        const auto doc = JsonDocument::parse(text, limit, error);
        if (!doc) {
            EXPECT_EQ(error, JsonDocument::Error::too_large) << limit;
            EXPECT_EQ(smallest_fit, 0u) << "refused at " << limit << " after a fit";
            continue;
        }
        EXPECT_LE(doc->memory(), limit);
        EXPECT_EQ(doc->root().size(), 10'000u);
        if (smallest_fit == 0) smallest_fit = limit;
    }
    // The node array doubles: when it grows to hold the 10,001st node, the array it outgrew (at
    // least half as large) is still held, and counted.
    EXPECT_GE(smallest_fit, text.size() + (10'001 + 5'001) * 16);
    EXPECT_LE(smallest_fit, text.size() + 3 * 10'001 * 16);
}

TEST(JsonDocument, AnyRootValue) {
    EXPECT_EQ(parse("[]")->root().kind(), Kind::array);
    EXPECT_EQ(parse(" 7 ")->root().int64(), 7);
    EXPECT_EQ(parse("\"s\"")->root().string(), "s");
    EXPECT_THROW(parse("{"), std::invalid_argument);
}

}  // namespace
}  // namespace hookrelay
