// Fixed events for targets that fuzz rules and templates rather than ingest: a push with changed
// files, a pull request, and a nearly empty tag event, each with a raw payload so `payload.*`
// paths resolve. Built once; shared, read-only.
#pragma once

#include <hookrelay/event.hpp>
#include <hookrelay/json_document.hpp>

#include <memory>
#include <vector>

namespace hookrelay::fuzz {

inline std::vector<Event> make_sample_events() {
    std::vector<Event> events;

    Event push;
    push.source = "github";
    push.provider = Provider::github;
    push.delivery_id = "d7e1c3a0-0000-4000-8000-000000000001";
    push.kind = EventKind::push;
    push.forge_event = "push";
    push.repository = {"acme/app",
                       "app",
                       "acme",
                       "https://forge.example/acme/app.git",
                       "git@forge.example:acme/app.git",
                       "https://forge.example/acme/app",
                       "main"};
    push.ref = "refs/heads/feature/x";
    push.branch = "feature/x";
    push.before = "0000000000000000000000000000000000000000";
    push.after = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
    push.commit = push.after;
    push.actor = "octocat";
    push.message = "Fix the build\n\nLonger description, with 'quotes' and {{ braces }}.";
    push.changed_files = {"README.md", "src/main.cpp", "docs/a b/c.md"};
    push.payload = JsonDocument::parse(
        R"({"ref":"refs/heads/feature/x","sender":{"login":"octocat","type":"User","id":1},)"
        R"("commits":[{"id":"6113728f","author":{"email":"o@example.com"},"added":["x"]}],)"
        R"("size":1,"forced":false,"head_commit":null,"labels":["a","b"]})");
    events.push_back(push);

    Event pr;
    pr.source = "gitlab";
    pr.provider = Provider::gitlab;
    pr.kind = EventKind::pull_request;
    pr.forge_event = "Merge Request Hook";
    pr.action = "synchronize";
    pr.forge_action = "update";
    pr.repository = {"group/sub/app",
                     "app",
                     "group/sub",
                     "https://gitlab.example/group/sub/app.git",
                     "",
                     "",
                     ""};
    pr.ref = "refs/merge-requests/42/head";
    pr.branch = "topic";
    pr.commit = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
    PullRequest facts;
    facts.number = 42;
    facts.title = "Üñíçødé title";
    facts.source_branch = "topic";
    facts.target_branch = "main";
    facts.source_repository = "fork/app";
    facts.head_sha = pr.commit;
    facts.draft = true;
    facts.from_fork = true;
    pr.pull_request = facts;
    pr.payload = JsonDocument::parse(
        R"({"object_kind":"merge_request","object_attributes":{"iid":42,"draft":true,)"
        R"("labels":[{"title":"ci"}]},"user":{"username":"dev"}})");
    events.push_back(pr);

    Event tag;
    tag.source = "github";
    tag.kind = EventKind::tag;
    tag.forge_event = "push";
    tag.tag = "v1.2.3";
    tag.deleted = true;
    tag.payload = JsonDocument::parse("{}");
    events.push_back(tag);
    return events;
}

inline const std::vector<Event>& sample_events() {
    static const std::vector<Event> events = make_sample_events();
    return events;
}

}  // namespace hookrelay::fuzz
