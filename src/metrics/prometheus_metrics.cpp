#include "metrics/prometheus_metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <cassert>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace hookrelay::metrics {

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

// From a fast Jenkins on the same network (tens of milliseconds) to one that was down for an hour
// while its triggers waited.
const Histogram::BucketBoundaries k_latency_buckets{0.01, 0.05, 0.1, 0.25, 0.5, 1,    2.5,
                                                    5,    10,   30,  60,   300, 1800, 3600};
// One HTTP exchange, bounded by JenkinsConfig's request_timeout (30 s by default).
const Histogram::BucketBoundaries k_request_buckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                    0.5,   1,    2.5,   5,    10,  30};
// One SQLite transaction with its fsync: sub-millisecond on tmpfs, up to a second on a busy disk.
const Histogram::BucketBoundaries k_commit_buckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                   0.05,   0.1,   0.25,   0.5,   1};
// Answering a webhook: verify, match, and the store's group commit with its fsync; the forges
// give up after 10 s.
const Histogram::BucketBoundaries k_webhook_buckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                    0.1,   0.25,   0.5,   1,    2.5,   10};
// Group commit sizes, up to StoreConfig::max_batch's default (512).
const Histogram::BucketBoundaries k_batch_buckets{1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
// Builds: seconds to hours (queue waits, whole pipelines).
const Histogram::BucketBoundaries k_build_buckets{1,   5,    15,   30,   60,   120,  300,
                                                  600, 1200, 1800, 3600, 7200, 14400};

// The series of one family, found by their label values. Family::Add builds a std::map of the
// labels, hashes it and looks it up under the family's lock: ~0.4-0.6 us a call, and a webhook and
// its trigger make several. Here a lookup is one hash of the values, packed into a per-thread
// buffer, under a lock of this cache's own; a series is added to the family once, on first use.
// prometheus-cpp never frees a series hookrelay does not remove (it removes none), so the pointers
// stay valid as long as the family, and the cache holds one per series the family holds.
template <typename T, std::size_t N>
class Series {
  public:
    Series(Family<T>& family, std::array<const char*, N> names) : family_(family), names_(names) {}

    /// The series with these label values (in the order of the names); `args` are what the
    /// family needs to create one (a histogram's buckets).
    template <typename... Args>
    T& operator()(const std::array<std::string_view, N>& values, const Args&... args) {
        // Each value with its length first, so that no two lists of values pack the same.
        thread_local std::string key;
        key.clear();
        for (const auto value : values) {
            const auto size = static_cast<std::uint32_t>(value.size());
            key.append(reinterpret_cast<const char*>(&size), sizeof size).append(value);
        }
        std::lock_guard lock(mutex_);
        if (const auto found = series_.find(key); found != series_.end()) return *found->second;
        std::map<std::string, std::string> labels;
        for (std::size_t i = 0; i < N; ++i) labels.emplace(names_[i], values[i]);
        T& series = family_.Add(labels, args...);
        series_.emplace(key, &series);
        return series;
    }

  private:
    Family<T>& family_;
    const std::array<const char*, N> names_;
    std::mutex mutex_;
    std::unordered_map<std::string, T*> series_;
};

}  // namespace

// Every family hookrelay exports. Names and labels are a stable interface: rename nothing, add
// freely. Label values come from the configuration (source, rule and jenkins names) or from small
// fixed sets, so cardinality stays low.
struct PrometheusMetrics::Families {
    // Declared first: the families below live inside it.
    prometheus::Registry registry;

    // hookrelay_webhooks_received_total{source,provider,code}: webhook requests per source path,
    // by the HTTP status hookrelay answered (202, 200 for pings and duplicates, 401, 400, 413,
    // 503, ...).
    Family<Counter>& webhooks = prometheus::BuildCounter()
                                    .Name("hookrelay_webhooks_received_total")
                                    .Help("Webhook requests received, by the HTTP status answered.")
                                    .Register(registry);
    // hookrelay_webhook_duration_seconds{source}: from a request's body being read to its answer
    // (verification, rules, store commit), for requests on a source's path.
    Family<Histogram>& webhook_duration =
        prometheus::BuildHistogram()
            .Name("hookrelay_webhook_duration_seconds")
            .Help("Time to answer a webhook once its body was read (verify, rules, store commit).")
            .Register(registry);
    // hookrelay_signature_failures_total{source}: deliveries rejected because their signature or
    // token was missing or wrong.
    Family<Counter>& signature_failures =
        prometheus::BuildCounter()
            .Name("hookrelay_signature_failures_total")
            .Help("Deliveries rejected for a missing or wrong signature or token.")
            .Register(registry);
    // hookrelay_duplicates_total{source}: redeliveries of a delivery id already stored.
    Family<Counter>& duplicates = prometheus::BuildCounter()
                                      .Name("hookrelay_duplicates_total")
                                      .Help("Deliveries whose id was seen before on the source.")
                                      .Register(registry);
    // hookrelay_triggers_queued_total{rule,jenkins}: triggers stored for delivery.
    Family<Counter>& triggers_queued = prometheus::BuildCounter()
                                           .Name("hookrelay_triggers_queued_total")
                                           .Help("Jenkins triggers queued, by rule and Jenkins.")
                                           .Register(registry);
    // hookrelay_trigger_attempts_total{rule,jenkins,outcome}: ends of trigger attempts; outcome is
    // delivered, merged (Jenkins folded it into a queued build), retried, dead (gave up), held
    // (Jenkins was down, the trigger waits without spending an attempt), superseded (a newer
    // trigger with the same coalesce key took its place; never sent) or cancelled (the Jenkins
    // queue item of a superseded delivered trigger was cancelled: cancel_superseded).
    Family<Counter>& trigger_attempts = prometheus::BuildCounter()
                                            .Name("hookrelay_trigger_attempts_total")
                                            .Help("Trigger attempts, by outcome.")
                                            .Register(registry);
    // hookrelay_triggers_{delivered,merged,retried,dead}_total{jenkins}: the same outcomes summed
    // over rules, for simple per-Jenkins dashboards and alerts (dead > 0).
    Family<Counter>& delivered = prometheus::BuildCounter()
                                     .Name("hookrelay_triggers_delivered_total")
                                     .Help("Triggers Jenkins accepted.")
                                     .Register(registry);
    Family<Counter>& merged = prometheus::BuildCounter()
                                  .Name("hookrelay_triggers_merged_total")
                                  .Help("Triggers Jenkins merged into an already queued build.")
                                  .Register(registry);
    Family<Counter>& retried = prometheus::BuildCounter()
                                   .Name("hookrelay_triggers_retried_total")
                                   .Help("Trigger attempts that failed and were rescheduled.")
                                   .Register(registry);
    Family<Counter>& dead = prometheus::BuildCounter()
                                .Name("hookrelay_triggers_dead_total")
                                .Help("Triggers given up on (dead letters).")
                                .Register(registry);
    Family<Counter>& superseded =
        prometheus::BuildCounter()
            .Name("hookrelay_triggers_superseded_total")
            .Help("Triggers superseded by a newer one with the same coalesce key (never sent).")
            .Register(registry);
    // hookrelay_delivery_latency_seconds{jenkins}: from the webhook's receipt to Jenkins' 2xx.
    Family<Histogram>& delivery_latency =
        prometheus::BuildHistogram()
            .Name("hookrelay_delivery_latency_seconds")
            .Help("Time from receiving a webhook to Jenkins accepting its trigger.")
            .Register(registry);
    // hookrelay_jenkins_request_duration_seconds{jenkins,code}: one HTTP request to Jenkins; code
    // is the HTTP status, "0" when no response arrived (refused, reset, timed out, TLS failure).
    Family<Histogram>& jenkins_requests =
        prometheus::BuildHistogram()
            .Name("hookrelay_jenkins_request_duration_seconds")
            .Help("Duration of HTTP requests to Jenkins, by status (0: no response).")
            .Register(registry);
    // hookrelay_store_commit_duration_seconds: one store transaction, fsync included.
    Family<Histogram>& store_commit_duration = prometheus::BuildHistogram()
                                                   .Name("hookrelay_store_commit_duration_seconds")
                                                   .Help("Duration of store transactions.")
                                                   .Register(registry);
    // hookrelay_store_commit_batch_size: deliveries committed together in one transaction.
    Family<Histogram>& store_commit_batch = prometheus::BuildHistogram()
                                                .Name("hookrelay_store_commit_batch_size")
                                                .Help("Deliveries per store transaction.")
                                                .Register(registry);
    // hookrelay_store_failures_total: deliveries the store could not record (answered 503).
    Family<Counter>& store_failures = prometheus::BuildCounter()
                                          .Name("hookrelay_store_failures_total")
                                          .Help("Deliveries the store failed to record.")
                                          .Register(registry);
    // hookrelay_store_errors_total: faults the store reported (each `store: ...` log line, before
    // the log's rate limit): failed commits, claims, heartbeats, checkpoints.
    Family<Counter>& store_errors = prometheus::BuildCounter()
                                        .Name("hookrelay_store_errors_total")
                                        .Help("Faults the store reported (see the log).")
                                        .Register(registry);
    // hookrelay_backlog{jenkins}: open (pending and retrying) triggers right now.
    Family<Gauge>& backlog = prometheus::BuildGauge()
                                 .Name("hookrelay_backlog")
                                 .Help("Open (pending and retrying) triggers per Jenkins.")
                                 .Register(registry);
    // hookrelay_store_unindexed: deliveries answered from the intake log, not yet in the database.
    Family<Gauge>& unindexed = prometheus::BuildGauge()
                                   .Name("hookrelay_store_unindexed")
                                   .Help(
                                       "Deliveries answered from the intake log and not yet "
                                       "in the database.")
                                   .Register(registry);
    // hookrelay_jenkins_held{jenkins}: 1 while a Jenkins is held (down, being probed; or refusing
    // our credentials, see hookrelay_jenkins_auth_failed), else 0.
    Family<Gauge>& held = prometheus::BuildGauge()
                              .Name("hookrelay_jenkins_held")
                              .Help(
                                  "1 while the Jenkins is held (unavailable or refusing "
                                  "hookrelay's credentials), else 0.")
                              .Register(registry);
    // hookrelay_jenkins_auth_failed{jenkins,key}: 1 while a Jenkins refuses our credentials; key
    // names the config entry to fix.
    Family<Gauge>& auth_failed = prometheus::BuildGauge()
                                     .Name("hookrelay_jenkins_auth_failed")
                                     .Help(
                                         "1 while the Jenkins refuses hookrelay's credentials "
                                         "(key: the config key to fix), else 0.")
                                     .Register(registry);
    // hookrelay_config_findings{jenkins}: problems the latest check of the config against the
    // Jenkins found (missing jobs, undeclared parameters, refused credentials, ...).
    Family<Gauge>& config_findings = prometheus::BuildGauge()
                                         .Name("hookrelay_config_findings")
                                         .Help(
                                             "Problems the latest check of the config against "
                                             "the Jenkins found (see hookrelay status).")
                                         .Register(registry);
    // hookrelay_config_reloads_total{result}: SIGHUP reloads; result is success or failure (a
    // failed reload keeps the old configuration running).
    Family<Counter>& config_reloads = prometheus::BuildCounter()
                                          .Name("hookrelay_config_reloads_total")
                                          .Help("Configuration reloads, by result.")
                                          .Register(registry);
    // hookrelay_build_queue_wait_seconds{jenkins}: from the webhook's receipt to the start of the
    // build it triggered (followed triggers only).
    Family<Histogram>& build_wait =
        prometheus::BuildHistogram()
            .Name("hookrelay_build_queue_wait_seconds")
            .Help("Time from receiving a webhook to its build starting.")
            .Register(registry);
    // hookrelay_build_finish_seconds{jenkins}: from the webhook's receipt to its build's
    // result.
    Family<Histogram>& build_total =
        prometheus::BuildHistogram()
            .Name("hookrelay_build_finish_seconds")
            .Help("Time from receiving a webhook to its build's result.")
            .Register(registry);
    // hookrelay_builds_total{rule,jenkins,result}: followed builds by result (SUCCESS, UNSTABLE,
    // FAILURE, ABORTED, NOT_BUILT, CANCELLED).
    Family<Counter>& builds = prometheus::BuildCounter()
                                  .Name("hookrelay_builds_total")
                                  .Help("Followed builds that finished, by result.")
                                  .Register(registry);
    // hookrelay_follow_failures_total{jenkins}: triggers whose build could not be followed.
    Family<Counter>& follow_failures = prometheus::BuildCounter()
                                           .Name("hookrelay_follow_failures_total")
                                           .Help("Triggers whose build hookrelay lost track of.")
                                           .Register(registry);
    // hookrelay_status_posts_total{source,outcome}: commit statuses posted to a forge; outcome
    // posted, ignored, retry, refused or given_up.
    Family<Counter>& status_posts = prometheus::BuildCounter()
                                        .Name("hookrelay_status_posts_total")
                                        .Help("Commit status posts to the forge, by outcome.")
                                        .Register(registry);
    // hookrelay_build_info{version}: always 1; joins the version onto other series.
    Family<Gauge>& build_info = prometheus::BuildGauge()
                                    .Name("hookrelay_build_info")
                                    .Help("Always 1; the version label names the running build.")
                                    .Register(registry);

    // The series without variable labels, looked up once.
    Histogram& commit_duration = store_commit_duration.Add({}, k_commit_buckets);
    Histogram& commit_batch = store_commit_batch.Add({}, k_batch_buckets);
    Counter& store_failure = store_failures.Add({});
    Counter& store_error = store_errors.Add({});
    Gauge& store_unindexed = unindexed.Add({});
    Counter& reload_success = config_reloads.Add({{"result", "success"}});
    Counter& reload_failure = config_reloads.Add({{"result", "failure"}});

    // The series with variable labels, by their values.
    Series<Counter, 3> webhooks_by{webhooks, {"source", "provider", "code"}};
    Series<Histogram, 1> webhook_duration_by{webhook_duration, {"source"}};
    Series<Counter, 1> signature_failures_by{signature_failures, {"source"}};
    Series<Counter, 1> duplicates_by{duplicates, {"source"}};
    Series<Counter, 2> triggers_queued_by{triggers_queued, {"rule", "jenkins"}};
    Series<Counter, 3> trigger_attempts_by{trigger_attempts, {"rule", "jenkins", "outcome"}};
    Series<Counter, 1> delivered_by{delivered, {"jenkins"}};
    Series<Counter, 1> merged_by{merged, {"jenkins"}};
    Series<Counter, 1> retried_by{retried, {"jenkins"}};
    Series<Counter, 1> dead_by{dead, {"jenkins"}};
    Series<Counter, 1> superseded_by{superseded, {"jenkins"}};
    Series<Histogram, 1> delivery_latency_by{delivery_latency, {"jenkins"}};
    Series<Histogram, 2> jenkins_requests_by{jenkins_requests, {"jenkins", "code"}};
    Series<Gauge, 1> backlog_by{backlog, {"jenkins"}};
    Series<Gauge, 1> held_by{held, {"jenkins"}};
    Series<Gauge, 2> auth_failed_by{auth_failed, {"jenkins", "key"}};
    Series<Gauge, 1> config_findings_by{config_findings, {"jenkins"}};
    Series<Histogram, 1> build_wait_by{build_wait, {"jenkins"}};
    Series<Counter, 3> builds_by{builds, {"rule", "jenkins", "result"}};
    Series<Histogram, 1> build_total_by{build_total, {"jenkins"}};
    Series<Counter, 1> follow_failures_by{follow_failures, {"jenkins"}};
    Series<Counter, 2> status_posts_by{status_posts, {"source", "outcome"}};
};

PrometheusMetrics::PrometheusMetrics(std::string version)
    : families_(std::make_unique<Families>()) {
    families_->build_info.Add({{"version", std::move(version)}}).Set(1);
}

PrometheusMetrics::~PrometheusMetrics() = default;

std::string PrometheusMetrics::serialize() const {
    return prometheus::TextSerializer{}.Serialize(families_->registry.Collect());
}

void PrometheusMetrics::webhook(std::string_view source, std::string_view provider,
                                unsigned status) {
    families_->webhooks_by({source, provider, std::to_string(status)}).Increment();
}

void PrometheusMetrics::webhook_duration(std::string_view source, Seconds duration) {
    families_->webhook_duration_by({source}, k_webhook_buckets).Observe(duration.count());
}

void PrometheusMetrics::signature_failure(std::string_view source) {
    families_->signature_failures_by({source}).Increment();
}

void PrometheusMetrics::duplicate(std::string_view source) {
    families_->duplicates_by({source}).Increment();
}

void PrometheusMetrics::triggers_queued(std::string_view rule, std::string_view jenkins,
                                        std::size_t count) {
    families_->triggers_queued_by({rule, jenkins}).Increment(static_cast<double>(count));
}

void PrometheusMetrics::trigger_outcome(std::string_view rule, std::string_view jenkins,
                                        std::string_view outcome) {
    auto& f = *families_;
    f.trigger_attempts_by({rule, jenkins, outcome}).Increment();
    Series<Counter, 1>* summed = nullptr;
    if (outcome == "delivered") {
        summed = &f.delivered_by;
    } else if (outcome == "merged") {
        summed = &f.merged_by;
    } else if (outcome == "retried") {
        summed = &f.retried_by;
    } else if (outcome == "dead") {
        summed = &f.dead_by;
    } else if (outcome == "superseded") {
        summed = &f.superseded_by;
    } else {
        // "held" and "cancelled" have no per-Jenkins total; anything else is a caller's bug
        // that would grow the outcome label without bound.
        assert((outcome == "held" || outcome == "cancelled") && "unknown trigger outcome");
        return;
    }
    (*summed)({jenkins}).Increment();
}

void PrometheusMetrics::delivery_latency(std::string_view jenkins, Seconds latency) {
    families_->delivery_latency_by({jenkins}, k_latency_buckets).Observe(latency.count());
}

void PrometheusMetrics::jenkins_request(std::string_view jenkins, int status, Seconds duration) {
    const auto code = status > 0 ? std::to_string(status) : std::string("0");
    families_->jenkins_requests_by({jenkins, code}, k_request_buckets).Observe(duration.count());
}

void PrometheusMetrics::store_commit(Seconds duration, std::size_t batch) {
    families_->commit_duration.Observe(duration.count());
    families_->commit_batch.Observe(static_cast<double>(batch));
}

void PrometheusMetrics::store_failure() {
    families_->store_failure.Increment();
}

void PrometheusMetrics::store_error() {
    families_->store_error.Increment();
}

void PrometheusMetrics::store_unindexed(std::size_t count) {
    families_->store_unindexed.Set(static_cast<double>(count));
}

void PrometheusMetrics::backlog(std::string_view jenkins, std::size_t depth) {
    families_->backlog_by({jenkins}).Set(static_cast<double>(depth));
}

void PrometheusMetrics::jenkins_held(std::string_view jenkins, bool held) {
    families_->held_by({jenkins}).Set(held ? 1 : 0);
}

void PrometheusMetrics::jenkins_auth_failed(std::string_view jenkins, std::string_view key,
                                            bool failed) {
    families_->auth_failed_by({jenkins, key}).Set(failed ? 1 : 0);
}

void PrometheusMetrics::config_findings(std::string_view jenkins, std::size_t count) {
    families_->config_findings_by({jenkins}).Set(static_cast<double>(count));
}

void PrometheusMetrics::config_reload(bool ok) {
    (ok ? families_->reload_success : families_->reload_failure).Increment();
}

void PrometheusMetrics::build_started(std::string_view, std::string_view jenkins, Seconds wait) {
    families_->build_wait_by({jenkins}, k_build_buckets).Observe(wait.count());
}

void PrometheusMetrics::build_finished(std::string_view rule, std::string_view jenkins,
                                       std::string_view result, Seconds since_receipt) {
    families_->builds_by({rule, jenkins, result}).Increment();
    families_->build_total_by({jenkins}, k_build_buckets).Observe(since_receipt.count());
}

void PrometheusMetrics::follow_failure(std::string_view jenkins) {
    families_->follow_failures_by({jenkins}).Increment();
}

void PrometheusMetrics::status_post(std::string_view source, std::string_view outcome) {
    families_->status_posts_by({source, outcome}).Increment();
}

}  // namespace hookrelay::metrics
