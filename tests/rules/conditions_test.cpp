#include "rules/builders.hpp"
#include "support/json_document.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace hookrelay::rules {
namespace {

using namespace test;

TEST(Condition, EmptyWhenMatchesEverything) {
    EXPECT_TRUE(outcome({}, push_event()).matched);
    EXPECT_TRUE(outcome({}, tag_event()).matched);
    EXPECT_TRUE(outcome({}, pull_request_event()).matched);
}

TEST(Condition, MatchedRuleHasNoReason) {
    const auto o = outcome({field("branch", {"main"})}, push_event());
    EXPECT_TRUE(o.matched);
    EXPECT_TRUE(o.evaluated);
    EXPECT_EQ(o.reason, "");
}

TEST(Condition, BranchMismatchListsThePatterns) {
    const auto o = outcome({field("branch", {"main", "release/*"})}, push_event("dev"));
    EXPECT_FALSE(o.matched);
    EXPECT_EQ(o.reason, "branch: 'dev' matches none of [main, release/*]");
    EXPECT_TRUE(outcome({field("branch", {"main", "release/*"})}, push_event("release/2")).matched);
}

TEST(Condition, EventAliasMatchesTheKind) {
    EXPECT_TRUE(outcome({field("event", {"push", "tag"})}, tag_event()).matched);
    const auto o = outcome({field("event", {"push"})}, pull_request_event());
    EXPECT_FALSE(o.matched);
    EXPECT_EQ(o.reason, "event: 'pull_request' matches none of [push]");
}

TEST(Condition, RepositoryAliasIsTheFullName) {
    EXPECT_TRUE(outcome({field("repository", {"acme/*"})}, push_event()).matched);
    EXPECT_EQ(outcome({field("repository", {"other/*"})}, push_event()).reason,
              "repository: 'acme/app' matches none of [other/*]");
    EXPECT_TRUE(outcome({field("repository.name", {"app"})}, push_event()).matched);
}

TEST(Condition, NegationExcludesAndSaysSo) {
    EXPECT_TRUE(outcome({field("action", {"!closed"})}, pull_request_event("opened")).matched);
    const auto o = outcome({field("action", {"!closed"})}, pull_request_event("closed"));
    EXPECT_FALSE(o.matched);
    EXPECT_EQ(o.reason, "action: 'closed' is excluded by !closed");
}

TEST(Condition, PositiveAndNegativePatternsCombine) {
    const std::vector<std::string> patterns{"release/**", "!release/old/**"};
    EXPECT_TRUE(outcome({field("branch", patterns)}, push_event("release/1.0")).matched);
    EXPECT_EQ(outcome({field("branch", patterns)}, push_event("release/old/1")).reason,
              "branch: 'release/old/1' is excluded by !release/old/**");
    EXPECT_EQ(outcome({field("branch", patterns)}, push_event("main")).reason,
              "branch: 'main' matches none of [release/**]");
}

TEST(Condition, BooleansCompareAsText) {
    auto e = push_event();
    e.forced = true;
    EXPECT_TRUE(outcome({field("forced", {"true"})}, e).matched);
    EXPECT_EQ(outcome({field("forced", {"false"})}, e).reason,
              "forced: 'true' matches none of [false]");
    auto pr = pull_request_event();
    EXPECT_TRUE(outcome({field("pull_request.draft", {"false"})}, pr).matched);
    pr.pull_request->draft = true;
    EXPECT_EQ(outcome({field("pull_request.draft", {"false"})}, pr).reason,
              "pull_request.draft: 'true' matches none of [false]");
}

TEST(Condition, NumbersCompareAsText) {
    EXPECT_TRUE(outcome({field("pull_request.number", {"42"})}, pull_request_event()).matched);
    EXPECT_TRUE(outcome({field("pull_request.number", {"4?"})}, pull_request_event()).matched);
    EXPECT_FALSE(outcome({field("pull_request.number", {"4"})}, pull_request_event()).matched);
}

TEST(Condition, UnsetValueFailsAPositiveList) {
    const auto o = outcome({field("tag", {"v*"})}, push_event());
    EXPECT_FALSE(o.matched);
    EXPECT_EQ(o.reason, "tag is not set for a push event");
    EXPECT_EQ(outcome({field("pull_request.draft", {"false"})}, push_event()).reason,
              "pull_request.draft is not set for a push event");
}

TEST(Condition, UnsetValuePassesAPurelyNegativeList) {
    EXPECT_TRUE(outcome({field("tag", {"!v*"})}, push_event()).matched);
    EXPECT_TRUE(outcome({field("payload.sender.login", {"!dependabot*"})}, push_event()).matched);
}

TEST(Condition, PayloadFields) {
    auto e = push_event();
    e.payload = hookrelay::test::document(
        boost::json::parse(R"({"sender":{"login":"dependabot[bot]"},"size":3})"));
    EXPECT_EQ(outcome({field("payload.sender.login", {"!dependabot*"})}, e).reason,
              "payload.sender.login: 'dependabot[bot]' is excluded by !dependabot*");
    EXPECT_TRUE(outcome({field("payload.size", {"3"})}, e).matched);
}

TEST(Condition, RegexPatterns) {
    EXPECT_TRUE(outcome({field("tag", {"re:v[0-9]+\\.[0-9]+\\.[0-9]+"})}, tag_event()).matched);
    EXPECT_EQ(outcome({field("tag", {"re:v[0-9]+"})}, tag_event()).reason,
              "tag: 'v1.2.0' matches none of [re:v[0-9]+]");
}

TEST(Condition, LongValuesAreShortenedInReasons) {
    auto e = push_event();
    e.message = "First line of the message\n\nMore detail";
    EXPECT_EQ(outcome({field("message", {"**WIP**"})}, e).reason,
              "message: 'First line of the message...' matches none of [**WIP**]");
}

TEST(ConditionPaths, MatchesWhenAnyChangedFileMatches) {
    EXPECT_TRUE(outcome({field("paths", {"src/**"})}, push_event()).matched);
    const auto o = outcome({field("paths", {"docs/**", "*.txt"})}, push_event());
    EXPECT_FALSE(o.matched);
    EXPECT_EQ(o.reason, "paths: none of 2 changed files matches [docs/**, *.txt]");
}

TEST(ConditionPaths, NegationMeansSomeChangeOutside) {
    auto e = push_event();
    e.changed_files = {"docs/a.md", "docs/b/c.md", "src/x.cpp"};
    EXPECT_TRUE(outcome({field("paths", {"!docs/**"})}, e).matched);
    e.changed_files = {"docs/a.md", "docs/b/c.md", "docs/d.md"};
    const auto o = outcome({field("paths", {"!docs/**"})}, e);
    EXPECT_FALSE(o.matched);
    EXPECT_EQ(o.reason, "paths: all 3 changed files are excluded by [!docs/**]");
}

TEST(ConditionPaths, MixedListNamesBothSides) {
    auto e = push_event();
    e.changed_files = {"src/gen/a.cpp", "README.md"};
    EXPECT_EQ(outcome({field("paths", {"src/**", "!src/gen/**"})}, e).reason,
              "paths: none of 2 changed files matches [src/**] outside [!src/gen/**]");
    e.changed_files.push_back("src/b.cpp");
    EXPECT_TRUE(outcome({field("paths", {"src/**", "!src/gen/**"})}, e).matched);
}

TEST(ConditionPaths, SingleFileReasonNamesIt) {
    auto e = push_event();
    e.changed_files = {"README.md"};
    EXPECT_EQ(outcome({field("paths", {"src/**"})}, e).reason,
              "paths: the only changed file 'README.md' matches none of [src/**]");
}

TEST(ConditionPaths, PushWithoutChangesFails) {
    auto e = push_event();
    e.changed_files.clear();
    EXPECT_EQ(outcome({field("paths", {"src/**"})}, e).reason, "paths: the push changed no files");
}

TEST(ConditionPaths, UnknownFileListPasses) {
    auto created = push_event();
    created.created = true;
    created.changed_files = {"docs/a.md"};
    EXPECT_TRUE(outcome({field("paths", {"src/**"})}, created).matched);

    auto truncated = push_event();
    truncated.changed_files = {"docs/a.md"};
    truncated.changed_files_complete = false;
    EXPECT_TRUE(outcome({field("paths", {"src/**"})}, truncated).matched);

    EXPECT_TRUE(outcome({field("paths", {"src/**"})}, tag_event()).matched);
    EXPECT_TRUE(outcome({field("paths", {"src/**"})}, pull_request_event()).matched);
}

TEST(ConditionComposition, AllNeedsEveryChildAndReportsTheFirstFailure) {
    const auto when = std::vector<ConditionSpec>{
        field("event", {"push"}), field("branch", {"main"}), field("actor", {"nobody"})};
    const auto o = outcome(when, push_event("dev"));
    EXPECT_FALSE(o.matched);
    EXPECT_EQ(o.reason, "branch: 'dev' matches none of [main]");
    EXPECT_EQ(
        outcome({all({field("branch", {"main"}), field("tag", {"v*"})})}, push_event()).reason,
        "tag is not set for a push event");
}

TEST(ConditionComposition, AnyNeedsOneChild) {
    const auto when = any({field("branch", {"main"}), field("event", {"tag"})});
    EXPECT_TRUE(outcome({when}, push_event("main")).matched);
    EXPECT_TRUE(outcome({when}, tag_event()).matched);
    const auto o = outcome({when}, push_event("dev"));
    EXPECT_FALSE(o.matched);
    EXPECT_EQ(o.reason,
              "any: none of 2 alternatives matched (first: branch: 'dev' matches none of [main])");
}

TEST(ConditionComposition, NotInvertsItsChild) {
    const auto when = not_({field("actor", {"re:.*\\[bot\\]"})});
    EXPECT_TRUE(outcome({when}, push_event()).matched);
    auto bot = push_event();
    bot.actor = "renovate[bot]";
    const auto o = outcome({when}, bot);
    EXPECT_FALSE(o.matched);
    EXPECT_EQ(o.reason, "not: the inner condition matched");
}

TEST(ConditionComposition, NestsArbitrarily) {
    // (push to main) or (pull request into main that is not a draft)
    const auto when =
        any({all({field("event", {"push"}), field("branch", {"main"})}),
             all({field("event", {"pull_request"}), field("pull_request.target_branch", {"main"}),
                  not_({field("pull_request.draft", {"true"})})})});
    EXPECT_TRUE(outcome({when}, push_event("main")).matched);
    EXPECT_FALSE(outcome({when}, push_event("dev")).matched);
    auto pr = pull_request_event();
    EXPECT_TRUE(outcome({when}, pr).matched);
    pr.pull_request->draft = true;
    EXPECT_EQ(outcome({when}, pr).reason,
              "any: none of 2 alternatives matched (first: event: 'pull_request' matches none "
              "of [push])");
}

TEST(ConditionGuards, DeletedRefsDoNotMatchByDefault) {
    auto e = push_event("old");
    e.deleted = true;
    e.commit.clear();
    const auto o = outcome({field("branch", {"**"})}, e);
    EXPECT_FALSE(o.matched);
    EXPECT_EQ(o.reason, "the ref was deleted; add `deleted: true` to the rule to match deletions");
    EXPECT_FALSE(outcome({}, e).matched);
    // A rule its other conditions refuse says those: adding `deleted: true` would not help it.
    EXPECT_EQ(outcome({field("event", {"pull_request"})}, e).reason,
              "event: 'push' matches none of [pull_request]");
    EXPECT_EQ(outcome({field("branch", {"main"})}, e).reason,
              "branch: 'old' matches none of [main]");
}

TEST(ConditionGuards, MentioningDeletedLiftsTheGuard) {
    auto e = push_event("old");
    e.deleted = true;
    EXPECT_TRUE(outcome({field("deleted", {"true"})}, e).matched);
    EXPECT_TRUE(outcome({any({field("deleted", {"true"}), field("tag", {"*"})})}, e).matched);
    // Mentioned but excluded: the rule's own condition, not the guard, decides.
    EXPECT_EQ(outcome({field("deleted", {"false"})}, e).reason,
              "deleted: 'true' matches none of [false]");
    EXPECT_TRUE(outcome({field("deleted", {"false"})}, push_event()).matched);
}

TEST(ConditionGuards, PingEventsNeverTrigger) {
    auto ping = push_event();
    ping.kind = EventKind::ping;
    const auto o = outcome({}, ping);
    EXPECT_FALSE(o.matched);
    EXPECT_EQ(o.reason, "ping events never trigger");
    EXPECT_FALSE(outcome({field("event", {"ping"})}, ping).matched);
}

}  // namespace
}  // namespace hookrelay::rules
