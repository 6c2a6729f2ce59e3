#include "store/sqlite/state_dir_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

namespace hookrelay::store::sqlite {
namespace {

// The pid the owner wrote, as text; "" when unreadable or not (yet) written.
std::string read_pid(int fd) {
    char buffer[32] = {};
    const ssize_t n = pread(fd, buffer, sizeof buffer - 1, 0);
    if (n <= 0) return {};
    std::string_view text(buffer, static_cast<std::size_t>(n));
    const auto end = text.find_first_not_of("0123456789");
    return std::string(text.substr(0, end));
}

}  // namespace

result<std::unique_ptr<StateDirLock>> StateDirLock::acquire(const std::string& state_dir,
                                                            std::string* why) {
    const std::string path = (std::filesystem::path(state_dir) / k_file).string();
    const auto fail = [&](errc code, const std::string& reason) {
        if (why) *why = reason;
        return result<std::unique_ptr<StateDirLock>>{make_error_code(code)};
    };
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return fail(errc::store_unavailable, "cannot lock " + path + ": " + std::strerror(errno));
    }
    int rc = 0;
    do {
        rc = ::flock(fd, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        const int error = errno;
        std::string pid = error == EWOULDBLOCK ? read_pid(fd) : std::string();
        ::close(fd);
        if (error != EWOULDBLOCK) {
            return fail(errc::store_unavailable,
                        "cannot lock " + path + ": " + std::strerror(error));
        }
        return fail(errc::store_locked, "state_dir " + state_dir +
                                            " is in use by another hookrelay (pid " +
                                            (pid.empty() ? "unknown" : pid) + ")");
    }
    // Ours: replace whatever pid an earlier owner left.
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        const int error = errno;
        ::close(fd);
        return fail(errc::store_unavailable, "cannot write " + path + ": " + std::strerror(error));
    }
    return std::unique_ptr<StateDirLock>(new StateDirLock(fd));
}

StateDirLock::~StateDirLock() {
    ::close(fd_);  // drops the flock
}

}  // namespace hookrelay::store::sqlite
