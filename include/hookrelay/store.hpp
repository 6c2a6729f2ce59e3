// The store seam: ingest hands every accepted delivery and its triggers to a Store. The daemon
// answers the forge only after the store has accepted (or refused) the delivery.
#pragma once

#include <hookrelay/error.hpp>
#include <hookrelay/event.hpp>

#include <chrono>
#include <functional>
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
};

/// What the store answers for an accepted submission.
struct Receipt {
    bool duplicate = false;  ///< (source, delivery_id) was seen before; nothing was queued
    std::vector<std::string> trigger_ids;  ///< one per submitted trigger, same order
};

/// Persists deliveries and their triggers. Implementations own their threads; submit() never
/// blocks the caller for I/O and may be called from any thread concurrently.
class Store {
public:
    using SubmitHandler = std::function<void(result<Receipt>)>;

    virtual ~Store() = default;

    /// Records `delivery` and queues `triggers` atomically, deduplicating on
    /// (delivery.source, delivery.delivery_id) when the id is non-empty. Calls `done` exactly once,
    /// from any thread, with a Receipt, or errc::store_unavailable when nothing was recorded.
    virtual void submit(DeliveryRecord delivery, std::vector<TriggerRequest> triggers,
                        SubmitHandler done) = 0;

    /// Short name for logs: "memory", "sqlite".
    virtual std::string_view kind() const noexcept = 0;

    /// Whether accepted deliveries survive a restart.
    virtual bool durable() const noexcept = 0;
};

}  // namespace hookrelay
