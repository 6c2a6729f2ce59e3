// The SQLite schema: created at version 10 in WAL mode, files written by hookrelay with schema 1
// to 9 upgraded in place with everything in them usable, a newer file refused, and an upgrade
// that fails leaving the file as it was.
#include "store/codec.hpp"
#include "store/sqlite_test_support.hpp"

#include <gtest/gtest.h>

namespace hookrelay::store::test {
namespace {

using SqliteSchema = SqliteFixture;

// What hookrelay wrote with schema 1, as it wrote it.
constexpr const char* k_schema_v1 = R"sql(
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    provider TEXT NOT NULL,
    delivery_id TEXT,
    kind TEXT NOT NULL,
    forge_event TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    headers TEXT NOT NULL,
    body BLOB,
    body_sha256 TEXT NOT NULL,
    UNIQUE (source, delivery_id)
);
CREATE INDEX deliveries_source ON deliveries (source);
CREATE INDEX deliveries_delivery_id ON deliveries (delivery_id);
CREATE TABLE triggers (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    delivery INTEGER NOT NULL REFERENCES deliveries (id),
    rule TEXT NOT NULL,
    jenkins TEXT NOT NULL,
    job TEXT NOT NULL,
    parameters TEXT NOT NULL,
    cause TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'retrying', 'delivered', 'dead')),
    attempts INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_outcome TEXT NOT NULL,
    queue_url TEXT NOT NULL
);
CREATE INDEX triggers_due ON triggers (jenkins, next_attempt_at, seq)
    WHERE state IN ('pending', 'retrying');
CREATE INDEX triggers_delivery ON triggers (delivery);
CREATE INDEX triggers_state ON triggers (state, delivery);
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    trigger_id TEXT NOT NULL REFERENCES triggers (id),
    at INTEGER NOT NULL,
    http_status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    queue_url TEXT NOT NULL,
    counted INTEGER NOT NULL
);
CREATE INDEX attempts_trigger ON attempts (trigger_id);
PRAGMA user_version = 1;
)sql";

// What schema 2 added.
constexpr const char* k_schema_v2_step = R"sql(
ALTER TABLE deliveries ADD COLUMN body_key INTEGER;
CREATE INDEX deliveries_body ON deliveries (body_key) WHERE body_key IS NOT NULL;
PRAGMA user_version = 2;
)sql";

// What schema 3 added.
constexpr const char* k_schema_v3_step = R"sql(
ALTER TABLE triggers ADD COLUMN claim_id TEXT;
ALTER TABLE triggers ADD COLUMN claim_owner TEXT;
ALTER TABLE triggers ADD COLUMN claim_expires_at INTEGER;
CREATE UNIQUE INDEX triggers_claim ON triggers (claim_id) WHERE claim_id IS NOT NULL;
CREATE INDEX triggers_claimed ON triggers (jenkins, claim_expires_at)
    WHERE claim_id IS NOT NULL;
ALTER TABLE attempts ADD COLUMN instance TEXT NOT NULL DEFAULT '';
CREATE TABLE holds (
    jenkins TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    since INTEGER NOT NULL,
    next_probe_at INTEGER NOT NULL,
    probes INTEGER NOT NULL,
    probe_owner TEXT,
    probe_expires_at INTEGER
);
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
PRAGMA user_version = 3;
)sql";

// What schema 4 added.
constexpr const char* k_schema_v4_step = R"sql(
ALTER TABLE deliveries ADD COLUMN rule_reasons TEXT;
PRAGMA user_version = 4;
)sql";

// What schema 5 added.
constexpr const char* k_schema_v5_step = R"sql(
ALTER TABLE deliveries ADD COLUMN repository TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN ref TEXT NOT NULL DEFAULT '';
ALTER TABLE triggers ADD COLUMN follow TEXT NOT NULL DEFAULT 'none';
ALTER TABLE triggers ADD COLUMN status_target TEXT;
ALTER TABLE triggers ADD COLUMN build TEXT;
ALTER TABLE triggers ADD COLUMN outcome TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE triggers ADD COLUMN follow_due_at INTEGER;
ALTER TABLE triggers ADD COLUMN follow_claim_id TEXT;
ALTER TABLE triggers ADD COLUMN follow_owner TEXT;
ALTER TABLE triggers ADD COLUMN follow_expires_at INTEGER;
ALTER TABLE triggers ADD COLUMN follow_tries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE triggers ADD COLUMN status_wanted TEXT;
ALTER TABLE triggers ADD COLUMN status_wanted_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE triggers ADD COLUMN status_posted_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE triggers ADD COLUMN status_posted TEXT;
ALTER TABLE triggers ADD COLUMN status_tries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE triggers ADD COLUMN status_error TEXT NOT NULL DEFAULT '';
ALTER TABLE triggers ADD COLUMN status_due_at INTEGER;
ALTER TABLE triggers ADD COLUMN status_claim_id TEXT;
ALTER TABLE triggers ADD COLUMN status_owner TEXT;
ALTER TABLE triggers ADD COLUMN status_expires_at INTEGER;
UPDATE triggers SET outcome = state WHERE state != 'pending';
CREATE INDEX triggers_outcome ON triggers (outcome, delivery) WHERE state = 'delivered';
CREATE INDEX triggers_follow_due ON triggers (jenkins, follow_due_at, seq)
    WHERE follow_due_at IS NOT NULL;
CREATE INDEX triggers_follow_claimed ON triggers (jenkins, follow_expires_at)
    WHERE follow_claim_id IS NOT NULL;
CREATE INDEX triggers_status_due ON triggers (status_due_at, seq) WHERE status_due_at IS NOT NULL;
CREATE INDEX triggers_status_claimed ON triggers (status_expires_at)
    WHERE status_claim_id IS NOT NULL;
CREATE INDEX triggers_queue_url ON triggers (queue_url) WHERE queue_url != '';
PRAGMA user_version = 5;
)sql";

std::string ms(TimePoint t) {
    return std::to_string(
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

class OldFile : public SqliteSchema {
  protected:
    /// A file as an older hookrelay left it: delivery "old-1" with one pending trigger
    /// "trigger-pending" (one failed attempt) and one delivered "trigger-done".
    void write_old_file(int version) {
        RawDb db(db_path());
        db.exec("PRAGMA journal_mode = WAL");
        db.exec(k_schema_v1);
        if (version >= 2) db.exec(k_schema_v2_step);
        if (version >= 3) db.exec(k_schema_v3_step);
        if (version >= 4) db.exec(k_schema_v4_step);
        if (version >= 5) db.exec(k_schema_v5_step);
        const std::string at = ms(base_);
        db.exec(
            "INSERT INTO deliveries (id, source, provider, delivery_id, kind, forge_event, "
            "received_at, headers, body, body_sha256) VALUES (1, 'github-main', 'github', "
            "'old-1', 'push', 'push', " +
            at + ", '[[\"X-GitHub-Event\",\"push\"]]', 'old body', '" + std::string(64, 'a') +
            "')");
        db.exec(
            "INSERT INTO triggers (id, delivery, rule, jenkins, job, parameters, cause, state, "
            "attempts, created_at, next_attempt_at, updated_at, last_outcome, queue_url) "
            "VALUES ('trigger-pending', 1, 'build', 'ci', '[\"acme\",\"app\"]', "
            "'[[\"BRANCH\",\"main\"]]', 'old cause', 'retrying', 1, " +
            at + ", " + at + ", " + at + ", 'HTTP 503', '')");
        db.exec(
            "INSERT INTO triggers (id, delivery, rule, jenkins, job, parameters, cause, state, "
            "attempts, created_at, next_attempt_at, updated_at, last_outcome, queue_url) "
            "VALUES ('trigger-done', 1, 'build', 'ci', '[\"x\"]', '[]', 'old cause', "
            "'delivered', 1, " +
            at + ", " + at + ", " + at + ", 'queued', 'http://jenkins/queue/item/1/')");
        db.exec(
            "INSERT INTO attempts (trigger_id, at, http_status, outcome, duration_ms, "
            "queue_url, counted) VALUES ('trigger-pending', " +
            at + ", 503, 'HTTP 503', 20, '', 1)");
        // Version 5 stored each trigger's outcome with it: its state, as nothing was followed.
        if (version >= 5) db.exec("UPDATE triggers SET outcome = state");
    }

    /// Everything in the upgraded file is readable and the new features work on it.
    void expect_upgraded_and_usable() {
        auto store = open_store();
        {
            RawDb db(db_path());
            EXPECT_EQ(db.row("PRAGMA user_version"), (std::vector<std::string>{"13"}));
            EXPECT_EQ(db.row("PRAGMA integrity_check"), (std::vector<std::string>{"ok"}));
            // Version 8 dropped it: a delivery id is found through (source, delivery_id).
            EXPECT_EQ(
                db.row("SELECT name FROM sqlite_schema WHERE name = 'deliveries_delivery_id'"),
                std::vector<std::string>{});
        }
        // The old triggers' outcomes are their states (nothing was followed then), and the
        // listing filters on them.
        const auto page = list(*store);
        ASSERT_EQ(page.items.size(), 1u);
        EXPECT_EQ(page.items[0].outcomes, (Pairs{{"ci", "retrying"}, {"ci", "delivered"}}));
        EXPECT_EQ(page.items[0].repository, "");
        DeliveryQuery by_outcome;
        by_outcome.outcome = "delivered";
        EXPECT_EQ(list(*store, by_outcome).items.size(), 1u);
        by_outcome.outcome = "queued";
        EXPECT_TRUE(list(*store, by_outcome).items.empty());
        const auto detail = get(*store, "github-main", "old-1");
        ASSERT_TRUE(detail);
        EXPECT_EQ(detail->body, std::optional<std::string>("old body"));
        // Recorded before rule reasons were kept: unknown, not "none".
        EXPECT_FALSE(detail->rule_reasons);
        ASSERT_EQ(detail->triggers.size(), 2u);
        const auto& pending = detail->triggers[0];
        EXPECT_EQ(pending.trigger.state, TriggerState::retrying);
        EXPECT_EQ(pending.claimed_by, "");
        ASSERT_EQ(pending.attempts.size(), 1u);
        EXPECT_EQ(pending.attempts[0].outcome, "HTTP 503");
        EXPECT_EQ(pending.attempts[0].instance, "");

        // The old open trigger is claimed and completed under its claim like a new one.
        const auto batch = claim(*store, "ci", base_);
        ASSERT_EQ(ids_of(batch), (Ids{"trigger-pending"}));
        EXPECT_EQ(batch.claims[0].trigger.request.job, (std::vector<std::string>{"acme", "app"}));
        EXPECT_EQ(complete(*store, batch.claims[0].claim_id,
                           finish("trigger-pending", TriggerState::delivered, base_)),
                  Completion::applied);
        EXPECT_EQ(history_of(*store, "old-1", "trigger-pending").trigger.attempts, 2);

        hold(*store, "ci", JenkinsHold{"down", base_, base_, 0});
        EXPECT_EQ(holds(*store).size(), 1u);
        EXPECT_EQ(instances(*store).size(), 1u);
        accept(*store, with_body(delivery("new-1", base_), "same"), {trigger()});
        EXPECT_TRUE(accept(*store, with_body(delivery("new-2", base_), "same"), {}).duplicate);
        EXPECT_TRUE(accept(*store, delivery("old-1", base_), {}).duplicate);

        auto skipped = delivery("new-3", base_);
        const std::vector<RuleReason> why = {
            {"prs", "event: 'push' matches none of [pull_request]"}};
        skipped.rule_reasons = rule_reasons_json(why);
        accept(*store, skipped, {});
        const auto reasons = get(*store, "", "new-3");
        ASSERT_TRUE(reasons && reasons->rule_reasons);
        EXPECT_EQ(*reasons->rule_reasons, why);

        // A followed trigger with a status target is followed and its status posted.
        TriggerRequest followed = trigger();
        followed.follow = FollowMode::finished;
        followed.status = StatusTarget{"acme/app", std::string(40, 'a'), "hookrelay/build", "main"};
        auto with_repo = delivery("new-4", base_);
        with_repo.repository = "acme/app";
        const auto receipt = accept(*store, with_repo, {followed});
        unhold(*store, "ci");
        TriggerUpdate done = finish(receipt.trigger_ids[0], TriggerState::delivered, base_);
        BuildRecord build;
        build.queue_url = "http://jenkins/queue/item/8/";
        done.build = build;
        done.status = StatusWish{"pending", "queued", ""};
        settle(*store, "ci", done);
        const auto trigger = history_of(*store, "new-4", receipt.trigger_ids[0]).trigger;
        EXPECT_TRUE(trigger.following);
        EXPECT_EQ(trigger.build, build);
        EXPECT_EQ(trigger.status.wanted_seq, 1);
        EXPECT_EQ(get(*store, "", "new-4")->summary.repository, "acme/app");

        // The old rows read back without a coalesce key; a coalesced trigger supersedes an older
        // one (the state the upgrade allowed), and scans are rate-limited.
        EXPECT_EQ(pending.trigger.request.coalesce, "");
        EXPECT_EQ(pending.trigger.superseded_by, "");
        TriggerRequest coalesced = test::trigger();
        coalesced.coalesce = "acme/app:main";
        const auto older = accept(*store, delivery("new-5", base_), {coalesced});
        const auto newer = accept(*store, delivery("new-6", base_), {coalesced});
        ASSERT_EQ(newer.superseded.size(), 1u);
        EXPECT_EQ(history_of(*store, "new-5", older.trigger_ids[0]).trigger.state,
                  TriggerState::superseded);
        const auto gate = wait_answer<result<ScanGate>>([&](auto answer) {
            store->request_scan("ci", "acme/app", base_, base_, std::chrono::minutes(1),
                                std::move(answer));
        });
        ASSERT_TRUE(gate);
        EXPECT_EQ(gate->verdict, ScanGate::Verdict::granted);
    }
};

TEST_F(SqliteSchema, CreatesTheStateDirectoryAndTheCurrentSchemaInWalMode) {
    const std::string nested = dir_.path() + "/a/b/state";
    {
        auto store = SqliteStore::open(nested, config_, quiet());
        ASSERT_TRUE(store);
        EXPECT_EQ((*store)->kind(), "sqlite");
    }
    RawDb db(nested + "/hookrelay.db");
    EXPECT_EQ(db.row("PRAGMA user_version"), (std::vector<std::string>{"13"}));
    EXPECT_EQ(db.row("PRAGMA journal_mode"), (std::vector<std::string>{"wal"}));
}

TEST_F(OldFile, UpgradesAVersion1FileInPlace) {
    write_old_file(1);
    expect_upgraded_and_usable();
}

TEST_F(OldFile, UpgradesAVersion2FileInPlace) {
    write_old_file(2);
    expect_upgraded_and_usable();
}

TEST_F(OldFile, UpgradesAVersion3FileInPlace) {
    write_old_file(3);
    expect_upgraded_and_usable();
}

TEST_F(OldFile, UpgradesAVersion4FileInPlace) {
    write_old_file(4);
    expect_upgraded_and_usable();
}

TEST_F(OldFile, UpgradesAVersion5FileInPlace) {
    write_old_file(5);
    expect_upgraded_and_usable();
}

TEST_F(OldFile, UpgradeToVersion7ListsTheDeliveriesWithoutTriggersAsUnmatched) {
    {
        // A file of version 6 is today's without what versions 7, 9, 10 and 11 added (version 8
        // only dropped an index; these bodies are too small to compress, so stored as
        // received).
        auto store = open_store();
        accept(*store, delivery("matched", base_), {trigger()});
        accept(*store, delivery("unmatched-1", base_), {});
        accept(*store, delivery("unmatched-2", base_), {});
        store->close();
        RawDb db(db_path());
        db.exec(
            "DROP TABLE unmatched; DROP TABLE received_marks; "
            "ALTER TABLE deliveries DROP COLUMN body_lz4_size; "
            "ALTER TABLE deliveries DROP COLUMN rule_reasons_lz4_size; PRAGMA user_version = 6");
    }
    auto store = open_store();
    {
        RawDb db(db_path());
        EXPECT_EQ(db.row("PRAGMA user_version"), (std::vector<std::string>{"13"}));
        EXPECT_EQ(db.row("PRAGMA integrity_check"), (std::vector<std::string>{"ok"}));
    }
    DeliveryQuery query;
    query.outcome = "unmatched";
    const auto names = [&] {
        std::vector<std::string> out;
        for (const auto& item : list(*store, query).items) out.push_back(item.delivery_id);
        return out;
    };
    EXPECT_EQ(names(), (std::vector<std::string>{"unmatched-2", "unmatched-1"}));
    accept(*store, delivery("unmatched-3", base_), {});
    ASSERT_EQ(add_triggers(*store, "", "unmatched-1", {trigger()}).size(), 1u);
    EXPECT_EQ(names(), (std::vector<std::string>{"unmatched-3", "unmatched-2"}));
}

TEST_F(OldFile, UpgradeToVersion9ListsSinceExactlyOverTheStoredDeliveries) {
    {
        // A file of version 8 is today's without what versions 9, 10 and 11 added (these bodies
        // are too small to compress, so stored as received). The clock stepped back after
        // d-late.
        auto store = open_store();
        accept(*store, delivery("d-early", base_), {trigger()});
        accept(*store, delivery("d-late", base_ + 10s), {});
        accept(*store, delivery("d-stepped-back", base_ + 2s), {});
        store->close();
        RawDb db(db_path());
        db.exec(
            "DROP TABLE received_marks; ALTER TABLE deliveries DROP COLUMN body_lz4_size; "
            "ALTER TABLE deliveries DROP COLUMN rule_reasons_lz4_size; PRAGMA user_version = 8");
    }
    auto store = open_store();
    {
        RawDb db(db_path());
        EXPECT_EQ(db.row("PRAGMA user_version"), (std::vector<std::string>{"13"}));
        EXPECT_EQ(db.row("PRAGMA integrity_check"), (std::vector<std::string>{"ok"}));
    }
    const auto since = [&](TimePoint at) {
        DeliveryQuery query;
        query.since = at;
        std::vector<std::string> out;
        for (const auto& item : list(*store, query).items) out.push_back(item.delivery_id);
        return out;
    };
    EXPECT_EQ(since(base_ + 2s), (std::vector<std::string>{"d-stepped-back", "d-late"}));
    EXPECT_EQ(since(base_ + 5s), (std::vector<std::string>{"d-late"}));
    accept(*store, delivery("d-new", base_ + 3s), {});
    EXPECT_EQ(since(base_ + 3s), (std::vector<std::string>{"d-new", "d-late"}));
    EXPECT_EQ(since(base_),
              (std::vector<std::string>{"d-new", "d-stepped-back", "d-late", "d-early"}));
}

TEST_F(OldFile, UpgradeToVersion10KeepsTheStoredBodiesAndCompressesNewOnes) {
    const std::string old_body(6000, 'o');
    {
        // A file of version 9: today's without body_lz4_size (and version 11's column), its
        // bodies as received.
        auto store = open_store();
        accept(*store, delivery("d-old", base_), {trigger()});
        store->close();
        RawDb db(db_path());
        db.exec(
            "ALTER TABLE deliveries DROP COLUMN body_lz4_size; "
            "ALTER TABLE deliveries DROP COLUMN rule_reasons_lz4_size; "
            "UPDATE deliveries SET body = CAST('" +
            old_body +
            "' AS BLOB); "
            "PRAGMA user_version = 9");
    }
    auto store = open_store();
    accept(*store, with_body(delivery("d-new", base_), old_body), {trigger()});
    {
        RawDb db(db_path());
        EXPECT_EQ(db.row("PRAGMA user_version"), (std::vector<std::string>{"13"}));
        EXPECT_EQ(db.row("PRAGMA integrity_check"), (std::vector<std::string>{"ok"}));
        EXPECT_EQ(db.rows("SELECT delivery_id, length(body) = 6000, body_lz4_size FROM deliveries "
                          "ORDER BY id"),
                  (std::vector<std::vector<std::string>>{{"d-old", "1", "NULL"},
                                                         {"d-new", "0", "6000"}}));
    }
    EXPECT_EQ(get(*store, "", "d-old")->body, std::optional<std::string>(old_body));
    EXPECT_EQ(get(*store, "", "d-new")->body, std::optional<std::string>(old_body));
}

TEST_F(SqliteSchema, TheWidenedStateConstraintStillRefusesUnknownStates) {
    { ASSERT_TRUE(SqliteStore::open(dir_.path(), config_, quiet())); }
    RawDb db(db_path());
    db.exec(
        "INSERT INTO deliveries (id, source, provider, delivery_id, kind, forge_event, "
        "received_at, headers, body_sha256) VALUES (1, 's', 'github', 'd', 'push', 'push', 0, "
        "'[]', '')");
    const std::string insert =
        "INSERT INTO triggers (id, delivery, rule, jenkins, job, parameters, cause, state, "
        "attempts, created_at, next_attempt_at, updated_at, last_outcome, queue_url) VALUES ";
    db.exec(insert + "('t-1', 1, 'r', 'ci', '[]', '[]', '', 'superseded', 0, 0, 0, 0, '', '')");
    EXPECT_THROW(
        db.exec(insert + "('t-2', 1, 'r', 'ci', '[]', '[]', '', 'bogus', 0, 0, 0, 0, '', '')"),
        std::runtime_error);
}

TEST_F(OldFile, AFailedUpgradeToVersion6LeavesTheStateConstraintAsItWas) {
    write_old_file(5);
    {
        // Something in the way of version 6: its scans table cannot be created.
        RawDb db(db_path());
        db.exec("CREATE TABLE scans (x INTEGER)");
    }
    std::string why;
    auto store = SqliteStore::open(dir_.path(), config_, quiet(), &why);
    ASSERT_FALSE(store);
    EXPECT_NE(why.find("scans"), std::string::npos) << why;
    RawDb db(db_path());
    EXPECT_EQ(db.row("PRAGMA user_version"), (std::vector<std::string>{"5"}));
    EXPECT_EQ(db.row("SELECT instr(sql, 'superseded') FROM sqlite_master WHERE name = 'triggers'"),
              (std::vector<std::string>{"0"}));
    EXPECT_EQ(db.row("PRAGMA integrity_check"), (std::vector<std::string>{"ok"}));
}

TEST_F(OldFile, AFailedUpgradeLeavesTheFileAsItWas) {
    write_old_file(2);
    {
        // Something in the way of version 3: its holds table cannot be created.
        RawDb db(db_path());
        db.exec("CREATE TABLE holds (x INTEGER)");
    }
    std::string why;
    auto store = SqliteStore::open(dir_.path(), config_, quiet(), &why);
    ASSERT_FALSE(store);
    EXPECT_NE(why.find("holds"), std::string::npos) << why;
    RawDb db(db_path());
    EXPECT_EQ(db.row("PRAGMA user_version"), (std::vector<std::string>{"2"}));
    EXPECT_EQ(db.row("SELECT COUNT(*) FROM pragma_table_info('triggers') WHERE name = 'claim_id'"),
              (std::vector<std::string>{"0"}));
    EXPECT_EQ(db.row("SELECT COUNT(*) FROM triggers"), (std::vector<std::string>{"2"}));
}

// A thousand rules' reasons, as a delivery records them: ~86 bytes each, mostly the same words.
std::vector<RuleReason> many_reasons(std::size_t count) {
    std::vector<RuleReason> out;
    for (std::size_t i = 0; i < count; ++i) {
        out.push_back({"rule-" + std::to_string(i), "repository: 'acme/app' matches none of [org" +
                                                        std::to_string(i % 40) + "/svc" +
                                                        std::to_string(i) + "]"});
    }
    return out;
}

TEST_F(OldFile, UpgradeToVersion11KeepsTheStoredReasonsAndCompressesLongNewOnes) {
    auto old_reasons = many_reasons(1000);
    {
        // A file of version 10: today's without rule_reasons_lz4_size, its reasons as text.
        auto store = open_store();
        auto old = delivery("d-old", base_);
        old.rule_reasons =
            rule_reasons_json({{"prs", "event: 'push' matches none of [pull_request]"}});
        accept(*store, old, {});
        store->close();
        RawDb db(db_path());
        // Long reasons as a version 10 hookrelay stored them: the JSON as text.
        db.exec(
            "UPDATE deliveries SET rule_reasons = '[' || (WITH RECURSIVE n(i) AS (SELECT 0 UNION "
            "ALL SELECT i + 1 FROM n WHERE i < 999) SELECT group_concat('[\"rule-' || i || "
            "'\",\"repository: ''acme/app'' matches none of [org' || (i % 40) || '/svc' || i "
            "|| ']\",0,false]', ',') FROM n) || ']'; "
            "ALTER TABLE deliveries DROP COLUMN rule_reasons_lz4_size; PRAGMA user_version = 10");
    }
    auto store = open_store();
    auto long_new = delivery("d-long", base_);
    long_new.rule_reasons = rule_reasons_json(many_reasons(1000));
    accept(*store, long_new, {});
    auto short_new = delivery("d-short", base_);
    short_new.rule_reasons =
        rule_reasons_json({{"prs", "event: 'push' matches none of [pull_request]"}});
    accept(*store, short_new, {});
    {
        RawDb db(db_path());
        EXPECT_EQ(db.row("PRAGMA user_version"), (std::vector<std::string>{"13"}));
        EXPECT_EQ(db.row("PRAGMA integrity_check"), (std::vector<std::string>{"ok"}));
        const auto rows = db.rows(
            "SELECT delivery_id, typeof(rule_reasons), length(rule_reasons) < 20000, "
            "rule_reasons_lz4_size > 40000 FROM deliveries ORDER BY id");
        EXPECT_EQ(rows, (std::vector<std::vector<std::string>>{{"d-old", "text", "0", "NULL"},
                                                               {"d-long", "blob", "1", "1"},
                                                               {"d-short", "text", "1", "NULL"}}));
    }
    const auto old = get(*store, "", "d-old");
    ASSERT_TRUE(old && old->rule_reasons);
    EXPECT_EQ(*old->rule_reasons, old_reasons);
    EXPECT_EQ(get(*store, "", "d-long")->rule_reasons, std::optional(many_reasons(1000)));
    EXPECT_EQ(get(*store, "", "d-short")->rule_reasons,
              std::optional(parse_rule_reasons(short_new.rule_reasons)));
}

TEST_F(SqliteSchema, RefusesAFileFromANewerHookrelay) {
    {
        RawDb db(db_path());
        db.exec("PRAGMA user_version = 14");
    }
    std::string why;
    auto store = SqliteStore::open(dir_.path(), config_, quiet(), &why);
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error(), make_error_code(errc::store_incompatible));
    EXPECT_NE(why.find("schema version 14 is newer than this hookrelay understands (13)"),
              std::string::npos)
        << why;
}

}  // namespace
}  // namespace hookrelay::store::test
