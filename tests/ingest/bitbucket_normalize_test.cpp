// Bitbucket Cloud and Data Center deliveries (tests/data/bitbucket-cloud/, bitbucket-server/)
// normalized into the model, including pushes that change several refs at once.
#include "ingest/fixture.hpp"

namespace hookrelay {
namespace {

using test::normalize_fixture;

constexpr std::string_view k_zero = "0000000000000000000000000000000000000000";

TEST(BitbucketCloudNormalize, PushBranchUpdate) {
    const auto e = normalize_fixture("bitbucket-cloud", "repo_push-branch-update");
    EXPECT_EQ(e.source, "bitbucket-cloud");
    EXPECT_EQ(e.provider, Provider::bitbucket_cloud);
    EXPECT_EQ(e.delivery_id, "919dde80-ea03-517d-aaa4-efdc066d2072");
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.forge_event, "repo:push");
    EXPECT_EQ(e.action, "");
    EXPECT_EQ(e.forge_action, "");
    // Bitbucket Cloud sends the bare name and its type; the full ref is built from them.
    EXPECT_EQ(e.ref, "refs/heads/master");
    EXPECT_EQ(e.branch, "master");
    EXPECT_EQ(e.before, "501bf5b99365d1d870882254b9360c17172bda0e");
    EXPECT_EQ(e.after, "e42fac24456e4a56f1b7f9358afc3070e3b7ddec");
    EXPECT_EQ(e.commit, "e42fac24456e4a56f1b7f9358afc3070e3b7ddec");
    EXPECT_FALSE(e.created);
    EXPECT_FALSE(e.deleted);
    EXPECT_FALSE(e.forced);
    EXPECT_EQ(e.message, "Jenkinsfile created online with Bitbucket");
    EXPECT_EQ(e.actor, "stephenc");
    // No file lists in Bitbucket payloads: `paths` conditions cannot exclude anything.
    EXPECT_TRUE(e.changed_files.empty());
    EXPECT_FALSE(e.changed_files_complete);
    EXPECT_EQ(e.repository.full_name, "cloudbeers/temp");
    EXPECT_EQ(e.repository.namespace_, "cloudbeers");
    EXPECT_EQ(e.repository.name, "temp");
    EXPECT_EQ(e.repository.web_url, "https://bitbucket.org/cloudbeers/temp");
    EXPECT_EQ(e.repository.clone_url, "https://bitbucket.org/cloudbeers/temp.git");
    EXPECT_EQ(e.repository.ssh_url, "git@bitbucket.org:cloudbeers/temp.git");
}

TEST(BitbucketCloudNormalize, PushBranchDeleted) {
    const auto e = normalize_fixture("bitbucket-cloud", "repo_push-branch-deleted");
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.ref, "refs/heads/feature/test");
    EXPECT_EQ(e.branch, "feature/test");
    EXPECT_TRUE(e.deleted);
    EXPECT_FALSE(e.created);
    EXPECT_EQ(e.before, "174561d625c9623b60d8aba09b7f08ddc9df45cd");
    // `new` is null: Bitbucket sends no zeros.
    EXPECT_EQ(e.after, "");
    EXPECT_EQ(e.commit, "");
    EXPECT_EQ(e.message, "");
    // Without a username (Atlassian dropped them) the nickname names the actor.
    EXPECT_EQ(e.actor, "Nikolas Falco");
    EXPECT_EQ(e.repository.full_name, "amuniz/test-repos");
}

TEST(BitbucketCloudNormalize, PushTagCreated) {
    const auto e = normalize_fixture("bitbucket-cloud", "repo_push-tag-created");
    EXPECT_EQ(e.kind, EventKind::tag);
    EXPECT_EQ(e.ref, "refs/tags/test");
    EXPECT_EQ(e.tag, "test");
    EXPECT_EQ(e.branch, "");
    EXPECT_TRUE(e.created);
    EXPECT_FALSE(e.deleted);
    EXPECT_EQ(e.before, "");
    // new.target is the tagged commit (the tag's own message is "test").
    EXPECT_EQ(e.commit, "fee1dcdb330d1318502f303ccd4792531c28dc8e");
    EXPECT_EQ(e.after, "fee1dcdb330d1318502f303ccd4792531c28dc8e");
    EXPECT_EQ(e.message.substr(0, 12), "Defect RCBA-");
    EXPECT_EQ(e.actor, "nfalco79");
    EXPECT_EQ(e.repository.full_name, "acme/tds.cm.maven.plugins-java");
}

TEST(BitbucketCloudNormalize, PushOfSeveralRefsIsOneEventEach) {
    // One delivery: the branch update, a branch deletion and a new tag, as `git push --all
    // --tags` can send them.
    auto payload = test::fixture_json("bitbucket-cloud", "repo_push-branch-update");
    auto& changes = payload.at("push").at("changes").as_array();
    changes.push_back(test::fixture_json("bitbucket-cloud", "repo_push-branch-deleted")
                          .at("push")
                          .at("changes")
                          .at(0));
    changes.push_back(test::fixture_json("bitbucket-cloud", "repo_push-tag-created")
                          .at("push")
                          .at("changes")
                          .at(0));
    const auto events =
        test::normalize_json_events(Provider::bitbucket_cloud, "repo:push", payload);
    ASSERT_TRUE(events);
    ASSERT_EQ(events->size(), 3u);
    EXPECT_EQ((*events)[0].ref, "refs/heads/master");
    EXPECT_FALSE((*events)[0].deleted);
    EXPECT_EQ((*events)[1].ref, "refs/heads/feature/test");
    EXPECT_TRUE((*events)[1].deleted);
    EXPECT_EQ((*events)[2].kind, EventKind::tag);
    EXPECT_EQ((*events)[2].tag, "test");
    for (const auto& e : *events) {
        // Each is a whole event of the same delivery.
        EXPECT_EQ(e.repository.full_name, "cloudbeers/temp");
        EXPECT_EQ(e.actor, "stephenc");
        EXPECT_EQ(e.forge_event, "repo:push");
        EXPECT_TRUE(e.payload);
    }
}

TEST(BitbucketCloudNormalize, ForcedPushSaysSo) {
    auto payload = test::fixture_json("bitbucket-cloud", "repo_push-branch-update");
    payload.at("push").at("changes").at(0).as_object()["forced"] = true;
    const auto e = test::normalize_json(Provider::bitbucket_cloud, "repo:push", payload);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->forced);
}

TEST(BitbucketCloudNormalize, PushWithoutChangesIsRefused) {
    auto payload = test::fixture_json("bitbucket-cloud", "repo_push-branch-update");
    payload.at("push").as_object()["changes"] = boost::json::array{};
    EXPECT_EQ(test::normalize_json_events(Provider::bitbucket_cloud, "repo:push", payload).error(),
              errc::missing_field);
    payload.as_object().erase("push");
    EXPECT_EQ(test::normalize_json_events(Provider::bitbucket_cloud, "repo:push", payload).error(),
              errc::missing_field);
}

TEST(BitbucketCloudNormalize, TooManyChangesAreRefusedNotCut) {
    auto payload = test::fixture_json("bitbucket-cloud", "repo_push-branch-update");
    auto& changes = payload.at("push").at("changes").as_array();
    const auto one = changes.front();
    while (changes.size() <= ingest::k_max_events_per_delivery) changes.push_back(one);
    EXPECT_EQ(test::normalize_json_events(Provider::bitbucket_cloud, "repo:push", payload).error(),
              errc::too_many_events);
}

TEST(BitbucketCloudNormalize, PullRequestCreatedFromAFork) {
    const auto e = normalize_fixture("bitbucket-cloud", "pullrequest-created-fork");
    EXPECT_EQ(e.kind, EventKind::pull_request);
    EXPECT_EQ(e.forge_event, "pullrequest:created");
    EXPECT_EQ(e.forge_action, "created");
    EXPECT_EQ(e.action, "opened");
    EXPECT_EQ(e.branch, "master");
    // Bitbucket Cloud has no fetchable pull request ref, and abbreviates its commit hashes.
    EXPECT_EQ(e.ref, "");
    EXPECT_EQ(e.commit, "");
    EXPECT_EQ(e.actor, "stephenc");
    EXPECT_EQ(e.repository.full_name, "cloudbeers/temp");
    ASSERT_TRUE(e.pull_request);
    const auto& pr = *e.pull_request;
    EXPECT_EQ(pr.number, 3);
    EXPECT_EQ(pr.title, "Forking for PR");
    EXPECT_EQ(pr.url, "https://bitbucket.org/cloudbeers/temp/pull-requests/3");
    EXPECT_EQ(pr.source_branch, "master");
    EXPECT_EQ(pr.target_branch, "master");
    EXPECT_EQ(pr.source_repository, "stephenc/temp-fork");
    EXPECT_EQ(pr.source_clone_url, "https://bitbucket.org/stephenc/temp-fork.git");
    EXPECT_EQ(pr.head_sha, "");
    EXPECT_TRUE(pr.from_fork);
    EXPECT_FALSE(pr.merged);
}

TEST(BitbucketCloudNormalize, PullRequestUpdatedIsSynchronize) {
    const auto e = normalize_fixture("bitbucket-cloud", "pullrequest-updated-fork");
    EXPECT_EQ(e.kind, EventKind::pull_request);
    EXPECT_EQ(e.action, "synchronize");
    EXPECT_EQ(e.forge_action, "updated");
    EXPECT_EQ(e.pull_request->number, 3);
    EXPECT_TRUE(e.pull_request->from_fork);
}

TEST(BitbucketCloudNormalize, PullRequestFulfilledIsClosedAndMerged) {
    const auto e = normalize_fixture("bitbucket-cloud", "pullrequest-fulfilled");
    EXPECT_EQ(e.kind, EventKind::pull_request);
    EXPECT_EQ(e.action, "closed");
    EXPECT_EQ(e.forge_action, "fulfilled");
    EXPECT_EQ(e.branch, "foo");
    ASSERT_TRUE(e.pull_request);
    EXPECT_EQ(e.pull_request->number, 2);
    EXPECT_TRUE(e.pull_request->merged);
    EXPECT_FALSE(e.pull_request->from_fork);
    EXPECT_EQ(e.pull_request->source_branch, "foo");
    EXPECT_EQ(e.pull_request->target_branch, "master");
    // "1986c2284946": an abbreviation is not a commit Jenkins can fetch.
    EXPECT_EQ(e.pull_request->merge_commit_sha, "");
    // Nor is the head's: it is kept apart, for commit statuses only.
    EXPECT_EQ(e.pull_request->head_sha, "");
    EXPECT_EQ(e.commit, "");
    EXPECT_EQ(e.pull_request->head_sha_abbrev, "a72355f35fde");
}

TEST(BitbucketCloudNormalize, FullHashesInPullRequestsAreKept) {
    auto payload = test::fixture_json("bitbucket-cloud", "pullrequest-updated-fork");
    payload.at("pullrequest").at("source").at("commit").as_object()["hash"] =
        "63e3d18dca4c0123456789abcdef0123456789ab";
    const auto e = test::normalize_json(Provider::bitbucket_cloud, "pullrequest:updated", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->pull_request->head_sha, "63e3d18dca4c0123456789abcdef0123456789ab");
    EXPECT_EQ(e->commit, "63e3d18dca4c0123456789abcdef0123456789ab");
    EXPECT_EQ(e->pull_request->head_sha_abbrev, "");
}

TEST(BitbucketCloudNormalize, PullRequestRejectedIsClosedNotMerged) {
    auto payload = test::fixture_json("bitbucket-cloud", "pullrequest-created-fork");
    payload.at("pullrequest").as_object()["state"] = "DECLINED";
    const auto e = test::normalize_json(Provider::bitbucket_cloud, "pullrequest:rejected", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->action, "closed");
    EXPECT_FALSE(e->pull_request->merged);
}

TEST(BitbucketCloudNormalize, OtherEventsAreOther) {
    const auto payload = test::fixture_json("bitbucket-cloud", "pullrequest-created-fork");
    const auto e =
        test::normalize_json(Provider::bitbucket_cloud, "pullrequest:comment_created", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, EventKind::other);
    EXPECT_EQ(e->action, "comment_created");
    EXPECT_EQ(e->repository.full_name, "cloudbeers/temp");
}

TEST(BitbucketServerNormalize, RefsChangedBranchUpdate) {
    const auto e = normalize_fixture("bitbucket-server", "refs_changed-branch-update");
    EXPECT_EQ(e.source, "bitbucket-server");
    EXPECT_EQ(e.provider, Provider::bitbucket_server);
    EXPECT_EQ(e.delivery_id, "bb18bbbd-964b-5206-824c-3ced36c6a2d5");
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.forge_event, "repo:refs_changed");
    EXPECT_EQ(e.action, "");
    EXPECT_EQ(e.ref, "refs/heads/renovate-all");
    EXPECT_EQ(e.branch, "renovate-all");
    EXPECT_EQ(e.before, "e0e15221b987fd8296141c0faa6a79f7c86ca4ce");
    EXPECT_EQ(e.after, "76797d54bca87db6d1e3e82ee40622c7908aa514");
    EXPECT_EQ(e.commit, "76797d54bca87db6d1e3e82ee40622c7908aa514");
    EXPECT_FALSE(e.created);
    EXPECT_FALSE(e.deleted);
    EXPECT_EQ(e.message, "chore(deps): update all");
    EXPECT_EQ(e.actor, "renovatebot");
    EXPECT_FALSE(e.changed_files_complete);
    // Project key (as Bitbucket writes it) and slug.
    EXPECT_EQ(e.repository.full_name, "DEV/deployment-automation");
    EXPECT_EQ(e.repository.namespace_, "DEV");
    EXPECT_EQ(e.repository.name, "deployment-automation");
    EXPECT_EQ(e.repository.clone_url,
              "https://bitbucket.example.com/scm/dev/deployment-automation.git");
    EXPECT_EQ(e.repository.ssh_url,
              "ssh://git@bitbucket.example.com:7999/dev/deployment-automation.git");
    EXPECT_EQ(e.repository.web_url,
              "https://bitbucket.example.com/projects/DEV/repos/deployment-automation/browse");
}

TEST(BitbucketServerNormalize, RefsChangedBranchCreated) {
    const auto e = normalize_fixture("bitbucket-server", "refs_changed-branch-created");
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.ref, "refs/heads/feature/BB-1");
    EXPECT_EQ(e.branch, "feature/BB-1");
    EXPECT_TRUE(e.created);
    EXPECT_FALSE(e.deleted);
    EXPECT_EQ(e.before, k_zero);
    EXPECT_EQ(e.commit, "fb522a6f08c7c7df337312e4e65ec1b57710672e");
    // commits[] lists newest first; the head is found by id.
    EXPECT_EQ(e.message, "Suppress echo command part");
    EXPECT_EQ(e.actor, "admin");
    EXPECT_EQ(e.repository.full_name, "AMUNIZ/test-repos");
    EXPECT_EQ(e.repository.clone_url, "http://localhost:7990/bitbucket/scm/amuniz/test-repos.git");
}

TEST(BitbucketServerNormalize, RefsChangedBranchDeleted) {
    const auto e = normalize_fixture("bitbucket-server", "refs_changed-branch-deleted");
    EXPECT_EQ(e.kind, EventKind::push);
    EXPECT_EQ(e.branch, "feature/BB-1");
    EXPECT_TRUE(e.deleted);
    EXPECT_FALSE(e.created);
    EXPECT_EQ(e.before, "fb522a6f08c7c7df337312e4e65ec1b57710672e");
    EXPECT_EQ(e.after, k_zero);
    EXPECT_EQ(e.commit, "");
    EXPECT_EQ(e.message, "");
}

TEST(BitbucketServerNormalize, RefsChangedWithSeveralChangesIsOneEventEach) {
    auto payload = test::fixture_json("bitbucket-server", "refs_changed-branch-created");
    auto& changes = payload.at("changes").as_array();
    changes.push_back(boost::json::object{
        {"ref", {{"id", "refs/tags/v1.2"}, {"displayId", "v1.2"}, {"type", "TAG"}}},
        {"refId", "refs/tags/v1.2"},
        {"fromHash", k_zero},
        {"toHash", "ae995d7a37069d0988462a9c92828971e8a42b5d"},
        {"type", "ADD"}});
    changes.push_back(
        test::fixture_json("bitbucket-server", "refs_changed-branch-deleted").at("changes").at(0));
    const auto events =
        test::normalize_json_events(Provider::bitbucket_server, "repo:refs_changed", payload);
    ASSERT_TRUE(events);
    ASSERT_EQ(events->size(), 3u);
    EXPECT_EQ((*events)[0].kind, EventKind::push);
    EXPECT_TRUE((*events)[0].created);
    EXPECT_EQ((*events)[1].kind, EventKind::tag);
    EXPECT_EQ((*events)[1].tag, "v1.2");
    EXPECT_EQ((*events)[1].commit, "ae995d7a37069d0988462a9c92828971e8a42b5d");
    EXPECT_EQ((*events)[1].message, "Support also windows environments");
    EXPECT_EQ((*events)[2].kind, EventKind::push);
    EXPECT_TRUE((*events)[2].deleted);
    for (const auto& e : *events) {
        EXPECT_EQ(e.repository.full_name, "AMUNIZ/test-repos");
        EXPECT_EQ(e.actor, "admin");
    }
}

TEST(BitbucketServerNormalize, PullRequestOpened) {
    const auto e = normalize_fixture("bitbucket-server", "pr-opened");
    EXPECT_EQ(e.kind, EventKind::pull_request);
    EXPECT_EQ(e.forge_event, "pr:opened");
    EXPECT_EQ(e.forge_action, "opened");
    EXPECT_EQ(e.action, "opened");
    // Bitbucket keeps the source at refs/pull-requests/<id>/from in the target repository.
    EXPECT_EQ(e.ref, "refs/pull-requests/1/from");
    EXPECT_EQ(e.branch, "feature/diffstat");
    EXPECT_EQ(e.commit, "251fce291f086cdde68ae2a896148abb5b58033e");
    EXPECT_EQ(e.actor, "admin");
    EXPECT_EQ(e.repository.full_name, "AMUNIZ/test-repos");
    ASSERT_TRUE(e.pull_request);
    const auto& pr = *e.pull_request;
    EXPECT_EQ(pr.number, 1);
    EXPECT_EQ(pr.title, "Feature/diffstat");
    EXPECT_EQ(pr.source_branch, "feature/diffstat");
    EXPECT_EQ(pr.target_branch, "master");
    EXPECT_EQ(pr.head_sha, "251fce291f086cdde68ae2a896148abb5b58033e");
    EXPECT_EQ(pr.source_repository, "AMUNIZ/test-repos");
    EXPECT_FALSE(pr.from_fork);
    EXPECT_FALSE(pr.merged);
    EXPECT_FALSE(pr.draft);
}

TEST(BitbucketServerNormalize, PullRequestMerged) {
    const auto e = normalize_fixture("bitbucket-server", "pr-merged");
    EXPECT_EQ(e.kind, EventKind::pull_request);
    EXPECT_EQ(e.action, "closed");
    EXPECT_EQ(e.forge_action, "merged");
    EXPECT_EQ(e.ref, "refs/pull-requests/111/from");
    EXPECT_EQ(e.branch, "PROJ-4584");
    EXPECT_EQ(e.actor, "john.doe@example.com");
    EXPECT_EQ(e.repository.full_name, "DEV/deployment-automation");
    ASSERT_TRUE(e.pull_request);
    const auto& pr = *e.pull_request;
    EXPECT_EQ(pr.number, 111);
    EXPECT_TRUE(pr.merged);
    EXPECT_EQ(pr.merge_commit_sha, "c690da9e7f6a6d90defe03d57b8802df149c4aff");
    EXPECT_EQ(pr.head_sha, "993203acecdb65ffe947424d0917768b0e5c3903");
    EXPECT_EQ(pr.target_branch, "master");
    EXPECT_FALSE(pr.from_fork);
}

TEST(BitbucketServerNormalize, SourceBranchUpdateIsSynchronize) {
    auto payload = test::fixture_json("bitbucket-server", "pr-opened");
    payload.as_object()["eventKey"] = "pr:from_ref_updated";
    payload.as_object()["previousFromHash"] = "ae995d7a37069d0988462a9c92828971e8a42b5d";
    const auto e = test::normalize_json(Provider::bitbucket_server, "pr:from_ref_updated", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->action, "synchronize");
    EXPECT_EQ(e->before, "ae995d7a37069d0988462a9c92828971e8a42b5d");
    EXPECT_EQ(e->after, "251fce291f086cdde68ae2a896148abb5b58033e");
}

TEST(BitbucketServerNormalize, DeclinedIsClosedNotMerged) {
    auto payload = test::fixture_json("bitbucket-server", "pr-opened");
    payload.at("pullRequest").as_object()["state"] = "DECLINED";
    const auto e = test::normalize_json(Provider::bitbucket_server, "pr:declined", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->action, "closed");
    EXPECT_FALSE(e->pull_request->merged);
}

TEST(BitbucketServerNormalize, PullRequestFromAForkRepository) {
    auto payload = test::fixture_json("bitbucket-server", "pr-opened");
    auto& from = payload.at("pullRequest").at("fromRef").at("repository").as_object();
    from["id"] = 99;
    from["slug"] = "test-repos-fork";
    from.at("project").as_object()["key"] = "~ALICE";
    const auto e = test::normalize_json(Provider::bitbucket_server, "pr:opened", payload);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->pull_request->from_fork);
    EXPECT_EQ(e->pull_request->source_repository, "~ALICE/test-repos-fork");
}

TEST(BitbucketServerNormalize, DiagnosticsPingIsAPing) {
    const auto e = normalize_fixture("bitbucket-server", "diagnostics-ping");
    EXPECT_EQ(e.kind, EventKind::ping);
    EXPECT_EQ(e.forge_event, "diagnostics:ping");
    EXPECT_EQ(e.delivery_id, "8c696bb3-5902-5e92-ac46-2a34d0805d0e");
}

TEST(BitbucketServerNormalize, OtherEventsAreOther) {
    const auto payload = test::fixture_json("bitbucket-server", "pr-opened");
    const auto e = test::normalize_json(Provider::bitbucket_server, "pr:comment:added", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, EventKind::other);
    EXPECT_EQ(e->action, "comment:added");
}

TEST(BitbucketServerNormalize, RefsChangedWithoutChangesIsRefused) {
    auto payload = test::fixture_json("bitbucket-server", "refs_changed-branch-update");
    payload.as_object().erase("changes");
    EXPECT_EQ(test::normalize_json_events(Provider::bitbucket_server, "repo:refs_changed", payload)
                  .error(),
              errc::missing_field);
}

// A Bitbucket Cloud hook pointed at a Data Center source, or the reverse: the signatures are
// alike, so only the event key tells. Refused, not answered "no rule matched" with nothing built.
TEST(BitbucketNormalize, TheOtherBitbucketsDeliveriesAreRefused) {
    const auto as = [](Provider provider, const char* forge, const char* name) {
        const auto d = test::load_delivery(forge, name);
        auto parsed = ingest::parse_body(d.content_type, d.body);
        EXPECT_TRUE(parsed);
        return ingest::normalize(test::source_for(provider), d.headers, std::move(*parsed));
    };
    for (const char* name : {"repo_push-branch-update", "pullrequest-created-fork"}) {
        const auto r = as(Provider::bitbucket_server, "bitbucket-cloud", name);
        ASSERT_FALSE(r) << name;
        EXPECT_EQ(r.error(), errc::other_forge_event) << name;
        EXPECT_TRUE(as(Provider::bitbucket_cloud, "bitbucket-cloud", name)) << name;
    }
    for (const char* name : {"refs_changed-branch-update", "pr-opened", "diagnostics-ping"}) {
        const auto r = as(Provider::bitbucket_cloud, "bitbucket-server", name);
        ASSERT_FALSE(r) << name;
        EXPECT_EQ(r.error(), errc::other_forge_event) << name;
        EXPECT_TRUE(as(Provider::bitbucket_server, "bitbucket-server", name)) << name;
    }
}

}  // namespace
}  // namespace hookrelay
