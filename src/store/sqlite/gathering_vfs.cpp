// The gathering VFS (gathering_vfs.hpp). SQLite's documented way to change how files are written
// is a VFS "shim" over the default one (https://www.sqlite.org/vfs.html). It gathers the writes
// that append to a WAL; it wraps the database file only to see the wal-index calls SQLite makes on
// it. Why it is safe (against SQLite 3.40's wal.c; not for exclusive locking mode, which the store
// does not use):
// - A WAL frame is a 24-byte header, then the page; bytes 4-7 of the header are zero except in
//   the last frame of a commit (the database's size in pages: "the commit flag"). SQLite writes
//   the header, then the page. Once the page of a frame whose header had the flag is gathered,
//   everything gathered is written before that write returns: a commit's frames are in the file
//   before SQLite syncs the WAL (synchronous = FULL) or publishes the commit to readers in the
//   wal-index (NORMAL, no sync), exactly as without the shim, and a failed write fails the commit.
// - Only appends are gathered: a write below the furthest point written since the WAL last started
//   over (a frame overwritten in place, the checksums of a commit's frames rewritten) writes what
//   was gathered, then goes straight to the file, its error to its caller.
// - Writes are made in the order SQLite asked for them: what was gathered is written before a
//   write elsewhere in the file, and before a read (frames of a transaction not yet committed are
//   read back only by the writer, through xRead; the checkpoint reads through it too), a sync,
//   the file's size, a truncate, a close or a file control, and before the barrier on the
//   database file's wal-index that publishes a commit.
// - A write that fails drops what was gathered, as SQLite never needs those bytes again: the
//   transaction fails, and SQLite rolls it back.
// - When the connection releases the WAL's write lock (xShmLock on the database file), its
//   transaction has ended: anything still gathered belongs to one that was rolled back, and is
//   dropped. Another connection (another process, a second store on the file) may write those
//   offsets next.
// - SQLite pads a commit to a sector boundary, in writes it splits, only on a device without
//   "powersafe overwrite" (SQLITE_IOCAP_POWERSAFE_OVERWRITE, on in Debian's build); a WAL of such a
//   database is written through without gathering.
// - A connection is used by one thread at a time: a file's buffer is never used concurrently.
#include "store/sqlite/gathering_vfs.hpp"

#include <sqlite3.h>

#include <algorithm>
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

std::atomic<std::uint64_t> g_asked{0};
std::atomic<std::uint64_t> g_made{0};
std::atomic<std::uint64_t> g_temporary{0};

constexpr int k_temporary = SQLITE_OPEN_SUBJOURNAL | SQLITE_OPEN_TEMP_JOURNAL |
                            SQLITE_OPEN_TEMP_DB | SQLITE_OPEN_TRANSIENT_DB;

// The wal-index lock a writer holds for its whole transaction (WAL_WRITE_LOCK in wal.c).
constexpr int k_write_lock = 0;

// A database file or a WAL: the default VFS's file lives in the same allocation, after this.
struct GatheredFile {
    sqlite3_file base;
    sqlite3_file* real;
    GatheredFile* peer;  // the database file's WAL, or the WAL's database file (while both open)
    char* buffer;        // k_capacity bytes, allocated at the first gathered write (WAL only)
    std::size_t used;    // bytes gathered
    sqlite3_int64 from;  // where they go in the file
    sqlite3_int64 end;   // the furthest point written since the WAL started over at offset 0
    bool gathers;        // a WAL whose appends are gathered
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
    g_made.fetch_add(1, std::memory_order_relaxed);
    return f->real->pMethods->xWrite(f->real, data, static_cast<int>(n), offset);
}

// A failed write drops what was gathered: its transaction fails (SQLite never needs those bytes
// again), and a later retry could put a failed commit where recovery would find it.
int flush(GatheredFile* f) {
    if (f->used == 0) return SQLITE_OK;
    const std::size_t n = f->used;
    f->used = 0;
    return write_through(f, f->buffer, n, f->from);
}

int flush(sqlite3_file* file) {
    return flush(gathered(file));
}

void drop(GatheredFile* f) {
    f->used = 0;
    f->commit_frame = false;
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

// --- The WAL -------------------------------------------------------------------------------

int wal_write(sqlite3_file* file, const void* data, int n, sqlite3_int64 offset) {
    GatheredFile* f = gathered(file);
    g_asked.fetch_add(1, std::memory_order_relaxed);
    if (!f->gathers) return write_through(f, data, static_cast<std::size_t>(n), offset);
    const auto size = static_cast<std::size_t>(n);
    if (offset == 0) f->end = 0;  // the WAL's header: it starts over
    if (offset < f->end) {
        // An overwrite, not an append: straight to the file, after what came before it.
        f->commit_frame = false;
        if (const int rc = flush(f); rc != SQLITE_OK) return rc;
        return write_through(f, data, size, offset);
    }
    f->end = offset + n;
    const bool completes_commit = f->commit_frame;
    f->commit_frame = n == k_frame_header && has_commit_flag(data);
    if (const int rc = gather(f, data, size, offset); rc != SQLITE_OK) {
        f->commit_frame = false;
        return rc;
    }
    return completes_commit ? flush(f) : SQLITE_OK;
}

int wal_close(sqlite3_file* file) {
    GatheredFile* f = gathered(file);
    const int flushed = flush(f);
    const int closed = f->real->pMethods->xClose(f->real);
    if (f->peer != nullptr) f->peer->peer = nullptr;
    f->peer = nullptr;
    std::free(f->buffer);
    f->buffer = nullptr;
    f->used = 0;
    return flushed != SQLITE_OK ? flushed : closed;
}

int wal_read(sqlite3_file* file, void* data, int n, sqlite3_int64 offset) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xRead(real(file), data, n, offset);
}

int wal_truncate(sqlite3_file* file, sqlite3_int64 size) {
    GatheredFile* f = gathered(file);
    if (const int rc = flush(f); rc != SQLITE_OK) return rc;
    f->end = std::min(f->end, size);
    return f->real->pMethods->xTruncate(f->real, size);
}

int wal_sync(sqlite3_file* file, int flags) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xSync(real(file), flags);
}

int wal_file_size(sqlite3_file* file, sqlite3_int64* size) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xFileSize(real(file), size);
}

// The call is made whatever the flush gave: SQLite ignores the result of most file controls.
int wal_file_control(sqlite3_file* file, int op, void* arg) {
    const int flushed = flush(file);
    const int rc = real(file)->pMethods->xFileControl(real(file), op, arg);
    return rc == SQLITE_OK && flushed != SQLITE_OK ? flushed : rc;
}

int wal_fetch(sqlite3_file* file, sqlite3_int64 offset, int n, void** out) {
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return real(file)->pMethods->xFetch(real(file), offset, n, out);
}

// --- The database file: every call passes through; three of them act on its WAL ------------

int db_close(sqlite3_file* file) {
    GatheredFile* f = gathered(file);
    if (f->peer != nullptr) {
        // Not seen with SQLite's pager, which closes a WAL first: without its database file, a
        // WAL's publications and write lock cannot be seen, so it stops gathering.
        drop(f->peer);  // no transaction is open: what is gathered, if anything, was rolled back
        f->peer->gathers = false;
        f->peer->peer = nullptr;
    }
    f->peer = nullptr;
    return f->real->pMethods->xClose(f->real);
}

// A commit is published between the two copies of the wal-index header, across this barrier
// (SQLite calls it elsewhere too). Appends are written when their commit's last frame is, so
// nothing is gathered here after a commit; this is a guard, with no result to report a failure.
void db_shm_barrier(sqlite3_file* file) {
    GatheredFile* f = gathered(file);
    if (f->peer != nullptr) flush(f->peer);
    f->real->pMethods->xShmBarrier(f->real);
}

int db_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
    GatheredFile* f = gathered(file);
    const bool releases_write_lock =
        (flags & SQLITE_SHM_UNLOCK) != 0 && offset <= k_write_lock && k_write_lock < offset + n;
    if (releases_write_lock && f->peer != nullptr) drop(f->peer);
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

// --- Calls passed through (the database file's all but three, the WAL's that touch no bytes) -

int file_write(sqlite3_file* file, const void* data, int n, sqlite3_int64 offset) {
    return real(file)->pMethods->xWrite(real(file), data, n, offset);
}

int file_read(sqlite3_file* file, void* data, int n, sqlite3_int64 offset) {
    return real(file)->pMethods->xRead(real(file), data, n, offset);
}

int file_truncate(sqlite3_file* file, sqlite3_int64 size) {
    return real(file)->pMethods->xTruncate(real(file), size);
}

int file_sync(sqlite3_file* file, int flags) {
    return real(file)->pMethods->xSync(real(file), flags);
}

int file_size(sqlite3_file* file, sqlite3_int64* size) {
    return real(file)->pMethods->xFileSize(real(file), size);
}

int file_control(sqlite3_file* file, int op, void* arg) {
    return real(file)->pMethods->xFileControl(real(file), op, arg);
}

int file_fetch(sqlite3_file* file, sqlite3_int64 offset, int n, void** out) {
    return real(file)->pMethods->xFetch(real(file), offset, n, out);
}

int file_lock(sqlite3_file* file, int level) {
    return real(file)->pMethods->xLock(real(file), level);
}

int file_unlock(sqlite3_file* file, int level) {
    return real(file)->pMethods->xUnlock(real(file), level);
}

int file_check_reserved_lock(sqlite3_file* file, int* out) {
    return real(file)->pMethods->xCheckReservedLock(real(file), out);
}

int file_sector_size(sqlite3_file* file) {
    return real(file)->pMethods->xSectorSize(real(file));
}

int file_device_characteristics(sqlite3_file* file) {
    return real(file)->pMethods->xDeviceCharacteristics(real(file));
}

int file_shm_map(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
    return real(file)->pMethods->xShmMap(real(file), region, size, extend, out);
}

int file_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
    return real(file)->pMethods->xShmLock(real(file), offset, n, flags);
}

void file_shm_barrier(sqlite3_file* file) {
    real(file)->pMethods->xShmBarrier(real(file));
}

int file_shm_unmap(sqlite3_file* file, int delete_flag) {
    return real(file)->pMethods->xShmUnmap(real(file), delete_flag);
}

int file_unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
    return real(file)->pMethods->xUnfetch(real(file), offset, page);
}

const sqlite3_io_methods k_wal_methods = {
    3,
    wal_close,
    wal_read,
    wal_write,
    wal_truncate,
    wal_sync,
    wal_file_size,
    file_lock,
    file_unlock,
    file_check_reserved_lock,
    wal_file_control,
    file_sector_size,
    file_device_characteristics,
    file_shm_map,
    file_shm_lock,
    file_shm_barrier,
    file_shm_unmap,
    wal_fetch,
    file_unfetch,
};

const sqlite3_io_methods k_db_methods = {
    3,
    db_close,
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
    db_shm_lock,
    db_shm_barrier,
    file_shm_unmap,
    file_fetch,
    file_unfetch,
};

// Every other file (journals, temporary files) is the default VFS's own, opened in place (the
// file handle SQLite allocates has room for a GatheredFile before it, unused then). So is a file
// whose default methods are older than version 3, whose calls this VFS's tables would overrun
// (never the unix VFS's).
int vfs_open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
    const bool wal = (flags & SQLITE_OPEN_WAL) != 0;
    if (!wal && (flags & SQLITE_OPEN_MAIN_DB) == 0) {
        if ((flags & k_temporary) != 0) g_temporary.fetch_add(1, std::memory_order_relaxed);
        return g_default->xOpen(g_default, name, file, flags, out_flags);
    }
    GatheredFile* f = gathered(file);
    f->base.pMethods = nullptr;
    f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + k_header);
    f->peer = nullptr;
    f->buffer = nullptr;
    f->used = 0;
    f->from = 0;
    f->end = 0;
    f->gathers = false;
    f->commit_frame = false;
    f->real->pMethods = nullptr;
    const int rc = g_default->xOpen(g_default, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        // SQLite closes a file whose xOpen failed only when its methods are set.
        if (f->real->pMethods != nullptr) f->real->pMethods->xClose(f->real);
        return rc;
    }
    if (f->real->pMethods->iVersion < 3) {
        f->real->pMethods->xClose(f->real);
        return g_default->xOpen(g_default, name, file, flags, out_flags);
    }
    if (!wal) {
        f->base.pMethods = &k_db_methods;
        return SQLITE_OK;
    }
    f->base.pMethods = &k_wal_methods;
    // The database file this WAL belongs to, opened before it by the same connection through this
    // VFS: without it the barrier and the write lock could not be seen, so nothing is gathered.
    // (Only SQLite's pager opens files with SQLITE_OPEN_WAL, with names it can look up.)
    sqlite3_file* db = sqlite3_database_file_object(name);
    if (db != nullptr && db->pMethods == &k_db_methods) {
        GatheredFile* d = gathered(db);
        const int characteristics = d->real->pMethods->xDeviceCharacteristics(d->real);
        f->peer = d;
        d->peer = f;
        f->gathers = (characteristics & SQLITE_IOCAP_POWERSAFE_OVERWRITE) != 0;
    }
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
    return {g_asked.load(std::memory_order_relaxed), g_made.load(std::memory_order_relaxed),
            g_temporary.load(std::memory_order_relaxed)};
}

}  // namespace hookrelay::store::sqlite
