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

std::vector<std::string> project_of(const TriggerRequest& request) {
    if (request.multibranch > 0 && request.multibranch < request.job.size()) {
        return {request.job.begin(),
                request.job.begin() + static_cast<std::ptrdiff_t>(request.multibranch)};
    }
    return request.job;
}

std::string coalesce_scope(const TriggerRequest& request) {
    if (request.coalesce.empty()) return {};
    // A unit separator cannot occur in a rule or Jenkins name, and the job path is encoded.
    std::string out = request.rule;
    out += '\x1f';
    out += request.jenkins;
    out += '\x1f';
    out += job_display_path(request.job);
    out += '\x1f';
    out += request.coalesce;
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
        case TriggerState::superseded:
            return "superseded";
    }
    return "pending";
}

std::optional<TriggerState> trigger_state_from_string(std::string_view text) noexcept {
    for (auto s : {TriggerState::pending, TriggerState::retrying, TriggerState::delivered,
                   TriggerState::dead, TriggerState::superseded}) {
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
    void store_error() override {}
    void backlog(std::string_view, std::size_t) override {}
    void store_unindexed(std::size_t) override {}
    void jenkins_held(std::string_view, bool) override {}
    void jenkins_auth_failed(std::string_view, std::string_view, bool) override {}
    void config_reload(bool) override {}
    void config_findings(std::string_view, std::size_t) override {}
    void build_started(std::string_view, std::string_view, Seconds) override {}
    void build_finished(std::string_view, std::string_view, std::string_view, Seconds) override {}
    void follow_failure(std::string_view) override {}
    void status_post(std::string_view, std::string_view) override {}
};

}  // namespace

std::shared_ptr<Metrics> null_metrics() {
    static const auto instance = std::make_shared<NullMetrics>();
    return instance;
}

}  // namespace hookrelay

namespace hookrelay {

std::string_view to_string(FollowMode mode) noexcept {
    switch (mode) {
        case FollowMode::none:
            return "none";
        case FollowMode::started:
            return "started";
        case FollowMode::finished:
            return "finished";
    }
    return "none";
}

std::optional<FollowMode> follow_mode_from_string(std::string_view text) noexcept {
    for (auto m : {FollowMode::none, FollowMode::started, FollowMode::finished}) {
        if (to_string(m) == text) return m;
    }
    return std::nullopt;
}

std::string_view to_string(Chore chore) noexcept {
    return chore == Chore::follow ? "follow" : "status";
}

std::string trigger_outcome(const StoredTrigger& trigger) {
    switch (trigger.state) {
        case TriggerState::pending:
        case TriggerState::retrying:
        case TriggerState::dead:
        case TriggerState::superseded:
            return std::string(to_string(trigger.state));
        case TriggerState::delivered:
            break;
    }
    const BuildRecord& build = trigger.build;
    if (!build.result.empty()) return build.result;
    if (!build.error.empty()) return "lost";
    if (build.number > 0) {
        // follow: started ends when the build starts; it may be long over by now.
        return trigger.request.follow == FollowMode::started && !trigger.following ? "started"
                                                                                   : "building";
    }
    if (trigger.following || !build.queue_url.empty()) {
        return trigger.request.follow == FollowMode::none ? "delivered" : "queued";
    }
    return "delivered";
}

StatusWish superseded_wish(const TriggerRequest& newer, const std::string& newer_id) {
    StatusWish wish;
    wish.state = "canceled";
    if (newer.status && newer.status->sha.size() >= 7) {
        wish.description = "Not built: superseded by " + newer.status->sha.substr(0, 7);
    } else {
        wish.description = "Not built: superseded by trigger " + newer_id;
    }
    if (wish.description.size() > 140) wish.description.resize(140);
    return wish;
}

std::string superseded_outcome(const std::string& newer_id, const std::string& newer_delivery) {
    return "superseded by trigger " + newer_id + " (delivery " + newer_delivery + ")";
}

}  // namespace hookrelay

namespace hookrelay {

std::map<std::string, std::string> jenkins_disagreements(
    const std::vector<InstanceInfo>& instances) {
    // name → url → the instances giving it that url, in the order listed.
    std::map<std::string, std::map<std::string, std::vector<std::string>>> urls;
    for (const auto& instance : instances) {
        for (const auto& [name, url] : instance.jenkins) urls[name][url].push_back(instance.id);
    }
    std::map<std::string, std::string> out;
    for (const auto& [name, by_url] : urls) {
        if (by_url.size() < 2) continue;
        std::string line = "jenkins " + name + " is ";
        bool first = true;
        for (const auto& [url, ids] : by_url) {
            if (!first) line += " but ";
            first = false;
            line += url + " on ";
            for (std::size_t i = 0; i < ids.size(); ++i) line += (i > 0 ? ", " : "") + ids[i];
        }
        out.emplace(name, std::move(line));
    }
    return out;
}

}  // namespace hookrelay
