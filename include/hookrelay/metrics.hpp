// The metrics seam: the pipeline reports what happens; an implementation (Prometheus, in
// src/metrics/) counts it. Labels are low-cardinality by construction: source, provider, rule,
// jenkins, outcome, HTTP status code. All methods are thread-safe and cheap (no I/O).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace hookrelay {

class Metrics {
  public:
    using Seconds = std::chrono::duration<double>;
    virtual ~Metrics() = default;

    /// A webhook request on a source path was answered with `status`.
    virtual void webhook(std::string_view source, std::string_view provider, unsigned status) = 0;
    /// A webhook request on a source path was answered `duration` after its body was read
    /// (verification, rules and the store commit: what the forge waits for).
    virtual void webhook_duration(std::string_view source, Seconds duration) = 0;
    /// A delivery failed verification (bad or missing signature or token).
    virtual void signature_failure(std::string_view source) = 0;
    /// A delivery id was seen before on this source.
    virtual void duplicate(std::string_view source) = 0;
    /// `count` triggers were queued for `rule` and `jenkins`.
    virtual void triggers_queued(std::string_view rule, std::string_view jenkins,
                                 std::size_t count) = 0;
    /// A trigger attempt ended: outcome is "delivered", "merged", "retried", "dead" or "held".
    virtual void trigger_outcome(std::string_view rule, std::string_view jenkins,
                                 std::string_view outcome) = 0;
    /// From the webhook's receipt to Jenkins' 2xx, for a delivered trigger.
    virtual void delivery_latency(std::string_view jenkins, Seconds latency) = 0;
    /// One request to Jenkins; status 0 when no response arrived.
    virtual void jenkins_request(std::string_view jenkins, int status, Seconds duration) = 0;
    /// One store transaction with `batch` deliveries.
    virtual void store_commit(Seconds duration, std::size_t batch) = 0;
    /// The store failed to record a delivery (answered 503).
    virtual void store_failure() = 0;
    /// The store reported a fault (one line of its on_error(): a failed commit, claim,
    /// heartbeat or checkpoint).
    virtual void store_error() = 0;
    /// Open (pending + retrying) triggers for `jenkins` right now.
    virtual void backlog(std::string_view jenkins, std::size_t depth) = 0;
    /// Deliveries answered from the intake log and not yet in the database, right now.
    virtual void store_unindexed(std::size_t count) = 0;
    /// Whether `jenkins` is held (down, being probed) right now.
    virtual void jenkins_held(std::string_view jenkins, bool held) = 0;
    /// Whether `jenkins` is held because it refuses hookrelay's credentials right now; `key` is
    /// the config key to fix (e.g. "jenkins.ci.api_token").
    virtual void jenkins_auth_failed(std::string_view jenkins, std::string_view key,
                                     bool failed) = 0;
    /// A configuration reload was attempted.
    virtual void config_reload(bool ok) = 0;
    /// The latest check of the config against `jenkins` (at start, after each reload) found
    /// `count` problems.
    virtual void config_findings(std::string_view jenkins, std::size_t count) = 0;
    /// A followed trigger's build started, `wait` after the webhook was received.
    virtual void build_started(std::string_view rule, std::string_view jenkins, Seconds wait) = 0;
    /// A followed trigger's build finished with `result` (SUCCESS, FAILURE, ..., CANCELLED),
    /// `since_receipt` after the webhook was received.
    virtual void build_finished(std::string_view rule, std::string_view jenkins,
                                std::string_view result, Seconds since_receipt) = 0;
    /// Following a trigger gave up (the build could not be found or read).
    virtual void follow_failure(std::string_view jenkins) = 0;
    /// Posting a commit status came to `outcome`: "posted", "ignored", "retry", "refused",
    /// "given_up".
    virtual void status_post(std::string_view source, std::string_view outcome) = 0;
};

/// Records nothing (tools such as `explain`, unit tests).
std::shared_ptr<Metrics> null_metrics();

}  // namespace hookrelay
