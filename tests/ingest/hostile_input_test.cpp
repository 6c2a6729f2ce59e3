// Untrusted payloads: every function answers with an error or a best-effort event, never an
// exception or a crash.
#include "ingest/fixture.hpp"
#include "support/json_document.hpp"

namespace hookrelay {
namespace {

using test::normalize_json;

TEST(HostileInput, MissingEventHeader) {
    const auto payload = test::document(boost::json::object{});
    for (const auto provider :
         {Provider::github, Provider::gitlab, Provider::gitea, Provider::forgejo,
          Provider::bitbucket_cloud, Provider::bitbucket_server}) {
        const auto e = ingest::normalize(test::source_for(provider), HeaderMap{}, payload);
        EXPECT_EQ(e.error(), errc::missing_event_header);
        const auto blank = ingest::normalize(test::source_for(provider),
                                             {{"X-GitHub-Event", ""},
                                              {"X-Gitlab-Event", " "},
                                              {"X-Gitea-Event", ""},
                                              {"X-Forgejo-Event", ""},
                                              {"X-Event-Key", " "}},
                                             payload);
        EXPECT_EQ(blank.error(), errc::missing_event_header);
    }
}

TEST(HostileInput, GithubEventHeaderOnGitlabSourceIsMissing) {
    const auto payload = test::document(boost::json::object{});
    const auto e = ingest::normalize(test::source_for(Provider::gitlab),
                                     {{"X-GitHub-Event", "push"}}, payload);
    EXPECT_EQ(e.error(), errc::missing_event_header);
}

TEST(HostileInput, NullOrNonObjectPayload) {
    const HeaderMap headers{{"X-GitHub-Event", "ping"}};
    const auto src = test::source_for(Provider::github);
    EXPECT_EQ(ingest::normalize(src, headers, nullptr).error(), errc::missing_field);
    EXPECT_EQ(ingest::normalize(src, headers, test::document(boost::json::array{})).error(),
              errc::missing_field);
}

TEST(HostileInput, PushWithoutRefOrRepository) {
    auto payload = test::fixture_json("github", "push-branch-update");
    payload.as_object().erase("ref");
    EXPECT_EQ(normalize_json(Provider::github, "push", payload).error(), errc::missing_field);

    payload = test::fixture_json("github", "push-branch-update");
    payload.as_object().erase("repository");
    EXPECT_EQ(normalize_json(Provider::github, "push", payload).error(), errc::missing_field);

    auto gl = test::fixture_json("gitlab", "push-docs");
    gl.as_object().erase("ref");
    EXPECT_EQ(normalize_json(Provider::gitlab, "Push Hook", gl).error(), errc::missing_field);

    gl = test::fixture_json("gitlab", "tag_push-docs");
    gl.as_object().erase("project");
    EXPECT_EQ(normalize_json(Provider::gitlab, "Tag Push Hook", gl).error(), errc::missing_field);
}

TEST(HostileInput, WrongTypesForRequiredFields) {
    auto payload = test::fixture_json("github", "push-branch-update");
    payload.as_object()["ref"] = 5;
    EXPECT_EQ(normalize_json(Provider::github, "push", payload).error(), errc::missing_field);

    payload = test::fixture_json("github", "push-branch-update");
    payload.as_object()["repository"] = boost::json::array{};
    EXPECT_EQ(normalize_json(Provider::github, "push", payload).error(), errc::missing_field);

    auto gl = test::fixture_json("gitlab", "push-docs");
    gl.as_object()["project"] = "mike/diaspora";
    EXPECT_EQ(normalize_json(Provider::gitlab, "Push Hook", gl).error(), errc::missing_field);

    auto pr = test::fixture_json("github", "pull_request-opened");
    pr.as_object()["pull_request"] = "2";
    EXPECT_EQ(normalize_json(Provider::github, "pull_request", pr).error(), errc::missing_field);

    auto mr = test::fixture_json("gitlab", "merge_request-merged");
    mr.at("object_attributes").as_object()["iid"] = "4";
    EXPECT_EQ(normalize_json(Provider::gitlab, "Merge Request Hook", mr).error(),
              errc::missing_field);
}

TEST(HostileInput, WrongTypesForOptionalFieldsGiveBestEffortEvent) {
    auto payload = test::fixture_json("github", "push-branch-update");
    auto& o = payload.as_object();
    o["before"] = 1;
    o["created"] = "yes";
    o["commits"] = boost::json::object{};
    o["head_commit"] = boost::json::array{1, 2};
    o["sender"] = nullptr;
    o["pusher"] = 3.5;
    o["repository"].as_object()["owner"] = "x";
    o["repository"].as_object()["full_name"] = boost::json::array{};
    const auto e = normalize_json(Provider::github, "push", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->branch, "main");
    EXPECT_EQ(e->before, "");
    EXPECT_FALSE(e->created);
    EXPECT_EQ(e->commit, "366701fde727cb7a9e7f21eb88264f59f6f9b89c");  // falls back to `after`
    EXPECT_EQ(e->message, "");
    EXPECT_TRUE(e->changed_files.empty());
    EXPECT_EQ(e->actor, "");
    EXPECT_EQ(e->repository.name, "woodpecker");
    EXPECT_EQ(e->repository.full_name, "");
}

TEST(HostileInput, CommitEntriesOfWrongShape) {
    auto payload = test::fixture_json("gitlab", "push-docs");
    auto& commits = payload.at("commits").as_array();
    commits.push_back(nullptr);
    commits.push_back("abc");
    commits.push_back(boost::json::object{
        {"id", 7}, {"added", boost::json::array{1, "ok.txt"}}, {"modified", "not-a-list"}});
    payload.as_object()["total_commits_count"] = "many";
    const auto e = normalize_json(Provider::gitlab, "Push Hook", payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->changed_files,
              (std::vector<std::string>{"CHANGELOG", "app/controller/application.rb", "ok.txt"}));
    EXPECT_TRUE(e->changed_files_complete);  // no usable count
    EXPECT_EQ(e->message, "fixed readme\n");
}

TEST(HostileInput, EmptyObjectsForEveryEvent) {
    const auto empty = boost::json::object{};
    for (const auto* name : {"ping", "release", "create", "workflow_run", "unknown"}) {
        const auto e = normalize_json(Provider::github, name, empty);
        ASSERT_TRUE(e) << name;
        EXPECT_EQ(e->repository.full_name, "");
    }
    EXPECT_EQ(normalize_json(Provider::github, "push", empty).error(), errc::missing_field);
    EXPECT_EQ(normalize_json(Provider::github, "pull_request", empty).error(), errc::missing_field);
    for (const auto* name : {"Release Hook", "System Hook", "Note Hook", "Pipeline Hook"}) {
        EXPECT_TRUE(normalize_json(Provider::gitlab, name, empty)) << name;
    }
    EXPECT_EQ(normalize_json(Provider::gitlab, "Push Hook", empty).error(), errc::missing_field);
    EXPECT_EQ(normalize_json(Provider::gitlab, "Merge Request Hook", empty).error(),
              errc::missing_field);
}

TEST(HostileInput, NewForgesWithValuesOfTheWrongType) {
    namespace json = boost::json;
    // Every field the new forges read, replaced by something it is not.
    const std::pair<Provider, std::vector<std::pair<std::string_view, json::value>>> cases[] = {
        {Provider::gitea,
         {{"push", json::object{{"ref", "refs/heads/x"},
                                {"repository", json::object{}},
                                {"commits", json::array{nullptr, 1, json::object{{"id", 2}}}},
                                {"head_commit", "x"},
                                {"total_commits", "3"}}},
          {"delete", json::object{{"ref", 1}, {"ref_type", "branch"}}},
          {"delete", json::object{{"ref_type", json::array{}}}},
          {"pull_request", json::object{{"pull_request", json::object{{"head", 1}}},
                                        {"number", 1},
                                        {"repository", json::object{}}}},
          {"release", json::object{{"release", "x"}}}}},
        {Provider::bitbucket_cloud,
         {{"repo:push",
           json::object{
               {"push", json::object{{"changes", json::array{nullptr, 1, "x", json::object{}}}}}}},
          {"repo:push", json::object{{"push", json::array{}}}},
          {"pullrequest:created",
           json::object{{"pullrequest",
                         json::object{{"id", 1}, {"source", "x"}, {"destination", json::array{}}}},
                        {"repository", json::object{{"full_name", 5}, {"links", "x"}}}}},
          {"pullrequest:created", json::object{{"pullrequest", json::object{{"id", "1"}}}}}}},
        {Provider::bitbucket_server,
         {{"repo:refs_changed",
           json::object{{"changes", json::array{nullptr, json::object{{"ref", 3}}}},
                        {"repository", json::object{{"links", json::object{{"clone", 1}}}}},
                        {"commits", "x"},
                        {"toCommit", json::array{}}}},
          {"pr:opened",
           json::object{
               {"pullRequest", json::object{{"id", 2}, {"fromRef", 1}, {"toRef", nullptr}}}}},
          {"pr:merged", json::object{{"pullRequest", json::array{}}}}}},
    };
    for (const auto& [provider, payloads] : cases) {
        for (const auto& [name, payload] : payloads) {
            // An error or events; never an exception.
            const auto events = test::normalize_json_events(provider, name, payload);
            if (events) {
                EXPECT_FALSE(events->empty()) << to_string(provider) << " " << name;
            }
        }
    }
    const auto pushed = test::normalize_json_events(
        Provider::bitbucket_cloud, "repo:push",
        json::object{{"push", json::object{{"changes", json::array{nullptr, 1}}}}});
    ASSERT_TRUE(pushed);
    EXPECT_EQ(pushed->size(), 2u);
    for (const auto& e : *pushed) EXPECT_EQ(e.kind, EventKind::other);
}

TEST(HostileInput, EmptyObjectsForEveryEventOfTheNewForges) {
    const auto empty = boost::json::object{};
    for (const auto* name : {"create", "issues", "release", "pull_request_approved"}) {
        EXPECT_TRUE(normalize_json(Provider::gitea, name, empty)) << name;
        EXPECT_TRUE(normalize_json(Provider::forgejo, name, empty)) << name;
    }
    EXPECT_EQ(normalize_json(Provider::gitea, "push", empty).error(), errc::missing_field);
    EXPECT_EQ(normalize_json(Provider::gitea, "pull_request", empty).error(), errc::missing_field);
    EXPECT_EQ(normalize_json(Provider::gitea, "delete", boost::json::object{{"ref_type", "branch"}})
                  .error(),
              errc::missing_field);
    EXPECT_TRUE(normalize_json(Provider::bitbucket_cloud, "repo:fork", empty));
    EXPECT_EQ(normalize_json(Provider::bitbucket_cloud, "repo:push", empty).error(),
              errc::missing_field);
    EXPECT_EQ(normalize_json(Provider::bitbucket_cloud, "pullrequest:created", empty).error(),
              errc::missing_field);
    EXPECT_TRUE(normalize_json(Provider::bitbucket_server, "diagnostics:ping", empty));
    EXPECT_TRUE(normalize_json(Provider::bitbucket_server, "repo:modified", empty));
    EXPECT_EQ(normalize_json(Provider::bitbucket_server, "repo:refs_changed", empty).error(),
              errc::missing_field);
    EXPECT_EQ(normalize_json(Provider::bitbucket_server, "pr:opened", empty).error(),
              errc::missing_field);
    EXPECT_TRUE(normalize_json(Provider::generic, "", empty));
}

TEST(HostileInput, HugeNumbersAndNegativeIds) {
    auto pr = test::fixture_json("github", "pull_request-opened");
    pr.at("pull_request").as_object()["number"] = 18446744073709551615ull;
    pr.as_object()["number"] = -1;
    EXPECT_EQ(normalize_json(Provider::github, "pull_request", pr).error(), errc::missing_field);
}

TEST(HostileInput, TruncatedFixturesNeverThrow) {
    const std::pair<const char*, const char*> fixtures[] = {
        {"github", "push-branch-update"},
        {"github", "pull_request-synchronize"},
        {"gitlab", "merge_request-merged"},
        {"gitlab", "tag_push-annotated"},
    };
    for (const auto& [forge, name] : fixtures) {
        const auto d = test::load_delivery(forge, name);
        for (std::size_t cut = 0; cut < d.body.rfind('}'); cut += 97) {
            const auto parsed = ingest::parse_body(d.content_type, d.body.substr(0, cut));
            EXPECT_EQ(parsed.error(), errc::malformed_json) << name << " cut at " << cut;
        }
    }
}

}  // namespace
}  // namespace hookrelay
