// The intake log's thread (store.intake_log): takes every submission in order, answers those it
// can once their records are synced to the intake log, and hands them to the writer to index
// (docs/performance.md, "An intake log's bound, measured").
//
// For each submission, in order:
// - its delivery id logged and not yet indexed: answered as a duplicate at once;
// - one that needs the indexed store for its answer (no delivery id, a duplicate_body_window, a
//   trigger with a coalesce key), or whose id went that way and is not answered yet: what was
//   gathered so far is logged first, then it is posted to the writer as an ordinary submit;
// - otherwise its id is looked up in the database (a read-only connection of this thread's own;
//   the ids of a batch taken from the queue in one read transaction): found, answered as a
//   duplicate; not found, its trigger ids are made and its record gathered.
// A group's records are appended and synced at once, posted to the writer as index work, and
// only then answered: whatever a caller posts to the store after its answer queues behind that
// work. A group the log refuses is answered with the log's error, and nothing of it is kept.
#pragma once

#include "store/sqlite/connection.hpp"
#include "store/sqlite/intake_log.hpp"
#include "store/sqlite/writer.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace hookrelay::store::sqlite {

class IntakeLogger {
  public:
    /// `read` is a read-only connection to the store's database. Once `max_backlog` records,
    /// or records holding about `max_backlog_bytes` of memory, wait to be indexed, the thread
    /// waits for the writer before logging more.
    IntakeLogger(std::unique_ptr<IntakeLog> log, DbPtr read, std::shared_ptr<Writer> writer,
                 std::size_t max_backlog, std::size_t max_backlog_bytes);
    /// What a record's Writer::Submit holds in memory while it waits to be indexed
    /// (Submit::held_bytes), from the record's size in the log, which encodes all of it.
    static std::size_t held_estimate(std::size_t record_bytes);
    ~IntakeLogger();
    IntakeLogger(const IntakeLogger&) = delete;
    IntakeLogger& operator=(const IntakeLogger&) = delete;

    /// Before the writer starts: registers for its commits of index work.
    void attach();
    /// Starts the thread, which holds its own reference (a store released from an answer the
    /// thread gives is destroyed on it; the thread then ends after that call).
    static void start(const std::shared_ptr<IntakeLogger>& logger);
    /// Logs and hands over what is queued, then stops the thread. Idempotent.
    void stop();

    void post(Writer::Submit job);

    /// Why the log takes nothing more (a write or sync of it failed; a restart recovers), or
    /// empty while it works. Any thread.
    std::string why_broken() const;

    /// Before start: records replayed from the log and handed to the writer, not indexed yet
    /// (their keys count as logged until they are).
    void replayed(const std::vector<Writer::Submit>& jobs);

    /// What the thread and the writer's callbacks share (the callbacks may outlive this).
    struct Shared;

  private:
    /// Whether a submission can be answered from the log, before it is indexed: it has a
    /// delivery id to tell duplicates by, no body window to look for its body in, and no trigger
    /// that supersedes others (coalesce). The others go the ordinary way, answered once the
    /// store's thread committed them (app/daemon.cpp's why_answers_wait_for_the_store mirrors
    /// this for a whole configuration).
    static bool answerable_from_log(const DeliveryRecord& delivery,
                                    const std::vector<TriggerRequest>& triggers);
    void run();
    void process(std::vector<Writer::Submit>& jobs);
    void flush();
    std::vector<std::optional<bool>> look_up(const std::vector<Writer::Submit>& jobs,
                                             const std::vector<std::string>& keys,
                                             const std::vector<bool>& answerable);
    /// Whether the delivery id is in the database, looked up on its own.
    bool stored(const DeliveryRecord& d);
    /// The lookup itself, in whatever transaction the read connection is in.
    bool find(const DeliveryRecord& d);
    void forward(Writer::Submit job);

    std::shared_ptr<Shared> shared_;
    DbPtr read_;
    Statement find_;
    Statement begin_;  ///< a read transaction for a batch's lookups
    Statement end_;
    std::shared_ptr<Writer> writer_;
    const std::size_t max_backlog_;
    const std::size_t max_backlog_bytes_;
    std::vector<Writer::Submit> group_;    ///< being gathered (the thread's own)
    std::vector<std::string> group_keys_;  ///< group_'s intake_key()s, in its order
    /// The same keys, to tell in constant time whether one is in the group (a burst after a
    /// stall gathers thousands).
    std::unordered_set<std::string> in_group_;
    /// Refusals of a broken log since the last line that said so, and when the next may.
    std::size_t refused_while_broken_ = 0;
    std::chrono::steady_clock::time_point next_broken_report_{};
    std::thread thread_;
};

}  // namespace hookrelay::store::sqlite
