// The intake log (store/sqlite/intake_log.hpp): what was appended and synced is replayed after a
// reopen, in order, and nothing else is: not a record released, not a torn one, not a stale one
// of a segment's previous use; segments are reused once released; a process killed in the middle
// of appending loses no record it had been told was written.
#include "store/sqlite/intake_log.hpp"

#include "store_test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace hookrelay::store::sqlite {
namespace {

using Position = IntakeLog::Position;

// What record `seq` holds in these tests: its own number, then a length that varies with it.
std::string payload_of(std::uint64_t seq) {
    std::string text = "record " + std::to_string(seq) + ":";
    text.append(seq * 37 % 300, static_cast<char>('a' + seq % 26));
    return text;
}

struct Replayed {
    std::vector<std::uint64_t> seqs;
    std::vector<std::string> payloads;
    std::vector<Position> positions;
};

IntakeLog::Options small(const std::string& dir, std::uint64_t segment_size = 4096) {
    IntakeLog::Options o;
    o.dir = std::filesystem::path(dir) / "intake";
    o.segment_size = segment_size;
    o.initial_segments = 2;
    o.max_segments = 64;
    return o;
}

std::unique_ptr<IntakeLog> open_log(const IntakeLog::Options& options, std::uint64_t released,
                                    Replayed* replayed = nullptr) {
    std::string why;
    auto log = IntakeLog::open(
        options, released,
        [&](const Position& at, std::string_view payload) {
            if (!replayed) return;
            replayed->seqs.push_back(at.seq);
            replayed->payloads.emplace_back(payload);
            replayed->positions.push_back(at);
        },
        &why);
    EXPECT_TRUE(log.has_value()) << why;
    return log ? std::move(*log) : nullptr;
}

// Appends the records numbered [from, to] as one group; their positions.
std::vector<Position> append_range(IntakeLog& log, std::uint64_t from, std::uint64_t to) {
    EXPECT_EQ(log.next_seq(), from);
    std::vector<std::string> texts;
    for (std::uint64_t s = from; s <= to; ++s) texts.push_back(payload_of(s));
    const std::vector<std::string_view> views(texts.begin(), texts.end());
    std::string why;
    auto written = log.append(views, &why);
    EXPECT_TRUE(written.has_value()) << why;
    return written ? *written : std::vector<Position>{};
}

std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
    std::vector<std::uint64_t> out;
    for (std::uint64_t s = from; s <= to; ++s) out.push_back(s);
    return out;
}

void overwrite(const IntakeLog::Options& o, std::uint32_t segment, std::uint64_t offset,
               std::string_view bytes) {
    const auto file = o.dir / (std::to_string(segment) + ".seg");
    const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << file;
    ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)),
              static_cast<ssize_t>(bytes.size()));
    ::close(fd);
}

// A new log with the records numbered 1 to `count` appended as one group, then closed; their
// positions.
std::vector<Position> written_and_closed(const IntakeLog::Options& o, std::uint64_t count) {
    auto log = open_log(o, 0);
    return log ? append_range(*log, 1, count) : std::vector<Position>{};
}

// Record `at`'s payload damaged, its header left as it was (as a write cut short by a power cut,
// or the disk, would leave it).
void damage_payload(const IntakeLog::Options& o, const Position& at) {
    overwrite(o, at.segment, at.offset + 2, "\x01\x02\x03");
}

TEST(IntakeLog, WhatWasAppendedIsReplayedInOrderAfterAReopen) {
    test::TempDir dir;
    const auto o = small(dir.path(), 64 * 1024);
    {
        auto log = open_log(o, 0);
        ASSERT_TRUE(log);
        EXPECT_EQ(log->segments(), 2u);
        append_range(*log, 1, 1);
        append_range(*log, 2, 9);
        append_range(*log, 10, 40);
    }
    Replayed r;
    auto log = open_log(o, 0, &r);
    ASSERT_TRUE(log);
    EXPECT_EQ(r.seqs, range(1, 40));
    for (std::size_t i = 0; i < r.seqs.size(); ++i) EXPECT_EQ(r.payloads[i], payload_of(r.seqs[i]));
    EXPECT_EQ(log->next_seq(), 41u);
    // Appends go on numbering from there, and are replayed after the earlier ones.
    append_range(*log, 41, 45);
    log.reset();
    Replayed again;
    log = open_log(o, 0, &again);
    EXPECT_EQ(again.seqs, range(1, 45));
}

TEST(IntakeLog, RecordsReleasedAreNotReplayed) {
    test::TempDir dir;
    const auto o = small(dir.path(), 64 * 1024);
    {
        auto log = open_log(o, 0);
        append_range(*log, 1, 30);
    }
    Replayed r;
    auto log = open_log(o, 17, &r);
    EXPECT_EQ(r.seqs, range(18, 30));
    EXPECT_EQ(log->next_seq(), 31u);
    log.reset();
    // Nothing after what was released: nothing replayed, numbering goes on.
    Replayed none;
    log = open_log(o, 30, &none);
    EXPECT_TRUE(none.seqs.empty());
    EXPECT_EQ(log->next_seq(), 31u);
}

TEST(IntakeLog, ReadGivesBackWhatWasAppended) {
    test::TempDir dir;
    const auto o = small(dir.path(), 64 * 1024);
    auto log = open_log(o, 0);
    const auto at = append_range(*log, 1, 12);
    ASSERT_EQ(at.size(), 12u);
    for (const Position& p : at) {
        std::string why;
        const auto payload = log->read(p, &why);
        ASSERT_TRUE(payload.has_value()) << why;
        EXPECT_EQ(*payload, payload_of(p.seq));
    }
    // A position that does not hold its record is refused, not misread.
    Position wrong = at[3];
    wrong.seq = 4000;
    std::string why;
    EXPECT_EQ(log->read(wrong, &why).error(), make_error_code(errc::store_unavailable));
    EXPECT_NE(why.find("4000"), std::string::npos) << why;
}

TEST(IntakeLog, RecordsFillSegmentsInTurnAndReleasedSegmentsAreWrittenAgain) {
    test::TempDir dir;
    const auto o = small(dir.path(), 4096);
    auto log = open_log(o, 0);
    std::uint64_t next = 1;
    // ~200 records of up to ~320 bytes through 4 KiB segments, released as they go: the two
    // segments made at the start are enough.
    for (int group = 0; group < 40; ++group) {
        append_range(*log, next, next + 4);
        next += 5;
        log->release_through(next - 1);
    }
    EXPECT_LE(log->segments(), 3u);
    // Unreleased, they take new segments.
    const std::size_t before = log->segments();
    for (int group = 0; group < 10; ++group) {
        append_range(*log, next, next + 4);
        next += 5;
    }
    EXPECT_GT(log->segments(), before);
    log.reset();
    Replayed r;
    log = open_log(o, 200, &r);
    EXPECT_EQ(r.seqs, range(201, next - 1));
    for (std::size_t i = 0; i < r.seqs.size(); ++i) EXPECT_EQ(r.payloads[i], payload_of(r.seqs[i]));
}

TEST(IntakeLog, AStaleRecordOfASegmentsPreviousUseIsNotReplayed) {
    test::TempDir dir;
    auto o = small(dir.path(), 4096);
    o.initial_segments = 1;
    o.max_segments = 2;
    auto log = open_log(o, 0);
    // Segment 0: records 1..3. Record 4 does not fit what is left and makes segment 1.
    const auto first = append_range(*log, 1, 3);
    const std::string big(3950, 'x');
    std::string why;
    std::vector<std::string_view> one{big};
    auto at = log->append(one, &why);
    ASSERT_TRUE(at.has_value()) << why;
    ASSERT_EQ(at->front().seq, 4u);
    ASSERT_NE(at->front().segment, first.front().segment);
    // Released through 3, segment 0 is free. Record 5, too large for what segment 1 has left,
    // goes there, at offset 0, exactly as long as records 1 and 2 were together: record 3 of
    // the segment's first use follows it, whole, with a valid checksum.
    log->release_through(3);
    const std::string filler(payload_of(1).size() + payload_of(2).size() + IntakeLog::k_header,
                             'y');
    one = {filler};
    at = log->append(one, &why);
    ASSERT_TRUE(at.has_value()) << why;
    EXPECT_EQ(at->front().seq, 5u);
    EXPECT_EQ(at->front().segment, first.front().segment);
    EXPECT_EQ(at->front().offset + at->front().length + IntakeLog::k_header, first[2].offset);
    log.reset();
    Replayed r;
    log = open_log(o, 0, &r);
    EXPECT_EQ(r.seqs, (std::vector<std::uint64_t>{4, 5}));
    EXPECT_EQ(log->next_seq(), 6u);
}

TEST(IntakeLog, ATornLastRecordEndsTheReplayAndTheLogGoesOnAfterIt) {
    test::TempDir dir;
    auto o = small(dir.path(), 64 * 1024);
    std::vector<std::string> warned;
    o.warn = [&](const std::string& line) { warned.push_back(line); };
    const auto at = written_and_closed(o, 6);
    damage_payload(o, at[5]);  // record 6, the last: a write cut short
    Replayed r;
    auto log = open_log(o, 0, &r);
    EXPECT_EQ(r.seqs, range(1, 5));
    EXPECT_TRUE(warned.empty()) << warned.front();
    // The next record takes number 6 again, at the start of another segment, and a reopen
    // replays the new one after 1..5.
    EXPECT_EQ(log->next_seq(), 6u);
    const auto again = append_range(*log, 6, 8);
    ASSERT_FALSE(again.empty());
    EXPECT_NE(again.front().segment, at[5].segment);
    EXPECT_EQ(again.front().offset, IntakeLog::k_header);
    log.reset();
    Replayed after;
    log = open_log(o, 0, &after);
    EXPECT_EQ(after.seqs, range(1, 8));
    for (std::size_t i = 0; i < after.seqs.size(); ++i) {
        EXPECT_EQ(after.payloads[i], payload_of(after.seqs[i]));
    }
    EXPECT_TRUE(warned.empty()) << warned.front();
}

// A record that does not read whole in the middle of a run (the disk damaged it) no longer hides
// the webhooks answered after it: they are replayed, and the one lost is told.
TEST(IntakeLog, ADamagedRecordIsToldAndTheRecordsAfterItAreReplayed) {
    test::TempDir dir;
    auto o = small(dir.path(), 64 * 1024);
    std::vector<std::string> warned;
    o.warn = [&](const std::string& line) { warned.push_back(line); };
    const auto at = written_and_closed(o, 6);
    damage_payload(o, at[2]);  // record 3
    Replayed r;
    auto log = open_log(o, 0, &r);
    ASSERT_TRUE(log);
    EXPECT_EQ(r.seqs, (std::vector<std::uint64_t>{1, 2, 4, 5, 6}));
    for (std::size_t i = 0; i < r.seqs.size(); ++i) EXPECT_EQ(r.payloads[i], payload_of(r.seqs[i]));
    EXPECT_EQ(log->next_seq(), 7u);
    ASSERT_EQ(warned.size(), 1u);
    EXPECT_NE(warned[0].find("intake log: record 3 in "), std::string::npos) << warned[0];
    EXPECT_NE(warned[0].find("does not read whole"), std::string::npos) << warned[0];
    // The same at the first record of a segment.
    log.reset();
    damage_payload(o, at[0]);
    warned.clear();
    Replayed again;
    log = open_log(o, 0, &again);
    EXPECT_EQ(again.seqs, (std::vector<std::uint64_t>{2, 4, 5, 6}));
    EXPECT_EQ(warned.size(), 2u);
}

// A segment whose first record is indexed already and damaged since leads on by its header to
// the records after it that wait to be indexed, as a damaged indexed record in a run does.
TEST(IntakeLog, ADamagedIndexedFirstRecordOfASegmentDoesNotHideTheRecordsAfterIt) {
    test::TempDir dir;
    auto o = small(dir.path(), 64 * 1024);
    std::vector<std::string> warned;
    o.warn = [&](const std::string& line) { warned.push_back(line); };
    const auto at = written_and_closed(o, 8);
    damage_payload(o, at[0]);  // record 1, the segment's first
    Replayed r;
    auto log = open_log(o, 4, &r);
    ASSERT_TRUE(log);
    EXPECT_EQ(r.seqs, range(5, 8));
    EXPECT_EQ(log->next_seq(), 9u);
    EXPECT_TRUE(warned.empty()) << warned.front();
}

// Numbers missing between the runs of two segments (a segment file removed, or one whose
// records all fail) are told: those webhooks were answered and cannot be replayed.
TEST(IntakeLog, RecordsMissingBetweenSegmentsAreTold) {
    test::TempDir dir;
    auto o = small(dir.path(), 4096);
    std::vector<std::string> warned;
    o.warn = [&](const std::string& line) { warned.push_back(line); };
    std::vector<Position> at;
    {
        auto log = open_log(o, 0);
        ASSERT_TRUE(log);
        for (std::uint64_t s = 1; s <= 60; ++s) {
            const auto one = append_range(*log, s, s);
            at.insert(at.end(), one.begin(), one.end());
        }
    }
    ASSERT_EQ(at.size(), 60u);
    // The segment of record 30 removed: every record in it is gone.
    const auto lost = at[29].segment;
    ASSERT_NE(lost, at.front().segment);
    ASSERT_NE(lost, at.back().segment);
    std::filesystem::remove(o.dir / (std::to_string(lost) + ".seg"));
    std::vector<std::uint64_t> kept;
    for (const auto& p : at) {
        if (p.segment != lost) kept.push_back(p.seq);
    }
    Replayed r;
    auto log = open_log(o, 0, &r);
    ASSERT_TRUE(log);
    EXPECT_EQ(r.seqs, kept);
    ASSERT_EQ(warned.size(), 1u);
    std::uint64_t first_lost = 0;
    std::uint64_t last_lost = 0;
    for (const auto& p : at) {
        if (p.segment != lost) continue;
        if (first_lost == 0) first_lost = p.seq;
        last_lost = p.seq;
    }
    EXPECT_NE(warned[0].find("intake log: records " + std::to_string(first_lost) + " to " +
                             std::to_string(last_lost) + " are missing"),
              std::string::npos)
        << warned[0];
}

TEST(IntakeLog, ADamagedHeaderEndsTheReplayToo) {
    test::TempDir dir;
    const auto o = small(dir.path(), 64 * 1024);
    const auto at = written_and_closed(o, 6);
    // Record 3's length made larger than the record: its checksum no longer holds.
    overwrite(o, at[2].segment, at[2].offset - IntakeLog::k_header + 4, std::string("\x10", 1));
    Replayed r;
    open_log(o, 0, &r);
    EXPECT_EQ(r.seqs, range(1, 2));
}

TEST(IntakeLog, AReleasedRecordWhosePayloadWasDamagedDoesNotHideTheRecordsAfterIt) {
    test::TempDir dir;
    const auto o = small(dir.path(), 64 * 1024);
    const auto at = written_and_closed(o, 8);
    // Records 1..4 are indexed (released); record 3's payload is damaged since. Its header still
    // leads to record 4, and 5..8, which wait to be indexed, are replayed whole.
    damage_payload(o, at[2]);
    Replayed r;
    auto log = open_log(o, 4, &r);
    ASSERT_TRUE(log);
    EXPECT_EQ(r.seqs, range(5, 8));
    for (std::size_t i = 0; i < r.seqs.size(); ++i) EXPECT_EQ(r.payloads[i], payload_of(r.seqs[i]));
    EXPECT_EQ(log->next_seq(), 9u);
    // Not yet released, the same damage loses record 3 alone: the records after it are replayed.
    log.reset();
    Replayed unreleased;
    open_log(o, 2, &unreleased);
    EXPECT_EQ(unreleased.seqs, range(4, 8));
}

TEST(IntakeLog, ATornFirstRecordOfASegmentDoesNotHideTheRecordsThatTookItsNumberElsewhere) {
    test::TempDir dir;
    const auto o = small(dir.path(), 4096);
    std::vector<Position> first;
    Position torn;
    {
        // Records 1..3 in one segment; record 4 does not fit what is left and starts the other.
        auto log = open_log(o, 0);
        ASSERT_TRUE(log);
        first = append_range(*log, 1, 3);
        const std::string big(3950, 'x');
        const std::vector<std::string_view> one{big};
        std::string why;
        const auto at = log->append(one, &why);
        ASSERT_TRUE(at.has_value()) << why;
        torn = at->front();
        ASSERT_NE(torn.segment, first.front().segment);
    }
    // Record 4's write was cut short: never answered, never indexed. Reopened with 1..3 released,
    // the number 4 is issued again, and records 4..6 go to the freed first segment.
    damage_payload(o, torn);
    {
        Replayed r;
        auto log = open_log(o, 3, &r);
        ASSERT_TRUE(log);
        EXPECT_TRUE(r.seqs.empty());
        const auto again = append_range(*log, 4, 6);
        ASSERT_EQ(again.size(), 3u);
        ASSERT_EQ(again.front().segment, first.front().segment);
    }
    // Record 4 is indexed since; 5 and 6 were answered and wait to be. The torn record's header
    // (number 4) must not pass for the start of a run that hides them.
    Replayed r;
    auto log = open_log(o, 4, &r);
    ASSERT_TRUE(log);
    EXPECT_EQ(r.seqs, range(5, 6));
    for (std::size_t i = 0; i < r.seqs.size(); ++i) EXPECT_EQ(r.payloads[i], payload_of(r.seqs[i]));
    EXPECT_EQ(log->next_seq(), 7u);
}

TEST(IntakeLog, ASegmentThatCannotBeMadeRefusesTheGroupAndTheNextOneMakesIt) {
    test::TempDir dir;
    const auto o = small(dir.path(), 4096);
    auto log = open_log(o, 0);
    ASSERT_TRUE(log);
    ASSERT_EQ(log->segments(), 2u);
    // The third segment's temporary file cannot be created: a directory holds its name.
    const auto in_the_way = o.dir / "2.seg.partial";
    std::filesystem::create_directories(in_the_way / "x");
    const std::string big(3000, 'b');
    std::vector<std::string_view> one{big};
    std::string why;
    for (std::uint64_t seq = 1; seq <= 2; ++seq) ASSERT_TRUE(log->append(one, &why)) << why;
    const auto refused = log->append(one, &why);
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error(), make_error_code(errc::store_unavailable));
    EXPECT_NE(why.find("2.seg.partial"), std::string::npos) << why;
    // Nothing was written: the log is not broken, and once the way is clear the same record
    // gets the next number in a new segment.
    EXPECT_FALSE(log->broken());
    EXPECT_EQ(log->why_broken(), "");
    EXPECT_EQ(log->next_seq(), 3u);
    std::filesystem::remove_all(in_the_way);
    const auto written = log->append(one, &why);
    ASSERT_TRUE(written.has_value()) << why;
    EXPECT_EQ(written->front().seq, 3u);
    EXPECT_EQ(log->segments(), 3u);
    log.reset();
    Replayed r;
    open_log(o, 0, &r);
    EXPECT_EQ(r.seqs, range(1, 3));
}

TEST(IntakeLog, ARecordLargerThanASegmentIsRefusedAndTheLogGoesOn) {
    test::TempDir dir;
    const auto o = small(dir.path(), 4096);
    auto log = open_log(o, 0);
    const std::string huge(5000, 'h');
    const std::vector<std::string_view> one{huge};
    std::string why;
    const auto refused = log->append(one, &why);
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error(), make_error_code(errc::payload_too_large));
    EXPECT_NE(why.find("5000"), std::string::npos) << why;
    EXPECT_FALSE(log->broken());
    append_range(*log, 1, 2);
}

TEST(IntakeLog, AFullLogRefusesUntilRecordsAreReleased) {
    test::TempDir dir;
    auto o = small(dir.path(), 4096);
    o.max_segments = 2;
    auto log = open_log(o, 0);
    const std::string record(3000, 'r');
    const std::vector<std::string_view> one{record};
    std::string why;
    ASSERT_TRUE(log->append(one, &why).has_value()) << why;
    ASSERT_TRUE(log->append(one, &why).has_value()) << why;
    const auto full = log->append(one, &why);
    ASSERT_FALSE(full.has_value());
    EXPECT_EQ(full.error(), make_error_code(errc::store_full));
    EXPECT_NE(why.find("full"), std::string::npos) << why;
    EXPECT_FALSE(log->broken());
    EXPECT_EQ(log->next_seq(), 3u);
    log->release_through(1);
    const auto after = log->append(one, &why);
    ASSERT_TRUE(after.has_value()) << why;
    EXPECT_EQ(after->front().seq, 3u);
    log.reset();
    Replayed r;
    open_log(o, 1, &r);
    EXPECT_EQ(r.seqs, range(2, 3));
}

TEST(IntakeLog, ASegmentWhoseMakingWasCutShortIsRemovedAtOpen) {
    test::TempDir dir;
    const auto o = small(dir.path(), 4096);
    {
        auto log = open_log(o, 0);
        append_range(*log, 1, 3);
    }
    std::ofstream(o.dir / "2.seg.partial") << "half made";
    Replayed r;
    auto log = open_log(o, 0, &r);
    EXPECT_EQ(r.seqs, range(1, 3));
    EXPECT_EQ(log->segments(), 2u);
    EXPECT_FALSE(std::filesystem::exists(o.dir / "2.seg.partial"));
}

// A copy of a segment under a name with a leading zero ("00.seg", as a restore or a hand might
// leave it) is not read as that segment a second time: its records are replayed once.
TEST(IntakeLog, ACopyOfASegmentNamedWithALeadingZeroIsNotReadAsThatSegment) {
    test::TempDir dir;
    const auto o = small(dir.path(), 4096);
    const auto written = written_and_closed(o, 3);
    ASSERT_EQ(written.size(), 3u);
    const auto segment = std::to_string(written.front().segment);
    std::filesystem::copy_file(o.dir / (segment + ".seg"), o.dir / ("0" + segment + ".seg"));
    Replayed r;
    auto log = open_log(o, 0, &r);
    ASSERT_TRUE(log);
    EXPECT_EQ(r.seqs, range(1, 3));
    EXPECT_EQ(log->segments(), 2u);
    EXPECT_EQ(log->next_seq(), 4u);
}

TEST(IntakeLog, ADirectoryThatCannotBeMadeIsAClearError) {
    test::TempDir dir;
    std::ofstream(std::filesystem::path(dir.path()) / "intake") << "a file in the way";
    std::string why;
    const auto log = IntakeLog::open(small(dir.path()), 0, {}, &why);
    ASSERT_FALSE(log.has_value());
    EXPECT_EQ(log.error(), make_error_code(errc::store_unavailable));
    EXPECT_NE(why.find("intake"), std::string::npos) << why;
}

// What a start with store.intake_log off asks before it replays a log: only "<n>.seg" files
// count, not a half-made segment, a file named like one, or a number beyond a segment's.
TEST(IntakeLog, HasSegmentsCountsOnlySegmentFiles) {
    test::TempDir dir;
    const std::filesystem::path log_dir = std::filesystem::path(dir.path()) / "intake";
    std::string why;
    EXPECT_EQ(IntakeLog::has_segments(log_dir, &why), false) << why;  // no directory at all
    std::filesystem::create_directories(log_dir);
    for (const char* name : {"2.seg.partial", "notes.seg", "4294967296.seg", "12345678901.seg",
                             ".seg", "7.segx", "03.seg", "00.seg"}) {
        std::ofstream(log_dir / name) << "x";
    }
    EXPECT_EQ(IntakeLog::has_segments(log_dir, &why), false) << why;
    std::ofstream(log_dir / "3.seg") << "x";
    EXPECT_EQ(IntakeLog::has_segments(log_dir, &why), true) << why;

    // A file where the directory should be: a clear error.
    const std::filesystem::path file = std::filesystem::path(dir.path()) / "a-file";
    std::ofstream(file) << "not a directory";
    const auto listed = IntakeLog::has_segments(file, &why);
    ASSERT_FALSE(listed.has_value());
    EXPECT_EQ(listed.error(), make_error_code(errc::store_unavailable));
    EXPECT_NE(why.find("cannot list " + file.string()), std::string::npos) << why;
}

// A child appends groups and reports each group's last number once append() returned; it is
// killed at some point of that. Every number it reported is replayed, with its payload, and the
// replay is the numbers from 1 with no gap. Twenty times over the same directory.
TEST(IntakeLog, AProcessKilledWhileAppendingLosesNothingItWasToldWasWritten) {
    test::TempDir dir;
    auto o = small(dir.path(), 256 * 1024);
    o.max_segments = 256;
    for (int round = 0; round < 20; ++round) {
        int fds[2];
        ASSERT_EQ(::pipe(fds), 0);
        const pid_t child = ::fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            ::close(fds[0]);
            std::string why;
            auto log = IntakeLog::open(o, 0, {}, &why);
            if (!log) ::_exit(2);
            for (std::uint64_t group = 0;; ++group) {
                const std::uint64_t from = (*log)->next_seq();
                const std::uint64_t to = from + group % 7;
                std::vector<std::string> texts;
                for (std::uint64_t s = from; s <= to; ++s) texts.push_back(payload_of(s));
                const std::vector<std::string_view> views(texts.begin(), texts.end());
                if (!(*log)->append(views, &why)) ::_exit(3);
                if (::write(fds[1], &to, sizeof to) != sizeof to) ::_exit(4);
            }
        }
        ::close(fds[1]);
        // Kill it after some groups of this round were acknowledged.
        std::uint64_t acknowledged = 0;
        const int wait_for = 20 + round * 7;
        for (int seen = 0; seen < wait_for; ++seen) {
            std::uint64_t v = 0;
            if (::read(fds[0], &v, sizeof v) != static_cast<ssize_t>(sizeof v)) break;
            acknowledged = v;
        }
        ::kill(child, SIGKILL);
        int status = 0;
        ASSERT_EQ(::waitpid(child, &status, 0), child);
        ASSERT_TRUE(WIFSIGNALED(status))
            << "the child ended by itself, status " << WEXITSTATUS(status);
        for (std::uint64_t v = 0; ::read(fds[0], &v, sizeof v) == sizeof v;) acknowledged = v;
        ::close(fds[0]);

        Replayed r;
        auto log = open_log(o, 0, &r);
        ASSERT_TRUE(log);
        ASSERT_FALSE(r.seqs.empty());
        EXPECT_EQ(r.seqs, range(1, r.seqs.back())) << "round " << round;
        EXPECT_GE(r.seqs.back(), acknowledged) << "round " << round;
        for (std::size_t i = 0; i < r.seqs.size(); ++i) {
            ASSERT_EQ(r.payloads[i], payload_of(r.seqs[i])) << "round " << round;
        }
    }
}

}  // namespace
}  // namespace hookrelay::store::sqlite
