// Starts the real hookrelay binary for integration tests and stops it again.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hookrelay::test {

/// A temporary directory, removed with everything in it on destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    /// Writes `content` to path()/name and returns the full path.
    std::string write(const std::string& name, const std::string& content) const;

  private:
    std::string path_;
};

/// Result of running a command to completion.
struct CommandResult {
    int exit_code = -1;
    std::string out;
    std::string err;
};

/// Runs the hookrelay binary with `args` and `env` (added to a minimal environment), waits for it
/// to exit (killed after `deadline`), and returns its exit code and output.
CommandResult run_hookrelay(const std::vector<std::string>& args,
                            const std::vector<std::pair<std::string, std::string>>& env = {},
                            std::chrono::seconds deadline = std::chrono::seconds(30));

/// `hookrelay run` on a config, in the background. The constructor waits (polling, with a
/// deadline) until the daemon reports its listening port; the destructor stops it.
class Daemon {
  public:
    struct Options {
        std::string config_yaml;
        std::vector<std::pair<std::string, std::string>> env;
        std::vector<std::string> extra_args;
        std::chrono::seconds start_deadline{20};
    };
    explicit Daemon(Options options);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    std::uint16_t port() const { return port_; }
    /// The admin listener's port (0 when the config disables it).
    std::uint16_t admin_port() const { return admin_port_; }
    /// The config file the daemon runs on (tests rewrite it, then reload).
    std::string config_path() const { return dir_.path() + "/hookrelay.yaml"; }
    /// Sends `signal` without waiting (e.g. SIGHUP).
    void signal(int signal);
    /// Everything the daemon wrote to stderr so far (its log).
    std::string log() const;
    /// Sends `signal` and waits up to `deadline` for the exit; returns the exit code, or -1 if
    /// it had to be killed.
    int stop(int signal, std::chrono::seconds deadline = std::chrono::seconds(15));
    /// Whether the process is still running.
    bool running();
    /// The daemon's process id (for /proc/<pid>/...).
    int pid() const { return pid_; }
    const TempDir& dir() const { return dir_; }

  private:
    TempDir dir_;
    int pid_ = -1;
    int exit_code_ = -1;
    std::uint16_t port_ = 0;
    std::uint16_t admin_port_ = 0;
};

/// Polls `condition` every few milliseconds until it returns true or `deadline` passes.
template <class F>
bool eventually(F condition, std::chrono::milliseconds deadline = std::chrono::seconds(10));

std::string read_file(const std::string& path);
/// Replaces the file at `path` with `content`.
void write_file(const std::string& path, const std::string& content);

/// A fixture from tests/data: <forge>/<name>.json (or .form) body and its .headers.
struct Fixture {
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};
Fixture load_fixture(const std::string& forge, const std::string& name);

/// "sha256=<hex HMAC-SHA256(secret, body)>"
std::string github_signature(const std::string& secret, const std::string& body);

/// HMAC-SHA256(key, data) as raw bytes.
std::string hmac_sha256(const std::string& key, const std::string& data);
/// Bytes as lowercase hex.
std::string to_hex(const std::string& raw);
/// Bytes as standard base64 with padding.
std::string to_base64(const std::string& raw);

/// The GitHub push fixture (push-branch-update, branch main) with the given delivery id,
/// optionally moved to another branch.
Fixture github_push(const std::string& delivery, const std::string& branch = "main");

/// The same push of another commit: `commit` (40 hex) in place of the fixture's head commit
/// (`after`, `head_commit.id` and its entry in `commits`).
Fixture github_push_of(const std::string& delivery, const std::string& commit,
                       const std::string& branch = "main");

}  // namespace hookrelay::test

#include <thread>

template <class F>
bool hookrelay::test::eventually(F condition, std::chrono::milliseconds deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
        if (condition()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return condition();
}
