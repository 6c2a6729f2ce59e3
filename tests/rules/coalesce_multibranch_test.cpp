// What rules put on a trigger for coalescing (`coalesce:`, `cancel_superseded:`) and for
// multibranch projects (`multibranch:` + `branch:`, `scan:`).
#include "rules/builders.hpp"

#include <gmock/gmock.h>

namespace hookrelay::rules {
namespace {

using namespace test;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::shared_ptr<const RuleSet> compile_ok(const Config& c) {
    std::vector<ConfigError> errors;
    auto set = RuleSet::compile(c, errors);
    for (const auto& e : errors) ADD_FAILURE() << to_string(e);
    return set;
}

std::vector<std::string> compile_errors(const Config& c) {
    std::vector<ConfigError> errors;
    RuleSet::compile(c, errors);
    std::vector<std::string> out;
    for (const auto& e : errors) out.push_back(to_string(e));
    return out;
}

TriggerSpec branch_trigger(std::string project, std::string branch) {
    auto t = trigger(std::move(project));
    t.multibranch = true;
    t.branch = TemplateSpec{std::move(branch), {}};
    return t;
}

TEST(RuleCoalesce, RendersTheKeyOntoEveryTriggerOfTheRule) {
    auto r = rule("main", {}, {trigger("acme/app"), trigger("acme/docs")});
    r.coalesce = TemplateSpec{"{{ repository }}:{{ branch }}", {}};
    r.cancel_superseded = true;
    const auto set = compile_ok(config({r}));
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event("main"));
    ASSERT_EQ(d.triggers.size(), 2u);
    EXPECT_EQ(d.triggers[0].coalesce, "acme/app:main");
    EXPECT_TRUE(d.triggers[0].cancel_superseded);
    // Two triggers of one rule compete only with their own job's: the scopes differ.
    EXPECT_NE(coalesce_scope(d.triggers[0]), coalesce_scope(d.triggers[1]));
    EXPECT_EQ(coalesce_scope(d.triggers[0]),
              coalesce_scope(set->evaluate(push_event("main")).triggers[0]));
    EXPECT_NE(coalesce_scope(d.triggers[0]),
              coalesce_scope(set->evaluate(push_event("dev")).triggers[0]));
}

TEST(RuleCoalesce, WithoutAKeyEveryTriggerGoesOut) {
    const auto set = compile_ok(config({rule("main", {}, {trigger("acme/app")})}));
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event());
    ASSERT_EQ(d.triggers.size(), 1u);
    EXPECT_EQ(d.triggers[0].coalesce, "");
    EXPECT_FALSE(d.triggers[0].cancel_superseded);
    EXPECT_EQ(coalesce_scope(d.triggers[0]), "");
}

// A key the event has no value for (`branch` on a tag push) coalesces nothing, as an empty one:
// the build still goes out.
TEST(RuleCoalesce, AKeyTheEventCannotFillLetsTheTriggerGoOutAlone) {
    auto r = rule("app", {}, {trigger("acme/app")});
    r.coalesce = TemplateSpec{"{{ repository }}:{{ branch }}", {}};
    r.cancel_superseded = true;
    const auto set = compile_ok(config({r}));
    ASSERT_TRUE(set);
    const auto d = set->evaluate(tag_event());
    EXPECT_TRUE(d.failures.empty()) << d.failures.front().reason;
    ASSERT_EQ(d.triggers.size(), 1u);
    EXPECT_EQ(d.triggers[0].coalesce, "");
    EXPECT_FALSE(d.triggers[0].cancel_superseded);
    EXPECT_EQ(coalesce_scope(d.triggers[0]), "");
}

TEST(RuleCoalesce, AKeyThatCanNeverRenderForTheRulesEventsIsAConfigError) {
    auto r = rule("pushes", {field("event", {"push"})}, {trigger("acme/app")});
    r.coalesce = TemplateSpec{"{{ pull_request.number }}", {}};
    EXPECT_THAT(compile_errors(config({r})),
                ElementsAre(HasSubstr("coalesce: 'pull_request.number' is never set")));
}

TEST(RuleMultibranch, TheBranchIsOneItemInsideTheProject) {
    const auto set =
        compile_ok(config({rule("mb", {}, {branch_trigger("acme/app", "{{ branch }}")})}));
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event("feature/x"));
    ASSERT_EQ(d.triggers.size(), 1u);
    EXPECT_THAT(d.triggers[0].job, ElementsAre("acme", "app", "feature/x"));
    EXPECT_EQ(d.triggers[0].multibranch, 2u);
    EXPECT_FALSE(d.triggers[0].scan_only);
}

TEST(RuleMultibranch, AnEmptyBranchIsAFailureWithTheReason) {
    const auto set = compile_ok(
        config({rule("mb", {}, {branch_trigger("acme/app", "{{ tag | default('') }}")})}));
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event("main"));
    EXPECT_TRUE(d.triggers.empty());
    ASSERT_EQ(d.failures.size(), 1u);
    EXPECT_THAT(d.failures[0].reason, HasSubstr("rendered empty"));
}

TEST(RuleScan, AScanTriggerNamesTheProjectAndIsNeitherFollowedNorGivenAStatus) {
    auto t = trigger("acme/app");
    t.scan = true;
    auto c = config({rule("deleted", {}, {t})});
    SourceConfig gh;
    gh.name = "github";
    gh.provider = Provider::github;
    gh.status = StatusConfig{};
    c.sources.push_back(gh);
    const auto set = compile_ok(c);
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event());
    ASSERT_EQ(d.triggers.size(), 1u);
    EXPECT_TRUE(d.triggers[0].scan_only);
    EXPECT_THAT(d.triggers[0].job, ElementsAre("acme", "app"));
    EXPECT_EQ(d.triggers[0].follow, FollowMode::none);
    EXPECT_FALSE(d.triggers[0].status);
}

}  // namespace
}  // namespace hookrelay::rules

namespace hookrelay::rules {
namespace {

TEST(RuleCoalesce, CancelSupersededNeedsFollowedBuilds) {
    auto r = test::rule("main", {}, {test::trigger("acme/app")});
    r.coalesce = TemplateSpec{"{{ branch }}", {}};
    r.cancel_superseded = true;
    r.follow = FollowMode::none;
    std::vector<ConfigError> errors;
    RuleSet::compile(test::config({r}), errors);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(to_string(errors[0]).find("cancel_superseded needs its builds followed"),
              std::string::npos);
}

}  // namespace
}  // namespace hookrelay::rules
