// The value sets conditions are checked against agree with what the model and the normalizers
// produce: a value the normalizers can emit must never be refused by `check`.
#include "rules/vocabulary.hpp"

#include "ingest/fixture.hpp"

#include <gmock/gmock.h>

#include <array>
#include <filesystem>
#include <set>

namespace hookrelay::rules {
namespace {

using ::testing::Contains;

bool known(EventKind kind, std::string_view action) {
    const auto& actions = known_actions(kind);
    return std::find(actions.begin(), actions.end(), action) != actions.end();
}

TEST(Vocabulary, BooleanFieldsAreExactlyTheFieldsThatRenderTrueOrFalse) {
    Event e;
    e.source = e.delivery_id = e.forge_event = e.action = e.forge_action = e.ref = "x";
    e.branch = e.tag = e.before = e.after = e.commit = e.actor = e.message = "x";
    e.repository = {"x", "x", "x", "x", "x", "x", "x"};
    e.changed_files = {"x"};
    PullRequest pr;
    pr.number = 7;
    pr.title = pr.url = pr.source_branch = pr.target_branch = "x";
    pr.source_repository = pr.source_clone_url = pr.head_sha = pr.merge_commit_sha = "x";
    e.pull_request = pr;
    for (const auto name : event_field_names()) {
        const auto value = event_field(e, name);
        ASSERT_TRUE(value) << name;
        EXPECT_EQ(is_boolean_field(name), *value == "true" || *value == "false") << name;
    }
}

TEST(Vocabulary, EveryKindIsListedOnce) {
    std::set<std::string_view> names;
    for (const auto kind : event_kinds()) names.insert(to_string(kind));
    EXPECT_EQ(names, (std::set<std::string_view>{"push", "tag", "pull_request", "release", "ping",
                                                 "other"}));
}

TEST(Vocabulary, EveryRecordedDeliveryHasAKnownAction) {
    std::size_t checked = 0;
    for (const auto& dir : std::filesystem::directory_iterator(HOOKRELAY_TEST_DATA_DIR)) {
        if (!dir.is_directory()) continue;
        const auto forge = dir.path().filename().string();
        for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
            const auto ext = entry.path().extension().string();
            if (ext != ".json" && ext != ".form") continue;
            const auto name = entry.path().stem().string();
            const auto provider = test::provider_of(forge);
            const auto events = test::normalize_delivery_events(
                provider, test::load_delivery(forge, name, ext.substr(1)));
            for (const auto& e : events) {
                if (e.action.empty()) continue;
                EXPECT_TRUE(known(e.kind, e.action))
                    << forge << "/" << name << ": " << to_string(e.kind) << " action " << e.action;
                const std::array one{provider};
                const auto own = known_actions(e.kind, one);
                EXPECT_NE(std::find(own.begin(), own.end(), e.action), own.end())
                    << forge << "/" << name << ": not among its own forge's actions";
                ++checked;
            }
        }
    }
    EXPECT_GT(checked, 15u);
}

TEST(Vocabulary, EveryGiteaPullRequestActionIsKnown) {
    // Gitea's documented pull_request actions (services/webhook, modules/structs/hook.go).
    auto payload = test::fixture_json("gitea", "pull_request-synchronized");
    for (const auto provider : {Provider::gitea, Provider::forgejo}) {
        const std::array one{provider};
        for (const auto* sent :
             {"opened", "reopened", "closed", "edited", "synchronized", "assigned", "unassigned",
              "label_updated", "label_cleared", "milestoned", "demilestoned", "review_requested",
              "review_request_removed"}) {
            payload.as_object()["action"] = sent;
            const auto e = test::normalize_json(provider, "pull_request", payload);
            ASSERT_TRUE(e) << sent;
            EXPECT_THAT(known_actions(EventKind::pull_request, one), Contains(e->action)) << sent;
        }
    }
}

TEST(Vocabulary, EveryBitbucketPullRequestEventHasAKnownAction) {
    const auto cloud = test::fixture_json("bitbucket-cloud", "pullrequest-created-fork");
    const std::array cloud_only{Provider::bitbucket_cloud};
    for (const auto* key :
         {"pullrequest:created", "pullrequest:updated", "pullrequest:fulfilled",
          "pullrequest:rejected", "pullrequest:approved", "pullrequest:unapproved"}) {
        const auto e = test::normalize_json(Provider::bitbucket_cloud, key, cloud);
        ASSERT_TRUE(e) << key;
        EXPECT_EQ(e->kind, EventKind::pull_request) << key;
        EXPECT_THAT(known_actions(EventKind::pull_request, cloud_only), Contains(e->action)) << key;
    }
    const auto server = test::fixture_json("bitbucket-server", "pr-opened");
    const std::array server_only{Provider::bitbucket_server};
    for (const auto* key :
         {"pr:opened", "pr:from_ref_updated", "pr:modified", "pr:merged", "pr:declined",
          "pr:deleted", "pr:reviewer:approved", "pr:reviewer:unapproved"}) {
        const auto e = test::normalize_json(Provider::bitbucket_server, key, server);
        ASSERT_TRUE(e) << key;
        EXPECT_EQ(e->kind, EventKind::pull_request) << key;
        EXPECT_THAT(known_actions(EventKind::pull_request, server_only), Contains(e->action))
            << key;
    }
}

TEST(Vocabulary, EveryForgeActionIsKnownOverall) {
    for (const auto provider : providers()) {
        const std::array one{provider};
        for (const auto kind : event_kinds()) {
            for (const auto action : known_actions(kind, one)) {
                EXPECT_TRUE(known(kind, action)) << to_string(provider) << " " << action;
            }
        }
    }
}

TEST(Vocabulary, EveryGitlabMergeRequestActionIsKnown) {
    // GitLab's documented Merge Request Hook actions; `update` with and without `oldrev`.
    auto payload = test::fixture_json("gitlab", "merge_request-open-docs");
    auto& attrs = payload.at("object_attributes").as_object();
    for (const auto* sent : {"open", "close", "reopen", "update", "approved", "unapproved",
                             "approval", "unapproval", "merge"}) {
        for (const bool oldrev : {false, true}) {
            attrs["action"] = sent;
            if (oldrev) {
                attrs["oldrev"] = "1111111111111111111111111111111111111111";
            } else {
                attrs.erase("oldrev");
            }
            const auto e = test::normalize_json(Provider::gitlab, "Merge Request Hook", payload);
            ASSERT_TRUE(e) << sent;
            EXPECT_THAT(known_actions(EventKind::pull_request), Contains(e->action)) << sent;
        }
    }
}

TEST(Vocabulary, EveryGitlabReleaseActionIsKnown) {
    auto payload = test::fixture_json("gitlab", "release-create");
    for (const auto* sent : {"create", "update", "delete"}) {
        payload.as_object()["action"] = sent;
        const auto e = test::normalize_json(Provider::gitlab, "Release Hook", payload);
        ASSERT_TRUE(e) << sent;
        EXPECT_THAT(known_actions(EventKind::release), Contains(e->action)) << sent;
    }
}

TEST(Vocabulary, GithubReleaseAndPullRequestActionsAreKnown) {
    // GitHub passes its action through unchanged; its documented release actions.
    auto payload = test::fixture_json("github", "release-published");
    for (const auto* sent :
         {"published", "created", "released", "prereleased", "edited", "deleted", "unpublished"}) {
        payload.as_object()["action"] = sent;
        const auto e = test::normalize_json(Provider::github, "release", payload);
        ASSERT_TRUE(e) << sent;
        EXPECT_THAT(known_actions(EventKind::release), Contains(e->action)) << sent;
    }
}

TEST(Vocabulary, PushTagAndPingCarryNoAction) {
    for (const auto kind : {EventKind::push, EventKind::tag, EventKind::ping}) {
        EXPECT_TRUE(known_actions(kind).empty()) << to_string(kind);
    }
}

}  // namespace
}  // namespace hookrelay::rules
