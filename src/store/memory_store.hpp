// An in-memory Store: stands in until the durable SQLite store lands. Deduplicates on
// (source, delivery id) over the most recent `capacity` deliveries and keeps their triggers for
// inspection. Nothing survives a restart; the daemon says so when it starts.
#pragma once

#include <hookrelay/store.hpp>

#include <deque>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

namespace hookrelay::store {

class MemoryStore final : public Store {
  public:
    /// Remembers up to `capacity` deliveries (oldest forgotten first).
    explicit MemoryStore(std::size_t capacity = 100'000);

    /// Thread-safe; calls `done` inline, on the caller's thread.
    void submit(DeliveryRecord delivery, std::vector<TriggerRequest> triggers,
                SubmitHandler done) override;
    std::string_view kind() const noexcept override { return "memory"; }
    bool durable() const noexcept override { return false; }

    struct Entry {
        DeliveryRecord delivery;
        std::vector<std::string> trigger_ids;
        std::vector<TriggerRequest> triggers;
    };
    /// A copy of the remembered deliveries, oldest first.
    std::vector<Entry> snapshot() const;

  private:
    std::size_t capacity_;
    mutable std::mutex mutex_;
    std::deque<Entry> entries_;
    std::unordered_set<std::string> keys_;
};

/// A random RFC 4122 version-4 UUID, lower-case hex.
std::string make_uuid();

}  // namespace hookrelay::store
