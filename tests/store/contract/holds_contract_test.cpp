// Contract: a Jenkins held as down, shared by every instance: nobody claims its triggers, one
// instance at a time probes it, and ending the hold makes its triggers claimable again.
#include "store/contract/contract.hpp"

namespace hookrelay::store::contract {
namespace {

JenkinsHold held_since(TimePoint since, TimePoint next_probe_at,
                       std::string reason = "connect 10.0.0.5:8080: Connection refused") {
    JenkinsHold h;
    h.reason = std::move(reason);
    h.since = since;
    h.next_probe_at = next_probe_at;
    return h;
}

TEST_P(StoreContract, ClaimOfAHeldJenkinsAnswersTheHoldAndClaimsNothing) {
    accept(a(), delivery("d-1", base_), {trigger("ci"), trigger("other")});
    hold(a(), "ci", held_since(base_, base_ + 5s));

    const auto batch = claim(b(), "ci", base_ + 1s);
    EXPECT_TRUE(batch.claims.empty());
    ASSERT_TRUE(batch.hold);
    EXPECT_EQ(batch.hold->reason, "connect 10.0.0.5:8080: Connection refused");
    EXPECT_EQ(batch.hold->since, base_);
    EXPECT_EQ(batch.hold->next_probe_at, base_ + 5s);
    EXPECT_EQ(batch.hold->probes, 0);
    // A limit of 0 still reports the hold; another Jenkins is not held.
    EXPECT_TRUE(claim(a(), "ci", base_ + 1s, 0).hold);
    const auto other = claim(a(), "other", base_ + 1s);
    EXPECT_FALSE(other.hold);
    EXPECT_EQ(other.claims.size(), 1u);
}

TEST_P(StoreContract, HoldingAgainKeepsSinceAndProbesButUpdatesReasonAndNextProbe) {
    hold(a(), "ci", held_since(base_, base_ + 5s));
    ASSERT_TRUE(try_probe(a(), "ci", base_ + 5s));
    probe_failed(a(), "ci", base_ + 10s, "HTTP 503");
    hold(b(), "ci", held_since(base_ + 7s, base_ + 20s, "connect: timed out"));

    const auto all = holds(a());
    ASSERT_EQ(all.size(), 1u);
    const JenkinsHold& h = all.at("ci");
    EXPECT_EQ(h.since, base_);
    EXPECT_EQ(h.probes, 1);
    EXPECT_EQ(h.reason, "connect: timed out");
    EXPECT_EQ(h.next_probe_at, base_ + 20s);
}

TEST_P(StoreContract, ProbeIsGrantedOnlyOnceItsTimeHasCome) {
    EXPECT_FALSE(try_probe(a(), "ci", base_));  // not held
    hold(a(), "ci", held_since(base_, base_ + 5s));
    EXPECT_FALSE(try_probe(a(), "ci", base_ + 5s - 1ms));
    const auto granted = try_probe(a(), "ci", base_ + 5s);
    ASSERT_TRUE(granted);
    EXPECT_EQ(granted->since, base_);
    EXPECT_EQ(granted->next_probe_at, base_ + 5s);
}

TEST_P(StoreContract, ProbeTimesNeverReadBackEarlierThanAsked) {
    // A Retry-After of 1 s counted from a time finer than a store may keep.
    const auto next = base_ + 1s + 500us;
    hold(a(), "ci", held_since(base_, next));
    EXPECT_GE(holds(a()).at("ci").next_probe_at, next);
    EXPECT_GE(claim(a(), "ci", base_).hold->next_probe_at, next);
    EXPECT_FALSE(try_probe(b(), "ci", base_ + 1s));
    ASSERT_TRUE(try_probe(b(), "ci", base_ + 1s + 1ms));

    probe_failed(b(), "ci", base_ + 2s + 500us, "HTTP 503");
    EXPECT_FALSE(try_probe(a(), "ci", base_ + 2s));
    EXPECT_TRUE(try_probe(a(), "ci", base_ + 2s + 1ms));
}

TEST_P(StoreContract, OneInstanceAtATimeProbesUntilItsProbeLeaseExpires) {
    hold(a(), "ci", held_since(base_, base_));
    ASSERT_TRUE(try_probe(a(), "ci", base_, 10s));
    EXPECT_FALSE(try_probe(b(), "ci", base_ + 1s, 10s));
    EXPECT_FALSE(try_probe(b(), "ci", base_ + 10s - 1ms, 10s));
    // Its own lease does not keep the holder out.
    EXPECT_TRUE(try_probe(a(), "ci", base_ + 2s, 10s));
    EXPECT_TRUE(try_probe(b(), "ci", base_ + 12s, 10s));
    EXPECT_FALSE(try_probe(a(), "ci", base_ + 13s, 10s));
}

TEST_P(StoreContract, FailedProbeCountsSchedulesTheNextAndEndsTheProbeLease) {
    hold(a(), "ci", held_since(base_, base_));
    ASSERT_TRUE(try_probe(a(), "ci", base_, 1h));
    probe_failed(a(), "ci", base_ + 30s, "HTTP 502");

    EXPECT_FALSE(try_probe(b(), "ci", base_ + 30s - 1ms));
    const auto granted = try_probe(b(), "ci", base_ + 30s);
    ASSERT_TRUE(granted);
    EXPECT_EQ(granted->probes, 1);
    EXPECT_EQ(granted->reason, "HTTP 502");
    EXPECT_EQ(granted->since, base_);
}

// An instance whose probe outlasted its lease, granted to another meanwhile: its failure
// changes nothing; the probe that holds the lease counts.
TEST_P(StoreContract, AFailedProbeWhoseLeaseWentToAnotherInstanceChangesNothing) {
    hold(a(), "ci", held_since(base_, base_, "down"));
    ASSERT_TRUE(try_probe(a(), "ci", base_, 10s));
    ASSERT_TRUE(try_probe(b(), "ci", base_ + 10s, 10s));
    probe_failed(a(), "ci", base_ + 30s, "HTTP 503 seen by a");

    EXPECT_FALSE(try_probe(a(), "ci", base_ + 11s, 10s)) << "b's probe lease was ended";
    JenkinsHold h = holds(a()).at("ci");
    EXPECT_EQ(h.probes, 0);
    EXPECT_EQ(h.next_probe_at, base_);
    EXPECT_EQ(h.reason, "down");

    probe_failed(b(), "ci", base_ + 30s, "HTTP 503 seen by b");
    h = holds(a()).at("ci");
    EXPECT_EQ(h.probes, 1);
    EXPECT_EQ(h.next_probe_at, base_ + 30s);
    EXPECT_EQ(h.reason, "HTTP 503 seen by b");
}

TEST_P(StoreContract, UnholdMakesTheTriggersClaimableAndWakesTheDispatcher) {
    const auto receipt = accept(a(), delivery("d-1", base_), {trigger()});
    hold(a(), "ci", held_since(base_, base_ + 5s));
    CommitCounter committed(a());
    unhold(a(), "ci");
    EXPECT_TRUE(committed.first_arrives());
    EXPECT_TRUE(holds(b()).empty());
    const auto batch = claim(b(), "ci", base_);
    EXPECT_FALSE(batch.hold);
    EXPECT_EQ(ids_of(batch), receipt.trigger_ids);
    EXPECT_FALSE(try_probe(b(), "ci", base_ + 1h));
}

TEST_P(StoreContract, HoldsListsEveryHeldJenkins) {
    EXPECT_TRUE(holds(a()).empty());
    hold(a(), "beta", held_since(base_, base_ + 5s, "HTTP 503"));
    hold(b(), "alpha", held_since(base_ + 1s, base_ + 6s, "refused"));
    const auto all = holds(a());
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all.at("alpha").reason, "refused");
    EXPECT_EQ(all.at("alpha").since, base_ + 1s);
    EXPECT_EQ(all.at("beta").next_probe_at, base_ + 5s);
    unhold(b(), "beta");
    EXPECT_EQ(holds(a()).size(), 1u);
}

}  // namespace
}  // namespace hookrelay::store::contract
