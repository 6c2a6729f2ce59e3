#include "rules/pattern.hpp"

#include <gtest/gtest.h>

#include <string>

namespace hookrelay::rules {
namespace {

bool glob_matches(std::string_view pattern, std::string_view value) {
    std::string why;
    auto p = Pattern::compile(pattern, &why);
    EXPECT_TRUE(p) << pattern << ": " << why;
    return p && p->matches(value);
}

TEST(Glob, StarStaysWithinOneSegment) {
    EXPECT_TRUE(glob_matches("release/*", "release/1.0"));
    EXPECT_FALSE(glob_matches("release/*", "release/1.0/hotfix"));
    EXPECT_TRUE(glob_matches("*.md", "README.md"));
    EXPECT_FALSE(glob_matches("*.md", "docs/guide.md"));
    EXPECT_TRUE(glob_matches("feature-*-x", "feature-abc-x"));
}

TEST(Glob, DoubleStarCrossesSlashes) {
    EXPECT_TRUE(glob_matches("src/**", "src/a/b/c.cpp"));
    EXPECT_TRUE(glob_matches("src/**", "src/main.cpp"));
    EXPECT_FALSE(glob_matches("src/**", "lib/src/main.cpp"));
    EXPECT_TRUE(glob_matches("release/**", "release/1.x/hotfix"));
    EXPECT_TRUE(glob_matches("a**z", "a/b/z"));
}

TEST(Glob, LeadingDoubleStarSlashAlsoMatchesTheTopLevel) {
    EXPECT_TRUE(glob_matches("**/*.md", "README.md"));
    EXPECT_TRUE(glob_matches("**/*.md", "docs/x/guide.md"));
    EXPECT_TRUE(glob_matches("src/**/test_*.cpp", "src/test_a.cpp"));
    EXPECT_TRUE(glob_matches("src/**/test_*.cpp", "src/x/y/test_a.cpp"));
    EXPECT_FALSE(glob_matches("src/**/test_*.cpp", "src/x/a.cpp"));
}

TEST(Glob, QuestionMarkIsOneCharacterButNotASlash) {
    EXPECT_TRUE(glob_matches("v?", "v1"));
    EXPECT_FALSE(glob_matches("v?", "v10"));
    EXPECT_FALSE(glob_matches("v?", "v"));
    EXPECT_FALSE(glob_matches("a?b", "a/b"));
}

TEST(Glob, CharacterClasses) {
    EXPECT_TRUE(glob_matches("v[0-9].*", "v1.2"));
    EXPECT_FALSE(glob_matches("v[0-9].*", "vx.2"));
    EXPECT_TRUE(glob_matches("[abc]x", "bx"));
    EXPECT_FALSE(glob_matches("[abc]x", "dx"));
    EXPECT_TRUE(glob_matches("[!a]x", "bx"));
    EXPECT_FALSE(glob_matches("[!a]x", "ax"));
    EXPECT_FALSE(glob_matches("[!a]x", "/x"));
    EXPECT_TRUE(glob_matches("[^a]x", "bx"));
    EXPECT_TRUE(glob_matches("[]]", "]"));
    EXPECT_TRUE(glob_matches("[.-]x", "-x"));
    EXPECT_FALSE(glob_matches("[.-]x", "ax"));
}

TEST(Glob, BracketsAreAClassSoLiteralBracketsNeedTheirOwnClass) {
    // "*[bot]" means "ends in b, o or t", as in every shell; bots are matched with [[] and []].
    EXPECT_TRUE(glob_matches("*[bot]", "octo"));
    EXPECT_FALSE(glob_matches("*[bot]", "dependabot[bot]"));
    EXPECT_TRUE(glob_matches("*[[]bot[]]", "dependabot[bot]"));
    EXPECT_FALSE(glob_matches("*[[]bot[]]", "octo"));
}

TEST(Glob, BraceAlternation) {
    EXPECT_TRUE(glob_matches("{main,develop}", "main"));
    EXPECT_TRUE(glob_matches("{main,develop}", "develop"));
    EXPECT_FALSE(glob_matches("{main,develop}", "mainline"));
    EXPECT_TRUE(glob_matches("release/{v1,v2}.*", "release/v2.3"));
    EXPECT_TRUE(glob_matches("{a,b{c,d}}", "bd"));
    EXPECT_TRUE(glob_matches("**/*.{c,h}pp", "src/x.hpp"));
    EXPECT_TRUE(glob_matches("a,b", "a,b"));
    EXPECT_TRUE(glob_matches("x}", "x}"));
}

TEST(Glob, EverythingElseIsLiteralAndCaseSensitive) {
    EXPECT_FALSE(glob_matches("a.b", "axb"));
    EXPECT_TRUE(glob_matches("c++", "c++"));
    EXPECT_TRUE(glob_matches("(x)|$^", "(x)|$^"));
    EXPECT_TRUE(glob_matches("a\\b", "a\\b"));
    EXPECT_FALSE(glob_matches("Main", "main"));
    EXPECT_TRUE(glob_matches("feature/üñí", "feature/üñí"));
}

TEST(Glob, MatchesTheWholeValue) {
    EXPECT_FALSE(glob_matches("main", "mainline"));
    EXPECT_FALSE(glob_matches("main", "not-main"));
    EXPECT_TRUE(glob_matches("main", "main"));
}

TEST(Glob, MultiLineValuesMatchDoubleStar) {
    EXPECT_TRUE(glob_matches("**skip-ci**", "Fix\n\nskip-ci\n"));
}

TEST(Glob, TranslatesToRe2) {
    EXPECT_EQ(*glob_to_re2("*.md"), "[^/]*\\.md");
    EXPECT_EQ(*glob_to_re2("src/**"), "src/.*");
    EXPECT_EQ(*glob_to_re2("**/x"), "(?:.*/)?x");
    EXPECT_EQ(*glob_to_re2("{a,b}?"), "(?:a|b)[^/]");
    EXPECT_EQ(*glob_to_re2("[!a-c]"), "[^/a-c]");
}

TEST(Pattern, NegationIsReportedNotApplied) {
    auto p = Pattern::compile("!docs/**");
    ASSERT_TRUE(p);
    EXPECT_TRUE(p->negative());
    EXPECT_EQ(p->text(), "!docs/**");
    EXPECT_TRUE(p->matches("docs/a.md"));
    EXPECT_FALSE(p->matches("src/a.cpp"));
    EXPECT_FALSE(Pattern::compile("docs/**")->negative());
}

TEST(Pattern, RegexIsAFullMatch) {
    EXPECT_TRUE(glob_matches("re:release-[0-9]+", "release-12"));
    EXPECT_FALSE(glob_matches("re:release-[0-9]+", "release-12a"));
    EXPECT_FALSE(glob_matches("re:v\\d+", "xv1"));
    EXPECT_TRUE(glob_matches("re:main|dev", "dev"));
    EXPECT_FALSE(glob_matches("re:main|dev", "main2"));
    auto neg = Pattern::compile("!re:dependabot.*");
    ASSERT_TRUE(neg);
    EXPECT_TRUE(neg->negative());
    EXPECT_TRUE(neg->matches("dependabot[bot]"));
}

TEST(Pattern, RegexRunsInLinearTime) {
    // Catastrophic under a backtracking engine; instant under RE2.
    const std::string value = std::string(100000, 'a') + "!";
    EXPECT_FALSE(glob_matches("re:(a+)+$", value));
    EXPECT_FALSE(glob_matches("*a*a*a*a*a*a*a*b", value));
}

TEST(Pattern, BadRegexReportsRe2Error) {
    std::string why;
    std::size_t offset = 99;
    auto p = Pattern::compile("re:feature-(", &why, &offset);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error(), errc::bad_regex);
    EXPECT_EQ(why, "missing ): feature-(");
    EXPECT_EQ(offset, 3u);
}

TEST(Pattern, UnclosedClassIsABadGlob) {
    std::string why;
    std::size_t offset = 99;
    auto p = Pattern::compile("feat[ab", &why, &offset);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error(), errc::bad_glob);
    EXPECT_EQ(why, "unclosed '[' (missing ']')");
    EXPECT_EQ(offset, 4u);
}

TEST(Pattern, UnclosedBraceIsABadGlob) {
    std::string why;
    std::size_t offset = 99;
    auto p = Pattern::compile("!x{a,{b}", &why, &offset);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error(), errc::bad_glob);
    EXPECT_EQ(why, "unclosed '{' (missing '}')");
    EXPECT_EQ(offset, 2u);
}

TEST(Pattern, ReversedClassRangeIsABadGlob) {
    std::string why;
    auto p = Pattern::compile("[z-a]", &why);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error(), errc::bad_glob);
    EXPECT_NE(why.find("invalid character class range"), std::string::npos) << why;
}

TEST(Pattern, EmptyPatternsAreRejected) {
    EXPECT_EQ(Pattern::compile("").error(), errc::bad_glob);
    EXPECT_EQ(Pattern::compile("!").error(), errc::bad_glob);
}

}  // namespace
}  // namespace hookrelay::rules
