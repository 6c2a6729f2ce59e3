// verify + parse + normalize + match (and render) for one GitHub push delivery: the work the
// daemon does per webhook before the store. Report figures with the command that produced them:
//   make bench   (or build/release/bench/ingest_bench)
#include "config/load.hpp"
#include "ingest/hmac.hpp"
#include "ingest/ingest.hpp"
#include "rules/rules.hpp"

#include <benchmark/benchmark.h>
#include <boost/json.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace {

using namespace hookrelay;

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

struct Setup {
    Setup() {
        const std::string root = HOOKRELAY_SOURCE_DIR;
        body = slurp(root + "/tests/data/github/push-branch-update.json");
        config::LoadOptions options;
        options.resolve_secrets = false;
        auto loaded = config::load_file(root + "/config/hookrelay.yaml", options);
        if (!loaded.errors.empty()) throw std::runtime_error(to_string(loaded.errors.front()));
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
    std::shared_ptr<Config> config;
    std::shared_ptr<const rules::RuleSet> rules;
    SourceConfig source;
    HeaderMap headers;
};

const Setup& setup() {
    static const Setup s;
    return s;
}

void BM_VerifyParseNormalizeMatch(benchmark::State& state) {
    const auto& s = setup();
    for (auto _ : state) {
        auto verified = ingest::verify(s.source, s.headers, s.body);
        auto parsed = ingest::parse_body("application/json", s.body);
        auto event = ingest::normalize(
            s.source, s.headers, std::make_shared<const boost::json::value>(std::move(*parsed)));
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

void BM_Parse(benchmark::State& state) {
    const auto& s = setup();
    for (auto _ : state) benchmark::DoNotOptimize(ingest::parse_body("application/json", s.body));
}
BENCHMARK(BM_Parse);

void BM_NormalizeAndMatch(benchmark::State& state) {
    const auto& s = setup();
    auto payload = std::make_shared<const boost::json::value>(
        std::move(*ingest::parse_body("application/json", s.body)));
    for (auto _ : state) {
        auto event = ingest::normalize(s.source, s.headers, payload);
        benchmark::DoNotOptimize(s.rules->evaluate(*event));
    }
}
BENCHMARK(BM_NormalizeAndMatch);

}  // namespace

BENCHMARK_MAIN();
