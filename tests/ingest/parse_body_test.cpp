#include "ingest/fixture.hpp"

namespace hookrelay {
namespace {

using ingest::parse_body;
using test::load_delivery;

TEST(ParseBody, ParsesJsonObject) {
    const auto v = parse_body("application/json", R"({"ref":"refs/heads/main","n":1})");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->at("ref").as_string(), "refs/heads/main");
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
    EXPECT_EQ(v->at("ref").as_string(), "refs/heads/master");
    EXPECT_EQ(v->at("after").as_string(), "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
}

TEST(ParseBody, FormAndJsonFixturesDecodeToTheSamePayload) {
    const auto form = load_delivery("github", "push-branch-created-form", "form");
    const auto json = load_delivery("github", "push-branch-created");
    const auto a = parse_body(form.content_type, form.body);
    const auto b = parse_body(json.content_type, json.body);
    ASSERT_TRUE(a);
    ASSERT_TRUE(b);
    EXPECT_EQ(*a, *b);
}

TEST(ParseBody, FormDecodesPlusAsSpace) {
    const auto v = parse_body("application/x-www-form-urlencoded; charset=utf-8",
                              "other=1&payload=%7B%22msg%22%3A%22a+b%2Bc%22%7D");
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_EQ(v->at("msg").as_string(), "a b+c");
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

}  // namespace
}  // namespace hookrelay
