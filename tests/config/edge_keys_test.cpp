// The public-edge keys: connection and memory limits, trusted proxies, TLS, allowlists.
#include "load_errors.hpp"

#include <gmock/gmock.h>

namespace hookrelay::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

LoadResult load(const std::string& yaml) {
    return load_string(yaml, "c.yaml");
}

constexpr const char* k_source = "sources:\n  gh: {provider: github, insecure: true}\n";

// The HTTP parser counts a head in 32 bits: 4GiB would have wrapped to 0 and refused every
// request with 431.
TEST(ConfigEdge, AHeaderLimitOverOneMebibyteIsRefused) {
    EXPECT_THAT(load_errors(std::string("server: {header_limit: 1MiB}\n") + k_source), IsEmpty());
    EXPECT_THAT(load_errors(std::string("server: {header_limit: 4GiB}\n") + k_source),
                ElementsAre(HasSubstr("server.header_limit (4294967296 bytes) is over")));
}

TEST(ConfigEdge, ReadsLimitsProxiesAndAllowlists) {
    auto loaded = load(R"(server:
  max_connections_per_client: 8
  body_memory: 64MiB
  body_memory_per_client: 30MiB
  trusted_proxies: [10.0.0.0/8, "2001:db8::1"]
  forwarded_header: Forwarded
admin: {max_connections: 10, max_connections_per_client: 2}
sources:
  gh:
    provider: github
    insecure: true
    allow_from: [192.30.252.0/22]
)");
    ASSERT_THAT(loaded.errors, IsEmpty());
    const auto& s = loaded.config->server;
    EXPECT_EQ(s.max_connections_per_client, 8u);
    EXPECT_EQ(s.body_memory, 64u << 20);
    EXPECT_EQ(s.body_memory_per_client, 30u << 20);
    ASSERT_EQ(s.trusted_proxies.size(), 2u);
    EXPECT_TRUE(s.trusted_proxies[0].contains(*parse_ip("10.200.0.1")));
    EXPECT_EQ(s.forwarded_header, "forwarded");
    EXPECT_EQ(loaded.config->admin.max_connections, 10u);
    EXPECT_EQ(loaded.config->admin.max_connections_per_client, 2u);
    ASSERT_EQ(loaded.config->sources[0].allow_from.size(), 1u);
    EXPECT_TRUE(loaded.config->sources[0].allow_from[0].contains(*parse_ip("192.30.255.1")));
}

TEST(ConfigEdge, BodyMemoryBelowBodyLimitIsAnError) {
    EXPECT_THAT(
        load_errors(std::string("server: {body_limit: 25MiB, body_memory: 10MiB}\n") + k_source),
        ElementsAre(HasSubstr("c.yaml:1:"), HasSubstr("body_memory_per_client")));
    EXPECT_THAT(
        load_errors(std::string("server: {body_limit: 25MiB, body_memory: 10MiB}\n") + k_source)[0],
        HasSubstr("must be at least body_limit"));
}

TEST(ConfigEdge, PerClientBodyMemoryMustFitBetweenLimitAndTotal) {
    EXPECT_THAT(load_errors(std::string("server: {body_memory_per_client: 1MiB}\n") + k_source),
                ElementsAre(HasSubstr("must lie between body_limit")));
}

TEST(ConfigEdge, HostNamesAndBadRangesAreNotAddresses) {
    EXPECT_THAT(
        load_errors(std::string("server: {trusted_proxies: [proxy.internal, 10.0.0.0/40]}\n") +
                    k_source),
        ElementsAre(HasSubstr("c.yaml:1:28: server.trusted_proxies: 'proxy.internal' is not an IP"),
                    HasSubstr("'10.0.0.0/40' is not an IP address or range")));
    EXPECT_THAT(load_errors("sources:\n  gh: {provider: github, insecure: true, allow_from: "
                            "github.com}\n"),
                ElementsAre(HasSubstr("source 'gh'.allow_from: 'github.com' is not an IP")));
}

TEST(ConfigEdge, ForwardedHeaderNeedsTrustedProxiesAndAKnownName) {
    EXPECT_THAT(
        load_errors(std::string("server: {forwarded_header: x-forwarded-for}\n") + k_source),
        ElementsAre(HasSubstr("only read from `trusted_proxies`")));
    EXPECT_THAT(load_errors(std::string("server: {trusted_proxies: [10.0.0.1], forwarded_header: "
                                        "x-forwarded-fro}\n") +
                            k_source),
                ElementsAre(HasSubstr("did you mean 'x-forwarded-for'")));
}

TEST(ConfigEdge, TlsNeedsCertificateAndKey) {
    EXPECT_THAT(
        load_errors(std::string("server:\n  tls: {certificate: /etc/hr/cert.pem}\n") + k_source),
        ElementsAre(HasSubstr("c.yaml:2:8: server.tls: `key:` is required")));
    auto loaded = load(
        std::string("server:\n  tls: {certificate: /c.pem, key: \"${file:/k.pem}\"}\n") + k_source);
    ASSERT_THAT(loaded.errors, IsEmpty());
    ASSERT_TRUE(loaded.config->server.tls);
    EXPECT_EQ(loaded.config->server.tls->certificate, "/c.pem");
    EXPECT_EQ(loaded.config->server.tls->key, "${file:/k.pem}");
}

}  // namespace
}  // namespace hookrelay::config
