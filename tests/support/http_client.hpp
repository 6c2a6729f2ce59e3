// A small HTTP/1.1 client for integration tests, talking to 127.0.0.1 only. Every call has a
// deadline. Beast stays in the .cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hookrelay::test {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpResult {
    unsigned status = 0;  ///< 0 when the request failed (see error)
    std::string body;
    Headers headers;
    std::string error;
    bool keep_alive = false;
    std::string header(const std::string& name) const;
};

/// One request on a fresh connection to 127.0.0.1:port.
HttpResult http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        const Headers& headers = {}, const std::string& body = {},
                        std::chrono::milliseconds deadline = std::chrono::seconds(10));

/// A kept-alive connection: several requests in a row, or raw bytes for misbehaving clients.
class HttpConnection {
  public:
    explicit HttpConnection(std::uint16_t port);
    ~HttpConnection();
    HttpResult request(const std::string& method, const std::string& target,
                       const Headers& headers = {}, const std::string& body = {},
                       std::chrono::milliseconds deadline = std::chrono::seconds(10));
    /// Sends raw bytes (e.g. half a request).
    void send_raw(const std::string& bytes);
    /// True once the server has closed the connection (a read returns EOF or reset), checked
    /// without waiting more than `wait`.
    bool closed_by_peer(std::chrono::milliseconds wait);

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace hookrelay::test
