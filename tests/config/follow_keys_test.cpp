// The keys of following builds and posting commit statuses: jenkins.*.follow*, sources.*.status,
// and the rules' follow / status overrides.
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

constexpr const char* k_source = "sources:\n  gh: {provider: github, insecure: true}\n";
constexpr const char* k_jenkins = "jenkins:\n  ci: {url: \"http://ci:8080/\"}\n";

TEST(ConfigFollow, DefaultsFollowEveryTriggerToItsResult) {
    auto loaded =
        load(std::string(k_jenkins) + "sources:\n  gh: {provider: github, insecure: true}\n");
    ASSERT_THAT(loaded.errors, IsEmpty());
    const auto& j = loaded.config->jenkins.at(0);
    EXPECT_EQ(j.follow, FollowMode::finished);
    EXPECT_EQ(j.follow_max_in_flight, 2u);
    EXPECT_EQ(j.follow_poll_initial, 2s);
    EXPECT_EQ(j.follow_poll_max, 60s);
    EXPECT_EQ(j.follow_max_age, 24h);
    EXPECT_FALSE(loaded.config->sources.at(0).status);
}

TEST(ConfigFollow, ReadsTheJenkinsFollowKeys) {
    auto loaded = load(std::string(k_source) + R"(jenkins:
  ci:
    url: "http://ci:8080/"
    follow: started
    follow_max_in_flight: 5
    follow_poll_initial: 500ms
    follow_poll_max: 10s
    follow_max_age: 2h
)");
    ASSERT_THAT(loaded.errors, IsEmpty());
    const auto& j = loaded.config->jenkins.at(0);
    EXPECT_EQ(j.follow, FollowMode::started);
    EXPECT_EQ(j.follow_max_in_flight, 5u);
    EXPECT_EQ(j.follow_poll_initial, 500ms);
    EXPECT_EQ(j.follow_poll_max, 10s);
    EXPECT_EQ(j.follow_max_age, 2h);
}

TEST(ConfigFollow, UnknownFollowModeIsAnErrorWithASuggestion) {
    EXPECT_THAT(errors_for(std::string(k_source) +
                           "jenkins:\n  ci: {url: \"http://ci/\", follow: finish}\n"),
                ElementsAre(AllOf(HasSubstr("c.yaml:4:"), HasSubstr("'finish'"),
                                  HasSubstr("none, started, finished"),
                                  HasSubstr("did you mean 'finished'"))));
}

TEST(ConfigFollow, ReadsASourcesStatus) {
    auto loaded = load(R"(sources:
  gh:
    provider: github
    secret: "${env:S}"
    status:
      token: "${env:GITHUB_STATUS_TOKEN}"
      context: ci/jenkins
      api_url: "https://ghe.example.com/api/v3/"
      max_in_flight: 2
      retry_initial: 1s
      retry_max: 1m
      max_tries: 7
)");
    ASSERT_THAT(loaded.errors, IsEmpty());
    const auto& st = loaded.config->sources.at(0).status;
    ASSERT_TRUE(st);
    EXPECT_EQ(st->context, "ci/jenkins");
    EXPECT_EQ(st->api_url, "https://ghe.example.com/api/v3");
    EXPECT_EQ(st->max_in_flight, 2u);
    EXPECT_EQ(st->retry_initial, 1s);
    EXPECT_EQ(st->retry_max, 60s);
    EXPECT_EQ(st->max_tries, 7u);
}

TEST(ConfigFollow, StatusNeedsATokenAndAForgeWithAStatusApi) {
    EXPECT_THAT(errors_for(R"(sources:
  gh: {provider: github, insecure: true, status: {context: x}}
  hmac: {provider: generic, insecure: true, status: {token: "${env:T}"}}
)"),
                ElementsAre(HasSubstr("`token:` is required"),
                            AllOf(HasSubstr("source 'hmac'.status: a generic source has no forge"),
                                  HasSubstr("gitea, forgejo, bitbucket-cloud and "
                                            "bitbucket-server"))));
}

TEST(ConfigFollow, SelfHostedForgesNameTheirStatusApiAndBitbucketCloudHasOne) {
    EXPECT_THAT(errors_for(R"(sources:
  gitea: {provider: gitea, insecure: true, status: {token: "${env:T}"}}
  forgejo: {provider: forgejo, insecure: true, status: {token: "${env:T}"}}
  bbdc: {provider: bitbucket-server, insecure: true, status: {token: "${env:T}"}}
  bbc: {provider: bitbucket-cloud, insecure: true, status: {token: "${env:T}"}}
)"),
                ElementsAre(AllOf(HasSubstr("source 'gitea'.status: `api_url:` is required for a "
                                            "gitea source"),
                                  HasSubstr("https://HOST/api/v1")),
                            HasSubstr("required for a forgejo source"),
                            AllOf(HasSubstr("required for a bitbucket-server source"),
                                  HasSubstr("context path"))));
    const auto loaded = load(R"(sources:
  gitea:
    provider: gitea
    insecure: true
    status: {token: "${env:T}", api_url: "https://git.example.com/api/v1/"}
  bbc: {provider: bitbucket-cloud, insecure: true, status: {token: "${env:T}"}}
)");
    ASSERT_THAT(loaded.errors, IsEmpty());
    EXPECT_EQ(loaded.config->sources.at(0).status->api_url, "https://git.example.com/api/v1");
    EXPECT_EQ(loaded.config->sources.at(1).status->api_url, "");
}

// A status' name is sent as written (a forge requires it by name): a template in it would be
// posted literally.
TEST(ConfigFollow, ATemplateInAStatusContextIsAnError) {
    EXPECT_THAT(
        errors_for(std::string(k_jenkins) + R"(sources:
  gh: {provider: github, insecure: true, status: {token: "${env:T}", context: "{{ repository.name }}/ci"}}
rules:
  - name: r
    status: {context: "ci/{{ branch }}"}
    trigger: {jenkins: ci, job: x}
)"),
        ElementsAre(AllOf(HasSubstr("source 'gh'.status.context '{{ repository.name }}/ci' is "
                                    "sent as written, not rendered"),
                          HasSubstr("Leave the template out")),
                    HasSubstr(".status.context 'ci/{{ branch }}' is sent as written")));
}

TEST(ConfigFollow, UnknownStatusKeyIsAnError) {
    EXPECT_THAT(errors_for(R"(sources:
  gh: {provider: github, insecure: true, status: {token: "${env:T}", contxt: x}}
)"),
                ElementsAre(AllOf(HasSubstr("unknown key 'contxt'"), HasSubstr("context"))));
}

TEST(ConfigFollow, StatusApiUrlMustBeHttp) {
    EXPECT_THAT(errors_for(R"(sources:
  gh: {provider: github, insecure: true, status: {token: "${env:T}", api_url: "api.github.com"}}
)"),
                ElementsAre(HasSubstr("must start with http:// or https://")));
}

TEST(ConfigFollow, RulesOverrideFollowAndStatus) {
    auto loaded = load(std::string(k_source) + k_jenkins + R"(rules:
  - name: a
    follow: none
    status: false
    trigger: {jenkins: ci, job: x}
  - name: b
    status: {context: ci/b}
    trigger: {jenkins: ci, job: y}
  - name: c
    trigger: {jenkins: ci, job: z}
)");
    ASSERT_THAT(loaded.errors, IsEmpty());
    const auto& rules = loaded.config->rules;
    EXPECT_EQ(rules[0].follow, FollowMode::none);
    EXPECT_EQ(rules[0].status_enabled, false);
    EXPECT_EQ(rules[1].status_enabled, true);
    EXPECT_EQ(rules[1].status_context, "ci/b");
    EXPECT_FALSE(rules[2].follow);
    EXPECT_FALSE(rules[2].status_enabled);
}

}  // namespace
}  // namespace hookrelay::config
