// RFC 9112 framing checks and client identification behind trusted proxies.
#include "http/framing.hpp"

#include <gtest/gtest.h>

namespace hookrelay::http {
namespace {

HeaderMap with_host(std::initializer_list<std::pair<std::string, std::string>> extra) {
    HeaderMap h{{"Host", "relay.example"}};
    for (const auto& [k, v] : extra) h.add(k, v);
    return h;
}

TEST(Framing, AcceptsPlainAndChunkedRequests) {
    EXPECT_FALSE(check_framing(11, with_host({{"Content-Length", "12"}})));
    EXPECT_FALSE(check_framing(11, with_host({{"Transfer-Encoding", "chunked"}})));
    EXPECT_FALSE(check_framing(11, with_host({{"Transfer-Encoding", " Chunked "}})));
    EXPECT_FALSE(check_framing(10, HeaderMap{}));  // HTTP/1.0 needs no Host
}

TEST(Framing, RejectsHttp11WithoutHost) {
    auto problem = check_framing(11, HeaderMap{{"Content-Length", "0"}});
    ASSERT_TRUE(problem);
    EXPECT_EQ(problem->status, 400u);
    EXPECT_NE(problem->reason.find("Host"), std::string::npos);
}

TEST(Framing, RejectsTwoHosts) {
    EXPECT_EQ(check_framing(11, with_host({{"Host", "other.example"}}))->status, 400u);
    EXPECT_EQ(check_framing(10, HeaderMap{{"Host", "a"}, {"Host", "b"}})->status, 400u);
}

TEST(Framing, RejectsTransferEncodingWhoseFinalCodingIsNotChunked) {
    for (const char* te : {"xchunked", "gzip", "chunked, identity", "identity", "chunkedx"}) {
        auto problem = check_framing(11, with_host({{"Transfer-Encoding", te}}));
        ASSERT_TRUE(problem) << te;
        EXPECT_EQ(problem->status, 400u) << te;
    }
}

TEST(Framing, RejectsTransferEncodingSplitOverFieldsEndingInAnotherCoding) {
    auto problem = check_framing(
        11, with_host({{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "gzip"}}));
    ASSERT_TRUE(problem);
    EXPECT_EQ(problem->status, 400u);
}

TEST(Framing, AnswersUnsupportedCodingBeforeChunkedWith501) {
    auto problem = check_framing(11, with_host({{"Transfer-Encoding", "gzip, chunked"}}));
    ASSERT_TRUE(problem);
    EXPECT_EQ(problem->status, 501u);
}

TEST(Framing, RejectsChunkedTwice) {
    EXPECT_EQ(check_framing(11, with_host({{"Transfer-Encoding", "chunked, chunked"}}))->status,
              400u);
}

TEST(Framing, RejectsTransferEncodingWithContentLength) {
    EXPECT_EQ(
        check_framing(11, with_host({{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}}))
            ->status,
        400u);
}

TEST(Framing, RejectsTransferEncodingInHttp10) {
    EXPECT_EQ(check_framing(10, HeaderMap{{"Transfer-Encoding", "chunked"}})->status, 400u);
}

IpAddress ip(const char* text) {
    return *parse_ip(text);
}

std::vector<Cidr> ranges(std::initializer_list<const char*> texts) {
    std::vector<Cidr> out;
    for (const auto* t : texts) out.push_back(*parse_cidr(t));
    return out;
}

TEST(ClientAddress, IgnoresForwardingHeadersFromUntrustedPeers) {
    HeaderMap h{{"X-Forwarded-For", "192.0.2.7"}, {"Forwarded", "for=192.0.2.8"}};
    EXPECT_EQ(client_address(ip("203.0.113.9"), h, ranges({"10.0.0.0/8"}),
                             ForwardedHeader::x_forwarded_for),
              ip("203.0.113.9"));
}

TEST(ClientAddress, TakesTheRightmostUntrustedAddressFromXForwardedFor) {
    // The client wrote "1.1.1.1" itself; the trusted proxy appended what it saw.
    HeaderMap h{{"X-Forwarded-For", "1.1.1.1, 192.0.2.7"}, {"X-Forwarded-For", "10.0.0.5"}};
    EXPECT_EQ(
        client_address(ip("10.0.0.1"), h, ranges({"10.0.0.0/8"}), ForwardedHeader::x_forwarded_for),
        ip("192.0.2.7"));
}

TEST(ClientAddress, UsesThePeerWhenATrustedProxySendsNoHeader) {
    EXPECT_EQ(client_address(ip("10.0.0.1"), HeaderMap{}, ranges({"10.0.0.0/8"}),
                             ForwardedHeader::x_forwarded_for),
              ip("10.0.0.1"));
}

TEST(ClientAddress, IsUnknownWhenTheNearestEntryIsNotAnAddress) {
    HeaderMap h{{"X-Forwarded-For", "192.0.2.7, unknown"}};
    EXPECT_FALSE(client_address(ip("10.0.0.1"), h, ranges({"10.0.0.0/8"}),
                                ForwardedHeader::x_forwarded_for));
}

TEST(ClientAddress, ReadsRfc7239ForwardedWhenConfigured) {
    HeaderMap h{{"Forwarded", R"(for=198.51.100.17;proto=https, for="[2001:db8::5]:4711")"},
                {"X-Forwarded-For", "1.2.3.4"}};
    EXPECT_EQ(client_address(ip("10.0.0.1"), h, ranges({"10.0.0.0/8"}), ForwardedHeader::forwarded),
              ip("2001:db8::5"));
    // The other header is not read: a client could have written it.
    EXPECT_EQ(client_address(ip("10.0.0.1"), HeaderMap{{"X-Forwarded-For", "1.2.3.4"}},
                             ranges({"10.0.0.0/8"}), ForwardedHeader::forwarded),
              ip("10.0.0.1"));
}

TEST(ClientAddress, ObfuscatedForwardedNodeIsUnknown) {
    HeaderMap h{{"Forwarded", "for=_hidden"}};
    EXPECT_FALSE(
        client_address(ip("10.0.0.1"), h, ranges({"10.0.0.0/8"}), ForwardedHeader::forwarded));
}

}  // namespace
}  // namespace hookrelay::http
