// Timeouts, intervals and the start of a backoff must be above zero: `0s` would make every request
// fail at once, or a poll, a probe or a retry loop spin without pause (and a prune interval of 0
// turned pruning off without a word). Durations where 0 means "off" keep taking it.
#include "load_errors.hpp"

#include <gmock/gmock.h>

namespace hookrelay::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string with(const std::string& top, const std::string& jenkins_keys = "",
                 const std::string& status_keys = "") {
    return top + "sources:\n  gh:\n    provider: github\n    insecure: true\n" +
           "    status: {token: \"${env:HOME}\"" + status_keys + "}\n" +
           "jenkins:\n  ci: {url: \"http://127.0.0.1:8080/\"" + jenkins_keys + "}\n";
}

TEST(ConfigZeroDurations, TimeoutsIntervalsAndBackoffsOfZeroAreRefusedByName) {
    EXPECT_THAT(load_errors(with("dispatch: {poll_interval: 0s}\n")),
                ElementsAre(HasSubstr("dispatch.poll_interval must be above zero")));
    EXPECT_THAT(load_errors(with("store: {prune_interval: 0ms}\n")),
                ElementsAre(HasSubstr("store.prune_interval must be above zero")));
    EXPECT_THAT(load_errors(with("server: {store_timeout: 0s, header_timeout: 0s}\n")),
                ElementsAre(HasSubstr("server.header_timeout must be above zero"),
                            HasSubstr("server.store_timeout must be above zero")));
    EXPECT_THAT(load_errors(with("", ", probe_initial: 0s, follow_poll_initial: 0s")),
                ElementsAre(HasSubstr("jenkins 'ci'.probe_initial must be above zero"),
                            HasSubstr("jenkins 'ci'.follow_poll_initial must be above zero")));
    EXPECT_THAT(load_errors(with("", "", ", retry_initial: 0s")),
                ElementsAre(HasSubstr(".retry_initial must be above zero")));
}

// Ages and waits of 0 would throw away what they keep: a retention of 0 pruned every finished
// delivery at each pass (and with it what recognizes a redelivery as a duplicate), a
// follow_max_age of 0 lost every build at once, a branch_wait of 0 killed a multibranch trigger
// before its scan could create the branch's job.
TEST(ConfigZeroDurations, AgesAndWaitsOfZeroAreRefusedByName) {
    EXPECT_THAT(load_errors(with("store: {retention: 0s}\n")),
                ElementsAre(HasSubstr("store.retention must be above zero")));
    EXPECT_THAT(load_errors(with("", ", follow_max_age: 0s, branch_wait: 0ms")),
                ElementsAre(HasSubstr("jenkins 'ci'.follow_max_age must be above zero"),
                            HasSubstr("jenkins 'ci'.branch_wait must be above zero")));
}

TEST(ConfigZeroDurations, ZeroStillMeansOffWhereTheDocsSaySo) {
    EXPECT_THAT(load_errors(with("dispatch: {poll_interval: 1ms}\n", ", scan_interval: 0s")),
                IsEmpty());
    // No grace: requests in flight are given up at once. No age: a trigger is never retried.
    EXPECT_THAT(load_errors(with("server: {shutdown_grace: 0s}\n",
                                 ", retry: {initial: 1s, max_delay: 5s, max_age: 0s}")),
                IsEmpty());
}

}  // namespace
}  // namespace hookrelay::config
