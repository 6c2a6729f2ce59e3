// The store on its own, through the Store interface: submit latency (one at a time), group
// commit throughput (64 in flight), the store thread's CPU per delivery by group size (SQLite),
// and claim + complete throughput, for whichever backend HOOKRELAY_BENCH_STORE names:
//   sqlite:<state dir>      e.g. sqlite:/tmp/bench-state
//   postgres:<libpq URL>    e.g. postgres:host=/tmp/pg port=5432 dbname=bench
// bench/store/run.sh runs it against both, PostgreSQL on a throwaway local server with fsync on.
#include "store/factory.hpp"

#include <benchmark/benchmark.h>

#include <atomic>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace hookrelay;
using Clock = std::chrono::system_clock;

std::shared_ptr<Store> open_bench_store() {
    const char* spec = std::getenv("HOOKRELAY_BENCH_STORE");
    if (!spec) throw std::runtime_error("set HOOKRELAY_BENCH_STORE (see bench/store_bench.cpp)");
    const std::string s = spec;
    Config config;
    config.store.prune_interval = std::chrono::milliseconds(0);
    if (s.rfind("sqlite:", 0) == 0) {
        config.store.backend = StoreConfig::Backend::sqlite;
        config.state_dir = s.substr(7);
    } else if (s.rfind("postgres:", 0) == 0) {
        config.store.backend = StoreConfig::Backend::postgres;
        config.store.postgres.url = Secret(s.substr(9));
    } else {
        throw std::runtime_error("HOOKRELAY_BENCH_STORE: sqlite:<dir> or postgres:<url>");
    }
    store::OpenOptions options;
    options.version = "bench";
    options.lock_state_dir = false;
    std::string why;
    auto opened = store::open_store(config, options, &why);
    if (!opened) throw std::runtime_error("cannot open the store: " + why);
    return *opened;
}

std::atomic<std::int64_t> g_commits{0};
std::atomic<std::int64_t> g_commit_micros{0};

Store& bench_store() {
    static const std::shared_ptr<Store> store = [] {
        auto s = open_bench_store();
        s->on_commit_stats([](std::chrono::duration<double> seconds, std::size_t) {
            ++g_commits;
            g_commit_micros += static_cast<std::int64_t>(seconds.count() * 1e6);
        });
        return s;
    }();
    return *store;
}

/// Deliveries per submit transaction and the transactions' mean duration, since `commits`.
void report_commits(benchmark::State& state, std::int64_t commits, std::int64_t micros,
                    std::int64_t deliveries) {
    const auto n = g_commits.load() - commits;
    if (n <= 0) return;
    state.counters["per_commit"] = static_cast<double>(deliveries) / static_cast<double>(n);
    state.counters["commit_ms"] =
        static_cast<double>(g_commit_micros.load() - micros) / 1000.0 / static_cast<double>(n);
}

DeliveryRecord delivery(std::uint64_t n) {
    static const std::string run = std::to_string(Clock::now().time_since_epoch().count());
    DeliveryRecord d;
    d.source = "github";
    d.delivery_id = run + "-" + std::to_string(n);
    d.kind = EventKind::push;
    d.forge_event = "push";
    d.received_at = Clock::now() - std::chrono::seconds(1);
    d.headers = {{"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", d.delivery_id}};
    d.body = std::string(8 * 1024, 'x');  // about the size of a GitHub push payload
    return d;
}

TriggerRequest trigger() {
    TriggerRequest t;
    t.rule = "build";
    t.jenkins = "bench";
    t.job = {"acme", "app", "main"};
    t.parameters = {{"BRANCH", "main"}, {"SHA", "0123456789abcdef"}};
    t.cause = "bench";
    return t;
}

std::uint64_t next_delivery() {
    static std::atomic<std::uint64_t> n{0};
    return n++;
}

/// Submits `count` deliveries at once (each with one trigger) and waits for every answer.
/// `body`, when given, replaces the benchmark's body of 8 KiB of one byte.
void submit_many(Store& store, int count, const std::string* body = nullptr) {
    std::vector<std::future<bool>> answers;
    for (int i = 0; i < count; ++i) {
        auto promise = std::make_shared<std::promise<bool>>();
        answers.push_back(promise->get_future());
        auto d = delivery(next_delivery());
        if (body != nullptr) d.body = *body;
        store.submit(std::move(d), {trigger()},
                     [promise](result<Receipt> r) { promise->set_value(r.has_value()); });
    }
    for (auto& a : answers) {
        if (!a.get()) throw std::runtime_error("a submit failed");
    }
}

void BM_SubmitOneAtATime(benchmark::State& state) {
    Store& store = bench_store();
    const auto commits = g_commits.load();
    const auto micros = g_commit_micros.load();
    for (auto _ : state) submit_many(store, 1);
    state.SetItemsProcessed(state.iterations());
    report_commits(state, commits, micros, state.iterations());
}
BENCHMARK(BM_SubmitOneAtATime)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_SubmitConcurrently(benchmark::State& state) {
    Store& store = bench_store();
    const int in_flight = static_cast<int>(state.range(0));
    const auto commits = g_commits.load();
    const auto micros = g_commit_micros.load();
    for (auto _ : state) submit_many(store, in_flight);
    state.SetItemsProcessed(state.iterations() * in_flight);
    report_commits(state, commits, micros, state.iterations() * in_flight);
}
BENCHMARK(BM_SubmitConcurrently)->Arg(64)->UseRealTime()->Unit(benchmark::kMillisecond);

/// The CPU time the SQLite store's thread (hookrelay-store) has used, in nanoseconds, from
/// /proc/self/task/<tid>/schedstat; nothing for a store without that thread (PostgreSQL).
std::optional<std::int64_t> store_thread_cpu_ns() {
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream comm(task.path() / "comm");
        std::string name;
        if (!std::getline(comm, name) || name != "hookrelay-store") continue;
        std::ifstream schedstat(task.path() / "schedstat");
        std::int64_t ns = 0;
        if (schedstat >> ns) return ns;
    }
    return std::nullopt;
}

/// The 8.8 KB GitHub push the load benchmarks send: it compresses as real payloads do (to ~2.9
/// KB), where 8 KiB of one byte compresses to almost nothing.
const std::string& push_body() {
    static const std::string body = [] {
        std::ifstream in(std::string(HOOKRELAY_SOURCE_DIR) +
                         "/tests/data/github/push-branch-update.json");
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (text.empty()) throw std::runtime_error("cannot read the push fixture");
        return text;
    }();
    return body;
}

/// Groups of `range(0)` deliveries of the push fixture, each with one trigger, submitted at once:
/// what a group commit of that size costs the store's thread per delivery (store_us, SQLite),
/// inserts, commit with its fsync and checkpoints included. The load benchmark's 32 connections
/// make transactions of 8-14 deliveries.
void BM_SubmitInGroups(benchmark::State& state) {
    Store& store = bench_store();
    const int group = static_cast<int>(state.range(0));
    const auto commits = g_commits.load();
    const auto micros = g_commit_micros.load();
    const auto cpu_before = store_thread_cpu_ns();
    for (auto _ : state) submit_many(store, group, &push_body());
    const auto cpu_after = store_thread_cpu_ns();
    const auto deliveries = state.iterations() * group;
    state.SetItemsProcessed(deliveries);
    report_commits(state, commits, micros, deliveries);
    if (cpu_before && cpu_after && deliveries > 0) {
        state.counters["store_us"] = static_cast<double>(*cpu_after - *cpu_before) / 1000.0 /
                                     static_cast<double>(deliveries);
    }
}
BENCHMARK(BM_SubmitInGroups)
    ->Arg(8)
    ->Arg(32)
    ->Arg(64)
    ->Arg(256)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

/// Claims `limit` due triggers and completes each as delivered; the time covers both.
void BM_ClaimAndComplete(benchmark::State& state) {
    Store& store = bench_store();
    const auto limit = static_cast<std::size_t>(state.range(0));
    std::size_t done = 0;
    for (auto _ : state) {
        ClaimRequest request;
        request.jenkins = "bench";
        request.limit = limit;
        request.now = Clock::now();
        std::promise<result<ClaimBatch>> claimed;
        store.claim(request, [&](result<ClaimBatch> r) { claimed.set_value(std::move(r)); });
        auto batch = claimed.get_future().get();
        if (!batch) throw std::runtime_error("claim failed");
        if (batch->claims.size() < limit) {
            state.PauseTiming();
            submit_many(store, 2'000);
            state.ResumeTiming();
        }
        std::vector<std::future<bool>> completions;
        for (const Claim& c : batch->claims) {
            TriggerUpdate u;
            u.id = c.trigger.id;
            u.state = TriggerState::delivered;
            u.next_attempt_at = request.now;
            u.attempt.at = request.now;
            u.attempt.http_status = 201;
            u.attempt.outcome = "queued";
            auto promise = std::make_shared<std::promise<bool>>();
            completions.push_back(promise->get_future());
            store.complete(c.claim_id, std::move(u), [promise](result<Completion> r) {
                promise->set_value(r && *r == Completion::applied);
            });
        }
        for (auto& f : completions) {
            if (!f.get()) throw std::runtime_error("a completion failed");
        }
        done += batch->claims.size();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(done));
}
BENCHMARK(BM_ClaimAndComplete)->Arg(1)->Arg(32)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
