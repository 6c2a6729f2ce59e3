#include "store/factory.hpp"

#include "store/postgres/connection.hpp"
#include "store/postgres/postgres_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <limits>

namespace hookrelay::store {
namespace {

result<std::shared_ptr<Store>> open_sqlite(const Config& config, const OpenOptions& options,
                                           std::string* why) {
    sqlite::SqliteOptions o;
    o.store_thread_yields = options.store_thread_yields;
    o.intake_log_without_lock = options.intake_log_without_lock;
    if (options.sqlite_backlog_step > 0) o.backlog_step = options.sqlite_backlog_step;
    o.instance_id = options.instance_id;
    o.version = options.version;
    o.warn = options.warn;
    o.lock_state_dir = options.lock_state_dir;
    o.claim_lease = config.dispatch.claim_lease;
    o.heartbeat_interval = config.dispatch.claim_renew_interval;
    // Twice what the webhook listener can have waiting for the store: a request per connection,
    // its bodies up to 64 KiB uncharged and larger ones within body_memory (http/server.cpp).
    // More are webhooks whose callers stopped waiting (server.store_timeout) on a store that
    // stopped answering, each holding its body; twice, so that a listener at its cap is never
    // refused for the moment an answer takes to reach its connection.
    constexpr std::size_t k_most = std::numeric_limits<std::size_t>::max() / 4;
    const std::size_t connections = std::min(config.server.max_connections, k_most / (64 * 1024));
    o.max_unanswered = 2 * connections;
    o.max_unanswered_bytes =
        2 * (std::min(config.server.body_memory, k_most) + connections * std::size_t{64 * 1024});
    auto opened = sqlite::SqliteStore::open(config.state_dir, config.store, o, why);
    if (!opened) return opened.error();
    return std::shared_ptr<Store>(std::move(*opened));
}

}  // namespace

std::map<std::string, std::string> jenkins_urls(const Config& config) {
    std::map<std::string, std::string> out;
    for (const auto& j : config.jenkins) out.emplace(j.name, j.url);
    return out;
}

namespace {

result<std::shared_ptr<Store>> open_postgres(const Config& config, const OpenOptions& options,
                                             std::string* why) {
    PostgresOptions o;
    o.instance_id = options.instance_id.empty() ? make_instance_id() : options.instance_id;
    char host[256] = {};
    o.host = gethostname(host, sizeof host - 1) == 0 && host[0] != '\0' ? host : "unknown";
    o.version = options.version;
    o.claim_lease = config.dispatch.claim_lease;
    o.heartbeat_interval = config.dispatch.claim_renew_interval;
    o.jenkins = jenkins_urls(config);
    auto opened = PostgresStore::open(config.store, std::move(o), why);
    if (!opened) return opened.error();
    return std::shared_ptr<Store>(std::move(*opened));
}

}  // namespace

result<std::shared_ptr<Store>> open_store(const Config& config, const OpenOptions& options,
                                          std::string* why) {
    switch (config.store.backend) {
        case StoreConfig::Backend::sqlite:
            return open_sqlite(config, options, why);
        case StoreConfig::Backend::postgres:
            return open_postgres(config, options, why);
    }
    if (why) *why = "store.backend: unknown backend";
    return make_error_code(errc::bad_config);
}

std::string config_problem(const Config& config) {
    if (config.store.backend != StoreConfig::Backend::postgres) return {};
    std::string why;
    if (!postgres::ConnInfo::parse(config.store.postgres.url.reveal(), &why)) return why;
    return {};
}

std::string make_instance_id() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
        std::snprintf(host, sizeof host, "%s", "host");
    }
    unsigned char random[4] = {};
    // Without randomness the pid alone still tells this process from the others on the host.
    if (RAND_bytes(random, sizeof random) != 1) random[0] = random[1] = random[2] = random[3] = 0;
    char suffix[9];
    std::snprintf(suffix, sizeof suffix, "%02x%02x%02x%02x", random[0], random[1], random[2],
                  random[3]);
    return std::string(host) + "-" + std::to_string(getpid()) + "-" + suffix;
}

}  // namespace hookrelay::store
