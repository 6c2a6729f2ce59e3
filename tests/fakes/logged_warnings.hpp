// The warnings and errors the default logger takes while a LoggedWarnings lives (message text
// only), for tests that check what an operator would read.
#pragma once

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::test {

class LoggedWarnings {
  public:
    LoggedWarnings() : previous_(spdlog::default_logger()) {
        sink_->set_pattern("%v");
        auto logger = std::make_shared<spdlog::logger>("test", sink_);
        logger->set_level(spdlog::level::warn);
        spdlog::set_default_logger(logger);
    }
    ~LoggedWarnings() { spdlog::set_default_logger(previous_); }
    LoggedWarnings(const LoggedWarnings&) = delete;
    LoggedWarnings& operator=(const LoggedWarnings&) = delete;

    std::vector<std::string> lines() const { return sink_->last_formatted(); }

    /// Whether a line holding `text` was logged.
    bool has(std::string_view text) const {
        for (const auto& line : lines()) {
            if (line.find(text) != std::string::npos) return true;
        }
        return false;
    }

  private:
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_ =
        std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
    std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace hookrelay::test
