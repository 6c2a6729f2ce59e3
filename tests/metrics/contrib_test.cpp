// The operator pictures in contrib/ query only what hookrelay exports: every metric name in the
// Grafana dashboard's queries and in the Prometheus alert rules is a family PrometheusMetrics
// registers (or a histogram's _bucket/_sum/_count series), and the dashboard covers what
// operators need to see.
#include "metrics/prometheus_metrics.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>
#include <boost/json.hpp>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace hookrelay::metrics {
namespace {

namespace json = boost::json;
using std::chrono::duration;

const std::string k_source_dir = HOOKRELAY_SOURCE_DIR;

std::string read(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// name -> type ("counter", "gauge", "histogram") of every family hookrelay exports, read from
// the exposition text after every kind of event has been reported once.
std::map<std::string, std::string> exported_families() {
    PrometheusMetrics m("1");
    m.webhook("gh", "github", 202);
    m.webhook_duration("gh", duration<double>(0.01));
    m.signature_failure("gh");
    m.duplicate("gh");
    m.triggers_queued("r", "ci", 1);
    for (const char* outcome : {"delivered", "merged", "retried", "dead", "held"}) {
        m.trigger_outcome("r", "ci", outcome);
    }
    m.delivery_latency("ci", duration<double>(1));
    m.jenkins_request("ci", 201, duration<double>(0.1));
    m.store_commit(duration<double>(0.001), 3);
    m.store_failure();
    m.store_error();
    m.backlog("ci", 2);
    m.jenkins_held("ci", true);
    m.jenkins_auth_failed("ci", "jenkins.ci.api_token", true);
    m.config_reload(true);
    m.build_started("r", "ci", duration<double>(5));
    m.build_finished("r", "ci", "SUCCESS", duration<double>(60));
    m.follow_failure("ci");
    m.status_post("gh", "refused");
    std::map<std::string, std::string> out;
    std::istringstream lines(m.serialize());
    for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        std::string hash, type, name, kind;
        if (words >> hash >> type >> name >> kind && hash == "#" && type == "TYPE")
            out[name] = kind;
    }
    return out;
}

std::set<std::string> metric_names(const std::string& query) {
    static const std::regex name(R"(hookrelay_[a-z0-9_]+)");
    std::set<std::string> out;
    for (std::sregex_iterator it(query.begin(), query.end(), name), end; it != end; ++it) {
        out.insert(it->str());
    }
    return out;
}

// Every string under a key that holds a query: Grafana's "expr" (panel targets) and the
// variables' "query"/"definition".
void collect_queries(const json::value& v, std::vector<std::string>& out) {
    if (const auto* o = v.if_object()) {
        for (const auto& [key, child] : *o) {
            if ((key == "expr" || key == "definition" || key == "query") && child.is_string()) {
                out.emplace_back(child.get_string());
            }
            collect_queries(child, out);
        }
    } else if (const auto* a = v.if_array()) {
        for (const auto& child : *a) collect_queries(child, out);
    }
}

// "" when `name` is exported, else why not.
std::string unknown(const std::string& name, const std::map<std::string, std::string>& families) {
    if (families.contains(name)) return "";
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        if (name.ends_with(suffix)) {
            const auto base = name.substr(0, name.size() - std::string(suffix).size());
            if (auto it = families.find(base); it != families.end() && it->second == "histogram") {
                return "";
            }
        }
    }
    return name + " is not a metric hookrelay exports";
}

std::vector<std::string> dashboard_queries() {
    const auto text = read(k_source_dir + "/contrib/grafana/hookrelay.json");
    std::vector<std::string> queries;
    collect_queries(json::parse(text), queries);
    return queries;
}

TEST(Contrib, DashboardQueriesOnlyExportedMetrics) {
    const auto families = exported_families();
    const auto queries = dashboard_queries();
    ASSERT_GT(queries.size(), 10u);
    for (const auto& q : queries) {
        for (const auto& name : metric_names(q)) EXPECT_EQ(unknown(name, families), "") << q;
    }
}

TEST(Contrib, DashboardShowsWhatOperatorsNeed) {
    std::set<std::string> used;
    for (const auto& q : dashboard_queries()) used.merge(metric_names(q));
    // webhooks by source and status, rejections, accept latency, backlog and held state per
    // Jenkins, delivery latency, dead triggers, store commit time and batch size.
    for (const char* needed :
         {"hookrelay_webhooks_received_total", "hookrelay_signature_failures_total",
          "hookrelay_webhook_duration_seconds_bucket", "hookrelay_backlog",
          "hookrelay_jenkins_held", "hookrelay_delivery_latency_seconds_bucket",
          "hookrelay_triggers_dead_total", "hookrelay_store_commit_duration_seconds_bucket",
          "hookrelay_store_commit_batch_size_bucket", "hookrelay_store_failures_total"}) {
        EXPECT_TRUE(used.contains(needed)) << needed << " is on no dashboard panel";
    }
}

TEST(Contrib, AlertRulesQueryOnlyExportedMetrics) {
    const auto families = exported_families();
    const auto root = YAML::LoadFile(k_source_dir + "/contrib/prometheus/alerts.yaml");
    std::size_t rules = 0;
    for (const auto& group : root["groups"]) {
        for (const auto& rule : group["rules"]) {
            const auto expr = rule["expr"].as<std::string>();
            const auto names = metric_names(expr);
            EXPECT_FALSE(names.empty()) << expr;
            for (const auto& name : names) EXPECT_EQ(unknown(name, families), "") << expr;
            ++rules;
        }
    }
    EXPECT_GE(rules, 4u);
}

TEST(Contrib, TheCheckRejectsANameHookrelayDoesNotExport) {
    const auto families = exported_families();
    EXPECT_EQ(unknown("hookrelay_webhooks_received", families),
              "hookrelay_webhooks_received is not a metric hookrelay exports");
    EXPECT_EQ(unknown("hookrelay_backlog_bucket", families),
              "hookrelay_backlog_bucket is not a metric hookrelay exports");  // a gauge
    EXPECT_EQ(unknown("hookrelay_delivery_latency_seconds_bucket", families), "");
}

}  // namespace
}  // namespace hookrelay::metrics
