// The intake log: accepted submissions appended to preallocated segment files and synced per
// group, so that a webhook can be answered once its record is on disk, before the store thread
// has indexed it into SQLite (docs/performance.md, "An intake log's bound, measured").
//
// Files: <dir>/<n>.seg, each exactly `segment_size` bytes, written whole with zeros when created
// and overwritten in place afterwards, so that a sync only ever flushes data (an appended file
// would also commit its new size through the file system's journal on every sync).
//
// A record is a 20-byte header (magic "HRIL", the payload's length, a sequence number, a CRC-32
// of the length, the sequence number and the payload), then the payload. Sequence numbers grow by
// one per record over the log's whole life. A segment holds consecutive records from its offset
// 0 ("its run"); a record never spans two segments. Replay follows the runs in the order of their
// first sequence numbers and stops a run at the first header that is not the next record: zeros,
// a torn or corrupt record, or a record of the segment's previous use (its number is older).
//
// After a restart, appends go to the start of a free segment with a number above every valid one
// seen, never after the last record of a run: what follows that record on disk may be a torn
// record of the group that was being written, or a stale one.
//
// A group is written with one pwritev per segment it touches, then each touched segment is
// synced with fdatasync. A group whose write or sync fails breaks the log (every later append
// fails until it is opened again): after a failed sync the page cache no longer tells what is
// on disk.
//
// Thread safety: append() on one thread at a time; read(), release_through() and the accessors
// from any thread.
#pragma once

#include <hookrelay/error.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::store::sqlite {

class IntakeLog {
  public:
    /// The record header's size.
    static constexpr std::size_t k_header = 20;

    struct Options {
        std::filesystem::path dir;
        /// Each segment file's size; a payload larger than this less k_header is refused.
        std::uint64_t segment_size = 64u << 20;
        /// Segments made when the log is created (at least 1).
        std::size_t initial_segments = 2;
        /// At most this many segment files: with every one holding records not yet released,
        /// append() fails with errc::store_full.
        std::size_t max_segments = 64;
        /// Told at open, one line each, of records that cannot be replayed: a record that does
        /// not read whole with records after it, numbers missing between the segments' runs.
        std::function<void(const std::string&)> warn;
    };

    /// Where a record lies, for read().
    struct Position {
        std::uint64_t seq = 0;
        std::uint32_t segment = 0;
        std::uint64_t offset = 0;  ///< of the payload, in its segment
        std::uint32_t length = 0;  ///< of the payload
    };

    /// Called at open for each record after `released_through`, in order (may be empty).
    using Replay = std::function<void(const Position&, std::string_view payload)>;

    /// Opens the log in `options.dir` (creating the directory and the first segments when there
    /// are none), replays every record numbered above `released_through` through `replay`, and
    /// makes the log ready to append after the highest number seen. Fails with
    /// errc::store_unavailable, `why` then naming the file and the system's reason.
    static result<std::unique_ptr<IntakeLog>> open(const Options& options,
                                                   std::uint64_t released_through,
                                                   const Replay& replay, std::string* why);

    /// Whether `dir` holds a segment file (false when it does not exist): a log worth opening to
    /// replay. errc::store_unavailable when it cannot be listed, `why` then naming the reason.
    static result<bool> has_segments(const std::filesystem::path& dir, std::string* why);

    /// The log's id, which ties it to the database that indexes it: the 32 hex digits of
    /// <dir>/id (white space around them ignored, upper case read as lower), "" when there is no
    /// such file. errc::store_unavailable when it cannot be read or holds anything else, `why`
    /// then saying so.
    static result<std::string> read_id(const std::filesystem::path& dir, std::string* why);
    /// Makes `id` the log's id: <dir>/id written whole and synced, then renamed into place and
    /// the directory synced (a crash leaves the old id or the new one). errc::store_unavailable
    /// when that fails, `why` naming the file and the system's reason.
    static result<void> write_id(const std::filesystem::path& dir, const std::string& id,
                                 std::string* why);
    /// Syncs the directory `dir` (after a file in it was removed). False when that fails, `why`
    /// naming it and the system's reason.
    static bool sync(const std::filesystem::path& dir, std::string* why);

    ~IntakeLog();
    IntakeLog(const IntakeLog&) = delete;
    IntakeLog& operator=(const IntakeLog&) = delete;

    /// Appends the payloads as consecutive records and syncs them; each one's position, in
    /// order. On failure nothing of the group counts as written: errc::store_full (every segment
    /// holds records not yet released, and there are max_segments), errc::payload_too_large (a
    /// payload does not fit a segment; the log stays usable), errc::store_unavailable (a write
    /// or a sync failed, and the log is broken; or a new segment could not be made, and the next
    /// group tries again).
    result<std::vector<Position>> append(std::span<const std::string_view> payloads,
                                         std::string* why);

    /// The payload at `at`, read back and checked against its header. errc::store_unavailable
    /// when it cannot be read or no longer holds that record.
    result<std::string> read(const Position& at, std::string* why) const;

    /// Records numbered up to `seq` are no longer needed (indexed, and that durably): segments
    /// holding nothing later may be written again.
    void release_through(std::uint64_t seq);

    /// The largest payload a record may have.
    std::uint64_t max_payload() const;
    /// The number the next record appended will get.
    std::uint64_t next_seq() const;
    /// Segment files the log has.
    std::size_t segments() const;
    /// Segments free to be written again (released, or never used).
    std::size_t free_segments() const;
    /// True once a write or a sync failed: every append is refused from then on.
    bool broken() const;
    /// That failure, as reported; empty while the log is not broken.
    std::string why_broken() const;

    class Impl;

  private:
    explicit IntakeLog(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace hookrelay::store::sqlite
