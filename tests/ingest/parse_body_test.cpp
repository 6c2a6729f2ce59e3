#include "ingest/fixture.hpp"

#include <fmt/format.h>

namespace hookrelay {
namespace {

using ingest::parse_body;
using test::load_delivery;

TEST(ParseBody, ParsesJsonObject) {
    const auto v = parse_body("application/json", R"({"ref":"refs/heads/main","n":1})");
    ASSERT_TRUE(v);
    EXPECT_EQ((*v)->root().member("ref").string(), "refs/heads/main");
    EXPECT_EQ((*v)->root().member("n").int64(), 1);
}

TEST(ParseBody, IgnoresCharsetAndCase) {
    for (const auto* type : {"application/json; charset=utf-8", "Application/JSON",
                             "application/json ;charset=UTF-8", " application/json"}) {
        EXPECT_TRUE(parse_body(type, R"({"a":1})")) << type;
    }
}

TEST(ParseBody, ParsesGithubFormPayload) {
    const auto d = load_delivery("github", "push-branch-created-form", "form");
    const auto v = parse_body(d.content_type, d.body);
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_EQ((*v)->root().member("ref").string(), "refs/heads/master");
    EXPECT_EQ((*v)->root().member("after").string(), "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
}

TEST(ParseBody, FormAndJsonFixturesDecodeToTheSamePayload) {
    const auto form = load_delivery("github", "push-branch-created-form", "form");
    const auto json = load_delivery("github", "push-branch-created");
    const auto a = parse_body(form.content_type, form.body);
    const auto b = parse_body(json.content_type, json.body);
    ASSERT_TRUE(a);
    ASSERT_TRUE(b);
    EXPECT_EQ((*a)->root().serialize(), (*b)->root().serialize());
}

TEST(ParseBody, FormDecodesPlusAsSpace) {
    const auto v = parse_body("application/x-www-form-urlencoded; charset=utf-8",
                              "other=1&payload=%7B%22msg%22%3A%22a+b%2Bc%22%7D");
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_EQ((*v)->root().member("msg").string(), "a b+c");
}

TEST(ParseBody, RejectsFormWithoutPayload) {
    const auto type = "application/x-www-form-urlencoded";
    EXPECT_EQ(parse_body(type, "").error(), errc::malformed_form);
    EXPECT_EQ(parse_body(type, "data=%7B%7D").error(), errc::malformed_form);
    EXPECT_EQ(parse_body(type, "payload").error(), errc::malformed_form);
}

TEST(ParseBody, RejectsEmptyBodyWithoutStorage) {
    // An empty body may arrive as a view with no storage behind it (data() == nullptr, as over an
    // empty buffer). Boost.URL 1.81's parse_query crashed on that (found by fuzz/ingest.cpp).
    EXPECT_EQ(parse_body("application/x-www-form-urlencoded", std::string_view{}).error(),
              errc::malformed_form);
    EXPECT_EQ(parse_body("application/json", std::string_view{}).error(), errc::malformed_json);
}

TEST(ParseBody, RejectsFormWithBadEscapes) {
    EXPECT_EQ(parse_body("application/x-www-form-urlencoded", "payload=%7").error(),
              errc::malformed_form);
}

TEST(ParseBody, RejectsFormWithBadJson) {
    EXPECT_EQ(parse_body("application/x-www-form-urlencoded", "payload=%7B").error(),
              errc::malformed_json);
}

TEST(ParseBody, RejectsBadJson) {
    for (const auto* body : {"", "{", R"({"a":})", "{} trailing", "\xff\xfe"}) {
        EXPECT_EQ(parse_body("application/json", body).error(), errc::malformed_json) << body;
    }
}

TEST(ParseBody, RejectsNonObjectJson) {
    for (const auto* body : {"[]", "1", "\"x\"", "null", "true"}) {
        EXPECT_EQ(parse_body("application/json", body).error(), errc::malformed_json) << body;
    }
}

TEST(ParseBody, RejectsTruncatedFixture) {
    const auto d = load_delivery("github", "pull_request-opened");
    EXPECT_EQ(parse_body(d.content_type, d.body.substr(0, d.body.size() / 2)).error(),
              errc::malformed_json);
}

TEST(ParseBody, RejectsDeepNestingWithoutCrashing) {
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    EXPECT_EQ(parse_body("application/json", R"({"a":)" + deep + "}").error(),
              errc::malformed_json);
}

TEST(ParseBody, RejectsOtherMediaTypes) {
    for (const auto* type : {"", "text/plain", "application/xml", "application/jsonx",
                             "multipart/form-data; boundary=x"}) {
        EXPECT_EQ(parse_body(type, "{}").error(), errc::unsupported_media_type) << type;
    }
}

// {"a":[0,0,...]}: the JSON whose parsed form is largest per byte (a 16-byte node per 2 bytes).
std::string small_elements(std::size_t count) {
    std::string body = R"({"a":[)";
    body.reserve(count * 2 + 8);
    for (std::size_t i = 0; i < count; ++i) body += i == 0 ? "0" : ",0";
    return body + "]}";
}

constexpr std::size_t k_mib = 1024 * 1024;

TEST(ParseBody, RefusesABodyWhoseParsedFormPassesTheMemoryLimit) {
    // 200 KB of body: its copy, and 100,003 nodes of 16 bytes (1.6 MB).
    const auto body = small_elements(100'000);
    EXPECT_EQ(parse_body("application/json", body, 3 * k_mib / 2).error(), errc::payload_too_large);
}

TEST(ParseBody, ParsesABodyWithinTheMemoryLimit) {
    // The 1.6 MB of nodes, and while they grow the array they outgrew (0.8 MB), both counted.
    const auto body = small_elements(100'000);
    const auto v = parse_body("application/json", body, 3 * k_mib);
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_EQ((*v)->root().member("a").size(), 100'000u);
    EXPECT_LE((*v)->memory(), 3 * k_mib);
    EXPECT_EQ((*v)->root().member("a").element(99'999).int64(), 0);
}

TEST(ParseBody, FormPayloadCountsItsDecodedCopy) {
    // One 1 MiB string: the document holds its 1 MiB copy of the text (and reserves nodes in
    // part of the room left); a form body's decoded 1 MiB is held during the parse as well.
    const std::string json = R"({"s":")" + std::string(k_mib, 'x') + R"("})";
    const auto limit = k_mib + k_mib / 2;
    EXPECT_TRUE(parse_body("application/json", json, limit));
    std::string form = "payload=%7B%22s%22%3A%22" + std::string(k_mib, 'x') + "%22%7D";
    EXPECT_EQ(parse_body("application/x-www-form-urlencoded", form, limit).error(),
              errc::payload_too_large);
}

TEST(ParseBody, StringsWithEscapesAreReadUnescaped) {
    // Strings without escapes are read where they lie in the document's copy of the text; the
    // others are unescaped beside it. Both must read the same way, keys too.
    const auto v = parse_body("application/json",
                              R"({"plain":"a/b","esc\u0061ped":"a\/b\n\u00e9\ud83d\ude00","":""})");
    ASSERT_TRUE(v) << v.error().message();
    const auto root = (*v)->root();
    EXPECT_EQ(root.member("plain").string(), "a/b");
    EXPECT_EQ(root.member("escaped").string(), "a/b\n\xc3\xa9\xf0\x9f\x98\x80");
    EXPECT_EQ(root.member("").string(), "");
    EXPECT_FALSE(root.member("esc"));
    EXPECT_EQ(root.size(), 3u);
}

TEST(ParseBody, EscapedStringsCountAgainstTheLimit) {
    // One string of 100,000 escapes: 600 KB of text that unescapes to 100,000 bytes held beside
    // the document's copy of the text. With room for the copy and those bytes but not one node
    // more, it is refused; it would not be if the unescaped bytes were not counted.
    std::string body = R"({"s":")";
    for (int i = 0; i < 100'000; ++i) body += R"(\u0041)";
    body += R"("})";
    EXPECT_EQ(parse_body("application/json", body, body.size() + 100'000).error(),
              errc::payload_too_large);
    const auto v = parse_body("application/json", body, body.size() + k_mib);
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_EQ((*v)->root().member("s").string(), std::string(100'000, 'A'));
    EXPECT_GE((*v)->memory(), body.size() + 100'000);
    EXPECT_LE((*v)->memory(), body.size() + k_mib);
}

// A push at GitHub's limits: 2,048 commits (GitHub's cap) of 450 distinct files each, in the
// 25 MiB GitHub sends at most (bench/memory/payloads.py github-push-max writes the same shape).
std::string maximal_github_push() {
    auto push = test::fixture_json("github", "push-branch-update").as_object();
    const auto commit = push.at("commits").at(0).as_object();
    boost::json::array commits;
    for (int c = 0; c < 2048; ++c) {
        auto copy = commit;
        boost::json::array lists[3];
        for (int i = 0; i < 450; ++i) {
            lists[i / 150].emplace_back(fmt::format("src/c{:04}/f{:03}_xxxxxx.go", c, i));
        }
        copy["added"] = std::move(lists[0]);
        copy["removed"] = std::move(lists[1]);
        copy["modified"] = std::move(lists[2]);
        commits.emplace_back(std::move(copy));
    }
    push["head_commit"] = commits.back();
    push["commits"] = std::move(commits);
    return boost::json::serialize(push);
}

TEST(ParseBody, DefaultLimitParsesAMaximalGithubPush) {
    const auto body = maximal_github_push();
    ASSERT_GT(body.size(), 24 * k_mib);
    ASSERT_LE(body.size(), 25 * k_mib);
    const auto v = parse_body("application/json", body);
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_EQ((*v)->root().member("commits").size(), 2048u);
}

}  // namespace
}  // namespace hookrelay
