// The gathering VFS (gathering_vfs.hpp). SQLite's documented way to change how files are written
// is a VFS "shim" over the default one (https://www.sqlite.org/vfs.html); this one wraps the
// database file and its WAL (SQLITE_OPEN_MAIN_DB, SQLITE_OPEN_WAL). Why it is safe:
// - Writes are made in the order SQLite asked for them: what was gathered is written before any
//   write elsewhere in the file, and before anything that could read the file or depend on what
//   is in it: a read, a sync, the file's size, a truncate, a close, a lock or unlock, a file
//   control, shared memory (the wal-index) and memory mapping.
// - WAL: a frame is a 24-byte header, then the page; bytes 4-7 of the header are zero except in
//   the last frame of a commit (the database's size in pages: "the commit flag"). SQLite writes
//   the header, then the page. Once the page of a frame whose header had the flag is gathered,
//   everything gathered is written before that write returns: a commit's frames are in the file
//   before SQLite syncs the WAL (synchronous = FULL) or publishes the commit to readers in the
//   wal-index (NORMAL, no sync), exactly as without the shim, and a failed write fails the commit.
//   Frames of a transaction not yet committed are read back only by the writer, through xRead.
// - Database file: in WAL mode only a checkpoint writes it, page after page in page order, then
//   asks its size or syncs it (both flush first) before it records how far it got; readers read
//   those pages from the WAL until then. Before WAL mode is set (a new file), the rollback
//   journal's writes are flushed at the sync and the unlock that follow them.
// - A write that fails keeps what was gathered, so the next call that flushes tries it again and
//   reports the error: an error is never lost in a call whose result SQLite ignores (a file
//   control "hint", a barrier). A commit or checkpoint whose flush failed fails.
// - The store has one connection, on one thread: a file's buffer is never used concurrently.
#include "store/sqlite/gathering_vfs.hpp"

#include <sqlite3.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace hookrelay::store::sqlite {
namespace {

// What one write gathers at most: the default VFS writes at most 128 KiB - 1 bytes per call (its
// seekAndWriteFd() masks the size with 0x1ffff, as SQLite itself never writes more than a 64 KiB
// page at once). 31 WAL frames of 4 KiB pages.
constexpr std::size_t k_capacity = 0x1ffff;

std::atomic<std::uint64_t> g_wal_asked{0};
std::atomic<std::uint64_t> g_wal_made{0};
std::atomic<std::uint64_t> g_db_asked{0};
std::atomic<std::uint64_t> g_db_made{0};
std::atomic<std::uint64_t> g_temporary{0};

constexpr int k_temporary = SQLITE_OPEN_SUBJOURNAL | SQLITE_OPEN_TEMP_JOURNAL |
                            SQLITE_OPEN_TEMP_DB | SQLITE_OPEN_TRANSIENT_DB;

// A database file or a WAL: the default VFS's file lives in the same allocation, after this.
struct GatheredFile {
    sqlite3_file base;
    sqlite3_file* real;
    char* buffer;        // k_capacity bytes, allocated at the first write
    std::size_t used;    // bytes gathered
    sqlite3_int64 from;  // where they go in the file
    bool wal;            // a WAL: a commit's frames are written once its last frame is in
    bool commit_frame;   // the last write was the header of a commit's last frame
};

constexpr std::size_t k_header = (sizeof(GatheredFile) + 15) / 16 * 16;
constexpr int k_frame_header = 24;

// Bytes 4-7 of a frame header: the commit flag (the database's size in pages), zero in every frame
// but a commit's last.
bool has_commit_flag(const void* header) {
    const auto* bytes = static_cast<const unsigned char*>(header);
    return (bytes[4] | bytes[5] | bytes[6] | bytes[7]) != 0;
}

sqlite3_vfs* g_default = nullptr;
sqlite3_vfs g_vfs{};

GatheredFile* gathered(sqlite3_file* file) {
    return reinterpret_cast<GatheredFile*>(file);
}

sqlite3_file* real(sqlite3_file* file) {
    return gathered(file)->real;
}

int write_through(GatheredFile* f, const void* data, std::size_t n, sqlite3_int64 offset) {
    (f->wal ? g_wal_made : g_db_made).fetch_add(1, std::memory_order_relaxed);
    return f->real->pMethods->xWrite(f->real, data, static_cast<int>(n), offset);
}

// Kept on failure: the next flush tries again and reports it again.
int flush(GatheredFile* f) {
    if (f->used == 0) return SQLITE_OK;
    const int rc = write_through(f, f->buffer, f->used, f->from);
    if (rc == SQLITE_OK) f->used = 0;
    return rc;
}

int flush(sqlite3_file* file) {
    return flush(gathered(file));
}

int gather(GatheredFile* f, const void* data, std::size_t size, sqlite3_int64 offset) {
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

int file_write(sqlite3_file* file, const void* data, int n, sqlite3_int64 offset) {
    GatheredFile* f = gathered(file);
    (f->wal ? g_wal_asked : g_db_asked).fetch_add(1, std::memory_order_relaxed);
    const bool completes_commit = f->commit_frame;
    f->commit_frame = f->wal && n == k_frame_header && has_commit_flag(data);
    if (const int rc = gather(f, data, static_cast<std::size_t>(n), offset); rc != SQLITE_OK) {
        return rc;
    }
    return completes_commit ? flush(f) : SQLITE_OK;
}

int file_close(sqlite3_file* file) {
    GatheredFile* f = gathered(file);
    const int flushed = flush(f);
    const int closed = f->real->pMethods->xClose(f->real);
    std::free(f->buffer);
    f->buffer = nullptr;
    f->used = 0;
    return flushed != SQLITE_OK ? flushed : closed;
}

int file_read(sqlite3_file* file, void* data, int n, sqlite3_int64 offset) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xRead(real(file), data, n, offset);
}

int file_truncate(sqlite3_file* file, sqlite3_int64 size) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xTruncate(real(file), size);
}

int file_sync(sqlite3_file* file, int flags) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xSync(real(file), flags);
}

int file_size(sqlite3_file* file, sqlite3_int64* size) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xFileSize(real(file), size);
}

int file_lock(sqlite3_file* file, int level) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xLock(real(file), level);
}

int file_unlock(sqlite3_file* file, int level) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xUnlock(real(file), level);
}

int file_check_reserved_lock(sqlite3_file* file, int* out) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xCheckReservedLock(real(file), out);
}

int file_control(sqlite3_file* file, int op, void* arg) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xFileControl(real(file), op, arg);
}

int file_sector_size(sqlite3_file* file) {
    return real(file)->pMethods->xSectorSize(real(file));
}

int file_device_characteristics(sqlite3_file* file) {
    return real(file)->pMethods->xDeviceCharacteristics(real(file));
}

int file_shm_map(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xShmMap(real(file), region, size, extend, out);
}

int file_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xShmLock(real(file), offset, n, flags);
}

// No result to report a failed write with: it stays gathered for the next call that has one.
void file_shm_barrier(sqlite3_file* file) {
    flush(file);
    real(file)->pMethods->xShmBarrier(real(file));
}

int file_shm_unmap(sqlite3_file* file, int delete_flag) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xShmUnmap(real(file), delete_flag);
}

int file_fetch(sqlite3_file* file, sqlite3_int64 offset, int n, void** out) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xFetch(real(file), offset, n, out);
}

int file_unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
    return real(file)->pMethods->xUnfetch(real(file), offset, page);
}

const sqlite3_io_methods k_methods = {
    3,
    file_close,
    file_read,
    file_write,
    file_truncate,
    file_sync,
    file_size,
    file_lock,
    file_unlock,
    file_check_reserved_lock,
    file_control,
    file_sector_size,
    file_device_characteristics,
    file_shm_map,
    file_shm_lock,
    file_shm_barrier,
    file_shm_unmap,
    file_fetch,
    file_unfetch,
};

// Every other file (journals, temporary files) is the default VFS's own, opened in place (the
// file handle SQLite allocates has room for a GatheredFile before it, unused then).
int vfs_open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
    if ((flags & (SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_DB)) == 0) {
        if ((flags & k_temporary) != 0) g_temporary.fetch_add(1, std::memory_order_relaxed);
        return g_default->xOpen(g_default, name, file, flags, out_flags);
    }
    GatheredFile* f = gathered(file);
    f->base.pMethods = nullptr;
    f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + k_header);
    f->buffer = nullptr;
    f->used = 0;
    f->from = 0;
    f->wal = (flags & SQLITE_OPEN_WAL) != 0;
    f->commit_frame = false;
    const int rc = g_default->xOpen(g_default, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        // SQLite closes a file whose xOpen failed only when its methods are set.
        if (f->real->pMethods != nullptr) f->real->pMethods->xClose(f->real);
        return rc;
    }
    f->base.pMethods = &k_methods;
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

const char* gathering_vfs() {
    static std::once_flag once;
    std::call_once(once, [] {
        g_default = sqlite3_vfs_find(nullptr);
        g_vfs.iVersion = 3;
        g_vfs.szOsFile = static_cast<int>(k_header) + g_default->szOsFile;
        g_vfs.mxPathname = g_default->mxPathname;
        g_vfs.zName = "hookrelay-gathering";
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

VfsCounts vfs_counts() {
    return {g_wal_asked.load(std::memory_order_relaxed), g_wal_made.load(std::memory_order_relaxed),
            g_db_asked.load(std::memory_order_relaxed), g_db_made.load(std::memory_order_relaxed),
            g_temporary.load(std::memory_order_relaxed)};
}

}  // namespace hookrelay::store::sqlite
