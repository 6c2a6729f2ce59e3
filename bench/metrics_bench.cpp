// What the metrics of one delivered webhook cost: the calls the webhook handler and the
// dispatcher make for a delivery whose one trigger Jenkins accepted. The series exist already
// (the first delivery of a source, rule and Jenkins creates them); Threads(2) is the daemon's two
// network threads (and its delivering thread) counting at once.
#include "metrics/prometheus_metrics.hpp"

#include <benchmark/benchmark.h>

#include <chrono>

namespace {

using hookrelay::metrics::PrometheusMetrics;
using Seconds = std::chrono::duration<double>;

PrometheusMetrics& metrics() {
    static PrometheusMetrics m("bench");
    return m;
}

void BM_MetricsOfOneDelivery(benchmark::State& state) {
    auto& m = metrics();
    for (auto _ : state) {
        m.webhook_duration("github", Seconds(0.004));
        m.webhook("github", "github", 202);
        m.triggers_queued("branches", "ci", 1);
        m.jenkins_request("ci", 201, Seconds(0.002));
        m.trigger_outcome("branches", "ci", "delivered");
        m.delivery_latency("ci", Seconds(0.006));
    }
}
BENCHMARK(BM_MetricsOfOneDelivery)->Threads(1)->Threads(2);

}  // namespace

BENCHMARK_MAIN();
