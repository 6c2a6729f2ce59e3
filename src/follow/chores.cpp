#include "follow/chores.hpp"

#include "follow/story.hpp"
#include "forge_status/status_client.hpp"
#include "util/bridge.hpp"
#include "util/late_answer.hpp"
#include "util/spawn.hpp"

#include <hookrelay/printable.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <ratio>
#include <set>
#include <utility>

namespace hookrelay::follow {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using Time = std::chrono::system_clock::time_point;
using Kind = forge_status::PostResult::Kind;

// How often stop() looks whether the chores in flight have finished.
constexpr milliseconds k_drain_poll{50};
// The due times a lane keeps (the earliest): past them, chores are found by the poll, by a
// worker's claim of the next chore with its completion, or by an earlier due time's claim.
constexpr std::size_t k_max_due_times = 1024;
// How much later than its due time a chore may be looked for (due times are rounded up to it).
using DueGrain = std::chrono::duration<std::int64_t, std::ratio<1, 40>>;  // 25 ms
// The longest a source's statuses wait for a forge that asked to wait (GitHub's rate limit
// window is an hour); the status that was told stays due when the forge said.
constexpr milliseconds k_max_status_pause = std::chrono::hours(1);

std::string describe(const StoredTrigger& t) {
    // The delivery id is the forge's (not signed): printable, one word.
    return fmt::format("trigger {} (rule {}, jenkins {}, delivery {})", t.id, t.request.rule,
                       t.request.jenkins,
                       t.delivery_id.empty() ? "-" : printable_word(t.delivery_id));
}

milliseconds retry_delay(const StatusConfig& status, int tries) {
    auto delay = status.retry_initial;
    for (int i = 1; i < tries && delay < status.retry_max; ++i) delay *= 2;
    return std::min(delay, status.retry_max);
}

}  // namespace

struct Lane {
    Lane(Chore c, std::string k, std::unique_ptr<Timer> t)
        : chore(c), key(std::move(k)), timer(std::move(t)) {}
    Chore chore;
    std::string key;
    std::unique_ptr<Timer> timer;
    Chores::JenkinsTarget jenkins;  // follow lanes
    Chores::SourceTarget source;    // status lanes
    std::size_t in_flight = 0;
    /// Woken (or polled) while every slot was taken: the next slot given back looks for due
    /// chores at once, even if its worker's own claim found none (it may have run before the
    /// chore that woke the lane was committed).
    bool look_again = false;
    /// When chores this instance committed fall due (Chores::due(), a worker's next read or
    /// retry): the lane looks then, not at its next poll. The earliest k_max_due_times.
    std::set<Time> due_times;
    /// Wake-ups that ask the lane to look now (poke()); a due time only moves its wait.
    std::uint64_t pokes = 0;
    /// While the lane waits: until when (a due time earlier than that moves the wait).
    std::optional<Time> waiting_until;
    /// Status lanes: the forge said how long to wait (a rate limit, Retry-After). Until then the
    /// lane claims nothing: every status due meanwhile would get its own refusal, and GitHub
    /// may block an integration that keeps asking while it is limited.
    std::optional<Time> paused_until;
};

struct Chores::Impl : std::enable_shared_from_this<Chores::Impl> {
    Impl(asio::any_io_executor executor, std::shared_ptr<ChoreQueue> q, DispatchConfig o,
         milliseconds timeout, std::shared_ptr<Metrics> m, std::shared_ptr<Clock> c)
        : strand(asio::make_strand(executor)),
          queue(std::move(q)),
          options(o),
          store_timeout(timeout),
          metrics(std::move(m)),
          clock(std::move(c)) {}

    asio::strand<asio::any_io_executor> strand;
    std::shared_ptr<ChoreQueue> queue;
    DispatchConfig options;
    milliseconds store_timeout;
    std::shared_ptr<Metrics> metrics;
    std::shared_ptr<Clock> clock;
    std::map<std::pair<Chore, std::string>, std::shared_ptr<Lane>> lanes;
    bool running = false;
    std::size_t in_flight_total = 0;
    // Source and HTTP status of each kind of refusal logged since the reload ("gitea 401"): a
    // token revoked later is still said, after a refusal of another kind.
    std::set<std::string> refusals_logged;
    Time store_error_logged{};

    template <class T, class Start>
    asio::awaitable<result<T>> ask(Start start) {
        auto answer = co_await await_callback<result<T>>(std::move(start), store_timeout);
        if (!answer) co_return make_error_code(errc::store_timeout);
        co_return std::move(*answer);
    }

    // A claim whose answer may come after ask() stopped waiting (store_timeout): its chores are
    // then given back at once (LateAnswer), not left under a lease nobody works on.
    static const std::vector<ChoreClaim>& claims_of(const ChoreBatch& b) { return b.claims; }
    static const std::vector<ChoreClaim>& claims_of(const CompletionAndClaims& c) {
        return c.next.claims;
    }

    /// `done` for the store, noting the claims an answer brings; once abandoned, gives them back.
    template <class T, class Done>
    auto forward_late(std::shared_ptr<LateAnswer> late, Chore chore, std::string key, Done done) {
        return [late = std::move(late), chore, key = std::move(key), done = std::move(done),
                weak = weak_from_this()](result<T> answer) mutable {
            std::vector<std::string> ids;
            if (answer) {
                for (const auto& claim : claims_of(*answer)) ids.push_back(claim.claim_id);
            }
            give_back(weak, chore, std::move(key), late->answered(std::move(ids)));
            done(std::move(answer));
        };
    }

    /// ask() timed out: the claims its answer brought, or will bring, are given back.
    void abandon(const std::shared_ptr<LateAnswer>& late, const Lane& lane) {
        give_back(weak_from_this(), lane.chore, lane.key, late->abandon());
    }

    static void give_back(const std::weak_ptr<Impl>& weak, Chore chore, std::string key,
                          std::vector<std::string> ids) {
        auto self = weak.lock();
        if (!self || ids.empty()) return;
        asio::post(self->strand, [self, chore, key = std::move(key), ids = std::move(ids)] {
            spdlog::warn(
                "{} chores of {}: the store answered a claim of {} chore(s) after store_timeout "
                "({} ms); giving them back to be claimed again",
                to_string(chore), key, ids.size(), self->store_timeout.count());
            self->queue->release_chores(
                chore, ids, [weak = std::weak_ptr(self), chore, key](result<void> released) {
                    auto impl = weak.lock();
                    if (!impl) return;
                    asio::post(impl->strand, [impl, chore, key, released] {
                        if (!released) {
                            spdlog::warn(
                                "{} chores of {}: cannot give back late claims ({}); they are "
                                "claimed again once their leases run out",
                                to_string(chore), key, released.error().message());
                            return;
                        }
                        // Due again: claimed now, not at the next poll.
                        if (auto it = impl->lanes.find({chore, key}); it != impl->lanes.end()) {
                            poke(*it->second);
                        }
                    });
                });
        });
    }

    void store_error(const Lane& lane, const boost::system::error_code& ec) {
        // One line a minute at most: a store outage is also reported by the store itself.
        const auto now = clock->now();
        if (now - store_error_logged < std::chrono::minutes(1)) return;
        store_error_logged = now;
        spdlog::warn("{} chores of {}: store call failed: {}", to_string(lane.chore), lane.key,
                     ec.message());
    }

    void add(Chore chore, const std::string& key, const std::function<void(Lane&)>& set) {
        auto& lane = lanes[{chore, key}];
        const bool fresh = !lane;
        if (fresh) lane = std::make_shared<Lane>(chore, key, clock->make_timer(strand));
        set(*lane);
        if (fresh && running) spawn_lane(lane);
        poke(*lane);
    }

    void spawn_lane(const std::shared_ptr<Lane>& lane) {
        spawn_logged(strand, keep_lane(lane),
                     fmt::format("{} chores of {}", to_string(lane->chore), lane->key));
    }

    // run_lane() until stopped: one that fails (out of memory, a bug) is logged and started again
    // after a poll_interval, so that following or statuses never stop for good.
    asio::awaitable<void> keep_lane(std::shared_ptr<Lane> lane) {
        auto self = shared_from_this();
        co_await run_restarting([&] { return run_lane(lane); }, [&] { return running; }, *clock,
                                *lane->timer, options.poll_interval,
                                fmt::format("{} chores of {}:", to_string(lane->chore), lane->key));
    }

    std::size_t limit(const Lane& lane) const {
        return lane.chore == Chore::follow ? lane.jenkins.config.follow_max_in_flight
                                           : lane.source.config.status->max_in_flight;
    }

    milliseconds lease(const Lane& lane) const {
        const auto request = lane.chore == Chore::follow
                                 ? 2 * lane.jenkins.config.request_timeout
                                 : lane.source.config.status->request_timeout;
        return options.claim_lease + request;
    }

    /// The lane looks for due chores now rather than at its next poll.
    static void poke(Lane& lane) {
        ++lane.pokes;
        lane.timer->cancel();
    }

    /// Chores of the lane fall due at `at`: it looks then (now, if `at` has passed), not at its
    /// next poll. Costs no store call before then.
    void due(Lane& lane, Time at) {
        if (at <= clock->now()) {
            poke(lane);
            return;
        }
        // Rounded up to the grain (the stores keep whole milliseconds, rounded up): a lane
        // wakes at most once a grain for chores falling due one after another.
        at = std::chrono::ceil<DueGrain>(at);
        if (lane.due_times.size() >= k_max_due_times) {
            if (at >= *lane.due_times.rbegin()) return;
            lane.due_times.erase(std::prev(lane.due_times.end()));
        }
        lane.due_times.insert(at);
        // Waiting past it: the wait starts again, to end then.
        if (lane.waiting_until && at < *lane.waiting_until) lane.timer->cancel();
    }

    /// A status lane paused by its forge (Lane::paused_until) until now at least.
    bool paused(Lane& lane) const {
        if (!lane.paused_until) return false;
        const auto now = clock->now();
        // A wall clock stepped back does not make the pause longer than it may be.
        lane.paused_until = std::min(*lane.paused_until, now + k_max_status_pause);
        return now < *lane.paused_until;
    }

    /// A chore's slot given back; `wake`: the lane looks for due chores now rather than at its
    /// next poll.
    void finished(Lane& lane, bool wake) {
        --lane.in_flight;
        --in_flight_total;
        if (wake || lane.look_again) poke(lane);
    }

    /// A worker's slot in its lane, from a claim until the chore is done: given back when it
    /// ends, unless a chore claimed with its completion took it over.
    struct Slot {
        Impl& impl;
        Lane& lane;
        bool handed_on = false;
        bool wake = true;  ///< false once a claim found nothing due
        Slot(Impl& i, Lane& l) : impl(i), lane(l) {}
        Slot(const Slot&) = delete;
        Slot& operator=(const Slot&) = delete;
        ~Slot() {
            if (!handed_on) impl.finished(lane, wake);
        }
    };

    ChoreRequest claim_request(const Lane& lane, std::size_t count) const {
        ChoreRequest request;
        request.chore = lane.chore;
        request.key = lane.key;
        request.limit = count;
        // Following shares a Jenkins' follow limit with every instance; statuses are limited
        // per instance.
        request.max_in_flight = lane.chore == Chore::follow ? limit(lane) : 0;
        request.now = clock->now();
        request.lease = lease(lane);
        return request;
    }

    /// Starts a worker for each claimed chore: the first in `slot` when given, the others in
    /// slots of their own.
    void start_claimed(const std::shared_ptr<Lane>& lane, std::vector<ChoreClaim>& claims,
                       Slot* slot) {
        for (auto& claim : claims) {
            if (slot != nullptr && !slot->handed_on) {
                slot->handed_on = true;
            } else {
                ++lane->in_flight;
                ++in_flight_total;
            }
            auto what = describe(claim.trigger);
            if (lane->chore == Chore::follow) {
                spawn_logged(strand, follow_one(lane, std::move(claim)), "following " + what);
            } else {
                spawn_logged(strand, post_one(lane, std::move(claim)),
                             "posting the status of " + what);
            }
        }
    }

    asio::awaitable<result<Completion>> complete(std::shared_ptr<Lane> lane, Slot& slot,
                                                 std::string claim_id, ChoreUpdate update);

    void wake_status(const std::string& source) {
        if (auto it = lanes.find({Chore::status, source}); it != lanes.end()) poke(*it->second);
    }

    asio::awaitable<void> run_lane(std::shared_ptr<Lane> lane);
    asio::awaitable<void> wait(Lane& lane, std::uint64_t pokes);
    asio::awaitable<void> follow_one(std::shared_ptr<Lane> lane, ChoreClaim claim);
    asio::awaitable<void> post_one(std::shared_ptr<Lane> lane, ChoreClaim claim);
};

asio::awaitable<void> Chores::Impl::run_lane(std::shared_ptr<Lane> lane) {
    auto self = shared_from_this();
    while (running) {
        const auto max = limit(*lane);
        const auto pokes = lane->pokes;  // a poke from here on makes the lane look again
        // This claim takes every chore due by now.
        lane->due_times.erase(lane->due_times.begin(), lane->due_times.upper_bound(clock->now()));
        lane->look_again = lane->in_flight >= max;
        if (paused(*lane)) {
            due(*lane, *lane->paused_until);  // looks again then, not at a poll before it
        } else if (lane->in_flight < max) {
            auto request = claim_request(*lane, max - lane->in_flight);
            auto late = std::make_shared<LateAnswer>();
            auto batch = co_await ask<ChoreBatch>([&](auto done) {
                queue->claim_chores(request, forward_late<ChoreBatch>(late, lane->chore, lane->key,
                                                                      std::move(done)));
            });
            if (!batch && batch.error() == errc::store_timeout) abandon(late, *lane);
            // Stopped while the claim was on its way: nothing new starts (the store releases this
            // instance's claims when it closes; if it cannot, their leases run out).
            if (!running) break;
            if (!batch) {
                store_error(*lane, batch.error());
            } else {
                start_claimed(lane, batch->claims, nullptr);
            }
        }
        if (!running) break;
        co_await wait(*lane, pokes);
    }
}

// Until the next poll, the earliest due time, or a poke(), whichever comes first. A due time
// added meanwhile moves the wait without a store call.
asio::awaitable<void> Chores::Impl::wait(Lane& lane, std::uint64_t pokes) {
    const auto poll = clock->now() + options.poll_interval;
    while (running && lane.pokes == pokes) {
        // Never more than one poll_interval a wait, so a wall clock stepped back while the lane
        // waits delays its poll by one interval at most.
        const auto poll_at = std::min(poll, clock->now() + options.poll_interval);
        const bool for_due = !lane.due_times.empty() && *lane.due_times.begin() < poll_at;
        const auto until = for_due ? *lane.due_times.begin() : poll_at;
        lane.waiting_until = until;
        const bool passed = co_await lane.timer->wait_until(until);
        lane.waiting_until.reset();
        // The poll ends when its timer does; a due time, a wall-clock time like the store's,
        // once the clock reads it.
        if (passed && (!for_due || clock->now() >= until)) break;
    }
}

// While the lane runs within its limit (a reload may have lowered it), the next due chore is
// claimed in the same store call, for this worker's own slot: a worker that goes on costs one
// store call per chore, not two. Free slots stay the lane's to claim (run_lane), so that workers
// finishing at once never claim the same free slot twice: the store caps only following.
// A call that times out may still claim in the store; those claims are given back once the answer
// comes (forward_late), as after a lane's claim that timed out.
asio::awaitable<result<Completion>> Chores::Impl::complete(std::shared_ptr<Lane> lane, Slot& slot,
                                                           std::string claim_id,
                                                           ChoreUpdate update) {
    const auto chore = lane->chore;
    const auto max = limit(*lane);
    // The chore's next read or retry: the lane looks then, not at its next poll. Also after an
    // error: PostgreSQL may have committed the completion before its claim failed.
    const auto again = [this, lane, next_at = update.next_at](const result<Completion>& done) {
        if (next_at && (!done || *done == Completion::applied) && running) due(*lane, *next_at);
    };
    if (!running || lane->in_flight > max || paused(*lane)) {
        auto completion = co_await ask<Completion>([&](auto done) {
            queue->complete_chore(chore, std::move(claim_id), std::move(update), std::move(done));
        });
        again(completion);
        co_return completion;
    }
    auto next = claim_request(*lane, 1);
    auto late = std::make_shared<LateAnswer>();
    auto answer = co_await ask<CompletionAndClaims>([&](auto done) {
        queue->complete_and_claim(
            chore, std::move(claim_id), std::move(update), std::move(next),
            forward_late<CompletionAndClaims>(late, chore, lane->key, std::move(done)));
    });
    if (!answer && answer.error() == errc::store_timeout) abandon(late, *lane);
    if (!answer) {
        again(answer.error());
        co_return answer.error();
    }
    // Stopped while the call was on its way: nothing new starts (the store releases this
    // instance's claims when it closes; if it cannot, their leases run out).
    if (running) {
        // Chores are due and slots are free (a reload raised the limit): the lane claims them.
        // Read before the chore claimed starts: it may run to its end inside start_claimed().
        const bool free_slots = !answer->next.claims.empty() && lane->in_flight < max;
        // Nothing due (or the Jenkins held): the lane looks again at its next poll, at a due
        // time it was given, or when poked.
        if (answer->next.claims.empty()) slot.wake = false;
        start_claimed(lane, answer->next.claims, &slot);
        if (free_slots) poke(*lane);
    }
    again(answer->completion);
    co_return answer->completion;
}

asio::awaitable<void> Chores::Impl::follow_one(std::shared_ptr<Lane> lane, ChoreClaim claim) {
    auto self = shared_from_this();
    Slot slot(*this, *lane);
    const auto target = lane->jenkins;  // a reload may replace it meanwhile
    const auto& jenkins = target.config;
    auto trigger = claim.trigger;
    const auto read = [&](const Read& r) -> asio::awaitable<JenkinsOutcome> {
        try {
            co_return co_await target.client->read(r.path);
        } catch (const std::exception& e) {
            JenkinsOutcome failed;
            failed.kind = JenkinsOutcome::Kind::server_error;
            failed.detail = std::string("internal error: ") + e.what();
            co_return failed;
        }
    };
    auto r = next_read(trigger);
    auto answer = co_await read(r);
    auto step = advance(trigger, claim.tries, r, answer, jenkins, clock->now());
    if (step.read_builds) {
        spdlog::debug("{}: {}; looking for its build", describe(trigger), step.note);
        trigger.build = step.build;
        r = next_read(trigger, true);
        answer = co_await read(r);
        step = advance(trigger, claim.tries, r, answer, jenkins, clock->now());
    }
    const auto now = clock->now();
    const auto since_receipt = std::chrono::duration<double>(now - trigger.created_at);
    const auto& rule = trigger.request.rule;
    if (step.started) {
        metrics->build_started(rule, jenkins.name, since_receipt);
        spdlog::info("{}: build #{} started {}", describe(trigger), step.build.number,
                     step.build.url);
    }
    if (step.finished) {
        metrics->build_finished(rule, jenkins.name, step.build.result, since_receipt);
        spdlog::info("{}: {}", describe(trigger), step.note);
    } else if (step.lost) {
        metrics->follow_failure(jenkins.name);
        spdlog::warn("{}: stopped following its build: {}", describe(trigger), step.build.error);
    } else if (!step.started) {
        spdlog::debug("{}: {}", describe(trigger), step.note);
    }
    ChoreUpdate update;
    update.id = trigger.id;
    update.next_at = step.next_at;
    update.tries = step.tries;
    update.build = step.build;
    if (step.status && trigger.request.status) update.status = step.status;
    const bool wished = update.status.has_value();
    auto applied = co_await complete(lane, slot, claim.claim_id, std::move(update));
    if (!applied) {
        store_error(*lane, applied.error());
        // The wish may have been recorded all the same (PostgreSQL commits the completion before
        // it claims): if it was, it is posted now rather than at the status lane's next poll.
        if (wished) wake_status(trigger.source);
    } else if (*applied == Completion::stale) {
        spdlog::info(
            "{}: following it was taken over or it was replayed; this poll's result is "
            "dropped",
            describe(trigger));
    } else if (wished) {
        wake_status(trigger.source);
    }
}

asio::awaitable<void> Chores::Impl::post_one(std::shared_ptr<Lane> lane, ChoreClaim claim) {
    auto self = shared_from_this();
    Slot slot(*this, *lane);
    const auto target = lane->source;
    const auto& status = *target.config.status;
    const auto& trigger = claim.trigger;
    const auto wish = trigger.status.wanted;
    ChoreUpdate update;
    update.id = trigger.id;
    update.posted_seq = trigger.status.wanted_seq;
    std::string_view outcome;
    if (!trigger.request.status || !target.client) {
        update.error = "no commit to post the status to";
        outcome = "given_up";
    } else {
        forge_status::PostResult answer;
        try {
            answer = co_await target.client->post(*trigger.request.status, wish);
        } catch (const std::exception& e) {
            answer.kind = Kind::retry;
            answer.detail = std::string("internal error: ") + e.what();
        }
        const auto now = clock->now();
        const auto& commit = *trigger.request.status;
        switch (answer.kind) {
            case Kind::posted:
                update.posted = wish;
                outcome = "posted";
                spdlog::debug("{}: status {} \"{}\" posted to {}@{}", describe(trigger), wish.state,
                              wish.description, commit.repository, commit.sha);
                break;
            case Kind::ignored:
                update.error = "the forge kept its status: " + answer.detail;
                outcome = "ignored";
                break;
            case Kind::refused:
                update.error = "refused: " + answer.detail;
                outcome = "refused";
                if (refusals_logged
                        .insert(fmt::format("{} {}", target.config.name, answer.http_status))
                        .second) {
                    // 401, 403 and 404 are the token's (or a repository or api_url it cannot
                    // reach); a 400 or 422 is the status': the forge's message names what. No
                    // answer at all: the post could not be made (a repository name the forge's
                    // API cannot take).
                    const int http = answer.http_status;
                    if (http == 0) {
                        spdlog::error(
                            "source {}: hookrelay cannot post this commit status ({}; "
                            "repository {}); such statuses are dropped, deliveries are "
                            "not affected. Logged once per source and answer until a reload",
                            target.config.name, answer.detail, commit.repository);
                    } else {
                        const std::string what =
                            http == 400 || http == 422
                                ? std::string(
                                      "The forge called the status invalid (its message "
                                      "says why)")
                                : fmt::format(
                                      "Check sources.{}.status.token and its permissions ({}) "
                                      "and api_url ({})",
                                      target.config.name,
                                      forge_status::token_needs(target.config.provider),
                                      status.api_url.empty()
                                          ? forge_status::default_api_url(target.config.provider)
                                          : std::string_view(status.api_url));
                        spdlog::error(
                            "source {}: the forge refuses hookrelay's commit statuses "
                            "({}; repository {}). {}; refused statuses are dropped, "
                            "deliveries are not affected. Logged once per source and answer "
                            "until a reload",
                            target.config.name, answer.detail, commit.repository, what);
                    }
                }
                break;
            case Kind::retry: {
                const int tries = claim.tries + 1;
                if (tries >= static_cast<int>(status.max_tries)) {
                    update.error = fmt::format("gave up after {} tries: {}", tries, answer.detail);
                    outcome = "given_up";
                    spdlog::warn("{}: status \"{}\" not posted, {}", describe(trigger),
                                 wish.description, update.error);
                    break;
                }
                update.tries = tries;
                update.error = answer.detail;
                update.next_at = now + std::max(retry_delay(status, tries),
                                                answer.retry_after.value_or(milliseconds(0)));
                if (answer.retry_after && answer.retry_after->count() > 0) {
                    const auto wait = std::min(*answer.retry_after, k_max_status_pause);
                    const auto until = now + wait;
                    if (!lane->paused_until || *lane->paused_until < until) {
                        if (!paused(*lane)) {
                            spdlog::warn(
                                "source {}: the forge asks to wait {} s ({}); no status of this "
                                "source is posted until then",
                                target.config.name,
                                std::chrono::ceil<std::chrono::seconds>(wait).count(),
                                answer.detail);
                        }
                        lane->paused_until = until;
                    }
                }
                outcome = "retry";
                spdlog::info(
                    "{}: posting its status failed ({}); retrying in {} ms", describe(trigger),
                    answer.detail,
                    std::chrono::duration_cast<milliseconds>(*update.next_at - now).count());
                break;
            }
        }
    }
    metrics->status_post(target.config.name, outcome);
    auto applied = co_await complete(lane, slot, claim.claim_id, std::move(update));
    if (!applied) store_error(*lane, applied.error());
}

Chores::Chores(asio::any_io_executor executor, std::shared_ptr<ChoreQueue> queue,
               DispatchConfig options, milliseconds store_timeout, std::shared_ptr<Metrics> metrics,
               std::shared_ptr<Clock> clock)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(queue), options, store_timeout,
                                   std::move(metrics), std::move(clock))) {}

Chores::~Chores() = default;

void Chores::configure(std::vector<JenkinsTarget> jenkins, std::vector<SourceTarget> sources,
                       std::chrono::milliseconds store_timeout) {
    auto impl = impl_;
    asio::dispatch(impl->strand, [impl, jenkins = std::move(jenkins), sources = std::move(sources),
                                  store_timeout]() mutable {
        impl->store_timeout = store_timeout;
        impl->refusals_logged.clear();
        for (auto& j : jenkins) {
            const auto name = j.config.name;
            impl->add(Chore::follow, name, [&](Lane& lane) { lane.jenkins = std::move(j); });
        }
        for (auto& s : sources) {
            if (!s.config.status) continue;
            const auto name = s.config.name;
            // New settings (a new token, say) are tried at once.
            impl->add(Chore::status, name, [&](Lane& lane) {
                lane.source = std::move(s);
                lane.paused_until.reset();
            });
        }
    });
}

void Chores::start() {
    auto impl = impl_;
    asio::dispatch(impl->strand, [impl] {
        impl->running = true;
        for (auto& [key, lane] : impl->lanes) impl->spawn_lane(lane);
    });
}

void Chores::wake() {
    auto impl = impl_;
    asio::post(impl->strand, [impl] {
        for (auto& [key, lane] : impl->lanes) Impl::poke(*lane);
    });
}

void Chores::due(Chore chore, std::string key, std::chrono::system_clock::time_point at) {
    auto impl = impl_;
    asio::post(impl->strand, [impl, chore, key = std::move(key), at] {
        if (auto it = impl->lanes.find({chore, key}); it != impl->lanes.end()) {
            impl->due(*it->second, at);
        }
    });
}

namespace {

asio::awaitable<void> stop_on_strand(std::shared_ptr<Chores::Impl> impl, milliseconds grace) {
    impl->running = false;
    for (auto& [key, lane] : impl->lanes) lane->timer->cancel();
    const auto deadline = impl->clock->now() + grace;
    auto timer = impl->clock->make_timer(impl->strand);
    while (impl->in_flight_total > 0 && impl->clock->now() < deadline) {
        co_await timer->wait_for(k_drain_poll);
    }
    if (impl->in_flight_total > 0) {
        spdlog::info(
            "{} follow or status chore(s) still in flight at stop; their leases run out "
            "and another instance (or this one after its restart) takes them",
            impl->in_flight_total);
    }
}

}  // namespace

asio::awaitable<void> Chores::stop(milliseconds grace) {
    co_await asio::co_spawn(impl_->strand, stop_on_strand(impl_, grace), asio::use_awaitable);
}

}  // namespace hookrelay::follow
