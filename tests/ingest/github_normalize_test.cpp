#include "ingest/fixture.hpp"

namespace hookrelay {
namespace {

using test::normalize_fixture;
using Files = std::vector<std::string>;

constexpr std::string_view k_zero = "0000000000000000000000000000000000000000";

void expect_hello_world(const Repository& r) {
    EXPECT_EQ(r.full_name, "Codertocat/Hello-World");
    EXPECT_EQ(r.name, "Hello-World");
    EXPECT_EQ(r.namespace_, "Codertocat");
    EXPECT_EQ(r.clone_url, "https://github.com/Codertocat/Hello-World.git");
    EXPECT_EQ(r.ssh_url, "git@github.com:Codertocat/Hello-World.git");
    EXPECT_EQ(r.web_url, "https://github.com/Codertocat/Hello-World");
    EXPECT_EQ(r.default_branch, "master");
}

TEST(GithubNormalize, PushBranchUpdate) {
    const auto e = normalize_fixture("github", "push-branch-update");
    EXPECT_EQ(e.source, "gh");
    EXPECT_EQ(e.provider, Provider::github);
    EXPECT_EQ(e.delivery_id, "42d9de75-72c0-558a-b67d-00b9a0e3ec66");
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.forge_event, "push");
    EXPECT_EQ(e.action, "");
    EXPECT_EQ(e.ref, "refs/heads/main");
    EXPECT_EQ(e.branch, "main");
    EXPECT_EQ(e.tag, "");
    EXPECT_EQ(e.before, "2f780193b136b72bfea4eeb640786a8c4450c7a2");
    EXPECT_EQ(e.after, "366701fde727cb7a9e7f21eb88264f59f6f9b89c");
    EXPECT_EQ(e.commit, "366701fde727cb7a9e7f21eb88264f59f6f9b89c");
    EXPECT_FALSE(e.created);
    EXPECT_FALSE(e.deleted);
    EXPECT_FALSE(e.forced);
    EXPECT_EQ(e.actor, "6543");
    EXPECT_EQ(e.message,
              "Fix multiline secrets replacer (#700)\n\n* Fix multiline secrets replacer\r\n\r\n* "
              "Add tests");
    EXPECT_EQ(e.changed_files, (Files{"pipeline/shared/replace_secrets.go",
                                      "pipeline/shared/replace_secrets_test.go"}));
    EXPECT_TRUE(e.changed_files_complete);
    EXPECT_FALSE(e.pull_request);
    EXPECT_EQ(e.repository.full_name, "woodpecker-ci/woodpecker");
    EXPECT_EQ(e.repository.name, "woodpecker");
    EXPECT_EQ(e.repository.namespace_, "woodpecker-ci");
    EXPECT_EQ(e.repository.clone_url, "https://github.com/woodpecker-ci/woodpecker.git");
    EXPECT_EQ(e.repository.ssh_url, "git@github.com:woodpecker-ci/woodpecker.git");
    EXPECT_EQ(e.repository.web_url, "https://github.com/woodpecker-ci/woodpecker");
    EXPECT_EQ(e.repository.default_branch, "main");
    ASSERT_TRUE(e.payload);
    EXPECT_EQ(event_field(e, "payload.pusher.email"), "noreply@6543.de");
}

TEST(GithubNormalize, PushBranchCreated) {
    const auto e = normalize_fixture("github", "push-branch-created");
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.delivery_id, "a5983af7-91a0-53c2-97b3-1f5e9970730e");
    EXPECT_EQ(e.ref, "refs/heads/master");
    EXPECT_EQ(e.branch, "master");
    EXPECT_EQ(e.before, k_zero);
    EXPECT_EQ(e.after, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    EXPECT_EQ(e.commit, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    EXPECT_TRUE(e.created);
    EXPECT_FALSE(e.deleted);
    EXPECT_EQ(e.actor, "Codertocat");
    EXPECT_EQ(e.message, "Initial commit");
    EXPECT_EQ(e.changed_files, Files{"README.md"});
    EXPECT_TRUE(e.changed_files_complete);
    expect_hello_world(e.repository);
}

TEST(GithubNormalize, FormDeliveryEqualsJsonDelivery) {
    const auto form = normalize_fixture("github", "push-branch-created-form", "form");
    const auto json = normalize_fixture("github", "push-branch-created");
    EXPECT_EQ(form.delivery_id, "dda2400b-7d71-5b49-b53f-2944c9aaf743");
    EXPECT_EQ(form.kind, EventKind::push);
    EXPECT_EQ(form.branch, "master");
    EXPECT_TRUE(form.created);
    EXPECT_EQ(form.commit, json.commit);
    EXPECT_EQ(form.message, json.message);
    EXPECT_EQ(form.changed_files, json.changed_files);
    EXPECT_EQ(form.actor, json.actor);
    EXPECT_EQ(form.repository.full_name, json.repository.full_name);
}

TEST(GithubNormalize, PushTagCreated) {
    const auto e = normalize_fixture("github", "push-tag-created");
    EXPECT_EQ(e.kind, EventKind::tag);
    EXPECT_EQ(e.ref, "refs/tags/simple-tag");
    EXPECT_EQ(e.tag, "simple-tag");
    EXPECT_EQ(e.branch, "");
    EXPECT_TRUE(e.created);
    EXPECT_FALSE(e.deleted);
    EXPECT_EQ(e.before, k_zero);
    EXPECT_EQ(e.commit, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    // commits is empty for tag pushes: the message comes from head_commit.
    EXPECT_EQ(e.message, "Adding a .gitignore file");
    EXPECT_TRUE(e.changed_files.empty());
    EXPECT_EQ(e.actor, "Codertocat");
    expect_hello_world(e.repository);
}

TEST(GithubNormalize, PushTagDeleted) {
    const auto e = normalize_fixture("github", "push-tag-deleted");
    EXPECT_EQ(e.kind, EventKind::tag);
    EXPECT_EQ(e.tag, "simple-tag");
    EXPECT_TRUE(e.deleted);
    EXPECT_FALSE(e.created);
    EXPECT_EQ(e.before, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    EXPECT_EQ(e.after, k_zero);
    EXPECT_EQ(e.commit, "");
    EXPECT_EQ(e.message, "");
    EXPECT_TRUE(e.changed_files.empty());
    EXPECT_EQ(e.actor, "Codertocat");
}

TEST(GithubNormalize, PullRequestOpened) {
    const auto e = normalize_fixture("github", "pull_request-opened");
    EXPECT_EQ(e.kind, EventKind::pull_request);
    EXPECT_EQ(e.forge_event, "pull_request");
    EXPECT_EQ(e.action, "opened");
    EXPECT_EQ(e.forge_action, "opened");
    EXPECT_EQ(e.branch, "changes");
    EXPECT_EQ(e.ref, "refs/pull/2/head");
    EXPECT_EQ(e.commit, "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    EXPECT_EQ(e.actor, "Codertocat");
    expect_hello_world(e.repository);
    ASSERT_TRUE(e.pull_request);
    const auto& pr = *e.pull_request;
    EXPECT_EQ(pr.number, 2);
    EXPECT_EQ(pr.title, "Update the README with new information.");
    EXPECT_EQ(pr.url, "https://github.com/Codertocat/Hello-World/pull/2");
    EXPECT_EQ(pr.source_branch, "changes");
    EXPECT_EQ(pr.target_branch, "master");
    EXPECT_EQ(pr.source_repository, "Codertocat/Hello-World");
    EXPECT_EQ(pr.source_clone_url, "https://github.com/Codertocat/Hello-World.git");
    EXPECT_EQ(pr.head_sha, "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    EXPECT_EQ(pr.merge_commit_sha, "");
    EXPECT_FALSE(pr.merged);
    EXPECT_FALSE(pr.draft);
    EXPECT_FALSE(pr.from_fork);
}

TEST(GithubNormalize, PullRequestReopened) {
    const auto e = normalize_fixture("github", "pull_request-reopened");
    EXPECT_EQ(e.kind, EventKind::pull_request);
    EXPECT_EQ(e.action, "reopened");
    ASSERT_TRUE(e.pull_request);
    EXPECT_EQ(e.pull_request->number, 2);
    EXPECT_EQ(e.pull_request->head_sha, "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    EXPECT_FALSE(e.pull_request->merged);
}

TEST(GithubNormalize, PullRequestSynchronize) {
    const auto e = normalize_fixture("github", "pull_request-synchronize");
    EXPECT_EQ(e.action, "synchronize");
    EXPECT_EQ(e.before, "f95f852bd8fca8fcc58a9a2d6c842781e32a215e");
    EXPECT_EQ(e.after, "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    EXPECT_EQ(e.commit, "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    ASSERT_TRUE(e.pull_request);
    EXPECT_EQ(e.pull_request->source_branch, "changes");
    EXPECT_EQ(e.pull_request->target_branch, "master");
}

TEST(GithubNormalize, PullRequestClosedUnmerged) {
    const auto e = normalize_fixture("github", "pull_request-closed-unmerged");
    EXPECT_EQ(e.action, "closed");
    ASSERT_TRUE(e.pull_request);
    EXPECT_FALSE(e.pull_request->merged);
    // GitHub fills merge_commit_sha with its test merge even when the PR was not merged.
    EXPECT_EQ(e.pull_request->merge_commit_sha, "c4295bd74fb0f4fda03689c3df3f2803b658fd85");
}

TEST(GithubNormalize, PullRequestFromForkAndDeletedFork) {
    auto payload = test::fixture_json("github", "pull_request-opened");
    auto& head_repo = payload.at("pull_request").at("head").at("repo").as_object();
    head_repo["id"] = 999;
    head_repo["full_name"] = "forker/Hello-World";
    auto e = test::normalize_json(Provider::github, "pull_request", payload);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->pull_request->from_fork);
    EXPECT_EQ(e->pull_request->source_repository, "forker/Hello-World");

    payload.at("pull_request").at("head").as_object()["repo"] = nullptr;
    e = test::normalize_json(Provider::github, "pull_request", payload);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->pull_request->from_fork);
    EXPECT_EQ(e->pull_request->source_repository, "");
    EXPECT_EQ(e->pull_request->source_clone_url, "");
    EXPECT_EQ(e->branch, "changes");
}

TEST(GithubNormalize, ReleasePublished) {
    const auto e = normalize_fixture("github", "release-published");
    EXPECT_EQ(e.kind, EventKind::release);
    EXPECT_EQ(e.action, "published");
    EXPECT_EQ(e.forge_action, "published");
    EXPECT_EQ(e.tag, "0.0.1");
    EXPECT_EQ(e.message, "");  // release.name is null
    EXPECT_EQ(e.commit, "");   // target_commitish is the branch "master", not a sha
    EXPECT_EQ(e.actor, "Codertocat");
    expect_hello_world(e.repository);
}

TEST(GithubNormalize, ReleaseCreated) {
    const auto e = normalize_fixture("github", "release-created");
    EXPECT_EQ(e.kind, EventKind::release);
    EXPECT_EQ(e.action, "created");
    EXPECT_EQ(e.tag, "0.0.1");
    EXPECT_EQ(e.commit, "");
}

TEST(GithubNormalize, ReleaseTargetShaBecomesCommit) {
    auto payload = test::fixture_json("github", "release-published");
    payload.at("release").as_object()["target_commitish"] =
        "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
    payload.at("release").as_object()["name"] = "First release";
    const auto e = test::normalize_json(Provider::github, "release", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->commit, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    EXPECT_EQ(e->message, "First release");
}

TEST(GithubNormalize, Ping) {
    const auto e = normalize_fixture("github", "ping-repo-hook");
    EXPECT_EQ(e.kind, EventKind::ping);
    EXPECT_EQ(e.forge_event, "ping");
    EXPECT_EQ(e.actor, "Codertocat");
    EXPECT_EQ(e.repository.full_name, "Octocoders/Hello-World");
    EXPECT_EQ(e.repository.namespace_, "Octocoders");
    EXPECT_EQ(e.commit, "");
}

TEST(GithubNormalize, CreateTagIsOther) {
    const auto e = normalize_fixture("github", "create-tag");
    EXPECT_EQ(e.kind, EventKind::other);
    EXPECT_EQ(e.forge_event, "create");
    EXPECT_EQ(e.actor, "Codertocat");
    expect_hello_world(e.repository);
    // Bookkeeping only: the matching push carries the ref.
    EXPECT_EQ(e.tag, "");
    EXPECT_EQ(e.ref, "");
}

TEST(GithubNormalize, DeleteTagIsOther) {
    const auto e = normalize_fixture("github", "delete-tag");
    EXPECT_EQ(e.kind, EventKind::other);
    EXPECT_EQ(e.forge_event, "delete");
    EXPECT_EQ(e.actor, "Codertocat");
    expect_hello_world(e.repository);
}

TEST(GithubNormalize, PushToARefOutsideBranchesAndTagsIsOther) {
    // GitHub's one `push` event covers every ref, so a ref that is neither a branch nor a tag is
    // a push of something else, not a malformed delivery: kind other, never a push or tag event
    // with an empty branch or tag name.
    auto payload = test::fixture_json("github", "push-branch-update");
    for (const auto* ref : {"refs/notes/commits", "refs/heads/", "refs/tags/", "main"}) {
        payload.as_object()["ref"] = ref;
        const auto e = test::normalize_json(Provider::github, "push", payload);
        ASSERT_TRUE(e) << ref;
        EXPECT_EQ(e->kind, EventKind::other) << ref;
        EXPECT_EQ(e->ref, ref);
        EXPECT_EQ(e->branch, "") << ref;
        EXPECT_EQ(e->tag, "") << ref;
    }
}

TEST(GithubNormalize, WorkflowRunIsOther) {
    const auto e = normalize_fixture("github", "workflow_run-completed");
    EXPECT_EQ(e.kind, EventKind::other);
    EXPECT_EQ(e.forge_event, "workflow_run");
    EXPECT_EQ(e.forge_action, "completed");
    EXPECT_EQ(e.actor, "Codertocat");
    EXPECT_EQ(e.repository.full_name, "Codertocat/Hello-World");
    EXPECT_EQ(e.repository.default_branch, "main");
    EXPECT_EQ(e.commit, "");
}

TEST(GithubNormalize, ChangedFilesAreDeduplicatedInFirstSeenOrder) {
    auto payload = test::fixture_json("github", "push-branch-update");
    auto& commits = payload.at("commits").as_array();
    boost::json::object older = commits[0].as_object();
    older["id"] = "1111111111111111111111111111111111111111";
    older["message"] = "older";
    older["added"] = boost::json::array{"docs/new.md"};
    older["modified"] = boost::json::array{"pipeline/shared/replace_secrets.go"};
    older["removed"] = boost::json::array{"old.txt"};
    commits.insert(commits.begin(), older);  // oldest first
    const auto e = test::normalize_json(Provider::github, "push", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->changed_files, (Files{"docs/new.md", "pipeline/shared/replace_secrets.go",
                                       "old.txt", "pipeline/shared/replace_secrets_test.go"}));
    // The head is found by id, not by position.
    EXPECT_EQ(e->message.substr(0, 37), "Fix multiline secrets replacer (#700)");
}

TEST(GithubNormalize, CommitListAtGithubCapIsIncomplete) {
    auto payload = test::fixture_json("github", "push-branch-update");
    auto& commits = payload.at("commits").as_array();
    const auto head = commits[0];
    commits.clear();
    for (int i = 0; i < 2048; ++i) commits.push_back(head);
    auto e = test::normalize_json(Provider::github, "push", payload);
    ASSERT_TRUE(e);
    EXPECT_FALSE(e->changed_files_complete);
    EXPECT_EQ(e->changed_files.size(), 2u);

    commits.pop_back();
    e = test::normalize_json(Provider::github, "push", payload);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->changed_files_complete);
}

// A forced push, and a rewind (`git push -f origin <older>:main`: no commit listed): the lists do
// not say what changed since `before`, so they are incomplete and `paths` rules build.
TEST(GithubNormalize, AForcedPushAndARewindListIncompleteChanges) {
    auto payload = test::fixture_json("github", "push-branch-update");
    payload.as_object()["forced"] = true;
    auto e = test::normalize_json(Provider::github, "push", payload);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->forced);
    EXPECT_FALSE(e->changed_files.empty());
    EXPECT_FALSE(e->changed_files_complete);

    payload.as_object()["commits"] = boost::json::array{};
    e = test::normalize_json(Provider::github, "push", payload);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->changed_files.empty());
    EXPECT_FALSE(e->changed_files_complete);
    payload.as_object()["forced"] = false;  // as a forge that does not say
    e = test::normalize_json(Provider::github, "push", payload);
    ASSERT_TRUE(e);
    EXPECT_FALSE(e->changed_files_complete);
}

TEST(GithubNormalize, PushOfMoreThanTenThousandFilesKeepsTheFirstAndIsIncomplete) {
    auto payload = test::fixture_json("github", "push-branch-update");
    auto& head = payload.at("commits").at(0).as_object();
    boost::json::array added;
    for (int i = 0; i < 10'001; ++i) added.emplace_back("src/f" + std::to_string(i));
    head["added"] = std::move(added);
    auto e = test::normalize_json(Provider::github, "push", payload);
    ASSERT_TRUE(e);
    EXPECT_FALSE(e->changed_files_complete);
    ASSERT_EQ(e->changed_files.size(), 10'000u);
    EXPECT_EQ(e->changed_files.front(), "src/f0");
    EXPECT_EQ(e->changed_files.back(), "src/f9999");

    head["added"].as_array().resize(9'000);
    e = test::normalize_json(Provider::github, "push", payload);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->changed_files_complete);
}

TEST(GithubNormalize, ForcedPushAndActorFallback) {
    auto payload = test::fixture_json("github", "push-branch-update");
    payload.as_object()["forced"] = true;
    payload.as_object().erase("sender");
    const auto e = test::normalize_json(Provider::github, "push", payload);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->forced);
    EXPECT_EQ(e->actor, "6543");  // pusher.name
}

TEST(GithubNormalize, BranchDeleteHasNoCommit) {
    auto payload = test::fixture_json("github", "push-tag-deleted");
    payload.as_object()["ref"] = "refs/heads/feature/x";
    const auto e = test::normalize_json(Provider::github, "push", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, EventKind::push);
    EXPECT_EQ(e->branch, "feature/x");
    EXPECT_TRUE(e->deleted);
    EXPECT_EQ(e->commit, "");
}

TEST(GithubDeliveryId, ReadsDeliveryHeader) {
    const auto d = test::load_delivery("github", "ping-repo-hook");
    EXPECT_EQ(ingest::delivery_id(test::source_for(Provider::github), d.headers),
              "43d6f236-ca3b-5fa7-bc3f-618e0d4544b8");
    EXPECT_EQ(ingest::delivery_id(test::source_for(Provider::github), HeaderMap{}), "");
}

}  // namespace
}  // namespace hookrelay
