// Sizes: bytes, or a count with a unit. What a user writes is taken as written or refused with
// the key's name, never wrapped around into another size.
#include "config/load.hpp"
#include "load_errors.hpp"

#include <gmock/gmock.h>

namespace hookrelay::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(ConfigSizes, UnitsAreTakenAsWritten) {
    EXPECT_EQ(parse_size("65536"), 65536u);
    EXPECT_EQ(parse_size("512B"), 512u);
    EXPECT_EQ(parse_size("64KiB"), 64u * 1024);
    EXPECT_EQ(parse_size("25MB"), 25'000'000u);
    EXPECT_EQ(parse_size("2000GiB"), 2000ull << 30);
    EXPECT_EQ(parse_size("1048576GiB"), 1ull << 50);  // the largest: 1 PiB
    EXPECT_EQ(parse_size("12 MiB"), std::nullopt);
    EXPECT_EQ(parse_size("12TiB"), std::nullopt);
}

// 17179869185 GiB is 2^64 + 2^30 bytes: multiplied without a check it wrapped to 1 GiB, and a
// store.max_size meant as "practically unlimited" became 1 GiB.
TEST(ConfigSizes, AnAmountBeyondAPebibyteIsRefusedRatherThanWrapped) {
    EXPECT_EQ(parse_size("17179869185GiB"), std::nullopt);
    EXPECT_EQ(parse_size("1048577GiB"), std::nullopt);
    EXPECT_EQ(parse_size("18446744073709551615"), std::nullopt);
    const std::string config =
        "store: {max_size: 17179869185GiB}\n"
        "sources:\n  gh: {provider: github, insecure: true}\n";
    EXPECT_THAT(load_errors(config),
                ElementsAre(HasSubstr("store.max_size: '17179869185GiB' is not a size")));
    EXPECT_THAT(load_errors("store: {max_size: 4GiB}\n"
                            "sources:\n  gh: {provider: github, insecure: true}\n"),
                IsEmpty());
}

}  // namespace
}  // namespace hookrelay::config
