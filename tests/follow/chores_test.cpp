// The chore workers against an in-memory chore queue, a scripted Jenkins (reads only), a scripted
// forge and a fake clock: following a trigger to its result, pausing on a held Jenkins, the
// follow limit, and posting statuses with retries, Retry-After, refusals and give-up. No real
// time passes: the test moves the clock and runs the ready handlers.
#include "follow/chores.hpp"

#include "fakes/drive.hpp"
#include "fakes/fake_clock.hpp"
#include "fakes/logged_warnings.hpp"
#include "forge_status/status_client.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <deque>
#include <map>

namespace hookrelay::follow {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::FakeClock;
using PostKind = forge_status::PostResult::Kind;

// The store's chore semantics on a map (the store contract suite proves the backends).
class FakeChores final : public ChoreQueue {
  public:
    struct Row {
        StoredTrigger trigger;
        std::optional<TimePoint> follow_due;
        std::string follow_claim;
        TimePoint follow_expires{};
        int follow_tries = 0;
        std::optional<TimePoint> status_due;
        std::string status_claim;
        TimePoint status_expires{};
        int status_tries = 0;
        std::vector<StatusWish> wishes;  // every wish, in order
    };
    std::map<std::string, Row> rows;
    std::optional<JenkinsHold> hold;
    std::size_t stale = 0;
    std::map<Chore, std::size_t> calls;  // store calls of each chore: claims, completions, both
    // Completions run at once but are answered only by answer_held(), as a busy store would.
    bool hold_answers = false;
    // The combined call records the completion, then fails its claim, as PostgreSQL can (two
    // transactions): the caller gets only the error.
    bool fail_claims_after_completing = false;
    std::vector<std::function<void()>> held;
    std::vector<std::string> released;  // claim ids given back, in order
    // Follow claims run at once but are answered only by answer_held(), as a stalled store would.
    bool hold_claims = false;

    void answer_held() {
        hold_answers = false;
        auto answers = std::move(held);
        held.clear();
        for (auto& a : answers) a();
    }

    std::size_t claim_throws = 0;  ///< the next this many claims throw (out of memory, a bug)

    void claim_chores(ChoreRequest r, ChoreHandler done) override {
        ++calls[r.chore];
        if (claim_throws > 0) {
            --claim_throws;
            throw std::runtime_error("claim failed in the fake");
        }
        if (hold_claims && r.chore == Chore::follow) {
            held.push_back([done = std::move(done), out = take(r)] { done(out); });
            return;
        }
        done(take(r));
    }

    ChoreBatch take(const ChoreRequest& r) {
        ChoreBatch batch;
        if (r.chore == Chore::follow && hold) {
            batch.hold = hold;
            return batch;
        }
        std::size_t live = 0;
        for (auto& [id, row] : rows) {
            const auto& claim = r.chore == Chore::follow ? row.follow_claim : row.status_claim;
            const auto expires = r.chore == Chore::follow ? row.follow_expires : row.status_expires;
            if (!claim.empty() && expires > r.now) ++live;
        }
        for (auto& [id, row] : rows) {
            if (batch.claims.size() >= r.limit) break;
            if (r.max_in_flight > 0 && live >= r.max_in_flight) break;
            const bool follow = r.chore == Chore::follow;
            auto& due = follow ? row.follow_due : row.status_due;
            auto& claim = follow ? row.follow_claim : row.status_claim;
            auto& expires = follow ? row.follow_expires : row.status_expires;
            if (!due || *due > r.now || (!claim.empty() && expires > r.now)) continue;
            if (!follow && row.trigger.status.wanted_seq <= row.trigger.status.posted_seq) continue;
            claim = "c" + std::to_string(++claims_);
            expires = r.now + r.lease;
            ++live;
            batch.claims.push_back(
                {row.trigger, claim, expires, follow ? row.follow_tries : row.status_tries});
        }
        return batch;
    }

    void complete_chore(Chore chore, std::string claim_id, ChoreUpdate u,
                        CompleteHandler done) override {
        ++calls[chore];
        done(finish(chore, claim_id, u));
    }

    void complete_and_claim(Chore chore, std::string claim_id, ChoreUpdate u, ChoreRequest next,
                            CompleteAndClaimHandler done) override {
        ++calls[chore];
        CompletionAndClaims out;
        out.completion = finish(chore, claim_id, u);
        if (fail_claims_after_completing) {
            done(make_error_code(errc::store_unavailable));
            return;
        }
        out.next = take(next);
        if (hold_answers) {
            held.push_back([done = std::move(done), out] { done(out); });
            return;
        }
        done(out);
    }

    void release_chores(Chore chore, std::vector<std::string> claim_ids,
                        std::function<void(result<void>)> done) override {
        ++calls[chore];
        for (const auto& id : claim_ids) {
            released.push_back(id);
            for (auto& [trigger, row] : rows) {
                auto& claim = chore == Chore::follow ? row.follow_claim : row.status_claim;
                if (claim == id) claim.clear();
            }
        }
        done({});
    }

    Completion finish(Chore chore, const std::string& claim_id, const ChoreUpdate& u) {
        auto& row = rows.at(u.id);
        auto& claim = chore == Chore::follow ? row.follow_claim : row.status_claim;
        if (claim != claim_id) {
            ++stale;
            return Completion::stale;
        }
        claim.clear();
        auto& p = row.trigger.status;
        if (chore == Chore::follow) {
            if (u.build) row.trigger.build = *u.build;
            row.follow_due = u.next_at;
            row.follow_tries = u.tries;
            row.trigger.following = u.next_at.has_value();
            if (u.status) wish(u.id, *u.status);
        } else {
            row.status_tries = u.tries;
            p.error = u.error;
            if (u.posted) p.posted = *u.posted;
            if (u.next_at) {
                row.status_due = u.next_at;
            } else {
                p.posted_seq = std::max(p.posted_seq, u.posted_seq);
                row.status_due =
                    p.wanted_seq > p.posted_seq ? std::optional(TimePoint{}) : std::nullopt;
            }
        }
        return Completion::applied;
    }

    void wish(const std::string& id, StatusWish w) {
        auto& row = rows.at(id);
        row.wishes.push_back(w);
        row.trigger.status.wanted = std::move(w);
        ++row.trigger.status.wanted_seq;
        row.status_tries = 0;
        row.status_due = TimePoint{};
    }

  private:
    std::size_t claims_ = 0;
};

// Holds calls back while `hanging`, until they are released; counts the calls it holds.
class Gates {
  public:
    explicit Gates(asio::any_io_executor ex) : executor_(ex) {}
    bool hanging = false;
    std::size_t in_flight = 0;
    std::size_t most_in_flight = 0;

    asio::awaitable<void> pass() {
        if (!hanging) co_return;
        auto gate =
            std::make_shared<asio::steady_timer>(executor_, asio::steady_timer::time_point::max());
        gates_.push_back(gate);
        most_in_flight = std::max(most_in_flight, ++in_flight);
        boost::system::error_code ec;
        co_await gate->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        --in_flight;
    }
    /// The calls held now go on; later ones are held too.
    void release_waiting() {
        for (auto& g : gates_) g->cancel();
        gates_.clear();
    }
    void release() {
        hanging = false;
        release_waiting();
    }

  private:
    asio::any_io_executor executor_;
    std::vector<std::shared_ptr<asio::steady_timer>> gates_;
};

// Answers read() from a script per path prefix; records the paths.
class Reader final : public JenkinsClient, public Gates {
  public:
    explicit Reader(asio::any_io_executor ex) : Gates(ex) {}
    std::vector<std::pair<std::string, JenkinsOutcome>> script;  // prefix → answer, used in order
    std::vector<std::string> paths;

    asio::awaitable<JenkinsOutcome> trigger(TriggerRequest, std::optional<Secret>) override {
        co_return JenkinsOutcome{};
    }
    asio::awaitable<JenkinsOutcome> probe() override { co_return JenkinsOutcome{}; }

    // Chores never scan nor cancel: a call would be a bug the test should see.
    asio::awaitable<JenkinsOutcome> scan(std::vector<std::string>) override {
        co_return not_scripted();
    }
    asio::awaitable<JenkinsOutcome> cancel_item(std::int64_t) override { co_return not_scripted(); }
    static JenkinsOutcome not_scripted() {
        JenkinsOutcome o;
        o.kind = JenkinsOutcome::Kind::permanent;
        o.detail = "not scripted";
        return o;
    }
    asio::awaitable<JenkinsOutcome> read(std::string path) override {
        paths.push_back(path);
        co_await pass();
        for (auto it = script.begin(); it != script.end(); ++it) {
            if (path.starts_with(it->first)) {
                auto answer = it->second;
                script.erase(it);
                co_return answer;
            }
        }
        JenkinsOutcome none;
        none.kind = JenkinsOutcome::Kind::unavailable;
        none.detail = "no script for " + path;
        co_return none;
    }
};

class Forge final : public forge_status::StatusClient, public Gates {
  public:
    explicit Forge(asio::any_io_executor ex) : Gates(ex) {}
    std::deque<forge_status::PostResult> script;  // default: posted
    std::vector<std::pair<StatusTarget, StatusWish>> posts;

    asio::awaitable<forge_status::PostResult> post(StatusTarget target, StatusWish wish) override {
        posts.emplace_back(std::move(target), std::move(wish));
        co_await pass();
        if (script.empty()) co_return forge_status::PostResult{PostKind::posted, 201, "", {}};
        auto r = script.front();
        script.pop_front();
        co_return r;
    }
};

JenkinsOutcome answer(std::string body) {
    JenkinsOutcome o;
    o.kind = JenkinsOutcome::Kind::queued;
    o.http_status = 200;
    o.body = std::move(body);
    return o;
}

class ChoresTest : public ::testing::Test {
  protected:
    asio::io_context ioc;
    std::shared_ptr<FakeClock> clock = FakeClock::create();
    std::shared_ptr<FakeChores> queue = std::make_shared<FakeChores>();
    std::shared_ptr<Reader> jenkins_client = std::make_shared<Reader>(ioc.get_executor());
    std::shared_ptr<Forge> forge = std::make_shared<Forge>(ioc.get_executor());
    DispatchConfig options;
    JenkinsConfig jenkins;
    SourceConfig source;
    std::shared_ptr<Chores> chores;
    std::chrono::milliseconds store_timeout = 5s;  // awaited on a real timer

    ChoresTest() {
        jenkins.name = "ci";
        jenkins.url = "http://ci/";
        jenkins.follow_poll_initial = 2s;
        jenkins.follow_poll_max = 16s;
        jenkins.follow_max_in_flight = 2;
        source.name = "github";
        source.status = StatusConfig{};
        source.status->retry_initial = 2s;
        source.status->retry_max = 60s;
        source.status->max_tries = 3;
    }

    std::string add(const std::string& id, std::int64_t queue_id = 7) {
        StoredTrigger t;
        t.id = id;
        t.source = "github";
        t.state = TriggerState::delivered;
        t.created_at = clock->now();
        t.request.rule = "main";
        t.request.jenkins = "ci";
        t.request.job = {"app"};
        t.request.follow = FollowMode::finished;
        t.request.status = StatusTarget{"acme/app", std::string(40, 'b'), "hookrelay/main", "main"};
        t.build.queue_id = queue_id;
        t.build.queue_url = "http://ci/queue/item/" + std::to_string(queue_id) + "/";
        t.build.queued_at = clock->now();
        t.following = true;
        queue->rows[id].trigger = t;
        queue->rows[id].follow_due = clock->now();
        return id;
    }

    /// Triggers t1..tn, nothing to follow, each wishing a pending status ("Queued").
    void wished_statuses(int n) {
        for (int i = 1; i <= n; ++i) {
            const auto id = add("t" + std::to_string(i), i);
            queue->rows[id].follow_due.reset();
            queue->wish(id, {"pending", "Queued", ""});
        }
    }

    void start() {
        chores = std::make_shared<Chores>(ioc.get_executor(), queue, options, store_timeout,
                                          null_metrics(), clock);
        chores->configure({{jenkins, jenkins_client}}, {{source, forge}}, store_timeout);
        chores->start();
        settle();
    }

    void settle() { test::settle(ioc); }

    void advance(std::chrono::milliseconds by) { test::advance(*clock, ioc, by); }

    /// Runs the io_context until `text` is logged (a store call timing out on its real timer),
    /// for 10 s at most.
    bool run_until_logged(const test::LoggedWarnings& logged, std::string_view text) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!logged.has(text) && std::chrono::steady_clock::now() < deadline) {
            ioc.run_one_for(10ms);
        }
        return logged.has(text);
    }

    ~ChoresTest() override {
        if (!chores) return;
        jenkins_client->release();
        forge->release();
        bool stopped = false;
        asio::co_spawn(
            ioc,
            [](std::shared_ptr<Chores> c, bool& done) -> asio::awaitable<void> {
                co_await c->stop(0ms);
                done = true;
            }(chores, stopped),
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
        settle();
        advance(1s);
        EXPECT_TRUE(stopped);
    }
};

TEST_F(ChoresTest, FollowsAQueueItemToItsResultAndWishesTheStatusesOnTheWay) {
    add("t1");
    jenkins_client->script = {
        {"queue/item/7/", answer(R"({"id":7,"why":"Waiting for next available executor"})")},
        {"queue/item/7/",
         answer(
             R"({"id":7,"cancelled":false,"executable":{"number":42,"url":"https://j/app/42/"}})")},
        {"job/app/42/", answer(R"({"number":42,"building":true,"result":null,"duration":0,)"
                               R"("timestamp":1767225600000,"url":"https://j/app/42/"})")},
        {"job/app/42/",
         answer(R"({"number":42,"building":false,"result":"SUCCESS",)"
                R"("duration":90000,"timestamp":1767225600000,"url":"https://j/app/42/"})")},
    };
    start();
    EXPECT_EQ(queue->rows["t1"].trigger.build.why, "Waiting for next available executor");
    advance(2s);  // item left the queue
    EXPECT_EQ(queue->rows["t1"].trigger.build.number, 42);
    advance(2s);  // building
    EXPECT_TRUE(queue->rows["t1"].trigger.following);
    advance(2s);  // finished
    const auto& row = queue->rows["t1"];
    EXPECT_EQ(row.trigger.build.result, "SUCCESS");
    EXPECT_FALSE(row.trigger.following);
    EXPECT_FALSE(row.follow_due);
    ASSERT_EQ(row.wishes.size(), 2u);
    EXPECT_EQ(row.wishes[0].state, "running");
    EXPECT_EQ(row.wishes[1].state, "success");
    EXPECT_EQ(row.wishes[1].description, "Build #42 SUCCESS in 1m30s");
    // The forge got both, in order, for the commit.
    ASSERT_EQ(forge->posts.size(), 2u);
    EXPECT_EQ(forge->posts[0].second.state, "running");
    EXPECT_EQ(forge->posts[1].second.state, "success");
    EXPECT_EQ(forge->posts[1].first.sha, std::string(40, 'b'));
    EXPECT_EQ(row.trigger.status.posted.state, "success");
    EXPECT_EQ(jenkins_client->paths.size(), 4u);
}

// A lane whose work throws is logged and starts again after a poll: following (or statuses) used
// to stop for good.
TEST_F(ChoresTest, ALaneThatFailsIsLoggedAndStartsAgain) {
    test::LoggedWarnings logged;
    options.poll_interval = 5s;
    add("t1");
    queue->claim_throws = 2;  // the follow lane's claim and the status lane's
    start();
    EXPECT_TRUE(jenkins_client->paths.empty());
    EXPECT_TRUE(
        logged.has("chores of ci: failed: claim failed in the fake; starting again in "
                   "5000 ms"));
    // A wake-up during the pause does not end it.
    advance(4s);
    chores->wake();
    settle();
    EXPECT_TRUE(jenkins_client->paths.empty());
    advance(1s);
    EXPECT_EQ(jenkins_client->paths.size(), 1u);
}

TEST_F(ChoresTest, HeldJenkinsPausesFollowing) {
    add("t1");
    queue->hold = JenkinsHold{"connect: refused", clock->now(), clock->now() + 5s, 0};
    start();
    advance(10s);
    EXPECT_TRUE(jenkins_client->paths.empty());
    queue->hold.reset();
    jenkins_client->script = {{"queue/item/7/", answer(R"({"id":7,"why":"quiet"})")}};
    advance(options.poll_interval);
    EXPECT_EQ(jenkins_client->paths.size(), 1u);
}

TEST_F(ChoresTest, AtMostFollowMaxInFlightReadsAtOnce) {
    for (int i = 1; i <= 5; ++i) add("t" + std::to_string(i), i);
    jenkins_client->hanging = true;
    start();
    advance(3s);
    EXPECT_EQ(jenkins_client->in_flight, 2u);
    EXPECT_EQ(jenkins_client->paths.size(), 2u);
}

TEST_F(ChoresTest, AWorkerGoesOnToTheNextDueChoreInTheSameStoreCall) {
    jenkins.follow_max_in_flight = 1;
    start();
    const std::size_t idle = queue->calls[Chore::follow];
    for (int i = 1; i <= 4; ++i) {
        const std::string n = std::to_string(i);
        add("t" + n, i);
        jenkins_client->script.emplace_back("queue/item/" + n + "/",
                                            answer(R"({"id":)" + n + R"(,"cancelled":true})"));
    }
    chores->wake();
    settle();
    // All four followed to their end, one at a time, without the clock moving: one claim, then
    // one store call per chore that records it and claims the next.
    for (int i = 1; i <= 4; ++i) {
        const auto& row = queue->rows["t" + std::to_string(i)];
        EXPECT_EQ(row.trigger.build.result, "CANCELLED") << i;
        EXPECT_FALSE(row.trigger.following) << i;
    }
    EXPECT_EQ(jenkins_client->paths.size(), 4u);
    EXPECT_EQ(queue->calls[Chore::follow] - idle, 5u);
    // The last call found nothing due: the lane looks again at its next poll, not at once.
    advance(options.poll_interval - 1ms);
    EXPECT_EQ(queue->calls[Chore::follow] - idle, 5u);
    advance(1ms);
    EXPECT_EQ(queue->calls[Chore::follow] - idle, 6u);
}

TEST_F(ChoresTest, AStatusWishedHereIsPostedAtOnceNotAtTheNextPoll) {
    options.poll_interval = 1h;
    start();
    const std::size_t idle = queue->calls[Chore::status];
    add("t1");
    queue->rows["t1"].follow_due.reset();
    queue->wish("t1", {"pending", "Queued in Jenkins ci", ""});
    chores->due(Chore::status, "github", clock->now());
    settle();
    ASSERT_EQ(forge->posts.size(), 1u);
    EXPECT_EQ(forge->posts[0].second.description, "Queued in Jenkins ci");
    EXPECT_EQ(queue->calls[Chore::status] - idle, 2u);  // the claim, the completion
}

TEST_F(ChoresTest, AFollowDueLaterIsReadWhenItFallsDueWithNoStoreCallBefore) {
    options.poll_interval = 1h;
    start();
    const std::size_t idle = queue->calls[Chore::follow];
    add("t1");
    queue->rows["t1"].follow_due = clock->now() + 2s;
    jenkins_client->script = {{"queue/item/7/", answer(R"({"id":7,"cancelled":true})")}};
    chores->due(Chore::follow, "ci", clock->now() + 2s);
    // A later time, and a time for a lane there is none of, change nothing.
    chores->due(Chore::follow, "ci", clock->now() + 5s);
    chores->due(Chore::follow, "elsewhere", clock->now());
    settle();
    advance(2s - 1ms);
    EXPECT_TRUE(jenkins_client->paths.empty());
    EXPECT_EQ(queue->calls[Chore::follow], idle);
    advance(1ms);
    ASSERT_EQ(jenkins_client->paths.size(), 1u);
    EXPECT_EQ(queue->rows["t1"].trigger.build.result, "CANCELLED");
    // The later time costs one claim, which finds nothing; then the lane waits for its poll.
    const std::size_t followed = queue->calls[Chore::follow];
    advance(3s);
    EXPECT_EQ(queue->calls[Chore::follow], followed + 1);
    advance(10min);
    EXPECT_EQ(queue->calls[Chore::follow], followed + 1);
}

TEST_F(ChoresTest, EachNextReadIsMadeWhenItFallsDueNotAtThePoll) {
    options.poll_interval = 1h;
    add("t1");
    jenkins_client->script = {
        {"queue/item/7/", answer(R"({"id":7,"why":"Waiting for next available executor"})")},
        {"queue/item/7/", answer(R"({"id":7,"why":"Waiting for next available executor"})")},
        {"queue/item/7/", answer(R"({"id":7,"cancelled":true})")},
    };
    start();
    ASSERT_EQ(jenkins_client->paths.size(), 1u);
    advance(2s);  // follow_poll_initial
    ASSERT_EQ(jenkins_client->paths.size(), 2u);
    advance(4s - 1ms);  // doubled
    EXPECT_EQ(jenkins_client->paths.size(), 2u);
    advance(1ms);
    ASSERT_EQ(jenkins_client->paths.size(), 3u);
    EXPECT_EQ(queue->rows["t1"].trigger.build.result, "CANCELLED");
}

TEST_F(ChoresTest, AFailedPostIsRetriedWhenItsBackoffEndsNotAtThePoll) {
    options.poll_interval = 1h;
    add("t1");
    queue->rows["t1"].follow_due.reset();
    queue->wish("t1", {"pending", "Queued in Jenkins ci", ""});
    forge->script = {{PostKind::retry, 502, "HTTP 502", {}}};
    start();
    ASSERT_EQ(forge->posts.size(), 1u);
    advance(source.status->retry_initial);
    ASSERT_EQ(forge->posts.size(), 2u);
    EXPECT_EQ(queue->rows["t1"].trigger.status.posted.description, "Queued in Jenkins ci");
}

TEST_F(ChoresTest, WhatACompletionRecordedBeforeItsClaimFailedIsStillDoneInTime) {
    options.poll_interval = 1h;
    add("t1");
    jenkins_client->script = {
        {"queue/item/7/",
         answer(
             R"({"id":7,"cancelled":false,"executable":{"number":42,"url":"https://j/app/42/"}})")},
        {"job/app/42/",
         answer(R"({"number":42,"building":false,"result":"SUCCESS",)"
                R"("duration":1000,"timestamp":1767225600000,"url":"https://j/app/42/"})")},
    };
    queue->fail_claims_after_completing = true;
    start();
    // The read found the build running: its wish and its next read were recorded, though the
    // store call failed. The wish is posted now, and the build read when it falls due.
    ASSERT_EQ(queue->rows["t1"].wishes.size(), 1u);
    ASSERT_EQ(forge->posts.size(), 1u);
    EXPECT_EQ(forge->posts[0].second.state, "running");
    queue->fail_claims_after_completing = false;
    advance(jenkins.follow_poll_initial - 1ms);
    EXPECT_EQ(jenkins_client->paths.size(), 1u);
    advance(1ms);
    EXPECT_EQ(queue->rows["t1"].trigger.build.result, "SUCCESS");
}

// The store answers after store_timeout (a stalled disk, a busy pool): nobody waits for that
// answer any more, so the chores it claimed are given back at once instead of waiting, undone,
// for their leases to run out.
TEST_F(ChoresTest, AClaimTheStoreAnswersLateIsGivenBack) {
    const test::LoggedWarnings logged;
    store_timeout = 20ms;
    add("t1");
    queue->hold_claims = true;
    start();
    ASSERT_EQ(queue->held.size(), 1u);
    ASSERT_TRUE(run_until_logged(logged, "store call failed"));
    queue->hold_claims = false;
    queue->answer_held();
    settle();
    EXPECT_TRUE(logged.has("the store answered a claim of 1 chore(s) after store_timeout"));
    // Given back, and claimed again at once (c2), not after the lease of c1.
    EXPECT_EQ(queue->released, std::vector<std::string>{"c1"});
    EXPECT_EQ(jenkins_client->paths.size(), 1u);
    EXPECT_EQ(queue->stale, 0u);  // its read was recorded under the new claim
}

TEST_F(ChoresTest, AChoreClaimedWithACompletionTheStoreAnswersLateIsGivenBack) {
    const test::LoggedWarnings logged;
    store_timeout = 20ms;
    jenkins.follow_max_in_flight = 1;
    for (const auto* id : {"t1", "t2"}) {
        add(id, id[1] - '0');
        queue->rows[id].trigger.request.status.reset();  // no status chores besides
    }
    jenkins_client->script = {{"queue/item/1/", answer(R"({"id":1,"cancelled":true})")}};
    queue->hold_answers = true;
    start();
    // t1 was read; its completion claimed t2, and the answer is held.
    ASSERT_EQ(jenkins_client->paths.size(), 1u);
    ASSERT_EQ(queue->held.size(), 1u);
    ASSERT_TRUE(run_until_logged(logged, "store call failed"));
    queue->answer_held();
    settle();
    // Given back, and claimed again at once: t2 is read under a claim of its own.
    EXPECT_EQ(queue->released, std::vector<std::string>{"c2"});
    ASSERT_EQ(jenkins_client->paths.size(), 2u);
    EXPECT_NE(jenkins_client->paths[1].find("queue/item/2/"), std::string::npos);
}

TEST_F(ChoresTest, FailedPostIsRetriedAfterBackoffButNeverBeforeRetryAfter) {
    add("t1");
    queue->rows["t1"].follow_due.reset();
    queue->wish("t1", {"pending", "Queued in Jenkins ci", ""});
    forge->script = {{PostKind::retry, 403, "secondary rate limit", 30s}};
    start();
    ASSERT_EQ(forge->posts.size(), 1u);
    EXPECT_EQ(queue->rows["t1"].trigger.status.error, "secondary rate limit");
    advance(29s);
    EXPECT_EQ(forge->posts.size(), 1u);
    advance(2s);
    ASSERT_EQ(forge->posts.size(), 2u);
    const auto& p = queue->rows["t1"].trigger.status;
    EXPECT_EQ(p.posted_seq, p.wanted_seq);
    EXPECT_EQ(p.posted.description, "Queued in Jenkins ci");
    EXPECT_TRUE(p.error.empty());
}

// A forge that says how long to wait (a rate limit) is not asked again before then, for any
// status of the source: after an outage every due status used to get a refusal of its own.
TEST_F(ChoresTest, ARateLimitPausesEveryStatusOfTheSourceUntilTheForgeSaid) {
    source.status->max_in_flight = 1;
    wished_statuses(3);
    forge->script = {{PostKind::retry, 403, "API rate limit exceeded", 10min}};
    start();
    ASSERT_EQ(forge->posts.size(), 1u);
    // The other two are due, a poll passes, and a new wish wakes the lane: nothing is posted.
    advance(options.poll_interval);
    chores->wake();
    settle();
    advance(9min);
    EXPECT_EQ(forge->posts.size(), 1u);
    // Once the wait is over, all three go out, one after another.
    advance(61s);
    EXPECT_EQ(forge->posts.size(), 4u);
    for (const auto* id : {"t1", "t2", "t3"}) {
        const auto& p = queue->rows[id].trigger.status;
        EXPECT_EQ(p.posted_seq, p.wanted_seq) << id;
        EXPECT_EQ(p.posted.description, "Queued") << id;
    }
}

// A reload (a new token, say) ends the pause: the next status is tried at once.
TEST_F(ChoresTest, AReloadEndsTheSourcesPause) {
    source.status->max_in_flight = 1;
    wished_statuses(2);
    forge->script = {{PostKind::retry, 403, "API rate limit exceeded", 10min}};
    start();
    ASSERT_EQ(forge->posts.size(), 1u);
    chores->configure({{jenkins, jenkins_client}}, {{source, forge}}, store_timeout);
    settle();
    EXPECT_EQ(forge->posts.size(), 2u);
}

// A Retry-After of days does not pause the source for days: an hour at most, then the others
// are tried (the status that was told waits as long as the forge said).
TEST_F(ChoresTest, ASourcePausesAnHourAtMost) {
    source.status->max_in_flight = 1;
    source.status->max_tries = 5;
    wished_statuses(2);
    forge->script = {{PostKind::retry, 503, "HTTP 503", std::chrono::hours(72)}};
    start();
    ASSERT_EQ(forge->posts.size(), 1u);
    advance(59min);
    EXPECT_EQ(forge->posts.size(), 1u);
    advance(2min);
    EXPECT_EQ(forge->posts.size(), 2u);
}

TEST_F(ChoresTest, RefusedPostIsGivenUpAtOnce) {
    add("t1");
    queue->rows["t1"].follow_due.reset();
    queue->wish("t1", {"pending", "Queued", ""});
    forge->script = {{PostKind::refused, 404, "HTTP 404 Not Found", {}}};
    start();
    advance(10min);
    EXPECT_EQ(forge->posts.size(), 1u);
    const auto& p = queue->rows["t1"].trigger.status;
    EXPECT_EQ(p.posted_seq, p.wanted_seq);
    EXPECT_NE(p.error.find("404"), std::string::npos);
    EXPECT_TRUE(p.posted.state.empty());
}

TEST_F(ChoresTest, PostIsGivenUpAfterMaxTries) {
    add("t1");
    queue->rows["t1"].follow_due.reset();
    queue->wish("t1", {"pending", "Queued", ""});
    for (int i = 0; i < 5; ++i) forge->script.push_back({PostKind::retry, 502, "HTTP 502", {}});
    start();
    advance(10min);
    EXPECT_EQ(forge->posts.size(), 3u);  // max_tries
    const auto& p = queue->rows["t1"].trigger.status;
    EXPECT_EQ(p.posted_seq, p.wanted_seq);
    EXPECT_NE(p.error.find("gave up after 3 tries"), std::string::npos) << p.error;
}

TEST_F(ChoresTest, PostsFinishingAtOnceNeverExceedTheSourcesMaxInFlight) {
    source.status->max_in_flight = 4;
    forge->hanging = true;
    const auto wished = [&](int i) {
        const std::string id = add("t" + std::to_string(i), i);
        queue->rows[id].follow_due.reset();
        queue->wish(id, {"pending", "Queued", ""});
    };
    for (int i = 1; i <= 3; ++i) wished(i);
    start();
    ASSERT_EQ(forge->in_flight, 3u);
    // Seven more wishes while the three posts hang; the lane has not looked yet.
    for (int i = 4; i <= 10; ++i) wished(i);
    // The three finish together, their store calls answered together: each worker goes on with
    // one more, and the lane fills the fourth slot.
    queue->hold_answers = true;
    forge->release_waiting();
    settle();
    ASSERT_EQ(queue->held.size(), 3u);
    queue->answer_held();
    settle();
    EXPECT_EQ(forge->in_flight, 4u);
    EXPECT_EQ(forge->most_in_flight, 4u);
    EXPECT_EQ(forge->posts.size(), 7u);
}

TEST_F(ChoresTest, AWishThatWokeAFullLaneIsPostedAsSoonAsASlotFrees) {
    source.status->max_in_flight = 1;
    forge->hanging = true;
    add("t1", 1);
    add("t2", 2);
    for (const auto* id : {"t1", "t2"}) queue->rows[id].follow_due.reset();
    queue->wish("t1", {"pending", "Queued", ""});
    start();
    ASSERT_EQ(forge->in_flight, 1u);
    // The post ends; its store call finds nothing else due, and is answered late.
    queue->hold_answers = true;
    forge->release_waiting();
    settle();
    ASSERT_EQ(queue->held.size(), 1u);
    // Meanwhile a wish is committed and wakes the lane, whose only slot is still taken.
    queue->wish("t2", {"pending", "Queued", ""});
    chores->wake();
    settle();
    queue->answer_held();
    settle();
    // Posted now, not at the next poll.
    ASSERT_EQ(forge->posts.size(), 2u);
    EXPECT_EQ(forge->in_flight, 1u);
}

TEST_F(ChoresTest, OnlyTheNewestWishIsPostedAfterAnOutage) {
    add("t1");
    queue->rows["t1"].follow_due.reset();
    queue->wish("t1", {"pending", "Queued", ""});
    forge->script = {{PostKind::retry, 0, "connect: refused", {}}};
    start();
    queue->wish("t1", {"running", "Build #1 running", ""});
    queue->wish("t1", {"success", "Build #1 SUCCESS in 5s", ""});
    advance(5s);
    ASSERT_EQ(forge->posts.size(), 2u);
    EXPECT_EQ(forge->posts[1].second.state, "success");
}

}  // namespace
}  // namespace hookrelay::follow
