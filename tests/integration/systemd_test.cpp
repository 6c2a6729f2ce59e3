// systemd integration, checked against the real binary with the same protocol systemd speaks:
// readiness and stop notifications on a NOTIFY_SOCKET the test listens on, the watchdog, and
// socket activation with a listening socket passed as fd 3 (LISTEN_FDS / LISTEN_PID).
//
// What they check is wired in src/app/daemon.cpp: src/systemd/notify.hpp's notify_ready once the
// listeners accept, notify_stopping on SIGTERM, the watchdog loop, and http::Server::adopt() for
// a passed socket. LISTEN_PID must name the child itself, so these tests start the daemon with
// their own fork/exec instead of run_hookrelay() / Daemon.
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace hookrelay::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* k_github_secret = "it-systemd-github-secret-71c2";
// Long enough for a debug or sanitizer build to start on a busy 2-core machine.
constexpr auto k_start_deadline = 20s;
constexpr auto k_stop_deadline = 15s;

// A config with one GitHub source and no rules: enough to be served. The admin listener takes a
// free port so tests can run side by side.
std::string config_yaml(const std::string& listen) {
    return "listen: " + listen + R"(
state_dir: ./var
log: {level: debug}
admin: {listen: "127.0.0.1:0"}
server: {shutdown_grace: 2s}
sources:
  github: {provider: github, secret: "${env:GH_SECRET}"}
)";
}

void throw_errno(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

// An owned file descriptor.
class Fd {
  public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

  private:
    int fd_;
};

// A listening TCP socket on 127.0.0.1, on a port the kernel picks.
int listening_socket(std::uint16_t& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw_errno("socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) throw_errno("bind");
    if (::listen(fd, SOMAXCONN) != 0) throw_errno("listen");
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        throw_errno("getsockname");
    }
    port = ntohs(address.sin_port);
    return fd;
}

// A port that was free a moment ago. Used only where the test must know the daemon's port before
// the daemon says anything (READY=1 must already mean "accepting"); the kernel does not hand the
// same ephemeral port out again that soon.
std::uint16_t free_port() {
    std::uint16_t port = 0;
    Fd fd(listening_socket(port));
    return port;
}

// One TCP connect to 127.0.0.1:port, no retry: succeeds only if something listens right now.
bool connects_now(std::uint16_t port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
}

// The receiving end of NOTIFY_SOCKET, as systemd has it: a Unix datagram socket that asks the
// kernel for each sender's credentials (SO_PASSCRED), so the test sees which pid spoke.
class NotifySocket {
  public:
    struct Message {
        std::string text;
        pid_t pid = 0;
        bool has_line(std::string_view line) const {
            std::istringstream lines(text);
            for (std::string l; std::getline(lines, l);) {
                if (l == line) return true;
            }
            return false;
        }
    };

    explicit NotifySocket(std::string path)
        : path_(std::move(path)), fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
        if (fd_.get() < 0) throw_errno("socket(AF_UNIX)");
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        if (path_.size() >= sizeof(address.sun_path)) throw std::runtime_error("path too long");
        std::memcpy(address.sun_path, path_.c_str(), path_.size() + 1);
        if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
            throw_errno("bind " + path_);
        }
        const int on = 1;
        if (::setsockopt(fd_.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0) {
            throw_errno("SO_PASSCRED");
        }
    }

    const std::string& path() const { return path_; }

    /// The next message, or nullopt after `deadline`.
    std::optional<Message> receive(std::chrono::milliseconds deadline) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(deadline.count())) <= 0) return std::nullopt;
        char data[4096];
        iovec iov{data, sizeof(data)};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
        const ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT);
        if (n < 0) return std::nullopt;
        Message m;
        m.text.assign(data, static_cast<std::size_t>(n));
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                ucred cred{};
                std::memcpy(&cred, CMSG_DATA(c), sizeof(cred));
                m.pid = cred.pid;
            }
        }
        seen_.push_back(m);
        return m;
    }

    /// Reads messages until one has the line `line` (e.g. "READY=1"); nullopt after `deadline`.
    std::optional<Message> wait_for(std::string_view line, std::chrono::milliseconds deadline) {
        const auto until = std::chrono::steady_clock::now() + deadline;
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            if (left <= 0ms) return std::nullopt;
            auto m = receive(left);
            if (!m) return std::nullopt;
            if (m->has_line(line)) return m;
        }
    }

    /// Every message received so far, for failure messages.
    std::string transcript() const {
        std::string out;
        for (const auto& m : seen_) out += "[pid " + std::to_string(m.pid) + "] " + m.text + "\n";
        return out.empty() ? "(no notifications)\n" : out;
    }

  private:
    std::string path_;
    Fd fd_;
    std::vector<Message> seen_;
};

// `hookrelay run` in the background, started with fork/exec so that the child can name itself in
// LISTEN_PID and receive a socket as fd 3. Killed on destruction if still running.
class Child {
  public:
    struct Options {
        std::string config;  ///< path of the config file
        std::string dir;     ///< working directory; stdout and stderr go to files here
        std::vector<std::pair<std::string, std::string>> env;
        /// When set: passed as fd 3, with LISTEN_FDS=1, LISTEN_PID and LISTEN_FDNAMES=http.
        int listen_fd = -1;
    };

    explicit Child(Options options) : log_path_(options.dir + "/stderr") {
        // Everything the child needs is built before fork(): after it, only async-signal-safe
        // calls (open, dup2, fcntl, chdir, getpid, execve).
        std::string binary = HOOKRELAY_BINARY;
        std::vector<std::string> args = {binary, "run", "--config", options.config};
        std::vector<std::string> env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
        for (const auto& [k, v] : options.env) env.push_back(k + "=" + v);
        const bool activate = options.listen_fd >= 0;
        if (activate) {
            env.emplace_back("LISTEN_FDS=1");
            env.emplace_back("LISTEN_FDNAMES=http");
            env.emplace_back("LISTEN_PID=" + std::string(24, '\0'));  // the child fills it in
        }
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        std::vector<char*> envp;
        for (auto& e : env) envp.push_back(e.data());
        envp.push_back(nullptr);
        char* listen_pid = activate ? env.back().data() + std::strlen("LISTEN_PID=") : nullptr;
        const std::string out_path = options.dir + "/stdout";
        const int listen_fd = options.listen_fd;
        const std::string& dir = options.dir;

        pid_ = ::fork();
        if (pid_ < 0) throw_errno("fork");
        if (pid_ == 0) {
            const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            const int err = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (out < 0 || err < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) ::_exit(126);
            if (activate) {
                // dup2 clears close-on-exec on the copy; a socket already at fd 3 needs it
                // cleared by hand.
                if (listen_fd == 3) {
                    if (::fcntl(3, F_SETFD, 0) != 0) ::_exit(126);
                } else if (::dup2(listen_fd, 3) < 0) {
                    ::_exit(126);
                }
                // LISTEN_PID=<getpid()>, written without allocating.
                char digits[24];
                int n = 0;
                for (pid_t p = ::getpid(); p > 0; p /= 10)
                    digits[n++] = static_cast<char>('0' + p % 10);
                for (int i = 0; i < n; ++i) listen_pid[i] = digits[n - 1 - i];
                listen_pid[n] = '\0';
            }
            if (::chdir(dir.c_str()) != 0) ::_exit(126);
            ::execve(argv[0], argv.data(), envp.data());
            ::_exit(127);
        }
    }

    ~Child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }

    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    pid_t pid() const { return pid_; }
    std::string log() const { return read_file(log_path_); }

    void signal(int sig) const { ::kill(pid_, sig); }

    /// Waits for the exit up to `deadline` (then kills it); the exit code, or -1 when it was
    /// killed or died of a signal. Keeps reading `notify`, as systemd would: sd_notify blocks
    /// once a Unix datagram queue holds net.unix.max_dgram_qlen (10 by default) unread messages.
    int wait(std::chrono::milliseconds deadline, NotifySocket* notify = nullptr) {
        int status = 0;
        const bool exited = eventually(
            [&] {
                while (notify != nullptr && notify->receive(0ms)) {
                }
                return ::waitpid(pid_, &status, WNOHANG) == pid_;
            },
            deadline);
        if (!exited) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
        }
        pid_ = -1;
        return exited && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

  private:
    std::string log_path_;
    pid_t pid_ = -1;
};

Headers signed_github(const Fixture& f) {
    Headers h = f.headers;
    h.emplace_back("X-Hub-Signature-256", github_signature(k_github_secret, f.body));
    return h;
}

// READY=1 comes from the main process only once the listener accepts connections (so a
// Type=notify unit's dependents never meet a refused connection); STOPPING=1 follows SIGTERM.
TEST(SystemdNotify, ReadyOnlyOnceAcceptingAndStoppingOnSigterm) {
    TempDir dir;
    NotifySocket notify(dir.path() + "/notify");
    const auto port = free_port();
    const auto config =
        dir.write("hookrelay.yaml", config_yaml("127.0.0.1:" + std::to_string(port)));
    Child child(
        {config, dir.path(), {{"NOTIFY_SOCKET", notify.path()}, {"GH_SECRET", k_github_secret}}});

    const auto ready = notify.wait_for("READY=1", k_start_deadline);
    ASSERT_TRUE(ready) << "no READY=1 (is daemon.cpp calling systemd::notify_ready?)\n"
                       << notify.transcript() << child.log();
    EXPECT_EQ(ready->pid, child.pid()) << "NotifyAccess=main accepts the main process only";
    EXPECT_NE(ready->text.find("STATUS="), std::string::npos) << ready->text;
    // No retry: READY=1 must mean the listener is already there.
    EXPECT_TRUE(connects_now(port)) << "READY=1 was sent before the listener accepted";
    const auto ping = load_fixture("github", "ping-repo-hook");
    const auto r = http_request(port, "POST", "/hooks/github", signed_github(ping), ping.body);
    EXPECT_EQ(r.status, 200u) << r.error << r.body;

    while (notify.receive(0ms)) {
    }
    EXPECT_EQ(notify.transcript().find("STOPPING=1"), std::string::npos)
        << "STOPPING=1 before any signal\n"
        << notify.transcript();
    child.signal(SIGTERM);
    const auto stopping = notify.wait_for("STOPPING=1", k_stop_deadline);
    EXPECT_TRUE(stopping) << "no STOPPING=1 after SIGTERM\n" << notify.transcript() << child.log();
    if (stopping) {
        EXPECT_EQ(stopping->pid, child.pid());
    }
    EXPECT_EQ(child.wait(k_stop_deadline, &notify), 0) << notify.transcript() << child.log();
}

// WatchdogSec=: with WATCHDOG_USEC set the daemon pings WATCHDOG=1 at half that interval.
TEST(SystemdNotify, PingsTheWatchdog) {
    TempDir dir;
    NotifySocket notify(dir.path() + "/notify");
    const auto config = dir.write("hookrelay.yaml", config_yaml("127.0.0.1:0"));
    // 400 ms: pings every 200 ms, so three of them take well under the 5 s allowed below.
    Child child({config,
                 dir.path(),
                 {{"NOTIFY_SOCKET", notify.path()},
                  {"WATCHDOG_USEC", "400000"},
                  {"GH_SECRET", k_github_secret}}});

    ASSERT_TRUE(notify.wait_for("READY=1", k_start_deadline)) << notify.transcript() << child.log();
    for (int i = 0; i < 3; ++i) {
        const auto ping = notify.wait_for("WATCHDOG=1", 5s);
        ASSERT_TRUE(ping) << "watchdog ping " << i + 1
                          << " missing (is daemon.cpp running the watchdog loop?)\n"
                          << notify.transcript();
        EXPECT_EQ(ping->pid, child.pid());
    }
    child.signal(SIGTERM);
    EXPECT_EQ(child.wait(k_stop_deadline, &notify), 0) << notify.transcript() << child.log();
}

// `hookrelay run` handed a listening socket on a free loopback port as systemd would (fd 3), with
// `listen:` naming that same address; the daemon holds the only copy of the socket.
struct Activated {
    TempDir dir;
    std::uint16_t port = 0;
    std::unique_ptr<Child> child;

    /// `listen`: what the config says; empty: the passed socket's own address.
    explicit Activated(std::string listen = "") {
        Fd listener(listening_socket(port));
        if (listen.empty()) listen = "127.0.0.1:" + std::to_string(port);
        const auto config = dir.write("hookrelay.yaml", config_yaml(listen));
        child = std::make_unique<Child>(
            Child::Options{config, dir.path(), {{"GH_SECRET", k_github_secret}}, listener.get()});
    }
};

// hookrelay.socket: systemd binds the port and passes it as fd 3. The daemon serves that socket
// and does not bind its `listen:` address itself: here both are the same address, as with
// ListenStream=8080 and `listen: 0.0.0.0:8080`, so binding again would fail with "address in use".
TEST(SystemdSocketActivation, ServesThePassedSocket) {
    Activated activated;
    const std::uint16_t port = activated.port;
    Child& child = *activated.child;

    // No readiness wait: until the daemon accepts, connections wait in the socket's backlog,
    // which is the point of socket activation (restarts refuse no webhook).
    const auto push = load_fixture("github", "push-branch-update");
    const auto unsigned_push =
        http_request(port, "POST", "/hooks/github", push.headers, push.body, k_start_deadline);
    EXPECT_EQ(unsigned_push.status, 401u) << unsigned_push.error << unsigned_push.body << "\n"
                                          << child.log();
    const auto ping = load_fixture("github", "ping-repo-hook");
    const auto pong = http_request(port, "POST", "/hooks/github", signed_github(ping), ping.body);
    EXPECT_EQ(pong.status, 200u) << pong.error << pong.body;
    // `listen` names the socket's address: nothing to warn of.
    const std::string where = "127.0.0.1:" + std::to_string(port);
    EXPECT_NE(child.log().find("listening on " + where + " (the socket from systemd)"),
              std::string::npos)
        << child.log();
    EXPECT_EQ(child.log().find("as `listen` says"), std::string::npos) << child.log();

    child.signal(SIGTERM);
    EXPECT_EQ(child.wait(k_stop_deadline), 0) << child.log();
}

// hookrelay.socket's ListenStream=8080 takes every address while the shipped config says
// `listen: 127.0.0.1:8080` (behind a proxy): the daemon serves the socket, and says at start
// where webhooks really arrive and how to move the socket.
TEST(SystemdSocketActivation, SaysWhenListenNamesAnotherPlaceThanTheSocket) {
    const std::uint16_t elsewhere = free_port();
    Activated activated("127.0.0.1:" + std::to_string(elsewhere));
    const std::uint16_t port = activated.port;
    Child& child = *activated.child;
    const auto ping = load_fixture("github", "ping-repo-hook");
    const auto pong = http_request(port, "POST", "/hooks/github", signed_github(ping), ping.body,
                                   k_start_deadline);
    ASSERT_EQ(pong.status, 200u) << pong.error << pong.body << child.log();
    const std::string socket = "127.0.0.1:" + std::to_string(port);
    const std::string listen = "127.0.0.1:" + std::to_string(elsewhere);
    EXPECT_NE(child.log().find("webhooks arrive on " + socket +
                               ", the socket systemd passed (hookrelay.socket), not on " + listen +
                               " as `listen` says"),
              std::string::npos)
        << child.log();
    EXPECT_NE(child.log().find("ListenStream= (empty: clears the list) and ListenStream=" + listen +
                               ", then `systemctl restart hookrelay.socket hookrelay`"),
              std::string::npos)
        << child.log();
    EXPECT_FALSE(connects_now(elsewhere)) << "the daemon bound `listen` too";

    child.signal(SIGTERM);
    EXPECT_EQ(child.wait(k_stop_deadline), 0) << child.log();
}

// With the socket from systemd, `listen` is not where the daemon listens: a reload that changes
// it says so, instead of promising that a restart would move the listener.
TEST(SystemdSocketActivation, AReloadSaysListenDoesNotApply) {
    Activated activated;
    const std::uint16_t port = activated.port;
    Child& child = *activated.child;
    const auto ping = load_fixture("github", "ping-repo-hook");
    const auto pong = http_request(port, "POST", "/hooks/github", signed_github(ping), ping.body,
                                   k_start_deadline);
    ASSERT_EQ(pong.status, 200u) << pong.error << pong.body << child.log();

    activated.dir.write("hookrelay.yaml", config_yaml("127.0.0.1:1"));
    child.signal(SIGHUP);
    ASSERT_TRUE(eventually(
        [&] { return child.log().find("configuration reloaded from") != std::string::npos; },
        k_start_deadline))
        << child.log();
    EXPECT_NE(child.log().find("reload: listen changed, but the webhook socket comes from systemd"),
              std::string::npos)
        << child.log();
    EXPECT_EQ(child.log().find("take effect only after a restart"), std::string::npos)
        << child.log();
    // Still served where systemd put it.
    const auto again = http_request(port, "POST", "/hooks/github", signed_github(ping), ping.body);
    EXPECT_EQ(again.status, 200u) << again.error << again.body;

    child.signal(SIGTERM);
    EXPECT_EQ(child.wait(k_stop_deadline), 0) << child.log();
}

}  // namespace
}  // namespace hookrelay::test
