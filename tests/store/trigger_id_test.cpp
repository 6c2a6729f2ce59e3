// Trigger ids: UUIDs of version 7, so that ids made later sort later (and land at the end of the
// indexes keyed by them), while two ids made in the same millisecond still differ; and the random
// bytes they are made of, drawn a block at a time, are not repeated by a forked child.
#include "store/codec.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <set>
#include <string>

namespace hookrelay::store::test {
namespace {

using namespace std::chrono_literals;

TEST(TriggerId, IsAVersion7UuidCarryingItsMillisecond) {
    const std::chrono::system_clock::time_point at{1'764'500'000'123ms};
    const auto id = make_trigger_id(at);
    EXPECT_TRUE(std::regex_match(
        id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
        << id;
    // 1764500000123 ms is 0x019A_D465_4D7B.
    EXPECT_EQ(id.substr(0, 13), "019ad465-4d7b") << id;
}

TEST(TriggerId, LaterIdsSortLaterAndIdsOfOneMillisecondDiffer) {
    const std::chrono::system_clock::time_point at{1'764'500'000'123ms};
    std::set<std::string> same_ms;
    for (int i = 0; i < 1000; ++i) same_ms.insert(make_trigger_id(at));
    EXPECT_EQ(same_ms.size(), 1000u);
    const auto later = make_trigger_id(at + 1ms);
    EXPECT_LT(*same_ms.rbegin(), later);
    EXPECT_LT(make_trigger_id(at - 1ms), *same_ms.begin());
}

// Random bytes are drawn from OpenSSL a block at a time; a child process must not hand out the
// bytes its parent does. One byte drawn just before the fork leaves at least 15 of the block for
// both to take 8 from, whatever was drawn before; they would be the same 8 without the reset.
TEST(RandomBytes, AForkedChildDrawsBytesItsParentDoesNot) {
    random_hex(1);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        try {
            const std::string drawn = random_hex(8);
            const auto size = static_cast<ssize_t>(drawn.size());
            _exit(write(fds[1], drawn.data(), drawn.size()) == size ? 0 : 1);
        } catch (...) {
            _exit(2);
        }
    }
    close(fds[1]);
    const std::string parents = random_hex(8);
    std::string childs(parents.size(), '\0');
    const ssize_t got = read(fds[0], childs.data(), childs.size());
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_EQ(got, static_cast<ssize_t>(childs.size()));
    EXPECT_NE(childs, parents);
}

}  // namespace
}  // namespace hookrelay::store::test
