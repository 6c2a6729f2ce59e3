// Whether `listen:` names where a socket from systemd listens: the daemon warns at start when it
// does not (tests/integration/systemd_test.cpp checks the warning on the real binary).
#include "app/passed_socket.hpp"

#include <gtest/gtest.h>

namespace hookrelay::app {
namespace {

TEST(PassedSocket, TheSameAddressAndPortIsTheSamePlace) {
    EXPECT_TRUE(listen_names("127.0.0.1", 8080, "127.0.0.1", 8080));
    EXPECT_TRUE(listen_names("::1", 8080, "::1", 8080));
    EXPECT_TRUE(listen_names("fe80::1%1", 8080, "fe80::1%1", 8080));
}

TEST(PassedSocket, AnotherPortOrAddressIsAnotherPlace) {
    EXPECT_FALSE(listen_names("127.0.0.1", 8080, "127.0.0.1", 8081));
    EXPECT_FALSE(listen_names("127.0.0.1", 8080, "192.0.2.10", 8080));
    EXPECT_FALSE(listen_names("::1", 8080, "127.0.0.1", 8080));
}

// The shipped config's 127.0.0.1:8080 against the old hookrelay.socket's ListenStream=8080,
// which binds every address: the case the warning is for.
TEST(PassedSocket, LoopbackIsNotEveryAddress) {
    EXPECT_FALSE(listen_names("127.0.0.1", 8080, "::", 8080));
    EXPECT_FALSE(listen_names("127.0.0.1", 8080, "0.0.0.0", 8080));
}

TEST(PassedSocket, EveryIpv4AddressIsServedByASocketOnEveryAddressOfEitherFamily) {
    EXPECT_TRUE(listen_names("0.0.0.0", 8080, "0.0.0.0", 8080));
    EXPECT_TRUE(listen_names("0.0.0.0", 8080, "::", 8080));
    EXPECT_TRUE(listen_names("::", 8080, "::", 8080));
    // A socket on 0.0.0.0 takes no IPv6 connection.
    EXPECT_FALSE(listen_names("::", 8080, "0.0.0.0", 8080));
}

TEST(PassedSocket, AnIpv4MappedAddressIsItsIpv4Address) {
    EXPECT_TRUE(listen_names("127.0.0.1", 8080, "::ffff:127.0.0.1", 8080));
    EXPECT_TRUE(listen_names("::ffff:127.0.0.1", 8080, "127.0.0.1", 8080));
}

TEST(PassedSocket, TextThatIsNoAddressNamesNoPlace) {
    EXPECT_FALSE(listen_names("localhost", 8080, "127.0.0.1", 8080));
    EXPECT_FALSE(listen_names("127.0.0.1", 8080, "", 8080));
}

TEST(PassedSocket, AddressesAreWrittenAsListenStreamTakesThem) {
    EXPECT_EQ(host_port("127.0.0.1", 8080), "127.0.0.1:8080");
    EXPECT_EQ(host_port("::", 8080), "[::]:8080");
}

}  // namespace
}  // namespace hookrelay::app
