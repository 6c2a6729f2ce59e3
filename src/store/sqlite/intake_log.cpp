#include "store/sqlite/intake_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <mutex>
#include <optional>
#include <system_error>

namespace hookrelay::store::sqlite {
namespace {

constexpr std::uint32_t k_magic = 0x4c495248;  // "HRIL" read as little-endian bytes
constexpr std::string_view k_suffix = ".seg";
constexpr std::string_view k_partial = ".seg.partial";
// Zeros written per call when a segment is made.
constexpr std::size_t k_zero_chunk = 1u << 20;

std::string describe(const std::string& what, const std::filesystem::path& path, int error) {
    return what + " " + path.string() + ": " + std::strerror(error);
}

void put32(char* at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) at[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void put64(char* at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) at[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
std::uint32_t get32(const char* at) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(at[i]);
    return v;
}
std::uint64_t get64(const char* at) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(at[i]);
    return v;
}

// The CRC-32 of the header's length and sequence number (bytes 4..15), then of the payload.
std::uint32_t record_crc(const char* header, std::string_view payload) {
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(header + 4), 12);
    // zlib takes at most UINT_MAX bytes a call; payloads fit a segment, but stay general.
    while (!payload.empty()) {
        const auto n = static_cast<uInt>(std::min<std::size_t>(payload.size(), UINT_MAX));
        crc = crc32(crc, reinterpret_cast<const Bytef*>(payload.data()), n);
        payload.remove_prefix(n);
    }
    return static_cast<std::uint32_t>(crc);
}

std::array<char, IntakeLog::k_header> make_header(std::uint64_t seq, std::string_view payload) {
    std::array<char, IntakeLog::k_header> h{};
    put32(h.data(), k_magic);
    put32(h.data() + 4, static_cast<std::uint32_t>(payload.size()));
    put64(h.data() + 8, seq);
    put32(h.data() + 16, record_crc(h.data(), payload));
    return h;
}

// The number of a segment file named `name` ("<n>.seg", as the log names them: no leading zero),
// or nothing for any other file. A copy named "00.seg" is not segment 0 a second time.
std::optional<std::uint32_t> segment_number(const std::string& name) {
    if (!name.ends_with(k_suffix)) return std::nullopt;
    const std::string stem = name.substr(0, name.size() - k_suffix.size());
    if (stem.empty() || stem.size() > 10 || (stem.size() > 1 && stem.front() == '0') ||
        stem.find_first_not_of("0123456789") != std::string::npos) {
        return std::nullopt;
    }
    const unsigned long long number = std::stoull(stem);
    if (number > UINT32_MAX) return std::nullopt;
    return static_cast<std::uint32_t>(number);
}

// Reads exactly `size` bytes at `offset`; false at end of file or on an error (errno set then).
bool read_exact(int fd, char* into, std::size_t size, std::uint64_t offset) {
    while (size > 0) {
        const ssize_t n = ::pread(fd, into, size, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = 0;
            return false;
        }
        into += n;
        size -= static_cast<std::size_t>(n);
        offset += static_cast<std::uint64_t>(n);
    }
    return true;
}

bool sync_dir(const std::filesystem::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = ::fsync(fd) == 0;
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return ok;
}

}  // namespace

class IntakeLog::Impl {
  public:
    struct Segment {
        int fd = -1;
        std::uint32_t number = 0;  ///< the file's name
        std::uint64_t size = 0;
        std::uint64_t first = 0;  ///< the first record's number of its run (0: none)
        std::uint64_t last = 0;   ///< the last one's
        std::uint64_t start = 0;  ///< the run's first record's offset (past a damaged one)
        bool used = false;        ///< holds records not yet released
        ~Segment() {
            if (fd >= 0) ::close(fd);
        }
    };

    explicit Impl(Options options) : options_(std::move(options)) {}

    // --- open

    bool open(std::uint64_t released, const Replay& replay, std::string* why) {
        released_ = released;
        std::error_code ec;
        const bool made = std::filesystem::create_directories(options_.dir, ec);
        if (ec) return fail(why, "cannot create " + options_.dir.string() + ": " + ec.message());
        ::chmod(options_.dir.c_str(), 0700);
        // The directory's own entry, durable before anything is answered from it.
        const std::filesystem::path parent =
            options_.dir.has_parent_path() ? options_.dir.parent_path() : ".";
        if (made && !sync_dir(parent)) return fail(why, describe("cannot sync", parent, errno));
        std::vector<std::uint32_t> numbers;
        for (const auto& entry : std::filesystem::directory_iterator(options_.dir, ec)) {
            const std::string name = entry.path().filename().string();
            if (name.ends_with(k_partial)) {
                // A segment whose making was cut short: it never held a record.
                std::filesystem::remove(entry.path(), ec);
                continue;
            }
            if (const auto number = segment_number(name)) numbers.push_back(*number);
        }
        if (ec) return fail(why, "cannot list " + options_.dir.string() + ": " + ec.message());
        std::sort(numbers.begin(), numbers.end());
        for (const std::uint32_t n : numbers) {
            if (!open_segment(n, why)) return false;
        }
        if (segments_.empty()) {
            const std::size_t count = std::max<std::size_t>(options_.initial_segments, 1);
            for (std::size_t i = 0; i < count; ++i) {
                if (!make_segment(why)) return false;
            }
            next_seq_ = released_ + 1;
            return true;
        }
        return scan(replay, why);
    }

    // --- append

    result<std::vector<Position>> append(std::span<const std::string_view> payloads,
                                         std::string* why) {
        if (broken_) {
            fail(why, "the intake log takes nothing since a write or sync of it failed (" +
                          why_broken() + "); restart hookrelay once the disk is sound");
            return make_error_code(errc::store_unavailable);
        }
        // Plan where each record goes without changing the log, then write, then commit the plan.
        struct Placement {
            std::size_t segment;  // index into segments_
            std::uint64_t offset;
        };
        std::vector<Placement> plan;
        plan.reserve(payloads.size());
        std::vector<std::size_t> opened;  // segments this group starts (from their offset 0)
        std::optional<std::size_t> at = current_;
        std::uint64_t write_at = write_at_;
        for (const std::string_view payload : payloads) {
            const std::uint64_t need = k_header + payload.size();
            if (payload.size() > UINT32_MAX || need > options_.segment_size) {
                fail(why, "a record of " + std::to_string(payload.size()) +
                              " bytes does not fit an intake log segment of " +
                              std::to_string(options_.segment_size) + " bytes");
                return make_error_code(errc::payload_too_large);
            }
            if (!at || write_at + need > segments_[*at]->size) {
                const auto next = take_free(at, opened, need, why);
                if (!next) return next.error();
                at = *next;
                opened.push_back(*at);
                write_at = 0;
            }
            plan.push_back({*at, write_at});
            write_at += need;
        }
        // The headers, then one pwritev per run of records in one segment.
        std::vector<std::array<char, k_header>> headers;
        headers.reserve(payloads.size());
        for (std::size_t i = 0; i < payloads.size(); ++i) {
            headers.push_back(make_header(next_seq_ + i, payloads[i]));
        }
        std::vector<std::size_t> touched;
        std::size_t i = 0;
        while (i < plan.size()) {
            std::size_t end = i;
            while (end < plan.size() && plan[end].segment == plan[i].segment) ++end;
            if (!write_records(plan[i].segment, plan[i].offset, headers, payloads, i, end, why)) {
                mark_broken(why);
                return make_error_code(errc::store_unavailable);
            }
            touched.push_back(plan[i].segment);
            i = end;
        }
        for (const std::size_t s : touched) {
            if (::fdatasync(segments_[s]->fd) != 0) {
                fail(why, describe("cannot sync", path(segments_[s]->number), errno));
                mark_broken(why);
                return make_error_code(errc::store_unavailable);
            }
        }
        std::vector<Position> positions;
        positions.reserve(payloads.size());
        std::lock_guard lock(mutex_);
        for (std::size_t k = 0; k < plan.size(); ++k) {
            Segment& seg = *segments_[plan[k].segment];
            const std::uint64_t seq = next_seq_ + k;
            if (std::find(opened.begin(), opened.end(), plan[k].segment) != opened.end() &&
                plan[k].offset == 0) {
                seg.first = seq;
            }
            seg.last = seq;
            seg.used = true;
            positions.push_back({seq, seg.number, plan[k].offset + k_header,
                                 static_cast<std::uint32_t>(payloads[k].size())});
        }
        next_seq_ += payloads.size();
        current_ = at;
        write_at_ = write_at;
        return positions;
    }

    // --- read back

    result<std::string> read(const Position& at, std::string* why) const {
        int fd = -1;
        std::uint64_t size = 0;
        {
            std::lock_guard lock(mutex_);
            for (const auto& seg : segments_) {
                if (seg->number == at.segment) {
                    fd = seg->fd;
                    size = seg->size;
                }
            }
        }
        if (fd < 0 || at.offset < k_header || at.offset + at.length > size) {
            fail(why, "intake log record " + std::to_string(at.seq) + " is not in segment " +
                          std::to_string(at.segment));
            return make_error_code(errc::store_unavailable);
        }
        std::array<char, k_header> header{};
        std::string payload(at.length, '\0');
        if (!read_exact(fd, header.data(), k_header, at.offset - k_header) ||
            !read_exact(fd, payload.data(), payload.size(), at.offset)) {
            fail(why, describe("cannot read", path(at.segment), errno ? errno : EIO));
            return make_error_code(errc::store_unavailable);
        }
        if (get32(header.data()) != k_magic || get32(header.data() + 4) != at.length ||
            get64(header.data() + 8) != at.seq ||
            get32(header.data() + 16) != record_crc(header.data(), payload)) {
            fail(why, "intake log record " + std::to_string(at.seq) + " in segment " +
                          std::to_string(at.segment) + " no longer holds what was written");
            return make_error_code(errc::store_unavailable);
        }
        return payload;
    }

    void release_through(std::uint64_t seq) {
        std::lock_guard lock(mutex_);
        released_ = std::max(released_, seq);
        for (std::size_t s = 0; s < segments_.size(); ++s) {
            Segment& seg = *segments_[s];
            if (seg.used && seg.last <= released_ && (!current_ || *current_ != s)) {
                seg.used = false;
            }
        }
    }

    std::uint64_t next_seq() const {
        std::lock_guard lock(mutex_);
        return next_seq_;
    }
    std::uint64_t max_payload() const { return options_.segment_size - k_header; }
    std::size_t segments() const {
        std::lock_guard lock(mutex_);
        return segments_.size();
    }
    std::size_t free_segments() const {
        std::lock_guard lock(mutex_);
        std::size_t n = 0;
        for (std::size_t s = 0; s < segments_.size(); ++s) {
            if (!segments_[s]->used && (!current_ || *current_ != s)) ++n;
        }
        return n;
    }
    bool broken() const { return broken_; }
    std::string why_broken() const {
        std::lock_guard lock(mutex_);
        return why_broken_;
    }

  private:
    std::filesystem::path path(std::uint32_t number) const {
        return options_.dir / (std::to_string(number) + std::string(k_suffix));
    }

    // A write or a sync of a segment failed. What the kernel keeps of those pages is then
    // unknown (a later sync may succeed over pages it dropped), so nothing more is appended:
    // a restart reads back what the disk holds. Not called with mutex_ held.
    void mark_broken(const std::string* why) {
        std::lock_guard lock(mutex_);
        if (why_broken_.empty()) {
            why_broken_ = why && !why->empty() ? *why : std::string("a write or sync failed");
        }
        broken_ = true;
    }

    static bool fail(std::string* why, std::string text) {
        if (why) *why = std::move(text);
        return false;
    }

    bool open_segment(std::uint32_t number, std::string* why) {
        const auto file = path(number);
        auto seg = std::make_unique<Segment>();
        seg->number = number;
        seg->fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
        if (seg->fd < 0) return fail(why, describe("cannot open", file, errno));
        struct stat st {};
        if (::fstat(seg->fd, &st) != 0) return fail(why, describe("cannot stat", file, errno));
        seg->size = static_cast<std::uint64_t>(st.st_size);
        next_number_ = std::max(next_number_, number + 1);
        std::lock_guard lock(mutex_);
        segments_.push_back(std::move(seg));
        return true;
    }

    // A new segment, written whole with zeros and synced under a temporary name first, so that
    // a segment file is always whole.
    bool make_segment(std::string* why) {
        const std::uint32_t number = next_number_;
        const auto file = path(number);
        auto partial = file;
        partial.replace_extension(std::string(k_partial).substr(1));
        const int fd = ::open(partial.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) return fail(why, describe("cannot create", partial, errno));
        auto give_up = [&](const char* what) {
            const int error = errno;
            ::close(fd);
            ::unlink(partial.c_str());
            return fail(why, describe(what, partial, error));
        };
        const std::string zeros(k_zero_chunk, '\0');
        std::uint64_t done = 0;
        while (done < options_.segment_size) {
            const std::size_t n = static_cast<std::size_t>(
                std::min<std::uint64_t>(zeros.size(), options_.segment_size - done));
            const ssize_t w = ::pwrite(fd, zeros.data(), n, static_cast<off_t>(done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                if (w == 0) errno = ENOSPC;
                return give_up("cannot write");
            }
            done += static_cast<std::uint64_t>(w);
        }
        if (::fdatasync(fd) != 0) return give_up("cannot sync");
        if (::rename(partial.c_str(), file.c_str()) != 0) return give_up("cannot rename");
        if (!sync_dir(options_.dir)) {
            const int error = errno;
            ::close(fd);
            return fail(why, describe("cannot sync", options_.dir, error));
        }
        auto seg = std::make_unique<Segment>();
        seg->fd = fd;
        seg->number = number;
        seg->size = options_.segment_size;
        next_number_ = number + 1;
        std::lock_guard lock(mutex_);
        segments_.push_back(std::move(seg));
        return true;
    }

    // A segment to start writing at its offset 0: a free one (not `current`, not one this group
    // already started), else a new one while there are fewer than max_segments.
    result<std::size_t> take_free(std::optional<std::size_t> current,
                                  const std::vector<std::size_t>& opened, std::uint64_t need,
                                  std::string* why) {
        {
            std::lock_guard lock(mutex_);
            for (std::size_t s = 0; s < segments_.size(); ++s) {
                const Segment& seg = *segments_[s];
                if (seg.used || (current && *current == s) || seg.size < need) continue;
                if (std::find(opened.begin(), opened.end(), s) != opened.end()) continue;
                return s;
            }
        }
        if (segments_.size() >= options_.max_segments) {
            fail(why, "the intake log is full: all " + std::to_string(segments_.size()) +
                          " segments hold records not yet indexed");
            return make_error_code(errc::store_full);
        }
        // Nothing was written to a segment that holds records: the next group tries again.
        if (!make_segment(why)) return make_error_code(errc::store_unavailable);
        return segments_.size() - 1;
    }

    bool write_records(std::size_t s, std::uint64_t offset,
                       std::vector<std::array<char, k_header>>& headers,
                       std::span<const std::string_view> payloads, std::size_t begin,
                       std::size_t end, std::string* why) {
        const int fd = segments_[s]->fd;
        std::vector<iovec> iov;
        iov.reserve(2 * (end - begin));
        for (std::size_t k = begin; k < end; ++k) {
            iov.push_back({headers[k].data(), k_header});
            if (!payloads[k].empty()) {
                iov.push_back({const_cast<char*>(payloads[k].data()), payloads[k].size()});
            }
        }
        std::size_t first = 0;
        while (first < iov.size()) {
            const int count = static_cast<int>(std::min<std::size_t>(iov.size() - first, IOV_MAX));
            const ssize_t n = ::pwritev(fd, iov.data() + first, count, static_cast<off_t>(offset));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                if (n == 0) errno = ENOSPC;
                return fail(why, describe("cannot write", path(segments_[s]->number), errno));
            }
            offset += static_cast<std::uint64_t>(n);
            // Skip what was written; a short write leaves a partial buffer to go on from.
            auto left = static_cast<std::size_t>(n);
            while (left > 0 && first < iov.size()) {
                if (left >= iov[first].iov_len) {
                    left -= iov[first].iov_len;
                    ++first;
                } else {
                    iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
                    iov[first].iov_len -= left;
                    left = 0;
                }
            }
        }
        return true;
    }

    // One record of a segment's run at `offset`: its header checked against `expect` (0: any
    // number) and its payload read into `payload` and checked against the checksum. nullopt at
    // the run's end. A record numbered `released` or below is indexed in the database already:
    // only its header is read (its length leads to the next record), and `payload` is left
    // empty. So a start reads a segment's released records by their headers alone, ~20 bytes
    // each, and a released record whose payload the disk damaged no longer ends the run before
    // records that still wait to be indexed. scan() passes 0 for a segment's first record: its
    // number places the whole segment, and only the checksum tells a record whose write was cut
    // short (its header whole, its number issued again since) from one that was written.
    std::optional<std::pair<std::uint64_t, std::uint32_t>> record_at(const Segment& seg,
                                                                     std::uint64_t offset,
                                                                     std::uint64_t expect,
                                                                     std::uint64_t released,
                                                                     std::string& payload) const {
        std::array<char, k_header> header{};
        const auto found = header_at(seg, offset, header);
        if (!found || (expect != 0 && found->first != expect)) return std::nullopt;
        const auto [seq, length] = *found;
        if (seq <= released) {
            payload.clear();
            return found;
        }
        payload.resize(length);
        if (!read_exact(seg.fd, payload.data(), length, offset + k_header)) {
            if (errno != 0) read_error_ = errno;
            return std::nullopt;
        }
        if (get32(header.data() + 16) != record_crc(header.data(), payload)) return std::nullopt;
        return found;
    }

    // The header at `offset` (read into `header`) when it is one of this log's (its magic, a
    // number, a length that fits the segment), whatever its payload holds: {number, length}.
    std::optional<std::pair<std::uint64_t, std::uint32_t>> header_at(
        const Segment& seg, std::uint64_t offset, std::array<char, k_header>& header) const {
        if (offset + k_header > seg.size) return std::nullopt;
        if (!read_exact(seg.fd, header.data(), k_header, offset)) {
            if (errno != 0) read_error_ = errno;
            return std::nullopt;
        }
        const std::uint32_t length = get32(header.data() + 4);
        const std::uint64_t seq = get64(header.data() + 8);
        if (get32(header.data()) != k_magic || seq == 0 || length > seg.size - offset - k_header) {
            return std::nullopt;
        }
        return std::make_pair(seq, length);
    }

    // Whether a segment's run starts at `seq` (placed by scan() so far): a record numbered so
    // that does not read whole elsewhere was cut short, and its number issued again after a
    // restart (the first group after an open starts a segment).
    bool issued_again(std::uint64_t seq) const {
        return std::any_of(segments_.begin(), segments_.end(),
                           [&](const auto& seg) { return seg->first == seq; });
    }

    // Record `seq` at `offset` does not read whole. When the record after it (by its header's
    // length) is whole and numbered seq + 1, the run goes on there: the record was damaged on
    // the disk, or cut short by a power cut that kept a later page of its group (never answered
    // then). Unless `seq` starts another segment's run: then it was cut short and its number
    // issued again after a restart, and what follows it here is of that older group.
    // The offset of the record after it, where the run goes on; nullopt when it ends here.
    std::optional<std::uint64_t> past_damaged(const Segment& seg, std::uint64_t offset,
                                              std::uint64_t seq, std::string& payload) {
        std::array<char, k_header> bytes{};
        const auto header = header_at(seg, offset, bytes);
        if (!header || header->first != seq || seq <= released_ || issued_again(seq)) {
            return std::nullopt;
        }
        const std::uint64_t next = offset + k_header + header->second;
        if (!record_at(seg, next, seq + 1, 0, payload)) return std::nullopt;
        if (options_.warn) {
            options_.warn("intake log: record " + std::to_string(seq) + " in " +
                          path(seg.number).string() + " at offset " + std::to_string(offset) +
                          " does not read whole (damaged on the disk, or cut short by a power "
                          "cut while it was written); the records after it are replayed. Unless "
                          "hookrelay stopped while writing it, it held a webhook that was "
                          "answered 202 and is lost; `hookrelay deliveries list` shows what "
                          "arrived around it");
        }
        return next;
    }

    // At open: each segment's first record, checked whole; the runs that may hold records above
    // released_ read, in the order of their first numbers, and replayed. A read that fails fails
    // the open (a disk error is not the end of a run). Records that do not read whole with
    // records after them, and numbers above released_ missing between two runs, are told to
    // options_.warn: webhooks answered that cannot be replayed.
    bool scan(const Replay& replay, std::string* why) {
        std::vector<std::size_t> order;
        std::vector<std::size_t> unplaced;
        std::string payload;
        const auto read_failed = [&](const Segment& seg) {
            return fail(why, describe("cannot read", path(seg.number), read_error_) +
                                 " (the intake log holds webhooks not yet indexed; fix the disk "
                                 "and start hookrelay again)");
        };
        for (std::size_t s = 0; s < segments_.size(); ++s) {
            const auto first = record_at(*segments_[s], 0, 0, 0, payload);
            if (read_error_ != 0) return read_failed(*segments_[s]);
            if (first) {
                segments_[s]->first = first->first;
                order.push_back(s);
            } else {
                unplaced.push_back(s);
            }
        }
        // A segment whose first record does not read whole: one indexed already leads on by its
        // header, as any indexed record does (unless its number starts another segment's run:
        // then it was cut short and issued again); another's run starts at the next record.
        for (const std::size_t s : unplaced) {
            Segment& seg = *segments_[s];
            std::array<char, k_header> bytes{};
            const auto header = header_at(seg, 0, bytes);
            if (read_error_ != 0) return read_failed(seg);
            if (!header) continue;
            if (header->first <= released_) {
                if (issued_again(header->first)) continue;
                seg.first = header->first;
                order.push_back(s);
                continue;
            }
            const auto next = past_damaged(seg, 0, header->first, payload);
            if (read_error_ != 0) return read_failed(seg);
            if (!next) continue;
            seg.first = header->first + 1;
            seg.start = *next;
            order.push_back(s);
        }
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            return segments_[a]->first < segments_[b]->first;
        });
        std::uint64_t highest = released_;
        for (std::size_t k = 0; k < order.size(); ++k) {
            Segment& seg = *segments_[order[k]];
            // A run ends below the next run's first number: skip those wholly released.
            if (k + 1 < order.size() && segments_[order[k + 1]]->first <= released_ + 1) {
                seg.last = segments_[order[k + 1]]->first - 1;
                continue;
            }
            // The run's numbers start at its first record's, or at the damaged one before it
            // (told already).
            const std::uint64_t from = seg.start == 0 ? seg.first : seg.first - 1;
            if (highest + 1 < from && options_.warn) {
                options_.warn(
                    "intake log: records " + std::to_string(highest + 1) + " to " +
                    std::to_string(from - 1) + " are missing before " + path(seg.number).string() +
                    ", though the database has indexed only through " + std::to_string(released_) +
                    ": a segment file that held them was damaged or removed, or the database is "
                    "older than the log (restored from a copy, or replaced). Webhooks answered "
                    "202 may be lost");
            }
            std::uint64_t offset = seg.start;
            std::uint64_t expect = seg.start == 0 ? 0 : seg.first;
            while (true) {
                auto rec = record_at(seg, offset, expect, released_, payload);
                if (read_error_ != 0) return read_failed(seg);
                if (!rec && expect != 0) {
                    const auto next = past_damaged(seg, offset, expect, payload);
                    if (read_error_ != 0) return read_failed(seg);
                    if (next) {
                        offset = *next;
                        ++expect;
                        continue;
                    }
                }
                if (!rec) break;
                const auto [seq, length] = *rec;
                seg.last = seq;
                if (seq > released_) {
                    seg.used = true;
                    if (replay) {
                        try {
                            replay(Position{seq, seg.number, offset + k_header, length}, payload);
                        } catch (const std::exception& e) {
                            return fail(why, "cannot replay intake log record " +
                                                 std::to_string(seq) + ": " + e.what());
                        }
                    }
                }
                highest = std::max(highest, seq);
                offset += k_header + length;
                expect = seq + 1;
            }
        }
        next_seq_ = highest + 1;
        return true;
    }

    const Options options_;
    mutable std::mutex mutex_;  // segments_'s list and each one's state, released_
    std::vector<std::unique_ptr<Segment>> segments_;
    std::uint32_t next_number_ = 0;
    std::optional<std::size_t> current_;  // being written (none after open: a fresh one first)
    std::uint64_t write_at_ = 0;
    std::uint64_t next_seq_ = 1;
    std::uint64_t released_ = 0;
    std::atomic<bool> broken_{false};
    mutable int read_error_ = 0;  // errno of a read at open that failed (not the end of a file)
    std::string why_broken_;      // the failure that broke the log (mutex_)
};

result<std::unique_ptr<IntakeLog>> IntakeLog::open(const Options& options,
                                                   std::uint64_t released_through,
                                                   const Replay& replay, std::string* why) {
    auto impl = std::make_unique<Impl>(options);
    try {
        if (!impl->open(released_through, replay, why)) {
            return make_error_code(errc::store_unavailable);
        }
    } catch (const std::exception& e) {  // the directory's listing, or memory
        if (why) *why = "cannot open the intake log in " + options.dir.string() + ": " + e.what();
        return make_error_code(errc::store_unavailable);
    }
    return std::unique_ptr<IntakeLog>(new IntakeLog(std::move(impl)));
}

IntakeLog::IntakeLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
IntakeLog::~IntakeLog() = default;

result<bool> IntakeLog::has_segments(const std::filesystem::path& dir, std::string* why) {
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (segment_number(it->path().filename().string())) return true;
    }
    if (ec && ec != std::errc::no_such_file_or_directory) {
        if (why) *why = "cannot list " + dir.string() + ": " + ec.message();
        return result<bool>(boost::system::in_place_error,
                            make_error_code(errc::store_unavailable));
    }
    return false;
}

namespace {

constexpr std::string_view k_id_file = "id";
constexpr std::size_t k_id_digits = 32;

bool is_log_id(std::string_view id) {
    return id.size() == k_id_digits && id.find_first_not_of("0123456789abcdef") == id.npos;
}

}  // namespace

result<std::string> IntakeLog::read_id(const std::filesystem::path& dir, std::string* why) {
    const auto path = dir / k_id_file;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return std::string();
        if (why) *why = describe("cannot open", path, errno);
        return make_error_code(errc::store_unavailable);
    }
    std::array<char, 64> bytes{};
    ssize_t n = 0;
    do {
        n = ::pread(fd, bytes.data(), bytes.size(), 0);
    } while (n < 0 && errno == EINTR);
    const int saved = errno;
    ::close(fd);
    if (n < 0) {
        if (why) *why = describe("cannot read", path, saved);
        return make_error_code(errc::store_unavailable);
    }
    std::string text(bytes.data(), static_cast<std::size_t>(n));
    constexpr std::string_view k_space = " \t\r\n";
    text.erase(0, std::min(text.size(), text.find_first_not_of(k_space)));
    text.erase(text.find_last_not_of(k_space) + 1);
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!is_log_id(text)) {
        if (why) {
            *why = path.string() +
                   " does not hold an intake log id (32 hex digits); restore it "
                   "or move the intake log away";
        }
        return make_error_code(errc::store_unavailable);
    }
    return text;
}

bool IntakeLog::sync(const std::filesystem::path& dir, std::string* why) {
    if (sync_dir(dir)) return true;
    if (why) *why = describe("cannot sync", dir, errno);
    return false;
}

result<void> IntakeLog::write_id(const std::filesystem::path& dir, const std::string& id,
                                 std::string* why) {
    if (!is_log_id(id)) {
        if (why) *why = "not an intake log id: '" + id + "'";
        return make_error_code(errc::store_unavailable);
    }
    const auto path = dir / k_id_file;
    const auto partial = dir / (std::string(k_id_file) + ".partial");
    const auto failed = [&](const std::string& what, const std::filesystem::path& on) {
        if (why) *why = describe(what, on, errno);
        return make_error_code(errc::store_unavailable);
    };
    const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return failed("cannot create", partial);
    const std::string text = id + "\n";
    ssize_t n = 0;
    do {
        n = ::pwrite(fd, text.data(), text.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(text.size()) || ::fsync(fd) != 0) {
        if (n >= 0 && n != static_cast<ssize_t>(text.size())) errno = ENOSPC;
        const int saved = errno;
        ::close(fd);
        errno = saved;
        return failed("cannot write", partial);
    }
    ::close(fd);
    if (::rename(partial.c_str(), path.c_str()) != 0) return failed("cannot rename", partial);
    if (!sync_dir(dir)) return failed("cannot sync", dir);
    return {};
}

result<std::vector<IntakeLog::Position>> IntakeLog::append(
    std::span<const std::string_view> payloads, std::string* why) {
    return impl_->append(payloads, why);
}

result<std::string> IntakeLog::read(const Position& at, std::string* why) const {
    return impl_->read(at, why);
}

void IntakeLog::release_through(std::uint64_t seq) {
    impl_->release_through(seq);
}

std::uint64_t IntakeLog::max_payload() const {
    return impl_->max_payload();
}

std::uint64_t IntakeLog::next_seq() const {
    return impl_->next_seq();
}
std::size_t IntakeLog::segments() const {
    return impl_->segments();
}
std::size_t IntakeLog::free_segments() const {
    return impl_->free_segments();
}
bool IntakeLog::broken() const {
    return impl_->broken();
}

std::string IntakeLog::why_broken() const {
    return impl_->why_broken();
}

}  // namespace hookrelay::store::sqlite
