#include "support/raw_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace hookrelay::test {

RawClient::RawClient(std::uint16_t port, const std::string& source) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    sockaddr_in from{};
    from.sin_family = AF_INET;
    inet_pton(AF_INET, source.c_str(), &from.sin_addr);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0 ||
        ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

RawClient::~RawClient() {
    close();
}

RawClient::RawClient(RawClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), error_(std::move(other.error_)) {}

void RawClient::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

bool RawClient::send(const std::string& bytes) {
    std::size_t sent = 0;
    while (fd_ >= 0 && sent < bytes.size()) {
        const auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        sent += static_cast<std::size_t>(n);
    }
    return fd_ >= 0;
}

namespace {

// Whether `text` holds a complete response: the head, and as many body bytes as it announces.
bool complete(const std::string& text) {
    const auto end = text.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    std::size_t length = 0;
    const auto head = text.substr(0, end);
    for (const char* name : {"Content-Length: ", "content-length: "}) {
        const auto at = head.find(name);
        if (at != std::string::npos) length = std::stoul(head.substr(at + std::strlen(name)));
    }
    return text.size() >= end + 4 + length;
}

}  // namespace

std::string RawClient::read_response(std::chrono::milliseconds wait) {
    std::string out;
    error_ = "timeout";
    const auto until = std::chrono::steady_clock::now() + wait;
    char buffer[16 * 1024];
    while (fd_ >= 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        const auto n = ::recv(fd_, buffer, sizeof(buffer), 0);
        if (n == 0) {
            error_ = "eof";
            break;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            error_ = errno == ECONNRESET ? "reset" : std::strerror(errno);
            break;
        }
        out.append(buffer, static_cast<std::size_t>(n));
        if (complete(out)) {
            error_.clear();
            break;
        }
    }
    return out;
}

std::string RawClient::read_until_close(std::chrono::milliseconds wait) {
    std::string out;
    error_ = "timeout";
    const auto until = std::chrono::steady_clock::now() + wait;
    char buffer[16 * 1024];
    while (fd_ >= 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        const auto n = ::recv(fd_, buffer, sizeof(buffer), 0);
        if (n == 0) {
            error_ = "eof";
            break;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            error_ = errno == ECONNRESET ? "reset" : std::strerror(errno);
            break;
        }
        out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
}

std::string raw_post(const std::string& target, const std::string& body,
                     const std::string& extra_headers) {
    return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
           extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace hookrelay::test
