// Metrics in Prometheus form, counted with prometheus-cpp's core library. hookrelay serves the
// text exposition itself, from its admin listener (GET /metrics returns serialize()); the
// prometheus-cpp exposer (civetweb) is not used.
#pragma once

#include <hookrelay/metrics.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace hookrelay::metrics {

/// The Prometheus implementation of the metrics seam. Metric names and labels are a stable
/// interface (dashboards and alerts depend on them); the list is in prometheus_metrics.cpp.
///
/// Threading: every member may be called from any thread, concurrently; updates are atomic or take
/// a short lock (a series' lookup by its label values, and inside prometheus-cpp), and never do
/// I/O.
class PrometheusMetrics final : public Metrics {
  public:
    /// Registers every metric family; sets hookrelay_build_info{version=`version`} to 1 and creates
    /// the label-less and fixed-label series at zero so they are exported before the first event.
    explicit PrometheusMetrics(std::string version);
    ~PrometheusMetrics() override;

    PrometheusMetrics(const PrometheusMetrics&) = delete;
    PrometheusMetrics& operator=(const PrometheusMetrics&) = delete;

    /// Everything, in the Prometheus text exposition format (version 0.0.4; serve it with
    /// Content-Type "text/plain; version=0.0.4; charset=utf-8").
    std::string serialize() const;

    void webhook(std::string_view source, std::string_view provider, unsigned status) override;
    void webhook_duration(std::string_view source, Seconds duration) override;
    void signature_failure(std::string_view source) override;
    void duplicate(std::string_view source) override;
    void triggers_queued(std::string_view rule, std::string_view jenkins,
                         std::size_t count) override;
    void trigger_outcome(std::string_view rule, std::string_view jenkins,
                         std::string_view outcome) override;
    void delivery_latency(std::string_view jenkins, Seconds latency) override;
    void jenkins_request(std::string_view jenkins, int status, Seconds duration) override;
    void store_commit(Seconds duration, std::size_t batch) override;
    void store_failure() override;
    void store_error() override;
    void backlog(std::string_view jenkins, std::size_t depth) override;
    void store_unindexed(std::size_t count) override;
    void jenkins_held(std::string_view jenkins, bool held) override;
    void jenkins_auth_failed(std::string_view jenkins, std::string_view key, bool failed) override;
    void config_reload(bool ok) override;
    void config_findings(std::string_view jenkins, std::size_t count) override;
    void build_started(std::string_view rule, std::string_view jenkins, Seconds wait) override;
    void build_finished(std::string_view rule, std::string_view jenkins, std::string_view result,
                        Seconds since_receipt) override;
    void follow_failure(std::string_view jenkins) override;
    void status_post(std::string_view source, std::string_view outcome) override;

  private:
    struct Families;
    std::unique_ptr<Families> families_;
};

}  // namespace hookrelay::metrics
