// Contract: the admin queries. Listing (filters, cursor, cap), showing a delivery with its whole
// history, replays (by id, by query, dry run), redelivery, backlog, instances.
#include "store/codec.hpp"
#include "store/contract/contract.hpp"

#include <algorithm>
#include <array>

namespace hookrelay::store::contract {
namespace {

/// The delivery ids of a page, in its order.
std::vector<std::string> delivery_ids(const DeliveryPage& page) {
    std::vector<std::string> out;
    for (const auto& item : page.items) out.push_back(item.delivery_id);
    return out;
}

/// Three deliveries, oldest first: d-1 (delivered + dead), d-2 (pending + retrying), d-3 (no
/// triggers). Returns the trigger ids of d-1 and d-2, in that order.
Ids three_deliveries(Store& store, TimePoint base) {
    const auto first = accept(store, delivery("d-1", base), {trigger(), trigger("ci", "test")});
    const auto second = accept(store, delivery("d-2", base + 1s), {trigger(), trigger("nightly")});
    accept(store, delivery("d-3", base + 2s), {});
    settle(store, "ci", finish(first.trigger_ids[0], TriggerState::delivered, base + 10s));
    settle(store, "ci", finish(first.trigger_ids[1], TriggerState::dead, base + 11s));
    settle(store, "nightly", retry(second.trigger_ids[1], base + 1min, base + 12s));
    return {first.trigger_ids[0], first.trigger_ids[1], second.trigger_ids[0],
            second.trigger_ids[1]};
}

TEST_P(StoreContract, ListsNewestFirstWithCountsPerState) {
    three_deliveries(a(), base_);

    const auto page = list(b());
    ASSERT_EQ(delivery_ids(page), (std::vector<std::string>{"d-3", "d-2", "d-1"}));
    EXPECT_FALSE(page.next_before_seq);
    EXPECT_GT(page.items[0].seq, page.items[1].seq);
    EXPECT_GT(page.items[1].seq, page.items[2].seq);

    const DeliverySummary& d3 = page.items[0];
    EXPECT_EQ(d3.source, "github-main");
    EXPECT_EQ(d3.provider, Provider::github);
    EXPECT_EQ(d3.kind, EventKind::push);
    EXPECT_EQ(d3.forge_event, "push");
    EXPECT_EQ(d3.received_at, base_ + 2s);
    EXPECT_EQ((std::array{d3.pending, d3.delivered, d3.dead}),
              (std::array<std::size_t, 3>{0, 0, 0}));
    const DeliverySummary& d2 = page.items[1];
    EXPECT_EQ((std::array{d2.pending, d2.delivered, d2.dead}),
              (std::array<std::size_t, 3>{2, 0, 0}));
    const DeliverySummary& d1 = page.items[2];
    EXPECT_EQ((std::array{d1.pending, d1.delivered, d1.dead}),
              (std::array<std::size_t, 3>{0, 1, 1}));
}

TEST_P(StoreContract, ListsADeliveryWithoutForgeIdWithAnEmptyId) {
    accept(a(), delivery("", base_), {trigger()});
    const auto page = list(a());
    ASSERT_EQ(page.items.size(), 1u);
    EXPECT_EQ(page.items[0].delivery_id, "");
    EXPECT_EQ(page.items[0].pending, 1u);
}

TEST_P(StoreContract, ListFiltersBySourceExactly) {
    accept(a(), delivery("a", base_, "github"), {});
    accept(a(), delivery("b", base_, "github-main"), {});
    accept(a(), delivery("c", base_, "gitlab"), {});
    accept(a(), delivery("d", base_, "github"), {});

    DeliveryQuery query;
    query.source = "github";
    EXPECT_EQ(delivery_ids(list(a(), query)), (std::vector<std::string>{"d", "a"}));
    query.source = "git";
    EXPECT_TRUE(list(a(), query).items.empty());
}

TEST_P(StoreContract, ListFiltersByExactTriggerState) {
    const Ids ids = three_deliveries(a(), base_);

    DeliveryQuery query;
    query.state = TriggerState::pending;
    EXPECT_EQ(delivery_ids(list(a(), query)), (std::vector<std::string>{"d-2"}));
    query.state = TriggerState::retrying;
    EXPECT_EQ(delivery_ids(list(a(), query)), (std::vector<std::string>{"d-2"}));
    query.state = TriggerState::delivered;
    EXPECT_EQ(delivery_ids(list(a(), query)), (std::vector<std::string>{"d-1"}));
    query.state = TriggerState::dead;
    const auto dead = list(a(), query);
    ASSERT_EQ(delivery_ids(dead), (std::vector<std::string>{"d-1"}));
    // The counts still cover every trigger of the delivery, not only the matching ones.
    EXPECT_EQ(dead.items[0].delivered, 1u);
    EXPECT_EQ(dead.items[0].dead, 1u);

    // Pending means pending only: once d-2's pending trigger is delivered, only a retrying one
    // is left.
    settle(a(), "ci", finish(ids[2], TriggerState::delivered, base_ + 20s));
    query.state = TriggerState::pending;
    EXPECT_TRUE(list(a(), query).items.empty());
    query.state = TriggerState::retrying;
    EXPECT_EQ(delivery_ids(list(a(), query)), (std::vector<std::string>{"d-2"}));
}

TEST_P(StoreContract, ListFiltersBySinceInclusively) {
    three_deliveries(a(), base_);
    DeliveryQuery query;
    query.since = base_ + 1s;
    EXPECT_EQ(delivery_ids(list(a(), query)), (std::vector<std::string>{"d-3", "d-2"}));
    query.since = base_ + 1h;
    EXPECT_TRUE(list(a(), query).items.empty());
}

// The clock stepped back after d-late and forward again: ids and receive times disagree. `since`
// still lists exactly the deliveries received at or after it, newest first, to the millisecond,
// with any filter and page by page.
TEST_P(StoreContract, ListSinceIsExactWhenTheClockSteppedBack) {
    accept(a(), delivery("d-early", base_), {trigger()});
    accept(a(), delivery("d-late", base_ + 10s), {trigger()});
    accept(a(), delivery("d-stepped-back", base_ + 2s), {});
    accept(a(), delivery("d-latest", base_ + 20s), {trigger()});
    const auto since = [&](TimePoint at) {
        DeliveryQuery query;
        query.since = at;
        return delivery_ids(list(a(), query));
    };
    EXPECT_EQ(since(base_ + 2s),
              (std::vector<std::string>{"d-latest", "d-stepped-back", "d-late"}));
    EXPECT_EQ(since(base_ + 5s), (std::vector<std::string>{"d-latest", "d-late"}));
    EXPECT_EQ(since(base_ + 10s), (std::vector<std::string>{"d-latest", "d-late"}));
    EXPECT_EQ(since(base_ + 10s + 1ms), (std::vector<std::string>{"d-latest"}));
    EXPECT_TRUE(since(base_ + 20s + 1ms).empty());

    DeliveryQuery query;
    query.since = base_ + 2s;
    query.outcome = "unmatched";
    EXPECT_EQ(delivery_ids(list(a(), query)), (std::vector<std::string>{"d-stepped-back"}));
    query.outcome.clear();
    query.state = TriggerState::pending;
    EXPECT_EQ(delivery_ids(list(a(), query)), (std::vector<std::string>{"d-latest", "d-late"}));
    query.state.reset();
    query.limit = 1;
    std::vector<std::string> paged;
    for (;;) {
        const auto page = list(a(), query);
        for (const auto& item : page.items) paged.push_back(item.delivery_id);
        if (!page.next_before_seq) break;
        query.before_seq = page.next_before_seq;
    }
    EXPECT_EQ(paged, (std::vector<std::string>{"d-latest", "d-stepped-back", "d-late"}));
}

TEST_P(StoreContract, ListCombinesFilters) {
    accept(a(), delivery("old", base_, "github"), {trigger()});
    accept(a(), delivery("other-source", base_ + 1s, "gitlab"), {trigger()});
    accept(a(), delivery("no-triggers", base_ + 1s, "github"), {});
    accept(a(), delivery("match", base_ + 1s, "github"), {trigger()});

    DeliveryQuery query;
    query.source = "github";
    query.state = TriggerState::pending;
    query.since = base_ + 1s;
    EXPECT_EQ(delivery_ids(list(a(), query)), (std::vector<std::string>{"match"}));
}

TEST_P(StoreContract, ListPagesThroughEverythingWithTheCursor) {
    std::vector<std::string> all;
    for (int i = 0; i < 7; ++i) {
        all.push_back("d-" + std::to_string(i));
        accept(i % 2 == 0 ? a() : b(), delivery(all.back(), base_), {trigger()});
    }
    std::reverse(all.begin(), all.end());

    for (const bool by_state : {false, true}) {
        SCOPED_TRACE(by_state ? "filtered by state" : "unfiltered");
        DeliveryQuery query;
        query.limit = 3;
        if (by_state) query.state = TriggerState::pending;
        std::vector<std::string> seen;
        std::vector<std::size_t> sizes;
        for (;;) {
            const auto page = list(a(), query);
            sizes.push_back(page.items.size());
            for (const auto& item : page.items) seen.push_back(item.delivery_id);
            if (!page.next_before_seq) break;
            ASSERT_EQ(*page.next_before_seq, page.items.back().seq);
            query.before_seq = page.next_before_seq;
        }
        EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 3, 1}));
        EXPECT_EQ(seen, all);
    }
}

TEST_P(StoreContract, AFullLastPageIsFollowedByAnEmptyOne) {
    accept(a(), delivery("d-1", base_), {});
    accept(a(), delivery("d-2", base_), {});
    DeliveryQuery query;
    query.limit = 2;
    const auto page = list(a(), query);
    ASSERT_EQ(page.items.size(), 2u);
    ASSERT_TRUE(page.next_before_seq);
    query.before_seq = page.next_before_seq;
    const auto next = list(a(), query);
    EXPECT_TRUE(next.items.empty());
    EXPECT_FALSE(next.next_before_seq);
}

TEST_P(StoreContract, ListLimitZeroAnswersAnEmptyPage) {
    accept(a(), delivery("d-1", base_), {});
    DeliveryQuery query;
    query.limit = 0;
    const auto page = list(a(), query);
    EXPECT_TRUE(page.items.empty());
    EXPECT_FALSE(page.next_before_seq);
}

TEST_P(StoreContract, ListCapsThePageAtAThousand) {
    constexpr std::size_t k_total = 1005;
    // Submitted without waiting in between, so they share a few group commits.
    std::vector<std::future<result<Receipt>>> answers;
    for (std::size_t i = 0; i < k_total; ++i) {
        auto promise = std::make_shared<std::promise<result<Receipt>>>();
        answers.push_back(promise->get_future());
        a().submit(delivery("d-" + std::to_string(i), base_), {},
                   [promise](result<Receipt> r) { promise->set_value(std::move(r)); });
    }
    for (auto& answer : answers) {
        ASSERT_EQ(answer.wait_for(k_deadline), std::future_status::ready);
        ASSERT_TRUE(answer.get());
    }
    DeliveryQuery query;
    query.limit = 5000;
    const auto page = list(a(), query);
    EXPECT_EQ(page.items.size(), 1000u);
    ASSERT_TRUE(page.next_before_seq);
    query.before_seq = page.next_before_seq;
    EXPECT_EQ(list(a(), query).items.size(), 5u);
}

TEST_P(StoreContract, GetsEverythingStoredAboutADelivery) {
    const Ids ids = three_deliveries(a(), base_);

    const auto detail = get(b(), "github-main", "d-1");
    ASSERT_TRUE(detail);
    EXPECT_EQ(detail->summary.delivery_id, "d-1");
    EXPECT_EQ(detail->summary.source, "github-main");
    EXPECT_EQ(detail->summary.received_at, base_);
    EXPECT_EQ(detail->summary.delivered, 1u);
    EXPECT_EQ(detail->summary.dead, 1u);
    EXPECT_EQ(detail->summary.pending, 0u);
    EXPECT_EQ(detail->headers, (Pairs{{"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", "d-1"}}));
    EXPECT_EQ(detail->body, std::optional<std::string>(R"({"ref":"refs/heads/main"})"));
    EXPECT_EQ(detail->body_sha256.size(), 64u);

    ASSERT_EQ(detail->triggers.size(), 2u);
    const auto& delivered = detail->triggers[0];
    EXPECT_EQ(delivered.trigger.id, ids[0]);
    EXPECT_EQ(delivered.trigger.source, "github-main");
    EXPECT_EQ(delivered.trigger.delivery_id, "d-1");
    EXPECT_EQ(delivered.trigger.request.rule, "build");
    EXPECT_EQ(delivered.trigger.request.jenkins, "ci");
    EXPECT_EQ(delivered.trigger.request.job,
              (std::vector<std::string>{"acme", "app", "feature/x"}));
    EXPECT_EQ(delivered.trigger.request.parameters, (Pairs{{"BRANCH", "main"}, {"SHA", "abc123"}}));
    EXPECT_EQ(delivered.trigger.request.cause, "push to acme/app");
    EXPECT_EQ(delivered.trigger.state, TriggerState::delivered);
    EXPECT_EQ(delivered.trigger.attempts, 1);
    EXPECT_EQ(delivered.trigger.created_at, base_);
    EXPECT_EQ(delivered.trigger.last_outcome, "queued");
    EXPECT_EQ(delivered.trigger.queue_url, "http://jenkins/queue/item/7/");
    EXPECT_EQ(delivered.claimed_by, "");
    // updated_at is the store's wall clock at the outcome.
    EXPECT_GE(delivered.updated_at, base_);
    EXPECT_LE(delivered.updated_at, Clock::now());
    ASSERT_EQ(delivered.attempts.size(), 1u);
    EXPECT_EQ(delivered.attempts[0].outcome, "queued");
    EXPECT_EQ(delivered.attempts[0].http_status, 201);
    EXPECT_EQ(delivered.attempts[0].at, base_ + 10s);
    EXPECT_EQ(delivered.attempts[0].duration, 15ms);
    EXPECT_EQ(delivered.attempts[0].instance, k_instance_a);

    const auto& dead = detail->triggers[1];
    EXPECT_EQ(dead.trigger.id, ids[1]);
    EXPECT_EQ(dead.trigger.request.rule, "test");
    EXPECT_EQ(dead.trigger.state, TriggerState::dead);
    ASSERT_EQ(dead.attempts.size(), 1u);
    EXPECT_EQ(dead.attempts[0].outcome, "HTTP 404");
}

TEST_P(StoreContract, GetShowsWhichInstanceIsAttemptingATrigger) {
    accept(a(), delivery("d-1", base_), {trigger(), trigger("other")});
    claim(b(), "ci", Clock::now(), 10, 0, 1h);
    const auto detail = get(a(), "", "d-1");
    ASSERT_TRUE(detail);
    EXPECT_EQ(detail->triggers.at(0).claimed_by, k_instance_b);
    EXPECT_EQ(detail->triggers.at(1).claimed_by, "");
}

TEST_P(StoreContract, HistoryIsOldestFirst) {
    const auto id = accept(a(), delivery("d-1", base_), {trigger()}).trigger_ids[0];
    settle(a(), "ci", retry(id, base_ + 1min, base_ + 1s));
    settle(a(), "ci", retry(id, base_ + 2min, base_ + 1min));
    settle(a(), "ci", finish(id, TriggerState::delivered, base_ + 2min));

    const auto h = history_of(a(), "d-1", id);
    ASSERT_EQ(h.attempts.size(), 3u);
    EXPECT_EQ(h.attempts[0].at, base_ + 1s);
    EXPECT_EQ(h.attempts[1].at, base_ + 1min);
    EXPECT_EQ(h.attempts[2].outcome, "queued");
    EXPECT_EQ(h.trigger.attempts, 3);
}

TEST_P(StoreContract, GetWithoutSourceTakesTheNewestOfThatId) {
    accept(a(), delivery("same", base_, "github"), {});
    accept(a(), delivery("same", base_ + 1s, "gitlab"), {});

    const auto newest = get(a(), "", "same");
    ASSERT_TRUE(newest);
    EXPECT_EQ(newest->summary.source, "gitlab");
    const auto older = get(a(), "github", "same");
    ASSERT_TRUE(older);
    EXPECT_EQ(older->summary.source, "github");
    EXPECT_EQ(older->summary.received_at, base_);
}

TEST_P(StoreContract, GetsByStoreSeq) {
    three_deliveries(a(), base_);
    const auto page = list(a());
    ASSERT_EQ(page.items.size(), 3u);
    const std::string seq = "#" + std::to_string(page.items[1].seq);

    const auto by_seq = get(a(), "", seq);
    ASSERT_TRUE(by_seq);
    EXPECT_EQ(by_seq->summary.delivery_id, "d-2");
    EXPECT_EQ(by_seq->triggers.size(), 2u);
    EXPECT_TRUE(get(a(), "github-main", seq));
    EXPECT_FALSE(get(a(), "gitlab", seq));  // a given source must match
    EXPECT_FALSE(get(a(), "", "#999999999"));
}

TEST_P(StoreContract, GetsTheDeliveryOfATrigger) {
    const auto ids = three_deliveries(a(), base_);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const auto d = get_of_trigger(b(), ids[i]);
        ASSERT_TRUE(d) << ids[i];
        EXPECT_EQ(d->summary.delivery_id, i < 2 ? "d-1" : "d-2");
        ASSERT_EQ(d->triggers.size(), 2u);
        EXPECT_EQ(d->triggers[i % 2].trigger.id, ids[i]);
        ASSERT_TRUE(d->body);
        EXPECT_EQ(d->body, get(b(), "", d->summary.delivery_id)->body);
    }
    EXPECT_FALSE(get_of_trigger(b(), "0190b2c4-0000-7000-8000-000000000000"));
    EXPECT_FALSE(get_of_trigger(b(), ""));
    EXPECT_FALSE(get_of_trigger(b(), "d-1"));  // a delivery id is not a trigger id
}

TEST_P(StoreContract, GetOfAnUnknownDeliveryIsNullopt) {
    three_deliveries(a(), base_);
    EXPECT_FALSE(get(a(), "", "nope"));
    EXPECT_FALSE(get(a(), "gitlab", "d-1"));
    EXPECT_FALSE(get(a(), "", ""));
    EXPECT_FALSE(get(a(), "", "#"));
    EXPECT_FALSE(get(a(), "", "#1x"));
}

TEST_P(StoreContract, GetWithoutKeptBodyAnswersNoBodyButItsHash) {
    config_.store.keep_body = false;
    auto d = delivery("d-1", base_);
    d.body = "hello";
    accept(a(), d, {});
    const auto detail = get(a(), "", "d-1");
    ASSERT_TRUE(detail);
    EXPECT_FALSE(detail->body);
    EXPECT_EQ(detail->body_sha256,
              "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
}

TEST_P(StoreContract, KeepsWhyEachRuleQueuedNothing) {
    auto d = delivery("d-1", base_);
    const std::vector<RuleReason> why = {
        {"pull-requests", "event: 'push' matches none of [pull_request]", false, 0},
        {"tags", "tag: '' matches none of [v*]", false, 1},
        // A reason quotes the payload; a header's bytes need not be UTF-8.
        {"odd", std::string("forge_event: 'p\xffsh' matches none of [push]"), false, 0},
        {"deploy", "job: variable 'tag' is empty for this event", true, 1},
    };
    d.rule_reasons = rule_reasons_json(why);
    accept(a(), d, {trigger()});

    const auto detail = get(b(), "", "d-1");
    ASSERT_TRUE(detail);
    ASSERT_TRUE(detail->rule_reasons);
    EXPECT_EQ(*detail->rule_reasons, why);
}

TEST_P(StoreContract, ADeliveryWhoseRulesAllQueuedSomethingHasNoReasonsButRecordedThem) {
    accept(a(), delivery("d-1", base_), {trigger()});
    const auto detail = get(a(), "", "d-1");
    ASSERT_TRUE(detail);
    // Recorded, and empty: not "unknown", which is what an older hookrelay's deliveries read as.
    EXPECT_EQ(detail->rule_reasons,
              std::optional<std::vector<RuleReason>>(std::vector<RuleReason>{}));
}

// --- Replays and redelivery ----------------------------------------------------------------

TEST_P(StoreContract, ReplayGivesAFreshBudgetAHistoryEntryAndMakesTheTriggerDue) {
    const auto id = accept(a(), delivery("d-1", base_), {trigger()}).trigger_ids[0];
    settle(a(), "ci", retry(id, base_ + 1min, base_ + 1s));
    settle(a(), "ci", finish(id, TriggerState::dead, base_ + 2min));
    EXPECT_TRUE(claim(a(), "ci", base_ + 1h).claims.empty());
    CommitCounter committed(a());

    const auto now = base_ + 1h;
    EXPECT_EQ(replay(a(), {id}, now), (Ids{id}));
    EXPECT_TRUE(committed.first_arrives());

    const auto detail = get(a(), "", "d-1");
    ASSERT_TRUE(detail);
    const auto& h = detail->triggers.at(0);
    EXPECT_EQ(h.trigger.state, TriggerState::pending);
    EXPECT_EQ(h.trigger.attempts, 0);
    EXPECT_EQ(h.trigger.created_at, now);
    EXPECT_EQ(h.trigger.next_attempt_at, now);
    EXPECT_EQ(h.updated_at, now);
    EXPECT_EQ(h.trigger.last_outcome, "replayed");
    ASSERT_EQ(h.attempts.size(), 3u);
    const Attempt& entry = h.attempts.back();
    EXPECT_EQ(entry.outcome, "replayed by admin");
    EXPECT_EQ(entry.http_status, 0);
    EXPECT_EQ(entry.at, now);
    EXPECT_FALSE(entry.counted);
    EXPECT_EQ(entry.instance, "");
    EXPECT_EQ(detail->summary.pending, 1u);
    EXPECT_EQ(detail->summary.dead, 0u);

    EXPECT_TRUE(claim(a(), "ci", now - 1ms).claims.empty());
    const auto ready = claim(a(), "ci", now);
    ASSERT_EQ(ready.claims.size(), 1u);
    EXPECT_EQ(ready.claims[0].trigger.id, id);
    EXPECT_EQ(ready.claims[0].trigger.attempts, 0);
    EXPECT_EQ(ready.claims[0].trigger.created_at, now);
}

TEST_P(StoreContract, ReplaySkipsUnknownAndRepeatedIds) {
    const Ids ids = three_deliveries(a(), base_);
    const auto now = base_ + 1h;
    EXPECT_EQ(replay(a(), {"nope", ids[1], ids[0], ids[1]}, now), (Ids{ids[1], ids[0]}));
    const auto detail = get(a(), "", "d-1");
    ASSERT_TRUE(detail);
    EXPECT_EQ(detail->triggers[0].attempts.size(), 2u);  // one replay entry, not two
    EXPECT_EQ(detail->triggers[1].attempts.size(), 2u);
}

TEST_P(StoreContract, ReplayOfNothingKnownDoesNotWakeTheDispatcher) {
    CommitCounter committed(a());
    EXPECT_TRUE(replay(a(), {"nope"}, base_).empty());
    EXPECT_TRUE(replay(a(), {}, base_).empty());
    backlog(a());  // answered after the replays' notifications would have run
    EXPECT_EQ(committed.calls(), 0);
}

TEST_P(StoreContract, ReplayMatchingTakesTheGivenState) {
    const Ids ids = three_deliveries(a(), base_);
    const auto now = base_ + 1h;

    ReplayQuery query;  // dead
    EXPECT_EQ(replay_matching(a(), query, now), (Ids{ids[1]}));
    EXPECT_TRUE(replay_matching(a(), query, now).empty());  // none dead any more
    query.state = TriggerState::retrying;
    EXPECT_EQ(replay_matching(a(), query, now), (Ids{ids[3]}));
    query.state = TriggerState::delivered;
    EXPECT_EQ(replay_matching(a(), query, now), (Ids{ids[0]}));
    query.state = TriggerState::pending;  // all four are pending now
    query.limit = 10;
    EXPECT_EQ(replay_matching(a(), query, now), (Ids{ids[0], ids[1], ids[2], ids[3]}));
}

TEST_P(StoreContract, ReplayMatchingDryRunListsButChangesNothing) {
    const Ids ids = three_deliveries(a(), base_);
    const auto now = base_ + 1h;
    CommitCounter committed(a());

    ReplayQuery query;
    query.state = TriggerState::delivered;
    query.dry_run = true;
    EXPECT_EQ(replay_matching(a(), query, now), (Ids{ids[0]}));
    EXPECT_EQ(replay_matching(a(), query, now), (Ids{ids[0]}));  // still delivered
    const auto h = history_of(a(), "d-1", ids[0]);
    EXPECT_EQ(h.trigger.state, TriggerState::delivered);
    EXPECT_EQ(h.attempts.size(), 1u);  // no "replayed" entry
    backlog(a());                      // answered after a notification would have run
    EXPECT_EQ(committed.calls(), 0);
}

TEST_P(StoreContract, ReplayMatchingFiltersBySinceJenkinsAndLimitOldestFirst) {
    Ids dead;
    for (const char* jenkins : {"ci", "nightly", "ci", "ci"}) {
        const auto id =
            accept(a(), delivery("d-" + std::to_string(dead.size()), base_), {trigger(jenkins)})
                .trigger_ids[0];
        settle(a(), jenkins, finish(id, TriggerState::dead, base_));
        dead.push_back(id);
    }
    const auto now = base_ + 1h;
    CommitCounter committed(a());

    ReplayQuery query;
    query.since = Clock::now() + 1h;  // updated_at is the store's clock at the outcome
    EXPECT_TRUE(replay_matching(a(), query, now).empty());
    query.since = base_;
    query.jenkins = "ci";
    query.limit = 2;
    EXPECT_EQ(replay_matching(a(), query, now), (Ids{dead[0], dead[2]}));
    EXPECT_TRUE(committed.first_arrives());
    EXPECT_EQ(claim(a(), "ci", now).claims.size(), 2u);

    query.limit = 0;
    EXPECT_TRUE(replay_matching(a(), query, now).empty());
    query.limit = 1000;
    query.jenkins = "";
    query.since.reset();
    EXPECT_EQ(replay_matching(a(), query, now), (Ids{dead[1], dead[3]}));
}

TEST_P(StoreContract, AddTriggersQueuesNewTriggersOnAStoredDelivery) {
    const auto first = accept(a(), delivery("d-1", base_), {trigger()}).trigger_ids[0];
    CommitCounter committed(a());

    const auto before = now_ms();
    const Ids added =
        add_triggers(a(), "github-main", "d-1", {trigger("nightly", "a"), trigger("ci", "b")});
    const auto after = Clock::now();
    ASSERT_EQ(added.size(), 2u);
    EXPECT_NE(added[0], added[1]);
    EXPECT_NE(added[0], first);
    EXPECT_TRUE(committed.first_arrives());

    const auto detail = get(b(), "", "d-1");
    ASSERT_TRUE(detail);
    ASSERT_EQ(detail->triggers.size(), 3u);
    EXPECT_EQ(detail->triggers[0].trigger.id, first);
    EXPECT_EQ(detail->triggers[1].trigger.id, added[0]);
    EXPECT_EQ(detail->triggers[2].trigger.id, added[1]);
    const auto& t = detail->triggers[1].trigger;
    EXPECT_EQ(t.state, TriggerState::pending);
    EXPECT_EQ(t.attempts, 0);
    EXPECT_EQ(t.request.rule, "a");
    EXPECT_EQ(t.request.jenkins, "nightly");
    EXPECT_GE(t.created_at, before);
    EXPECT_LE(t.created_at, after);
    EXPECT_EQ(t.next_attempt_at, t.created_at);
    EXPECT_TRUE(detail->triggers[1].attempts.empty());

    const auto nightly = claim(a(), "nightly", Clock::now());
    ASSERT_EQ(nightly.claims.size(), 1u);
    EXPECT_EQ(nightly.claims[0].trigger.id, added[0]);
    EXPECT_EQ(nightly.claims[0].trigger.delivery_id, "d-1");
}

TEST_P(StoreContract, AddTriggersFindsTheDeliveryLikeGet) {
    accept(a(), delivery("d-1", base_), {});
    const auto seq = list(a()).items.at(0).seq;
    EXPECT_EQ(add_triggers(a(), "", "d-1", {trigger()}).size(), 1u);
    EXPECT_EQ(add_triggers(a(), "", "#" + std::to_string(seq), {trigger()}).size(), 1u);
    EXPECT_EQ(list(a()).items.at(0).pending, 2u);
}

TEST_P(StoreContract, AddTriggersToAnUnknownDeliveryAnswersNoIds) {
    accept(a(), delivery("d-1", base_), {});
    CommitCounter committed(a());
    EXPECT_TRUE(add_triggers(a(), "", "nope", {trigger()}).empty());
    EXPECT_TRUE(add_triggers(a(), "gitlab", "d-1", {trigger()}).empty());
    EXPECT_TRUE(add_triggers(a(), "", "d-1", {}).empty());
    backlog(a());  // answered after the notifications would have run
    EXPECT_EQ(committed.calls(), 0);
    EXPECT_TRUE(backlog(a()).empty());
}

// --- Backlog and instances -----------------------------------------------------------------

TEST_P(StoreContract, BacklogCountsOpenTriggersPerJenkinsOverTheWholeStore) {
    EXPECT_TRUE(backlog(a()).empty());
    const auto t = accept(a(), delivery("d-1", base_),
                          {trigger("alpha"), trigger("alpha"), trigger("alpha"), trigger("beta"),
                           trigger("beta"), trigger("gamma")})
                       .trigger_ids;
    accept(b(), delivery("d-2", base_), {trigger("beta")});
    settle(a(), "alpha", retry(t[1], base_ + 1min, base_));
    settle(a(), "beta", finish(t[4], TriggerState::delivered, base_));
    settle(a(), "gamma", finish(t[5], TriggerState::dead, base_));
    claim(b(), "alpha", base_, 1);  // claimed triggers are still open
    EXPECT_EQ(backlog(a()), (Backlog{{"alpha", 3}, {"beta", 2}}));
    EXPECT_EQ(backlog(b()), backlog(a()));
}

TEST_P(StoreContract, InstancesListsEveryOpenInstanceWithItsLiveClaims) {
    const auto opened = Clock::now();
    accept(a(), delivery("d-1", base_), {trigger(), trigger(), trigger()});
    claim(a(), "ci", Clock::now(), 2, 0, 1h);
    claim(b(), "ci", Clock::now(), 1, 0, 1h);

    auto list = instances(a());
    ASSERT_EQ(list.size(), 2u);
    std::sort(list.begin(), list.end(), [](const auto& x, const auto& y) { return x.id < y.id; });
    EXPECT_EQ(list[0].id, k_instance_a);
    EXPECT_EQ(list[0].claims, 2u);
    EXPECT_EQ(list[0].version, "contract-test");
    EXPECT_FALSE(list[0].host.empty());
    EXPECT_GE(list[0].started_at, opened - 1s);
    EXPECT_GE(list[0].heartbeat_at, list[0].started_at);
    EXPECT_LE(list[0].heartbeat_at, Clock::now());
    EXPECT_EQ(list[1].id, k_instance_b);
    EXPECT_EQ(list[1].claims, 1u);
}

TEST_P(StoreContract, AClosedInstanceLeavesTheListAndItsClaimsAreReleased) {
    const auto receipt = accept(a(), delivery("d-1", base_), {trigger(), trigger()});
    auto c = open("instance-c");
    ASSERT_EQ(claim(*c, "ci", base_, 10, 0, 1h).claims.size(), 2u);
    EXPECT_TRUE(claim(a(), "ci", base_).claims.empty());
    c->close();

    const auto list = instances(a());
    EXPECT_TRUE(std::none_of(list.begin(), list.end(),
                             [](const InstanceInfo& i) { return i.id == "instance-c"; }));
    EXPECT_EQ(ids_of(claim(a(), "ci", base_)), receipt.trigger_ids);
}

}  // namespace
}  // namespace hookrelay::store::contract
