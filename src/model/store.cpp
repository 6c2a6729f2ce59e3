#include <hookrelay/store.hpp>

namespace hookrelay {

std::string job_display_path(const std::vector<std::string>& job) {
    std::string out;
    for (const auto& segment : job) {
        if (!out.empty()) out += '/';
        for (char c : segment) {
            if (c == '/') {
                out += "%2F";
            } else {
                out += c;
            }
        }
    }
    return out;
}

}  // namespace hookrelay

namespace hookrelay {

std::string_view to_string(TriggerState state) noexcept {
    switch (state) {
        case TriggerState::pending:
            return "pending";
        case TriggerState::retrying:
            return "retrying";
        case TriggerState::delivered:
            return "delivered";
        case TriggerState::dead:
            return "dead";
    }
    return "pending";
}

std::optional<TriggerState> trigger_state_from_string(std::string_view text) noexcept {
    for (auto s : {TriggerState::pending, TriggerState::retrying, TriggerState::delivered,
                   TriggerState::dead}) {
        if (to_string(s) == text) return s;
    }
    return std::nullopt;
}

}  // namespace hookrelay

#include <hookrelay/metrics.hpp>

namespace hookrelay {
namespace {

class NullMetrics final : public Metrics {
  public:
    void webhook(std::string_view, std::string_view, unsigned) override {}
    void webhook_duration(std::string_view, Seconds) override {}
    void signature_failure(std::string_view) override {}
    void duplicate(std::string_view) override {}
    void triggers_queued(std::string_view, std::string_view, std::size_t) override {}
    void trigger_outcome(std::string_view, std::string_view, std::string_view) override {}
    void delivery_latency(std::string_view, Seconds) override {}
    void jenkins_request(std::string_view, int, Seconds) override {}
    void store_commit(Seconds, std::size_t) override {}
    void store_failure() override {}
    void backlog(std::string_view, std::size_t) override {}
    void jenkins_held(std::string_view, bool) override {}
    void jenkins_auth_failed(std::string_view, std::string_view, bool) override {}
    void config_reload(bool) override {}
};

}  // namespace

std::shared_ptr<Metrics> null_metrics() {
    static const auto instance = std::make_shared<NullMetrics>();
    return instance;
}

}  // namespace hookrelay
