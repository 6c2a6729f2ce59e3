// The body's digest every stored delivery shows (and a body window compares): SHA-256 as
// lowercase hex, what is_sha256_hex accepts, and the key both backends index it by.
#include "store/codec.hpp"

#include <gtest/gtest.h>

namespace hookrelay::store::test {
namespace {

TEST(BodySha256, IsLowercaseHexOfTheBytes) {
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_TRUE(is_sha256_hex(sha256_hex("abc")));
    EXPECT_FALSE(is_sha256_hex(""));
    EXPECT_FALSE(is_sha256_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
}

TEST(BodySha256, ItsKeyIsItsFirst64Bits) {
    EXPECT_EQ(body_key("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
              static_cast<std::int64_t>(0xba7816bf8f01cfeaULL));
}

}  // namespace
}  // namespace hookrelay::store::test
