#include "fakes/fake_queue.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace hookrelay::test {

namespace {

// Ids are "t<n>" in creation order: older rows have smaller numbers.
unsigned long long creation_order(const std::string& id) {
    return std::stoull(id.substr(1));
}

}  // namespace

bool FakeQueue::failing() {
    if (fail_next == 0) return false;
    --fail_next;
    return true;
}

std::string FakeQueue::add(const std::string& jenkins, TimePoint due, const std::string& rule) {
    Row row;
    row.trigger.id = "t" + std::to_string(++next_id_);
    row.trigger.source = "github";
    row.trigger.delivery_id = "d" + std::to_string(next_id_);
    row.trigger.request.rule = rule;
    row.trigger.request.jenkins = jenkins;
    row.trigger.request.job = {"job", row.trigger.id};
    row.trigger.created_at = due;
    row.trigger.next_attempt_at = due;
    const auto id = row.trigger.id;
    rows.emplace(id, std::move(row));
    return id;
}

void FakeQueue::take_over(const std::string& trigger_id) {
    rows.at(trigger_id).claim_id = "other-" + trigger_id;
}

void FakeQueue::hold_by_other(const std::string& jenkins, JenkinsHold hold,
                              const std::string& probing) {
    Hold h;
    h.hold = std::move(hold);
    h.probe_owner = probing;
    h.probe_expires = probing.empty() ? TimePoint{} : TimePoint::max();
    holds[jenkins] = h;
}

std::size_t FakeQueue::live_claims(const std::string& jenkins, TimePoint now) const {
    std::size_t n = 0;
    for (const auto& [id, row] : rows) {
        if (row.trigger.request.jenkins == jenkins && !row.claim_id.empty() &&
            row.claim_expires > now) {
            ++n;
        }
    }
    return n;
}

std::size_t FakeQueue::run_writer() {
    auto round = std::exchange(waiting_, {});
    for (auto& job : round) job();
    return round.size();
}

void FakeQueue::claim(ClaimRequest request, ClaimHandler done) {
    ++claims_asked;
    if (claim_throws > 0) {
        --claim_throws;
        throw std::runtime_error("claim failed in the fake");
    }
    if (one_writer) {
        waiting_.push_back([this, request = std::move(request), done = std::move(done)] {
            claim_now(request, done);
        });
        return;
    }
    claim_now(request, done);
}

void FakeQueue::claim_now(const ClaimRequest& request, const ClaimHandler& done) {
    if (failing()) return done(failure);
    ClaimBatch batch;
    if (auto it = holds.find(request.jenkins); it != holds.end()) {
        batch.hold = it->second.hold;
        return done(std::move(batch));
    }
    std::vector<Row*> due;
    for (auto& [id, row] : rows) {
        const bool open = row.trigger.state == TriggerState::pending ||
                          row.trigger.state == TriggerState::retrying;
        const bool free = row.claim_id.empty() || row.claim_expires <= request.now;
        if (row.trigger.request.jenkins == request.jenkins && open && free &&
            row.trigger.next_attempt_at <= request.now) {
            due.push_back(&row);
        }
    }
    std::sort(due.begin(), due.end(), [](const Row* a, const Row* b) {
        return std::tie(a->trigger.next_attempt_at, a->trigger.created_at, a->trigger.id) <
               std::tie(b->trigger.next_attempt_at, b->trigger.created_at, b->trigger.id);
    });
    std::size_t room = request.limit;
    if (request.max_in_flight > 0) {
        const auto live = live_claims(request.jenkins, request.now);
        room = std::min(room, request.max_in_flight > live ? request.max_in_flight - live : 0);
    }
    for (auto* row : due) {
        if (batch.claims.size() >= room) break;
        row->claim_id = "c" + std::to_string(++next_claim_);
        row->claim_expires = request.now + request.lease;
        batch.claims.push_back({row->trigger, row->claim_id, row->claim_expires});
    }
    done(std::move(batch));
}

void FakeQueue::renew(std::vector<std::string> claim_ids, TimePoint now,
                      std::chrono::milliseconds lease, IdsHandler done) {
    renewed.push_back(claim_ids);
    if (failing()) return done(failure);
    if (renewals_wait) {
        waiting_renewals_.push_back({std::move(claim_ids), now, lease, std::move(done)});
        return;
    }
    renew_now(claim_ids, now, lease, done);
}

// As the stores do: a renewal committed after a later one never shortens the lease.
void FakeQueue::renew_now(const std::vector<std::string>& claim_ids, TimePoint now,
                          std::chrono::milliseconds lease, const IdsHandler& done) {
    std::vector<std::string> held;
    for (const auto& claim_id : claim_ids) {
        for (auto& [id, row] : rows) {
            if (row.claim_id == claim_id) {
                row.claim_expires = std::max(row.claim_expires, now + lease);
                held.push_back(claim_id);
            }
        }
    }
    done(std::move(held));
}

void FakeQueue::answer_renewals_asked_by(TimePoint asked_by) {
    std::vector<WaitingRenewal> due;
    std::vector<WaitingRenewal> later;
    for (auto& r : waiting_renewals_) (r.now <= asked_by ? due : later).push_back(std::move(r));
    waiting_renewals_ = std::move(later);
    for (auto& r : due) renew_now(r.claim_ids, r.now, r.lease, r.done);
}

void FakeQueue::complete(std::string claim_id, TriggerUpdate update, CompleteHandler done) {
    if (one_writer || outcomes_later) {
        waiting_.push_back([this, claim_id = std::move(claim_id), update = std::move(update),
                            done = std::move(done)]() mutable {
            complete_now(claim_id, std::move(update), done);
        });
        return;
    }
    if (answers_later) {
        complete_now(claim_id, std::move(update), [this, done](result<Completion> answer) {
            waiting_.push_back([done, answer] { done(answer); });
        });
        return;
    }
    complete_now(claim_id, std::move(update), done);
}

void FakeQueue::complete_now(const std::string& claim_id, TriggerUpdate update,
                             const CompleteHandler& done) {
    if (failing()) return done(failure);
    auto it = rows.find(update.id);
    if (it == rows.end() || it->second.claim_id != claim_id) {
        stale.push_back(update.id);
        return done(Completion::stale);
    }
    auto& row = it->second;
    row.claim_id.clear();
    row.trigger.state = update.state;
    row.trigger.next_attempt_at = update.next_attempt_at;
    row.trigger.last_outcome = update.last_outcome;
    if (!update.attempt.queue_url.empty()) row.trigger.queue_url = update.attempt.queue_url;
    if (update.attempt.counted) ++row.trigger.attempts;
    // What comes after delivery, as the store records it (store.hpp).
    if (update.build) {
        row.trigger.build = *update.build;
        row.trigger.following = update.state == TriggerState::delivered &&
                                row.trigger.request.follow != FollowMode::none;
    }
    if (update.status && row.trigger.request.status) {
        row.trigger.status.wanted = *update.status;
        ++row.trigger.status.wanted_seq;
    }
    row.history.push_back(update.attempt);
    completed.push_back(update.id);
    // Left open while a newer trigger with the same coalesce scope exists: superseded.
    const auto scope = coalesce_scope(row.trigger.request);
    if (!scope.empty() &&
        (update.state == TriggerState::pending || update.state == TriggerState::retrying)) {
        const StoredTrigger* newest = nullptr;
        for (const auto& [id, other] : rows) {
            const auto& t = other.trigger;
            if (creation_order(id) <= creation_order(update.id) ||
                coalesce_scope(t.request) != scope)
                continue;
            if (t.state != TriggerState::pending && t.state != TriggerState::retrying) continue;
            if (!newest || creation_order(id) > creation_order(newest->id)) newest = &t;
        }
        if (newest) {
            row.trigger.state = TriggerState::superseded;
            row.trigger.superseded_by = newest->id;
            row.trigger.last_outcome = superseded_outcome(newest->id, newest->delivery_id);
            return done(Completion::superseded);
        }
    }
    done(Completion::applied);
}

void FakeQueue::release(std::vector<std::string> claim_ids, VoidHandler done) {
    if (failing()) return done(failure);
    for (const auto& claim_id : claim_ids) {
        released.push_back(claim_id);
        for (auto& [id, row] : rows) {
            if (row.claim_id == claim_id) row.claim_id.clear();
        }
    }
    done(result<void>{});
}

void FakeQueue::next_due(std::string jenkins, TimeHandler done) {
    if (failing()) return done(failure);
    std::optional<TimePoint> next;
    for (const auto& [id, row] : rows) {
        const bool open = row.trigger.state == TriggerState::pending ||
                          row.trigger.state == TriggerState::retrying;
        if (row.trigger.request.jenkins != jenkins || !open) continue;
        auto at = row.trigger.next_attempt_at;
        if (!row.claim_id.empty()) at = std::max(at, row.claim_expires);
        if (!next || at < *next) next = at;
    }
    done(next);
}

void FakeQueue::hold(std::string jenkins, JenkinsHold hold, VoidHandler done) {
    if (failing()) return done(failure);
    auto it = holds.find(jenkins);
    if (it == holds.end()) {
        holds[jenkins].hold = std::move(hold);
    } else {
        it->second.hold.reason = hold.reason;
        it->second.hold.next_probe_at = hold.next_probe_at;
    }
    done(result<void>{});
}

void FakeQueue::try_probe(std::string jenkins, TimePoint now, std::chrono::milliseconds lease,
                          HoldHandler done) {
    if (failing()) return done(failure);
    auto it = holds.find(jenkins);
    if (it == holds.end() || it->second.hold.next_probe_at > now ||
        (!it->second.probe_owner.empty() && it->second.probe_owner != "self" &&
         it->second.probe_expires > now)) {
        return done(std::optional<JenkinsHold>{});
    }
    if (probe_renewals_hang && it->second.probe_owner == "self") {
        hanging_probe_renewals_.push_back(std::move(done));
        return;
    }
    it->second.probe_owner = "self";
    it->second.probe_expires = now + lease;
    ++probes_granted;
    probe_leases.push_back(lease);
    done(std::optional<JenkinsHold>(it->second.hold));
}

void FakeQueue::release_probe_renewals() {
    auto renewals = std::move(hanging_probe_renewals_);
    hanging_probe_renewals_.clear();
    for (auto& done : renewals) done(std::optional<JenkinsHold>{});
}

void FakeQueue::probe_failed(std::string jenkins, TimePoint next_probe_at, std::string reason,
                             VoidHandler done) {
    if (failing()) return done(failure);
    probe_failures.push_back(next_probe_at);
    auto it = holds.find(jenkins);
    if (it != holds.end()) {
        ++it->second.hold.probes;
        it->second.hold.next_probe_at = next_probe_at;
        it->second.hold.reason = std::move(reason);
        it->second.probe_owner.clear();
    }
    done(result<void>{});
}

void FakeQueue::unhold(std::string jenkins, VoidHandler done) {
    if (failing()) return done(failure);
    holds.erase(jenkins);
    ++unholds;
    done(result<void>{});
}

void FakeQueue::queued_predecessors(std::string id, std::size_t limit, PredecessorsHandler done) {
    if (failing()) return done(failure);
    std::vector<QueuedPredecessor> out;
    auto it = rows.find(id);
    if (it == rows.end()) return done(out);
    const auto& me = it->second.trigger;
    const auto scope = coalesce_scope(me.request);
    if (scope.empty()) return done(out);
    for (auto r = rows.rbegin(); r != rows.rend(); ++r) {
        const auto& t = r->second.trigger;
        if (creation_order(t.id) >= creation_order(me.id) || coalesce_scope(t.request) != scope)
            continue;
        if (t.state != TriggerState::delivered || t.build.queue_id <= 0) continue;
        if (t.build.number != 0 || !t.build.result.empty() || !t.build.error.empty()) continue;
        if (t.build.queue_id == me.build.queue_id) continue;
        out.push_back({t.id, t.delivery_id, t.build.queue_id, t.build.queue_url});
    }
    std::sort(out.begin(), out.end(), [&](const auto& a, const auto& b) {
        return creation_order(a.id) > creation_order(b.id);
    });
    if (out.size() > limit) out.resize(limit);
    done(std::move(out));
}

void FakeQueue::add_note(std::string id, Attempt note, VoidHandler done) {
    if (failing()) return done(failure);
    auto it = rows.find(id);
    if (it != rows.end()) it->second.history.push_back(std::move(note));
    done(result<void>{});
}

void FakeQueue::forget_scan(std::string jenkins, std::string project, TimePoint requested_at,
                            VoidHandler done) {
    if (failing()) return done(failure);
    const auto it = scans.find(jenkins + " " + project);
    if (it != scans.end() && it->second == requested_at) scans.erase(it);
    done(result<void>{});
}

void FakeQueue::request_scan(std::string jenkins, std::string project, TimePoint since,
                             TimePoint now, std::chrono::milliseconds interval, ScanHandler done) {
    if (failing()) return done(failure);
    const auto key = jenkins + " " + project;
    auto it = scans.find(key);
    if (it != scans.end() && it->second >= since) {
        return done(ScanGate{ScanGate::Verdict::covered, it->second});
    }
    if (it != scans.end() && it->second + interval > now) {
        return done(ScanGate{ScanGate::Verdict::wait, it->second + interval});
    }
    scans[key] = now;
    ++scans_granted;
    done(ScanGate{ScanGate::Verdict::granted, now});
}

}  // namespace hookrelay::test
