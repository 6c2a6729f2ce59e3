#include "ingest/fixture.hpp"

namespace hookrelay {
namespace {

using test::normalize_fixture;
using Files = std::vector<std::string>;

constexpr std::string_view k_zero = "0000000000000000000000000000000000000000";

TEST(GitlabNormalize, PushBranchUpdate) {
    const auto e = normalize_fixture("gitlab", "push-branch-update");
    EXPECT_EQ(e.source, "gl");
    EXPECT_EQ(e.provider, Provider::gitlab);
    EXPECT_EQ(e.delivery_id, "b9762c47-5b20-5639-8e1a-5d09a804eaf6");
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.forge_event, "Push Hook");
    EXPECT_EQ(e.action, "");
    EXPECT_EQ(e.ref, "refs/heads/main");
    EXPECT_EQ(e.branch, "main");
    EXPECT_EQ(e.before, "ffe8eb4f91d1fe6bc49f1e610e50e4b5767f0104");
    EXPECT_EQ(e.after, "16862e368d8ab812e48833b741dad720d6e2cb7f");
    EXPECT_EQ(e.commit, "16862e368d8ab812e48833b741dad720d6e2cb7f");
    EXPECT_FALSE(e.created);
    EXPECT_FALSE(e.deleted);
    EXPECT_FALSE(e.forced);
    EXPECT_EQ(e.actor, "test");
    EXPECT_EQ(e.message, "Update main.go");
    EXPECT_EQ(e.changed_files, Files{"cmd/cli/main.go"});
    EXPECT_TRUE(e.changed_files_complete);
    // Repository identity comes from the path, not the display names ("Woodpecker", "the test").
    EXPECT_EQ(e.repository.full_name, "test/woodpecker");
    EXPECT_EQ(e.repository.name, "woodpecker");
    EXPECT_EQ(e.repository.namespace_, "test");
    EXPECT_EQ(e.repository.clone_url, "http://10.40.8.5:3200/test/woodpecker.git");
    EXPECT_EQ(e.repository.ssh_url, "git@10.40.8.5:test/woodpecker.git");
    EXPECT_EQ(e.repository.web_url, "http://10.40.8.5:3200/test/woodpecker");
    EXPECT_EQ(e.repository.default_branch, "develop");
}

TEST(GitlabNormalize, PushDocsWithTruncatedCommitList) {
    const auto e = normalize_fixture("gitlab", "push-docs");
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.branch, "master");
    EXPECT_EQ(e.before, "95790bf891e76fee5e1747ab589903a6a1f80f22");
    EXPECT_EQ(e.commit, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
    EXPECT_EQ(e.actor, "jsmith");
    // The head is the commit whose id is checkout_sha (the newest, listed last).
    EXPECT_EQ(e.message, "fixed readme\n");
    EXPECT_EQ(e.changed_files, (Files{"CHANGELOG", "app/controller/application.rb"}));
    // total_commits_count is 4 but only 2 commits are listed.
    EXPECT_FALSE(e.changed_files_complete);
    EXPECT_EQ(e.repository.full_name, "mike/diaspora");
    EXPECT_EQ(e.repository.name, "diaspora");
    EXPECT_EQ(e.repository.namespace_, "mike");
}

// GitLab says nothing of forcing: a rewind of the branch (`git push -f origin <older>:main`)
// comes with no commit and total_commits_count 0, which does not say what changed.
TEST(GitlabNormalize, ARewindWithNoCommitListsIncompleteChanges) {
    auto payload = test::fixture_json("gitlab", "push-branch-update");
    payload.as_object()["commits"] = boost::json::array{};
    payload.as_object()["total_commits_count"] = 0;
    const auto e = test::normalize_json(Provider::gitlab, "Push Hook", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, EventKind::push);
    EXPECT_FALSE(e->created);
    EXPECT_TRUE(e->changed_files.empty());
    EXPECT_FALSE(e->changed_files_complete);
}

TEST(GitlabNormalize, PushBranchDeleted) {
    const auto e = normalize_fixture("gitlab", "push-branch-deleted");
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.branch, "feature");
    EXPECT_TRUE(e.deleted);
    EXPECT_FALSE(e.created);
    EXPECT_EQ(e.before, "c4c79227ed610f1151f05bbc5be33b4f340d39c8");
    EXPECT_EQ(e.after, k_zero);
    EXPECT_EQ(e.commit, "");
    EXPECT_EQ(e.message, "");
    EXPECT_TRUE(e.changed_files.empty());
    EXPECT_TRUE(e.changed_files_complete);
    EXPECT_EQ(e.actor, "sytses");
    EXPECT_EQ(e.repository.full_name, "gitlab-org/hello-world");
}

TEST(GitlabNormalize, AnnotatedTagBuildsCheckoutSha) {
    const auto e = normalize_fixture("gitlab", "tag_push-annotated");
    EXPECT_EQ(e.kind, EventKind::tag);
    EXPECT_EQ(e.forge_event, "Tag Push Hook");
    EXPECT_EQ(e.ref, "refs/tags/v22");
    EXPECT_EQ(e.tag, "v22");
    EXPECT_EQ(e.branch, "");
    EXPECT_TRUE(e.created);
    EXPECT_EQ(e.after, "fabed3d94cd03e6c2b7958afa9569c18a24d301f");   // the tag object
    EXPECT_EQ(e.commit, "16862e368d8ab812e48833b741dad720d6e2cb7f");  // the commit it points at
    EXPECT_EQ(e.message, "Update main.go");
    EXPECT_EQ(e.actor, "test");
}

TEST(GitlabNormalize, TagPushDocs) {
    const auto e = normalize_fixture("gitlab", "tag_push-docs");
    EXPECT_EQ(e.kind, EventKind::tag);
    EXPECT_EQ(e.tag, "v1.0.0");
    EXPECT_TRUE(e.created);
    EXPECT_FALSE(e.deleted);
    EXPECT_EQ(e.commit, "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7");
    EXPECT_EQ(e.message,
              "Merge branch 'some-feature' into 'master'\n\nRelease v1.0.0\n\nSee merge request "
              "jsmith/example!1");
    EXPECT_EQ(e.changed_files, (Files{"CHANGELOG", "UPGRADE.md"}));
    EXPECT_TRUE(e.changed_files_complete);
    EXPECT_EQ(e.actor, "jsmith");
    EXPECT_EQ(e.repository.full_name, "jsmith/example");
}

TEST(GitlabNormalize, TagPushOutsideRefsTagsIsRefused) {
    // It used to become a tag event with an empty tag, which a `tag: "*"` rule cannot see and a
    // job path built from {{ tag }} cannot render.
    auto payload = test::fixture_json("gitlab", "tag_push-docs");
    for (const auto* ref : {"refs/heads/main", "refs/tags/", "v1.0.0", "refs/notes/commits"}) {
        payload.as_object()["ref"] = ref;
        for (const auto* hook : {"Tag Push Hook", "System Hook"}) {
            const auto e = test::normalize_json(Provider::gitlab, hook, payload);
            ASSERT_FALSE(e) << hook << " " << ref << " became a " << to_string(e->kind)
                            << " event with tag '" << e->tag << "'";
            EXPECT_EQ(e.error(), errc::ref_mismatch) << ref;
            EXPECT_NE(e.error().message().find("refs/tags/<name>"), std::string::npos);
        }
    }
}

TEST(GitlabNormalize, PushOutsideRefsHeadsIsRefused) {
    auto payload = test::fixture_json("gitlab", "push-docs");
    for (const auto* ref : {"refs/tags/v1", "refs/heads/", "refs/merge-requests/1/head", "main"}) {
        payload.as_object()["ref"] = ref;
        for (const auto* hook : {"Push Hook", "System Hook"}) {
            const auto e = test::normalize_json(Provider::gitlab, hook, payload);
            ASSERT_FALSE(e) << hook << " " << ref << " became a " << to_string(e->kind)
                            << " event with branch '" << e->branch << "'";
            EXPECT_EQ(e.error(), errc::ref_mismatch) << ref;
        }
    }
}

TEST(GitlabNormalize, NestedGroupNamespace) {
    auto payload = test::fixture_json("gitlab", "push-docs");
    payload.at("project").as_object()["path_with_namespace"] = "group/sub/team/app";
    const auto e = test::normalize_json(Provider::gitlab, "Push Hook", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->repository.full_name, "group/sub/team/app");
    EXPECT_EQ(e->repository.name, "app");
    EXPECT_EQ(e->repository.namespace_, "group/sub/team");
}

TEST(GitlabNormalize, MergeRequestOpened) {
    const auto e = normalize_fixture("gitlab", "merge_request-open-docs");
    EXPECT_EQ(e.kind, EventKind::pull_request);
    EXPECT_EQ(e.forge_event, "Merge Request Hook");
    EXPECT_EQ(e.action, "opened");
    EXPECT_EQ(e.forge_action, "open");
    EXPECT_EQ(e.actor, "user1");
    EXPECT_EQ(e.branch, "ms-viewport");
    EXPECT_EQ(e.ref, "refs/merge-requests/1/head");
    EXPECT_EQ(e.commit, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
    // The target repository is the top-level project.
    EXPECT_EQ(e.repository.full_name, "gitlabhq/gitlab-test");
    EXPECT_EQ(e.repository.name, "gitlab-test");
    EXPECT_EQ(e.repository.namespace_, "gitlabhq");
    ASSERT_TRUE(e.pull_request);
    const auto& mr = *e.pull_request;
    EXPECT_EQ(mr.number, 1);  // iid, not the global id
    EXPECT_EQ(mr.title, "MS-Viewport");
    EXPECT_EQ(mr.url, "http://example.com/diaspora/merge_requests/1");
    EXPECT_EQ(mr.source_branch, "ms-viewport");
    EXPECT_EQ(mr.target_branch, "master");
    EXPECT_EQ(mr.source_repository, "awesome_space/awesome_project");
    EXPECT_EQ(mr.source_clone_url, "http://example.com/awesome_space/awesome_project.git");
    EXPECT_EQ(mr.head_sha, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
    EXPECT_EQ(mr.merge_commit_sha, "");
    EXPECT_FALSE(mr.merged);
    EXPECT_FALSE(mr.draft);      // draft is null; work_in_progress is false
    EXPECT_FALSE(mr.from_fork);  // source_project_id == target_project_id
}

TEST(GitlabNormalize, MergeRequestUpdateWithNewCommitsIsSynchronize) {
    const auto e = normalize_fixture("gitlab", "merge_request-update-push");
    EXPECT_EQ(e.action, "synchronize");
    EXPECT_EQ(e.forge_action, "update");
    EXPECT_EQ(e.actor, "anbraten");
    EXPECT_EQ(e.branch, "anbraten-main-patch-05373");
    EXPECT_EQ(e.before, "8b641937b7340066d882b9d8a8cc5b0573a207de");
    EXPECT_EQ(e.after, "c136499ec574e1034b24c5d306de9acda3005367");
    EXPECT_EQ(e.commit, "c136499ec574e1034b24c5d306de9acda3005367");
    EXPECT_EQ(e.repository.full_name, "anbraten/woodpecker");
    ASSERT_TRUE(e.pull_request);
    EXPECT_EQ(e.pull_request->number, 3);
    EXPECT_EQ(e.pull_request->title, "Update client.go 🎉");
    EXPECT_EQ(e.pull_request->target_branch, "main");
    EXPECT_EQ(e.pull_request->source_repository, "anbraten/woodpecker");
    EXPECT_FALSE(e.pull_request->merged);
}

TEST(GitlabNormalize, MergeRequestUpdateWithoutOldrevIsEdited) {
    auto payload = test::fixture_json("gitlab", "merge_request-update-push");
    payload.at("object_attributes").as_object().erase("oldrev");
    const auto e = test::normalize_json(Provider::gitlab, "Merge Request Hook", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->action, "edited");
    EXPECT_EQ(e->before, "");
}

TEST(GitlabNormalize, MergeRequestMerged) {
    const auto e = normalize_fixture("gitlab", "merge_request-merged");
    EXPECT_EQ(e.action, "closed");
    EXPECT_EQ(e.forge_action, "merge");
    EXPECT_EQ(e.actor, "anbraten");
    EXPECT_EQ(e.commit, "3e4db3586b65dd401de8c77b3ac343fd24cbf89b");
    EXPECT_EQ(e.repository.full_name, "anbraten/woodpecker-test");
    ASSERT_TRUE(e.pull_request);
    const auto& mr = *e.pull_request;
    EXPECT_EQ(mr.number, 4);
    EXPECT_TRUE(mr.merged);
    EXPECT_FALSE(mr.draft);
    EXPECT_FALSE(mr.from_fork);
    EXPECT_EQ(mr.source_branch, "patch-1");
    EXPECT_EQ(mr.target_branch, "main");
    EXPECT_EQ(mr.merge_commit_sha, "43411b53d670203e887c4985c4e58e8e6b7c109e");
    EXPECT_EQ(mr.head_sha, "3e4db3586b65dd401de8c77b3ac343fd24cbf89b");
}

TEST(GitlabNormalize, MergeRequestActionsMapToGithubWords) {
    auto payload = test::fixture_json("gitlab", "merge_request-open-docs");
    auto& attrs = payload.at("object_attributes").as_object();
    const std::pair<const char*, const char*> cases[] = {
        {"reopen", "reopened"},       {"close", "closed"},      {"approved", "approved"},
        {"unapproved", "unapproved"}, {"approval", "approval"}, {"unapproval", "unapproval"}};
    for (const auto& [sent, expected] : cases) {
        attrs["action"] = sent;
        const auto e = test::normalize_json(Provider::gitlab, "Merge Request Hook", payload);
        ASSERT_TRUE(e);
        EXPECT_EQ(e->action, expected) << sent;
        EXPECT_EQ(e->forge_action, sent);
        EXPECT_FALSE(e->pull_request->merged) << sent;
    }
}

TEST(GitlabNormalize, MergeRequestFromForkAndDraft) {
    auto payload = test::fixture_json("gitlab", "merge_request-merged");
    auto& attrs = payload.at("object_attributes").as_object();
    attrs["source_project_id"] = 777;
    attrs["draft"] = true;
    const auto e = test::normalize_json(Provider::gitlab, "Merge Request Hook", payload);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->pull_request->from_fork);
    EXPECT_TRUE(e->pull_request->draft);
}

TEST(GitlabNormalize, ReleaseCreate) {
    const auto e = normalize_fixture("gitlab", "release-create");
    EXPECT_EQ(e.kind, EventKind::release);
    EXPECT_EQ(e.forge_event, "Release Hook");
    EXPECT_EQ(e.action, "created");
    EXPECT_EQ(e.forge_action, "create");
    EXPECT_EQ(e.tag, "0.0.2");
    EXPECT_EQ(e.message, "Awesome version 0.0.2");
    EXPECT_EQ(e.commit, "0b8c02955ba445ea70d22824d9589678852e2b93");
    EXPECT_EQ(e.repository.full_name, "anbratens-test/ci");
    EXPECT_EQ(e.repository.default_branch, "main");
}

TEST(GitlabNormalize, ReleaseCreateDocs) {
    const auto e = normalize_fixture("gitlab", "release-create-docs");
    EXPECT_EQ(e.kind, EventKind::release);
    EXPECT_EQ(e.action, "created");
    EXPECT_EQ(e.tag, "1.0.0");
    EXPECT_EQ(e.message, "1.0.0");
    EXPECT_EQ(e.commit, "2626dbdb936782b5c54816b1c6d45b1279303c6d");
    EXPECT_EQ(e.repository.full_name, "exm-namespace/example-project");
    EXPECT_EQ(e.repository.name, "example-project");
    EXPECT_EQ(e.repository.namespace_, "exm-namespace");
}

TEST(GitlabNormalize, ReleaseActionsMapped) {
    auto payload = test::fixture_json("gitlab", "release-create");
    for (const auto& [sent, expected] :
         {std::pair{"update", "updated"}, std::pair{"delete", "deleted"}}) {
        payload.as_object()["action"] = sent;
        const auto e = test::normalize_json(Provider::gitlab, "Release Hook", payload);
        ASSERT_TRUE(e);
        EXPECT_EQ(e->action, expected);
    }
}

TEST(GitlabNormalize, SystemHookUsesObjectKind) {
    const auto push = test::normalize_json(Provider::gitlab, "System Hook",
                                           test::fixture_json("gitlab", "push-docs"));
    ASSERT_TRUE(push);
    EXPECT_EQ(push->kind, EventKind::push);
    EXPECT_EQ(push->forge_event, "System Hook");
    EXPECT_EQ(push->commit, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");

    const auto tag = test::normalize_json(Provider::gitlab, "System Hook",
                                          test::fixture_json("gitlab", "tag_push-docs"));
    ASSERT_TRUE(tag);
    EXPECT_EQ(tag->kind, EventKind::tag);

    const auto mr = test::normalize_json(Provider::gitlab, "System Hook",
                                         test::fixture_json("gitlab", "merge_request-merged"));
    ASSERT_TRUE(mr);
    EXPECT_EQ(mr->kind, EventKind::pull_request);

    const auto other = test::normalize_json(Provider::gitlab, "System Hook",
                                            boost::json::parse(R"({"event_name":"user_create"})"));
    ASSERT_TRUE(other);
    EXPECT_EQ(other->kind, EventKind::other);
}

TEST(GitlabNormalize, OtherHooksKeepRepositoryAndActor) {
    const auto payload = boost::json::parse(R"({
        "object_kind": "note", "user": {"username": "alice", "name": "Alice"},
        "project": {"path_with_namespace": "g/s/p", "web_url": "https://gl/g/s/p"},
        "object_attributes": {"action": "create"}})");
    const auto e = test::normalize_json(Provider::gitlab, "Note Hook", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, EventKind::other);
    EXPECT_EQ(e->forge_event, "Note Hook");
    EXPECT_EQ(e->actor, "alice");
    EXPECT_EQ(e->forge_action, "create");
    EXPECT_EQ(e->repository.namespace_, "g/s");
    EXPECT_EQ(e->repository.web_url, "https://gl/g/s/p");
}

TEST(GitlabDeliveryId, PrefersIdempotencyKey) {
    const auto d = test::load_delivery("gitlab", "push-docs");
    EXPECT_EQ(ingest::delivery_id(test::source_for(Provider::gitlab), d.headers),
              "35fbfce3-af8a-5371-bdab-49811c54a9a9");
}

TEST(GitlabDeliveryId, FallsBackToEventUuid) {
    const HeaderMap headers{{"X-Gitlab-Event-UUID", "a3e6eff1-2947-599b-80c0-8ffda0496d03"}};
    EXPECT_EQ(ingest::delivery_id(test::source_for(Provider::gitlab), headers),
              "a3e6eff1-2947-599b-80c0-8ffda0496d03");
    EXPECT_EQ(ingest::delivery_id(test::source_for(Provider::gitlab), HeaderMap{}), "");
}

}  // namespace
}  // namespace hookrelay
