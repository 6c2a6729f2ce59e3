// Builders for rule specs and events, so tests read like the YAML an admin would write.
#pragma once

#include "rules/rules.hpp"

#include <hookrelay/config.hpp>
#include <hookrelay/event.hpp>

#include <gtest/gtest.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hookrelay::rules::test {

inline ConditionSpec field(std::string name, std::vector<std::string> patterns,
                           Location where = {}) {
    ConditionSpec c;
    c.kind = ConditionSpec::Kind::field;
    c.field = std::move(name);
    for (auto& p : patterns) c.patterns.push_back({std::move(p), {}});
    c.where = where;
    return c;
}

inline ConditionSpec composite(ConditionSpec::Kind kind, std::vector<ConditionSpec> children) {
    ConditionSpec c;
    c.kind = kind;
    c.children = std::move(children);
    return c;
}
inline ConditionSpec all(std::vector<ConditionSpec> c) {
    return composite(ConditionSpec::Kind::all, std::move(c));
}
inline ConditionSpec any(std::vector<ConditionSpec> c) {
    return composite(ConditionSpec::Kind::any, std::move(c));
}
inline ConditionSpec not_(std::vector<ConditionSpec> c) {
    return composite(ConditionSpec::Kind::not_, std::move(c));
}

inline TriggerSpec trigger(std::string job,
                           std::vector<std::pair<std::string, std::string>> params = {},
                           std::string jenkins = "ci") {
    TriggerSpec t;
    t.jenkins = std::move(jenkins);
    t.job.text = std::move(job);
    for (auto& [k, v] : params) t.parameters.push_back({k, TemplateSpec{v, {}}});
    return t;
}

inline RuleSpec rule(std::string name, std::vector<ConditionSpec> when,
                     std::vector<TriggerSpec> triggers = {}, bool stop = false) {
    RuleSpec r;
    r.name = std::move(name);
    r.when = all(std::move(when));
    r.triggers = std::move(triggers);
    r.stop = stop;
    return r;
}

inline Config config(std::vector<RuleSpec> rules) {
    Config c;
    c.file = "hookrelay.yaml";
    JenkinsConfig ci;
    ci.name = "ci";
    ci.url = "https://ci.example.com/";
    c.jenkins.push_back(ci);
    c.rules = std::move(rules);
    return c;
}

// Compiles `rules`; fails the test (and returns nullptr) when any compile error shows up.
inline std::shared_ptr<const RuleSet> compile(std::vector<RuleSpec> rules) {
    std::vector<ConfigError> errors;
    auto set = RuleSet::compile(config(std::move(rules)), errors);
    for (const auto& e : errors) ADD_FAILURE() << to_string(e);
    return set;
}

inline Event push_event(std::string branch = "main") {
    Event e;
    e.source = "github";
    e.provider = Provider::github;
    e.delivery_id = "d-1";
    e.kind = EventKind::push;
    e.forge_event = "push";
    e.repository.full_name = "acme/app";
    e.repository.name = "app";
    e.repository.namespace_ = "acme";
    e.ref = "refs/heads/" + branch;
    e.branch = std::move(branch);
    e.before = "1111111111111111111111111111111111111111";
    e.after = "0123456789abcdef0123456789abcdef01234567";
    e.commit = e.after;
    e.actor = "octo";
    e.message = "Fix the build";
    e.changed_files = {"src/main.cpp", "README.md"};
    return e;
}

inline Event tag_event(std::string tag = "v1.2.0") {
    Event e = push_event();
    e.kind = EventKind::tag;
    e.ref = "refs/tags/" + tag;
    e.branch.clear();
    e.tag = std::move(tag);
    e.changed_files.clear();
    return e;
}

inline Event pull_request_event(std::string action = "opened") {
    Event e = push_event("feature/x");
    e.kind = EventKind::pull_request;
    e.forge_event = "pull_request";
    e.action = std::move(action);
    e.changed_files.clear();
    PullRequest pr;
    pr.number = 42;
    pr.title = "Add login";
    pr.source_branch = "feature/x";
    pr.target_branch = "main";
    pr.head_sha = e.commit;
    e.pull_request = pr;
    return e;
}

// A RuleOutcome with texts of its own (a RuleOutcome's views live as long as its decision).
struct Outcome {
    std::string rule;
    bool matched = false;
    bool evaluated = true;
    std::string reason;
};

// The single rule's outcome for `event` under `when`.
inline Outcome outcome(std::vector<ConditionSpec> when, const Event& event) {
    auto set = compile({rule("r", std::move(when))});
    if (!set) {
        return {.rule = "<compile error>",
                .matched = false,
                .evaluated = false,
                .reason = "<compile error>"};
    }
    const auto d = set->evaluate(event);
    const auto& o = d.rules.at(0);
    return {std::string(o.rule), o.matched, o.evaluated, std::string(o.reason)};
}

}  // namespace hookrelay::rules::test
