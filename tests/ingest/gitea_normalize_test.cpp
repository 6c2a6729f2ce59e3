// Gitea and Forgejo deliveries (tests/data/gitea/, tests/data/forgejo/) normalized into the model.
#include "ingest/fixture.hpp"

namespace hookrelay {
namespace {

using test::normalize_fixture;
using Files = std::vector<std::string>;

TEST(GiteaNormalize, PushBranchUpdate) {
    const auto e = normalize_fixture("gitea", "push-branch-update");
    EXPECT_EQ(e.source, "gitea");
    EXPECT_EQ(e.provider, Provider::gitea);
    EXPECT_EQ(e.delivery_id, "d5329d53-9582-5261-844c-3d885689de47");
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.forge_event, "push");
    EXPECT_EQ(e.action, "");
    EXPECT_EQ(e.ref, "refs/heads/main");
    EXPECT_EQ(e.branch, "main");
    EXPECT_EQ(e.tag, "");
    EXPECT_EQ(e.before, "4b2626259b5a97b6b4eab5e6cca66adb986b672b");
    EXPECT_EQ(e.after, "ef98532add3b2feb7a137426bba1248724367df5");
    EXPECT_EQ(e.commit, "ef98532add3b2feb7a137426bba1248724367df5");
    EXPECT_FALSE(e.created);
    EXPECT_FALSE(e.deleted);
    EXPECT_FALSE(e.forced);
    EXPECT_EQ(e.actor, "gordon");
    EXPECT_EQ(e.message, "bump\n");
    EXPECT_EQ(e.changed_files, (Files{"CHANGELOG.md", "app/controller/application.rb"}));
    EXPECT_TRUE(e.changed_files_complete);
    EXPECT_EQ(e.repository.full_name, "gordon/hello-world");
    EXPECT_EQ(e.repository.namespace_, "gordon");
    EXPECT_EQ(e.repository.name, "hello-world");
    EXPECT_EQ(e.repository.clone_url, "http://gitea.golang.org/gordon/hello-world.git");
    EXPECT_EQ(e.repository.ssh_url, "git@gitea.golang.org:gordon/hello-world.git");
    EXPECT_EQ(e.repository.web_url, "http://gitea.golang.org/gordon/hello-world");
    EXPECT_FALSE(e.pull_request);
}

TEST(GiteaNormalize, PullRequestSynchronizedIsSynchronize) {
    const auto e = normalize_fixture("gitea", "pull_request-synchronized");
    EXPECT_EQ(e.kind, EventKind::pull_request);
    EXPECT_EQ(e.forge_event, "pull_request");
    EXPECT_EQ(e.forge_action, "synchronized");
    EXPECT_EQ(e.action, "synchronize");
    EXPECT_EQ(e.ref, "refs/pull/2/head");
    EXPECT_EQ(e.branch, "test-patch-1");
    EXPECT_EQ(e.commit, "788ed8d02d3b7fcfcf6386dbcbca696aa1d4dc25");
    EXPECT_EQ(e.actor, "test");
    EXPECT_EQ(e.repository.full_name, "Test-CI/multi-line-secrets");
    ASSERT_TRUE(e.pull_request);
    const auto& pr = *e.pull_request;
    EXPECT_EQ(pr.number, 2);
    EXPECT_EQ(pr.title, "New Pull");
    EXPECT_EQ(pr.url, "http://127.0.0.1:3000/Test-CI/multi-line-secrets/pulls/2");
    EXPECT_EQ(pr.source_branch, "test-patch-1");
    EXPECT_EQ(pr.target_branch, "main");
    EXPECT_EQ(pr.head_sha, "788ed8d02d3b7fcfcf6386dbcbca696aa1d4dc25");
    EXPECT_EQ(pr.merge_commit_sha, "");
    EXPECT_FALSE(pr.merged);
    // head.repo_id equals base.repo_id: the head lives in this repository.
    EXPECT_FALSE(pr.from_fork);
    EXPECT_EQ(pr.source_repository, "Test-CI/multi-line-secrets");
    EXPECT_EQ(pr.source_clone_url, "http://127.0.0.1:3000/Test-CI/multi-line-secrets.git");
}

TEST(GiteaNormalize, MergedPullRequestIsClosedAndMerged) {
    auto payload = test::fixture_json("gitea", "pull_request-synchronized");
    payload.at("pull_request").as_object()["merged"] = true;
    payload.at("pull_request").as_object()["merge_commit_sha"] =
        "0123456789abcdef0123456789abcdef01234567";
    payload.as_object()["action"] = "closed";
    const auto e = test::normalize_json(Provider::gitea, "pull_request", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->action, "closed");
    EXPECT_TRUE(e->pull_request->merged);
    EXPECT_EQ(e->pull_request->merge_commit_sha, "0123456789abcdef0123456789abcdef01234567");
}

TEST(GiteaNormalize, PullRequestFromAnotherRepositoryIsFromAFork) {
    auto payload = test::fixture_json("gitea", "pull_request-synchronized");
    auto& head = payload.at("pull_request").at("head").as_object();
    head["repo_id"] = 7;
    head["repo"] = boost::json::object{{"full_name", "fork/multi-line-secrets"},
                                       {"clone_url", "http://127.0.0.1:3000/fork/m.git"}};
    const auto e = test::normalize_json(Provider::gitea, "pull_request", payload);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->pull_request->from_fork);
    EXPECT_EQ(e->pull_request->source_repository, "fork/multi-line-secrets");
    EXPECT_EQ(e->pull_request->source_clone_url, "http://127.0.0.1:3000/fork/m.git");
}

TEST(GiteaNormalize, ReleasePublished) {
    const auto e = normalize_fixture("gitea", "release-published");
    EXPECT_EQ(e.kind, EventKind::release);
    EXPECT_EQ(e.action, "published");
    EXPECT_EQ(e.forge_action, "published");
    EXPECT_EQ(e.tag, "0.0.5");
    EXPECT_EQ(e.message, "Version 0.0.5");
    // target_commitish is the branch "main", not a commit.
    EXPECT_EQ(e.commit, "");
    EXPECT_EQ(e.actor, "anbraten");
    EXPECT_EQ(e.repository.full_name, "anbraten/demo");
}

TEST(GiteaNormalize, CreateTagIsBookkeepingOnly) {
    // The push to refs/tags/v1.0.0 that comes with it carries the build.
    const auto e = normalize_fixture("gitea", "create-tag");
    EXPECT_EQ(e.kind, EventKind::other);
    EXPECT_EQ(e.forge_event, "create");
    EXPECT_EQ(e.ref, "");
    EXPECT_EQ(e.tag, "");
    EXPECT_EQ(e.actor, "gordon");
    EXPECT_EQ(e.repository.full_name, "gordon/hello-world");
}

TEST(GiteaNormalize, DeletedBranchIsADeletingPush) {
    // Gitea sends no push for a deleted branch: the delete event is the deletion.
    const auto e = normalize_fixture("gitea", "delete-branch");
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.forge_event, "delete");
    EXPECT_TRUE(e.deleted);
    EXPECT_FALSE(e.created);
    EXPECT_EQ(e.ref, "refs/heads/feature");
    EXPECT_EQ(e.branch, "feature");
    EXPECT_EQ(e.commit, "");
    EXPECT_EQ(e.actor, "unknwon");
    EXPECT_EQ(e.repository.full_name, "gogits/hello-world");
}

TEST(GiteaNormalize, DeletedBranchWithAFullRefName) {
    auto payload = test::fixture_json("gitea", "delete-branch");
    payload.as_object()["ref"] = "refs/heads/feature/x";
    const auto e = test::normalize_json(Provider::gitea, "delete", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->ref, "refs/heads/feature/x");
    EXPECT_EQ(e->branch, "feature/x");
}

TEST(GiteaNormalize, DeletedTagIsBookkeepingOnly) {
    // Gitea also sends a push with a zero `after` for it, which is the tag event.
    const auto e = normalize_fixture("gitea", "delete-tag");
    EXPECT_EQ(e.kind, EventKind::other);
    EXPECT_FALSE(e.deleted);
    EXPECT_EQ(e.tag, "");
}

TEST(GiteaNormalize, TagPushAndTagDeletion) {
    auto payload = test::fixture_json("gitea", "push-branch-update");
    auto& root = payload.as_object();
    root["ref"] = "refs/tags/v1.0.0";
    root["before"] = "0000000000000000000000000000000000000000";
    root["commits"] = boost::json::array{};
    auto created = test::normalize_json(Provider::gitea, "push", payload);
    ASSERT_TRUE(created);
    EXPECT_EQ(created->kind, EventKind::tag);
    EXPECT_EQ(created->tag, "v1.0.0");
    EXPECT_TRUE(created->created);
    // head_commit names the commit, also for an annotated tag.
    EXPECT_EQ(created->commit, "ef98532add3b2feb7a137426bba1248724367df5");

    root["before"] = "ef98532add3b2feb7a137426bba1248724367df5";
    root["after"] = "0000000000000000000000000000000000000000";
    root["head_commit"] = nullptr;
    auto deleted = test::normalize_json(Provider::gitea, "push", payload);
    ASSERT_TRUE(deleted);
    EXPECT_EQ(deleted->kind, EventKind::tag);
    EXPECT_TRUE(deleted->deleted);
    EXPECT_EQ(deleted->commit, "");
}

TEST(GiteaNormalize, CappedCommitListWithoutTotalIsIncomplete) {
    // Older Gitea sends at most FEED_MAX_COMMIT_NUM (5) commits and no total.
    auto payload = test::fixture_json("gitea", "push-branch-update");
    auto& commits = payload.at("commits").as_array();
    const auto one = commits.front();
    while (commits.size() < 5) commits.push_back(one);
    const auto e = test::normalize_json(Provider::gitea, "push", payload);
    ASSERT_TRUE(e);
    EXPECT_FALSE(e->changed_files_complete);
}

TEST(GiteaNormalize, OtherEventsKeepRepositoryAndActor) {
    auto payload = test::fixture_json("gitea", "release-published");
    payload.as_object()["action"] = "opened";
    const auto e = test::normalize_json(Provider::gitea, "issues", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, EventKind::other);
    EXPECT_EQ(e->action, "opened");
    EXPECT_EQ(e->repository.full_name, "anbraten/demo");
    EXPECT_EQ(e->actor, "anbraten");
}

TEST(ForgejoNormalize, PushMultiCommitFindsTheHeadById) {
    const auto e = normalize_fixture("forgejo", "push-multi-commit");
    EXPECT_EQ(e.provider, Provider::forgejo);
    EXPECT_EQ(e.delivery_id, "ff8f5ee6-1e91-5109-99cb-fa870bec45a4");
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.forge_event, "push");
    EXPECT_EQ(e.ref, "refs/heads/main");
    EXPECT_EQ(e.branch, "main");
    EXPECT_EQ(e.before, "6efcf5b7c98f3e7a491675164b7a2e7acac27941");
    EXPECT_EQ(e.after, "29be01c073851cf0db0c6a466e396b725a670453");
    EXPECT_EQ(e.commit, "29be01c073851cf0db0c6a466e396b725a670453");
    EXPECT_FALSE(e.created);
    EXPECT_FALSE(e.deleted);
    // Commits are listed newest first.
    EXPECT_EQ(e.message, "add some text\n");
    EXPECT_EQ(e.changed_files, (Files{"aaa", "aa"}));
    // total_commits (3) equals the commits listed.
    EXPECT_TRUE(e.changed_files_complete);
    EXPECT_EQ(e.actor, "test-user");
    EXPECT_EQ(e.repository.full_name, "Test-CI/multi-line-secrets");
    EXPECT_EQ(e.repository.default_branch, "main");
}

TEST(ForgejoNormalize, TruncatedCommitListIsIncomplete) {
    auto payload = test::fixture_json("forgejo", "push-multi-commit");
    payload.as_object()["total_commits"] = 30;
    const auto e = test::normalize_json(Provider::forgejo, "push", payload);
    ASSERT_TRUE(e);
    EXPECT_FALSE(e->changed_files_complete);
}

TEST(ForgejoNormalize, PushBranchCreated) {
    const auto e = normalize_fixture("forgejo", "push-branch-created");
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.ref, "refs/heads/fdsafdsa");
    EXPECT_EQ(e.branch, "fdsafdsa");
    EXPECT_TRUE(e.created);
    EXPECT_FALSE(e.deleted);
    EXPECT_EQ(e.before, "0000000000000000000000000000000000000000");
    EXPECT_EQ(e.after, "28c3613ae62640216bea5e7dc71aa65356e4298b");
    // `commits` is empty on a new branch; head_commit still names the commit.
    EXPECT_EQ(e.commit, "28c3613ae62640216bea5e7dc71aa65356e4298b");
    EXPECT_EQ(e.message, "Delete '.woodpecker/.check.yml'\n");
    EXPECT_TRUE(e.changed_files.empty());
    EXPECT_EQ(e.actor, "6543");
    EXPECT_EQ(e.repository.full_name, "meisam/woodpecktester");
    EXPECT_EQ(e.repository.clone_url, "https://codeberg.org/meisam/woodpecktester.git");
}

TEST(ForgejoNormalize, PullRequestOpened) {
    const auto e = normalize_fixture("forgejo", "pull_request-opened");
    EXPECT_EQ(e.kind, EventKind::pull_request);
    EXPECT_EQ(e.delivery_id, "e992ff78-c3b0-5321-bac8-12f214a198a2");
    EXPECT_EQ(e.action, "opened");
    EXPECT_EQ(e.ref, "refs/pull/1/head");
    EXPECT_EQ(e.branch, "feature/changes");
    EXPECT_EQ(e.commit, "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c");
    ASSERT_TRUE(e.pull_request);
    const auto& pr = *e.pull_request;
    EXPECT_EQ(pr.number, 1);
    EXPECT_EQ(pr.title, "Update the README with new information");
    EXPECT_EQ(pr.url, "http://forgejo.golang.org/gordon/hello-world/pull/1");
    EXPECT_EQ(pr.source_branch, "feature/changes");
    EXPECT_EQ(pr.target_branch, "main");
    EXPECT_EQ(pr.head_sha, "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c");
    // This (trimmed) payload names neither the head repository nor its id: not trusted as
    // coming from this repository.
    EXPECT_TRUE(pr.from_fork);
    EXPECT_EQ(e.repository.full_name, "gordon/hello-world");
}

TEST(ForgejoNormalize, ForgejoHeadersWinOverGiteaOnes) {
    auto d = test::load_delivery("forgejo", "push-multi-commit");
    HeaderMap headers{{"Content-Type", "application/json"},
                      {"X-Forgejo-Event", "push"},
                      {"X-Forgejo-Delivery", "forgejo-id"},
                      {"X-Gitea-Event", "issues"},
                      {"X-Gitea-Delivery", "gitea-id"}};
    d.headers = headers;
    const auto e = test::normalize_delivery(Provider::forgejo, d);
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.delivery_id, "forgejo-id");
}

TEST(ForgejoNormalize, GiteaHeadersAloneAreEnough) {
    auto d = test::load_delivery("forgejo", "push-multi-commit");
    d.headers = HeaderMap{{"Content-Type", "application/json"},
                          {"X-Gitea-Event", "push"},
                          {"X-Gitea-Delivery", "gitea-id"}};
    const auto e = test::normalize_delivery(Provider::forgejo, d);
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.delivery_id, "gitea-id");
}

TEST(GiteaNormalize, FormBodyParsesLikeJson) {
    auto d = test::load_delivery("gitea", "push-branch-update");
    const std::string form = "payload=" + test::form_encode(d.body);
    HeaderMap headers;
    for (const auto& [k, v] : d.headers.fields()) {
        if (!iequals(k, "Content-Type")) headers.add(k, v);
    }
    headers.add("Content-Type", "application/x-www-form-urlencoded");
    EXPECT_EQ(ingest::media_kind(Provider::gitea, "application/x-www-form-urlencoded"), "form");
    const test::Delivery form_delivery{form, headers, "application/x-www-form-urlencoded"};
    const auto e = test::normalize_delivery(Provider::gitea, form_delivery);
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.commit, "ef98532add3b2feb7a137426bba1248724367df5");
}

}  // namespace
}  // namespace hookrelay
