// How long the store's count of the open triggers takes (Store::backlog: /metrics and
// /api/v1/status run it at each read), and how long other store work waits behind it meanwhile,
// on a filled SQLite state_dir (bench/load/backlog.sh runs it after its fill; the daemon is not
// running then).
//
//   backlog_count <state_dir> [step [runs]]
//
// step: open triggers counted per turn of the store's thread (SqliteOptions::backlog_step); 0,
// the default: the store's own. runs: counts made (default 3). During each count another thread
// asks the store for the Jenkins holds again and again, and times each answer: the longest wait
// is how long the count held the store's thread at once, as a webhook's index work or a claim
// would wait for it. Prints per run: the open triggers counted, the count's time, the holds
// answered meanwhile and the longest of their waits.

#include "store/factory.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace hookrelay;
using Steady = std::chrono::steady_clock;

double ms(Steady::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: backlog_count <state_dir> [step [runs]]\n";
        return 2;
    }
    Config config;
    config.state_dir = argv[1];
    config.store.backend = StoreConfig::Backend::sqlite;
    config.store.prune_interval = std::chrono::milliseconds(0);
    store::OpenOptions options;
    options.version = "backlog_count";
    options.sqlite_backlog_step = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0;
    const int runs = argc > 3 ? std::atoi(argv[3]) : 3;
    std::string why;
    auto opened = store::open_store(config, options, &why);
    if (!opened) {
        std::cerr << "backlog_count: cannot open the store: " << why << "\n";
        return 1;
    }
    auto store = *opened;

    for (int run = 0; run < runs; ++run) {
        std::atomic<bool> counting{true};
        std::size_t reads = 0;
        Steady::duration longest{};
        std::thread reader([&] {
            while (counting.load()) {
                std::promise<bool> answered;
                const auto asked = Steady::now();
                store->holds([&](result<std::map<std::string, JenkinsHold>> held) {
                    answered.set_value(static_cast<bool>(held));
                });
                if (!answered.get_future().get()) {
                    std::cerr << "backlog_count: reading the holds failed\n";
                    std::exit(1);
                }
                longest = std::max(longest, Steady::now() - asked);
                ++reads;
            }
        });
        std::promise<result<std::vector<std::pair<std::string, std::size_t>>>> counted;
        const auto start = Steady::now();
        store->backlog([&](auto r) { counted.set_value(std::move(r)); });
        const auto backlog = counted.get_future().get();
        const auto took = Steady::now() - start;
        counting = false;
        reader.join();
        if (!backlog) {
            std::cerr << "backlog_count: the count failed: " << backlog.error().message() << "\n";
            return 1;
        }
        std::size_t open = 0;
        for (const auto& [jenkins, n] : *backlog) open += n;
        std::printf(
            "%zu open triggers counted in %.1f ms; the holds read %zu times meanwhile, "
            "the longest waited %.2f ms\n",
            open, ms(took), reads, ms(longest));
    }
    store->close();
    return 0;
}
