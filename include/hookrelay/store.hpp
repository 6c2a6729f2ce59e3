// The store seam. Three callers, three interfaces, one object per backend:
//  * DeliveryIntake: the webhook pipeline records each accepted delivery and its triggers; the
//    forge is answered only after the store has committed (or refused) it.
//  * TriggerQueue: the dispatcher leases due triggers (claim), keeps its leases alive while
//    requests are in flight (renew), records each outcome only if the lease is still its own
//    (complete: a fencing token, so a stale instance cannot overwrite what another instance or a
//    replay did), gives back what it will not start (release), and shares a Jenkins' held state
//    with every other instance.
//  * AdminQueries: the admin API finds deliveries, replays and redelivers, reports the backlog
//    and the instances.
// Store adds lifecycle, health and observers; open_store() (src/store/factory.hpp) makes one from
// the config. Every backend passes the same contract suite (tests/store/contract/).
//
// Threading, for every method: it may be called from any thread, concurrently; it never blocks
// the caller for I/O; `done` is called exactly once, from any thread (usually the backend's
// own), unless close() ran first. Failures are errc values: is_retryable() tells the retryable
// ones (store_unavailable, store_busy, store_timeout, store_full) from the permanent ones.
#pragma once

#include <hookrelay/error.hpp>
#include <hookrelay/event.hpp>
#include <hookrelay/trigger.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hookrelay {

using TimePoint = std::chrono::system_clock::time_point;

/// A rule that queued nothing for a delivery, and why: what the forge was answered in
/// `skipped` (the rule did not match) and `failures` (it matched, but its trigger could not be
/// rendered).
struct RuleReason {
    std::string rule;
    std::string reason;     ///< e.g. "branch: 'dev' matches none of [main, release/*]"
    bool matched = false;   ///< true: matched, but its trigger could not be rendered
    std::size_t event = 0;  ///< which event of the delivery (0 unless it carried several)

    bool operator==(const RuleReason&) const = default;
};

/// The delivery as received, as the store records it.
struct DeliveryRecord {
    std::string source;
    Provider provider = Provider::github;
    std::string delivery_id;
    EventKind kind = EventKind::other;
    std::string forge_event;
    TimePoint received_at;
    std::vector<std::pair<std::string, std::string>> headers;  ///< the ones that matter, no secrets
    std::string body;                                          ///< raw body as received
    /// SHA-256 of `body` as lowercase hex; when empty the store computes it (PostgreSQL on the
    /// submitting thread; SQLite there for a body it does not keep, as it stores the delivery
    /// where a body window compares it, and otherwise from the kept body when it is read).
    std::string body_sha256;
    /// Above zero: the delivery is a duplicate when this source has a stored delivery with the
    /// same body received at most this long before received_at (its delivery id aside) that was
    /// itself submitted with a window above zero.
    std::chrono::milliseconds duplicate_body_window{0};
    /// The rules that queued nothing for it, with their reasons (kept as given, in order), as
    /// the stores keep them: written by store::RuleReasonsWriter (or store::rule_reasons_json),
    /// read back by store::parse_rule_reasons (src/store/codec.hpp); empty: none.
    std::string rule_reasons;
    /// Of its (first) event, for listings: "acme/app" and "refs/heads/main" ("" when none).
    std::string repository;
    std::string ref;
};

/// What the store answers for an accepted submission.
struct Receipt {
    bool duplicate = false;  ///< seen before (see DeliveryIntake::submit); nothing was queued
    std::vector<std::string> trigger_ids;  ///< one per submitted trigger, same order
    /// When duplicate: the earlier delivery, by its forge delivery id, or "#<seq>" when it has
    /// none (what get_delivery() takes).
    std::string duplicate_of;
    /// When duplicate: found by duplicate_body_window (the same body under another delivery id,
    /// or none), not by the delivery id.
    bool same_body = false;
    /// Triggers of earlier deliveries this submission superseded (see DeliveryIntake::submit):
    /// (the superseded trigger's id, the id of the new trigger that took its place).
    std::vector<std::pair<std::string, std::string>> superseded;
};

/// Where a trigger is in its life. pending → delivered | dead | superseded; retrying waits for a
/// due time. A trigger being attempted stays pending or retrying; its claim says who attempts
/// it. superseded (final): a newer trigger with the same coalesce scope took its place while it
/// waited; it was never sent.
enum class TriggerState { pending, retrying, delivered, dead, superseded };

/// "pending", "retrying", "delivered", "dead", "superseded".
std::string_view to_string(TriggerState state) noexcept;
/// The inverse of to_string; nullopt for anything else.
std::optional<TriggerState> trigger_state_from_string(std::string_view text) noexcept;

/// One try at delivering a trigger to Jenkins, as recorded in its history.
struct Attempt {
    TimePoint at;
    int http_status = 0;  ///< 0 when no HTTP response arrived (refused, reset, timeout)
    std::string outcome;  ///< short text: "queued", "merged into queued item", "HTTP 404", ...
    std::chrono::milliseconds duration{0};
    std::string queue_url;  ///< Jenkins queue item URL (Location), when Jenkins gave one
    /// False when the attempt did not count against the trigger's retry budget (Jenkins was
    /// unreachable or restarting: the whole Jenkins is held instead).
    bool counted = true;
    std::string instance;  ///< the instance that made it ("" for admin entries)
};

/// What hookrelay learned of a delivered trigger's build by following it in Jenkins
/// (jenkins-builds-and-jobs.md): queue item → build number → result.
struct BuildRecord {
    std::string queue_url;      ///< the queue item followed (the 201/303 Location)
    std::int64_t queue_id = 0;  ///< the item's id (…/queue/item/<id>/), 0 when unknown
    /// The delivery answered 303: Jenkins merged it into an item already queued.
    bool merged = false;
    /// When merged: the delivery whose trigger got the same queue item, by forge delivery id
    /// ("#<seq>" when it has none), "" when not known. Filled by the store on complete().
    std::string merged_with;
    std::string why;          ///< while it waits in Jenkins' queue: the item's `why`
    std::int64_t number = 0;  ///< build number, 0 until the build started
    std::string url;          ///< build URL, "" until the build started
    /// "" until known: SUCCESS, UNSTABLE, FAILURE, ABORTED, NOT_BUILT as Jenkins says;
    /// "CANCELLED" when the queue item was cancelled before it started.
    std::string result;
    std::optional<TimePoint> queued_at;    ///< when Jenkins queued it (the delivery's answer)
    std::optional<TimePoint> started_at;   ///< the build's timestamp
    std::optional<TimePoint> finished_at;  ///< started_at + duration, once it finished
    /// Following gave up (max age passed, the item and the build could not be found): why.
    std::string error;
    /// Jenkins' answers in a row that could not be read (a proxy's login page, a cut body):
    /// following gives up after a few; any answer read resets it.
    int unreadable = 0;

    bool operator==(const BuildRecord&) const = default;
};

/// A commit status hookrelay wants its forge to show, forge-neutral: the poster maps the
/// state onto the forge's (GitHub has no `running` or `canceled`: pending and error).
struct StatusWish {
    std::string state;        ///< pending, running, success, failure, error, canceled
    std::string description;  ///< at most 140 characters (GitHub's limit)
    std::string target_url;   ///< "" for none

    bool operator==(const StatusWish&) const = default;
};

/// Where posting a trigger's commit statuses stands. Wishes are numbered; only the newest is
/// posted (a forge outage coalesces the ones it missed into the latest).
struct StatusProgress {
    StatusWish wanted;            ///< the newest wish
    std::int64_t wanted_seq = 0;  ///< 0: no status wished yet
    std::int64_t posted_seq = 0;  ///< wishes up to this one are posted or given up
    StatusWish posted;            ///< what the forge last accepted (state "" when nothing yet)
    int tries = 0;                ///< failed posts of the current wish
    std::string error;            ///< why the last post failed or was given up, "" after success

    bool operator==(const StatusProgress&) const = default;
};

/// A trigger as the store holds it.
struct StoredTrigger {
    std::string id;
    std::string source;       ///< of its delivery
    std::string delivery_id;  ///< forge delivery id of its delivery
    TriggerRequest request;
    TriggerState state = TriggerState::pending;
    int attempts = 0;  ///< counted attempts so far
    TimePoint created_at;
    TimePoint next_attempt_at;  ///< due time (pending/retrying)
    std::string last_outcome;
    std::string queue_url;
    BuildRecord build;      ///< empty until delivered (and followed)
    StatusProgress status;  ///< wanted_seq 0 when no status was wished
    /// The following of its build is not over (follow due or claimed).
    bool following = false;
    /// When superseded: the id of the newer trigger that took its place.
    std::string superseded_by;
};

/// One word for where a trigger stands, as `deliveries list` shows and filters it:
/// "pending", "retrying", "dead", "superseded"; once delivered: "delivered" (not followed),
/// "queued" (in Jenkins' queue), "building" ("started" when it is followed only that far), the
/// build's result
/// ("SUCCESS", "UNSTABLE", "FAILURE", "ABORTED", "NOT_BUILT", "CANCELLED"), or "lost" (following
/// gave up). Backends store it with each write (so listings filter on it) from this one definition.
std::string trigger_outcome(const StoredTrigger& trigger);

/// The commit status a superseded trigger's commit gets (when it has a StatusTarget): canceled,
/// "Not built: superseded by <newer commit or trigger>". Backends set it as the superseded
/// trigger's newest wish, in the same transaction.
StatusWish superseded_wish(const TriggerRequest& newer, const std::string& newer_id);

/// The last_outcome of a superseded trigger: "superseded by trigger <id> (delivery <id>)".
std::string superseded_outcome(const std::string& newer_id, const std::string& newer_delivery);

/// What the dispatcher records after an attempt.
struct TriggerUpdate {
    std::string id;
    TriggerState state = TriggerState::pending;
    TimePoint next_attempt_at;  ///< for pending / retrying
    Attempt attempt;            ///< appended to the history; attempts += 1 when attempt.counted
    std::string last_outcome;   ///< e.g. the reason a trigger went dead
    /// Delivered: its build record as far as known (queue_url, queue_id, merged, queued_at).
    /// Replaces the stored one (when merged, the store fills merged_with). With state delivered
    /// and the request's follow not none, the follow chore starts (tries 0), due at
    /// next_attempt_at: the time of the first poll.
    std::optional<BuildRecord> build;
    /// A commit status to post: becomes the newest wish (wanted_seq += 1, tries 0, error "")
    /// and the status chore is due at once (for any `now`). Ignored for a trigger without a
    /// StatusTarget.
    std::optional<StatusWish> status;
};

// --- Accepting deliveries ------------------------------------------------------------------

class DeliveryIntake {
  public:
    using SubmitHandler = std::function<void(result<Receipt>)>;
    virtual ~DeliveryIntake() = default;

    /// Records `delivery` and queues `triggers` (pending, attempts 0, due at received_at)
    /// atomically and durably (committed and synced before `done`), deduplicating on
    /// (delivery.source, delivery.delivery_id) when the id is non-empty, across every instance
    /// sharing the store, and on (delivery.source, body SHA-256) within
    /// delivery.duplicate_body_window when that is above zero (against deliveries submitted with
    /// a window). A duplicate is not recorded and queues nothing. The body is kept only when
    /// store.keep_body; its SHA-256 always is. Errors: every errc::store_* (nothing recorded).
    ///
    /// Coalescing, in the same transaction: each new trigger with a non-empty coalesce_scope()
    /// supersedes every trigger of an earlier delivery with the same scope that is open (pending
    /// or retrying) and not under an unexpired claim at delivery.received_at (one in flight is
    /// not affected): state superseded, superseded_by the new trigger, last_outcome
    /// superseded_outcome(), and, when it has a StatusTarget, superseded_wish() as its newest
    /// status wish (status chore due at once); its follow chore, if any, ends. Triggers of the
    /// same submission never supersede each other. Holds across instances: concurrent
    /// submissions with the same scope serialize, so exactly one open trigger per scope is left
    /// unclaimed (the last committed). Receipt::superseded lists them.
    virtual void submit(DeliveryRecord delivery, std::vector<TriggerRequest> triggers,
                        SubmitHandler done) = 0;
};

// --- The trigger queue ---------------------------------------------------------------------

/// A lease on one trigger, held by one instance until it expires, is completed or released.
struct Claim {
    StoredTrigger trigger;
    std::string claim_id;  ///< the fencing token: random, unique per claim
    TimePoint expires_at;
};

/// What claim() is asked for.
struct ClaimRequest {
    std::string jenkins;
    std::size_t limit = 0;  ///< at most this many (0: none, but the hold is still reported)
    /// Cap on live claims for this Jenkins over every instance (the Jenkins' max_in_flight, or
    /// twice it while the dispatcher claims ahead with a single_instance() store): claim() never
    /// makes the number of unexpired claims of this Jenkins exceed it. 0: no cap.
    std::size_t max_in_flight = 0;
    TimePoint now;
    std::chrono::milliseconds lease{10'000};  ///< the claims expire at now + lease
};

/// A Jenkins held as down, shared by every instance using the store: while held nobody claims
/// its triggers, and one instance at a time probes it.
struct JenkinsHold {
    std::string reason;  ///< why it was held, e.g. "connect 10.0.0.5:8080: Connection refused"
    TimePoint since;
    TimePoint next_probe_at;
    int probes = 0;  ///< failed probes so far (the caller's backoff)
};

/// The start of JenkinsHold::reason when the Jenkins is held because it refused hookrelay's
/// credentials (status `auth-failed`: released by a reload with working ones) rather than because
/// it is down. Kept in the reason so every backend shares it across instances without a column.
inline constexpr std::string_view k_auth_failed_reason = "auth-failed: ";

/// Whether `hold` is an auth-failed hold (its reason starts with k_auth_failed_reason).
inline bool is_auth_failed(const JenkinsHold& hold) noexcept {
    return std::string_view(hold.reason).starts_with(k_auth_failed_reason);
}

/// What claim() answers.
struct ClaimBatch {
    std::vector<Claim> claims;        ///< oldest due first (next_attempt_at, then creation)
    std::optional<JenkinsHold> hold;  ///< set when the Jenkins is held: claims is then empty
};

/// Whether an outcome was recorded.
enum class Completion {
    applied,  ///< the claim was still ours: state, history and due time updated
    stale,    ///< the claim had expired and was taken over or replayed since:
              ///< nothing changed (the other owner's or the replay's view stands)
    /// The claim was ours and the update would have left the trigger open (pending/retrying),
    /// but a trigger of a later delivery with the same coalesce scope is open (in flight or not),
    /// or was delivered (this only for a trigger queued by its delivery's submit, not one an
    /// admin replayed or redelivered): the attempt is recorded and the trigger is superseded
    /// instead, by the newest open such trigger, else the newest delivered one (superseded_by,
    /// last_outcome and status wish as for a supersede at submit; its due time and claim end).
    superseded,
};

/// A delivered trigger whose Jenkins queue item may still be waiting (see
/// TriggerQueue::queued_predecessors).
struct QueuedPredecessor {
    std::string id;             ///< the older trigger
    std::string delivery_id;    ///< its delivery's forge id ("#<seq>" when none)
    std::int64_t queue_id = 0;  ///< its Jenkins queue item
    std::string queue_url;
};

/// What request_scan() decides for one multibranch project.
struct ScanGate {
    enum class Verdict {
        covered,  ///< a scan was requested at or after `since`: it covers the caller, do nothing
        granted,  ///< the caller scans now (recorded as the project's last scan, at `now`)
        wait,     ///< the last scan is older than `since` but within `interval`: ask again at `at`
    };
    Verdict verdict = Verdict::granted;
    TimePoint at;  ///< covered: when the covering scan was requested; wait: when one may be
};

class TriggerQueue {
  public:
    using ClaimHandler = std::function<void(result<ClaimBatch>)>;
    using IdsHandler = std::function<void(result<std::vector<std::string>>)>;
    using CompleteHandler = std::function<void(result<Completion>)>;
    using VoidHandler = std::function<void(result<void>)>;
    using TimeHandler = std::function<void(result<std::optional<TimePoint>>)>;
    using HoldHandler = std::function<void(result<std::optional<JenkinsHold>>)>;
    virtual ~TriggerQueue() = default;

    /// Leases up to request.limit triggers of request.jenkins that are open (pending or
    /// retrying), due (next_attempt_at <= now) and not under an unexpired claim (expired claims
    /// of a dead instance are taken over), within request.max_in_flight, for this instance.
    /// Each gets a new claim_id. When the Jenkins is held, nothing is claimed and the hold is
    /// answered. Concurrent claims (from any instance) never lease the same trigger twice.
    virtual void claim(ClaimRequest request, ClaimHandler done) = 0;

    /// True when no other instance claims from this store (SQLite: the state directory is
    /// locked to one daemon), so a Jenkins' requests in flight are all this instance's and the
    /// dispatcher may claim triggers ahead of its free request slots.
    virtual bool single_instance() const noexcept { return false; }

    /// Extends the claims named (this instance's, unexpired or not yet taken over) to now +
    /// lease. `done` gets the ids still held; a missing id was lost (taken over, replayed,
    /// completed).
    virtual void renew(std::vector<std::string> claim_ids, TimePoint now,
                       std::chrono::milliseconds lease, IdsHandler done) = 0;

    /// Records one attempt's outcome (state, due time, last_outcome, queue_url when non-empty,
    /// attempts += 1 when counted, the attempt appended to the history, its instance this one
    /// when left empty) and ends the claim, if and only if `claim_id` still holds update.id;
    /// otherwise nothing changes and the answer is Completion::stale.
    virtual void complete(std::string claim_id, TriggerUpdate update, CompleteHandler done) = 0;

    /// Ends claims without recording anything (the triggers are due as before): triggers this
    /// instance leased but will not attempt (stopping). Unknown or stale ids are ignored.
    virtual void release(std::vector<std::string> claim_ids, VoidHandler done) = 0;

    /// When claim() could next lease something of `jenkins`: the earliest due time of its open
    /// triggers (for a claimed one, its claim's expiry if later); nullopt when it has none.
    virtual void next_due(std::string jenkins, TimeHandler done) = 0;

    /// Holds `jenkins` (a no-op on `since` and `probes` when already held; reason and
    /// next_probe_at are updated).
    virtual void hold(std::string jenkins, JenkinsHold hold, VoidHandler done) = 0;

    /// Gives this instance the right to probe `jenkins` now: when it is held, its next_probe_at
    /// has come, and no other instance holds an unexpired probe lease (now + lease). `done` gets
    /// the hold when granted, nullopt otherwise (not held, not yet time, someone else probing).
    virtual void try_probe(std::string jenkins, TimePoint now, std::chrono::milliseconds lease,
                           HoldHandler done) = 0;

    /// After a probe that found Jenkins still down: probes += 1, next_probe_at and reason set,
    /// the probe lease ended. Nothing changes when another instance holds the probe lease now
    /// (this one's ran out and was granted to it): that probe's outcome counts instead.
    virtual void probe_failed(std::string jenkins, TimePoint next_probe_at, std::string reason,
                              VoidHandler done) = 0;

    /// Ends the hold (a probe found Jenkins answering): its triggers are claimable again.
    virtual void unhold(std::string jenkins, VoidHandler done) = 0;

    using PredecessorsHandler = std::function<void(result<std::vector<QueuedPredecessor>>)>;
    using ScanHandler = std::function<void(result<ScanGate>)>;

    /// Delivered triggers of deliveries earlier than trigger `id`'s, with its coalesce scope,
    /// whose build has not been seen to start: queue_id > 0, number 0, result "" and error "",
    /// and a queue_id other than `id`'s own (a 303 merge shares the item). Newest first, at most
    /// `limit`. Empty for a trigger without a coalesce scope or an unknown id.
    virtual void queued_predecessors(std::string id, std::size_t limit,
                                     PredecessorsHandler done) = 0;

    /// Appends `note` to trigger `id`'s history (instance "" stays an admin entry; counted is
    /// ignored: attempts do not change), and nothing else. Unknown ids are ignored.
    virtual void add_note(std::string id, Attempt note, VoidHandler done) = 0;

    /// The rate limit on multibranch scans, shared by every instance: for (jenkins, project)
    /// with its last requested scan at L (none: never), covered when L >= since; else granted
    /// (L := now) when there is no L or L + interval <= now; else wait until L + interval.
    /// Concurrent callers (any instance) are never both granted within one interval.
    virtual void request_scan(std::string jenkins, std::string project, TimePoint since,
                              TimePoint now, std::chrono::milliseconds interval,
                              ScanHandler done) = 0;

    /// The scan granted at `requested_at` did not reach Jenkins (it was down, throttling or
    /// refused us): the project's last scan is forgotten if it is still that one, so it covers
    /// nobody and the next request_scan() is granted. A later grant is left alone.
    virtual void forget_scan(std::string jenkins, std::string project, TimePoint requested_at,
                             VoidHandler done) = 0;
};

// --- Chores: following builds and posting statuses ----------------------------------------

/// Work that comes after a trigger's delivery, leased like triggers (claim id fencing, leases
/// that expire and are taken over, durable across restarts and instances) but on its own lease,
/// so it never holds up delivery.
///  * follow: poll Jenkins for the build of a delivered trigger whose follow is due; keyed by
///    Jenkins name; a held Jenkins gives nothing (and its hold), like claim().
///  * status: post the newest status wish of a trigger whose wanted_seq > posted_seq and whose
///    status is due; keyed by source name.
enum class Chore { follow, status };

/// "follow", "status".
std::string_view to_string(Chore chore) noexcept;

struct ChoreRequest {
    Chore chore = Chore::follow;
    std::string key;        ///< the Jenkins (follow) or the source (status)
    std::size_t limit = 0;  ///< at most this many
    /// Cap on unexpired claims of this chore and key over every instance (0: no cap).
    std::size_t max_in_flight = 0;
    TimePoint now;
    std::chrono::milliseconds lease{30'000};
};

/// A lease on one trigger's chore. The trigger carries its build record, status progress and
/// request (StatusTarget, follow mode).
struct ChoreClaim {
    StoredTrigger trigger;
    std::string claim_id;  ///< fencing token, unique per claim
    TimePoint expires_at;
    int tries = 0;  ///< the chore's tries so far (follow: failed polls in a row)
};

struct ChoreBatch {
    std::vector<ChoreClaim> claims;   ///< earliest due first
    std::optional<JenkinsHold> hold;  ///< follow: the Jenkins is held (claims then empty)
};

/// What a chore's worker records, if its claim is still its own.
struct ChoreUpdate {
    std::string id;  ///< the trigger
    /// Due again then (the chore goes on); nullopt: the chore is finished (follow: nothing
    /// more to follow; status: the wish posted_seq names is dealt with).
    std::optional<TimePoint> next_at;
    int tries = 0;  ///< stored as the chore's tries
    /// follow: the build record as it is now (replaces the stored one).
    std::optional<BuildRecord> build;
    /// follow: a new status wish (as TriggerUpdate::status; the status chore is due now).
    std::optional<StatusWish> status;
    /// status: the wanted_seq this post carried. When next_at is nullopt, posted_seq becomes it
    /// (if higher); should a newer wish have come meanwhile, the status chore is due again at
    /// once (tries 0).
    std::int64_t posted_seq = 0;
    /// status: what the forge accepted (sets StatusProgress::posted); nullopt when it failed or
    /// was given up.
    std::optional<StatusWish> posted;
    std::string error;  ///< status: StatusProgress::error ("" after a success)
};

/// What complete_and_claim() answers: the completion, then what the claim after it got.
struct CompletionAndClaims {
    Completion completion = Completion::applied;
    ChoreBatch next;
};

class ChoreQueue {
  public:
    using ChoreHandler = std::function<void(result<ChoreBatch>)>;
    using CompleteHandler = std::function<void(result<Completion>)>;
    using CompleteAndClaimHandler = std::function<void(result<CompletionAndClaims>)>;
    virtual ~ChoreQueue() = default;

    /// Leases up to request.limit due chores of request.chore for request.key that are not under
    /// an unexpired claim, within request.max_in_flight, for this instance. Follow: nothing while
    /// the Jenkins is held (the hold is answered).
    virtual void claim_chores(ChoreRequest request, ChoreHandler done) = 0;

    /// Records `update` if and only if `claim_id` still holds update.id's `chore` (a replay of
    /// the trigger ends its follow claim: the replayed delivery is followed afresh), and ends
    /// the claim; otherwise Completion::stale and nothing changes.
    virtual void complete_chore(Chore chore, std::string claim_id, ChoreUpdate update,
                                CompleteHandler done) = 0;

    /// complete_chore(chore, claim_id, update), then claim_chores(next) with the completed claim
    /// no longer counted, as one store call: a worker that goes on to the next due chore waits
    /// for the store once per chore instead of twice. The claim is made whether the completion
    /// applied or was stale. SQLite does both or neither (one savepoint in its transaction);
    /// PostgreSQL commits the completion, then claims in a second transaction, so a failure of
    /// the claim answers the error with the completion recorded. A call that times out on the
    /// caller's side may still complete and claim; release_chores() gives such claims back.
    virtual void complete_and_claim(Chore chore, std::string claim_id, ChoreUpdate update,
                                    ChoreRequest next, CompleteAndClaimHandler done) = 0;

    /// Ends this instance's claims `claim_ids` of `chore` without recording anything: the chores
    /// are due as they were (a claim answered after the caller stopped waiting for it). Unknown
    /// ids, and claims completed or taken over since, are ignored.
    virtual void release_chores(Chore chore, std::vector<std::string> claim_ids,
                                std::function<void(result<void>)> done) = 0;
};

// --- Admin queries -------------------------------------------------------------------------

/// One delivery as the admin API lists it.
struct DeliverySummary {
    std::int64_t seq = 0;  ///< the store's own id: increasing, used as the listing cursor
    std::string source;
    Provider provider = Provider::github;
    std::string delivery_id;  ///< forge delivery id ("" when the forge sent none)
    EventKind kind = EventKind::other;
    std::string forge_event;
    TimePoint received_at;
    std::size_t pending = 0;    ///< triggers pending or retrying
    std::size_t delivered = 0;  ///< triggers delivered
    std::size_t dead = 0;       ///< triggers dead
    std::string repository;     ///< DeliveryRecord::repository
    std::string ref;            ///< DeliveryRecord::ref
    /// Each trigger's Jenkins and trigger_outcome(), in creation order (empty: no rule matched).
    std::vector<std::pair<std::string, std::string>> outcomes;
};

/// A trigger with its whole history, for `deliveries show`.
struct TriggerHistory {
    StoredTrigger trigger;
    TimePoint updated_at;
    std::vector<Attempt> attempts;  ///< oldest first
    std::string claimed_by;         ///< the instance attempting it now ("" when none)
};

/// Everything stored about one delivery.
struct DeliveryDetail {
    DeliverySummary summary;
    std::vector<std::pair<std::string, std::string>> headers;
    std::optional<std::string> body;  ///< absent when store.keep_body is false or body_error
    /// Why the stored body cannot be read back (its bytes in the store are damaged); body is
    /// then absent. Empty otherwise.
    std::string body_error;
    /// The body's SHA-256 (64 lowercase hex digits). SQLite computes a kept body's when it is
    /// read; empty when that body no longer reads (body_error).
    std::string body_sha256;
    /// DeliveryRecord::rule_reasons as submitted; nullopt for a delivery recorded before the
    /// store kept them.
    std::optional<std::vector<RuleReason>> rule_reasons;
    std::vector<TriggerHistory> triggers;  ///< in creation order
};

/// Filters for listing deliveries; newest first.
struct DeliveryQuery {
    std::string source;                 ///< "" = any
    std::optional<TriggerState> state;  ///< only deliveries with a trigger in this state
    std::optional<TimePoint> since;     ///< received at or after
    std::size_t limit = 50;
    std::optional<std::int64_t> before_seq;  ///< cursor: only seq < this
    /// "" = any; a trigger_outcome() word: only deliveries with a trigger of that outcome;
    /// "held": with an open trigger whose Jenkins is held; "unmatched": with no trigger.
    std::string outcome;
};

struct DeliveryPage {
    std::vector<DeliverySummary> items;
    std::optional<std::int64_t> next_before_seq;  ///< set when more items may follow
};

/// Which triggers a bulk replay takes.
struct ReplayQuery {
    TriggerState state = TriggerState::dead;
    std::optional<TimePoint> since;  ///< last updated at or after
    std::string jenkins;             ///< "" = any
    std::size_t limit = 1000;
    bool dry_run = false;  ///< only list the ids that would be re-queued; change nothing
};

/// What a replay did.
struct Replayed {
    /// Re-queued (a dry run: would be), in the order asked (a bulk replay: oldest first).
    std::vector<std::string> ids;
    /// Left as they were: claimed now (an unexpired claim), so their request to Jenkins may be
    /// on its way; re-queued as well, both could start a build. Replay them once the claim has
    /// its outcome or has expired.
    std::vector<std::string> in_flight;
};

/// One daemon using the store.
struct InstanceInfo {
    std::string id;
    std::string host;
    std::string version;
    TimePoint started_at;
    TimePoint heartbeat_at;
    std::size_t claims = 0;  ///< unexpired claims it holds
    /// Its Jenkins entries, name → url as its config gives them (Store::set_jenkins_urls());
    /// empty when it did not say (a hookrelay before schema version 11 on PostgreSQL).
    std::map<std::string, std::string> jenkins;
};

/// Where instances sharing a store disagree on a Jenkins entry's url: per Jenkins name, one line
/// ("jenkins ci is http://a/ on relay-a-1, relay-b-2 but http://b/ on relay-c-3", urls in order,
/// instances as listed). A trigger is sent, followed and held by whichever instance claims it,
/// with that instance's entry: instances that disagree send builds to both. Instances that did
/// not say (empty `jenkins`) and names only some instances have are left out.
std::map<std::string, std::string> jenkins_disagreements(
    const std::vector<InstanceInfo>& instances);

class AdminQueries {
  public:
    using PageHandler = std::function<void(result<DeliveryPage>)>;
    using DetailHandler = std::function<void(result<std::optional<DeliveryDetail>>)>;
    using IdsHandler = std::function<void(result<std::vector<std::string>>)>;
    using CountsHandler =
        std::function<void(result<std::vector<std::pair<std::string, std::size_t>>>)>;
    using InstancesHandler = std::function<void(result<std::vector<InstanceInfo>>)>;
    using ReplayHandler = std::function<void(result<Replayed>)>;
    using HoldsHandler = std::function<void(result<std::map<std::string, JenkinsHold>>)>;
    virtual ~AdminQueries() = default;

    /// Deliveries matching `query`, newest first by seq; `query.limit` is capped at 1000. A page
    /// may hold fewer than the limit and still set next_before_seq (a backend bounds the rows
    /// one page reads): following next_before_seq until it is unset lists every match once.
    virtual void list_deliveries(DeliveryQuery query, PageHandler done) = 0;

    /// One delivery by forge delivery id (`source` "" = any source; the newest if several), or
    /// by the store's seq when `delivery_id` is "#<seq>". nullopt when unknown.
    virtual void get_delivery(std::string source, std::string delivery_id, DetailHandler done) = 0;

    /// The delivery that holds the trigger `trigger_id` (as get_delivery answers it, that
    /// trigger among its triggers). nullopt when no stored trigger has that id.
    virtual void get_delivery_of_trigger(std::string trigger_id, DetailHandler done) = 0;

    /// Re-queues the given triggers with a fresh retry budget (state pending, attempts 0, age
    /// counted from `now`, due now), recording a "replayed" entry in each history. Their build
    /// record is cleared and any follow chore ended (claim included); their status progress
    /// stays; superseded_by is cleared (a superseded trigger can be replayed; replaying
    /// supersedes nothing). A trigger with an unexpired claim at `now` is left as it is and
    /// listed in Replayed::in_flight (its build request may be on its way); an expired claim is
    /// ended (its holder's outcome is then stale). Unknown and repeated ids are skipped.
    virtual void replay(std::vector<std::string> trigger_ids, TimePoint now,
                        ReplayHandler done) = 0;

    /// The same for the first query.limit triggers matching `query`, oldest first (those claimed
    /// count against the limit too); with query.dry_run nothing changes and Replayed says what
    /// would.
    virtual void replay_matching(ReplayQuery query, TimePoint now, ReplayHandler done) = 0;

    /// Adds triggers to an already stored delivery (redelivery through the current rules),
    /// pending and due now. `done` gets their ids, in order; empty when the delivery is unknown.
    virtual void add_triggers(std::string source, std::string delivery_id,
                              std::vector<TriggerRequest> triggers, IdsHandler done) = 0;

    /// Open (pending + retrying) trigger count per Jenkins name, over the whole store.
    virtual void backlog(CountsHandler done) = 0;

    /// Every instance that heartbeated within the last few leases, this one included.
    virtual void instances(InstancesHandler done) = 0;

    /// Every held Jenkins.
    virtual void holds(HoldsHandler done) = 0;
};

// --- The store -----------------------------------------------------------------------------

/// Whether the store can take work right now.
struct StoreHealth {
    bool ok = true;
    std::string detail;  ///< why not, e.g. "PostgreSQL: connection refused (reconnecting)"
};

class Store : public DeliveryIntake, public TriggerQueue, public ChoreQueue, public AdminQueries {
  public:
    using IdsHandler = AdminQueries::IdsHandler;  // the same type in both bases
    using CompleteHandler = TriggerQueue::CompleteHandler;
    ~Store() override = default;

    /// Short name for logs: "sqlite", "postgres".
    virtual std::string_view kind() const noexcept = 0;
    /// This instance's Jenkins entries (name → url, never credentials), shown to the other
    /// instances by instances() from its next heartbeat on, so that a disagreement can be told
    /// (jenkins_disagreements()). Thread-safe. A store of one instance (SQLite) ignores it.
    virtual void set_jenkins_urls(std::map<std::string, std::string> /*urls*/) {}
    /// This daemon's id in the store (claims, instance list).
    virtual const std::string& instance_id() const noexcept = 0;

    /// The last operation's outcome: not ok after a failure until an operation succeeds again.
    virtual StoreHealth health() const = 0;
    /// Deliveries answered from the intake log (SQLite, store.intake_log) and not yet in the
    /// database; 0 for a store without one.
    virtual std::size_t unindexed() const { return 0; }

    /// Finishes (or fails) the work already queued, ends this instance's claims (release; its
    /// chore claims too), deregisters the instance, and stops the backend's threads. After it
    /// returns no callback runs any more. Idempotent; the destructor does the same.
    virtual void close() = 0;

    /// Deletes delivered, dead and superseded triggers last updated before `now - store.retention`
    /// (but not one still followed, nor one with a status wish not yet posted), their history, and
    /// deliveries received before that cutoff with no triggers left. One instance at a time
    /// (others skip). `done` gets the number of deliveries removed. The work is done in bounded
    /// steps, each committed on its own, so submissions are never held for a whole pass; a pass
    /// cut short by close() answers nothing. Backends also prune by themselves every
    /// store.prune_interval.
    virtual void prune(TimePoint now, std::function<void(result<std::size_t>)> done) = 0;

    // --- Observers. Callbacks accumulate and run on the backend's thread; keep them cheap.

    /// Triggers became due on some instance (submit, replay, redelivery, a hold ended): claim
    /// now rather than at the next poll. Notifications may be coalesced or (across instances)
    /// lost: the dispatcher's poll is the safety net.
    virtual void on_committed(std::function<void()> callback) = 0;
    /// A one-line description of each failure inside the store, for the log. What a backend
    /// reported before the first callback was registered (while it opened) is handed to that
    /// one, up to 16 lines.
    virtual void on_error(std::function<void(std::string_view)> callback) = 0;
    /// After every submit transaction: its duration and number of deliveries.
    virtual void on_commit_stats(
        std::function<void(std::chrono::duration<double>, std::size_t)> callback) = 0;
};

}  // namespace hookrelay
