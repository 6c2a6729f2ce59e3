// Helpers shared by the store tests: a temporary state directory and waiting for a callback.
#pragma once

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

}  // namespace hookrelay::store::test
