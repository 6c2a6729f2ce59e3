// The training run of a profile-guided build (scripts/pgo-build.sh): runs the instrumented
// hookrelay on loopback against a Jenkins of its own, sends it signed webhooks of every forge
// from tests/data over keep-alive connections, waits until their triggers reached Jenkins, and
// stops it with SIGTERM so that it writes its profile. What the daemon spends its time on in
// production (receiving, verifying, parsing, matching, storing, delivering) is what gets
// optimized; the profile's counts, not the rate reached here, are what matter.
//
//   hookrelay_pgo_train HOOKRELAY DATA_DIR [REQUESTS]
//
// Exits 0 when every webhook was answered 202 and every trigger reached Jenkins within the
// deadline, 1 otherwise (with why). Bounded: at most k_deadline in all, loopback only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr auto k_deadline = std::chrono::seconds(120);
constexpr int k_connections = 8;
constexpr const char* k_secret = "pgo-training-secret";

// The daemon, once started: a failure from any thread stops it (and leaves no state behind).
std::atomic<pid_t> g_daemon{0};
std::string g_work;

[[noreturn]] void fail(const std::string& why) {
    std::cerr << "hookrelay_pgo_train: " << why << '\n';
    if (const pid_t pid = g_daemon.exchange(0); pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    if (!g_work.empty()) {
        std::error_code ignored;
        fs::remove_all(g_work, ignored);
    }
    std::_Exit(1);
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("cannot read " + path.string());
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::string hmac_hex(const std::string& body) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), k_secret, static_cast<int>(std::strlen(k_secret)),
         reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest, &length);
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < length; ++i) {
        out += k_hex[digest[i] >> 4];
        out += k_hex[digest[i] & 15];
    }
    return out;
}

bool send_all(int fd, const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
        const auto n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return false;
        sent += static_cast<std::size_t>(n);
    }
    return true;
}

// Reads one HTTP message (head and Content-Length body) from `fd` into `head`; `buffer` keeps
// what came after it. False at end of stream or on an error.
bool read_message(int fd, std::string& buffer, std::string& head, std::string& body) {
    std::size_t end = std::string::npos;
    while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
        char chunk[16384];
        const auto n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) return false;
        buffer.append(chunk, static_cast<std::size_t>(n));
    }
    head = buffer.substr(0, end + 4);
    std::size_t length = 0;
    for (const char* name : {"Content-Length:", "content-length:"}) {
        if (const auto at = head.find(name); at != std::string::npos) {
            length = std::strtoull(head.c_str() + at + std::strlen(name), nullptr, 10);
        }
    }
    while (buffer.size() < end + 4 + length) {
        char chunk[16384];
        const auto n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) return false;
        buffer.append(chunk, static_cast<std::size_t>(n));
    }
    body = buffer.substr(end + 4, length);
    buffer.erase(0, end + 4 + length);
    return true;
}

int listen_loopback(std::uint16_t& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd, 128) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size) != 0) {
        fail(std::string("cannot listen on 127.0.0.1: ") + std::strerror(errno));
    }
    port = ntohs(addr.sin_port);
    return fd;
}

int connect_loopback(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        fail("cannot connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

// A Jenkins that queues every build at once and knows every job (what the daemon's start-up
// check and its deliveries ask), one thread per connection.
class Jenkins {
  public:
    Jenkins() : fd_(listen_loopback(port_)) {
        std::thread([this] { accept_loop(); }).detach();
    }
    std::uint16_t port() const { return port_; }
    std::size_t builds() const { return builds_.load(); }

  private:
    std::uint16_t port_ = 0;  // before fd_: listen_loopback() sets it
    int fd_;
    std::atomic<std::size_t> builds_{0};

    void accept_loop() {
        for (;;) {
            const int client = ::accept(fd_, nullptr, nullptr);
            if (client < 0) return;
            std::thread([this, client] { serve(client); }).detach();
        }
    }

    void serve(int fd) {
        std::string buffer, head, body;
        while (read_message(fd, buffer, head, body)) {
            std::string answer;
            if (head.starts_with("POST ")) {
                const auto n = ++builds_;
                answer =
                    "HTTP/1.1 201 Created\r\nLocation: http://127.0.0.1:" + std::to_string(port_) +
                    "/queue/item/" + std::to_string(n) + "/\r\nContent-Length: 0\r\n\r\n";
            } else if (head.find("crumbIssuer") != std::string::npos) {
                answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
            } else {
                const std::string json =
                    head.find("whoAmI") != std::string::npos
                        ? R"({"anonymous":false,"name":"hookrelay"})"
                        : R"({"_class":"hudson.model.FreeStyleProject","buildable":true,"property":[]})";
                answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                         std::to_string(json.size()) + "\r\n\r\n" + json;
            }
            if (!send_all(fd, answer)) break;
        }
        ::close(fd);
    }
};

struct Webhook {
    std::string path;  // the source's
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::string signature_header;  // "" for GitLab's token
    std::string signature_prefix;
};

// One fixture of tests/data: its headers (the delivery id ones are set per request) and body.
Webhook webhook(const fs::path& data, const std::string& forge, const std::string& name) {
    Webhook w;
    w.path = "/hooks/" + forge;
    w.body = read_file(data / forge / (name + ".json"));
    std::istringstream lines(read_file(data / forge / (name + ".headers")));
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        w.headers.emplace_back(line.substr(0, colon), line.substr(colon + 2));
    }
    if (forge == "github") {
        w.signature_header = "X-Hub-Signature-256";
        w.signature_prefix = "sha256=";
    } else if (forge == "gitea") {
        w.signature_header = "X-Gitea-Signature";
    } else if (forge.starts_with("bitbucket")) {
        w.signature_header = "X-Hub-Signature";
        w.signature_prefix = "sha256=";
    } else {
        w.headers.emplace_back("X-Gitlab-Token", k_secret);
    }
    if (!w.signature_header.empty()) {
        w.headers.emplace_back(w.signature_header, w.signature_prefix + hmac_hex(w.body));
    }
    return w;
}

bool names_delivery(const std::string& header) {
    return header.ends_with("-Delivery") || header == "X-Request-UUID" ||
           header == "X-Request-Id" || header == "X-Gitlab-Event-UUID" ||
           header == "Idempotency-Key";
}

std::string request(const Webhook& w, const std::string& id) {
    std::string out = "POST " + w.path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (const auto& [name, value] : w.headers) {
        out += name + ": " + (names_delivery(name) ? id : value) + "\r\n";
    }
    return out + "Content-Length: " + std::to_string(w.body.size()) + "\r\n\r\n" + w.body;
}

std::string config(const fs::path& state, std::uint16_t jenkins) {
    return "listen: 127.0.0.1:0\nstate_dir: " + state.string() +
           "\nlog: {level: warn}\n"
           "admin: {enabled: false}\n"
           "sources:\n"
           "  github: {provider: github, secret: \"${env:PGO_SECRET}\"}\n"
           "  gitlab: {provider: gitlab, token: \"${env:PGO_SECRET}\"}\n"
           "  gitea: {provider: gitea, secret: \"${env:PGO_SECRET}\"}\n"
           "  bitbucket-cloud: {provider: bitbucket-cloud, secret: \"${env:PGO_SECRET}\"}\n"
           "  bitbucket-server: {provider: bitbucket-server, secret: \"${env:PGO_SECRET}\"}\n"
           "jenkins:\n  ci:\n    url: http://127.0.0.1:" +
           std::to_string(jenkins) +
           "/\n    max_in_flight: 16\n"
           "rules:\n"
           "  - name: pushes\n"
           "    when: {event: push}\n"
           "    trigger:\n"
           "      jenkins: ci\n"
           "      job: \"{{ repository.namespace }}/{{ repository.name }}/{{ branch }}\"\n"
           "      parameters: {GIT_COMMIT: \"{{ commit }}\"}\n"
           "  - name: pull-requests\n"
           "    when: {event: pull_request}\n"
           "    trigger: {jenkins: ci, job: \"pr/{{ repository.name }}\"}\n";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) fail("usage: hookrelay_pgo_train HOOKRELAY DATA_DIR [REQUESTS]");
    const std::string binary = argv[1];
    const fs::path data = argv[2];
    const long requests = argc > 3 ? std::atol(argv[3]) : 60'000;
    const auto deadline = Clock::now() + k_deadline;

    // Pushes are most of what forges send: most of the load.
    const std::vector<Webhook> hooks = {
        webhook(data, "github", "push-branch-update"),
        webhook(data, "github", "push-branch-update"),
        webhook(data, "github", "push-branch-update"),
        webhook(data, "github", "pull_request-synchronize"),
        webhook(data, "gitlab", "push-branch-update"),
        webhook(data, "gitea", "push-branch-update"),
        webhook(data, "bitbucket-cloud", "repo_push-branch-update"),
        webhook(data, "bitbucket-server", "refs_changed-branch-update"),
    };

    Jenkins jenkins;
    char dir_template[] = "/tmp/hookrelay-pgo.XXXXXX";
    const char* dir = ::mkdtemp(dir_template);
    if (dir == nullptr) fail("mkdtemp failed");
    const fs::path work = dir;
    const auto config_path = work / "hookrelay.yaml";
    const auto ready_path = work / "ready";
    std::ofstream(config_path) << config(work / "state", jenkins.port());
    g_work = work.string();

    ::setenv("PGO_SECRET", k_secret, 1);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::execl(binary.c_str(), binary.c_str(), "run", "--config", config_path.c_str(),
                "--ready-file", ready_path.c_str(), static_cast<char*>(nullptr));
        std::perror("exec");
        ::_exit(127);
    }
    g_daemon = pid;
    const auto stop = [&](int signal) {
        g_daemon = 0;
        ::kill(pid, signal);
        int status = 0;
        ::waitpid(pid, &status, 0);
        fs::remove_all(work);
        g_work.clear();
        return status;
    };
    std::uint16_t port = 0;
    while (port == 0) {
        std::ifstream ready(ready_path);
        for (std::string line; std::getline(ready, line);) {
            if (line.starts_with("http=")) {
                port = static_cast<std::uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
            }
        }
        if (port == 0) {
            int status = 0;
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                g_daemon = 0;
                fail("hookrelay exited at start");
            }
            if (Clock::now() > deadline) fail("hookrelay did not start");
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }

    std::atomic<long> next{0}, accepted{0}, refused{0};
    std::vector<std::thread> senders;
    for (int c = 0; c < k_connections; ++c) {
        senders.emplace_back([&, c] {
            int fd = connect_loopback(port);
            std::string buffer, head, body;
            for (long i = next++; i < requests && Clock::now() < deadline; i = next++) {
                const auto& w = hooks[static_cast<std::size_t>(i) % hooks.size()];
                const std::string id = "pgo-" + std::to_string(c) + "-" + std::to_string(i);
                if (!send_all(fd, request(w, id)) || !read_message(fd, buffer, head, body)) {
                    ::close(fd);
                    fd = connect_loopback(port);
                    buffer.clear();
                    ++refused;
                    continue;
                }
                (head.starts_with("HTTP/1.1 202") ? accepted : refused)++;
            }
            ::close(fd);
        });
    }
    for (auto& t : senders) t.join();
    // Every accepted webhook queues one trigger (one branch or pull request each).
    while (jenkins.builds() < static_cast<std::size_t>(accepted.load()) &&
           Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const auto built = jenkins.builds();
    const int status = stop(SIGTERM);
    std::cout << "hookrelay_pgo_train: " << accepted << " of " << requests << " webhooks accepted, "
              << built << " builds requested\n";
    if (refused > 0 || accepted != requests) fail(std::to_string(refused) + " not accepted");
    if (built < static_cast<std::size_t>(accepted.load())) fail("not every trigger was delivered");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("hookrelay did not exit cleanly");
    return 0;
}
