#include <hookrelay/cidr.hpp>

#include <gtest/gtest.h>

namespace hookrelay {
namespace {

TEST(Cidr, ParsesAddressesOfBothFamilies) {
    EXPECT_TRUE(parse_ip("192.0.2.1"));
    EXPECT_TRUE(parse_ip("2001:db8::1"));
    EXPECT_TRUE(parse_ip("[2001:db8::1]"));
    for (const char* bad :
         {"", "localhost", "192.0.2.1:80", "300.1.1.1", "fe80::1%eth0", "1.2.3"}) {
        EXPECT_FALSE(parse_ip(bad)) << bad;
    }
}

TEST(Cidr, TreatsV4MappedV6AsV4) {
    auto mapped = parse_ip("::ffff:192.0.2.1");
    ASSERT_TRUE(mapped);
    EXPECT_TRUE(mapped->v4);
    EXPECT_EQ(to_string(*mapped), "192.0.2.1");
    EXPECT_TRUE(parse_cidr("192.0.2.0/24")->contains(*mapped));
}

TEST(Cidr, ContainsOnlyAddressesInsideThePrefix) {
    auto github = parse_cidr("192.30.252.0/22");
    ASSERT_TRUE(github);
    EXPECT_TRUE(github->contains(*parse_ip("192.30.252.1")));
    EXPECT_TRUE(github->contains(*parse_ip("192.30.255.254")));
    EXPECT_FALSE(github->contains(*parse_ip("192.30.251.255")));
    EXPECT_FALSE(github->contains(*parse_ip("2001:db8::1")));
    auto v6 = parse_cidr("2001:db8::/32");
    EXPECT_TRUE(v6->contains(*parse_ip("2001:db8:ffff::1")));
    EXPECT_FALSE(v6->contains(*parse_ip("2001:db9::1")));
}

TEST(Cidr, BareAddressIsASingleHost) {
    auto one = parse_cidr("10.1.2.3");
    EXPECT_TRUE(one->contains(*parse_ip("10.1.2.3")));
    EXPECT_FALSE(one->contains(*parse_ip("10.1.2.4")));
}

// Per-client limits count an IPv6 client by its /64: a host given one can take any address in
// it, and would otherwise be as many clients as it likes.
TEST(Cidr, ClientKeyIsTheAddressForIpv4AndTheSlash64ForIpv6) {
    EXPECT_EQ(client_key(*parse_ip("192.0.2.7")), "192.0.2.7");
    EXPECT_EQ(client_key(*parse_ip("::ffff:192.0.2.7")), "192.0.2.7");
    EXPECT_EQ(client_key(*parse_ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), "2001:db8:1:2::/64");
    EXPECT_EQ(client_key(*parse_ip("2001:db8:1:2::1")), client_key(*parse_ip("2001:db8:1:2::ff")));
    EXPECT_NE(client_key(*parse_ip("2001:db8:1:2::1")), client_key(*parse_ip("2001:db8:1:3::1")));
    EXPECT_EQ(client_key(*parse_ip("::1")), "::/64");
}

TEST(Cidr, RejectsMalformedRanges) {
    for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::/129", "host/8", "/8"}) {
        EXPECT_FALSE(parse_cidr(bad)) << bad;
    }
    EXPECT_TRUE(parse_cidr("0.0.0.0/0")->contains(*parse_ip("203.0.113.1")));
}

}  // namespace
}  // namespace hookrelay
