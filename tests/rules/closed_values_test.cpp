// Condition values on fields with a closed set of values (event, provider, source, booleans,
// action) are checked when the rules compile: a typo is a config error with a did-you-mean, not a
// rule that silently never matches.
#include "builders.hpp"

#include "config/load.hpp"

#include <gmock/gmock.h>

namespace hookrelay::rules::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Config with_sources(std::vector<RuleSpec> rules) {
    auto c = config(std::move(rules));
    for (const auto* name : {"github", "gitlab-internal"}) {
        SourceConfig s;
        s.name = name;
        c.sources.push_back(s);
    }
    return c;
}

// The messages of every compile error for a rule with conditions `when`.
std::vector<std::string> errors_for(std::vector<ConditionSpec> when) {
    std::vector<ConfigError> errors;
    const auto set = RuleSet::compile(with_sources({rule("r", std::move(when))}), errors);
    std::vector<std::string> out;
    for (const auto& e : errors) out.push_back(e.message);
    EXPECT_EQ(set == nullptr, !out.empty());
    return out;
}

TEST(ClosedValues, EventTypoIsAnErrorWithDidYouMean) {
    EXPECT_THAT(errors_for({field("event", {"psuh"})}),
                ElementsAre("rule 'r': event: 'psuh' is not an event (did you mean 'push'?); "
                            "events are push, tag, pull_request, release, ping, other"));
    EXPECT_THAT(errors_for({field("event", {"pull-request"})}),
                ElementsAre(HasSubstr("(did you mean 'pull_request'?)")));
    EXPECT_THAT(errors_for({field("event", {"Push"})}),
                ElementsAre(HasSubstr("(did you mean 'push'?)")));
}

// A required condition on a field none of the rule's events has: the rule could never match.
// `event: push` with `tag:` is the usual one (GitHub calls a tag push "push").
TEST(ClosedValues, AConditionOnAFieldTheRulesEventsNeverHaveIsAnError) {
    EXPECT_THAT(errors_for({field("event", {"push"}), field("tag", {"v*"})}),
                ElementsAre("rule 'r': condition 'tag' is never set for push events, the only "
                            "events this rule matches, so the rule could never match (a tag push "
                            "is `event: tag`; widen the rule's `event:` or drop the condition)"));
    EXPECT_THAT(errors_for({field("event", {"tag"}), field("branch", {"main"})}),
                ElementsAre(HasSubstr("condition 'branch' is never set for tag events")));
    EXPECT_THAT(
        errors_for({field("event", {"push", "tag"}), field("pull_request.draft", {"false"})}),
        ElementsAre(HasSubstr("'pull_request.draft' is never set for push or tag events")));
    // Where some event has it, or where the condition need not hold (`any`, `not`): fine.
    EXPECT_THAT(errors_for({field("event", {"push", "tag"}), field("tag", {"v*"})}), IsEmpty());
    EXPECT_THAT(errors_for({field("tag", {"v*"})}), IsEmpty());
    EXPECT_THAT(errors_for({field("event", {"push"}),
                            any({field("tag", {"v*"}), field("branch", {"main"})})}),
                IsEmpty());
    EXPECT_THAT(errors_for({field("event", {"push"}), not_({field("tag", {"v*"})})}), IsEmpty());
    // Only negative patterns pass an unset field: every push matches `tag: "!v*"`.
    EXPECT_THAT(errors_for({field("event", {"push"}), field("tag", {"!v*"})}), IsEmpty());
}

TEST(ClosedValues, EveryEventKindIsAccepted) {
    EXPECT_THAT(errors_for({field("event", {"push", "tag", "pull_request", "release", "other"})}),
                IsEmpty());
}

TEST(ClosedValues, ActionTypoForPullRequestsIsAnError) {
    EXPECT_THAT(errors_for({field("event", {"pull_request"}), field("action", {"opend"})}),
                ElementsAre("rule 'r': action: 'opend' is not an action of pull_request events "
                            "(did you mean 'opened'?)"));
}

TEST(ClosedValues, ActionTypoWithoutAnEventConditionIsAnError) {
    EXPECT_THAT(errors_for({field("action", {"opened", "opend"})}),
                ElementsAre(HasSubstr("action: 'opend' is not an action hookrelay knows (did "
                                      "you mean 'opened'?); to match an action of a "
                                      "forge-specific event hookrelay does not list, add "
                                      "`event: other`")));
}

TEST(ClosedValues, ActionsOfEveryForgeAreAccepted) {
    // GitHub's words, GitLab's mapped onto them, and GitLab's approval actions.
    EXPECT_THAT(errors_for({field("event", {"pull_request"}),
                            field("action", {"opened", "synchronize", "ready_for_review", "closed",
                                             "approved", "unapproval"})}),
                IsEmpty());
    EXPECT_THAT(errors_for({field("event", {"release"}),
                            field("action", {"published", "created", "updated", "deleted"})}),
                IsEmpty());
}

TEST(ClosedValues, ForgeSpecificActionsStayOpenForOtherEvents) {
    // repository_dispatch carries whatever word its sender chose; GitHub adds actions over time.
    EXPECT_THAT(errors_for({field("event", {"other"}),
                            field("action", {"release", "rerequested", "frobnicated"})}),
                IsEmpty());
    EXPECT_THAT(errors_for({field("event", {"!push"}), field("action", {"opend"})}), IsEmpty());
    // Without an `event` condition only typo-like values are refused.
    EXPECT_THAT(errors_for({field("action", {"rerequested", "completed", "frobnicated"})}),
                IsEmpty());
}

TEST(ClosedValues, ActionForEventsWithoutActionsIsAnError) {
    EXPECT_THAT(errors_for({field("event", {"push", "tag"}), field("action", {"opened"})}),
                ElementsAre("rule 'r': action: 'opened' is not an action of push or tag events: "
                            "they carry none"));
}

TEST(ClosedValues, ActionIsCheckedAgainstTheEventsOfItsOwnAlternative) {
    EXPECT_THAT(
        errors_for({any({all({field("event", {"pull_request"}), field("action", {"synchronize"})}),
                         all({field("event", {"release"}), field("action", {"published"})})})}),
        IsEmpty());
    EXPECT_THAT(
        errors_for({any({all({field("event", {"release"}), field("action", {"synchronize"})})})}),
        ElementsAre(HasSubstr("'synchronize' is not an action of release events")));
    // An `event` in an enclosing map, or in a sibling of an `all` list, narrows too.
    EXPECT_THAT(
        errors_for({field("event", {"release"}), not_({all({field("action", {"synchronize"})})})}),
        ElementsAre(HasSubstr("'synchronize' is not an action of release events")));
    EXPECT_THAT(errors_for({all({all({field("event", {"release"})}),
                                 all({field("action", {"synchronize"})})})}),
                ElementsAre(HasSubstr("'synchronize' is not an action of release events")));
}

TEST(ClosedValues, SourceMustBeAConfiguredSource) {
    EXPECT_THAT(errors_for({field("source", {"githb"})}),
                ElementsAre("rule 'r': source: 'githb' is not a configured source (did you mean "
                            "'github'?); sources are github, gitlab-internal"));
    EXPECT_THAT(errors_for({field("source", {"github", "gitlab-*"})}), IsEmpty());
}

TEST(ClosedValues, ProviderTypoIsAnError) {
    EXPECT_THAT(errors_for({field("provider", {"gitlba"})}),
                ElementsAre("rule 'r': provider: 'gitlba' is not a provider (did you mean "
                            "'gitlab'?); providers are github, gitlab, gitea, forgejo, "
                            "bitbucket-cloud, bitbucket-server, generic"));
    EXPECT_THAT(errors_for({field("provider", {"bitbucket_cloud"})}),
                ElementsAre(HasSubstr("(did you mean 'bitbucket-cloud'?)")));
}

TEST(ClosedValues, EveryForgeIsAProvider) {
    EXPECT_THAT(
        errors_for({field("provider", {"github", "gitlab", "gitea", "forgejo", "bitbucket-cloud",
                                       "bitbucket-server", "generic", "bitbucket-*"})}),
        IsEmpty());
}

TEST(ClosedValues, ForgeWordsThatAreMappedAreTypos) {
    // Gitea sends `synchronized`; the model's word is GitHub's.
    EXPECT_THAT(errors_for({field("event", {"pull_request"}), field("action", {"synchronized"})}),
                ElementsAre(HasSubstr("'synchronized' is not an action of pull_request events "
                                      "(did you mean 'synchronize'?)")));
    // Actions only another forge than GitHub produces are known.
    EXPECT_THAT(errors_for({field("event", {"pull_request"}),
                            field("action", {"label_updated", "approved"})}),
                IsEmpty());
}

// A config whose sources are of the given forges.
std::vector<std::string> errors_with_sources(std::vector<std::pair<std::string, Provider>> sources,
                                             std::vector<ConditionSpec> when) {
    auto c = config({rule("r", std::move(when))});
    for (auto& [name, provider] : sources) {
        SourceConfig s;
        s.name = name;
        s.provider = provider;
        c.sources.push_back(s);
    }
    std::vector<ConfigError> errors;
    RuleSet::compile(c, errors);
    std::vector<std::string> out;
    for (const auto& e : errors) out.push_back(e.message);
    return out;
}

TEST(ClosedValues, ProviderConditionNarrowsTheActions) {
    EXPECT_THAT(
        errors_for({field("provider", {"bitbucket-cloud"}), field("event", {"pull_request"}),
                    field("action", {"ready_for_review"})}),
        ElementsAre("rule 'r': action: 'ready_for_review' is not an action of "
                    "pull_request events from bitbucket-cloud; their actions are opened, "
                    "synchronize, closed, approved, unapproved"));
    EXPECT_THAT(errors_for({field("provider", {"bitbucket-*"}), field("event", {"pull_request"}),
                            field("action", {"opened", "edited", "synchronize"})}),
                IsEmpty());
    // Without the provider, GitHub's word is fine.
    EXPECT_THAT(
        errors_for({field("event", {"pull_request"}), field("action", {"ready_for_review"})}),
        IsEmpty());
}

TEST(ClosedValues, SourceConditionNarrowsTheActionsToItsForge) {
    const std::vector<std::pair<std::string, Provider>> sources = {
        {"bb", Provider::bitbucket_server}, {"gh", Provider::github}};
    EXPECT_THAT(
        errors_with_sources(sources, {field("source", {"bb"}), field("event", {"pull_request"}),
                                      field("action", {"labeled"})}),
        ElementsAre(HasSubstr("'labeled' is not an action of pull_request events from "
                              "bitbucket-server")));
    EXPECT_THAT(
        errors_with_sources(sources, {field("source", {"gh"}), field("event", {"pull_request"}),
                                      field("action", {"labeled"})}),
        IsEmpty());
    // Excluding one source says nothing about the forges of the others.
    EXPECT_THAT(
        errors_with_sources(sources, {field("source", {"!gh"}), field("event", {"pull_request"}),
                                      field("action", {"labeled"})}),
        IsEmpty());
}

TEST(ClosedValues, BooleanFieldsTakeTrueOrFalse) {
    EXPECT_THAT(errors_for({field("pull_request.draft", {"flase"})}),
                ElementsAre("rule 'r': pull_request.draft: 'flase' is not true or false (did you "
                            "mean 'false'?)"));
    // YAML 1.1 spellings arrive as text and would never match.
    EXPECT_THAT(errors_for({field("deleted", {"yes"})}),
                ElementsAre("rule 'r': deleted: 'yes' is not true or false"));
    EXPECT_THAT(errors_for({field("created", {"True"})}),
                ElementsAre(HasSubstr("(did you mean 'true'?)")));
    for (const auto* name : {"created", "deleted", "forced", "changed_files_complete",
                             "pull_request.merged", "pull_request.from_fork"}) {
        EXPECT_THAT(errors_for({field(name, {"true", "!false"})}), IsEmpty()) << name;
    }
}

TEST(ClosedValues, NegatedTyposAreErrors) {
    // "!clsoed" would exclude nothing: every pull request would pass.
    EXPECT_THAT(errors_for({field("event", {"pull_request"}), field("action", {"!clsoed"})}),
                ElementsAre(HasSubstr("action: '!clsoed' is not an action of pull_request "
                                      "events (did you mean 'closed'?)")));
}

TEST(ClosedValues, GlobsAndRegexesMustMatchSomeValue) {
    EXPECT_THAT(errors_for({field("event", {"pull_*", "re:(push|tag)"})}), IsEmpty());
    EXPECT_THAT(errors_for({field("event", {"pull-*"})}),
                ElementsAre("rule 'r': event: 'pull-*' matches no event; events are push, tag, "
                            "pull_request, release, ping, other"));
    EXPECT_THAT(errors_for({field("event", {"pull_request"}), field("action", {"review_*"})}),
                IsEmpty());
    EXPECT_THAT(errors_for({field("event", {"pull_request"}), field("action", {"re:open.*"})}),
                IsEmpty());
    EXPECT_THAT(errors_for({field("event", {"pull_request"}), field("action", {"!re:publ.*"})}),
                ElementsAre(HasSubstr("matches no action of pull_request events")));
    EXPECT_THAT(errors_for({field("pull_request.draft", {"re:[01]"})}),
                ElementsAre(HasSubstr("matches neither true nor false")));
}

TEST(ClosedValues, FreeTextFieldsAreNotChecked) {
    EXPECT_THAT(
        errors_for({field("forge_event", {"Merge Request Hook"}), field("forge_action", {"opend"}),
                    field("branch", {"psuh"}), field("payload.action", {"opend"})}),
        IsEmpty());
}

TEST(ClosedValues, ErrorsPointAtTheValueInTheFile) {
    const auto loaded = config::load_string(R"(sources:
  github: {provider: github, insecure: true}
jenkins:
  ci: {url: "http://ci/"}
rules:
  - name: prs
    when:
      event: [push, "pull-request"]
      action: [opened, opend]
      pull_request.draft: flase
      source: githb
      provider: gitlba
    trigger: {jenkins: ci, job: x}
)",
                                            "c.yaml");
    ASSERT_THAT(loaded.errors, IsEmpty());
    std::vector<ConfigError> errors;
    EXPECT_EQ(RuleSet::compile(*loaded.config, errors), nullptr);
    std::vector<std::string> shown;
    for (const auto& e : errors) shown.push_back(to_string(e));
    EXPECT_THAT(shown,
                ElementsAre(HasSubstr("c.yaml:8:22: rule 'prs': event: 'pull-request' is not an "
                                      "event (did you mean 'pull_request'?)"),
                            HasSubstr("c.yaml:9:24: rule 'prs': action: 'opend'"),
                            HasSubstr("c.yaml:10:27: rule 'prs': pull_request.draft: 'flase'"),
                            HasSubstr("c.yaml:11:15: rule 'prs': source: 'githb'"),
                            HasSubstr("c.yaml:12:17: rule 'prs': provider: 'gitlba'")));
}

TEST(ClosedValues, ExampleConfigCompiles) {
    config::LoadOptions options;
    options.resolve_secrets = false;
    const auto loaded =
        config::load_file(std::string(HOOKRELAY_SOURCE_DIR) + "/config/hookrelay.yaml", options);
    ASSERT_THAT(loaded.errors, IsEmpty());
    std::vector<ConfigError> errors;
    EXPECT_NE(RuleSet::compile(*loaded.config, errors), nullptr);
    for (const auto& e : errors) ADD_FAILURE() << to_string(e);
}

}  // namespace
}  // namespace hookrelay::rules::test
