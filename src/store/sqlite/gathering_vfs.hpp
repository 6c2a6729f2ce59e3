// A SQLite VFS that writes the WAL in one system call per commit (up to 31 frames of 4 KiB pages
// at a time) instead of two per page.
// Implementation header of the SQLite backend.
#pragma once

#include <cstdint>

namespace hookrelay::store::sqlite {

/// The name of a VFS over SQLite's default one (registered on the first call, never made the
/// default) that changes one thing: the writes that append to a WAL are gathered in memory while
/// each one continues where the last ended, and written with one call once a commit's last frame
/// is in, or when something else needs them in the file (a sync, a read, the file's size, a
/// truncate, a close, a file control, a write elsewhere in the file, the commit's publication to
/// readers) or 128 KiB - 1 bytes have gathered. SQLite writes a commit's frames back to back, each
/// as two writes (the 24-byte frame header, then the page), so a commit reaches the file in one
/// write per 31 pages instead of two per page, before the write of its last frame returns: before
/// SQLite syncs it (synchronous = FULL) or publishes it to readers (NORMAL), and with any error
/// reported to the commit. What a rolled-back transaction left gathered is dropped when its write
/// lock is released. Every other file, and every other call, goes to the default VFS unchanged.
const char* gathering_vfs();

/// What SQLite did through that VFS in this process so far (for tests and benchmarks): the writes
/// to WAL files it asked for, those made to the files, and the temporary files it opened
/// (statement journals, sorts and temporary tables that did not stay in memory).
struct VfsCounts {
    std::uint64_t wal_asked = 0;
    std::uint64_t wal_made = 0;
    std::uint64_t temporary_files = 0;
};
VfsCounts vfs_counts();

}  // namespace hookrelay::store::sqlite
