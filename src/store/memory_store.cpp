#include "store/memory_store.hpp"

#include <openssl/rand.h>

#include <array>
#include <random>

namespace hookrelay::store {

std::string make_uuid() {
    std::array<unsigned char, 16> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
        // OpenSSL's generator failing is exceedingly rare; ids need uniqueness, not secrecy.
        thread_local std::mt19937_64 fallback{std::random_device{}()};
        for (auto& b : bytes) b = static_cast<unsigned char>(fallback());
    }
    bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);
    bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += hex[bytes[i] >> 4];
        out += hex[bytes[i] & 0x0f];
    }
    return out;
}

MemoryStore::MemoryStore(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

void MemoryStore::submit(DeliveryRecord delivery, std::vector<TriggerRequest> triggers,
                         SubmitHandler done) {
    Receipt receipt;
    {
        std::lock_guard lock(mutex_);
        std::string key;
        if (!delivery.delivery_id.empty()) {
            key = delivery.source + '\n' + delivery.delivery_id;
            if (keys_.contains(key)) {
                receipt.duplicate = true;
            }
        }
        if (!receipt.duplicate) {
            for (std::size_t i = 0; i < triggers.size(); ++i)
                receipt.trigger_ids.push_back(make_uuid());
            if (!key.empty()) keys_.insert(key);
            entries_.push_back({std::move(delivery), receipt.trigger_ids, std::move(triggers)});
            while (entries_.size() > capacity_) {
                const auto& old = entries_.front().delivery;
                if (!old.delivery_id.empty()) keys_.erase(old.source + '\n' + old.delivery_id);
                entries_.pop_front();
            }
        }
    }
    done(std::move(receipt));
}

std::vector<MemoryStore::Entry> MemoryStore::snapshot() const {
    std::lock_guard lock(mutex_);
    return {entries_.begin(), entries_.end()};
}

}  // namespace hookrelay::store
