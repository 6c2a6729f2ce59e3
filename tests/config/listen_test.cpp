// `listen` and `admin.listen`: hookrelay binds IP addresses only, and says so at `check` time
// (with the fix) instead of `run` dying with "Invalid argument".
#include "config/load.hpp"

#include <gmock/gmock.h>

namespace hookrelay::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr std::string_view k_sources = "sources:\n  gh: {provider: github, insecure: true}\n";

std::vector<std::string> errors_for(const std::string& yaml) {
    const auto loaded = load_string(yaml + std::string(k_sources), "c.yaml");
    std::vector<std::string> out;
    for (const auto& e : loaded.errors) out.push_back(to_string(e));
    return out;
}

TEST(ConfigListen, HostNameIsRefusedWithTheFix) {
    EXPECT_THAT(errors_for("listen: localhost:8080\n"),
                ElementsAre("c.yaml:1:9: listen: 'localhost' is not an IP address (hookrelay does "
                            "not resolve host names): use 127.0.0.1:8080 or [::1]:8080"));
}

TEST(ConfigListen, OtherHostNamesAreRefusedWithTheFix) {
    EXPECT_THAT(errors_for("listen: \"ci.example.com:80\"\n"),
                ElementsAre("c.yaml:1:10: listen: 'ci.example.com' is not an IP address "
                            "(hookrelay does not resolve host names): use the address of the "
                            "interface to listen on, 0.0.0.0:80 (every IPv4 interface) or [::]:80 "
                            "(every interface)"));
}

TEST(ConfigListen, AdminHostNameIsRefusedWithTheFix) {
    EXPECT_THAT(errors_for("admin:\n  listen: localhost:9090\n"),
                ElementsAre("c.yaml:2:11: admin.listen: 'localhost' is not an IP address "
                            "(hookrelay does not resolve host names): use 127.0.0.1:9090 or "
                            "[::1]:9090"));
}

TEST(ConfigListen, IpAddressesAreAccepted) {
    for (const auto* listen : {"127.0.0.1:8080", "0.0.0.0:0", "\"[::]:8080\"", "\"[::1]:8080\"",
                               ":8080", "\"[fe80::1%lo]:8080\"", "10.1.2.3:65535"}) {
        EXPECT_THAT(
            errors_for(std::string("listen: ") + listen + "\nadmin:\n  listen: " + listen + "\n"),
            IsEmpty())
            << listen;
    }
}

}  // namespace
}  // namespace hookrelay::config
