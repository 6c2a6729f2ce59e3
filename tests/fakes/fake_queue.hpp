// An in-memory TriggerQueue for dispatcher unit tests: the claim/renew/complete/hold semantics of
// include/hookrelay/store.hpp on plain maps, answering every call at once (inline) unless told to
// hold claims, outcomes or their answers back (one_writer, outcomes_later, answers_later), with
// counters and fault injection so tests can see and steer what the dispatcher asks.
#pragma once

#include <hookrelay/store.hpp>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace hookrelay::test {

class FakeQueue final : public TriggerQueue {
  public:
    struct Row {
        StoredTrigger trigger;
        std::string claim_id;  // "" when not claimed
        TimePoint claim_expires{};
        std::vector<Attempt> history;
    };
    struct Hold {
        JenkinsHold hold;
        std::string probe_owner;
        TimePoint probe_expires{};
    };

    /// Adds a pending trigger for `jenkins`, due at `due`; returns its id ("t1", "t2", ...).
    std::string add(const std::string& jenkins, TimePoint due, const std::string& rule = "r");
    /// Another instance takes the claim over (as after an expired lease): the current claim of
    /// `trigger_id` becomes stale.
    void take_over(const std::string& trigger_id);
    /// A hold set by another instance.
    void hold_by_other(const std::string& jenkins, JenkinsHold hold,
                       const std::string& probing = "");

    std::map<std::string, Row> rows;
    std::map<std::string, Hold> holds;

    // What was asked.
    std::size_t claims_asked = 0;
    std::vector<std::vector<std::string>> renewed;  // ids of each renew() call
    std::vector<std::string> completed;             // trigger ids applied
    std::vector<std::string> stale;                 // trigger ids refused as stale
    std::vector<std::string> released;              // claim ids released
    std::size_t probes_granted = 0;
    std::vector<std::chrono::milliseconds> probe_leases;  // the lease of each probe granted
    std::vector<TimePoint> probe_failures;                // next_probe_at of each probe_failed()
    std::size_t unholds = 0;
    /// Answer the next `n` calls of every kind with this error.
    std::size_t fail_next = 0;
    boost::system::error_code failure = make_error_code(errc::store_unavailable);

    std::size_t live_claims(const std::string& jenkins, TimePoint now) const;

    /// Like a store with one writer thread: claims and outcomes wait, in the order they were
    /// asked, until the test runs them (one round of the writer).
    bool one_writer = false;
    /// Like a store with a pool of connections (PostgreSQL): outcomes wait for run_writer() while
    /// claims are answered at once, so a claim can run before an outcome asked earlier commits.
    bool outcomes_later = false;
    /// Like a PostgreSQL connection whose commit is done and whose answer is still on the way:
    /// an outcome is applied at once, and its answer waits for run_writer().
    bool answers_later = false;
    /// Runs the claims and outcomes waiting now, in order (not those they cause); returns how
    /// many ran.
    std::size_t run_writer();

    /// A renewal of this instance's own probe lease waits until release_probe_renewals() (a
    /// store slow to answer it).
    bool probe_renewals_hang = false;
    void release_probe_renewals();

    /// Renewals of claims wait (a store slow to answer them) until answer_renewals_asked_by()
    /// runs those asked at or before a time: each is then applied and answered.
    bool renewals_wait = false;
    void answer_renewals_asked_by(TimePoint asked_by);

    /// Like a store no other instance claims from (SQLite): the dispatcher claims ahead.
    bool single = false;
    bool single_instance() const noexcept override { return single; }

    /// The next this many claim() calls throw (the store's code failing: out of memory, a bug).
    std::size_t claim_throws = 0;
    void claim(ClaimRequest request, ClaimHandler done) override;
    void renew(std::vector<std::string> claim_ids, TimePoint now, std::chrono::milliseconds lease,
               IdsHandler done) override;
    void complete(std::string claim_id, TriggerUpdate update, CompleteHandler done) override;
    void release(std::vector<std::string> claim_ids, VoidHandler done) override;
    void next_due(std::string jenkins, TimeHandler done) override;
    void hold(std::string jenkins, JenkinsHold hold, VoidHandler done) override;
    void try_probe(std::string jenkins, TimePoint now, std::chrono::milliseconds lease,
                   HoldHandler done) override;
    void probe_failed(std::string jenkins, TimePoint next_probe_at, std::string reason,
                      VoidHandler done) override;
    void unhold(std::string jenkins, VoidHandler done) override;
    void queued_predecessors(std::string id, std::size_t limit, PredecessorsHandler done) override;
    void add_note(std::string id, Attempt note, VoidHandler done) override;
    void request_scan(std::string jenkins, std::string project, TimePoint since, TimePoint now,
                      std::chrono::milliseconds interval, ScanHandler done) override;
    void forget_scan(std::string jenkins, std::string project, TimePoint requested_at,
                     VoidHandler done) override;

    /// Last requested scan per "jenkins project".
    std::map<std::string, TimePoint> scans;
    std::size_t scans_granted = 0;

  private:
    bool failing();
    void claim_now(const ClaimRequest& request, const ClaimHandler& done);
    void complete_now(const std::string& claim_id, TriggerUpdate update,
                      const CompleteHandler& done);
    std::vector<std::function<void()>> waiting_;
    std::vector<HoldHandler> hanging_probe_renewals_;
    struct WaitingRenewal {
        std::vector<std::string> claim_ids;
        TimePoint now;
        std::chrono::milliseconds lease;
        IdsHandler done;
    };
    std::vector<WaitingRenewal> waiting_renewals_;
    void renew_now(const std::vector<std::string>& claim_ids, TimePoint now,
                   std::chrono::milliseconds lease, const IdsHandler& done);
    std::size_t next_id_ = 0;
    std::size_t next_claim_ = 0;
};

}  // namespace hookrelay::test
