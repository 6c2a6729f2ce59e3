// The part of a trigger's job path that does not depend on the event (rules::static_job_path).
#include "rules/rules.hpp"

#include <gtest/gtest.h>

namespace hookrelay::rules {
namespace {

using Segments = std::vector<std::string>;

TEST(StaticJobPath, LiteralPathIsCompleteAndSplitIntoItems) {
    const auto p = static_job_path("acme/app/main");
    EXPECT_TRUE(p.complete);
    EXPECT_EQ(p.segments, (Segments{"acme", "app", "main"}));
}

TEST(StaticJobPath, TemplatedPathGivesTheFoldersBeforeTheFirstTemplate) {
    const auto p = static_job_path("acme/app/{{ branch }}");
    EXPECT_FALSE(p.complete);
    EXPECT_EQ(p.segments, (Segments{"acme", "app"}));
}

TEST(StaticJobPath, LiteralSegmentsAfterATemplateAreNotPartOfThePrefix) {
    const auto p = static_job_path("acme/{{ repository.name }}/main");
    EXPECT_FALSE(p.complete);
    EXPECT_EQ(p.segments, (Segments{"acme"}));
}

TEST(StaticJobPath, SlashInsideATemplateDoesNotSplit) {
    const auto p = static_job_path("ci/{{ branch | replace('/', '-') }}");
    EXPECT_FALSE(p.complete);
    EXPECT_EQ(p.segments, (Segments{"ci"}));
}

TEST(StaticJobPath, PathStartingWithATemplateHasNoStaticPart) {
    const auto p = static_job_path("{{ repository.namespace }}/app");
    EXPECT_FALSE(p.complete);
    EXPECT_TRUE(p.segments.empty());
}

TEST(StaticJobPath, PartlyTemplatedSegmentEndsThePrefix) {
    const auto p = static_job_path("acme/app-{{ branch }}");
    EXPECT_FALSE(p.complete);
    EXPECT_EQ(p.segments, (Segments{"acme"}));
}

}  // namespace
}  // namespace hookrelay::rules
