// The dispatcher against an in-memory queue, a scripted Jenkins and a fake clock: claims,
// renewals, fencing, holds shared through the store, probes, throttling, stop. No real time
// passes and nothing waits: the test moves the clock and runs the ready handlers.
#include "dispatch/dispatcher.hpp"

#include "fakes/drive.hpp"
#include "fakes/fake_clock.hpp"
#include "fakes/fake_queue.hpp"
#include "fakes/logged_warnings.hpp"
#include "fakes/scripted_jenkins.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <functional>
#include <mutex>

namespace hookrelay::dispatch {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::FakeClock;
using test::FakeQueue;
using test::LoggedWarnings;
using test::ScriptedJenkins;
using Kind = JenkinsOutcome::Kind;

// Jenkins' 429 with its Retry-After.
JenkinsOutcome throttled_for(std::chrono::seconds retry_after) {
    JenkinsOutcome throttled;
    throttled.kind = Kind::throttled;
    throttled.http_status = 429;
    throttled.retry_after = retry_after;
    throttled.detail = "HTTP 429";
    return throttled;
}

// A build accepted (201) after `duration`.
JenkinsOutcome accepted_after(std::chrono::milliseconds duration) {
    JenkinsOutcome accepted;
    accepted.kind = Kind::queued;
    accepted.http_status = 201;
    accepted.detail = "HTTP 201 Created";
    accepted.duration = duration;
    return accepted;
}

class DispatcherTest : public ::testing::Test {
  protected:
    asio::io_context ioc;
    std::shared_ptr<FakeClock> clock = FakeClock::create();
    std::shared_ptr<FakeQueue> queue = std::make_shared<FakeQueue>();
    std::shared_ptr<ScriptedJenkins> ci = std::make_shared<ScriptedJenkins>(ioc.get_executor());
    DispatchConfig options;
    std::shared_ptr<Config> config = std::make_shared<Config>();
    std::shared_ptr<Dispatcher> dispatcher;
    Dispatcher::ChoresDue chores_due;  // passed to on_chores_due() by start() when set

    JenkinsConfig jenkins(const std::string& name, unsigned max_in_flight = 4) {
        JenkinsConfig j;
        j.name = name;
        j.url = "http://" + name + "/";
        j.max_in_flight = max_in_flight;
        j.probe_initial = 1s;
        j.probe_max = 8s;
        j.retry.initial = 1s;
        j.retry.max_delay = 60s;
        return j;
    }

    void start(std::vector<Dispatcher::Target> targets = {},
               std::chrono::milliseconds store_timeout = 5s) {
        if (targets.empty()) targets.push_back({jenkins("ci"), ci});
        for (const auto& t : targets) config->jenkins.push_back(t.config);
        dispatcher = std::make_shared<Dispatcher>(ioc.get_executor(), queue, options, store_timeout,
                                                  null_metrics(), clock);
        dispatcher->configure(config, std::move(targets));
        if (chores_due) dispatcher->on_chores_due(chores_due);
        dispatcher->start();
        settle();
    }

    void settle() { test::settle(ioc); }

    /// A store slow to answer renewals (within store_timeout): moves the clock in 250 ms steps
    /// from `from` to `until`, answering each renewal 4.5 s after it was asked (and, with
    /// one_writer, the claims waiting at each step), and asserts at each step that the lease of
    /// `id` has not run out.
    void expect_leased_while_renewals_are_answered_late(const std::string& id,
                                                        std::chrono::milliseconds from,
                                                        std::chrono::milliseconds until) {
        constexpr auto answered_after = 4500ms;
        constexpr auto step = 250ms;
        for (auto elapsed = from; elapsed < until; elapsed += step) {
            advance(step);
            if (queue->one_writer) queue->run_writer();  // the lane's next claims, answered at once
            queue->answer_renewals_asked_by(clock->now() - answered_after);
            ASSERT_GT(queue->rows.at(id).claim_expires, clock->now())
                << "the lease ran out " << (elapsed + step).count() << " ms after the claim";
        }
    }

    void advance(std::chrono::milliseconds by) { test::advance(*clock, ioc, by); }

    /// Starts stop(grace) and returns at once; `stopped` is set once it returned.
    void begin_stop(std::chrono::milliseconds grace, bool& stopped) {
        asio::co_spawn(
            ioc,
            [](std::shared_ptr<Dispatcher> d, std::chrono::milliseconds g,
               bool& done) -> asio::awaitable<void> {
                co_await d->stop(g);
                done = true;
            }(dispatcher, grace, stopped),
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
    }

    void stop(std::chrono::milliseconds grace) {
        bool stopped = false;
        begin_stop(grace, stopped);
        settle();
        advance(grace + 100ms);
        EXPECT_TRUE(stopped);
    }

    /// The trigger of each build request Jenkins got, in order.
    std::vector<std::string> sent() const {
        std::vector<std::string> ids;
        for (const auto& request : ci->requests) ids.push_back(request.job.back());
        return ids;
    }

    /// Three triggers, a store only this instance claims from, max_in_flight 1: t1 answered at
    /// once, so t2 is at Jenkins (its request hanging) and t3 is claimed ahead.
    void start_with_one_claimed_ahead() {
        for (int i = 0; i < 3; ++i) queue->add("ci", clock->now());
        queue->single = true;
        ci->set_hanging(true);
        start({{jenkins("ci", 1), ci}});
        ci->release();
        settle();
        ASSERT_EQ(ci->requests.size(), 2u);
        ASSERT_EQ(queue->live_claims("ci", clock->now()), 2u) << "t3 claimed ahead";
    }

    /// `rounds` rounds of hanging requests, each answered together: every round finds exactly
    /// `max_in_flight` at Jenkins and as many claimed in the store, none ahead.
    void expect_rounds_without_claims_ahead(int rounds, std::size_t max_in_flight) {
        for (int round = 0; round < rounds; ++round) {
            EXPECT_EQ(ci->waiting(), max_in_flight);
            EXPECT_EQ(queue->live_claims("ci", clock->now()), max_in_flight);
            ci->release();
            settle();
        }
    }

    ~DispatcherTest() override {
        if (dispatcher) {
            ci->release();
            stop(0ms);
        }
    }
};

TEST_F(DispatcherTest, DeliversADueTriggerAndRecordsItUnderItsClaim) {
    const auto id = queue->add("ci", clock->now());
    start();
    ASSERT_EQ(ci->requests.size(), 1u);
    EXPECT_EQ(queue->completed, std::vector<std::string>{id});
    EXPECT_EQ(queue->rows.at(id).trigger.state, TriggerState::delivered);
    EXPECT_TRUE(queue->rows.at(id).claim_id.empty());
}

// Each trigger of a rule goes out with the job token its own trigger names: the second job of
// a rule on one Jenkins used to get the first one's token, which Jenkins refuses (403).
TEST_F(DispatcherTest, EachJobOfARuleIsSentTheTokenOfItsOwnTrigger) {
    RuleSpec rule;
    rule.name = "r";
    for (const auto* job : {"job/t1", "job/t2", "{{ repo }}"}) {
        TriggerSpec t;
        t.jenkins = "ci";
        t.job.text = job;
        rule.triggers.push_back(t);
    }
    rule.triggers[0].token = Secret("token-one");
    rule.triggers[1].token = Secret("token-two");
    config->rules.push_back(rule);
    for (int i = 0; i < 3; ++i) queue->add("ci", clock->now());
    start();
    ASSERT_EQ(ci->job_tokens.size(), 3u);
    std::map<std::string, std::string> tokens;
    for (std::size_t i = 0; i < 3; ++i) {
        const auto& token = ci->job_tokens[i];
        tokens[ci->requests[i].job.back()] = token ? token->reveal() : "(none)";
    }
    EXPECT_EQ(tokens["t1"], "token-one");
    EXPECT_EQ(tokens["t2"], "token-two");
    EXPECT_EQ(tokens["t3"], "(none)");  // rendered from the template, which names no token
}

// A trigger whose rule was renamed while it waited (Jenkins was down) still gets its job's token:
// the one the config gives that job on that Jenkins, else the one its templated triggers there
// share. It used to go without one, and Jenkins answered 403: dead.
TEST_F(DispatcherTest, ATriggerWhoseRuleWasRenamedGetsTheTokenTheConfigGivesItsJob) {
    RuleSpec renamed;
    renamed.name = "renamed";
    for (const auto* job : {"job/t1", "{{ repo }}"}) {
        TriggerSpec t;
        t.jenkins = "ci";
        t.job.text = job;
        renamed.triggers.push_back(t);
    }
    renamed.triggers[0].token = Secret("token-one");
    renamed.triggers[1].token = Secret("token-templated");
    config->rules.push_back(renamed);
    for (int i = 0; i < 2; ++i) queue->add("ci", clock->now(), "the-old-name");
    start();
    ASSERT_EQ(ci->job_tokens.size(), 2u);
    std::map<std::string, std::string> tokens;
    for (std::size_t i = 0; i < 2; ++i) {
        const auto& token = ci->job_tokens[i];
        tokens[ci->requests[i].job.back()] = token ? token->reveal() : "(none)";
    }
    EXPECT_EQ(tokens["t1"], "token-one");
    EXPECT_EQ(tokens["t2"], "token-templated");
}

TEST_F(DispatcherTest, ATriggerWhoseRuleIsGoneGetsNoTokenWhereTheRulesDisagree) {
    for (const auto* name : {"a", "b"}) {
        RuleSpec rule;
        rule.name = name;
        TriggerSpec t;
        t.jenkins = "ci";
        t.job.text = "{{ repo }}";
        t.token = Secret(std::string("token-") + name);
        rule.triggers.push_back(t);
        config->rules.push_back(rule);
    }
    queue->add("ci", clock->now(), "gone");
    start();
    ASSERT_EQ(ci->job_tokens.size(), 1u);
    EXPECT_FALSE(ci->job_tokens[0].has_value());
}

// A lane whose work throws (out of memory, a bug) is logged and starts again after a poll: the
// Jenkins' deliveries used to stop for good while webhooks were still answered 202.
TEST_F(DispatcherTest, ALaneThatFailsIsLoggedAndStartsAgain) {
    test::LoggedWarnings logged;
    options.poll_interval = 5s;
    queue->claim_throws = 1;
    queue->add("ci", clock->now());
    start();
    EXPECT_TRUE(ci->requests.empty());
    EXPECT_TRUE(
        logged.has("jenkins=ci: dispatcher: delivering failed: claim failed in the fake; "
                   "starting again in 5000 ms"));
    // A wake-up (a commit) during the pause does not end it.
    advance(4s);
    dispatcher->wake();
    settle();
    EXPECT_TRUE(ci->requests.empty());
    advance(1s);
    EXPECT_EQ(ci->requests.size(), 1u);
}

TEST_F(DispatcherTest, ClaimsATriggerOnlyWhenItFallsDue) {
    queue->add("ci", clock->now() + 5s);
    start();
    EXPECT_TRUE(ci->requests.empty());
    advance(4s);
    EXPECT_TRUE(ci->requests.empty());
    advance(1s);
    EXPECT_EQ(ci->requests.size(), 1u);
}

TEST_F(DispatcherTest, WakeClaimsNewTriggersWithoutWaitingForThePoll) {
    start();
    queue->add("ci", clock->now());
    dispatcher->wake();
    settle();
    EXPECT_EQ(ci->requests.size(), 1u);
}

TEST_F(DispatcherTest, ADeliveryRecordedSaysWhenItsStatusAndItsFollowFallDue) {
    struct Due {
        Chore chore;
        std::string key;
        TimePoint at;
        std::size_t recorded;  // outcomes the store had recorded by then
    };
    auto due = std::make_shared<std::vector<Due>>();
    chores_due = [due, queue = queue](Chore chore, std::string key, TimePoint at) {
        due->push_back({chore, std::move(key), at, queue->completed.size()});
    };
    const auto start_time = clock->now();
    const auto followed = queue->add("ci", start_time);
    auto& request = queue->rows.at(followed).trigger.request;
    request.follow = FollowMode::finished;
    request.status = StatusTarget{"acme/app", std::string(40, 'a'), "hookrelay/r", "main"};
    queue->add("ci", start_time);  // neither followed nor with a commit to tell
    auto targets = std::vector<Dispatcher::Target>{{jenkins("ci"), ci}};
    targets.front().config.follow_poll_initial = 3s;
    start(std::move(targets));
    ASSERT_EQ(queue->completed.size(), 2u);
    // Only once the outcome is recorded, and only for the trigger that has chores.
    ASSERT_EQ(due->size(), 2u);
    EXPECT_EQ((*due)[0].chore, Chore::status);
    EXPECT_EQ((*due)[0].key, "github");
    EXPECT_EQ((*due)[0].at, start_time);
    EXPECT_EQ((*due)[1].chore, Chore::follow);
    EXPECT_EQ((*due)[1].key, "ci");
    EXPECT_EQ((*due)[1].at, start_time + 3s);
    EXPECT_EQ(queue->completed.front(), followed);
    for (const auto& d : *due) EXPECT_GE(d.recorded, 1u);
}

TEST_F(DispatcherTest, NeverHasMoreInFlightThanTheJenkinsAllows) {
    for (int i = 0; i < 10; ++i) queue->add("ci", clock->now());
    ci->set_hanging(true);
    start({{jenkins("ci", 2), ci}});
    EXPECT_EQ(ci->waiting(), 2u);
    EXPECT_EQ(queue->live_claims("ci", clock->now()), 2u);
    ci->release();
    settle();
    EXPECT_EQ(ci->waiting(), 2u);  // the next two started at once
    EXPECT_EQ(queue->completed.size(), 2u);
}

TEST_F(DispatcherTest, ASlotIsFreeOnceJenkinsAnswersAndTheNextClaimSharesTheOutcomesRound) {
    // A store with one writer (SQLite): what the dispatcher asks runs in rounds, in order.
    for (int i = 0; i < 3; ++i) queue->add("ci", clock->now());
    queue->one_writer = true;
    start({{jenkins("ci", 1), ci}});
    EXPECT_EQ(queue->run_writer(), 1u);  // the claim
    settle();
    ASSERT_EQ(ci->requests.size(), 1u);
    // Jenkins answered: its outcome waits for the writer, and the next claim waits right behind
    // it, so one round records the one and starts the next request.
    EXPECT_EQ(queue->run_writer(), 2u);
    settle();
    EXPECT_EQ(queue->completed.size(), 1u);
    EXPECT_EQ(ci->requests.size(), 2u);
    EXPECT_EQ(queue->run_writer(), 2u);
    settle();
    EXPECT_EQ(ci->requests.size(), 3u);
    // Never more than max_in_flight live claims, outcomes pending included.
    EXPECT_LE(queue->live_claims("ci", clock->now()), 1u);
    while (queue->run_writer() > 0) settle();
    EXPECT_EQ(queue->completed.size(), 3u);
}

TEST_F(DispatcherTest, ASingleInstanceStoreIsClaimedAheadSoAFreedSlotStartsItsNextRequestAtOnce) {
    // SQLite: no other instance claims from it, and what the dispatcher asks runs in rounds.
    for (int i = 0; i < 9; ++i) queue->add("ci", clock->now());
    queue->single = true;
    queue->one_writer = true;
    ci->set_hanging(true);
    start({{jenkins("ci", 3), ci}});
    EXPECT_EQ(queue->run_writer(), 1u);  // the first claim: how fast Jenkins answers is unknown
    settle();
    ASSERT_EQ(ci->waiting(), 3u);
    EXPECT_EQ(queue->live_claims("ci", clock->now()), 3u);
    // It answers at once: behind the three outcomes, a claim of the free slots and three ahead.
    ci->release();
    settle();
    while (queue->run_writer() > 0) settle();
    EXPECT_EQ(ci->waiting(), 3u) << "never more requests at Jenkins than its max_in_flight";
    EXPECT_EQ(ci->requests.size(), 6u);
    EXPECT_EQ(queue->live_claims("ci", clock->now()), 6u);
    // The next answers start the three claimed ahead before the store has run anything.
    ci->release();
    settle();
    EXPECT_EQ(ci->waiting(), 3u);
    EXPECT_EQ(ci->requests.size(), 9u);
    ci->set_hanging(false);
    ci->release();
    for (int round = 0; round < 10 && queue->run_writer() > 0; ++round) settle();
    EXPECT_EQ(queue->completed.size(), 9u);
    EXPECT_EQ(queue->live_claims("ci", clock->now()), 0u);
    ASSERT_EQ(ci->requests.size(), 9u);  // each once, in due order
    for (std::size_t i = 0; i < 9; ++i) {
        EXPECT_EQ(ci->requests[i].job.back(), "t" + std::to_string(i + 1));
    }
}

TEST_F(DispatcherTest, AStoreOtherInstancesShareIsNeverClaimedAhead) {
    for (int i = 0; i < 6; ++i) queue->add("ci", clock->now());
    ci->set_hanging(true);
    start({{jenkins("ci", 2), ci}});
    expect_rounds_without_claims_ahead(3, 2);
    EXPECT_EQ(queue->completed.size(), 6u);
}

TEST_F(DispatcherTest, NothingIsClaimedAheadOfAJenkinsThatAnswersSlowly) {
    queue->single = true;
    for (int i = 0; i < 6; ++i) {
        queue->add("ci", clock->now());
        ci->then(accepted_after(250ms));
    }
    ci->set_hanging(true);
    start({{jenkins("ci", 2), ci}});
    // A trigger claimed ahead would wait about one slow answer, in flight for coalescing.
    expect_rounds_without_claims_ahead(3, 2);
    EXPECT_EQ(queue->completed.size(), 6u);
}

TEST_F(DispatcherTest, TriggersClaimedAheadAreGivenBackWhenTheJenkinsIsHeldAndSentOnceItIsBack) {
    ASSERT_NO_FATAL_FAILURE(start_with_one_claimed_ahead());
    ci->then(Kind::unavailable, 0, "connect: refused");
    ci->release();
    settle();
    // Held: t3 is free again in the store and nothing more goes to Jenkins.
    EXPECT_EQ(queue->released.size(), 1u);
    EXPECT_TRUE(queue->rows.at("t3").claim_id.empty());
    EXPECT_EQ(queue->live_claims("ci", clock->now()), 0u);
    EXPECT_EQ(ci->requests.size(), 2u);
    // The probe finds it back: t2 (retried) and t3 go out.
    ci->set_hanging(false);
    advance(2s);
    settle();
    EXPECT_EQ(sent(), (std::vector<std::string>{"t1", "t2", "t2", "t3"}));
}

TEST_F(DispatcherTest, TriggersClaimedAheadAreGivenBackWhenTheJenkinsThrottles) {
    ASSERT_NO_FATAL_FAILURE(start_with_one_claimed_ahead());
    ci->then(throttled_for(30s));
    ci->release();
    settle();
    // Paused for 30 s: t3 does not wait claimed (and out of reach of a newer trigger) meanwhile.
    EXPECT_EQ(queue->released.size(), 1u);
    EXPECT_TRUE(queue->rows.at("t3").claim_id.empty());
    EXPECT_EQ(ci->requests.size(), 2u);
    // After the pause both go out, t3 once.
    ci->set_hanging(false);
    advance(31s);
    advance(5s);
    const auto ids = sent();
    EXPECT_EQ(std::count(ids.begin(), ids.end(), "t3"), 1);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), "t2"), 2);
}

TEST_F(DispatcherTest, TriggersClaimedAheadAreGivenBackWhenNoSlotFreesForAWhile) {
    ASSERT_NO_FATAL_FAILURE(start_with_one_claimed_ahead());
    // t2's request hangs: t3 would wait claimed until it ends.
    advance(150ms);
    EXPECT_EQ(queue->released.size(), 1u);
    EXPECT_TRUE(queue->rows.at("t3").claim_id.empty());
    // Claimed again when a slot frees, not ahead until Jenkins answers fast again; sent once.
    ci->set_hanging(false);
    ci->release();
    settle();
    ASSERT_EQ(ci->requests.size(), 3u);
    EXPECT_EQ(ci->requests[2].job.back(), "t3");
    EXPECT_EQ(queue->released.size(), 1u);
}

TEST_F(DispatcherTest, TriggersClaimedAheadAreGivenBackWhenTheJenkinsTurnsSlow) {
    ASSERT_NO_FATAL_FAILURE(start_with_one_claimed_ahead());
    ci->then(accepted_after(250ms));
    ci->release();  // t2, answered slowly
    settle();
    EXPECT_EQ(queue->released.size(), 1u);
    // t3 goes out in the slot t2 freed, and nothing more is claimed.
    ASSERT_EQ(ci->requests.size(), 3u);
    EXPECT_EQ(ci->requests[2].job.back(), "t3");
    EXPECT_EQ(queue->live_claims("ci", clock->now()), 1u);
}

TEST_F(DispatcherTest, ATriggerClaimedAheadWhoseClaimWasLostIsNotSent) {
    // Due just before the first renewal, so that t3 is still claimed ahead when it runs.
    for (int i = 0; i < 3; ++i) queue->add("ci", clock->now() + 1950ms);
    queue->single = true;
    ci->set_hanging(true);
    start({{jenkins("ci", 1), ci}});
    advance(1950ms);
    ci->release();
    settle();
    ASSERT_EQ(ci->requests.size(), 2u);
    ASSERT_EQ(queue->live_claims("ci", clock->now()), 2u);
    queue->take_over("t3");  // replayed, or taken over
    advance(50ms);           // the renewal finds it gone
    ci->set_hanging(false);
    ci->release();
    settle();
    EXPECT_EQ(sent(), (std::vector<std::string>{"t1", "t2"}));
    EXPECT_EQ(queue->rows.at("t3").claim_id, "other-t3");
}

TEST_F(DispatcherTest, NothingIsClaimedAheadWhileTheOverallLimitIsWhatHoldsAJenkinsBack) {
    queue->single = true;
    options.max_in_flight = 2;  // one reserved slot each, none shared
    auto other = std::make_shared<ScriptedJenkins>(ioc.get_executor());
    for (int i = 0; i < 6; ++i) {
        queue->add("ci", clock->now());
        queue->add("other", clock->now());
    }
    ci->set_hanging(true);
    other->set_hanging(true);
    start({{jenkins("ci", 2), ci}, {jenkins("other", 2), other}});
    for (int round = 0; round < 3; ++round) {
        EXPECT_EQ(ci->waiting() + other->waiting(), 2u);
        EXPECT_EQ(
            queue->live_claims("ci", clock->now()) + queue->live_claims("other", clock->now()), 2u);
        ci->release();
        other->release();
        settle();
    }
}

TEST_F(DispatcherTest, StoppingGivesBackTheTriggersClaimedAhead) {
    ASSERT_NO_FATAL_FAILURE(start_with_one_claimed_ahead());
    bool stopped = false;
    begin_stop(5s, stopped);
    settle();
    // At once, not after the grace: t3 was never sent.
    EXPECT_EQ(queue->released.size(), 1u);
    EXPECT_TRUE(queue->rows.at("t3").claim_id.empty());
    ci->release();
    advance(100ms);
    EXPECT_TRUE(stopped);
    EXPECT_EQ(ci->requests.size(), 2u);
}

TEST_F(DispatcherTest, AClaimThatRanBeforeTheOutcomeWasRecordedIsTriedAgainOnceItIs) {
    // A store with a pool of connections (PostgreSQL): the claim queued after the outcome runs
    // first, while the store still counts the finished trigger's claim.
    for (int i = 0; i < 2; ++i) queue->add("ci", clock->now());
    queue->outcomes_later = true;
    start({{jenkins("ci", 1), ci}});
    ASSERT_EQ(ci->requests.size(), 1u) << "the Jenkins is full until the outcome is recorded";
    EXPECT_EQ(queue->run_writer(), 1u);  // the outcome
    settle();
    // Woken by the recorded outcome, not by the next poll.
    EXPECT_EQ(ci->requests.size(), 2u);
    EXPECT_EQ(queue->run_writer(), 1u);
    settle();
    EXPECT_EQ(queue->completed.size(), 2u);
}

TEST_F(DispatcherTest, RespectsAClusterWideLimitHeldByOtherInstances) {
    for (int i = 0; i < 3; ++i) queue->add("ci", clock->now());
    // Another instance holds two live claims of this Jenkins (max_in_flight 2).
    const auto a = queue->add("ci", clock->now());
    const auto b = queue->add("ci", clock->now());
    queue->rows.at(a).claim_id = "other-a";
    queue->rows.at(a).claim_expires = clock->now() + 60s;
    queue->rows.at(b).claim_id = "other-b";
    queue->rows.at(b).claim_expires = clock->now() + 60s;
    ci->set_hanging(true);
    start({{jenkins("ci", 2), ci}});
    EXPECT_TRUE(ci->requests.empty());
    queue->rows.at(a).claim_id.clear();  // the other instance finished one
    advance(options.poll_interval);
    EXPECT_EQ(ci->requests.size(), 1u);
}

TEST_F(DispatcherTest, RenewsClaimsWhileTheirRequestsRun) {
    const auto id = queue->add("ci", clock->now());
    ci->set_hanging(true);
    start();
    const auto claim = queue->rows.at(id).claim_id;
    ASSERT_FALSE(claim.empty());
    advance(options.claim_renew_interval);
    ASSERT_FALSE(queue->renewed.empty());
    EXPECT_EQ(queue->renewed.back(), std::vector<std::string>{claim});
    // Long past the first lease, the claim is still ours because it was renewed.
    advance(options.claim_lease * 3);
    EXPECT_GT(queue->rows.at(id).claim_expires, clock->now());
    ci->release();
    settle();
    EXPECT_EQ(queue->completed, std::vector<std::string>{id});
}

// A store slow to answer each renewal (a long transaction ahead of it, a busy pool), though within
// store_timeout: the next renewal is asked on time all the same, so the lease of a request still
// at Jenkins never runs out (another instance, or this one claiming ahead, would send it again).
TEST_F(DispatcherTest, AClaimStaysLeasedWhileEachRenewalTakesMostOfStoreTimeout) {
    const auto id = queue->add("ci", clock->now());
    ci->set_hanging(true);
    queue->renewals_wait = true;
    start();  // store_timeout 5 s
    ASSERT_FALSE(queue->rows.at(id).claim_id.empty());
    expect_leased_while_renewals_are_answered_late(id, 0ms, options.claim_lease * 3);
    if (HasFatalFailure()) return;
    EXPECT_LE(queue->renewed.size(), 16u) << "one renewal per claim_renew_interval";
    queue->renewals_wait = false;
    queue->answer_renewals_asked_by(clock->now());
    ci->release();
    settle();
    EXPECT_EQ(queue->completed, std::vector<std::string>{id});
}

// The same store slow to answer the claim too: its lease runs from when it was asked, so the
// request it starts is renewed at once rather than at the next tick.
TEST_F(DispatcherTest, AClaimTheStoreAnsweredLateIsRenewedAtOnce) {
    const auto id = queue->add("ci", clock->now());
    ci->set_hanging(true);
    queue->one_writer = true;  // the claim waits for run_writer()
    queue->renewals_wait = true;
    start();
    constexpr auto answered_after = 4500ms;
    advance(answered_after);
    ASSERT_EQ(queue->run_writer(), 1u);
    settle();
    ASSERT_EQ(ci->waiting(), 1u) << "the claim was answered and its request sent";
    expect_leased_while_renewals_are_answered_late(id, answered_after, options.claim_lease * 3);
    if (HasFatalFailure()) return;
    queue->one_writer = false;
    queue->renewals_wait = false;
    queue->answer_renewals_asked_by(clock->now());
    ci->release();
    settle();
    queue->run_writer();
    settle();
    EXPECT_EQ(queue->completed, std::vector<std::string>{id});
}

// With a lease no longer than a renewal's interval and its wait for the store, the operator is told
// at start, and when a reload makes store_timeout that long.
TEST_F(DispatcherTest, ALeaseALateRenewalCouldOutrunIsSaidAtStart) {
    LoggedWarnings log;
    start({}, 9s);
    EXPECT_TRUE(log.has("dispatch.claim_lease (10000 ms) is shorter than 18000 ms"));
}

TEST_F(DispatcherTest, ALeaseALateRenewalCouldOutrunIsSaidWhenAReloadMakesIt) {
    LoggedWarnings log;
    start({}, 5s);
    EXPECT_FALSE(log.has("claim_lease")) << "10 s lease, 2 s interval, 5 s store_timeout";
    auto reloaded = std::make_shared<Config>(*config);
    reloaded->server.store_timeout = 6s;
    dispatcher->reconfigure(reloaded, {});
    settle();
    EXPECT_TRUE(
        log.has("is shorter than 12000 ms (twice dispatch.claim_renew_interval, 2000 ms, "
                "or server.store_timeout, 6000 ms, whichever is longer, plus "
                "store_timeout)"));
}

TEST_F(DispatcherTest, ARenewalNamesTheTriggersWhoseClaimsWereLostWhileTheirRequestsRan) {
    const auto id = queue->add("ci", clock->now());
    ci->set_hanging(true);
    LoggedWarnings log;
    start();
    queue->take_over(id);  // this instance stalled; another took the trigger
    advance(options.claim_renew_interval);
    const auto lines = log.lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("1 claim(s) in flight were lost"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("trigger " + id), std::string::npos) << lines[0];
    // Said once: the next renewal neither asks for it nor reports it again.
    const auto renewals = queue->renewed.size();
    advance(options.claim_renew_interval);
    EXPECT_EQ(log.lines().size(), 1u);
    EXPECT_EQ(queue->renewed.size(), renewals);
    ci->release();
    settle();
    EXPECT_EQ(queue->stale, std::vector<std::string>{id});
}

TEST_F(DispatcherTest, ARenewalDoesNotCallLostAClaimWhoseOutcomeWasRecordedMeanwhile) {
    // PostgreSQL: the outcome committed on one connection, and before its answer came back the
    // renewal ran on another and no longer found the claim.
    const auto id = queue->add("ci", clock->now());
    queue->answers_later = true;
    LoggedWarnings log;
    start();
    ASSERT_EQ(ci->requests.size(), 1u);
    ASSERT_TRUE(queue->rows.at(id).claim_id.empty()) << "the outcome is recorded";
    advance(options.claim_renew_interval);
    ASSERT_FALSE(queue->renewed.empty()) << "the renewal asked for the claim";
    const auto lines = log.lines();
    EXPECT_TRUE(lines.empty()) << lines.front();
    EXPECT_EQ(queue->run_writer(), 1u);  // the outcome's answer
    settle();
    EXPECT_EQ(queue->completed, std::vector<std::string>{id});
    EXPECT_TRUE(log.lines().empty());
}

TEST_F(DispatcherTest, OutcomeOfAClaimTakenOverIsNotRecorded) {
    const auto id = queue->add("ci", clock->now());
    ci->set_hanging(true);
    const LoggedWarnings log;
    start();
    queue->take_over(id);  // this instance stalled; another took the trigger
    ci->release();
    settle();
    EXPECT_EQ(queue->stale, std::vector<std::string>{id});
    EXPECT_TRUE(queue->completed.empty());
    EXPECT_EQ(queue->rows.at(id).trigger.state, TriggerState::pending);
    // The attempt is in no history: the warning is where an admin finds that Jenkins queued it,
    // and that a second send builds twice.
    EXPECT_TRUE(
        log.has("outcome not recorded: the trigger was replayed or taken over by another "
                "instance while this attempt ran (Jenkins queued it as http"))
        << log.lines().size();
    EXPECT_TRUE(log.has("; if it is sent again, the job builds twice for this event"));
}

TEST_F(DispatcherTest, UnavailableJenkinsIsHeldForEveryInstanceAndNotAskedAgain) {
    for (int i = 0; i < 3; ++i) queue->add("ci", clock->now());
    ci->then(Kind::unavailable, 0, "connect: refused");
    start({{jenkins("ci", 1), ci}});
    ASSERT_EQ(ci->requests.size(), 1u);
    ASSERT_TRUE(queue->holds.count("ci"));
    EXPECT_EQ(queue->holds.at("ci").hold.reason, "connect: refused");
    EXPECT_TRUE(dispatcher->status().front().held);
    // The attempt did not count and the trigger is due again.
    const auto& first = queue->rows.begin()->second;
    EXPECT_EQ(first.trigger.attempts, 0);
    advance(500ms);
    EXPECT_EQ(ci->requests.size(), 1u);  // held: nothing else went out
}

TEST_F(DispatcherTest, ProbeThatFindsJenkinsBackEndsTheHoldAndDrains) {
    for (int i = 0; i < 3; ++i) queue->add("ci", clock->now());
    ci->then(Kind::unavailable, 0, "connect: refused");
    start({{jenkins("ci", 1), ci}});
    advance(1s);  // probe_initial
    EXPECT_EQ(ci->probes, 1u);
    EXPECT_EQ(queue->unholds, 1u);
    EXPECT_FALSE(dispatcher->status().front().held);
    for (const auto& [id, row] : queue->rows) {
        EXPECT_EQ(row.trigger.state, TriggerState::delivered) << id;
    }
}

// A hold an earlier run left behind is found at start, its probe time long past: the probe goes
// out at once, and the log says so instead of a wait below zero.
TEST_F(DispatcherTest, AHoldFoundPastItsProbeTimeAtStartIsProbedAtOnce) {
    const LoggedWarnings logged;
    queue->add("ci", clock->now());
    JenkinsHold hold;
    hold.reason = "connect: refused";
    hold.since = clock->now() - 1h;
    hold.next_probe_at = clock->now() - 22s;
    queue->hold_by_other("ci", hold);
    start();
    advance(100ms);
    EXPECT_EQ(ci->probes, 1u);
    EXPECT_EQ(queue->unholds, 1u);
    const auto lines = logged.lines();
    ASSERT_FALSE(lines.empty());
    EXPECT_NE(lines.front().find("jenkins=ci is held (connect: refused); its triggers wait, a "
                                 "probe is due now"),
              std::string::npos)
        << lines.front();
    for (const auto& line : lines) EXPECT_EQ(line.find("in -"), std::string::npos) << line;
}

// A probe may take its whole request_timeout (a Jenkins that accepts connections and hangs):
// its lease in the store is renewed while it runs, so no other instance probes at the same time.
TEST_F(DispatcherTest, AProbesLeaseIsRenewedWhileItsRequestRuns) {
    queue->add("ci", clock->now());
    JenkinsHold hold;
    hold.reason = "connect: refused";
    hold.since = clock->now() - 1h;
    hold.next_probe_at = clock->now();
    queue->hold_by_other("ci", hold);
    ci->set_probe_hanging(true);
    start();
    advance(100ms);
    ASSERT_EQ(ci->probes, 1u);
    advance(options.claim_lease * 3);
    EXPECT_EQ(ci->probes, 1u);
    EXPECT_GT(queue->probe_leases.size(), 1u) << "the probe's lease was not renewed";
    EXPECT_GT(queue->holds.at("ci").probe_expires, clock->now()) << "the probe's lease ran out";
    ci->release();
    settle();
    EXPECT_EQ(queue->unholds, 1u);
}

// A store slow to renew a probe's lease must not hold back the claims' renewals: their leases
// would run out while their requests are at Jenkins.
TEST_F(DispatcherTest, ClaimsAreRenewedOnTimeWhileAProbesRenewalWaitsForTheStore) {
    auto other = std::make_shared<ScriptedJenkins>(ioc.get_executor());
    JenkinsHold hold;
    hold.reason = "HTTP 503";
    hold.since = clock->now() - 1h;
    hold.next_probe_at = clock->now();
    queue->hold_by_other("ci", hold);
    ci->set_probe_hanging(true);
    const auto id = queue->add("other", clock->now());
    other->set_hanging(true);
    queue->probe_renewals_hang = true;
    start({{jenkins("ci"), ci}, {jenkins("other"), other}});
    advance(100ms);
    ASSERT_EQ(ci->probes, 1u);
    ASSERT_EQ(other->waiting(), 1u);
    const auto claim = queue->rows.at(id).claim_id;
    for (int i = 0; i < 8; ++i) advance(options.claim_renew_interval);
    EXPECT_GE(queue->renewed.size(), 7u);
    EXPECT_EQ(queue->rows.at(id).claim_id, claim);
    EXPECT_GT(queue->rows.at(id).claim_expires, clock->now()) << "the claim's lease ran out";
    queue->release_probe_renewals();
    ci->release();
    other->release();
    settle();
}

TEST_F(DispatcherTest, FailedProbesBackOffUpToProbeMax) {
    queue->add("ci", clock->now());
    ci->then(Kind::unavailable);
    for (int i = 0; i < 6; ++i) ci->then_probe(Kind::unavailable, "still down");
    const auto start_time = clock->now();
    start();
    advance(60s);
    ASSERT_GE(queue->probe_failures.size(), 5u);
    std::vector<long> gaps;
    auto previous = start_time + 1s;  // the first probe
    for (const auto& next : queue->probe_failures) {
        gaps.push_back(std::chrono::duration_cast<std::chrono::seconds>(next - previous).count());
        previous = next;
    }
    EXPECT_EQ(gaps[0], 2);
    EXPECT_EQ(gaps[1], 4);
    EXPECT_EQ(gaps[2], 8);
    EXPECT_EQ(gaps[3], 8);  // probe_max
}

TEST_F(DispatcherTest, DoesNotProbeWhileAnotherInstanceHoldsTheProbe) {
    queue->add("ci", clock->now());
    JenkinsHold hold;
    hold.reason = "down (seen by another instance)";
    hold.since = clock->now();
    hold.next_probe_at = clock->now();
    queue->hold_by_other("ci", hold, "other-instance");
    start();
    advance(5s);
    EXPECT_EQ(ci->probes, 0u);
    EXPECT_TRUE(ci->requests.empty());
    EXPECT_TRUE(dispatcher->status().front().held);
    // The other instance's probe succeeded: the hold is gone, and this instance drains too.
    queue->holds.clear();
    advance(options.poll_interval);
    EXPECT_EQ(ci->requests.size(), 1u);
    EXPECT_FALSE(dispatcher->status().front().held);
}

TEST_F(DispatcherTest, RefusedCredentialsHoldTheJenkinsWithoutCountingOrKillingTriggers) {
    for (int i = 0; i < 3; ++i) queue->add("ci", clock->now());
    ci->then(Kind::auth_failed, 401, "HTTP 401 Unauthorized");
    auto ci_config = jenkins("ci", 1);
    ci_config.user = "hookrelay";
    start({{ci_config, ci}});
    ASSERT_EQ(ci->requests.size(), 1u);
    ASSERT_TRUE(queue->holds.count("ci"));
    EXPECT_TRUE(is_auth_failed(queue->holds.at("ci").hold));  // shared with every instance
    const auto status = dispatcher->status().front();
    EXPECT_TRUE(status.held);
    EXPECT_TRUE(status.auth_failed);
    EXPECT_EQ(status.auth_key, "jenkins.ci.api_token");
    for (const auto& [id, row] : queue->rows) {
        EXPECT_EQ(row.trigger.state, TriggerState::pending) << id;
        EXPECT_EQ(row.trigger.attempts, 0) << id;
    }
    ASSERT_EQ(queue->rows.begin()->second.history.size(), 1u);
    EXPECT_FALSE(queue->rows.begin()->second.history.front().counted);
}

TEST_F(DispatcherTest, RefusedCredentialsAreProbedOnlyEveryProbeMaxWithoutAReload) {
    for (int i = 0; i < 3; ++i) queue->add("ci", clock->now());
    ci->then(Kind::auth_failed, 401, "HTTP 401 Unauthorized");
    ci->then_probe(Kind::auth_failed, "HTTP 401 Unauthorized");
    start({{jenkins("ci", 1), ci}});
    advance(7s);  // probe_initial is 1s, but refused credentials do not heal within seconds
    EXPECT_EQ(ci->probes, 0u);
    EXPECT_EQ(ci->requests.size(), 1u);
    advance(1s);  // probe_max
    EXPECT_EQ(ci->probes, 1u);
    EXPECT_TRUE(dispatcher->status().front().auth_failed);
    EXPECT_EQ(ci->requests.size(), 1u);
    for (const auto& [id, row] : queue->rows) EXPECT_EQ(row.trigger.attempts, 0) << id;
}

TEST_F(DispatcherTest, ReloadWithNewCredentialsProbesAtOnceAndDrains) {
    for (int i = 0; i < 3; ++i) queue->add("ci", clock->now());
    ci->then(Kind::auth_failed, 401, "HTTP 401 Unauthorized");
    start({{jenkins("ci", 1), ci}});
    ASSERT_TRUE(dispatcher->status().front().auth_failed);
    auto fixed = std::make_shared<ScriptedJenkins>(ioc.get_executor());
    dispatcher->reconfigure(config, {{jenkins("ci", 1), fixed}});
    settle();
    EXPECT_EQ(fixed->probes, 1u);
    EXPECT_FALSE(queue->holds.count("ci"));
    EXPECT_EQ(fixed->requests.size(), 3u);
    for (const auto& [id, row] : queue->rows) {
        EXPECT_EQ(row.trigger.state, TriggerState::delivered) << id;
    }
    EXPECT_FALSE(dispatcher->status().front().held);
    EXPECT_FALSE(dispatcher->status().front().auth_failed);
}

// A reload that changes how a Jenkins held down is reached (here its url) probes it at once,
// instead of at the next step of the backoff (up to probe_max): the clock never moves. A reload
// that changes nothing of that waits for the backoff.
TEST_F(DispatcherTest, ReloadWhileDownProbesAtOnceAndDrains) {
    for (int i = 0; i < 3; ++i) queue->add("ci", clock->now());
    ci->then(Kind::unavailable, 0, "connect 127.0.0.1:9: Connection refused");
    start({{jenkins("ci", 1), ci}});
    ASSERT_TRUE(dispatcher->status().front().held);
    dispatcher->reconfigure(config, {{jenkins("ci", 1), ci}});
    settle();
    EXPECT_EQ(ci->probes, 0u) << "probed before its backoff, though nothing changed";
    auto fixed = std::make_shared<ScriptedJenkins>(ioc.get_executor());
    auto moved = jenkins("ci", 1);
    moved.url = "http://ci.example:8080/";
    dispatcher->reconfigure(config, {{moved, fixed}});
    settle();
    EXPECT_EQ(fixed->probes, 1u);
    EXPECT_FALSE(queue->holds.count("ci"));
    EXPECT_EQ(fixed->requests.size(), 3u);
    for (const auto& [id, row] : queue->rows) {
        EXPECT_EQ(row.trigger.state, TriggerState::delivered) << id;
    }
    EXPECT_FALSE(dispatcher->status().front().held);
}

TEST_F(DispatcherTest, ReloadWithCredentialsStillRefusedStaysAuthFailed) {
    for (int i = 0; i < 2; ++i) queue->add("ci", clock->now());
    ci->then(Kind::auth_failed, 401, "HTTP 401 Unauthorized");
    start({{jenkins("ci", 1), ci}});
    auto still_wrong = std::make_shared<ScriptedJenkins>(ioc.get_executor());
    still_wrong->then_probe(Kind::auth_failed, "HTTP 401 Unauthorized");
    dispatcher->reconfigure(config, {{jenkins("ci", 1), still_wrong}});
    settle();
    EXPECT_EQ(still_wrong->probes, 1u);
    EXPECT_TRUE(still_wrong->requests.empty());
    ASSERT_TRUE(queue->holds.count("ci"));
    EXPECT_TRUE(is_auth_failed(queue->holds.at("ci").hold));
    EXPECT_TRUE(dispatcher->status().front().auth_failed);
    for (const auto& [id, row] : queue->rows) {
        EXPECT_EQ(row.trigger.state, TriggerState::pending) << id;
    }
}

TEST_F(DispatcherTest, AnUnavailableJenkinsWhoseProbeIsRefusedBecomesAuthFailed) {
    queue->add("ci", clock->now());
    ci->then(Kind::unavailable, 0, "connect: refused");
    ci->then_probe(Kind::auth_failed, "HTTP 401 Unauthorized");
    start();
    EXPECT_FALSE(dispatcher->status().front().auth_failed);
    advance(1s);  // probe_initial
    EXPECT_EQ(ci->probes, 1u);
    EXPECT_TRUE(dispatcher->status().front().auth_failed);
    EXPECT_TRUE(is_auth_failed(queue->holds.at("ci").hold));
}

TEST_F(DispatcherTest, AnAuthFailedHoldOfAnotherInstanceHoldsThisOneToo) {
    queue->add("ci", clock->now());
    JenkinsHold hold;
    hold.reason = std::string(k_auth_failed_reason) + "HTTP 401 Unauthorized";
    hold.since = clock->now();
    hold.next_probe_at = clock->now() + 1h;
    queue->hold_by_other("ci", hold, "other-instance");
    start();
    advance(5s);
    EXPECT_TRUE(ci->requests.empty());
    EXPECT_TRUE(dispatcher->status().front().auth_failed);
}

TEST_F(DispatcherTest, AJenkinsNotContactedSinceStartIsNotReportedAsContacted) {
    start();
    EXPECT_FALSE(dispatcher->status().front().contacted);
    queue->add("ci", clock->now());
    dispatcher->wake();
    settle();
    EXPECT_TRUE(dispatcher->status().front().contacted);
}

TEST_F(DispatcherTest, ThrottledJenkinsIsPausedForRetryAfterThenOneAtATime) {
    for (int i = 0; i < 4; ++i) queue->add("ci", clock->now());
    ci->then(throttled_for(3s));
    start({{jenkins("ci", 1), ci}});
    ASSERT_EQ(ci->requests.size(), 1u);
    EXPECT_TRUE(dispatcher->status().front().throttled);
    advance(2900ms);
    EXPECT_EQ(ci->requests.size(), 1u);
    advance(200ms);
    EXPECT_EQ(ci->requests.size(), 5u);  // the 429'd one again, then the rest
    EXPECT_FALSE(dispatcher->status().front().throttled);
}

TEST_F(DispatcherTest, AHangingJenkinsDoesNotTakeAnotherOnesShare) {
    auto slow = std::make_shared<ScriptedJenkins>(ioc.get_executor());
    slow->set_hanging(true);
    for (int i = 0; i < 8; ++i) queue->add("slow", clock->now());
    queue->add("ci", clock->now());
    options.max_in_flight = 4;
    start({{jenkins("slow", 4), slow}, {jenkins("ci", 4), ci}});
    EXPECT_EQ(slow->waiting(), 2u);  // its reserved half; the other half stays for ci
    EXPECT_EQ(ci->requests.size(), 1u);
    slow->release();
    settle();
}

TEST_F(DispatcherTest, AnExceptionInARequestIsRetriedWithBackoffAndFreesTheSlot) {
    const auto first = queue->add("ci", clock->now());
    const auto second = queue->add("ci", clock->now());
    ci->then_throw();
    start({{jenkins("ci", 1), ci}});
    EXPECT_EQ(ci->requests.size(), 2u);  // the slot came back and the next one went out
    EXPECT_EQ(queue->rows.at(second).trigger.state, TriggerState::delivered);
    const auto& failed = queue->rows.at(first);
    EXPECT_EQ(failed.trigger.state, TriggerState::retrying);
    EXPECT_EQ(failed.trigger.attempts, 1);
    EXPECT_NE(failed.trigger.last_outcome.find("internal error"), std::string::npos);
    EXPECT_EQ(dispatcher->status().front().in_flight, 0u);
}

TEST_F(DispatcherTest, StoreFailuresDoNotStopTheLane) {
    queue->add("ci", clock->now());
    queue->fail_next = 3;
    start();
    EXPECT_TRUE(ci->requests.empty());
    advance(options.poll_interval * 3);
    EXPECT_EQ(ci->requests.size(), 1u);
}

TEST_F(DispatcherTest, StopReleasesTheClaimsOfRequestsStillInFlight) {
    const auto id = queue->add("ci", clock->now());
    ci->set_hanging(true);
    start();
    const auto claim = queue->rows.at(id).claim_id;
    stop(2s);
    EXPECT_EQ(queue->released, std::vector<std::string>{claim});
    EXPECT_TRUE(queue->rows.at(id).claim_id.empty());
    // Whatever the abandoned request brings back is stale now.
    ci->release();
    settle();
    EXPECT_TRUE(queue->completed.empty());
    dispatcher.reset();
}

// A store with a pool of connections (PostgreSQL): a request Jenkins answered has its outcome on
// one connection; stopping must not release its claim on another, or the outcome is refused as
// stale and the build Jenkins accepted is asked for again after the restart.
TEST_F(DispatcherTest, StopLeavesTheClaimOfAnAnsweredRequestToItsOutcome) {
    queue->outcomes_later = true;
    const auto id = queue->add("ci", clock->now());
    start();
    ASSERT_EQ(ci->requests.size(), 1u);  // answered at once; its outcome waits for the writer
    stop(2s);
    EXPECT_TRUE(queue->released.empty());
    EXPECT_EQ(queue->run_writer(), 1u);
    settle();
    EXPECT_EQ(queue->rows.at(id).trigger.state, TriggerState::delivered);
    EXPECT_TRUE(queue->stale.empty());
    dispatcher.reset();
}

// Three Jenkins share an overall limit of 4 (one slot reserved each, one shared), and all three
// ask for the shared slot before any claim comes back: one of them gets it. The others' extra
// claims go back to the store.
TEST_F(DispatcherTest, LanesAskingForTheSharedSlotTogetherStartOneRequestBetweenThem) {
    queue->one_writer = true;
    options.max_in_flight = 4;
    auto b = std::make_shared<ScriptedJenkins>(ioc.get_executor());
    auto c = std::make_shared<ScriptedJenkins>(ioc.get_executor());
    for (int i = 0; i < 8; ++i) {
        for (const char* name : {"ci", "b", "c"}) queue->add(name, clock->now());
    }
    for (auto* j : {ci.get(), b.get(), c.get()}) j->set_hanging(true);
    start({{jenkins("ci", 4), ci}, {jenkins("b", 4), b}, {jenkins("c", 4), c}});
    const auto at_jenkins = [&] { return ci->waiting() + b->waiting() + c->waiting(); };
    const auto claimed = [&] {
        std::size_t n = 0;
        for (const char* name : {"ci", "b", "c"}) n += queue->live_claims(name, clock->now());
        return n;
    };
    for (int round = 0; round < 3; ++round) {
        while (queue->run_writer() > 0) settle();
        EXPECT_EQ(at_jenkins(), 4u) << "round " << round;
        EXPECT_EQ(claimed(), 4u) << "round " << round;
        for (auto* j : {ci.get(), b.get(), c.get()}) j->release();
        settle();
    }
    for (auto* j : {ci.get(), b.get(), c.get()}) j->set_hanging(false);
    for (auto* j : {ci.get(), b.get(), c.get()}) j->release();
    while (queue->run_writer() > 0) settle();
    EXPECT_EQ(queue->completed.size(), 24u);
}

// A 429 that comes in while a claim is on its way pauses what that claim would start too.
TEST_F(DispatcherTest, A429WhileAClaimIsOnItsWayStartsNothingFromThatClaimDuringThePause) {
    queue->one_writer = true;
    for (int i = 0; i < 6; ++i) queue->add("ci", clock->now());
    ci->set_hanging(true);
    start({{jenkins("ci", 2), ci}});
    EXPECT_EQ(queue->run_writer(), 1u);  // the first claim
    settle();
    ASSERT_EQ(ci->waiting(), 2u);
    ci->release_first();  // accepted: its slot is free, and the lane claims for it
    settle();
    ci->then(throttled_for(30s));
    ci->release_first();  // 429 while that claim waits for the store
    settle();
    while (queue->run_writer() > 0) settle();
    EXPECT_EQ(ci->requests.size(), 2u) << "a request started during the pause";
    EXPECT_EQ(queue->live_claims("ci", clock->now()), 0u);
    ci->set_hanging(false);
    advance(30s);
    while (queue->run_writer() > 0) settle();
    EXPECT_GT(ci->requests.size(), 2u) << "nothing after the pause";
}

// A claim still on its way when the dispatcher stops (the store answers it afterwards): its
// trigger is given back at once, not sent to Jenkins after the stop.
TEST_F(DispatcherTest, AClaimAnsweredAfterStopIsReleasedNotDelivered) {
    queue->one_writer = true;
    const auto id = queue->add("ci", clock->now());
    start();
    ASSERT_EQ(queue->claims_asked, 1u);
    stop(0ms);
    EXPECT_EQ(queue->run_writer(), 1u);
    settle();
    EXPECT_TRUE(ci->requests.empty());
    EXPECT_EQ(queue->released.size(), 1u);
    EXPECT_TRUE(queue->rows.at(id).claim_id.empty());
    dispatcher.reset();
}

TEST_F(DispatcherTest, StopWaitsForRequestsThatFinishWithinTheGrace) {
    const auto id = queue->add("ci", clock->now());
    ci->set_hanging(true);
    start();
    bool stopped = false;
    begin_stop(5s, stopped);
    advance(1s);
    EXPECT_FALSE(stopped);
    ci->release();
    settle();
    advance(100ms);
    EXPECT_TRUE(stopped);
    EXPECT_EQ(queue->completed, std::vector<std::string>{id});
    EXPECT_TRUE(queue->released.empty());
    dispatcher.reset();
}

// The store has not answered the outcome in time (a busy pool): it may still commit, so the
// claim is not given back (a release committed first would let the trigger be claimed and sent
// again at once); it runs out if the outcome never commits.
TEST_F(DispatcherTest, AnOutcomeTheStoreAnswersLateIsNotReleasedAndNotSentAgain) {
    const LoggedWarnings logged;
    queue->outcomes_later = true;
    const auto id = queue->add("ci", clock->now());
    start({}, 20ms);  // the store's answers are awaited on a real timer
    ASSERT_EQ(ci->requests.size(), 1u);
    const auto gave_up = [&] { return logged.has("did not record the outcome"); };
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!gave_up() && std::chrono::steady_clock::now() < deadline) ioc.run_one_for(10ms);
    ASSERT_TRUE(gave_up());
    settle();
    EXPECT_TRUE(queue->released.empty());
    EXPECT_EQ(ci->requests.size(), 1u) << "sent again while its outcome was being recorded";
    EXPECT_EQ(queue->run_writer(), 1u);
    settle();
    EXPECT_EQ(queue->rows.at(id).trigger.state, TriggerState::delivered);
    EXPECT_TRUE(queue->stale.empty());
    EXPECT_EQ(ci->requests.size(), 1u);
}

// The store answers a claim after store_timeout (a stalled disk, a busy pool): nobody waits for
// that answer any more, so its triggers are given back at once and claimed again, instead of
// waiting, unsent and counted against max_in_flight, until their lease runs out.
TEST_F(DispatcherTest, AClaimTheStoreAnswersLateIsGivenBackAndSentWithoutWaitingForItsLease) {
    const LoggedWarnings logged;
    queue->one_writer = true;
    const auto id = queue->add("ci", clock->now());
    start({}, 20ms);  // the store's answers are awaited on a real timer
    ASSERT_EQ(queue->claims_asked, 1u);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!logged.has("cannot claim due triggers") &&
           std::chrono::steady_clock::now() < deadline) {
        ioc.run_one_for(10ms);
    }
    ASSERT_TRUE(logged.has("cannot claim due triggers"));
    EXPECT_TRUE(ci->requests.empty());

    queue->one_writer = false;           // the store is back: what is asked from now on is answered
    ASSERT_EQ(queue->run_writer(), 1u);  // the claim asked before, answered late
    settle();
    EXPECT_TRUE(logged.has("the store answered a claim of 1 trigger(s) after store_timeout"));
    ASSERT_EQ(queue->released.size(), 1u);
    ASSERT_EQ(ci->requests.size(), 1u) << "the trigger waited for its lease to run out";
    ci->release();
    settle();
    EXPECT_EQ(queue->rows.at(id).trigger.state, TriggerState::delivered);
}

// A reload's server.store_timeout bounds the store calls asked after it: here the dispatcher
// started with a minute, and a reload made it 20 ms before its first claim.
TEST_F(DispatcherTest, AReloadedStoreTimeoutBoundsTheNextClaims) {
    const LoggedWarnings logged;
    queue->one_writer = true;
    queue->add("ci", clock->now());
    config->jenkins.push_back(jenkins("ci"));
    dispatcher = std::make_shared<Dispatcher>(ioc.get_executor(), queue, options, 60s,
                                              null_metrics(), clock);
    dispatcher->configure(config, {{jenkins("ci"), ci}});
    auto reloaded = std::make_shared<Config>(*config);
    reloaded->server.store_timeout = 20ms;
    dispatcher->reconfigure(reloaded, {{jenkins("ci"), ci}});
    dispatcher->start();
    settle();
    ASSERT_EQ(queue->claims_asked, 1u);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!logged.has("cannot claim due triggers") &&
           std::chrono::steady_clock::now() < deadline) {
        ioc.run_one_for(10ms);
    }
    EXPECT_TRUE(logged.has("cannot claim due triggers")) << "the claim still waits a minute";
    queue->one_writer = false;
    ASSERT_GE(queue->run_writer(), 1u);  // the claim asked before, answered late
    settle();
    EXPECT_TRUE(logged.has("after store_timeout (20 ms)"));
}

// The store's answer comes just after the wait for it timed out, before the dispatcher gave up on
// it: it reached nobody, and its claims are given back too. (The answer is let in from the log
// line the dispatcher writes between the two.)
TEST_F(DispatcherTest, AClaimAnsweredAsTheDispatcherGivesUpOnItIsGivenBackToo) {
    class OnLine final : public spdlog::sinks::base_sink<std::mutex> {
      public:
        explicit OnLine(std::function<void(std::string_view)> f) : f_(std::move(f)) {}

      protected:
        void sink_it_(const spdlog::details::log_msg& msg) override {
            f_(std::string_view(msg.payload.data(), msg.payload.size()));
        }
        void flush_() override {}

      private:
        std::function<void(std::string_view)> f_;
    };
    std::vector<std::string> lines;
    bool answered = false;
    auto sink = std::make_shared<OnLine>([&](std::string_view line) {
        lines.emplace_back(line);
        if (!answered && line.find("cannot claim due triggers") != std::string_view::npos) {
            answered = true;
            queue->one_writer = false;
            EXPECT_EQ(queue->run_writer(), 1u);  // the claim asked before, answered now
        }
    });
    const auto previous = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
    struct Restore {
        std::shared_ptr<spdlog::logger> logger;
        ~Restore() { spdlog::set_default_logger(logger); }
    } restore{previous};

    queue->one_writer = true;
    const auto id = queue->add("ci", clock->now());
    start({}, 20ms);  // the store's answers are awaited on a real timer
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!answered && std::chrono::steady_clock::now() < deadline) ioc.run_one_for(10ms);
    ASSERT_TRUE(answered);
    settle();
    ASSERT_EQ(queue->released.size(), 1u) << ::testing::PrintToString(lines);
    ASSERT_EQ(ci->requests.size(), 1u) << "the trigger waited for its lease to run out";
    ci->release();
    settle();
    EXPECT_EQ(queue->rows.at(id).trigger.state, TriggerState::delivered);
}

// A grace longer than a lease: the claims of the requests it waits for are renewed all along,
// so no other instance takes their triggers over and sends them again meanwhile.
TEST_F(DispatcherTest, ClaimsAreRenewedWhileStopWaitsForTheirRequests) {
    const auto id = queue->add("ci", clock->now());
    ci->set_hanging(true);
    start();
    const auto claim = queue->rows.at(id).claim_id;
    ASSERT_FALSE(claim.empty());
    bool stopped = false;
    begin_stop(options.claim_lease * 3, stopped);
    advance(options.claim_lease * 2);
    EXPECT_FALSE(stopped);
    EXPECT_EQ(queue->rows.at(id).claim_id, claim);
    EXPECT_GT(queue->rows.at(id).claim_expires, clock->now())
        << "the claim ran out during the grace";
    ci->release();
    settle();
    advance(100ms);
    EXPECT_TRUE(stopped);
    EXPECT_EQ(queue->completed, std::vector<std::string>{id});
    // Stopped, with nothing in flight: no renewal goes out any more.
    const auto renewals = queue->renewed.size();
    advance(options.claim_renew_interval * 3);
    EXPECT_EQ(queue->renewed.size(), renewals);
    dispatcher.reset();
}

// Past the grace the claims are given back, and no longer renewed though their requests run.
TEST_F(DispatcherTest, ClaimsGivenBackAfterTheGraceAreNotRenewed) {
    const auto id = queue->add("ci", clock->now());
    ci->set_hanging(true);
    start();
    stop(options.claim_renew_interval / 2);
    EXPECT_EQ(queue->released.size(), 1u);
    const auto renewals = queue->renewed.size();
    advance(options.claim_renew_interval * 3);
    EXPECT_EQ(queue->renewed.size(), renewals);
    EXPECT_TRUE(queue->rows.at(id).claim_id.empty());
    ci->release();
    settle();
    dispatcher.reset();
}

}  // namespace
}  // namespace hookrelay::dispatch

namespace hookrelay::dispatch {
namespace {

using test::FakeQueue;
using test::LoggedWarnings;

class DispatcherFollowTest : public DispatcherTest {};

// What comes after delivery starts with it: the queue item to follow, first poll after
// follow_poll_initial, and the status that tells the commit it is queued.
TEST_F(DispatcherFollowTest, DeliveredTriggerIsRecordedForFollowingAndSaysQueued) {
    const auto id = queue->add("ci", clock->now());
    auto& row = queue->rows.at(id);
    row.trigger.request.follow = FollowMode::finished;
    row.trigger.request.status =
        StatusTarget{"acme/app", std::string(40, 'c'), "hookrelay/r", "main"};
    JenkinsOutcome merged;
    merged.kind = Kind::merged;
    merged.http_status = 303;
    merged.queue_url = "http://ci/queue/item/31/";
    ci->then(merged);
    const auto started = clock->now();
    start();
    const auto& t = queue->rows.at(id).trigger;
    ASSERT_EQ(t.state, TriggerState::delivered);
    EXPECT_EQ(t.build.queue_id, 31);
    EXPECT_TRUE(t.build.merged);
    EXPECT_EQ(t.build.queued_at, started);
    EXPECT_TRUE(t.following);
    EXPECT_EQ(t.next_attempt_at, started + jenkins("ci").follow_poll_initial);
    EXPECT_EQ(t.status.wanted.state, "pending");
    EXPECT_EQ(t.status.wanted.description,
              "Queued in Jenkins ci (merged into a build already queued)");
}

TEST_F(DispatcherFollowTest, DeadTriggerWishesANotDeliveredStatus) {
    const auto id = queue->add("ci", clock->now());
    queue->rows.at(id).trigger.request.status =
        StatusTarget{"acme/app", std::string(40, 'c'), "hookrelay/r", "main"};
    ci->then(Kind::permanent, 404, "HTTP 404 Not Found");
    start();
    const auto& t = queue->rows.at(id).trigger;
    ASSERT_EQ(t.state, TriggerState::dead);
    EXPECT_EQ(t.status.wanted.state, "error");
    // Names the job Jenkins does not have; the history says what to do.
    EXPECT_EQ(t.status.wanted.description,
              "Not delivered: permanent failure: HTTP 404 Not Found: Jenkins ci has no job job/t1");
    const auto& history = queue->rows.at(id).history;
    ASSERT_FALSE(history.empty());
    EXPECT_NE(history.back().outcome.find("a job not created yet: create it and replay"),
              std::string::npos)
        << history.back().outcome;
}

}  // namespace
}  // namespace hookrelay::dispatch

// --- Multibranch projects, scans and coalescing ---------------------------------------------

namespace hookrelay::dispatch {
namespace {

class AwareDispatchTest : public DispatcherTest {
  protected:
    // A trigger of the branch `branch` of multibranch project acme/app.
    std::string add_branch(const std::string& branch) {
        const auto id = queue->add("ci", clock->now());
        auto& r = queue->rows.at(id).trigger.request;
        r.job = {"acme", "app", branch};
        r.multibranch = 2;
        return id;
    }
    std::string add_scan() {
        const auto id = queue->add("ci", clock->now());
        auto& r = queue->rows.at(id).trigger.request;
        r.job = {"acme", "app"};
        r.scan_only = true;
        return id;
    }
    // A push to main under `coalesce:` (the same scope for every one).
    std::string add_coalesced(bool cancel = false) {
        const auto id = queue->add("ci", clock->now());
        auto& r = queue->rows.at(id).trigger.request;
        r.job = {"acme", "app"};
        r.coalesce = "acme/app:main";
        r.cancel_superseded = cancel;
        return id;
    }
    JenkinsConfig multibranch_jenkins() {
        auto j = jenkins("ci");
        j.scan_interval = 60s;
        j.branch_poll = 5s;
        j.branch_wait = 30s;
        return j;
    }
    static JenkinsOutcome queued(int item) {
        JenkinsOutcome o;
        o.kind = Kind::queued;
        o.http_status = 201;
        o.detail = "HTTP 201 Created";
        o.queue_url = "http://ci/queue/item/" + std::to_string(item) + "/";
        return o;
    }
};

TEST_F(AwareDispatchTest, AMissingBranchJobAsksForAScanAndIsTriedAgainUntilItAppears) {
    const auto id = add_branch("feature/x");
    ci->then(Kind::permanent, 404, "HTTP 404 Not Found");
    ci->then(queued(7));
    start({{multibranch_jenkins(), ci}});
    ASSERT_EQ(ci->scans.size(), 1u);
    EXPECT_EQ(ci->scans[0], (std::vector<std::string>{"acme", "app"}));
    const auto& row = queue->rows.at(id);
    EXPECT_EQ(row.trigger.state, TriggerState::pending);
    EXPECT_EQ(row.trigger.attempts, 0);  // waiting for the branch uses no retry budget
    EXPECT_NE(row.trigger.last_outcome.find("waiting for Jenkins to create the job of branch "
                                            "'feature/x' in 'acme/app' (scan of acme/app "
                                            "requested)"),
              std::string::npos)
        << row.trigger.last_outcome;
    advance(4s);
    EXPECT_EQ(ci->requests.size(), 1u);
    advance(1s);  // branch_poll
    ASSERT_EQ(ci->requests.size(), 2u);
    EXPECT_EQ(queue->rows.at(id).trigger.state, TriggerState::delivered);
    EXPECT_EQ(ci->scans.size(), 1u);
}

TEST_F(AwareDispatchTest, BranchesOfOneProjectMissingTogetherMakeOneScan) {
    add_branch("a");
    add_branch("b");
    add_branch("c");
    for (int i = 0; i < 3; ++i) ci->then(Kind::permanent, 404, "HTTP 404 Not Found");
    start({{multibranch_jenkins(), ci}});
    EXPECT_EQ(ci->requests.size(), 3u);
    EXPECT_EQ(ci->scans.size(), 1u);
    EXPECT_EQ(queue->scans_granted, 1u);
}

TEST_F(AwareDispatchTest, ABranchJobThatNeverAppearsIsDeadAfterBranchWait) {
    const auto id = add_branch("gone");
    for (int i = 0; i < 10; ++i) ci->then(Kind::permanent, 404, "HTTP 404 Not Found");
    start({{multibranch_jenkins(), ci}});
    for (int i = 0; i < 6; ++i) advance(5s);
    const auto& t = queue->rows.at(id).trigger;
    EXPECT_EQ(t.state, TriggerState::dead);
    EXPECT_NE(t.last_outcome.find("the job of branch 'gone' did not appear in multibranch "
                                  "project 'acme/app' within 30s"),
              std::string::npos)
        << t.last_outcome;
    // One scan: the later tries were covered by it (requested after the push).
    EXPECT_EQ(ci->scans.size(), 1u);
}

TEST_F(AwareDispatchTest, AScanJenkinsNeverTookCoversNobodyAndIsRequestedAgain) {
    const auto id = add_branch("x");
    ci->then(Kind::permanent, 404, "HTTP 404 Not Found");
    ci->then_scan(Kind::unavailable, 503, "HTTP 503 Service Unavailable");
    ci->then(Kind::permanent, 404, "HTTP 404 Not Found");
    start({{multibranch_jenkins(), ci}});
    ASSERT_EQ(ci->scans.size(), 1u);
    EXPECT_TRUE(queue->scans.empty());  // the failed scan is forgotten
    EXPECT_EQ(queue->rows.at(id).trigger.state, TriggerState::pending);
    // The hold's probe finds Jenkins back; the branch job is tried and a scan requested again.
    advance(1s);
    settle();
    EXPECT_EQ(ci->scans.size(), 2u);
    EXPECT_EQ(queue->rows.at(id).trigger.state, TriggerState::pending);
}

TEST_F(AwareDispatchTest, APushOlderThanBranchWaitStillGetsItsScan) {
    const auto id = add_branch("late");
    queue->rows.at(id).trigger.created_at = clock->now() - 2h;  // Jenkins was down all night
    ci->then(Kind::permanent, 404, "HTTP 404 Not Found");
    start({{multibranch_jenkins(), ci}});
    EXPECT_EQ(ci->scans.size(), 1u);
    EXPECT_EQ(queue->rows.at(id).trigger.state, TriggerState::pending);
}

TEST_F(AwareDispatchTest, AProjectThatCannotBeScannedMakesTheTriggerDeadAtOnce) {
    const auto id = add_branch("x");
    ci->then(Kind::permanent, 404, "HTTP 404 Not Found");
    ci->then_scan(Kind::permanent, 500,
                  "HTTP 500: acme/app is not a multibranch project (cannot be recomputed)");
    start({{multibranch_jenkins(), ci}});
    const auto& t = queue->rows.at(id).trigger;
    EXPECT_EQ(t.state, TriggerState::dead);
    EXPECT_NE(t.last_outcome.find("cannot be scanned"), std::string::npos) << t.last_outcome;
}

TEST_F(AwareDispatchTest, ScanTriggersWithinTheIntervalMakeOneScanNowAndOneAtItsEnd) {
    const auto first = add_scan();
    start({{multibranch_jenkins(), ci}});
    ASSERT_EQ(ci->scans.size(), 1u);
    EXPECT_EQ(queue->rows.at(first).trigger.state, TriggerState::delivered);
    EXPECT_TRUE(ci->requests.empty());  // nothing built
    advance(10s);
    const auto second = add_scan();  // e.g. a branch deleted after the scan began
    const auto third = add_scan();
    dispatcher->wake();
    settle();
    EXPECT_EQ(ci->scans.size(), 1u);
    EXPECT_EQ(queue->rows.at(second).trigger.state, TriggerState::pending);
    advance(50s);  // the interval since the first scan has passed
    EXPECT_EQ(ci->scans.size(), 2u);
    EXPECT_EQ(queue->rows.at(second).trigger.state, TriggerState::delivered);
    EXPECT_EQ(queue->rows.at(third).trigger.state, TriggerState::delivered);
    EXPECT_NE(queue->rows.at(third).trigger.last_outcome.find("covered by the scan"),
              std::string::npos);
}

TEST_F(AwareDispatchTest, AnAttemptThatFailsWhileANewerTriggerWaitsIsSuperseded) {
    const auto older = add_coalesced();
    ci->set_hanging(true);
    start();
    ASSERT_EQ(ci->waiting(), 1u);
    const auto newer = add_coalesced();
    queue->rows.at(newer).trigger.next_attempt_at = clock->now() + 1h;  // not claimed yet
    ci->then(Kind::server_error, 500, "HTTP 500");
    ci->release();
    settle();
    const auto& t = queue->rows.at(older).trigger;
    EXPECT_EQ(t.state, TriggerState::superseded);
    EXPECT_EQ(t.superseded_by, newer);
}

TEST_F(AwareDispatchTest, CancelSupersededCancelsTheOlderQueueItemThatHasNotStarted) {
    const auto older = add_coalesced(true);
    auto& o = queue->rows.at(older).trigger;
    o.state = TriggerState::delivered;
    o.build.queue_id = 5;
    o.build.queue_url = "http://ci/queue/item/5/";
    const auto started = add_coalesced(true);
    auto& s = queue->rows.at(started).trigger;
    s.state = TriggerState::delivered;
    s.build.queue_id = 4;
    s.build.number = 12;  // already building: never touched
    const auto newer = add_coalesced(true);
    ci->then(queued(6));
    start();
    EXPECT_EQ(queue->rows.at(newer).trigger.state, TriggerState::delivered);
    EXPECT_EQ(ci->cancels, (std::vector<std::int64_t>{5}));
    const auto& history = queue->rows.at(older).history;
    ASSERT_FALSE(history.empty());
    EXPECT_NE(history.back().outcome.find("queue item 5 cancelled in Jenkins: superseded by "
                                          "trigger " +
                                          newer),
              std::string::npos)
        << history.back().outcome;
}

TEST_F(AwareDispatchTest, WithoutCancelSupersededNothingIsCancelled) {
    const auto older = add_coalesced(false);
    auto& o = queue->rows.at(older).trigger;
    o.state = TriggerState::delivered;
    o.build.queue_id = 5;
    add_coalesced(false);
    ci->then(queued(6));
    start();
    EXPECT_TRUE(ci->cancels.empty());
}

}  // namespace
}  // namespace hookrelay::dispatch
