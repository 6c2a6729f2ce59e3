// The keys of coalescing (rules' coalesce / cancel_superseded) and multibranch projects
// (triggers' multibranch + branch, scan; jenkins.*.scan_interval, branch_wait, branch_poll).
#include "config/load.hpp"

#include <gmock/gmock.h>

namespace hookrelay::config {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

LoadResult load(const std::string& yaml) {
    LoadOptions options;
    options.resolve_secrets = false;
    return load_string(yaml, "c.yaml", options);
}

std::vector<std::string> errors_for(const std::string& yaml) {
    std::vector<std::string> out;
    for (const auto& e : load(yaml).errors) out.push_back(to_string(e));
    return out;
}

constexpr const char* k_head =
    "sources:\n  gh: {provider: github, insecure: true}\n"
    "jenkins:\n  ci: {url: \"http://ci:8080/\"}\n";

TEST(ConfigCoalesce, ReadsTheRuleKeys) {
    auto loaded = load(std::string(k_head) + R"(rules:
  - name: main
    coalesce: "{{ repository }}:{{ branch }}"
    cancel_superseded: true
    trigger: {jenkins: ci, job: app}
)");
    ASSERT_THAT(loaded.errors, IsEmpty());
    const auto& r = loaded.config->rules.at(0);
    ASSERT_TRUE(r.coalesce);
    EXPECT_EQ(r.coalesce->text, "{{ repository }}:{{ branch }}");
    EXPECT_EQ(r.coalesce->where.line, 7);
    EXPECT_TRUE(r.cancel_superseded);
}

TEST(ConfigCoalesce, CancelSupersededNeedsAKey) {
    EXPECT_THAT(errors_for(std::string(k_head) + R"(rules:
  - name: main
    cancel_superseded: true
    trigger: {jenkins: ci, job: app}
)"),
                ElementsAre(HasSubstr("c.yaml:7:24: rule 'main': `cancel_superseded:` needs "
                                      "`coalesce:`")));
}

TEST(ConfigMultibranch, ReadsProjectAndBranch) {
    auto loaded = load(std::string(k_head) + R"(rules:
  - name: mb
    trigger: {jenkins: ci, multibranch: "acme/app", branch: "{{ branch }}"}
)");
    ASSERT_THAT(loaded.errors, IsEmpty());
    const auto& t = loaded.config->rules.at(0).triggers.at(0);
    EXPECT_TRUE(t.multibranch);
    EXPECT_EQ(t.job.text, "acme/app");
    ASSERT_TRUE(t.branch);
    EXPECT_EQ(t.branch->text, "{{ branch }}");
    EXPECT_FALSE(t.scan);
}

TEST(ConfigMultibranch, MultibranchNeedsABranchAndABranchNeedsMultibranch) {
    EXPECT_THAT(errors_for(std::string(k_head) + R"(rules:
  - name: mb
    trigger: {jenkins: ci, multibranch: "acme/app"}
  - name: job
    trigger: {jenkins: ci, job: app, branch: main}
)"),
                ElementsAre(HasSubstr("`multibranch:` needs `branch:`"),
                            HasSubstr("`branch:` goes with `multibranch:`")));
}

TEST(ConfigMultibranch, OneOfJobMultibranchAndScan) {
    EXPECT_THAT(errors_for(std::string(k_head) + R"(rules:
  - name: both
    trigger: {jenkins: ci, job: app, scan: "acme/app"}
  - name: none
    trigger: {jenkins: ci}
)"),
                ElementsAre(HasSubstr("give one of `job:`, `multibranch:`"),
                            HasSubstr("`job:` is required (or `multibranch:`")));
}

TEST(ConfigScan, AScanTakesNoParametersNorJobToken) {
    EXPECT_THAT(errors_for(std::string(k_head) + R"(rules:
  - name: s
    trigger: {jenkins: ci, scan: "acme/app", parameters: {A: b}, token: "${env:T}"}
)"),
                ElementsAre(HasSubstr("takes no `parameters:`"), HasSubstr("no job `token:`")));
}

TEST(ConfigMultibranch, JenkinsScanKeysHaveDefaultsAndAreRead) {
    auto defaults = load(k_head);
    for (const auto& e : defaults.errors) ADD_FAILURE() << to_string(e);
    EXPECT_EQ(defaults.config->jenkins.at(0).scan_interval, 60s);
    EXPECT_EQ(defaults.config->jenkins.at(0).branch_wait, 10min);
    EXPECT_EQ(defaults.config->jenkins.at(0).branch_poll, 5s);
    auto loaded = load(R"(sources:
  gh: {provider: github, insecure: true}
jenkins:
  ci: {url: "http://ci:8080/", scan_interval: 5m, branch_wait: 30m, branch_poll: 2s}
)");
    ASSERT_THAT(loaded.errors, IsEmpty());
    EXPECT_EQ(loaded.config->jenkins.at(0).scan_interval, 5min);
    EXPECT_EQ(loaded.config->jenkins.at(0).branch_wait, 30min);
    EXPECT_EQ(loaded.config->jenkins.at(0).branch_poll, 2s);
    EXPECT_THAT(errors_for("sources:\n  gh: {provider: github, insecure: true}\n"
                           "jenkins:\n  ci: {url: \"http://ci/\", branch_poll: 10ms}\n"),
                ElementsAre(HasSubstr("branch_poll: at least 100ms")));
}

}  // namespace
}  // namespace hookrelay::config
