// Names the calling thread, so `top -H`, `ps -L`, perf and gdb tell the daemon's threads apart
// (Linux keeps at most 15 characters). Best effort: a name that cannot be set changes nothing.
#pragma once

#include <pthread.h>

namespace hookrelay {

inline void name_this_thread(const char* name) noexcept {
    pthread_setname_np(pthread_self(), name);
}

}  // namespace hookrelay
