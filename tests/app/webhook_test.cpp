// The webhook pipeline's pure parts: what prepare() answers, and how echoed values are bounded.
#include "app/webhook.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <string>

namespace hookrelay::app {
namespace {

constexpr std::string_view k_ellipsis = "\u2026";

TEST(Echoed, ShortValueIsUnchanged) {
    EXPECT_EQ(echoed("refs/heads/main"), "refs/heads/main");
    const std::string exactly(k_max_echoed_bytes, 'a');
    EXPECT_EQ(echoed(exactly), exactly);
}

TEST(Echoed, LongValueIsCutToTheLimitWithAnEllipsis) {
    const auto out = echoed("refs/heads/" + std::string(20'000'000, 'a'));
    EXPECT_EQ(out.size(), k_max_echoed_bytes);
    EXPECT_TRUE(out.starts_with("refs/heads/aaa"));
    EXPECT_TRUE(out.ends_with(k_ellipsis));
}

TEST(Echoed, NeverCutsAUtf8Character) {
    // 'é' is two bytes: wherever the cut falls, no half character may remain before the "…".
    for (std::size_t pad = 0; pad < 2; ++pad) {
        std::string value(pad, 'x');
        while (value.size() < 2 * k_max_echoed_bytes) value += "\u00e9";
        const auto out = echoed(value);
        EXPECT_LE(out.size(), k_max_echoed_bytes);
        const auto kept = std::string_view(out).substr(0, out.size() - k_ellipsis.size());
        EXPECT_EQ(kept, std::string_view(value).substr(0, kept.size()));
        // Only whole characters: no continuation byte right after the kept text in the input
        // means the cut fell on a character boundary.
        EXPECT_NE(static_cast<unsigned char>(value[kept.size()]) & 0xc0, 0x80) << pad;
        EXPECT_NO_THROW(boost::json::parse(boost::json::serialize(boost::json::string(out))));
    }
}

// What a request sent reaches `hookrelay status` through printable(): a path of bytes that are
// not UTF-8 made the API's JSON invalid (the CLI printed it raw), and C1 bytes reached the
// terminal as control sequences.
TEST(Printable, KeepsPrintableUtf8AndWritesEveryOtherByteAsHex) {
    EXPECT_EQ(printable("no webhook source at /hooks/gihtub"),
              "no webhook source at /hooks/gihtub");
    EXPECT_EQ(printable("/caf\u00e9/\u20ac/\U0001F600"), "/caf\u00e9/\u20ac/\U0001F600");
    EXPECT_EQ(printable("/\xff\x9b[2J"), "/\\xff\\x9b[2J");             // not UTF-8
    EXPECT_EQ(printable("/\xc2\x9b[2J"), "/\\xc2\\x9b[2J");             // C1 control (CSI)
    EXPECT_EQ(printable("a\x1b[31mb\x7f\n"), "a\\x1b[31mb\\x7f\\x0a");  // C0, DEL
    EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf");                     // overlong '/'
    EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");            // a UTF-16 surrogate
    EXPECT_EQ(printable("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");   // past U+10FFFF
    EXPECT_EQ(printable("\xe2\x82"), "\\xe2\\x82");                     // cut short
    const auto hostile = printable(std::string(4 * k_max_echoed_bytes, '\xff'));
    EXPECT_LE(hostile.size(), k_max_echoed_bytes);
    EXPECT_NO_THROW(boost::json::parse(boost::json::serialize(boost::json::string(hostile))));
}

Runtime runtime_with(const Config& config) {
    std::vector<ConfigError> errors;
    auto rules = rules::RuleSet::compile(config, errors);
    EXPECT_TRUE(errors.empty());
    return Runtime{std::make_shared<const Config>(config), rules, nullptr};
}

TEST(Prepare, BodyTooLargeToParseIs413NamingTheLimit) {
    Config config;
    config.server.parse_memory_limit = 1024 * 1024;
    SourceConfig source;
    source.name = "github";
    source.provider = Provider::github;
    source.insecure = true;
    config.sources.push_back(source);
    const auto runtime = runtime_with(config);

    std::string body = R"({"a":[0)";
    for (int i = 0; i < 100'000; ++i) body += ",0";
    body += "]}";
    const HeaderMap headers{{"Content-Type", "application/json"}, {"X-GitHub-Event", "push"}};
    const auto prepared = prepare(runtime, config.sources[0], headers, body);
    EXPECT_FALSE(prepared.event);
    EXPECT_EQ(prepared.status, 413u);
    // The answer's text exactly: members in this order, written as Boost.JSON wrote them.
    EXPECT_EQ(prepared.body,
              "{\"status\":\"rejected\",\"error\":\"payload too large to parse: more than 1 MiB "
              "of JSON structure (server.parse_memory_limit)\"}");

    config.server.parse_memory_limit = 64 * 1024 * 1024;
    const auto roomy = runtime_with(config);
    // Parsed now; it fails later, for want of a ref.
    EXPECT_EQ(prepare(roomy, config.sources[0], headers, body).status, 400u);
}

// A source of `provider` without credentials and one rule per kind of build, on Jenkins "ci".
Config config_for(Provider provider) {
    Config config;
    SourceConfig source;
    source.name = "src";
    source.provider = provider;
    source.insecure = true;
    config.sources.push_back(source);
    JenkinsConfig jenkins;
    jenkins.name = "ci";
    jenkins.url = "http://ci/";
    config.jenkins.push_back(jenkins);
    RuleSpec rule;
    rule.name = "branches";
    ConditionSpec event;
    event.kind = ConditionSpec::Kind::field;
    event.field = "event";
    event.patterns = {{"push", {}}};
    rule.when.children.push_back(event);
    TriggerSpec trigger;
    trigger.jenkins = "ci";
    trigger.job = {"b/{{ branch }}", {}};
    rule.triggers.push_back(trigger);
    config.rules.push_back(rule);
    return config;
}

constexpr std::string_view k_two_branch_push = R"({
  "push": {"changes": [
    {"new": {"type": "branch", "name": "main", "target": {"hash": "1111111111111111111111111111111111111111"}},
     "old": {"type": "branch", "name": "main", "target": {"hash": "2222222222222222222222222222222222222222"}},
     "created": false, "closed": false, "forced": false},
    {"new": null,
     "old": {"type": "branch", "name": "gone", "target": {"hash": "3333333333333333333333333333333333333333"}},
     "created": false, "closed": true, "forced": false},
    {"new": {"type": "branch", "name": "dev", "target": {"hash": "4444444444444444444444444444444444444444"}},
     "old": null, "created": true, "closed": false, "forced": false}]},
  "repository": {"full_name": "ws/app"}, "actor": {"username": "u"}})";

TEST(Prepare, EveryEventOfADeliveryIsEvaluated) {
    const auto config = config_for(Provider::bitbucket_cloud);
    const auto runtime = runtime_with(config);
    const HeaderMap headers{{"Content-Type", "application/json"},
                            {"X-Event-Key", "repo:push"},
                            {"X-Request-UUID", "r-1"}};
    const auto prepared = prepare(runtime, config.sources[0], headers, k_two_branch_push);
    ASSERT_TRUE(prepared.event);
    EXPECT_TRUE(prepared.record);
    EXPECT_EQ(prepared.event->branch, "main");
    ASSERT_EQ(prepared.more_events.size(), 2u);
    EXPECT_EQ(prepared.more_events[0].branch, "gone");
    EXPECT_EQ(prepared.more_events[1].branch, "dev");
    const auto& d = prepared.decision;
    EXPECT_EQ(d.events, 3u);
    // The deleted branch does not build; the other two do, each with its own event.
    ASSERT_EQ(d.triggers.size(), 2u);
    EXPECT_EQ(d.triggers[0].job, (std::vector<std::string>{"b", "main"}));
    EXPECT_EQ(d.triggers[1].job, (std::vector<std::string>{"b", "dev"}));
    EXPECT_EQ(d.trigger_events, (std::vector<std::size_t>{0, 2}));
    ASSERT_EQ(d.rules.size(), 3u);
    EXPECT_FALSE(d.rules[1].matched);
    EXPECT_EQ(d.rules[1].event, 1u);
    EXPECT_EQ(d.matched_rules(), std::vector<std::string>{"branches"});
    // The causes tell the builds apart.
    EXPECT_NE(d.triggers[0].cause.find("refs/heads/main"), std::string::npos);
    EXPECT_NE(d.triggers[1].cause.find("refs/heads/dev"), std::string::npos);

    const auto json = decision_json(d);
    EXPECT_EQ(json.at("triggers").at(1).at("event"), 2);
    EXPECT_EQ(json.at("rules").at(1).at("event"), 1);
}

TEST(Prepare, OneEventDecisionNamesNoEventIndex) {
    const auto config = config_for(Provider::bitbucket_cloud);
    const auto runtime = runtime_with(config);
    auto body = boost::json::parse(k_two_branch_push);
    body.at("push").at("changes").as_array().resize(1);
    const HeaderMap headers{{"Content-Type", "application/json"}, {"X-Event-Key", "repo:push"}};
    const auto prepared =
        prepare(runtime, config.sources[0], headers, boost::json::serialize(body));
    ASSERT_TRUE(prepared.event);
    EXPECT_TRUE(prepared.more_events.empty());
    const auto json = decision_json(prepared.decision);
    EXPECT_FALSE(json.at("triggers").at(0).as_object().contains("event"));
}

TEST(Prepare, StaleSignedTimestampIs401AtTheGivenTime) {
    auto config = config_for(Provider::gitlab);
    config.sources[0].insecure = false;
    config.sources[0].signing_tokens = {Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")};
    const auto runtime = runtime_with(config);
    // The Standard Webhooks specification's example, signed at 1614265330.
    const HeaderMap headers{
        {"Content-Type", "application/json"},
        {"X-Gitlab-Event", "System Hook"},
        {"webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"},
        {"webhook-timestamp", "1614265330"},
        {"webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}};
    const std::string body = R"({"test": 2432232314})";
    const auto signed_at = std::chrono::system_clock::time_point(std::chrono::seconds(1614265330));
    const auto fresh = prepare(runtime, config.sources[0], headers, body, true, signed_at);
    EXPECT_TRUE(fresh.event);
    EXPECT_EQ(fresh.event->delivery_id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
    const auto stale = prepare(runtime, config.sources[0], headers, body, true,
                               signed_at + std::chrono::minutes(6));
    EXPECT_FALSE(stale.event);
    EXPECT_EQ(stale.status, 401u);
    EXPECT_EQ(boost::json::parse(stale.body).at("error"),
              "signed timestamp outside the accepted window (a replay, or a clock that is off)");
}

TEST(MediaKind, FormBodiesOnlyForForgesThatSendThem) {
    for (const auto provider : {Provider::github, Provider::gitea, Provider::forgejo}) {
        EXPECT_EQ(media_kind(provider, "application/x-www-form-urlencoded"), "form");
    }
    for (const auto provider : {Provider::gitlab, Provider::bitbucket_cloud,
                                Provider::bitbucket_server, Provider::generic}) {
        EXPECT_EQ(media_kind(provider, "application/x-www-form-urlencoded"), "");
        EXPECT_EQ(media_kind(provider, "Application/JSON; charset=utf-8"), "json");
    }
}

}  // namespace
}  // namespace hookrelay::app
