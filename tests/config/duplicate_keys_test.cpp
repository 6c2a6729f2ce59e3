// A key written twice in one map: YAML keeps both entries and every lookup finds the first, so
// the second would be ignored without a word. The loader refuses it, wherever it is.
#include "load_errors.hpp"

#include <gmock/gmock.h>

namespace hookrelay::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr const char* k_head = R"(sources:
  gh: {provider: github, insecure: true}
jenkins:
  ci: {url: "http://127.0.0.1:8080/"}
)";

// A second `rules:` block pasted below the first: its rules would all have been dropped.
TEST(ConfigDuplicateKeys, ASecondRulesBlockIsRefusedNamingBothLines) {
    EXPECT_THAT(load_errors(std::string(k_head) + R"(rules:
  - name: a
    trigger: {jenkins: ci, job: a}
rules:
  - name: b
    trigger: {jenkins: ci, job: b}
)"),
                ElementsAre(HasSubstr("c.yaml:8:1: `rules` is written twice (first on line 5)")));
}

// Inside a rule: a second `trigger:` (its job never triggered) and a `when:` holding `branch`
// twice (both required, so the rule never matched).
TEST(ConfigDuplicateKeys, RepeatedKeysInsideARuleAreRefusedWithTheirPath) {
    EXPECT_THAT(load_errors(std::string(k_head) + R"(rules:
  - name: a
    when: {branch: main, branch: "release/*"}
    trigger: {jenkins: ci, job: a}
    trigger: {jenkins: ci, job: b}
)"),
                ElementsAre(HasSubstr("`rules[0].when.branch` is written twice"),
                            HasSubstr("`rules[0].trigger` is written twice (first on line 8)")));
}

TEST(ConfigDuplicateKeys, OneKeyPerMapIsFine) {
    EXPECT_THAT(load_errors(std::string(k_head) + R"(rules:
  - name: a
    when: {branch: main}
    trigger: {jenkins: ci, job: a}
  - name: b
    when: {branch: main}
    trigger: {jenkins: ci, job: b}
)"),
                IsEmpty());
}

}  // namespace
}  // namespace hookrelay::config
