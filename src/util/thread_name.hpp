// Names the calling thread, so `top -H`, `ps -L`, perf and gdb tell the daemon's threads apart
// (Linux keeps at most 15 characters), and lowers its scheduling priority. Best effort: a name or
// a priority that cannot be set changes nothing.
#pragma once

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace hookrelay {

inline void name_this_thread(const char* name) noexcept {
    pthread_setname_np(pthread_self(), name);
}

/// Adds `steps` to the calling thread's nice value (Linux: each thread has its own), on top of
/// the process's (systemd's Nice=). Under contention for the CPU the thread then gets a smaller
/// share than the others; when the CPU is free it runs as fast as before. Returns 0, or the errno
/// of the failure (EPERM where a seccomp filter refuses setpriority).
inline int lower_this_threads_priority(int steps) noexcept {
    const auto tid = static_cast<id_t>(syscall(SYS_gettid));
    errno = 0;
    const int now = getpriority(PRIO_PROCESS, tid);
    if (now == -1 && errno != 0) return errno;
    return setpriority(PRIO_PROCESS, tid, now + steps) == 0 ? 0 : errno;
}

}  // namespace hookrelay
