// An intake log record: every field a submission's indexing reads comes back as it went in, and
// bytes that are not such a record are refused (never half read).
#include "store/sqlite/intake_record.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace hookrelay::store::sqlite {
namespace {

using namespace std::chrono_literals;

IntakeRecord full_record() {
    IntakeRecord r;
    DeliveryRecord& d = r.delivery;
    d.source = "gitlab-main";
    d.provider = Provider::bitbucket_server;
    d.delivery_id = "6f0c2f9e-4b5c-4e43-9a7e-0123456789ab";
    d.kind = EventKind::pull_request;
    d.forge_event = "Merge Request Hook";
    d.received_at = TimePoint(1'764'500'000'123'456'789ns);
    d.headers = {{"X-Gitlab-Event", "Merge Request Hook"}, {"Content-Type", "application/json"}};
    d.body = "{\"object_kind\":\"merge_request\"}";
    d.body_sha256 = std::string(64, 'a');
    d.duplicate_body_window = 90s;
    d.repository = "acme/app";
    d.ref = "refs/heads/feature/x";
    r.stored_body = StoredBody{std::string("\x01\x02\x00\x03", 4), 31};
    r.reasons = StoredReasons{"[{\"rule\":\"r\"}]", std::nullopt};
    TriggerRequest a;
    a.rule = "build-mr";
    a.jenkins = "ci";
    a.job = {"acme", "app", "feature/x"};
    a.parameters = {{"BRANCH", "feature/x"}, {"EMPTY", ""}};
    a.cause = "merge request !7";
    a.follow = FollowMode::started;
    a.status = StatusTarget{"42", std::string(40, 'c'), "hookrelay/build-mr", "feature/x"};
    a.coalesce = "acme/app:feature/x";
    a.cancel_superseded = true;
    a.multibranch = 2;
    TriggerRequest b;
    b.rule = "scan";
    b.jenkins = "ci";
    b.job = {"acme"};
    b.follow = FollowMode::finished;
    b.scan_only = true;
    r.triggers = {a, b};
    r.trigger_ids = {"019ad465-4d7b-7000-8000-000000000001",
                     "019ad465-4d7b-7000-8000-000000000002"};
    return r;
}

void expect_same(const IntakeRecord& a, const IntakeRecord& b, bool with_body) {
    const DeliveryRecord& x = a.delivery;
    const DeliveryRecord& y = b.delivery;
    EXPECT_EQ(x.source, y.source);
    EXPECT_EQ(x.provider, y.provider);
    EXPECT_EQ(x.delivery_id, y.delivery_id);
    EXPECT_EQ(x.kind, y.kind);
    EXPECT_EQ(x.forge_event, y.forge_event);
    EXPECT_EQ(x.received_at, y.received_at);
    EXPECT_EQ(x.headers, y.headers);
    if (with_body) {
        EXPECT_EQ(x.body, y.body);
    }
    EXPECT_EQ(x.body_sha256, y.body_sha256);
    EXPECT_EQ(x.duplicate_body_window, y.duplicate_body_window);
    EXPECT_EQ(x.repository, y.repository);
    EXPECT_EQ(x.ref, y.ref);
    ASSERT_EQ(a.stored_body.has_value(), b.stored_body.has_value());
    if (a.stored_body) {
        EXPECT_EQ(a.stored_body->bytes, b.stored_body->bytes);
        EXPECT_EQ(a.stored_body->size, b.stored_body->size);
    }
    EXPECT_EQ(a.reasons.bytes, b.reasons.bytes);
    EXPECT_EQ(a.reasons.size, b.reasons.size);
    EXPECT_EQ(a.trigger_ids, b.trigger_ids);
    ASSERT_EQ(a.triggers.size(), b.triggers.size());
    for (std::size_t i = 0; i < a.triggers.size(); ++i) {
        const TriggerRequest& s = a.triggers[i];
        const TriggerRequest& t = b.triggers[i];
        EXPECT_EQ(s.rule, t.rule);
        EXPECT_EQ(s.jenkins, t.jenkins);
        EXPECT_EQ(s.job, t.job);
        EXPECT_EQ(s.parameters, t.parameters);
        EXPECT_EQ(s.cause, t.cause);
        EXPECT_EQ(s.follow, t.follow);
        EXPECT_EQ(s.status, t.status);
        EXPECT_EQ(s.coalesce, t.coalesce);
        EXPECT_EQ(s.cancel_superseded, t.cancel_superseded);
        EXPECT_EQ(s.multibranch, t.multibranch);
        EXPECT_EQ(s.scan_only, t.scan_only);
    }
}

TEST(IntakeRecord, EveryFieldComesBack) {
    const IntakeRecord r = full_record();
    const auto back = decode_intake_record(encode_intake_record(r));
    ASSERT_TRUE(back.has_value());
    // The body is packed in stored_body: the record does not carry it twice.
    expect_same(r, *back, false);
    EXPECT_TRUE(back->delivery.body.empty());
}

TEST(IntakeRecord, TheBodyTravelsWhereTheStoreReadsIt) {
    IntakeRecord as_it_came = full_record();
    as_it_came.stored_body = StoredBody{"", std::nullopt};  // stored as it came
    auto back = decode_intake_record(encode_intake_record(as_it_came));
    ASSERT_TRUE(back.has_value());
    expect_same(as_it_came, *back, true);

    IntakeRecord not_kept = full_record();
    not_kept.stored_body.reset();
    not_kept.delivery.body_sha256.clear();  // its digest still to be computed
    back = decode_intake_record(encode_intake_record(not_kept));
    ASSERT_TRUE(back.has_value());
    expect_same(not_kept, *back, true);

    not_kept.delivery.body_sha256 = std::string(64, 'b');  // digest given: no body needed
    back = decode_intake_record(encode_intake_record(not_kept));
    ASSERT_TRUE(back.has_value());
    EXPECT_TRUE(back->delivery.body.empty());
}

// A packed body whose digest the store's thread computes as it indexes the record: the record
// says so in its version byte (2, or 4 when a status target carries a ref), which a hookrelay that
// would store the digest of an empty body instead does not read (it refuses the log, naming the
// record); every other record carries 1 (3 with a status ref).
TEST(IntakeRecord, ADigestLeftToTheIndexIsItsOwnVersion) {
    IntakeRecord packed = full_record();
    packed.stored_body = pack_body(std::string(4096, 'x'));
    ASSERT_TRUE(packed.stored_body->size);
    EXPECT_EQ(encode_intake_record(packed).front(), 3);
    IntakeRecord no_ref = packed;
    no_ref.triggers.at(0).status->ref.clear();
    EXPECT_EQ(encode_intake_record(no_ref).front(), 1);
    no_ref.delivery.body_sha256.clear();
    EXPECT_EQ(encode_intake_record(no_ref).front(), 2);

    packed.delivery.body_sha256.clear();
    const std::string bytes = encode_intake_record(packed);
    EXPECT_EQ(bytes.front(), 4);
    const auto back = decode_intake_record(bytes);
    ASSERT_TRUE(back.has_value());
    EXPECT_TRUE(back->delivery.body_sha256.empty());
    EXPECT_TRUE(back->delivery.body.empty());
    ASSERT_TRUE(back->stored_body && back->stored_body->size);
    EXPECT_EQ(unpack_body(back->stored_body->bytes, back->stored_body->size),
              std::string(4096, 'x'));

    std::string other = bytes;
    other.front() = 5;
    EXPECT_FALSE(decode_intake_record(other).has_value());
}

// A record whose status targets carry no ref keeps versions 1 and 2 (the context is the last
// field of a target), as before refs: it reads back with no ref, whichever of the two it is.
TEST(IntakeRecord, ARecordOfTheVersionsBeforeTheStatusRefReadsWithoutARef) {
    IntakeRecord r = full_record();
    ASSERT_TRUE(r.triggers.at(0).status);
    r.triggers[0].status->ref.clear();
    std::string bytes = encode_intake_record(r);
    ASSERT_EQ(bytes.front(), 1);
    for (const char version : {1, 2}) {
        bytes.front() = version;
        const auto back = decode_intake_record(bytes);
        ASSERT_TRUE(back.has_value()) << int(version);
        expect_same(r, *back, false);
    }
    EXPECT_FALSE(decode_intake_record(bytes.substr(1).insert(0, 1, '\x03')).has_value());
}

TEST(IntakeRecord, ARecordWithoutTriggersOrOptionalsComesBack) {
    IntakeRecord r;
    r.delivery.source = "s";
    r.delivery.received_at = TimePoint(-5ns);
    r.delivery.body_sha256 = std::string(64, 'f');
    const auto back = decode_intake_record(encode_intake_record(r));
    ASSERT_TRUE(back.has_value());
    expect_same(r, *back, true);
}

TEST(IntakeRecord, BytesCutShortAtAnyPointAreRefused) {
    const std::string bytes = encode_intake_record(full_record());
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        EXPECT_FALSE(decode_intake_record(std::string_view(bytes).substr(0, n)).has_value())
            << "cut at " << n << " of " << bytes.size();
    }
}

TEST(IntakeRecord, BytesLeftOverAnotherVersionOrAnUnknownNameAreRefused) {
    const std::string bytes = encode_intake_record(full_record());
    EXPECT_FALSE(decode_intake_record(bytes + "x").has_value());
    std::string other = bytes;
    other[0] = 5;
    EXPECT_FALSE(decode_intake_record(other).has_value());
    std::string renamed = bytes;
    const auto at = renamed.find("bitbucket-server");
    ASSERT_NE(at, std::string::npos);
    renamed.replace(at, 16, "bitbucket-sorver");
    EXPECT_FALSE(decode_intake_record(renamed).has_value());
}

TEST(IntakeRecord, ADamagedCountOrLengthIsRefusedWithoutReservingForIt) {
    const std::string bytes = encode_intake_record(full_record());
    // Every 8-byte window set to all ones: counts and lengths become huge; none may be believed.
    for (std::size_t at = 1; at + 8 <= bytes.size(); ++at) {
        std::string damaged = bytes;
        for (std::size_t k = 0; k < 8; ++k) damaged[at + k] = '\xff';
        const auto back = decode_intake_record(damaged);
        if (back) {
            // Only windows over bytes that may take any value decode: it must still be whole.
            EXPECT_EQ(back->triggers.size(), back->trigger_ids.size());
        }
    }
}

}  // namespace
}  // namespace hookrelay::store::sqlite
