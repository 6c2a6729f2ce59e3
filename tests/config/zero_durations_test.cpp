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

TEST(ConfigZeroDurations, ZeroStillMeansOffWhereTheDocsSaySo) {
    EXPECT_THAT(load_errors(with("dispatch: {poll_interval: 1ms}\n", ", scan_interval: 0s")),
                IsEmpty());
}

}  // namespace
}  // namespace hookrelay::config
