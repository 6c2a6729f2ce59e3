// An intake log record (store/sqlite/intake_log.hpp): one accepted submission as the store thread
// indexes it later, with the trigger ids its answer already gave. Enumerations are written by
// name, so that reordering one in the code never changes what an old record means.
#pragma once

#include "store/sqlite/stored_body.hpp"

#include <hookrelay/store.hpp>
#include <hookrelay/trigger.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::store::sqlite {

struct IntakeRecord {
    /// Everything the store keeps of it but `rule_reasons` (kept packed in `reasons`); its
    /// `body` only where the store reads it: a body stored as it came (`stored_body` without a
    /// size), or one not stored whose digest is still to be computed.
    DeliveryRecord delivery;
    /// The body as stored (store.keep_body): an LZ4 block or the bytes as they came.
    std::optional<StoredBody> stored_body;
    StoredReasons reasons;
    std::vector<TriggerRequest> triggers;
    /// One per trigger, in order: the ids the submission's answer gave.
    std::vector<std::string> trigger_ids;
};

/// What tells deliveries apart for deduplication: the source and the delivery id.
inline std::string intake_key(std::string_view source, std::string_view delivery_id) {
    std::string key;
    key.reserve(source.size() + 1 + delivery_id.size());
    key.append(source).push_back('\0');  // no source name holds a NUL
    key.append(delivery_id);
    return key;
}

/// The record's bytes (format version 1).
std::string encode_intake_record(const IntakeRecord& record);
/// The same, from the parts of a submission where they lie.
std::string encode_intake_record(const DeliveryRecord& delivery,
                                 const std::optional<StoredBody>& stored_body,
                                 const StoredReasons& reasons,
                                 const std::vector<TriggerRequest>& triggers,
                                 const std::vector<std::string>& trigger_ids);

/// The record those bytes hold; nullopt for anything else (another version, cut short, an
/// unknown enumeration name, bytes left over).
std::optional<IntakeRecord> decode_intake_record(std::string_view bytes);

}  // namespace hookrelay::store::sqlite
