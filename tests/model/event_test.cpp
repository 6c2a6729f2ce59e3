#include <hookrelay/event.hpp>
#include <hookrelay/store.hpp>

#include "support/json_document.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace hookrelay {
namespace {

Event sample() {
    Event e;
    e.source = "github";
    e.kind = EventKind::push;
    e.branch = "feature/x";
    e.repository.full_name = "acme/app";
    e.repository.name = "app";
    e.changed_files = {"src/a.cpp", "README.md"};
    e.payload = test::document(boost::json::parse(
        R"({"sender":{"login":"octo"},"commits":[{"id":"abc"}],"n":3,"f":false})"));
    return e;
}

TEST(EventField, ReadsModelFields) {
    const auto e = sample();
    EXPECT_EQ(event_field(e, "branch"), "feature/x");
    EXPECT_EQ(event_field(e, "repository.name"), "app");
    EXPECT_EQ(event_field(e, "repository"), "acme/app");
    EXPECT_EQ(event_field(e, "event"), "push");
    EXPECT_EQ(event_field(e, "deleted"), "false");
    EXPECT_EQ(event_field(e, "changed_files"), "src/a.cpp,README.md");
}

TEST(EventField, UnsetFieldsAreNullopt) {
    const auto e = sample();
    EXPECT_FALSE(event_field(e, "tag"));
    EXPECT_FALSE(event_field(e, "pull_request.number"));
    EXPECT_FALSE(event_field(e, "no_such_field"));
}

TEST(EventField, ReadsPayloadPathsWithArrayIndexes) {
    const auto e = sample();
    EXPECT_EQ(event_field(e, "payload.sender.login"), "octo");
    EXPECT_EQ(event_field(e, "payload.commits.0.id"), "abc");
    EXPECT_EQ(event_field(e, "payload.n"), "3");
    EXPECT_EQ(event_field(e, "payload.f"), "false");
    EXPECT_FALSE(event_field(e, "payload.commits.1.id"));
    EXPECT_FALSE(event_field(e, "payload.missing"));
}

TEST(EventField, KnowsWhichPathsExist) {
    EXPECT_TRUE(is_event_field("pull_request.head_sha"));
    EXPECT_TRUE(is_event_field("payload.anything.at.all"));
    EXPECT_FALSE(is_event_field("payload."));
    EXPECT_FALSE(is_event_field("brnch"));
}

TEST(JobDisplayPath, EncodesSlashesInsideSegments) {
    EXPECT_EQ(job_display_path({"acme", "app", "feature/x"}), "acme/app/feature%2Fx");
}

TEST(ZeroSha, AcceptsAnyLength) {
    EXPECT_TRUE(is_zero_sha(std::string(40, '0')));
    EXPECT_TRUE(is_zero_sha(std::string(64, '0')));
    EXPECT_FALSE(is_zero_sha(""));
    EXPECT_FALSE(is_zero_sha("0000a"));
}

TEST(RefLabel, PullRequestsByNumberBranchesAndTagsByName) {
    EXPECT_EQ(ref_label("refs/pull/7/head"), "PR #7");             // GitHub, Gitea, Forgejo
    EXPECT_EQ(ref_label("refs/pull-requests/12/from"), "PR #12");  // Bitbucket Data Center
    EXPECT_EQ(ref_label("refs/merge-requests/3/head"), "MR !3");   // GitLab
    EXPECT_EQ(ref_label("refs/heads/release/2.4"), "release/2.4");
    EXPECT_EQ(ref_label("refs/tags/v1.2"), "v1.2");
    // Anything else as it is: a pull request's merge ref, a number that is not one.
    EXPECT_EQ(ref_label("refs/pull/7/merge"), "refs/pull/7/merge");
    EXPECT_EQ(ref_label("refs/pull/x7/head"), "refs/pull/x7/head");
    EXPECT_EQ(ref_label("refs/pull//head"), "refs/pull//head");
    EXPECT_EQ(ref_label("refs/notes/commits"), "refs/notes/commits");
}

}  // namespace
}  // namespace hookrelay
