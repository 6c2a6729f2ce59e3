// The chore queue in SQL: leases on following a delivered trigger's build (per Jenkins, held
// with it) and on posting its newest commit status wish (per source), with their own claim ids,
// due times and tries on the trigger's row; and what every write of a trigger shares: recording
// a status wish, the stored outcome (trigger_outcome()), a merged build's partner. Semantics are
// ChoreQueue's (include/hookrelay/store.hpp).
#pragma once

#include "store/sqlite/connection.hpp"

#include <hookrelay/store.hpp>

#include <string>

namespace hookrelay::store::sqlite {

/// Every member runs on the writer thread inside a transaction the writer opened (one writer at
/// a time: counting live claims and taking new ones is atomic, as in Queue).
class Chores {
  public:
    /// `instance_id` owns the chore claims this Chores takes.
    Chores(Connection& connection, std::string instance_id);

    ChoreBatch claim(const ChoreRequest& request);
    /// updated_at is the writer's wall clock (a follow's completion is a write of the trigger).
    Completion complete(Chore chore, const std::string& claim_id, const ChoreUpdate& update,
                        TimePoint updated_at);

    /// Makes `wish` trigger `id`'s newest (wanted_seq + 1, tries 0, no error, due at once) when
    /// it has a status target; does nothing otherwise.
    void record_wish(const std::string& id, const StatusWish& wish);
    /// Stores trigger_outcome() of trigger `id` as it is now.
    void store_outcome(const std::string& id);
    /// The delivery (its forge id, or "#<seq>" without one) of the newest trigger other than
    /// `id` that got queue item `queue_url`; "" when none did.
    std::string merged_with(const std::string& id, const std::string& queue_url);

    /// Ends every chore claim in the file (at open, by the owner of the state directory).
    void release_all();
    /// Ends this instance's chore claims (close).
    void release_own();
    /// Ends this instance's claims `claim_ids` of `chore`; other ids are ignored.
    void release(Chore chore, const std::vector<std::string>& claim_ids);

  private:
    Connection& db_;
    const std::string instance_;
    Statement select_hold_, count_follow_, due_follow_, take_follow_;
    Statement count_status_, due_status_, take_status_;
    Statement complete_follow_, complete_status_, record_wish_;
    Statement select_outcome_inputs_, update_outcome_, select_merged_;
    Statement release_all_follow_, release_all_status_, release_own_follow_, release_own_status_;
    Statement release_follow_, release_status_;
};

}  // namespace hookrelay::store::sqlite
