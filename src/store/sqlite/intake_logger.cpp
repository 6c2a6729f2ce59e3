#include "store/sqlite/intake_logger.hpp"

#include "store/codec.hpp"
#include "store/sqlite/intake_record.hpp"
#include "util/thread_name.hpp"

#include <algorithm>
#include <exception>
#include <iterator>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace hookrelay::store::sqlite {

struct IntakeLogger::Shared {
    std::shared_ptr<IntakeLog> log;
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<Writer::Submit> queue;
    bool stop = false;
    /// Stopped from one of the thread's own answers: it takes nothing more.
    bool abandoned = false;
    /// Keys logged and not yet indexed, and keys forwarded and not yet answered: how many each.
    std::unordered_map<std::string, int> logged;
    std::unordered_map<std::string, int> forwarded;

    static void drop(std::unordered_map<std::string, int>& counts, const std::string& key) {
        const auto it = counts.find(key);
        if (it != counts.end() && --it->second <= 0) counts.erase(it);
    }
};

namespace {

Receipt duplicate_of(const DeliveryRecord& d) {
    Receipt receipt;
    receipt.duplicate = true;
    receipt.duplicate_of = d.delivery_id;
    return receipt;
}

}  // namespace

// About 2.3 times the record for the 8.8 KB GitHub push (3.7 KB records; ~35 MB over the 4,096
// records of 8 x the default store.max_batch, measured as the daemon's peak RSS with that backlog
// full): the Submit's strings are many small allocations.
std::size_t IntakeLogger::held_estimate(std::size_t record_bytes) {
    return record_bytes * 2 + 1024;
}

bool IntakeLogger::answerable_from_log(const DeliveryRecord& delivery,
                                       const std::vector<TriggerRequest>& triggers) {
    if (delivery.delivery_id.empty()) return false;
    if (delivery.duplicate_body_window.count() > 0) return false;
    return std::none_of(triggers.begin(), triggers.end(),
                        [](const TriggerRequest& t) { return !t.coalesce.empty(); });
}

IntakeLogger::IntakeLogger(std::unique_ptr<IntakeLog> log, DbPtr read,
                           std::shared_ptr<Writer> writer, std::size_t max_backlog,
                           std::size_t max_backlog_bytes)
    : shared_(std::make_shared<Shared>()),
      read_(std::move(read)),
      find_(read_.get(), "look up a delivery id",
            "SELECT 1 FROM deliveries WHERE source = ?1 AND delivery_id = ?2"),
      begin_(read_.get(), "begin the lookups", "BEGIN"),
      end_(read_.get(), "end the lookups", "COMMIT"),
      writer_(std::move(writer)),
      max_backlog_(std::max<std::size_t>(max_backlog, 1)),
      max_backlog_bytes_(std::max<std::size_t>(max_backlog_bytes, 1)) {
    shared_->log = std::move(log);
}

IntakeLogger::~IntakeLogger() {
    stop();
}

void IntakeLogger::attach() {
    writer_->on_indexed([shared = shared_](std::vector<std::string> keys, std::uint64_t through) {
        {
            std::lock_guard lock(shared->mutex);
            for (const std::string& key : keys) Shared::drop(shared->logged, key);
        }
        // Indexed up to `through` by a synced commit: the log need not keep those.
        if (through > 0) shared->log->release_through(through);
        shared->cv.notify_all();
    });
}

void IntakeLogger::start(const std::shared_ptr<IntakeLogger>& logger) {
    logger->thread_ = std::thread([self = logger] {
        name_this_thread("hookrelay-log");  // at most 15 characters
        self->run();
    });
}

void IntakeLogger::stop() {
    {
        std::lock_guard lock(shared_->mutex);
        shared_->stop = true;
    }
    shared_->cv.notify_all();
    if (thread_.get_id() == std::this_thread::get_id()) {
        {
            std::lock_guard lock(shared_->mutex);
            shared_->abandoned = true;
        }
        thread_.detach();  // on its own thread: it ends once this answer returns
    } else if (thread_.joinable()) {
        thread_.join();
    }
}

void IntakeLogger::post(Writer::Submit job) {
    std::lock_guard lock(shared_->mutex);
    if (shared_->stop) return;  // closed: nothing runs any more (as the writer's post)
    shared_->queue.push_back(std::move(job));
    shared_->cv.notify_one();
}

void IntakeLogger::replayed(const std::vector<Writer::Submit>& jobs) {
    std::lock_guard lock(shared_->mutex);
    for (const Writer::Submit& job : jobs) {
        ++shared_->logged[intake_key(job.delivery.source, job.delivery.delivery_id)];
    }
}

void IntakeLogger::run() {
    for (;;) {
        std::vector<Writer::Submit> jobs;
        {
            std::unique_lock lock(shared_->mutex);
            shared_->cv.wait(lock, [&] { return shared_->stop || !shared_->queue.empty(); });
            if (shared_->queue.empty()) return;  // stopped, and all handed over
            jobs.assign(std::make_move_iterator(shared_->queue.begin()),
                        std::make_move_iterator(shared_->queue.end()));
            shared_->queue.clear();
        }
        // Memory: the writer holds each record until it is indexed.
        // While the index work fails it does not shrink: the jobs in hand are refused then
        // (flush), at once rather than after server.store_timeout.
        // Checked under the mutex the writer's on_indexed callback takes to notify (after its
        // counts went down): a notification cannot fall between the check and the wait.
        {
            std::unique_lock lock(shared_->mutex);
            while (!shared_->stop &&
                   (writer_->index_backlog() >= max_backlog_ ||
                    writer_->index_backlog_bytes() >= max_backlog_bytes_) &&
                   !writer_->index_failure()) {
                shared_->cv.wait_for(lock, std::chrono::milliseconds(100));
            }
        }
        try {
            process(jobs);
        } catch (const std::exception& e) {
            // Nothing of the group in hand was logged: each is answered with the failure.
            const auto failed = make_error_code(errc::store_unavailable);
            {
                std::lock_guard lock(shared_->mutex);
                for (const std::string& key : group_keys_) Shared::drop(shared_->logged, key);
            }
            for (Writer::Submit& job : group_) {
                answer_quietly(std::exchange(job.done, nullptr), result<Receipt>{failed});
            }
            for (Writer::Submit& job : jobs) {
                answer_quietly(std::exchange(job.done, nullptr), result<Receipt>{failed});
            }
            group_.clear();
            group_keys_.clear();
            in_group_.clear();
            writer_->report_failure(failed,
                                    std::string("the intake log's thread failed: ") + e.what());
        }
    }
}

void IntakeLogger::process(std::vector<Writer::Submit>& jobs) {
    std::vector<std::string> keys;
    std::vector<bool> answerable;
    keys.reserve(jobs.size());
    answerable.reserve(jobs.size());
    for (const Writer::Submit& job : jobs) {
        keys.push_back(intake_key(job.delivery.source, job.delivery.delivery_id));
        answerable.push_back(answerable_from_log(job.delivery, job.triggers));
    }
    const std::vector<std::optional<bool>> known = look_up(jobs, keys, answerable);
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        Writer::Submit& job = jobs[i];
        {
            // Closed from one of the answers: nothing more is taken (as the writer's post).
            std::lock_guard lock(shared_->mutex);
            if (shared_->abandoned) return;
        }
        const DeliveryRecord& d = job.delivery;
        std::string& key = keys[i];
        // A duplicate of a record still being gathered waits for that record's fate.
        if (answerable[i] && in_group_.count(key) > 0) flush();
        bool logged = false;
        bool forwarded = false;
        {
            std::lock_guard lock(shared_->mutex);
            logged = shared_->logged.count(key) > 0;
            forwarded = shared_->forwarded.count(key) > 0;
        }
        if (answerable[i] && logged) {
            answer_quietly(std::exchange(job.done, nullptr), result<Receipt>{duplicate_of(d)});
            continue;
        }
        if (!answerable[i] || forwarded) {
            flush();  // what came before it is indexed before it
            forward(std::move(job));
            continue;
        }
        bool stored_already = false;
        try {
            stored_already = known[i] ? *known[i] : stored(d);
        } catch (const std::exception&) {
            // The writer finds out, in order.
            flush();
            forward(std::move(job));
            continue;
        }
        if (stored_already) {
            answer_quietly(std::exchange(job.done, nullptr), result<Receipt>{duplicate_of(d)});
            continue;
        }
        job.trigger_ids.clear();
        for (std::size_t t = 0; t < job.triggers.size(); ++t) {
            job.trigger_ids.push_back(make_trigger_id());
        }
        {
            std::lock_guard lock(shared_->mutex);
            ++shared_->logged[key];
        }
        in_group_.insert(key);
        group_keys_.push_back(std::move(key));
        group_.push_back(std::move(job));
    }
    flush();
}

// The ids of `jobs` that nothing in this logger knows of (not logged, forwarded, gathered, nor
// earlier in `jobs`), looked up in the database in one read transaction rather than one each.
// The transaction begins after those checks: an id indexed, and so no longer counted as
// logged, before them is in its snapshot. Only such ids are answered from it: an id this
// thread logs or forwards while it works through `jobs` is looked up again, on its own.
// Nothing (std::nullopt) where a lookup was not made or failed; process() then looks up alone.
std::vector<std::optional<bool>> IntakeLogger::look_up(const std::vector<Writer::Submit>& jobs,
                                                       const std::vector<std::string>& keys,
                                                       const std::vector<bool>& answerable) {
    std::vector<std::optional<bool>> known(jobs.size());
    std::vector<std::size_t> fresh;
    {
        std::unordered_set<std::string_view> seen;
        std::lock_guard lock(shared_->mutex);
        for (std::size_t i = 0; i < jobs.size(); ++i) {
            if (!seen.insert(keys[i]).second || !answerable[i]) continue;
            if (in_group_.count(keys[i]) > 0 || shared_->logged.count(keys[i]) > 0 ||
                shared_->forwarded.count(keys[i]) > 0) {
                continue;
            }
            fresh.push_back(i);
        }
    }
    // One lookup gains nothing from a transaction of its own around it; and none is begun over
    // one left open (stored() deals with that).
    if (fresh.size() < 2 || !sqlite3_get_autocommit(read_.get())) return known;
    try {
        Query(begin_).run();
        for (const std::size_t i : fresh) known[i] = find(jobs[i].delivery);
        Query(end_).run();
    } catch (const std::exception&) {
        // Busy, say: each is looked up alone instead, and a failure there is forwarded.
        sqlite3_exec(read_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
        std::fill(known.begin(), known.end(), std::nullopt);
    }
    return known;
}

bool IntakeLogger::stored(const DeliveryRecord& d) {
    // A lookup in a transaction left open (a failed ROLLBACK in look_up) would read an old
    // snapshot: it fails instead, and the submission goes the ordinary way.
    if (!sqlite3_get_autocommit(read_.get())) {
        sqlite3_exec(read_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
        if (!sqlite3_get_autocommit(read_.get())) {
            throw StoreError(errc::store_unavailable,
                             "the intake log's read connection is stuck in a transaction");
        }
    }
    return find(d);
}

bool IntakeLogger::find(const DeliveryRecord& d) {
    Query query(find_);
    query.bind_text(d.source).bind_text(d.delivery_id);
    return query.step();
}

void IntakeLogger::flush() {
    if (group_.empty()) return;
    std::vector<std::string> records;
    records.reserve(group_.size());
    for (const Writer::Submit& job : group_) {
        records.push_back(encode_intake_record(job.delivery, job.body, job.reasons, job.triggers,
                                               job.trigger_ids));
    }
    // A record larger than a segment (a body_limit above it) goes the ordinary way, after the
    // group.
    std::vector<Writer::Submit> too_large;
    for (std::size_t i = records.size(); i-- > 0;) {
        if (records[i].size() <= shared_->log->max_payload()) continue;
        {
            std::lock_guard lock(shared_->mutex);
            Shared::drop(shared_->logged, group_keys_[i]);
        }
        group_[i].trigger_ids.clear();
        too_large.insert(too_large.begin(), std::move(group_[i]));
        group_.erase(group_.begin() + static_cast<std::ptrdiff_t>(i));
        in_group_.erase(group_keys_[i]);
        group_keys_.erase(group_keys_.begin() + static_cast<std::ptrdiff_t>(i));
        records.erase(records.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (group_.empty()) {
        for (Writer::Submit& job : too_large) forward(std::move(job));
        return;
    }
    // While the database refuses the index work (full, say), nothing more is answered that
    // could not be indexed: the group is refused with the same failure.
    const auto refused = writer_->index_failure();
    const std::vector<std::string_view> payloads(records.begin(), records.end());
    std::string why;
    const auto started = std::chrono::steady_clock::now();
    const bool was_broken = shared_->log->broken();
    const auto written = refused ? result<std::vector<IntakeLog::Position>>{*refused}
                                 : shared_->log->append(payloads, &why);
    std::vector<Writer::Submit> group = std::move(group_);
    std::vector<std::string> keys = std::move(group_keys_);
    group_.clear();
    group_keys_.clear();
    in_group_.clear();
    if (!written) {
        {
            std::lock_guard lock(shared_->mutex);
            for (const std::string& key : keys) Shared::drop(shared_->logged, key);
        }
        // The writer reported its own failure already, and reports each retry. A broken log
        // refuses every group: said once a minute, with the count since (the store's health
        // says it all along).
        const auto now = std::chrono::steady_clock::now();
        if (!refused && was_broken) {
            refused_while_broken_ += group.size();
            if (now >= next_broken_report_) {
                writer_->report_failure(written.error(), "the intake log refused " +
                                                             std::to_string(refused_while_broken_) +
                                                             " deliveries: " + why);
                refused_while_broken_ = 0;
                next_broken_report_ = now + std::chrono::minutes(1);
            }
        } else if (!refused) {
            writer_->report_failure(
                written.error(),
                "the intake log refused " + std::to_string(group.size()) + " deliveries: " + why);
            next_broken_report_ = now + std::chrono::minutes(1);
        }
        for (Writer::Submit& job : group) {
            answer_quietly(std::exchange(job.done, nullptr), result<Receipt>{written.error()});
        }
        for (Writer::Submit& job : too_large) forward(std::move(job));
        return;
    }
    std::vector<DeliveryIntake::SubmitHandler> answers;
    std::vector<Receipt> receipts;
    answers.reserve(group.size());
    receipts.reserve(group.size());
    for (std::size_t i = 0; i < group.size(); ++i) {
        Writer::Submit& job = group[i];
        job.log_seq = (*written)[i].seq;
        answers.push_back(std::move(job.done));
        job.done = nullptr;
        Receipt receipt;
        receipt.trigger_ids = job.trigger_ids;
        receipts.push_back(std::move(receipt));
        // Stored packed: the writer does not read the body itself again.
        if (job.body && job.body->size) std::string().swap(job.delivery.body);
        job.held_bytes = held_estimate(records[i].size());
    }
    writer_->report_commit_stats(std::chrono::steady_clock::now() - started, group.size());
    // Handed over before anyone is answered: what a caller does next queues behind it.
    writer_->post_indexed(std::move(group));
    for (std::size_t i = 0; i < answers.size(); ++i) {
        answer_quietly(answers[i], result<Receipt>{std::move(receipts[i])});
    }
    for (Writer::Submit& job : too_large) forward(std::move(job));
}

std::string IntakeLogger::why_broken() const {
    return shared_->log->why_broken();
}

void IntakeLogger::forward(Writer::Submit job) {
    const bool keyed = !job.delivery.delivery_id.empty();
    if (keyed) {
        std::string key = intake_key(job.delivery.source, job.delivery.delivery_id);
        {
            std::lock_guard lock(shared_->mutex);
            ++shared_->forwarded[key];
        }
        job.done = [shared = shared_, key = std::move(key),
                    done = std::move(job.done)](result<Receipt> receipt) {
            {
                std::lock_guard lock(shared->mutex);
                Shared::drop(shared->forwarded, key);
            }
            answer_quietly(done, std::move(receipt));
        };
    }
    writer_->post(std::move(job));
}

}  // namespace hookrelay::store::sqlite
