#include "rules/builders.hpp"

#include <gtest/gtest.h>

namespace hookrelay::rules {
namespace {

using namespace test;
using Strings = std::vector<std::string>;
using Params = std::vector<std::pair<std::string, std::string>>;

TEST(RuleSet, EveryMatchingRuleFires) {
    const auto set = compile({
        rule("build-main", {field("branch", {"main"})}, {trigger("acme/app/main")}),
        rule("tags-only", {field("event", {"tag"})}, {trigger("acme/release")}),
        rule("notify", {}, {trigger("acme/notify"), trigger("acme/audit")}),
    });
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event("main"));
    EXPECT_EQ(d.matched_rules(), (Strings{"build-main", "notify"}));
    ASSERT_EQ(d.triggers.size(), 3u);
    EXPECT_EQ(d.triggers[0].rule, "build-main");
    EXPECT_EQ(d.triggers[0].job, (Strings{"acme", "app", "main"}));
    EXPECT_EQ(d.triggers[1].job, (Strings{"acme", "notify"}));
    EXPECT_EQ(d.triggers[2].job, (Strings{"acme", "audit"}));
    ASSERT_EQ(d.rules.size(), 3u);
    EXPECT_EQ(d.rules[1].rule, "tags-only");
    EXPECT_FALSE(d.rules[1].matched);
    EXPECT_EQ(d.rules[1].reason, "event: 'push' matches none of [tag]");
    EXPECT_TRUE(d.failures.empty());
}

TEST(RuleSet, StopPreventsLaterRules) {
    const auto set = compile({
        rule("skip-bots", {field("actor", {"*[[]bot[]]"})}, {}, /*stop=*/true),
        rule("build", {}, {trigger("acme/app")}),
        rule("audit", {}, {trigger("acme/audit")}),
    });
    ASSERT_TRUE(set);
    auto bot = push_event();
    bot.actor = "dependabot[bot]";
    const auto d = set->evaluate(bot);
    EXPECT_EQ(d.matched_rules(), (Strings{"skip-bots"}));
    EXPECT_TRUE(d.triggers.empty());
    ASSERT_EQ(d.rules.size(), 3u);
    EXPECT_FALSE(d.rules[1].evaluated);
    EXPECT_FALSE(d.rules[1].matched);
    EXPECT_EQ(d.rules[1].reason, "not evaluated: rule 'skip-bots' matched with stop: true");
    EXPECT_FALSE(d.rules[2].evaluated);
}

TEST(RuleSet, StopRuleStillFiresItsOwnTriggersAndEarlierRulesStand) {
    const auto set = compile({
        rule("first", {}, {trigger("a")}),
        rule("main-only", {field("branch", {"main"})}, {trigger("b")}, /*stop=*/true),
        rule("later", {}, {trigger("c")}),
    });
    ASSERT_TRUE(set);
    auto d = set->evaluate(push_event("main"));
    EXPECT_EQ(d.matched_rules(), (Strings{"first", "main-only"}));
    ASSERT_EQ(d.triggers.size(), 2u);
    EXPECT_EQ(d.triggers[1].job, (Strings{"b"}));
    // A stop rule that does not match stops nothing.
    d = set->evaluate(push_event("dev"));
    EXPECT_EQ(d.matched_rules(), (Strings{"first", "later"}));
    EXPECT_TRUE(d.rules[2].evaluated);
}

TEST(RuleSet, PingMatchesNoRule) {
    const auto set = compile({rule("all", {}, {trigger("acme/app")})});
    ASSERT_TRUE(set);
    auto ping = push_event();
    ping.kind = EventKind::ping;
    const auto d = set->evaluate(ping);
    EXPECT_TRUE(d.matched_rules().empty());
    EXPECT_TRUE(d.triggers.empty());
    EXPECT_EQ(d.rules.at(0).reason, "ping events never trigger");
}

TEST(RuleSet, MultibranchJobKeepsSlashesOfRenderedValuesInTheirSegment) {
    const auto set = compile({rule("mb", {}, {trigger("acme/app/{{ branch }}")})});
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event("feature/x"));
    ASSERT_EQ(d.triggers.size(), 1u);
    EXPECT_EQ(d.triggers[0].job, (Strings{"acme", "app", "feature/x"}));
    EXPECT_EQ(job_display_path(d.triggers[0].job), "acme/app/feature%2Fx");
}

TEST(RuleSet, SlashesInsideAnExpressionDoNotSplitTheJob) {
    const auto set = compile(
        {rule("flat", {},
              {trigger("{{ repository | replace('/', '-') }}/{{ branch | replace('/', '_') }}")})});
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event("feature/x"));
    ASSERT_EQ(d.triggers.size(), 1u);
    EXPECT_EQ(d.triggers[0].job, (Strings{"acme-app", "feature_x"}));
}

TEST(RuleSet, RendersParametersInOrderWithAHumanCause) {
    const auto set = compile({rule("build", {},
                                   {trigger("acme/app", {{"SHA", "{{ commit | short_sha }}"},
                                                         {"BRANCH", "{{ branch }}"},
                                                         {"MODE", "full"}})})});
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event("main"));
    ASSERT_EQ(d.triggers.size(), 1u);
    const auto& t = d.triggers[0];
    EXPECT_EQ(t.jenkins, "ci");
    EXPECT_EQ(t.rule, "build");
    EXPECT_EQ(t.parameters, (Params{{"SHA", "0123456"}, {"BRANCH", "main"}, {"MODE", "full"}}));
    EXPECT_EQ(t.cause,
              "hookrelay: github push on acme/app refs/heads/main (delivery d-1, rule build)");
}

TEST(RuleSet, PullRequestCauseNamesThePullRequest) {
    const auto set = compile({rule("pr", {}, {trigger("acme/app/PR-{{ pull_request.number }}")})});
    ASSERT_TRUE(set);
    auto e = pull_request_event();
    e.provider = Provider::gitlab;
    e.source = "gitlab";
    const auto d = set->evaluate(e);
    ASSERT_EQ(d.triggers.size(), 1u);
    EXPECT_EQ(d.triggers[0].job, (Strings{"acme", "app", "PR-42"}));
    EXPECT_EQ(d.triggers[0].cause,
              "hookrelay: gitlab pull_request on acme/app PR #42 (delivery d-1, rule pr)");
}

TEST(RuleSet, RenderFailureSkipsOnlyThatTrigger) {
    const auto set = compile(
        {rule("build", {},
              {trigger("acme/pr-{{ pull_request.number }}"), trigger("acme/app/{{ branch }}")})});
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event("main"));
    EXPECT_EQ(d.matched_rules(), (Strings{"build"}));
    ASSERT_EQ(d.failures.size(), 1u);
    EXPECT_EQ(d.failures[0].rule, "build");
    EXPECT_EQ(d.failures[0].reason,
              "job 'acme/pr-{{ pull_request.number }}': 'pull_request.number' is not set for a "
              "push event");
    ASSERT_EQ(d.triggers.size(), 1u);
    EXPECT_EQ(d.triggers[0].job, (Strings{"acme", "app", "main"}));
}

TEST(RuleSet, ParameterRenderFailureIsReported) {
    const auto set =
        compile({rule("release", {}, {trigger("acme/release", {{"VERSION", "{{ tag }}"}})})});
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event());
    EXPECT_TRUE(d.triggers.empty());
    ASSERT_EQ(d.failures.size(), 1u);
    EXPECT_EQ(d.failures[0].reason, "parameter 'VERSION': 'tag' is not set for a push event");
    EXPECT_EQ(set->evaluate(tag_event()).triggers.at(0).parameters,
              (Params{{"VERSION", "v1.2.0"}}));
}

TEST(RuleSet, EmptyRenderedJobSegmentIsAFailure) {
    const auto set =
        compile({rule("r", {}, {trigger("acme/{{ payload.folder | default('') }}/app")})});
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event());
    EXPECT_TRUE(d.triggers.empty());
    ASSERT_EQ(d.failures.size(), 1u);
    EXPECT_EQ(d.failures[0].reason,
              "job 'acme/{{ payload.folder | default('') }}/app': segment 2 ('{{ payload.folder "
              "| default('') }}') rendered empty");
}

// --- compile errors ------------------------------------------------------------------------

std::vector<ConfigError> compile_errors(std::vector<RuleSpec> rules) {
    std::vector<ConfigError> errors;
    EXPECT_EQ(RuleSet::compile(config(std::move(rules)), errors), nullptr);
    return errors;
}

TEST(RuleSetCompile, CollectsEveryErrorWithPositions) {
    auto r1 = rule("build", {field("brnch", {"main"}, {5, 7})});
    r1.where = {3, 5};
    auto glob = field("paths", {}, {6, 7});
    glob.patterns = {{"src/**", {6, 15}}, {"docs/[abc", {6, 25}}};
    auto regex = field("tag", {}, {7, 7});
    regex.patterns = {{"re:v(", {7, 12}}};
    r1.when.children.push_back(glob);
    r1.when.children.push_back(regex);
    auto t = trigger("acme/{{ brnch }}");
    t.jenkins = "jenkins-prod";
    t.jenkins_where = {9, 18};
    t.job.where = {10, 14};
    t.parameters.push_back({"SHA", TemplateSpec{"{{ commit | shortsha }}", {11, 16}}});
    r1.triggers.push_back(t);

    auto r2 = rule("build", {});
    r2.where = {13, 5};

    const auto errors = compile_errors({r1, r2});
    ASSERT_EQ(errors.size(), 7u);
    const auto at = [&](std::size_t i) {
        return std::to_string(errors[i].where.line) + ":" + std::to_string(errors[i].where.column) +
               " " + errors[i].message;
    };
    EXPECT_EQ(at(0), "5:7 rule 'build': unknown condition field 'brnch' (did you mean 'branch'?)");
    EXPECT_EQ(at(1), "6:30 rule 'build': paths: bad glob 'docs/[abc': unclosed '[' (missing ']')");
    EXPECT_EQ(at(2), "7:15 rule 'build': tag: bad regex 're:v(': missing ): v(");
    EXPECT_EQ(at(3), "9:18 rule 'build': unknown jenkins 'jenkins-prod' (known: ci)");
    EXPECT_EQ(at(4), "10:22 rule 'build': job: unknown variable 'brnch' (did you mean 'branch'?)");
    EXPECT_EQ(at(5),
              "11:28 rule 'build': parameter 'SHA': unknown filter 'shortsha' (did you mean "
              "'short_sha'?); filters are default, lower, upper, replace, short_sha");
    EXPECT_EQ(at(6), "13:5 duplicate rule name 'build' (first defined at line 3)");
    for (const auto& e : errors) EXPECT_EQ(e.file, "hookrelay.yaml");
    EXPECT_EQ(to_string(errors[3]),
              "hookrelay.yaml:9:18: rule 'build': unknown jenkins 'jenkins-prod' (known: ci)");
}

TEST(RuleSetCompile, UnknownFieldSuggestsPaths) {
    const auto errors = compile_errors({rule("r", {field("path", {"src/**"})})});
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].message,
              "rule 'r': unknown condition field 'path' (did you mean 'paths'?)");
}

TEST(RuleSetCompile, NotNeedsExactlyOneChild) {
    auto two = not_({field("branch", {"a"}), field("tag", {"b"})});
    two.where = {4, 9};
    const auto errors = compile_errors({rule("r", {two}), rule("s", {not_({})})});
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0].where.line, 4);
    EXPECT_EQ(errors[0].message, "rule 'r': 'not' takes exactly one condition, got 2");
    EXPECT_EQ(errors[1].message, "rule 's': 'not' takes exactly one condition, got 0");
}

TEST(RuleSetCompile, RuleNamesMustBePresent) {
    auto unnamed = rule("", {});
    unnamed.where = {8, 5};
    const auto errors = compile_errors({rule("a", {}), unnamed});
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].where.line, 8);
    EXPECT_EQ(errors[0].message, "rule #2 has no name");
}

TEST(RuleSetCompile, JobsMustBeNonEmptyPaths) {
    auto empty = trigger("");
    empty.job.where = {5, 12};
    auto doubled = trigger("acme//app");
    doubled.job.where = {6, 12};
    const auto errors = compile_errors({rule("r", {}, {empty, doubled})});
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0].message, "rule 'r': trigger has no job");
    EXPECT_EQ(errors[0].where.column, 12);
    EXPECT_EQ(errors[1].message, "rule 'r': job 'acme//app' has an empty path segment");
    EXPECT_EQ(errors[1].where.column, 17);
}

TEST(RuleSetCompile, BadTemplateSyntaxIsAConfigError) {
    auto t = trigger("acme/{{ branch");
    t.job.where = {2, 10};
    const auto errors = compile_errors({rule("r", {}, {t})});
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].message, "rule 'r': job: unclosed '{{' (missing '}}')");
    EXPECT_EQ(errors[0].where.column, 15);
}

// Jenkins reads a build's parameters from the query and the body together: a parameter named
// `delay` (hookrelay sends `delay=0sec`) or `token` (with a job token) would get two values and
// every attempt would be answered 500.
TEST(RuleSetCompile, AParameterJenkinsWouldAlsoReadFromTheQueryIsRefused) {
    auto t = trigger("acme/app", {{"delay", "5"}, {"token", "x"}, {"SHA", "{{ commit }}"}});
    auto errors = compile_errors({rule("r", {}, {t})});
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].message.find("parameter 'delay' cannot be sent: Jenkins would also read "
                                     "the `delay` hookrelay sends"),
              std::string::npos)
        << errors[0].message;
    t.token = Secret("job-token");
    errors = compile_errors({rule("r", {}, {t})});
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_NE(errors[1].message.find("parameter 'token' cannot be sent"), std::string::npos)
        << errors[1].message;
}

// The dispatcher tells a build's job token by its written-out job (else it takes the first
// templated trigger's): two templated triggers of a rule on one Jenkins with different tokens,
// or one job given two tokens, cannot be told apart.
TEST(RuleSetCompile, JobTokensTheDispatcherCannotTellApartAreRefused) {
    auto a = trigger("acme/app");
    a.token = Secret("token-a");
    auto b = trigger("acme/lib");
    b.token = Secret("token-b");
    auto templated = trigger("acme/{{ branch }}");
    std::vector<ConfigError> none;
    EXPECT_NE(RuleSet::compile(config({rule("r", {}, {a, b, templated})}), none), nullptr);
    EXPECT_TRUE(none.empty());
    auto other = trigger("other/{{ branch }}");
    other.token = Secret("token-b");
    auto errors = compile_errors({rule("r", {}, {a, templated, other})});
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].message,
              "rule 'r': its triggers on jenkins 'ci' ('acme/{{ branch }}' and "
              "'other/{{ branch }}') have different job tokens, and hookrelay tells a build's "
              "token by its job only where the job is written out in full: put them in rules of "
              "their own");
    auto again = trigger("acme/app");
    again.token = Secret("token-b");
    errors = compile_errors({rule("r", {}, {a, again})});
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].message,
              "rule 'r': job 'acme/app' on jenkins 'ci' is given two different "
              "tokens");
}

TEST(RuleSetCompile, UnknownJenkinsWithNoneConfigured) {
    Config c = config({rule("r", {}, {trigger("x")})});
    c.jenkins.clear();
    std::vector<ConfigError> errors;
    EXPECT_EQ(RuleSet::compile(c, errors), nullptr);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].message, "rule 'r': unknown jenkins 'ci' (known: none)");
}

TEST(RuleSetCompile, ConditionsNeedPatterns) {
    const auto errors = compile_errors({rule("r", {field("branch", {})}), rule("s", {any({})})});
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0].message, "rule 'r': condition 'branch' has no patterns");
    EXPECT_EQ(errors[1].message, "rule 's': 'any' needs at least one condition");
}

TEST(RuleSetCompile, ErrorsAppendToExistingOnes) {
    std::vector<ConfigError> errors{{"hookrelay.yaml", {1, 1}, "from the loader"}};
    EXPECT_EQ(RuleSet::compile(config({rule("r", {field("nope", {"x"})})}), errors), nullptr);
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0].message, "from the loader");
}

TEST(RuleSetCompile, ValidConfigCompilesWithoutErrors) {
    std::vector<ConfigError> errors;
    const auto set =
        RuleSet::compile(config({rule("r", {field("branch", {"main"})}, {trigger("a")})}), errors);
    EXPECT_NE(set, nullptr);
    EXPECT_TRUE(errors.empty());
}

}  // namespace
}  // namespace hookrelay::rules
