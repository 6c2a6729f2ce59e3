// What rules put on each trigger for what comes after delivery: how far it is followed, and the
// commit its statuses go to.
#include "rules/builders.hpp"

#include <gtest/gtest.h>

namespace hookrelay::rules {
namespace {

using namespace test;

Config with_status(std::vector<RuleSpec> rules, std::string source_context = "") {
    Config c = config(std::move(rules));
    SourceConfig gh;
    gh.name = "github";
    gh.provider = Provider::github;
    gh.status = StatusConfig{};
    gh.status->context = std::move(source_context);
    c.sources.push_back(gh);
    SourceConfig quiet;  // no status:
    quiet.name = "gitlab";
    quiet.provider = Provider::gitlab;
    c.sources.push_back(quiet);
    return c;
}

std::shared_ptr<const RuleSet> compile_config(const Config& c) {
    std::vector<ConfigError> errors;
    auto set = RuleSet::compile(c, errors);
    for (const auto& e : errors) ADD_FAILURE() << to_string(e);
    return set;
}

TEST(RuleFollow, TriggersAreFollowedAsTheirJenkinsSaysUnlessTheRuleSays) {
    auto c = config({rule("a", {}, {trigger("x")}), rule("b", {}, {trigger("y")})});
    c.jenkins[0].follow = FollowMode::started;
    c.rules[1].follow = FollowMode::none;
    const auto set = compile_config(c);
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event());
    ASSERT_EQ(d.triggers.size(), 2u);
    EXPECT_EQ(d.triggers[0].follow, FollowMode::started);
    EXPECT_EQ(d.triggers[1].follow, FollowMode::none);
}

TEST(RuleStatus, PushStatusGoesToThePushedCommitUnderTheRulesContext) {
    const auto set = compile_config(with_status({rule("build-main", {}, {trigger("x")})}));
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event());
    ASSERT_EQ(d.triggers.size(), 1u);
    ASSERT_TRUE(d.triggers[0].status);
    EXPECT_EQ(d.triggers[0].status->repository, "acme/app");
    EXPECT_EQ(d.triggers[0].status->sha, "0123456789abcdef0123456789abcdef01234567");
    EXPECT_EQ(d.triggers[0].status->context, "hookrelay/build-main");
    EXPECT_EQ(d.triggers[0].status->ref, "main");  // GitLab's `ref`
    const auto tag = set->evaluate(tag_event("v1.2.0"));
    ASSERT_EQ(tag.triggers.size(), 1u);
    ASSERT_TRUE(tag.triggers[0].status);
    EXPECT_EQ(tag.triggers[0].status->ref, "v1.2.0");
}

TEST(RuleStatus, PullRequestStatusGoesToItsHeadCommit) {
    auto e = pull_request_event();
    e.pull_request->head_sha = "fedcba9876543210fedcba9876543210fedcba98";
    const auto set = compile_config(with_status({rule("prs", {}, {trigger("x")})}));
    ASSERT_TRUE(set);
    const auto d = set->evaluate(e);
    ASSERT_TRUE(d.triggers.at(0).status);
    EXPECT_EQ(d.triggers[0].status->sha, "fedcba9876543210fedcba9876543210fedcba98");
    EXPECT_EQ(d.triggers[0].status->ref, e.pull_request->source_branch);
}

TEST(RuleStatus, SourceContextAndRuleOverride) {
    auto c = with_status({rule("a", {}, {trigger("x")}), rule("b", {}, {trigger("y")}),
                          rule("c", {}, {trigger("z")})},
                         "ci/jenkins");
    c.rules[1].status_enabled = true;
    c.rules[1].status_context = "ci/b";
    c.rules[2].status_enabled = false;
    const auto set = compile_config(c);
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event());
    ASSERT_EQ(d.triggers.size(), 3u);
    EXPECT_EQ(d.triggers[0].status->context, "ci/jenkins");
    EXPECT_EQ(d.triggers[1].status->context, "ci/b");
    EXPECT_FALSE(d.triggers[2].status);
}

// A rule that starts several builds of one commit posts one status for each, under its job's
// name, so a failed one cannot be hidden by another that finished after it; with the Jenkins'
// name as well when two go to jobs of one name, and numbered when even that is one name. A scan
// posts none, and a rule with one build keeps the rule's name.
TEST(RuleStatus, EachBuildOfARuleWithSeveralPostsUnderANameOfItsOwn) {
    auto scan = trigger("acme/app");
    scan.scan = true;
    auto mirrored = rule("mirrored", {}, {trigger("app", {}, "ci"), trigger("app", {}, "ci2")});
    auto twice = rule("twice", {},
                      {trigger("app", {{"SUITE", "unit"}}), trigger("app", {{"SUITE", "slow"}})});
    auto c = with_status({rule("app", {}, {trigger("app-unit"), trigger("folder/app-it"), scan}),
                          mirrored, twice, rule("single", {}, {trigger("solo"), scan})});
    c.jenkins.push_back(c.jenkins.front());
    c.jenkins.back().name = "ci2";
    const auto set = compile_config(c);
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event());
    std::vector<std::string> contexts;
    for (const auto& t : d.triggers) {
        if (t.status) contexts.push_back(t.status->context);
    }
    EXPECT_EQ(contexts,
              (std::vector<std::string>{"hookrelay/app/app-unit", "hookrelay/app/folder/app-it",
                                        "hookrelay/mirrored/ci/app", "hookrelay/mirrored/ci2/app",
                                        "hookrelay/twice/ci/app#1", "hookrelay/twice/ci/app#2",
                                        "hookrelay/single"}));

    // A context of the source's or the rule's own is the prefix the same way.
    auto named = with_status({rule("app", {}, {trigger("unit"), trigger("it")})}, "ci/jenkins");
    const auto named_set = compile_config(named);
    ASSERT_TRUE(named_set);
    const auto n = named_set->evaluate(push_event());
    ASSERT_EQ(n.triggers.size(), 2u);
    EXPECT_EQ(n.triggers[0].status->context, "ci/jenkins/unit");
    EXPECT_EQ(n.triggers[1].status->context, "ci/jenkins/it");
}

TEST(RuleStatus, NoStatusForASourceWithoutStatusOrAnEventWithoutACommit) {
    const auto set =
        compile_config(with_status({rule("all", {field("deleted", {"*"})}, {trigger("x")})}));
    ASSERT_TRUE(set);
    auto other_source = push_event();
    other_source.source = "gitlab";
    EXPECT_FALSE(set->evaluate(other_source).triggers.at(0).status);
    auto deleted = push_event();
    deleted.deleted = true;
    deleted.after = std::string(40, '0');
    deleted.commit.clear();
    const auto d = set->evaluate(deleted);
    ASSERT_EQ(d.triggers.size(), 1u);
    EXPECT_FALSE(d.triggers[0].status);
    auto short_sha = pull_request_event();  // never in head_sha: head_sha_abbrev
    short_sha.pull_request->head_sha = "0123456";
    EXPECT_FALSE(set->evaluate(short_sha).triggers.at(0).status);
}

// Bitbucket Cloud's pull request events carry 12 digits of the head commit, which its status API
// takes in the hook's repository: a pull request from a branch there gets its statuses; one from
// a fork (its commits elsewhere) does not.
TEST(RuleStatus, AnAbbreviatedHeadShaNamesTheCommitOfAPullRequestFromTheSameRepository) {
    const auto set = compile_config(with_status({rule("prs", {}, {trigger("x")})}));
    ASSERT_TRUE(set);
    auto e = pull_request_event();
    e.pull_request->head_sha.clear();
    e.pull_request->head_sha_abbrev = "a72355f35fde";
    auto d = set->evaluate(e);
    ASSERT_TRUE(d.triggers.at(0).status);
    EXPECT_EQ(d.triggers[0].status->sha, "a72355f35fde");
    e.pull_request->from_fork = true;
    EXPECT_FALSE(set->evaluate(e).triggers.at(0).status);
    e.pull_request->from_fork = false;
    e.pull_request->head_sha_abbrev = "a7235";  // too short to name a commit
    EXPECT_FALSE(set->evaluate(e).triggers.at(0).status);
}

}  // namespace
}  // namespace hookrelay::rules
