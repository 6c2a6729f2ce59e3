// Fills a SQLite state_dir (or, with SCALE_FILL_DATABASE_URL set to a libpq URL, that PostgreSQL
// database) with N pending triggers through the store's own code path
// (open_store() and submit(), the daemon's schema and write path), many submits in flight at
// once so that they group-commit. bench/scale/run.sh uses it to build a large backlog quickly.
//
//   scale_fill <state_dir> <count> <body_file> <jenkins> <job/segments>
//              [in_flight [unmatched_every [aged [age_seconds [bodies [aged_span_seconds]]]]]]
//
// Each delivery is a GitHub push with the body read from <body_file> and one trigger for
// <jenkins>, job <job/segments>, as a matching rule would queue it; every <unmatched_every>-th
// one (0: none) queues nothing, as if no rule matched. The first <aged> deliveries are received
// <age_seconds> ago (one millisecond apart, oldest first), the others now; with
// <aged_span_seconds> they are spread evenly over that span instead, the newest <age_seconds>
// ago, as a store receiving deliveries all along holds them. <bodies>: `all` (the
// default) stores the body with every delivery; `aged` only with the aged ones, the others
// carrying an empty body, so that a store of tens of millions of deliveries fits on a small disk
// while the prune still deletes full-size bodies. With SCALE_FILL_FOLLOW set to `none`, `started`
// or `finished`, each trigger is followed that far once delivered (default `none`). Prints the
// seconds taken.

#include "store/factory.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace hookrelay;
using Clock = std::chrono::system_clock;

constexpr std::size_t k_default_in_flight = 4096;

std::vector<std::string> split_job(const std::string& path) {
    std::vector<std::string> out;
    std::stringstream in(path);
    for (std::string seg; std::getline(in, seg, '/');) {
        if (!seg.empty()) out.push_back(seg);
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 6) {
        std::cerr << "usage: scale_fill <state_dir> <count> <body_file> <jenkins> <job> "
                     "[in_flight [unmatched_every [aged [age_seconds [all|aged]]]]]\n";
        return 2;
    }
    const std::string state_dir = argv[1];
    const auto count = std::strtoull(argv[2], nullptr, 10);
    std::ifstream body_in(argv[3], std::ios::binary);
    if (!body_in) {
        std::cerr << "scale_fill: cannot read " << argv[3] << "\n";
        return 2;
    }
    const std::string body{std::istreambuf_iterator<char>(body_in), {}};
    const std::string jenkins = argv[4];
    const auto job = split_job(argv[5]);
    const std::size_t in_flight =
        argc > 6 ? std::strtoull(argv[6], nullptr, 10) : k_default_in_flight;
    const std::uint64_t unmatched_every = argc > 7 ? std::strtoull(argv[7], nullptr, 10) : 0;
    const std::uint64_t aged = argc > 8 ? std::strtoull(argv[8], nullptr, 10) : 0;
    const auto age = std::chrono::seconds(argc > 9 ? std::strtoll(argv[9], nullptr, 10) : 0);
    const auto aged_from = Clock::now() - age;
    const std::string bodies = argc > 10 ? argv[10] : "all";
    const auto aged_span = std::chrono::milliseconds(
        std::chrono::seconds(argc > 11 ? std::strtoll(argv[11], nullptr, 10) : 0));
    // Received time of the i-th aged delivery.
    const auto aged_at = [&](std::uint64_t i) {
        if (aged_span.count() == 0) return aged_from + std::chrono::milliseconds(i);
        const auto step = static_cast<double>(aged_span.count()) / static_cast<double>(aged);
        return aged_from - aged_span +
               std::chrono::milliseconds(static_cast<std::int64_t>(step * static_cast<double>(i)));
    };
    if (bodies != "all" && bodies != "aged") {
        std::cerr << "scale_fill: bodies must be `all` or `aged`, not `" << bodies << "`\n";
        return 2;
    }
    const bool every_body = bodies == "all";
    FollowMode follow = FollowMode::none;
    if (const char* mode = std::getenv("SCALE_FILL_FOLLOW"); mode && *mode) {
        const auto parsed = follow_mode_from_string(mode);
        if (!parsed) {
            std::cerr << "scale_fill: SCALE_FILL_FOLLOW must be none, started or finished, not `"
                      << mode << "`\n";
            return 2;
        }
        follow = *parsed;
    }

    Config config;
    config.state_dir = state_dir;
    config.store.backend = StoreConfig::Backend::sqlite;
    if (const char* url = std::getenv("SCALE_FILL_DATABASE_URL"); url && *url) {
        // The PostgreSQL store at this libpq URL instead (the state directory is then unused).
        config.store.backend = StoreConfig::Backend::postgres;
        config.store.postgres.url = Secret(url);
        config.store.postgres.statement_timeout = std::chrono::seconds(60);
    }
    config.store.prune_interval = std::chrono::milliseconds(0);
    store::OpenOptions options;
    options.version = "scale_fill";
    std::string why;
    auto opened = store::open_store(config, options, &why);
    if (!opened) {
        std::cerr << "scale_fill: cannot open the store: " << why << "\n";
        return 1;
    }
    auto store = *opened;

    std::mutex mutex;
    std::condition_variable changed;
    std::size_t outstanding = 0;
    std::atomic<std::uint64_t> failures{0};

    const auto start = std::chrono::steady_clock::now();
    const auto run = std::to_string(Clock::now().time_since_epoch().count());
    for (std::uint64_t i = 0; i < count; ++i) {
        {
            std::unique_lock lock(mutex);
            changed.wait(lock, [&] { return outstanding < in_flight; });
            ++outstanding;
        }
        DeliveryRecord d;
        d.source = "github";
        d.provider = Provider::github;
        d.delivery_id = "fill-" + run + "-" + std::to_string(i);
        d.kind = EventKind::push;
        d.forge_event = "push";
        d.received_at = i < aged ? aged_at(i) : Clock::now();
        d.headers = {{"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", d.delivery_id}};
        if (every_body || i < aged) d.body = body;
        d.repository = "acme/app";
        d.ref = "refs/heads/main";
        TriggerRequest t;
        t.rule = "branches";
        t.jenkins = jenkins;
        t.job = job;
        t.parameters = {{"GIT_COMMIT", "0123456789abcdef0123456789abcdef01234567"}};
        t.cause = "GitHub push " + d.delivery_id;
        t.follow = follow;
        std::vector<TriggerRequest> triggers;
        if (unmatched_every == 0 || (i + 1) % unmatched_every != 0)
            triggers.push_back(std::move(t));
        store->submit(std::move(d), std::move(triggers), [&](result<Receipt> r) {
            if (!r || r->duplicate) ++failures;
            std::lock_guard lock(mutex);
            --outstanding;
            changed.notify_all();
        });
    }
    {
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return outstanding == 0; });
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    store->close();
    if (failures > 0) {
        std::cerr << "scale_fill: " << failures << " submits failed or were duplicates\n";
        return 1;
    }
    std::printf("%.2f\n", took.count());
    return 0;
}
