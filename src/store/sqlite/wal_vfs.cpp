// The WAL-gathering VFS (wal_vfs.hpp). SQLite's documented way to change how files are written
// is a VFS "shim" over the default one (https://www.sqlite.org/vfs.html); this one wraps only the
// files SQLite opens with SQLITE_OPEN_WAL. Why it is safe:
// - A WAL frame is a 24-byte header, then the page; bytes 4-7 of the header are zero except in
//   the last frame of a commit (the database's size in pages: "the commit flag"). SQLite writes
//   the header, then the page. Once the page of a frame whose header had the flag is gathered,
//   everything gathered is written before that write returns: a commit's frames are in the file
//   before SQLite syncs the WAL (synchronous = FULL) or publishes the commit to readers in the
//   wal-index (NORMAL, no sync), exactly as without the shim, and a failed write fails the commit.
// - Readers see frames only up to the last commit published in the wal-index; frames of a
//   transaction not yet committed are read back only by the writer, through xRead (a page that
//   left the cache), the checkpoint too: each read flushes first. So does a sync, the file's
//   size, a truncate, a close, a file control, and a write elsewhere in the file (the WAL
//   starting over at its beginning, a frame rewritten in place).
// - The gathered bytes of a transaction rolled back before its commit are written, if at all,
//   past the last commit, where recovery ignores them as it ignores any such frames.
// - The store has one connection, on one thread: a file's buffer is never used concurrently.
#include "store/sqlite/wal_vfs.hpp"

#include <sqlite3.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace hookrelay::store::sqlite {
namespace {

// What one write gathers at most: the default VFS writes at most 128 KiB - 1 bytes per call (its
// seekAndWriteFd() masks the size with 0x1ffff, as SQLite itself never writes more than a 64 KiB
// page at once). 31 frames of 4 KiB pages.
constexpr std::size_t k_capacity = 0x1ffff;

std::atomic<std::uint64_t> g_asked{0};
std::atomic<std::uint64_t> g_made{0};
std::atomic<std::uint64_t> g_temporary{0};

constexpr int k_temporary = SQLITE_OPEN_SUBJOURNAL | SQLITE_OPEN_TEMP_JOURNAL |
                            SQLITE_OPEN_TEMP_DB | SQLITE_OPEN_TRANSIENT_DB;

// A WAL file: the default VFS's file lives in the same allocation, after this.
struct WalFile {
    sqlite3_file base;
    sqlite3_file* real;
    char* buffer;        // k_capacity bytes, allocated at the first write
    std::size_t used;    // bytes gathered
    sqlite3_int64 from;  // where they go in the file
    bool commit_frame;   // the last write was the header of a commit's last frame
};

constexpr int k_frame_header = 24;

// Bytes 4-7 of a frame header: the commit flag (the database's size in pages), zero in every frame
// but a commit's last.
bool has_commit_flag(const void* header) {
    const auto* bytes = static_cast<const unsigned char*>(header);
    return (bytes[4] | bytes[5] | bytes[6] | bytes[7]) != 0;
}

constexpr std::size_t k_header = (sizeof(WalFile) + 15) / 16 * 16;

sqlite3_vfs* g_default = nullptr;
sqlite3_vfs g_vfs{};

WalFile* wal(sqlite3_file* file) {
    return reinterpret_cast<WalFile*>(file);
}

int write_through(WalFile* f, const void* data, std::size_t n, sqlite3_int64 offset) {
    g_made.fetch_add(1, std::memory_order_relaxed);
    return f->real->pMethods->xWrite(f->real, data, static_cast<int>(n), offset);
}

int flush(WalFile* f) {
    if (f->used == 0) return SQLITE_OK;
    const std::size_t n = f->used;
    f->used = 0;
    return write_through(f, f->buffer, n, f->from);
}

int wal_close(sqlite3_file* file) {
    WalFile* f = wal(file);
    const int flushed = flush(f);
    const int closed = f->real->pMethods->xClose(f->real);
    std::free(f->buffer);
    f->buffer = nullptr;
    return flushed != SQLITE_OK ? flushed : closed;
}

int wal_read(sqlite3_file* file, void* data, int n, sqlite3_int64 offset) {
    WalFile* f = wal(file);
    if (const int rc = flush(f); rc != SQLITE_OK) return rc;
    return f->real->pMethods->xRead(f->real, data, n, offset);
}

int gather(WalFile* f, const void* data, std::size_t size, sqlite3_int64 offset) {
    if (f->used > 0 && offset == f->from + static_cast<sqlite3_int64>(f->used) &&
        f->used + size <= k_capacity) {
        std::memcpy(f->buffer + f->used, data, size);
        f->used += size;
        return SQLITE_OK;
    }
    if (const int rc = flush(f); rc != SQLITE_OK) return rc;
    if (size >= k_capacity) return write_through(f, data, size, offset);
    if (f->buffer == nullptr) {
        f->buffer = static_cast<char*>(std::malloc(k_capacity));
        if (f->buffer == nullptr) return write_through(f, data, size, offset);
    }
    std::memcpy(f->buffer, data, size);
    f->used = size;
    f->from = offset;
    return SQLITE_OK;
}

int wal_write(sqlite3_file* file, const void* data, int n, sqlite3_int64 offset) {
    WalFile* f = wal(file);
    g_asked.fetch_add(1, std::memory_order_relaxed);
    const bool completes_commit = f->commit_frame;
    f->commit_frame = n == k_frame_header && has_commit_flag(data);
    if (const int rc = gather(f, data, static_cast<std::size_t>(n), offset); rc != SQLITE_OK) {
        f->used = 0;
        return rc;
    }
    return completes_commit ? flush(f) : SQLITE_OK;
}

int wal_truncate(sqlite3_file* file, sqlite3_int64 size) {
    WalFile* f = wal(file);
    if (const int rc = flush(f); rc != SQLITE_OK) return rc;
    return f->real->pMethods->xTruncate(f->real, size);
}

int wal_sync(sqlite3_file* file, int flags) {
    WalFile* f = wal(file);
    if (const int rc = flush(f); rc != SQLITE_OK) return rc;
    return f->real->pMethods->xSync(f->real, flags);
}

int wal_file_size(sqlite3_file* file, sqlite3_int64* size) {
    WalFile* f = wal(file);
    if (const int rc = flush(f); rc != SQLITE_OK) return rc;
    return f->real->pMethods->xFileSize(f->real, size);
}

int wal_lock(sqlite3_file* file, int level) {
    sqlite3_file* real = wal(file)->real;
    return real->pMethods->xLock(real, level);
}

int wal_unlock(sqlite3_file* file, int level) {
    sqlite3_file* real = wal(file)->real;
    return real->pMethods->xUnlock(real, level);
}

int wal_check_reserved_lock(sqlite3_file* file, int* out) {
    sqlite3_file* real = wal(file)->real;
    return real->pMethods->xCheckReservedLock(real, out);
}

int wal_file_control(sqlite3_file* file, int op, void* arg) {
    WalFile* f = wal(file);
    if (const int rc = flush(f); rc != SQLITE_OK) return rc;
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

int wal_sector_size(sqlite3_file* file) {
    sqlite3_file* real = wal(file)->real;
    return real->pMethods->xSectorSize(real);
}

int wal_device_characteristics(sqlite3_file* file) {
    sqlite3_file* real = wal(file)->real;
    return real->pMethods->xDeviceCharacteristics(real);
}

// A WAL file is never memory-mapped or given shared memory (that is the database file's); these
// pass through for completeness, flushing before the file's bytes could be read another way.
int wal_shm_map(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
    sqlite3_file* real = wal(file)->real;
    return real->pMethods->xShmMap(real, region, size, extend, out);
}

int wal_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
    sqlite3_file* real = wal(file)->real;
    return real->pMethods->xShmLock(real, offset, n, flags);
}

void wal_shm_barrier(sqlite3_file* file) {
    WalFile* f = wal(file);
    flush(f);
    f->real->pMethods->xShmBarrier(f->real);
}

int wal_shm_unmap(sqlite3_file* file, int delete_flag) {
    sqlite3_file* real = wal(file)->real;
    return real->pMethods->xShmUnmap(real, delete_flag);
}

int wal_fetch(sqlite3_file* file, sqlite3_int64 offset, int n, void** out) {
    WalFile* f = wal(file);
    if (const int rc = flush(f); rc != SQLITE_OK) return rc;
    return f->real->pMethods->xFetch(f->real, offset, n, out);
}

int wal_unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
    sqlite3_file* real = wal(file)->real;
    return real->pMethods->xUnfetch(real, offset, page);
}

const sqlite3_io_methods k_wal_methods = {
    3,
    wal_close,
    wal_read,
    wal_write,
    wal_truncate,
    wal_sync,
    wal_file_size,
    wal_lock,
    wal_unlock,
    wal_check_reserved_lock,
    wal_file_control,
    wal_sector_size,
    wal_device_characteristics,
    wal_shm_map,
    wal_shm_lock,
    wal_shm_barrier,
    wal_shm_unmap,
    wal_fetch,
    wal_unfetch,
};

// Every other file is the default VFS's own, opened in place (the file handle SQLite allocates
// has room for a WalFile before it, unused then).
int vfs_open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
    if ((flags & SQLITE_OPEN_WAL) == 0) {
        if ((flags & k_temporary) != 0) g_temporary.fetch_add(1, std::memory_order_relaxed);
        return g_default->xOpen(g_default, name, file, flags, out_flags);
    }
    WalFile* f = wal(file);
    f->base.pMethods = nullptr;
    f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + k_header);
    f->buffer = nullptr;
    f->used = 0;
    f->from = 0;
    f->commit_frame = false;
    const int rc = g_default->xOpen(g_default, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        // SQLite closes a file whose xOpen failed only when its methods are set.
        if (f->real->pMethods != nullptr) f->real->pMethods->xClose(f->real);
        return rc;
    }
    f->base.pMethods = &k_wal_methods;
    return SQLITE_OK;
}

int vfs_delete(sqlite3_vfs*, const char* name, int sync_dir) {
    return g_default->xDelete(g_default, name, sync_dir);
}

int vfs_access(sqlite3_vfs*, const char* name, int flags, int* out) {
    return g_default->xAccess(g_default, name, flags, out);
}

int vfs_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
    return g_default->xFullPathname(g_default, name, n, out);
}

void* vfs_dl_open(sqlite3_vfs*, const char* name) {
    return g_default->xDlOpen(g_default, name);
}

void vfs_dl_error(sqlite3_vfs*, int n, char* out) {
    g_default->xDlError(g_default, n, out);
}

void (*vfs_dl_sym(sqlite3_vfs*, void* handle, const char* symbol))(void) {
    return g_default->xDlSym(g_default, handle, symbol);
}

void vfs_dl_close(sqlite3_vfs*, void* handle) {
    g_default->xDlClose(g_default, handle);
}

int vfs_randomness(sqlite3_vfs*, int n, char* out) {
    return g_default->xRandomness(g_default, n, out);
}

int vfs_sleep(sqlite3_vfs*, int microseconds) {
    return g_default->xSleep(g_default, microseconds);
}

int vfs_current_time(sqlite3_vfs*, double* out) {
    return g_default->xCurrentTime(g_default, out);
}

int vfs_get_last_error(sqlite3_vfs*, int n, char* out) {
    return g_default->xGetLastError(g_default, n, out);
}

int vfs_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
    return g_default->xCurrentTimeInt64(g_default, out);
}

int vfs_set_system_call(sqlite3_vfs*, const char* name, sqlite3_syscall_ptr call) {
    return g_default->xSetSystemCall(g_default, name, call);
}

sqlite3_syscall_ptr vfs_get_system_call(sqlite3_vfs*, const char* name) {
    return g_default->xGetSystemCall(g_default, name);
}

const char* vfs_next_system_call(sqlite3_vfs*, const char* name) {
    return g_default->xNextSystemCall(g_default, name);
}

}  // namespace

const char* wal_gathering_vfs() {
    static std::once_flag once;
    std::call_once(once, [] {
        g_default = sqlite3_vfs_find(nullptr);
        g_vfs.iVersion = 3;
        g_vfs.szOsFile = static_cast<int>(k_header) + g_default->szOsFile;
        g_vfs.mxPathname = g_default->mxPathname;
        g_vfs.zName = "hookrelay-wal-gathering";
        g_vfs.xOpen = vfs_open;
        g_vfs.xDelete = vfs_delete;
        g_vfs.xAccess = vfs_access;
        g_vfs.xFullPathname = vfs_full_pathname;
        g_vfs.xDlOpen = vfs_dl_open;
        g_vfs.xDlError = vfs_dl_error;
        g_vfs.xDlSym = vfs_dl_sym;
        g_vfs.xDlClose = vfs_dl_close;
        g_vfs.xRandomness = vfs_randomness;
        g_vfs.xSleep = vfs_sleep;
        g_vfs.xCurrentTime = vfs_current_time;
        g_vfs.xGetLastError = vfs_get_last_error;
        g_vfs.xCurrentTimeInt64 = vfs_current_time_int64;
        g_vfs.xSetSystemCall = vfs_set_system_call;
        g_vfs.xGetSystemCall = vfs_get_system_call;
        g_vfs.xNextSystemCall = vfs_next_system_call;
        sqlite3_vfs_register(&g_vfs, 0);
    });
    return g_vfs.zName;
}

WalWrites wal_writes() {
    return {g_asked.load(std::memory_order_relaxed), g_made.load(std::memory_order_relaxed),
            g_temporary.load(std::memory_order_relaxed)};
}

}  // namespace hookrelay::store::sqlite
