// The index RuleSet::compile builds (rules decided from the event's kind, forge or one field's
// value, literal patterns compared as text, each field read once per event) must not change a
// single decision: what matched, what was queued, and every other rule's reason, as the webhook
// answer, `deliveries show` and `explain` show them. Checked against the reference evaluation
// (CompileOptions::reference: every pattern through RE2, no index) on a varied set of rules and
// deliveries.
#include "rules/builders.hpp"
#include "rules/pattern.hpp"
#include "support/json_document.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <sstream>

namespace hookrelay::rules {
namespace {

using namespace test;

std::shared_ptr<const RuleSet> compile_with(std::vector<RuleSpec> rules, bool reference) {
    std::vector<ConfigError> errors;
    auto set = RuleSet::compile(config(std::move(rules)), errors, {.reference = reference});
    for (const auto& e : errors) ADD_FAILURE() << to_string(e);
    return set;
}

// Everything a user can see of a decision, one line each.
std::vector<std::string> lines(const Decision& d) {
    std::vector<std::string> out;
    out.push_back("events " + std::to_string(d.events));
    for (const auto& r : d.rules) {
        std::ostringstream line;
        line << "rule " << r.rule << " event " << r.event << (r.matched ? " matched" : " skipped")
             << (r.evaluated ? "" : " not-evaluated") << ": " << r.reason;
        out.push_back(line.str());
    }
    for (std::size_t i = 0; i < d.triggers.size(); ++i) {
        const auto& t = d.triggers[i];
        std::ostringstream line;
        line << "trigger " << t.rule << " event " << d.trigger_events.at(i) << " " << t.jenkins
             << " job";
        for (const auto& s : t.job) line << " /" << s;
        for (const auto& [k, v] : t.parameters) line << " " << k << "=" << v;
        line << " coalesce=" << t.coalesce << " cause=" << t.cause;
        out.push_back(line.str());
    }
    for (const auto& f : d.failures) {
        out.push_back("failure " + f.rule + " event " + std::to_string(f.event) + ": " + f.reason);
    }
    return out;
}

TriggerSpec job_for(std::string job) {
    return trigger(std::move(job), {{"BRANCH", "{{ branch | default('-') }}"}});
}

// Rules as a large config has them: literal, glob, regex and negated patterns on closed and open
// fields, in different orders, nested any/not, payload fields, paths, and stop rules.
std::vector<RuleSpec> varied_rules() {
    std::vector<RuleSpec> rules;
    auto add = [&](std::string name, std::vector<ConditionSpec> when, bool stop = false) {
        rules.push_back(rule(std::move(name), std::move(when), {job_for("acme/app")}, stop));
    };
    for (int i = 0; i < 3; ++i) {
        const auto n = std::to_string(i);
        add("push-" + n, {field("event", {"push"}), field("repository", {"acme/svc" + n}),
                          field("branch", {"main", "release/*"})});
        add("repo-first-" + n, {field("repository", {"acme/app", "acme/svc" + n}),
                                field("event", {"push", "tag"}), field("branch", {"develop"})});
        add("pr-" + n,
            {field("event", {"pull_request"}), field("action", {"opened", "synchronize"}),
             field("repository", {"acme/svc" + n})});
    }
    add("app-main",
        {field("event", {"push"}), field("repository", {"acme/app"}), field("branch", {"main"})});
    add("app-any-branch", {field("repository", {"acme/app"}), field("branch", {"re:.+"})});
    add("event-glob", {field("event", {"pull_*"}), field("repository", {"acme/*"})});
    add("event-negated", {field("event", {"!ping", "!other"}), field("actor", {"octo"})});
    add("event-regex", {field("event", {"re:(push|tag)"}), field("tag", {"v*"})});
    add("provider-gitlab", {field("provider", {"gitlab"}), field("branch", {"main"})});
    add("provider-not-github", {field("provider", {"!github"}), field("event", {"push"})});
    add("source-literal", {field("source", {"gitlab-main"}), field("event", {"push"})});
    add("source-glob", {field("source", {"git*"}), field("branch", {"main"})});
    add("branch-first", {field("branch", {"feature/x"}), field("repository", {"acme/app"})});
    add("branch-negated", {field("branch", {"!main"}), field("event", {"push"})});
    add("tag-literal", {field("tag", {"v1.2.0"}), field("event", {"tag"})});
    add("boolean", {field("deleted", {"true"}), field("repository", {"acme/app"})});
    add("created", {field("created", {"false"}), field("event", {"push"}),
                    field("repository", {"acme/other"})});
    add("payload", {field("payload.sender.login", {"octo"}), field("event", {"push"})});
    add("payload-unset", {field("payload.nothing.here", {"x"})});
    add("pr-field",
        {field("pull_request.target_branch", {"main"}), field("pull_request.draft", {"false"})});
    add("paths", {field("event", {"push"}), field("paths", {"src/**", "!docs/**"})});
    add("message", {field("message", {"re:(?s).*skip ci.*"})});
    add("special-literals",
        {field("repository", {"acme/a.b+c", "acme/x]y", "acme/}"}), field("branch", {"a,b"})});
    add("any-not", {field("event", {"push"}),
                    any({all({field("branch", {"main"})}), all({field("tag", {"re:v.*"})})}),
                    not_({all({field("actor", {"re:.*\\[bot\\]"})})})});
    add("nested-all", {all({field("event", {"push"}), field("repository", {"acme/app"})}),
                       field("branch", {"main"})});
    add("other-action", {field("event", {"other"}), field("action", {"completed"})});
    add("release", {field("event", {"release"}), field("action", {"published"}),
                    field("repository", {"acme/app"})});
    add("matches-all", {});
    add("stop-on-bots", {field("repository", {"acme/app"}), field("actor", {"*[[]bot[]]"})},
        /*stop=*/true);
    add("after-stop", {field("event", {"push"})});
    return rules;
}

// Deliveries of every kind, from several forges, with unset, long and deleted values.
std::vector<Event> varied_events() {
    std::vector<Event> events;
    auto payload = [](std::string login) {
        return hookrelay::test::document(
            boost::json::object{{"sender", boost::json::object{{"login", login}}}});
    };
    auto main = push_event("main");
    main.payload = payload("octo");
    events.push_back(main);
    events.push_back(push_event("feature/x"));
    events.push_back(push_event("develop"));
    auto svc = push_event("release/2.0");
    svc.repository.full_name = "acme/svc1";
    events.push_back(svc);
    auto deleted = push_event("main");
    deleted.deleted = true;
    deleted.commit.clear();
    events.push_back(deleted);
    auto created = push_event("main");
    created.created = true;
    events.push_back(created);
    auto docs = push_event("main");
    docs.changed_files = {"docs/index.md"};
    events.push_back(docs);
    auto bot = push_event("main");
    bot.actor = "renovate[bot]";
    bot.message = "Update deps\n\nskip ci please, this is a long message that goes on and on";
    events.push_back(bot);
    auto special = push_event("a,b");
    special.repository.full_name = "acme/a.b+c";
    events.push_back(special);
    auto unicode = push_event("fëature/ünïcode");
    unicode.repository.full_name = "acme/x]y";
    events.push_back(unicode);
    events.push_back(tag_event("v1.2.0"));
    events.push_back(pull_request_event("opened"));
    auto pr_svc = pull_request_event("synchronize");
    pr_svc.repository.full_name = "acme/svc2";
    events.push_back(pr_svc);
    auto merged = pull_request_event("closed");
    merged.pull_request->merged = true;
    events.push_back(merged);
    auto release = tag_event("v2.0.0");
    release.kind = EventKind::release;
    release.action = "published";
    events.push_back(release);
    auto ping = push_event();
    ping.kind = EventKind::ping;
    events.push_back(ping);
    auto other = push_event();
    other.kind = EventKind::other;
    other.forge_event = "workflow_run";
    other.action = "completed";
    other.branch.clear();
    events.push_back(other);
    auto gitlab = push_event("main");
    gitlab.source = "gitlab-main";
    gitlab.provider = Provider::gitlab;
    events.push_back(gitlab);
    auto gitea = pull_request_event("opened");
    gitea.source = "gitea";
    gitea.provider = Provider::gitea;
    events.push_back(gitea);
    return events;
}

TEST(RuleIndex, DecisionsEqualTheReferenceEvaluation) {
    const auto indexed = compile_with(varied_rules(), /*reference=*/false);
    const auto reference = compile_with(varied_rules(), /*reference=*/true);
    ASSERT_TRUE(indexed && reference);
    std::size_t matched = 0;
    std::size_t skipped = 0;
    for (const auto& event : varied_events()) {
        const auto want = reference->evaluate(event);
        EXPECT_EQ(lines(indexed->evaluate(event)), lines(want))
            << "event " << to_string(event.kind) << " on " << event.repository.full_name << " "
            << event.ref;
        for (const auto& r : want.rules) (r.matched ? matched : skipped) += 1;
    }
    // The corpus exercises both sides.
    EXPECT_GT(matched, 40u);
    EXPECT_GT(skipped, 400u);
}

TEST(RuleIndex, MultiEventDecisionsEqualTheReferenceEvaluation) {
    const auto indexed = compile_with(varied_rules(), /*reference=*/false);
    const auto reference = compile_with(varied_rules(), /*reference=*/true);
    ASSERT_TRUE(indexed && reference);
    const auto events = varied_events();
    EXPECT_EQ(lines(indexed->evaluate(events)), lines(reference->evaluate(events)));
}

// The store writes a beginning that reasons share once per delivery (store::RuleReasonsWriter):
// a rule the index decides says how much of its reason is the field, the event's value and
// "matches none of", or that the whole of a fixed reason is shared; a reason of the rule's own
// shares nothing.
TEST(RuleIndex, AReasonSaysHowMuchOfItsBeginningOtherRulesShare) {
    const auto set = compile({
        rule("a", {field("event", {"push"}), field("repository", {"acme/a"})}),
        rule("b", {field("repository", {"acme/b", "acme/c"})}),
        rule("prs", {field("event", {"pull_request"})}),
        rule("glob", {field("branch", {"dev*"})}),
    });
    ASSERT_TRUE(set);
    const auto d = set->evaluate(push_event());
    ASSERT_EQ(d.rules.size(), 4u);
    const std::string_view head = "repository: 'acme/app' matches none of ";
    for (std::size_t i : {0, 1}) {
        EXPECT_EQ(d.rules[i].shared, head.size()) << d.rules[i].reason;
        EXPECT_EQ(d.rules[i].reason.substr(0, d.rules[i].shared), head);
    }
    EXPECT_EQ(d.rules[2].shared, d.rules[2].reason.size());
    EXPECT_EQ(d.rules[3].reason, "branch: 'main' matches none of [dev*]");
    EXPECT_EQ(d.rules[3].shared, 0u);

    const auto varied = compile_with(varied_rules(), /*reference=*/false);
    ASSERT_TRUE(varied);
    std::size_t sharing = 0;
    for (const auto& event : varied_events()) {
        for (const auto& r : varied->evaluate(event).rules) {
            EXPECT_LE(r.shared, r.reason.size()) << r.rule << ": " << r.reason;
            if (r.shared > 0) ++sharing;
        }
    }
    EXPECT_GT(sharing, 100u);
}

TEST(RuleIndex, RuleOfAnotherRepositoryGivesItsReason) {
    const auto set = compile(
        {rule("other", {field("event", {"push"}), field("repository", {"acme/a", "acme/b"})})});
    ASSERT_TRUE(set);
    EXPECT_EQ(set->evaluate(push_event()).rules.at(0).reason,
              "repository: 'acme/app' matches none of [acme/a, acme/b]");
}

TEST(RuleIndex, RuleOfAnotherEventGivesItsReason) {
    const auto set = compile(
        {rule("prs", {field("event", {"pull_request"}), field("repository", {"acme/app"})})});
    ASSERT_TRUE(set);
    EXPECT_EQ(set->evaluate(push_event()).rules.at(0).reason,
              "event: 'push' matches none of [pull_request]");
}

TEST(RuleIndex, RuleOfAnotherForgeGivesItsReason) {
    const auto set = compile({rule("gitlab", {field("provider", {"gitlab"})})});
    ASSERT_TRUE(set);
    EXPECT_EQ(set->evaluate(push_event()).rules.at(0).reason,
              "provider: 'github' matches none of [gitlab]");
}

TEST(RuleIndex, UnsetFieldOfALiteralConditionGivesItsReason) {
    const auto set = compile({rule("tags", {field("tag", {"v1.0.0"})})});
    ASSERT_TRUE(set);
    EXPECT_EQ(set->evaluate(push_event()).rules.at(0).reason, "tag is not set for a push event");
}

TEST(RuleIndex, LongValueIsCutInTheReason) {
    auto event = push_event();
    event.repository.full_name = "acme/" + std::string(100, 'x');
    const auto set = compile({rule("r", {field("repository", {"acme/app"})})});
    ASSERT_TRUE(set);
    EXPECT_EQ(set->evaluate(event).rules.at(0).reason,
              "repository: 'acme/" + std::string(52, 'x') + "...' matches none of [acme/app]");
}

// Each of `patterns` compiles, is literal or not as `literal` says, and matches each of `values`
// exactly when its RE2 translation does.
void expect_matches_as_its_regex(const std::vector<std::string>& patterns, bool literal,
                                 const std::vector<std::string>& values) {
    for (const auto& text : patterns) {
        auto p = Pattern::compile(text);
        ASSERT_TRUE(p) << text;
        EXPECT_EQ(p->literal(), literal) << text;
        for (const auto& v : values) {
            EXPECT_EQ(p->matches(v), p->matches_by_regex(v)) << text << " on '" << v << "'";
        }
    }
}

TEST(PatternLiteral, MatchesExactlyWhatItsRegexMatches) {
    const std::vector<std::string> patterns = {"main", "acme/a.b+c", "x]y",         "}",
                                               "a,b",  "a b",        "back\\slash", "(x)",
                                               "$^|",  "ünï",        "!main",       "!a.b"};
    const std::vector<std::string> values = {
        "main",        "Main", "main ", "acme/a.b+c", "acme/aXb+c", "x]y", "}",   "a,b", "a b",
        "back\\slash", "(x)",  "$^|",   "ünï",        "uni",        "a.b", "aXb", "",    "main\n"};
    expect_matches_as_its_regex(patterns, /*literal=*/true, values);
}

// A glob runs RE2 only on values that start with its text before the first wildcard: the
// shortcut must never decide otherwise than RE2 would.
TEST(PatternPrefix, GlobsMatchExactlyWhatTheirRegexMatches) {
    const std::vector<std::string> patterns = {
        "release/*", "team-a/*", "!team-a/*", "src/**",      "**/*.md",   "v?.*",
        "x]y*",      "a,b*",     "}*",        "ac{me,ne}/*", "acme/[ab]", "*/app",
        "feat/**/x", "ün*",      "[!a]*",     "{main,dev}",  "re/*"};
    const std::vector<std::string> values = {
        "release/1",  "release/", "release",   "releases/1",  "team-a/app", "team-b/app",
        "src/a/b.cc", "src",      "README.md", "docs/x.md",   "v1.2",       "x]yz",
        "a,bc",       "}x",       "acme/x",    "acne/x",      "acme/a",     "acme/c",
        "org/app",    "feat/x",   "feat/a/x",  "ünï",         "b",          "main",
        "dev",        "",         "re/x",      "release/1\nx"};
    expect_matches_as_its_regex(patterns, /*literal=*/false, values);
}

TEST(PatternLiteral, WildcardsClassesBracesAndRegexesAreNotLiteral) {
    for (const auto* text : {"release/*", "v?", "[ab]", "{a,b}", "re:main", "!docs/**"}) {
        auto p = Pattern::compile(text);
        ASSERT_TRUE(p) << text;
        EXPECT_FALSE(p->literal()) << text;
    }
}

}  // namespace
}  // namespace hookrelay::rules
