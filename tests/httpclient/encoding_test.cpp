// The pure encodings of the outbound HTTP client, shared by the Jenkins client and the forge
// status APIs (the Jenkins-only ones, job paths and item names, are in tests/jenkins/).
#include "httpclient/encoding.hpp"

#include <gtest/gtest.h>

namespace hookrelay::httpclient {
namespace {

TEST(PercentEncode, KeepsOnlyUnreservedCharacters) {
    EXPECT_EQ(percent_encode("AZaz09-._~"), "AZaz09-._~");
    EXPECT_EQ(percent_encode("group/sub app"), "group%2Fsub%20app");
    EXPECT_EQ(percent_encode("\xC3\xA9"), "%C3%A9");
}

// 1994-11-06 08:49:30 UTC: seven seconds before RFC 9110's example date.
const auto k_example_now = std::chrono::sys_days(std::chrono::year(1994) / 11 / 6) +
                           std::chrono::hours(8) + std::chrono::minutes(49) +
                           std::chrono::seconds(30);

TEST(ParseRetryAfter, DeltaSecondsIsTheDelay) {
    using std::chrono::milliseconds;
    EXPECT_EQ(parse_retry_after("120", k_example_now), milliseconds(120'000));
    EXPECT_EQ(parse_retry_after("0", k_example_now), milliseconds(0));
    EXPECT_EQ(parse_retry_after(" \t5 ", k_example_now), milliseconds(5'000));
}

TEST(ParseRetryAfter, HugeDeltaIsCappedNotRefused) {
    EXPECT_EQ(parse_retry_after("99999999999999999999999999", k_example_now), k_max_retry_after);
}

TEST(ParseRetryAfter, AcceptsAllThreeHttpDateForms) {
    using std::chrono::milliseconds;
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", k_example_now),
              milliseconds(7'000));
    EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", k_example_now),
              milliseconds(7'000));
    EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:37 1994", k_example_now), milliseconds(7'000));
    EXPECT_EQ(parse_retry_after("Mon, 07 Nov 1994 08:49:30 GMT", k_example_now),
              milliseconds(86'400'000));
}

TEST(ParseRetryAfter, Rfc850YearIsAtMostFiftyYearsAhead) {
    using namespace std::chrono;
    const auto now = sys_days(year(2026) / 1 / 1);
    EXPECT_EQ(parse_retry_after("Thursday, 01-Jan-26 00:00:10 GMT", now), milliseconds(10'000));
    // 2077 would be more than 50 years ahead: it is 1977, long past.
    EXPECT_EQ(parse_retry_after("Saturday, 01-Jan-77 00:00:00 GMT", now), milliseconds(0));
}

TEST(ParseRetryAfter, DateInThePastIsNoDelay) {
    EXPECT_EQ(parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", k_example_now),
              std::chrono::milliseconds(0));
}

TEST(ParseRetryAfter, RejectsWhatIsNeitherForm) {
    for (const char* bad :
         {"", " ", "-5", "1.5", "5s", "soon", "Sun, 31 Feb 1994 08:49:37 GMT",
          "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 24:00:00 GMT",
          "Sun, 06 Nov 1994 08:49:37 GMT trailing", "Sun, 6 Nov 1994 08:49:37 GMT",
          "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun Nov 6 08:49:37 1994"}) {
        EXPECT_EQ(parse_retry_after(bad, k_example_now), std::nullopt) << "'" << bad << "'";
    }
}

TEST(StatusLineCode, ReadsTheCodeOfAnHttp1Head) {
    EXPECT_EQ(status_line_code("HTTP/1.1 201 Created\r\nLocation: x"), 201);
    EXPECT_EQ(status_line_code("HTTP/1.0 303 \r\n"), 303);
    EXPECT_EQ(status_line_code("HTTP/1.1 429\r\n"), 429);
    EXPECT_EQ(status_line_code("HTTP/1.1 201"), 201);
    for (const char* bad : {"", "HTTP/1.1", "HTTP/1.1 20", "HTTP/1.1 2010 x", "HTTP/11 201 x",
                            "HTTP/1.1 abc x", "http/1.1 201 x", "HTTP/1.1 099 x"}) {
        EXPECT_EQ(status_line_code(bad), std::nullopt) << bad;
    }
}

TEST(FormEncode, EncodesBothSides) {
    EXPECT_EQ(form_encode({{"cause", "push to main"}, {"SHA", "a&b=c/d"}}),
              "cause=push+to+main&SHA=a%26b%3Dc%2Fd");
    EXPECT_EQ(form_encode({}), "");
    EXPECT_EQ(form_encode({{"k", ""}}), "k=");
    EXPECT_EQ(form_encode({{"plus", "1+1"}}), "plus=1%2B1");
}

TEST(Base64, Rfc4648Vectors) {
    EXPECT_EQ(base64(""), "");
    EXPECT_EQ(base64("f"), "Zg==");
    EXPECT_EQ(base64("fo"), "Zm8=");
    EXPECT_EQ(base64("foo"), "Zm9v");
    EXPECT_EQ(base64("foob"), "Zm9vYg==");
    EXPECT_EQ(base64("fooba"), "Zm9vYmE=");
    EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
    EXPECT_EQ(base64("\xFF\xFE"), "//4=");
}

TEST(ParseBaseUrl, AcceptsHttpAndHttps) {
    std::string why;
    auto a = parse_base_url("http://127.0.0.1:8080/", why);
    ASSERT_TRUE(a) << why;
    EXPECT_FALSE(a->tls);
    EXPECT_EQ(a->host, "127.0.0.1");
    EXPECT_EQ(a->port, 8080);
    EXPECT_EQ(a->path, "/");
    EXPECT_EQ(a->host_header, "127.0.0.1:8080");
    EXPECT_EQ(a->origin, "http://127.0.0.1:8080");

    auto b = parse_base_url("HTTPS://ci.example.com/jenkins/", why);
    ASSERT_TRUE(b) << why;
    EXPECT_TRUE(b->tls);
    EXPECT_EQ(b->port, 443);
    EXPECT_EQ(b->path, "/jenkins/");
    EXPECT_EQ(b->host_header, "ci.example.com");

    auto c = parse_base_url("http://[::1]:9000/", why);
    ASSERT_TRUE(c) << why;
    EXPECT_EQ(c->host, "::1");
    EXPECT_EQ(c->host_header, "[::1]:9000");

    auto d = parse_base_url("http://jenkins", why);
    ASSERT_TRUE(d) << why;
    EXPECT_EQ(d->path, "/");
    EXPECT_EQ(d->port, 80);
}

TEST(ParseBaseUrl, RejectsAnythingElse) {
    for (const char* url :
         {"ftp://h/", "h:8080/", "http://", "http:///", "http://h:0/", "http://h:65536/",
          "http://h:80x/", "http://h:/", "http://user:pw@h/", "http://h/jenkins", "http://h/?x=1/",
          "http://h/#f/", "http://h/a b/", "http://[::1/", "http://h h/"}) {
        std::string why;
        EXPECT_FALSE(parse_base_url(url, why)) << url;
        EXPECT_FALSE(why.empty()) << url;
    }
}

}  // namespace
}  // namespace hookrelay::httpclient
