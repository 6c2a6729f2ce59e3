// The webhook pipeline: path → source, verify → parse → normalize → match → render → store,
// and the JSON answer the forge shows in its delivery log.
#pragma once

#include <hookrelay/metrics.hpp>
#include <hookrelay/printable.hpp>
#include <hookrelay/store.hpp>

#include "app/runtime.hpp"
#include "http/server.hpp"
#include "util/rate_limit.hpp"

#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace hookrelay::app {

/// The outcome of everything before the store: either a final answer (rejected, ping) or the
/// delivery's events with their decision, ready to be recorded.
struct Prepared {
    unsigned status = 200;  ///< final status when !record
    std::string body;       ///< the answer's JSON text when !record (rejected, ping)
    /// The delivery's first event; set unless it was rejected. Most deliveries carry one.
    std::optional<Event> event;
    /// Its further events, in payload order (a Bitbucket push: one per ref it changed).
    std::vector<Event> more_events;
    /// Every event evaluated, in order: outcomes and triggers of all of them, each with the
    /// index of its event (0 = `event`, 1 = more_events[0], ...).
    rules::Decision decision;
    bool record = false;     ///< true: hand to the store, answer from its receipt
    std::string log_reason;  ///< for the log line when rejected
};

/// Verifies (unless `verify` is false: explain; signed timestamps are checked against `now`),
/// parses (within server.parse_memory_limit: 413 beyond), normalizes and evaluates one delivery.
/// Pure: no I/O, thread-safe.
Prepared prepare(const Runtime& runtime, const SourceConfig& source, const HeaderMap& headers,
                 std::string_view body, bool verify = true,
                 std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

/// Most rules a webhook response lists in `skipped`; the others are counted in
/// `skipped_not_listed`, and `deliveries show` lists every one. With a thousand rules the whole
/// list was ~90 KB sent back with every delivery, which the forge's delivery log cuts anyway.
inline constexpr std::size_t k_max_skipped_answered = 50;

/// JSON for one rule decision: {"rules": [...], "triggers": [...], "failures": [...]}; when the
/// delivery had several events, every entry names its event's index ("event").
boost::json::object decision_json(const rules::Decision& decision);

/// The content types a provider sends: "json", "form", or "" when unsupported (the forge
/// table's, ingest::media_kind()).
std::string_view media_kind(Provider provider, std::string_view content_type) noexcept;

/// The requests of one source the webhook listener turned away with one status for one reason
/// since the daemon started, and the last of them: what `hookrelay status` shows, since such a
/// request is never stored (a forge whose secret is not hookrelay's, or that posts to a wrong
/// URL, leaves nothing to list). One per reason, so that a stray request of another kind does
/// not hide why the forge's own deliveries fail; past four reasons of a source and status the
/// others share one entry.
struct RejectionCount {
    std::string source;       ///< "none": a path no source has, or no request head at all
    unsigned status = 0;      ///< the answer's status
    std::uint64_t count = 0;  ///< since the daemon started
    std::chrono::system_clock::time_point last_at{};
    std::string last_reason;  ///< as the log says it, shortened, printable UTF-8 only
    std::string last_client;  ///< the client's address (behind a trusted proxy: forwarded)
};

/// Serves POST <source path>: the http::Handler of the public listener.
class WebhookHandler final : public http::Handler {
  public:
    WebhookHandler(std::shared_ptr<const Runtime> runtime, std::shared_ptr<DeliveryIntake> store,
                   std::shared_ptr<Metrics> metrics = null_metrics());

    std::optional<http::Response> check_head(const http::RequestHead& head) override;
    boost::asio::awaitable<http::Response> handle(http::Request request) override;
    void rejected(const http::Rejection& rejection) override;

  private:
    std::optional<http::Response> check_head_for(const Runtime& runtime, const SourceConfig* source,
                                                 const http::RequestHead& head);
    boost::asio::awaitable<http::Response> process(http::Request request,
                                                   const SourceConfig& source,
                                                   std::shared_ptr<const Runtime> runtime);

  public:
    /// Swaps in a new runtime; requests already running keep the old one.
    void set_runtime(std::shared_ptr<const Runtime> runtime) noexcept;
    std::shared_ptr<const Runtime> runtime() const noexcept;
    /// What was turned away since start, by source name, then status, then reason.
    /// Thread-safe.
    std::vector<RejectionCount> rejections() const;

  private:
    // server.body_limit as the listener took it at start (its parser's limit; a reload that
    // changes it waits for a restart), not the running configuration's.
    const std::size_t body_limit_;
    std::atomic<std::shared_ptr<const Runtime>> runtime_;
    std::shared_ptr<DeliveryIntake> store_;
    std::shared_ptr<Metrics> metrics_;
    RateLimit rejection_log_;      // rejected (untrusted) requests: bounded log volume
    RateLimit ping_log_;           // pings, which some forges send unsigned: the same
    RateLimit store_failure_log_;  // a store fault repeats for every delivery
    // Duplicates: a captured signed delivery can be sent again as fast as a client likes.
    RateLimit duplicate_log_;
    // Counted for every request turned away (4xx; 503: the store did not take it, or the
    // listener's limits), logged or not; `client` as client_address() gives it.
    void count_rejection(std::string_view source, unsigned status, std::string_view reason,
                         std::string_view client);
    mutable std::mutex rejections_mutex_;
    // By source, status and reason ("\x7f" after the last few reasons: the others).
    using Rejections = std::map<std::tuple<std::string, unsigned, std::string>, RejectionCount>;
    static constexpr const char* k_other_reasons = "\x7f";
    Rejections rejections_;
};

}  // namespace hookrelay::app
