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

/// The record's bytes (format version 1).
std::string encode_intake_record(const IntakeRecord& record);

/// The record those bytes hold; nullopt for anything else (another version, cut short, an
/// unknown enumeration name, bytes left over).
std::optional<IntakeRecord> decode_intake_record(std::string_view bytes);

}  // namespace hookrelay::store::sqlite
