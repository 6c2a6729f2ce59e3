#include "jenkins/response.hpp"

#include <gtest/gtest.h>

namespace hookrelay::jenkins {
namespace {

BaseUrl base(std::string_view url) {
    std::string why;
    auto parsed = parse_base_url(url, why);
    EXPECT_TRUE(parsed) << why;
    return parsed.value_or(BaseUrl{});
}

TEST(ResolveLocation, AbsoluteLocationIsKept) {
    EXPECT_EQ(resolve_location(base("http://ci:8080/jenkins/"), "https://other/queue/item/7/"),
              "https://other/queue/item/7/");
}

TEST(ResolveLocation, PathIsResolvedOnTheOrigin) {
    EXPECT_EQ(resolve_location(base("http://ci:8080/jenkins/"), "/jenkins/queue/item/7/"),
              "http://ci:8080/jenkins/queue/item/7/");
}

TEST(ResolveLocation, RelativeLocationIsResolvedAgainstTheUrlPath) {
    // build-token-root answers "queue/item/7/" (jenkins-remote-api.md §5.1).
    EXPECT_EQ(resolve_location(base("https://ci.example.com/jenkins/"), "queue/item/7/"),
              "https://ci.example.com/jenkins/queue/item/7/");
}

TEST(ResolveLocation, EmptyLocationStaysEmpty) {
    EXPECT_EQ(resolve_location(base("http://ci/"), ""), "");
}

TEST(ParseCrumb, ReadsFieldValueAndSessionCookies) {
    const auto crumb =
        parse_crumb(R"({"_class":"hudson.security.csrf.DefaultCrumbIssuer","crumb":"abc123",)"
                    R"("crumbRequestField":"Jenkins-Crumb"})",
                    {"JSESSIONID.1=node01; Path=/; HttpOnly", "bad", " other=2 "});
    ASSERT_TRUE(crumb);
    EXPECT_EQ(crumb->field, "Jenkins-Crumb");
    EXPECT_EQ(crumb->value, "abc123");
    EXPECT_EQ(crumb->cookie, "JSESSIONID.1=node01; other=2");
}

TEST(ParseCrumb, RejectsWhatCouldNotBeSent) {
    for (const char* body : {
             "",
             "<html>Jenkins</html>",
             R"(["crumb","Jenkins-Crumb"])",
             R"({"crumb":"abc"})",
             R"({"crumbRequestField":"Jenkins-Crumb"})",
             R"({"crumb":7,"crumbRequestField":"Jenkins-Crumb"})",
             R"({"crumb":"abc","crumbRequestField":"Jenkins Crumb"})",
             R"({"crumb":"abc","crumbRequestField":"X: y"})",
             R"({"crumb":"abc","crumbRequestField":""})",
             R"({"crumb":"a\r\nX-Injected: 1","crumbRequestField":"Jenkins-Crumb"})",
         }) {
        EXPECT_FALSE(parse_crumb(body, {})) << body;
    }
}

TEST(CookiePair, KeepsOnlyTheNameValuePair) {
    EXPECT_EQ(cookie_pair("JSESSIONID=x; Path=/; HttpOnly"), "JSESSIONID=x");
    EXPECT_EQ(cookie_pair("\t a=b \t"), "a=b");
    EXPECT_EQ(cookie_pair("a="), "a=");
    EXPECT_EQ(cookie_pair("=b"), "");
    EXPECT_EQ(cookie_pair("novalue; a=b"), "");
    EXPECT_EQ(cookie_pair(""), "");
}

}  // namespace
}  // namespace hookrelay::jenkins
