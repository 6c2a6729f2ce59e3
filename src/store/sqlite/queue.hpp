// The trigger queue in SQL: leases (claims) with a fencing token, renewals, outcomes recorded only
// under the claim that was given out, releases, due times, and the shared holds of Jenkins that
// are down. Semantics are TriggerQueue's (include/hookrelay/store.hpp).
#pragma once

#include "store/sqlite/chores.hpp"
#include "store/sqlite/connection.hpp"

#include <hookrelay/store.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace hookrelay::store::sqlite {

/// Every member runs on the writer thread inside a transaction the writer opened. A SQLite file
/// has one writer at a time (BEGIN IMMEDIATE), so counting a Jenkins' live claims and taking new
/// ones is atomic without row locks, also between two stores opened on one file.
class Queue {
  public:
    /// `instance_id` owns the claims and probe leases this Queue takes; `chores` records what an
    /// outcome starts (the follow chore, a status wish) and the stored outcome.
    Queue(Connection& connection, Chores& chores, std::string instance_id);

    ClaimBatch claim(const ClaimRequest& request);
    std::vector<std::string> renew(const std::vector<std::string>& claim_ids, TimePoint now,
                                   std::chrono::milliseconds lease);
    /// updated_at is the writer's wall clock; an attempt without an instance is this one's.
    /// update.build replaces the build record (a merged one gets its merged_with filled in);
    /// delivered with a build starts the follow chore of a followed trigger, due at
    /// update.next_attempt_at; update.status becomes the newest status wish.
    Completion complete(const std::string& claim_id, const TriggerUpdate& update,
                        TimePoint updated_at);
    /// The number of claims ended.
    std::size_t release(const std::vector<std::string>& claim_ids);
    std::optional<TimePoint> next_due(const std::string& jenkins);

    void hold(const std::string& jenkins, const JenkinsHold& hold);
    std::optional<JenkinsHold> try_probe(const std::string& jenkins, TimePoint now,
                                         std::chrono::milliseconds lease);
    void probe_failed(const std::string& jenkins, TimePoint next_probe_at,
                      const std::string& reason);
    /// Whether `jenkins` was held.
    bool unhold(const std::string& jenkins);

    /// TriggerQueue::queued_predecessors.
    std::vector<QueuedPredecessor> queued_predecessors(const std::string& id, std::size_t limit);
    /// Appends `note` to trigger `id`'s history, uncounted; nothing for an unknown id.
    void add_note(const std::string& id, const Attempt& note);
    /// TriggerQueue::request_scan; a grant is recorded as the project's last scan.
    ScanGate request_scan(const std::string& jenkins, const std::string& project, TimePoint since,
                          TimePoint now, std::chrono::milliseconds interval);
    void forget_scan(const std::string& jenkins, const std::string& project,
                     TimePoint requested_at);

    /// Ends every claim (chore claims too) and probe lease in the file: at open, by the owner of
    /// the state directory, whose predecessor is gone. Returns the number of trigger claims ended.
    std::size_t release_all();
    /// Ends this instance's claims (chore claims too) and probe leases (close).
    void release_own();

  private:
    /// Supersedes trigger `id` (just completed, left open) by the newest open trigger of a later
    /// delivery with its coalesce scope, if there is one (TriggerQueue::complete).
    bool supersede_if_newer(const std::string& id);

    Connection& db_;
    Chores& chores_;
    const std::string instance_;
    Statement select_hold_, count_claims_, claim_, renew_, select_complete_inputs_, complete_,
        insert_attempt_, release_;
    Statement next_due_, hold_, try_probe_, probe_failed_, unhold_;
    Statement release_all_, release_all_probes_, release_own_, release_own_probes_;
    Statement select_scope_, select_newer_, select_newer_delivered_, mark_superseded_,
        select_predecessors_, insert_note_;
    Statement select_scan_, record_scan_, forget_scan_;
};

}  // namespace hookrelay::store::sqlite
