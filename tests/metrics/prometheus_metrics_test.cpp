#include "metrics/prometheus_metrics.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace hookrelay::metrics {
namespace {

using std::chrono::duration;
using testing::Contains;
using testing::Not;
using testing::StartsWith;

std::vector<std::string> lines(const PrometheusMetrics& m) {
    std::vector<std::string> out;
    std::istringstream in(m.serialize());
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

TEST(PrometheusMetrics, ExportsBuildInfoWithTheVersion) {
    PrometheusMetrics m("1.2.3");
    EXPECT_THAT(lines(m), Contains("# TYPE hookrelay_build_info gauge"));
    EXPECT_THAT(lines(m), Contains(R"(hookrelay_build_info{version="1.2.3"} 1)"));
}

TEST(PrometheusMetrics, ExportsFixedSeriesAtZeroBeforeAnyEvent) {
    PrometheusMetrics m("1");
    const auto l = lines(m);
    EXPECT_THAT(l, Contains("hookrelay_store_failures_total 0"));
    EXPECT_THAT(l, Contains("hookrelay_store_errors_total 0"));
    EXPECT_THAT(l, Contains(R"(hookrelay_config_reloads_total{result="success"} 0)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_config_reloads_total{result="failure"} 0)"));
    EXPECT_THAT(l, Contains("hookrelay_store_commit_duration_seconds_count 0"));
    EXPECT_THAT(l, Contains("hookrelay_store_commit_batch_size_count 0"));
}

TEST(PrometheusMetrics, CountsWebhooksBySourceProviderAndCode) {
    PrometheusMetrics m("1");
    m.webhook("gh", "github", 202);
    m.webhook("gh", "github", 202);
    m.webhook("gh", "github", 401);
    m.webhook("gl", "gitlab", 202);
    const auto l = lines(m);
    EXPECT_THAT(l, Contains("# TYPE hookrelay_webhooks_received_total counter"));
    EXPECT_THAT(
        l, Contains(
               R"(hookrelay_webhooks_received_total{code="202",provider="github",source="gh"} 2)"));
    EXPECT_THAT(
        l, Contains(
               R"(hookrelay_webhooks_received_total{code="401",provider="github",source="gh"} 1)"));
    EXPECT_THAT(
        l, Contains(
               R"(hookrelay_webhooks_received_total{code="202",provider="gitlab",source="gl"} 1)"));
}

TEST(PrometheusMetrics, CountsSignatureFailuresAndDuplicatesPerSource) {
    PrometheusMetrics m("1");
    m.signature_failure("gh");
    m.signature_failure("gh");
    m.duplicate("gl");
    const auto l = lines(m);
    EXPECT_THAT(l, Contains(R"(hookrelay_signature_failures_total{source="gh"} 2)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_duplicates_total{source="gl"} 1)"));
}

TEST(PrometheusMetrics, AddsQueuedTriggerCounts) {
    PrometheusMetrics m("1");
    m.triggers_queued("build-main", "ci", 3);
    m.triggers_queued("build-main", "ci", 2);
    m.triggers_queued("nightly", "ci", 1);
    const auto l = lines(m);
    EXPECT_THAT(l,
                Contains(R"(hookrelay_triggers_queued_total{jenkins="ci",rule="build-main"} 5)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_triggers_queued_total{jenkins="ci",rule="nightly"} 1)"));
}

// Series are looked up by their label values packed together: values that read the same once
// joined are still different series.
TEST(PrometheusMetrics, LabelValuesThatJoinAlikeAreDifferentSeries) {
    PrometheusMetrics m("1");
    m.triggers_queued("a", "bc", 1);
    m.triggers_queued("ab", "c", 2);
    m.triggers_queued("", "abc", 4);
    m.triggers_queued("abc", "", 8);
    m.triggers_queued("ab", "c", 16);
    const auto l = lines(m);
    EXPECT_THAT(l, Contains(R"(hookrelay_triggers_queued_total{jenkins="bc",rule="a"} 1)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_triggers_queued_total{jenkins="c",rule="ab"} 18)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_triggers_queued_total{jenkins="abc",rule=""} 4)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_triggers_queued_total{jenkins="",rule="abc"} 8)"));
}

TEST(PrometheusMetrics, CountsTriggerOutcomesPerRuleAndPerJenkins) {
    PrometheusMetrics m("1");
    m.trigger_outcome("a", "ci", "retried");
    m.trigger_outcome("a", "ci", "delivered");
    m.trigger_outcome("b", "ci", "delivered");
    m.trigger_outcome("b", "ci", "merged");
    m.trigger_outcome("b", "ci", "dead");
    m.trigger_outcome("b", "ci", "held");
    const auto l = lines(m);
    const std::string attempts = "hookrelay_trigger_attempts_total";
    EXPECT_THAT(l, Contains(attempts + R"({jenkins="ci",outcome="retried",rule="a"} 1)"));
    EXPECT_THAT(l, Contains(attempts + R"({jenkins="ci",outcome="delivered",rule="a"} 1)"));
    EXPECT_THAT(l, Contains(attempts + R"({jenkins="ci",outcome="delivered",rule="b"} 1)"));
    EXPECT_THAT(l, Contains(attempts + R"({jenkins="ci",outcome="merged",rule="b"} 1)"));
    EXPECT_THAT(l, Contains(attempts + R"({jenkins="ci",outcome="dead",rule="b"} 1)"));
    EXPECT_THAT(l, Contains(attempts + R"({jenkins="ci",outcome="held",rule="b"} 1)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_triggers_delivered_total{jenkins="ci"} 2)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_triggers_merged_total{jenkins="ci"} 1)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_triggers_retried_total{jenkins="ci"} 1)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_triggers_dead_total{jenkins="ci"} 1)"));
}

TEST(PrometheusMetrics, ObservesDeliveryLatencyInBuckets) {
    PrometheusMetrics m("1");
    m.delivery_latency("ci", duration<double>(0.3));
    m.delivery_latency("ci", duration<double>(120));
    const auto l = lines(m);
    const std::string h = "hookrelay_delivery_latency_seconds";
    EXPECT_THAT(l, Contains("# TYPE " + h + " histogram"));
    EXPECT_THAT(l, Contains(h + R"(_bucket{jenkins="ci",le="0.01"} 0)"));
    EXPECT_THAT(l, Contains(h + R"(_bucket{jenkins="ci",le="0.25"} 0)"));
    EXPECT_THAT(l, Contains(h + R"(_bucket{jenkins="ci",le="0.5"} 1)"));
    EXPECT_THAT(l, Contains(h + R"(_bucket{jenkins="ci",le="60"} 1)"));
    EXPECT_THAT(l, Contains(h + R"(_bucket{jenkins="ci",le="300"} 2)"));
    EXPECT_THAT(l, Contains(h + R"(_bucket{jenkins="ci",le="3600"} 2)"));
    EXPECT_THAT(l, Contains(h + R"(_bucket{jenkins="ci",le="+Inf"} 2)"));
    EXPECT_THAT(l, Contains(h + R"(_count{jenkins="ci"} 2)"));
    EXPECT_THAT(l, Contains(h + R"(_sum{jenkins="ci"} 120.3)"));
}

TEST(PrometheusMetrics, ObservesWebhookAnswerTimePerSource) {
    PrometheusMetrics m("1");
    m.webhook_duration("gh", duration<double>(0.004));
    m.webhook_duration("gh", duration<double>(0.2));
    const auto l = lines(m);
    const std::string h = "hookrelay_webhook_duration_seconds";
    EXPECT_THAT(l, Contains("# TYPE " + h + " histogram"));
    EXPECT_THAT(l, Contains(h + R"(_bucket{source="gh",le="0.0025"} 0)"));
    EXPECT_THAT(l, Contains(h + R"(_bucket{source="gh",le="0.005"} 1)"));
    EXPECT_THAT(l, Contains(h + R"(_bucket{source="gh",le="0.25"} 2)"));
    EXPECT_THAT(l, Contains(h + R"(_count{source="gh"} 2)"));
}

TEST(PrometheusMetrics, LabelsJenkinsRequestsByStatusAndZeroForNoResponse) {
    PrometheusMetrics m("1");
    m.jenkins_request("ci", 201, duration<double>(0.02));
    m.jenkins_request("ci", 0, duration<double>(30));
    m.jenkins_request("ci", -1, duration<double>(1));
    const auto l = lines(m);
    const std::string h = "hookrelay_jenkins_request_duration_seconds";
    EXPECT_THAT(l, Contains(h + R"(_bucket{code="201",jenkins="ci",le="0.005"} 0)"));
    EXPECT_THAT(l, Contains(h + R"(_bucket{code="201",jenkins="ci",le="0.025"} 1)"));
    EXPECT_THAT(l, Contains(h + R"(_count{code="201",jenkins="ci"} 1)"));
    EXPECT_THAT(l, Contains(h + R"(_bucket{code="0",jenkins="ci",le="10"} 1)"));
    EXPECT_THAT(l, Contains(h + R"(_bucket{code="0",jenkins="ci",le="30"} 2)"));
    EXPECT_THAT(l, Contains(h + R"(_count{code="0",jenkins="ci"} 2)"));
    EXPECT_THAT(l, Contains(h + R"(_sum{code="0",jenkins="ci"} 31)"));
}

TEST(PrometheusMetrics, ObservesStoreCommitDurationAndBatchSize) {
    PrometheusMetrics m("1");
    m.store_commit(duration<double>(0.002), 1);
    m.store_commit(duration<double>(0.004), 100);
    m.store_failure();
    m.store_error();
    m.store_error();
    const auto l = lines(m);
    EXPECT_THAT(l, Contains(R"(hookrelay_store_commit_duration_seconds_bucket{le="0.001"} 0)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_store_commit_duration_seconds_bucket{le="0.0025"} 1)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_store_commit_duration_seconds_bucket{le="0.005"} 2)"));
    EXPECT_THAT(l, Contains("hookrelay_store_commit_duration_seconds_count 2"));
    EXPECT_THAT(l, Contains(R"(hookrelay_store_commit_batch_size_bucket{le="1"} 1)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_store_commit_batch_size_bucket{le="64"} 1)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_store_commit_batch_size_bucket{le="128"} 2)"));
    EXPECT_THAT(l, Contains("hookrelay_store_commit_batch_size_sum 101"));
    EXPECT_THAT(l, Contains("hookrelay_store_failures_total 1"));
    EXPECT_THAT(l, Contains("hookrelay_store_errors_total 2"));
}

TEST(PrometheusMetrics, GaugesKeepTheLatestValue) {
    PrometheusMetrics m("1");
    m.backlog("ci", 7);
    m.backlog("ci", 3);
    m.backlog("other", 0);
    m.jenkins_held("ci", true);
    m.jenkins_held("other", true);
    m.jenkins_held("other", false);
    const auto l = lines(m);
    EXPECT_THAT(l, Contains("# TYPE hookrelay_backlog gauge"));
    EXPECT_THAT(l, Contains(R"(hookrelay_backlog{jenkins="ci"} 3)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_backlog{jenkins="other"} 0)"));
    EXPECT_THAT(l, Contains("# TYPE hookrelay_jenkins_held gauge"));
    EXPECT_THAT(l, Contains(R"(hookrelay_jenkins_held{jenkins="ci"} 1)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_jenkins_held{jenkins="other"} 0)"));
}

TEST(PrometheusMetrics, AuthFailedNamesTheJenkinsAndTheKeyToFix) {
    PrometheusMetrics m("1");
    m.jenkins_auth_failed("ci", "jenkins.ci.api_token", true);
    m.jenkins_auth_failed("old", "jenkins.old.user", true);
    m.jenkins_auth_failed("old", "jenkins.old.user", false);
    const auto l = lines(m);
    EXPECT_THAT(l, Contains("# TYPE hookrelay_jenkins_auth_failed gauge"));
    EXPECT_THAT(
        l, Contains(R"(hookrelay_jenkins_auth_failed{jenkins="ci",key="jenkins.ci.api_token"} 1)"));
    EXPECT_THAT(
        l, Contains(R"(hookrelay_jenkins_auth_failed{jenkins="old",key="jenkins.old.user"} 0)"));
}

TEST(PrometheusMetrics, CountsConfigReloadsByResult) {
    PrometheusMetrics m("1");
    m.config_reload(true);
    m.config_reload(true);
    m.config_reload(false);
    const auto l = lines(m);
    EXPECT_THAT(l, Contains(R"(hookrelay_config_reloads_total{result="success"} 2)"));
    EXPECT_THAT(l, Contains(R"(hookrelay_config_reloads_total{result="failure"} 1)"));
}

TEST(PrometheusMetrics, EscapesLabelValues) {
    PrometheusMetrics m("1");
    m.duplicate("a\"b\\c\nd");
    EXPECT_THAT(lines(m), Contains(R"(hookrelay_duplicates_total{source="a\"b\\c\nd"} 1)"));
}

TEST(PrometheusMetrics, EveryLineIsACommentOrASample) {
    PrometheusMetrics m("1");
    m.webhook("gh", "github", 202);
    m.delivery_latency("ci", duration<double>(1));
    for (const auto& line : lines(m)) {
        EXPECT_THAT(line, Not(testing::IsEmpty()));
        if (line[0] == '#') {
            EXPECT_THAT(line, testing::AnyOf(StartsWith("# HELP hookrelay_"),
                                             StartsWith("# TYPE hookrelay_")));
        } else {
            EXPECT_THAT(line, StartsWith("hookrelay_"));
        }
    }
}

TEST(PrometheusMetrics, ConcurrentUpdatesAddUp) {
    PrometheusMetrics m("1");
    constexpr int k_threads = 4;
    constexpr int k_per_thread = 5'000;
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
        threads.emplace_back([&m, t] {
            const std::string jenkins = t % 2 == 0 ? "even" : "odd";
            for (int i = 0; i < k_per_thread; ++i) {
                m.webhook("gh", "github", 202);
                m.trigger_outcome("r", jenkins, "delivered");
                m.delivery_latency("ci", duration<double>(0.5));
                m.store_commit(duration<double>(0.001), 2);
                if (i % 100 == 0) (void)m.serialize();  // scrapes race with updates
            }
        });
    }
    for (auto& t : threads) t.join();
    const auto l = lines(m);
    const auto total = std::to_string(k_threads * k_per_thread);
    const auto half = std::to_string(k_threads * k_per_thread / 2);
    EXPECT_THAT(
        l,
        Contains(R"(hookrelay_webhooks_received_total{code="202",provider="github",source="gh"} )" +
                 total));
    EXPECT_THAT(l, Contains(R"(hookrelay_triggers_delivered_total{jenkins="even"} )" + half));
    EXPECT_THAT(l, Contains(R"(hookrelay_triggers_delivered_total{jenkins="odd"} )" + half));
    EXPECT_THAT(l, Contains(R"(hookrelay_delivery_latency_seconds_count{jenkins="ci"} )" + total));
    EXPECT_THAT(l, Contains(R"(hookrelay_delivery_latency_seconds_bucket{jenkins="ci",le="0.5"} )" +
                            total));
    EXPECT_THAT(l, Contains("hookrelay_store_commit_batch_size_sum " +
                            std::to_string(2 * k_threads * k_per_thread)));
}

}  // namespace
}  // namespace hookrelay::metrics
