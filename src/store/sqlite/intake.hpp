// Recording one accepted delivery and its triggers: deduplication by (source, delivery id) and
// by body within a window, the body kept or only its digest, new triggers pending.
#pragma once

#include "store/sqlite/chores.hpp"
#include "store/sqlite/connection.hpp"
#include "store/sqlite/stored_body.hpp"

#include <hookrelay/store.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hookrelay::store::sqlite {

class Intake {
  public:
    /// `chores` records the status wish of a superseded trigger.
    Intake(Connection& connection, Chores& chores);

    /// Inside a transaction. A delivery id seen before for the same source (or earlier in the
    /// same transaction) gives Receipt{duplicate = true} and records nothing; an empty id never
    /// deduplicates by id. With delivery.duplicate_body_window above zero, a stored delivery of
    /// the same source with the same body SHA-256 received in [received_at - window, ...] (the
    /// newest such) that was itself submitted with a window makes it a duplicate too, with
    /// same_body set unless that delivery has the same non-empty id. Otherwise records the
    /// delivery (`body`, the delivery's body packed by pack_body(), when store.keep_body, else no
    /// body; its SHA-256, delivery.body_sha256 when that is 64 lowercase hex digits, else
    /// computed here where the body window compares it or no body is kept (from the packed body
    /// when the intake log's thread let go of the body itself), else left empty: a kept body's
    /// digest is computed from it when the delivery is shown (Admin::read_detail);
    /// `reasons`, delivery.rule_reasons packed by pack_reasons(), which this does not read again)
    /// and its triggers, pending and due at received_at; each one with a coalesce scope supersedes
    /// the open, unclaimed (or expired-claim) triggers of earlier deliveries with the same scope
    /// (DeliveryIntake::submit), listed in Receipt::superseded. `ids`, when given (the intake log
    /// made them for the answer it gave), are the triggers' ids, one per trigger; otherwise each
    /// trigger gets a new one.
    Receipt insert(const DeliveryRecord& delivery, const StoredBody* body,
                   const StoredReasons& reasons, const std::vector<TriggerRequest>& triggers,
                   const std::vector<std::string>* ids = nullptr);

    /// Inside a transaction: a new pending trigger of stored delivery `delivery` (its seq),
    /// created and due at `at_ms`, with id `id` (a new one when null). Returns its id.
    std::string add_trigger(std::int64_t delivery, const TriggerRequest& trigger,
                            std::int64_t at_ms, const std::string* id = nullptr);

    /// Inside a transaction: supersedes, by trigger `newer` of stored delivery `delivery`, the
    /// open triggers with `scope` of earlier deliveries not under a claim unexpired at `at_ms`
    /// (DeliveryIntake::submit). `newer_delivery` names the delivery in the outcome. Appends
    /// (superseded, newer) to `out`.
    void supersede_older(std::int64_t delivery, const std::string& scope,
                         const TriggerRequest& newer_request, const std::string& newer,
                         const std::string& newer_delivery, std::int64_t at_ms,
                         std::vector<std::pair<std::string, std::string>>& out);

  private:
    std::optional<Receipt> find_same_body(const DeliveryRecord& d, const std::string& digest,
                                          std::int64_t key, std::int64_t received);

    Connection& db_;
    Chores& chores_;
    Statement insert_delivery_, insert_unmatched_, mark_received_, find_body_, insert_trigger_,
        supersede_;
};

}  // namespace hookrelay::store::sqlite
