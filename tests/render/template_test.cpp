#include "render/template.hpp"
#include "support/json_document.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <memory>
#include <string>

namespace hookrelay::render {
namespace {

Event push_event() {
    Event e;
    e.source = "github";
    e.kind = EventKind::push;
    e.repository.full_name = "acme/app";
    e.repository.name = "app";
    e.ref = "refs/heads/feature/Login-Form";
    e.branch = "feature/Login-Form";
    e.commit = "0123456789abcdef0123456789abcdef01234567";
    e.payload = test::document(boost::json::parse(
        R"({"sender":{"login":"octo"},"commits":[{"id":"c0ffee"}],"size":3,"empty":""})"));
    return e;
}

// Renders `text` against the push event; fails the test when parsing or rendering fails.
std::string render(std::string_view text, const Event& event = push_event()) {
    std::string why;
    auto t = Template::parse(text, &why);
    EXPECT_TRUE(t) << text << ": " << why;
    if (!t) return "<parse error>";
    auto out = t->render(event, &why);
    EXPECT_TRUE(out) << text << ": " << why;
    return out ? *out : "<render error>";
}

struct ParseFailure {
    boost::system::error_code code;
    std::string why;
    std::size_t offset = 0;
};

ParseFailure parse_failure(std::string_view text) {
    ParseFailure f;
    auto t = Template::parse(text, &f.why, &f.offset);
    EXPECT_FALSE(t) << "expected '" << text << "' to be rejected";
    if (!t) f.code = t.error();
    return f;
}

TEST(Template, LiteralTextPassesThroughUnchanged) {
    const auto t = Template::parse("acme/app {weird} } { $x");
    ASSERT_TRUE(t);
    EXPECT_TRUE(t->is_literal());
    EXPECT_EQ(t->text(), "acme/app {weird} } { $x");
    EXPECT_EQ(*t->render(push_event()), "acme/app {weird} } { $x");
}

TEST(Template, EmptyTemplateRendersEmpty) {
    const auto t = Template::parse("");
    ASSERT_TRUE(t);
    EXPECT_TRUE(t->is_literal());
    EXPECT_EQ(*t->render(push_event()), "");
}

TEST(Template, RendersModelFieldsWithOrWithoutSpaces) {
    EXPECT_EQ(render("{{ branch }}"), "feature/Login-Form");
    EXPECT_EQ(render("{{branch}}"), "feature/Login-Form");
    EXPECT_EQ(render("{{\tbranch\n}}"), "feature/Login-Form");
    EXPECT_EQ(render("job-{{ repository.name }}-{{ event }}"), "job-app-push");
    EXPECT_EQ(render("{{ repository }}"), "acme/app");
    EXPECT_FALSE(Template::parse("x{{ branch }}")->is_literal());
}

TEST(Template, RendersPayloadPathsIncludingArrayIndexes) {
    EXPECT_EQ(render("{{ payload.sender.login }}"), "octo");
    EXPECT_EQ(render("{{ payload.commits.0.id }}"), "c0ffee");
    EXPECT_EQ(render("{{ payload.size }}"), "3");
}

TEST(Template, RendersBooleansAndNumbersAsText) {
    auto e = push_event();
    e.kind = EventKind::pull_request;
    e.pull_request = PullRequest{};
    e.pull_request->number = 42;
    e.pull_request->draft = true;
    EXPECT_EQ(render("PR-{{ pull_request.number }} draft={{ pull_request.draft }}", e),
              "PR-42 draft=true");
    EXPECT_EQ(render("{{ deleted }}"), "false");
}

TEST(TemplateFilter, LowerAndUpper) {
    EXPECT_EQ(render("{{ branch | lower }}"), "feature/login-form");
    EXPECT_EQ(render("{{ branch|upper }}"), "FEATURE/LOGIN-FORM");
}

TEST(TemplateFilter, ReplaceReplacesEveryOccurrence) {
    auto e = push_event();
    e.branch = "a/b/c";
    EXPECT_EQ(render("{{ branch | replace('/', '-') }}", e), "a-b-c");
    EXPECT_EQ(render("{{ branch | replace(\"/\", \"\") }}", e), "abc");
    EXPECT_EQ(render("{{ branch | replace('a/b', 'x') }}", e), "x/c");
    EXPECT_EQ(render("{{ branch | replace('zz', 'x') }}", e), "a/b/c");
}

TEST(TemplateFilter, ShortShaKeepsSevenCharactersByDefault) {
    EXPECT_EQ(render("{{ commit | short_sha }}"), "0123456");
    EXPECT_EQ(render("{{ commit | short_sha(10) }}"), "0123456789");
    EXPECT_EQ(render("{{ commit | short_sha() }}"), "0123456");
    EXPECT_EQ(render("{{ payload.commits.0.id | short_sha(10) }}"), "c0ffee");
}

TEST(TemplateFilter, FiltersApplyLeftToRight) {
    EXPECT_EQ(render("{{ branch | replace('/', '_') | upper }}"), "FEATURE_LOGIN-FORM");
    EXPECT_EQ(render("{{ branch | upper | replace('feature', 'x') }}"), "FEATURE/LOGIN-FORM");
    EXPECT_EQ(render("{{ branch | lower | replace('feature', 'x') }}"), "x/login-form");
}

TEST(TemplateFilter, DefaultAppliesToUnsetValues) {
    EXPECT_EQ(render("{{ tag | default('none') }}"), "none");
    EXPECT_EQ(render("{{ tag | default(\"none\") }}"), "none");
    EXPECT_EQ(render("{{ pull_request.number | default('0') }}"), "0");
    EXPECT_EQ(render("{{ payload.missing.deeply | default('x') }}"), "x");
    EXPECT_EQ(render("[{{ tag | default('') }}]"), "[]");
}

TEST(TemplateFilter, DefaultAppliesToEmptyValues) {
    EXPECT_EQ(render("{{ payload.empty | default('blank') }}"), "blank");
    // replace can empty a value; a later default then fills it.
    auto e = push_event();
    e.branch = "xx";
    EXPECT_EQ(render("{{ branch | replace('x', '') | default('gone') }}", e), "gone");
}

TEST(TemplateFilter, DefaultLeavesSetValuesAlone) {
    EXPECT_EQ(render("{{ branch | default('main') }}"), "feature/Login-Form");
}

TEST(TemplateFilter, OtherFiltersPassUnsetValuesToALaterDefault) {
    EXPECT_EQ(render("{{ tag | upper | default('none') }}"), "none");
    EXPECT_EQ(render("{{ tag | default('none') | upper }}"), "NONE");
}

TEST(TemplateFilter, QuotedArgumentsMayContainBracesPipesAndEscapedQuotes) {
    EXPECT_EQ(render("{{ tag | default('}}|(,)') }}"), "}}|(,)");
    EXPECT_EQ(render(R"({{ tag | default('it\'s') }})"), "it's");
    EXPECT_EQ(render(R"({{ tag | default("say \"hi\"") }})"), R"(say "hi")");
}

TEST(TemplateRender, UnsetVariableWithoutDefaultNamesItAndTheEventKind) {
    const auto t = Template::parse("PR-{{ pull_request.number }}");
    ASSERT_TRUE(t);
    std::string why;
    const auto out = t->render(push_event(), &why);
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error(), errc::variable_not_set);
    EXPECT_EQ(why, "'pull_request.number' is not set for a push event");
}

TEST(TemplateRender, UnsetVariableOnAnOtherEventNamesTheForgeEvent) {
    auto e = push_event();
    e.kind = EventKind::other;
    e.forge_event = "workflow_run";
    std::string why;
    EXPECT_FALSE(Template::parse("{{ tag }}")->render(e, &why));
    EXPECT_EQ(why, "'tag' is not set for a 'workflow_run' event");
}

TEST(TemplateRender, UnsetPayloadMemberIsAnError) {
    std::string why;
    const auto out = Template::parse("{{ payload.sender.email }}")->render(push_event(), &why);
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error(), errc::variable_not_set);
    EXPECT_EQ(why, "'payload.sender.email' is not set for a push event");
}

TEST(TemplateParse, UnknownVariableSuggestsTheClosestField) {
    const auto f = parse_failure("build-{{ brnch }}");
    EXPECT_EQ(f.code, errc::unknown_variable);
    EXPECT_EQ(f.why, "unknown variable 'brnch' (did you mean 'branch'?)");
    EXPECT_EQ(f.offset, 9u);
}

TEST(TemplateParse, UnknownNestedVariableSuggestsTheClosestField) {
    const auto f = parse_failure("{{pull_request.numbr}}");
    EXPECT_EQ(f.code, errc::unknown_variable);
    EXPECT_EQ(f.why, "unknown variable 'pull_request.numbr' (did you mean 'pull_request.number'?)");
    EXPECT_EQ(f.offset, 2u);
}

TEST(TemplateParse, UnknownVariableFarFromAnyFieldHasNoSuggestion) {
    const auto f = parse_failure("{{ zzzzzzzz }}");
    EXPECT_EQ(f.code, errc::unknown_variable);
    EXPECT_EQ(f.why, "unknown variable 'zzzzzzzz'");
}

TEST(TemplateParse, UnknownDottedVariablePointsAtPayload) {
    const auto f = parse_failure("{{ sender.login }}");
    EXPECT_EQ(f.code, errc::unknown_variable);
    EXPECT_NE(f.why.find("'payload.sender.login'"), std::string::npos) << f.why;
}

TEST(TemplateParse, UnclosedExpressionPointsAtItsOpening) {
    const auto f = parse_failure("a/{{ branch");
    EXPECT_EQ(f.code, errc::bad_template);
    EXPECT_EQ(f.why, "unclosed '{{' (missing '}}')");
    EXPECT_EQ(f.offset, 2u);
    EXPECT_EQ(parse_failure("{{").offset, 0u);
    EXPECT_EQ(parse_failure("x {{ branch | default('a') ").why, "unclosed '{{' (missing '}}')");
}

TEST(TemplateParse, StrayClosingBracesAreRejected) {
    const auto f = parse_failure("abc }} def");
    EXPECT_EQ(f.code, errc::bad_template);
    EXPECT_EQ(f.why, "stray '}}' with no '{{' before it");
    EXPECT_EQ(f.offset, 4u);
    EXPECT_EQ(parse_failure("{{ branch }}}}").offset, 12u);
}

TEST(TemplateParse, EmptyExpressionIsRejected) {
    const auto f = parse_failure("x-{{  }}");
    EXPECT_EQ(f.code, errc::bad_template);
    EXPECT_EQ(f.why, "empty expression '{{ }}'");
    EXPECT_EQ(f.offset, 2u);
    const auto g = parse_failure("{{ | lower }}");
    EXPECT_EQ(g.why, "expected a variable before '|'");
    EXPECT_EQ(g.offset, 3u);
}

TEST(TemplateParse, UnknownFilterIsRejectedWithSuggestion) {
    const auto f = parse_failure("{{ branch | lowr }}");
    EXPECT_EQ(f.code, errc::bad_template);
    EXPECT_EQ(f.why,
              "unknown filter 'lowr' (did you mean 'lower'?); filters are default, lower, upper, "
              "replace, short_sha");
    EXPECT_EQ(f.offset, 12u);
}

TEST(TemplateParse, WrongArgumentCountsAreRejected) {
    auto f = parse_failure("{{ branch | replace('/') }}");
    EXPECT_EQ(f.code, errc::bad_template);
    EXPECT_EQ(f.why, "filter 'replace' takes 2 arguments, got 1");
    EXPECT_EQ(f.offset, 12u);
    EXPECT_EQ(parse_failure("{{ tag | default }}").why, "filter 'default' takes 1 argument, got 0");
    EXPECT_EQ(parse_failure("{{ tag | upper('x') }}").why,
              "filter 'upper' takes 0 arguments, got 1");
    EXPECT_EQ(parse_failure("{{ commit | short_sha(7, 8) }}").why,
              "filter 'short_sha' takes 0 or 1 arguments, got 2");
}

TEST(TemplateParse, ShortShaLengthMustBeAPositiveNumber) {
    const auto f = parse_failure("{{ commit | short_sha('abc') }}");
    EXPECT_EQ(f.code, errc::bad_template);
    EXPECT_EQ(f.why, "short_sha length must be a number from 1 to 64, got 'abc'");
    EXPECT_EQ(f.offset, 22u);
    EXPECT_EQ(parse_failure("{{ commit | short_sha(0) }}").code, errc::bad_template);
}

TEST(TemplateParse, MalformedArgumentsAreRejected) {
    auto f = parse_failure("{{ tag | default('x) }}");
    EXPECT_EQ(f.why, "unterminated string argument");
    EXPECT_EQ(f.offset, 17u);
    f = parse_failure("{{ tag | default(x) }}");
    EXPECT_EQ(f.why, "expected a quoted argument ('...' or \"...\"), got 'x'");
    EXPECT_EQ(f.offset, 17u);
    f = parse_failure("{{ tag | replace('a' 'b') }}");
    EXPECT_EQ(f.why, "unexpected \"'\" in arguments of 'replace', expected ',' or ')'");
    EXPECT_EQ(f.offset, 21u);
}

TEST(TemplateParse, JunkAfterTheVariableIsRejected) {
    const auto f = parse_failure("{{ branch tag }}");
    EXPECT_EQ(f.code, errc::bad_template);
    EXPECT_EQ(f.why, "unexpected 't' after 'branch', expected '|' or '}}'");
    EXPECT_EQ(f.offset, 10u);
    EXPECT_EQ(parse_failure("{{ branch | }}").why, "expected a filter name after '|'");
}

}  // namespace
}  // namespace hookrelay::render
