// The admin listener's handler: health, readiness, metrics and the JSON API for deliveries,
// replays, redelivery, reload and status. Served on its own listener (default 127.0.0.1:9090),
// never on the public webhook port.
//
//   GET  /healthz                          process alive (no token needed)
//   GET  /readyz                           listeners bound and store writable (no token needed)
//   GET  /metrics                          Prometheus text format
//   GET  /api/v1/status                    version, uptime, per-Jenkins backlog and state
//   GET  /api/v1/deliveries?source=&state=&since=&limit=&cursor=
//   GET  /api/v1/deliveries/{id}[?source=] a delivery, its event and every trigger's history
//   POST /api/v1/triggers/{id}/replay      re-queue one trigger with a fresh retry budget
//   POST /api/v1/triggers/replay?state=dead&since=&jenkins=&limit=   bulk replay
//   POST /api/v1/redeliver?delivery={id}[&source=]   run a stored delivery through current rules
//   POST /api/v1/reload                    re-read config and secrets, swap if valid
// Everything but /healthz and /readyz needs "Authorization: Bearer <admin.token>".
#pragma once

#include <hookrelay/store.hpp>

#include "app/webhook.hpp"
#include "http/server.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hookrelay::dispatch {
class Dispatcher;
}

namespace hookrelay::app {

/// ISO 8601 UTC with milliseconds: "2026-11-24T23:10:01.123Z".
std::string format_time(std::chrono::system_clock::time_point t);

/// "2026-11-24T23:10:01Z" (a space for the "T", a fraction and the zone optional: "Z", "+hh:mm",
/// "-hh:mm", or none for UTC, as `deliveries list` prints times), or a duration back from `now`
/// ("90m", "24h", "7d"). nullopt when neither.
std::optional<std::chrono::system_clock::time_point> parse_time(
    std::string_view text, std::chrono::system_clock::time_point now);

/// What a reload came to.
struct ReloadOutcome {
    bool ok = false;
    std::vector<std::string> errors;  ///< "file:line:column: message" lines when !ok
    /// When ok: settings that changed but take effect only after a restart ("server.body_limit").
    std::vector<std::string> restart_needed;
};

class AdminHandler final : public http::Handler {
  public:
    struct Services {
        std::shared_ptr<Store> store;
        std::shared_ptr<WebhookHandler> webhooks;  ///< for the current runtime (rules, sources)
        std::shared_ptr<dispatch::Dispatcher> dispatcher;
        std::shared_ptr<Metrics> metrics;           ///< backlog gauges are refreshed on each scrape
        std::function<std::string()> metrics_text;  ///< Prometheus exposition
        /// Re-reads and swaps the config; runs the blocking part off the network threads.
        std::function<boost::asio::awaitable<ReloadOutcome>()> reload;
        std::function<bool()> ready;  ///< listeners bound and store writable
        /// The latest background check's findings for a Jenkins (OnlineChecks::findings).
        std::function<std::vector<std::string>(const std::string& jenkins)> findings;
    };

    explicit AdminHandler(Services services);

    std::optional<http::Response> check_head(const http::RequestHead& head) override;
    boost::asio::awaitable<http::Response> handle(http::Request request) override;

  private:
    /// How long a store call is awaited: the running configuration's server.store_timeout (a
    /// reload changes it).
    std::chrono::milliseconds store_timeout() const;
    /// store.retention as the daemon started with it (the store's; a reload's waits for a
    /// restart).
    std::chrono::milliseconds retention() const;
    /// After a replay: the Jenkins names with open triggers that no lane of this instance sends
    /// (no entry of that name in its config), as a warning ("" when none or not counted).
    boost::asio::awaitable<std::string> unsent_backlog();

    Services s_;
    std::chrono::steady_clock::time_point started_;
    std::chrono::milliseconds retention_;
};

}  // namespace hookrelay::app
