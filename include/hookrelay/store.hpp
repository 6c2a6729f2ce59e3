// The store seam: ingest hands every accepted delivery and its triggers to a Store. The daemon
// answers the forge only after the store has accepted (or refused) the delivery.
#pragma once

#include <hookrelay/error.hpp>
#include <hookrelay/event.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hookrelay {

/// One Jenkins build to request, fully rendered.
struct TriggerRequest {
    std::string rule;     ///< name of the rule that produced it
    std::string jenkins;  ///< name of the Jenkins entry
    /// Folder path segments, not encoded: {"acme", "app", "feature/x"}; a '/' inside a segment is
    /// part of the item name (multibranch branches) and is encoded by the Jenkins client.
    std::vector<std::string> job;
    std::vector<std::pair<std::string, std::string>> parameters;  ///< rendered, config order
    std::string cause;  ///< text naming the delivery, shown by Jenkins as the build cause
};

/// "acme/app/feature%2Fx": segments joined with '/', a '/' inside a segment written as %2F.
std::string job_display_path(const std::vector<std::string>& job);

/// The delivery as received, as the store records it.
struct DeliveryRecord {
    std::string source;
    Provider provider = Provider::github;
    std::string delivery_id;
    EventKind kind = EventKind::other;
    std::string forge_event;
    std::chrono::system_clock::time_point received_at;
    std::vector<std::pair<std::string, std::string>> headers;  ///< the ones that matter, no secrets
    std::string body;                                          ///< raw body as received
    /// SHA-256 of `body` as lowercase hex, computed by the caller off the store's thread; when
    /// empty the store computes it.
    std::string body_sha256;
    /// Above zero: the delivery is a duplicate when this source has a stored delivery with the
    /// same body received at most this long before received_at (its delivery id aside) that was
    /// itself submitted with a window above zero.
    std::chrono::milliseconds duplicate_body_window{0};
};

/// What the store answers for an accepted submission.
struct Receipt {
    bool duplicate = false;  ///< (source, delivery_id) was seen before; nothing was queued
    std::vector<std::string> trigger_ids;  ///< one per submitted trigger, same order
    /// When duplicate: the earlier delivery, by its forge delivery id, or "#<seq>" when it has
    /// none (what get_delivery() takes).
    std::string duplicate_of;
    /// When duplicate: found by duplicate_body_window (the same body under another delivery id,
    /// or none), not by the delivery id.
    bool same_body = false;
};

/// Where a trigger is in its life. pending → delivered | dead; retrying waits for a due time.
enum class TriggerState { pending, retrying, delivered, dead };

/// "pending", "retrying", "delivered", "dead".
std::string_view to_string(TriggerState state) noexcept;
/// The inverse of to_string; nullopt for anything else.
std::optional<TriggerState> trigger_state_from_string(std::string_view text) noexcept;

/// One try at delivering a trigger to Jenkins, as recorded in its history.
struct Attempt {
    std::chrono::system_clock::time_point at;
    int http_status = 0;  ///< 0 when no HTTP response arrived (refused, reset, timeout)
    std::string outcome;  ///< short text: "queued", "merged into queued item", "HTTP 404", ...
    std::chrono::milliseconds duration{0};
    std::string queue_url;  ///< Jenkins queue item URL (Location), when Jenkins gave one
    /// False when the attempt did not count against the trigger's retry budget (Jenkins was
    /// unreachable or restarting: the whole Jenkins is held instead).
    bool counted = true;
};

/// A trigger as the store holds it.
struct StoredTrigger {
    std::string id;
    std::string source;       ///< of its delivery
    std::string delivery_id;  ///< forge delivery id of its delivery
    TriggerRequest request;
    TriggerState state = TriggerState::pending;
    int attempts = 0;  ///< counted attempts so far
    std::chrono::system_clock::time_point created_at;
    std::chrono::system_clock::time_point next_attempt_at;  ///< due time (pending/retrying)
    std::string last_outcome;
    std::string queue_url;
};

/// What the dispatcher records after an attempt.
struct TriggerUpdate {
    std::string id;
    TriggerState state = TriggerState::pending;
    std::chrono::system_clock::time_point next_attempt_at;  ///< for pending / retrying
    Attempt attempt;           ///< appended to the history; attempts += 1 when attempt.counted
    std::string last_outcome;  ///< e.g. the reason a trigger went dead
};

/// One delivery as the admin API lists it.
struct DeliverySummary {
    std::int64_t seq = 0;  ///< the store's own id: increasing, used as the listing cursor
    std::string source;
    Provider provider = Provider::github;
    std::string delivery_id;  ///< forge delivery id ("" when the forge sent none)
    EventKind kind = EventKind::other;
    std::string forge_event;
    std::chrono::system_clock::time_point received_at;
    std::size_t pending = 0;    ///< triggers pending or retrying
    std::size_t delivered = 0;  ///< triggers delivered
    std::size_t dead = 0;       ///< triggers dead
};

/// A trigger with its whole history, for `deliveries show`.
struct TriggerHistory {
    StoredTrigger trigger;
    std::chrono::system_clock::time_point updated_at;
    std::vector<Attempt> attempts;  ///< oldest first
};

/// Everything stored about one delivery.
struct DeliveryDetail {
    DeliverySummary summary;
    std::vector<std::pair<std::string, std::string>> headers;
    std::optional<std::string> body;  ///< absent when store.keep_body is false
    std::string body_sha256;
    std::vector<TriggerHistory> triggers;  ///< in creation order
};

/// Filters for listing deliveries; newest first.
struct DeliveryQuery {
    std::string source;                 ///< "" = any
    std::optional<TriggerState> state;  ///< only deliveries with a trigger in this state
    std::optional<std::chrono::system_clock::time_point> since;  ///< received at or after
    std::size_t limit = 50;
    std::optional<std::int64_t> before_seq;  ///< cursor: only seq < this
};

struct DeliveryPage {
    std::vector<DeliverySummary> items;
    std::optional<std::int64_t> next_before_seq;  ///< set when more items may follow
};

/// Which triggers a bulk replay takes.
struct ReplayQuery {
    TriggerState state = TriggerState::dead;
    std::optional<std::chrono::system_clock::time_point> since;  ///< last updated at or after
    std::string jenkins;                                         ///< "" = any
    std::size_t limit = 1000;
    bool dry_run = false;  ///< only list the ids that would be re-queued; change nothing
};

/// Persists deliveries and their triggers. Implementations own their threads; submit() never
/// blocks the caller for I/O and may be called from any thread concurrently.
class Store {
  public:
    using SubmitHandler = std::function<void(result<Receipt>)>;

    virtual ~Store() = default;

    /// Records `delivery` and queues `triggers` atomically, deduplicating on
    /// (delivery.source, delivery.delivery_id) when the id is non-empty, and on (delivery.source,
    /// body SHA-256) within delivery.duplicate_body_window when that is above zero (against
    /// deliveries submitted with a window). A duplicate is not recorded. Calls `done` exactly once,
    /// from any thread, with a Receipt, or errc::store_unavailable when nothing was recorded.
    virtual void submit(DeliveryRecord delivery, std::vector<TriggerRequest> triggers,
                        SubmitHandler done) = 0;

    using DueHandler = std::function<void(result<std::vector<StoredTrigger>>)>;
    using UpdateHandler = std::function<void(result<void>)>;

    /// Up to `limit` triggers for Jenkins `jenkins` in state pending or retrying whose
    /// next_attempt_at <= `now`, oldest due first, skipping the ids in `exclude` (in flight).
    /// Calls `done` exactly once, from any thread.
    virtual void due(std::string jenkins, std::chrono::system_clock::time_point now,
                     std::size_t limit, std::vector<std::string> exclude, DueHandler done) = 0;

    /// Applies one update (state, due time, history). Calls `done` exactly once, from any thread.
    virtual void update(TriggerUpdate update, UpdateHandler done) = 0;

    /// The earliest next_attempt_at among pending/retrying triggers of `jenkins`, or nullopt
    /// when it has none. Blocking-free like the rest: `done` gets the answer.
    virtual void next_due(
        std::string jenkins,
        std::function<void(result<std::optional<std::chrono::system_clock::time_point>>)> done) = 0;

    /// Registers a callback run (from any thread) after triggers were committed, so the
    /// dispatcher can wake up at once instead of waiting for its next poll.
    virtual void on_committed(std::function<void()> callback) = 0;

    // --- Admin queries. Same rules: never block the caller, `done` exactly once, any thread.

    using PageHandler = std::function<void(result<DeliveryPage>)>;
    using DetailHandler = std::function<void(result<std::optional<DeliveryDetail>>)>;
    using IdsHandler = std::function<void(result<std::vector<std::string>>)>;
    using CountsHandler =
        std::function<void(result<std::vector<std::pair<std::string, std::size_t>>>)>;

    /// Deliveries matching `query`, newest first.
    virtual void list_deliveries(DeliveryQuery query, PageHandler done) = 0;

    /// One delivery by forge delivery id (`source` "" = any source; the newest if several), or
    /// by the store's seq when `delivery_id` is "#<seq>". nullopt when unknown.
    virtual void get_delivery(std::string source, std::string delivery_id, DetailHandler done) = 0;

    /// Re-queues the given triggers with a fresh retry budget (state pending, attempts 0, age
    /// counted from `now`, due now), recording a "replayed" entry in each history. Unknown ids
    /// are skipped; `done` gets the ids that were re-queued.
    virtual void replay(std::vector<std::string> trigger_ids,
                        std::chrono::system_clock::time_point now, IdsHandler done) = 0;

    /// The same for every trigger matching `query` (with query.dry_run: nothing changes, `done`
    /// gets the ids that would have been re-queued).
    virtual void replay_matching(ReplayQuery query, std::chrono::system_clock::time_point now,
                                 IdsHandler done) = 0;

    /// Adds triggers to an already stored delivery (redelivery through the current rules),
    /// pending and due now. `done` gets their ids, in order.
    virtual void add_triggers(std::string source, std::string delivery_id,
                              std::vector<TriggerRequest> triggers, IdsHandler done) = 0;

    /// Open (pending + retrying) trigger count per Jenkins name (backlog).
    virtual void backlog(CountsHandler done) = 0;

    /// Short name for logs: "memory", "sqlite".
    virtual std::string_view kind() const noexcept = 0;

    /// Whether accepted deliveries survive a restart.
    virtual bool durable() const noexcept = 0;
};

}  // namespace hookrelay
