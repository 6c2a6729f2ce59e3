// A raw TCP client for tests that misbehave on purpose (slowloris, stalled uploads, smuggling):
// blocking POSIX sockets with deadlines, bound to any loopback source address (127.0.0.x), so
// one test can act as several clients. Only ever connects to 127.0.0.1.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace hookrelay::test {

class RawClient {
  public:
    /// Connects from `source` (e.g. "127.0.0.2") to 127.0.0.1:port. connected() says whether
    /// it worked.
    RawClient(std::uint16_t port, const std::string& source = "127.0.0.1");
    ~RawClient();
    RawClient(RawClient&& other) noexcept;
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    bool connected() const { return fd_ >= 0; }
    /// Sends all of `bytes` (false when the connection failed meanwhile).
    bool send(const std::string& bytes);
    /// Reads until the peer closes, a whole HTTP response (head + Content-Length body) has
    /// arrived, or `wait` passes. What was read is returned; error() says how it ended.
    std::string read_response(std::chrono::milliseconds wait = std::chrono::seconds(10));
    /// Reads and returns everything until the peer closes or `wait` passes.
    std::string read_until_close(std::chrono::milliseconds wait = std::chrono::seconds(10));
    /// "" (complete response), "eof", "reset", "timeout".
    const std::string& error() const { return error_; }
    void close();

  private:
    int fd_ = -1;
    std::string error_;
};

/// A whole request with Host and Content-Length.
std::string raw_post(const std::string& target, const std::string& body,
                     const std::string& extra_headers = "");

}  // namespace hookrelay::test
