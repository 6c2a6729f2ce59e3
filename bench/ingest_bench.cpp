// verify + parse + normalize + match (and render) for one GitHub push delivery: the work the
// daemon does per webhook before the store. Report figures with the command that produced them:
//   make bench   (or build/release/bench/ingest_bench)
#include "config/load.hpp"
#include "ingest/hmac.hpp"
#include "ingest/ingest.hpp"
#include "rules/rules.hpp"
#include "store/codec.hpp"

#include <benchmark/benchmark.h>
#include <boost/json.hpp>

#include <cstddef>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

namespace {

using namespace hookrelay;

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

// `count` rules as an admin of a large forge might write them: the shipped config's three, then
// rules for many other repositories (most name their repository literally), different events
// (push, pull requests, tags, releases), both sources, a few with RE2 regexes, globs, any/not and
// payload conditions. None of the generated rules matches the benchmark's delivery (a push to
// main of woodpecker-ci/woodpecker) except two: one a third of the way down, one two thirds.
// With the shipped rule, the delivery then queues 3 triggers (the shipped config alone: 1).
std::string generated_rules(std::size_t count) {
    std::string out;
    const std::size_t extra = count > 3 ? count - 3 : 0;
    for (std::size_t i = 0; i < extra; ++i) {
        const auto n = std::to_string(i);
        const auto org = "org" + std::to_string(i % 40);
        const auto repo = org + "/svc" + n;
        out += "  - name: rule-" + n + "\n    when:\n";
        std::string job = "      job: \"" + repo + "/{{ branch }}\"\n";
        if (i == extra / 3) {
            out +=
                "      event: push\n      repository: woodpecker-ci/woodpecker\n"
                "      branch: main\n";
        } else if (i == 2 * extra / 3) {
            out += "      repository: \"woodpecker-ci/*\"\n      paths: [\"pipeline/**\"]\n";
        } else {
            // Of every 20 rules: 6 branch builds, 3 path-filtered builds written repository
            // first, 3 pull request rules, and one each of the rest.
            const auto k = i % 20;
            if (k < 6) {
                out += "      event: push\n      repository: " + repo +
                       "\n      branch: [main, \"release/*\"]\n";
            } else if (k < 9) {
                out += "      repository: " + repo +
                       "\n      event: push\n      branch: [develop, main]\n"
                       "      paths: [\"src/**\", \"!docs/**\"]\n";
            } else if (k < 12) {
                out +=
                    "      event: pull_request\n      action: [opened, synchronize, reopened]\n"
                    "      repository: " +
                    repo + "\n      pull_request.target_branch: main\n";
                job = "      job: \"pr/svc" + n + "\"\n";
            } else if (k == 12) {
                out += "      event: tag\n      repository: " + repo +
                       "\n      tag: \"re:v[0-9]+(\\\\.[0-9]+)*\"\n";
                job = "      job: \"release/svc" + n + "/{{ tag }}\"\n";
            } else if (k == 13) {
                out += "      source: gitlab\n      event: push\n      repository: group/sub/svc" +
                       n + "\n      branch: main\n";
            } else if (k == 14) {
                out += "      event: release\n      action: published\n      repository: " + repo +
                       "\n";
                job = "      job: \"publish/svc" + n + "\"\n";
            } else if (k == 15) {
                out += "      repository: \"team" + n + "/*\"\n      event: push\n" +
                       "      branch: \"re:(main|hotfix/[0-9]+)\"\n";
            } else if (k == 16) {
                out += "      event: push\n      repository: " + repo +
                       "\n      any:\n        - {branch: main}\n"
                       "        - {branch: \"re:stable-[0-9]+\"}\n"
                       "      not: {actor: \"re:.*\\\\[bot\\\\]\"}\n";
            } else if (k == 17) {
                out += "      event: push\n      repository: " + repo +
                       "\n      payload.sender.type: User\n";
            } else if (k == 18) {
                out += "      branch: \"feature/*\"\n      repository: " + repo + "\n";
            } else {
                out +=
                    "      provider: gitlab\n      event: pull_request\n      repository: " + repo +
                    "\n";
                job = "      job: \"mr/svc" + n + "\"\n";
            }
        }
        out += "    trigger:\n      jenkins: ci\n" + job;
    }
    return out;
}

struct Setup {
    explicit Setup(std::size_t rule_count = 3) {
        const std::string root = HOOKRELAY_SOURCE_DIR;
        body = slurp(root + "/tests/data/github/push-branch-update.json");
        config::LoadOptions options;
        options.resolve_secrets = false;
        yaml = slurp(root + "/config/hookrelay.yaml") + generated_rules(rule_count);
        auto loaded = config::load_string(yaml, "hookrelay.yaml", options);
        if (!loaded.errors.empty()) throw std::runtime_error(to_string(loaded.errors.front()));
        if (loaded.config->rules.size() != rule_count) throw std::runtime_error("rule count");
        config = loaded.config;
        std::vector<ConfigError> errors;
        rules = rules::RuleSet::compile(*config, errors);
        if (!rules) throw std::runtime_error(to_string(errors.front()));
        source = *config->find_source("github");
        source.secrets = {Secret("bench-secret")};
        headers =
            HeaderMap{{"Content-Type", "application/json"},
                      {"X-GitHub-Event", "push"},
                      {"X-GitHub-Delivery", "42d9de75-72c0-558a-b67d-00b9a0e3ec66"},
                      {"X-Hub-Signature-256",
                       "sha256=" + ingest::hmac_hex(ingest::Digest::sha256, "bench-secret", body)}};
    }
    std::string body;
    std::string yaml;
    std::shared_ptr<Config> config;
    std::shared_ptr<const rules::RuleSet> rules;
    SourceConfig source;
    HeaderMap headers;
};

const Setup& setup() {
    static const Setup s;
    return s;
}

const Setup& setup(std::size_t rule_count) {
    static std::map<std::size_t, std::unique_ptr<const Setup>> setups;
    auto& s = setups[rule_count];
    if (!s) s = std::make_unique<const Setup>(rule_count);
    return *s;
}

void BM_VerifyParseNormalizeMatch(benchmark::State& state) {
    const auto& s = setup();
    for (auto _ : state) {
        auto verified = ingest::verify(s.source, s.headers, s.body);
        auto parsed = ingest::parse_body("application/json", s.body);
        auto event = ingest::normalize(s.source, s.headers, std::move(*parsed));
        auto decision = s.rules->evaluate(*event);
        if (!verified || decision.triggers.size() != 1) state.SkipWithError("unexpected result");
        benchmark::DoNotOptimize(decision);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * s.body.size()));
}
BENCHMARK(BM_VerifyParseNormalizeMatch);

void BM_Verify(benchmark::State& state) {
    const auto& s = setup();
    for (auto _ : state) benchmark::DoNotOptimize(ingest::verify(s.source, s.headers, s.body));
}
BENCHMARK(BM_Verify);

// Both network threads verifying at once, as under load: what they share in OpenSSL (its method
// store, behind a lock) shows here and not above. The CPU column is per verification.
void BM_VerifyOnTwoThreads(benchmark::State& state) {
    static const Setup& s = setup();  // set up once, whichever thread comes first
    for (auto _ : state) benchmark::DoNotOptimize(ingest::verify(s.source, s.headers, s.body));
}
BENCHMARK(BM_VerifyOnTwoThreads)->Threads(2);

// The body's SHA-256, which every stored delivery keeps (computed by the store: on the network
// thread, or with the SQLite intake log on the store's thread behind the answer).
void BM_BodyDigest(benchmark::State& state) {
    const auto& s = setup();
    for (auto _ : state) benchmark::DoNotOptimize(store::sha256_hex(s.body));
}
BENCHMARK(BM_BodyDigest);

void BM_Parse(benchmark::State& state) {
    const auto& s = setup();
    for (auto _ : state) benchmark::DoNotOptimize(ingest::parse_body("application/json", s.body));
}
BENCHMARK(BM_Parse);

void BM_NormalizeAndMatch(benchmark::State& state) {
    const auto& s = setup();
    const auto payload = *ingest::parse_body("application/json", s.body);
    for (auto _ : state) {
        auto event = ingest::normalize(s.source, s.headers, payload);
        benchmark::DoNotOptimize(s.rules->evaluate(*event));
    }
}
BENCHMARK(BM_NormalizeAndMatch);

// The whole per-delivery work, as BM_VerifyParseNormalizeMatch, for rule sets of 3 (the shipped
// config) to 10,000 rules (generated_rules above).
void BM_DeliveryByRuleCount(benchmark::State& state) {
    const auto& s = setup(static_cast<std::size_t>(state.range(0)));
    const std::size_t expected = s.config->rules.size() > 3 ? 3 : 1;
    for (auto _ : state) {
        auto verified = ingest::verify(s.source, s.headers, s.body);
        auto parsed = ingest::parse_body("application/json", s.body);
        auto event = ingest::normalize(s.source, s.headers, std::move(*parsed));
        auto decision = s.rules->evaluate(*event);
        if (!verified || decision.triggers.size() != expected ||
            decision.rules.size() != s.config->rules.size()) {
            state.SkipWithError("unexpected result");
        }
        benchmark::DoNotOptimize(decision);
    }
}
BENCHMARK(BM_DeliveryByRuleCount)->Arg(3)->Arg(100)->Arg(1'000)->Arg(10'000);

// Matching (and rendering) alone, on an already normalized event: how it grows with the rules.
void BM_MatchByRuleCount(benchmark::State& state) {
    const auto& s = setup(static_cast<std::size_t>(state.range(0)));
    const auto payload = *ingest::parse_body("application/json", s.body);
    const auto event = ingest::normalize(s.source, s.headers, payload);
    for (auto _ : state) benchmark::DoNotOptimize(s.rules->evaluate(*event));
}
BENCHMARK(BM_MatchByRuleCount)->Arg(3)->Arg(100)->Arg(1'000)->Arg(10'000);

// What a config load (start-up, reload) pays once: parse the YAML and compile every rule.
void BM_LoadAndCompileRules(benchmark::State& state) {
    const auto& s = setup(static_cast<std::size_t>(state.range(0)));
    config::LoadOptions options;
    options.resolve_secrets = false;
    for (auto _ : state) {
        auto loaded = config::load_string(s.yaml, "hookrelay.yaml", options);
        std::vector<ConfigError> errors;
        auto rules = rules::RuleSet::compile(*loaded.config, errors);
        if (!rules) state.SkipWithError("compile failed");
        benchmark::DoNotOptimize(rules);
    }
}
BENCHMARK(BM_LoadAndCompileRules)->Arg(3)->Arg(1'000)->Arg(10'000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
