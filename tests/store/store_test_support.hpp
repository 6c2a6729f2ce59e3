// Helpers shared by the store tests: a temporary state directory and waiting for a callback.
#pragma once

#include <hookrelay/store.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>

namespace hookrelay::store::test {

/// How long a test waits for the store to answer one call.
constexpr std::chrono::seconds k_deadline{20};

/// A fresh directory under /tmp, removed with everything in it.
class TempDir {
  public:
    TempDir() {
        std::string pattern = "/tmp/hookrelay-store-XXXXXX";
        if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

/// Starts an asynchronous call with a handler and waits, with a deadline, for its answer.
template <class T, class Start>
T wait_answer(Start&& start) {
    auto promise = std::make_shared<std::promise<T>>();
    auto future = promise->get_future();
    start([promise](T value) { promise->set_value(std::move(value)); });
    if (future.wait_for(k_deadline) != std::future_status::ready) {
        throw std::runtime_error("the store did not answer in time");
    }
    return future.get();
}

/// Now, at the millisecond resolution the store keeps.
inline std::chrono::system_clock::time_point now_ms() {
    using Clock = std::chrono::system_clock;
    return std::chrono::time_point_cast<Clock::duration>(
        std::chrono::floor<std::chrono::milliseconds>(Clock::now()));
}

/// A GitHub push delivery as the webhook handler would record it.
inline DeliveryRecord delivery(std::string id, std::chrono::system_clock::time_point received_at,
                               std::string source = "github-main") {
    DeliveryRecord d;
    d.source = std::move(source);
    d.provider = Provider::github;
    d.delivery_id = std::move(id);
    d.kind = EventKind::push;
    d.forge_event = "push";
    d.received_at = received_at;
    d.headers = {{"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", d.delivery_id}};
    d.body = R"({"ref":"refs/heads/main"})";
    return d;
}

/// A trigger for job acme/app/main with two parameters.
inline TriggerRequest trigger(std::string jenkins = "ci", std::string rule = "build") {
    TriggerRequest t;
    t.rule = std::move(rule);
    t.jenkins = std::move(jenkins);
    t.job = {"acme", "app", "main"};
    t.parameters = {{"BRANCH", "main"}, {"SHA", "abc123"}};
    t.cause = "push to acme/app";
    return t;
}

}  // namespace hookrelay::store::test
