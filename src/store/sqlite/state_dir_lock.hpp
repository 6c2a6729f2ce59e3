// One hookrelay per state directory: an exclusive flock on <state_dir>/hookrelay.lock, which
// holds the owner's pid for the message a second daemon prints.
#pragma once

#include <hookrelay/error.hpp>

#include <memory>
#include <string>

namespace hookrelay::store::sqlite {

class StateDirLock {
  public:
    /// The lock file's name inside the state directory.
    static constexpr const char* k_file = "hookrelay.lock";

    /// Takes the lock without waiting and writes this process' pid into the file. Fails with
    /// errc::store_locked when another process (or another open file description in this one)
    /// holds it, `why` then being "state_dir <state_dir> is in use by another hookrelay (pid
    /// <pid>)", or with errc::store_unavailable when the file cannot be opened or locked
    /// ("cannot lock <path>: <reason>"). The kernel drops the lock when the process ends, however
    /// it ends, so a stale file never blocks a start.
    static result<std::unique_ptr<StateDirLock>> acquire(const std::string& state_dir,
                                                         std::string* why);

    /// Releases the lock (the file stays).
    ~StateDirLock();
    StateDirLock(const StateDirLock&) = delete;
    StateDirLock& operator=(const StateDirLock&) = delete;

  private:
    explicit StateDirLock(int fd) : fd_(fd) {}
    int fd_;
};

}  // namespace hookrelay::store::sqlite
