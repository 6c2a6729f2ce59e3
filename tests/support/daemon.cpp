#include "support/daemon.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace hookrelay::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
    std::string pattern = (fs::temp_directory_path() / "hookrelay-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
    const auto full = path_ + "/" + name;
    std::ofstream(full, std::ios::binary | std::ios::trunc) << content;
    return full;
}

void write_file(const std::string& path, const std::string& content) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

namespace {

// Runs the binary in `cwd`, so relative paths in a test config (state_dir: ./var) stay inside
// the test's own temporary directory.
int spawn(const std::vector<std::string>& args,
          const std::vector<std::pair<std::string, std::string>>& env, const std::string& out_path,
          const std::string& err_path, const std::string& cwd) {
    std::vector<std::string> env_strings = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
    // Sanitizer settings (suppressions, halt_on_error) reach the daemon under test too.
    for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS"}) {
        if (const char* value = std::getenv(name))
            env_strings.push_back(std::string(name) + "=" + value);
    }
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<char*> argv;
    // HOOKRELAY_TEST_BINARY runs the suite against another build (e.g. the previous release, to
    // see a regression test fail before its fix).
    const char* override_binary = std::getenv("HOOKRELAY_TEST_BINARY");
    std::string binary = override_binary ? override_binary : HOOKRELAY_BINARY;
    argv.push_back(binary.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);

    // The child inherits the test's unflushed stdio buffers; freopen() there would write them a
    // second time into the test's output.
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        // Never the test runner's terminal: a command that would ask a question must see
        // that nobody can answer.
        FILE* in = std::freopen("/dev/null", "r", stdin);
        FILE* out = std::freopen(out_path.c_str(), "w", stdout);
        FILE* err = std::freopen(err_path.c_str(), "w", stderr);
        if (in == nullptr || out == nullptr || err == nullptr || chdir(cwd.c_str()) != 0) {
            _exit(126);
        }
        execve(argv[0], argv.data(), envp.data());
        _exit(127);
    }
    return pid;
}

// Waits for `pid` up to `deadline`; kills it after that. Returns the exit code or -1.
int wait_for(int pid, std::chrono::milliseconds deadline) {
    int status = 0;
    const bool exited = eventually(
        [&] {
            const pid_t r = waitpid(pid, &status, WNOHANG);
            return r == pid;
        },
        deadline);
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return -1;
}

}  // namespace

CommandResult run_hookrelay(const std::vector<std::string>& args,
                            const std::vector<std::pair<std::string, std::string>>& env,
                            std::chrono::seconds deadline) {
    TempDir dir;
    const auto out = dir.path() + "/stdout";
    const auto err = dir.path() + "/stderr";
    const int pid = spawn(args, env, out, err, dir.path());
    CommandResult result;
    result.exit_code = wait_for(pid, deadline);
    result.out = read_file(out);
    result.err = read_file(err);
    return result;
}

Daemon::Daemon(Options options) {
    // Parallel tests must not fight over the default admin port 9090.
    if (options.config_yaml.find("\nadmin:") == std::string::npos &&
        !options.config_yaml.starts_with("admin:")) {
        options.config_yaml += "\nadmin: {listen: \"127.0.0.1:0\"}\n";
    }
    const auto config = dir_.write("hookrelay.yaml", options.config_yaml);
    const auto ready = dir_.path() + "/ready";
    std::vector<std::string> args = {"run", "--config", config, "--ready-file", ready};
    for (auto& a : options.extra_args) args.push_back(a);
    pid_ = spawn(args, options.env, dir_.path() + "/stdout", dir_.path() + "/stderr", dir_.path());
    const bool started = eventually(
        [&] {
            const auto text = read_file(ready);
            if (text.find('\n') == std::string::npos) return !running();
            std::istringstream lines(text);
            for (std::string line; std::getline(lines, line);) {
                const auto port =
                    static_cast<std::uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
                if (line.starts_with("http=")) port_ = port;
                if (line.starts_with("admin=")) admin_port_ = port;
            }
            return true;
        },
        options.start_deadline);
    if (!started || port_ == 0) {
        const auto log_text = log();
        stop(SIGKILL);
        throw std::runtime_error("hookrelay did not start:\n" + log_text);
    }
}

Daemon::~Daemon() {
    if (pid_ > 0) stop(SIGTERM);
}

std::string Daemon::log() const {
    return read_file(dir_.path() + "/stderr");
}

void Daemon::signal(int signal) {
    if (pid_ > 0) kill(pid_, signal);
}

bool Daemon::running() {
    if (pid_ <= 0) return false;
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        pid_ = -1;
        return false;
    }
    return true;
}

int Daemon::stop(int signal, std::chrono::seconds deadline) {
    if (pid_ <= 0) return exit_code_;
    kill(pid_, signal);
    exit_code_ = wait_for(pid_, deadline);
    pid_ = -1;
    return exit_code_;
}

Fixture load_fixture(const std::string& forge, const std::string& name) {
    const std::string base = std::string(HOOKRELAY_TEST_DATA_DIR) + "/" + forge + "/" + name;
    Fixture f;
    f.body = read_file(fs::exists(base + ".json") ? base + ".json" : base + ".form");
    if (f.body.empty()) throw std::runtime_error("fixture not found: " + base);
    std::istringstream lines(read_file(base + ".headers"));
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        f.headers.emplace_back(line.substr(0, colon), value);
    }
    return f;
}

Fixture github_push(const std::string& delivery, const std::string& branch) {
    auto f = load_fixture("github", "push-branch-update");
    if (branch != "main") {
        const std::string from = "\"refs/heads/main\"";
        f.body.replace(f.body.find(from), from.size(), "\"refs/heads/" + branch + "\"");
    }
    for (auto& [k, v] : f.headers) {
        if (k == "X-GitHub-Delivery") v = delivery;
    }
    return f;
}

Fixture github_push_of(const std::string& delivery, const std::string& commit,
                       const std::string& branch) {
    auto f = github_push(delivery, branch);
    const std::string head = "366701fde727cb7a9e7f21eb88264f59f6f9b89c";
    for (auto at = f.body.find(head); at != std::string::npos; at = f.body.find(head, at)) {
        f.body.replace(at, head.size(), commit);
        at += commit.size();
    }
    return f;
}

std::string github_signature(const std::string& secret, const std::string& body) {
    return "sha256=" + to_hex(hmac_sha256(secret, body));
}

std::string hmac_sha256(const std::string& key, const std::string& data) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
    return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string to_hex(const std::string& raw) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (const unsigned char c : raw) {
        out += hex[c >> 4];
        out += hex[c & 0xf];
    }
    return out;
}

std::string to_base64(const std::string& raw) {
    std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(raw.data()),
                                  static_cast<int>(raw.size()));
    out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
    return out;
}

}  // namespace hookrelay::test
