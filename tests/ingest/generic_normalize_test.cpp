// The generic source: its event name and delivery id come from where its config says, every
// event is kind other, and the whole payload is there for conditions and templates.
#include "ingest/fixture.hpp"
#include "support/json_document.hpp"

namespace hookrelay {
namespace {

// An artifact repository's notification (made up for the test: generic senders have no
// fixture set).
constexpr std::string_view k_body = R"({
  "domain": "artifact", "event_type": "deployed", "id": 8812,
  "data": {"repo_key": "libs-release-local", "path": "org/acme/app/1.4.2/app-1.4.2.jar",
           "sha256": "a3f1c2"}
})";

SourceConfig generic(ValueRef event = {}, ValueRef delivery = {}) {
    SourceConfig s;
    s.name = "artifacts";
    s.provider = Provider::generic;
    s.event_name = std::move(event);
    s.delivery_id = std::move(delivery);
    return s;
}

ValueRef header(std::string name) {
    return {ValueRef::From::header, std::move(name), {}};
}
ValueRef field(std::string path) {
    return {ValueRef::From::payload, std::move(path), {}};
}

result<std::vector<Event>> normalize(const SourceConfig& source, const HeaderMap& headers) {
    auto parsed = ingest::parse_body("application/json", k_body);
    EXPECT_TRUE(parsed);
    return ingest::normalize(source, headers, std::move(*parsed));
}

TEST(GenericNormalize, EventAndDeliveryIdFromHeaders) {
    const auto events = normalize(generic(header("X-Event"), header("X-Delivery")),
                                  {{"X-Event", "artifact.deployed"}, {"X-Delivery", "7d1c"}});
    ASSERT_TRUE(events);
    ASSERT_EQ(events->size(), 1u);
    const auto& e = events->front();
    EXPECT_EQ(e.provider, Provider::generic);
    EXPECT_EQ(e.source, "artifacts");
    EXPECT_EQ(e.kind, EventKind::other);
    EXPECT_EQ(e.forge_event, "artifact.deployed");
    EXPECT_EQ(e.delivery_id, "7d1c");
    EXPECT_EQ(e.action, "");
    EXPECT_FALSE(e.changed_files_complete);
}

TEST(GenericNormalize, EventAndDeliveryIdFromPayloadFields) {
    const auto events = normalize(generic(field("event_type"), field("id")), {});
    ASSERT_TRUE(events);
    EXPECT_EQ(events->front().forge_event, "deployed");
    // A number is its decimal text.
    EXPECT_EQ(events->front().delivery_id, "8812");
}

TEST(GenericNormalize, EveryPayloadFieldIsAField) {
    const auto events = normalize(generic(field("event_type")), {});
    ASSERT_TRUE(events);
    const auto& e = events->front();
    EXPECT_EQ(event_field(e, "payload.data.repo_key"), "libs-release-local");
    EXPECT_EQ(event_field(e, "payload.data.path"), "org/acme/app/1.4.2/app-1.4.2.jar");
    EXPECT_EQ(event_field(e, "payload.id"), "8812");
    EXPECT_EQ(event_field(e, "event"), "other");
    EXPECT_EQ(event_field(e, "provider"), "generic");
    EXPECT_EQ(event_field(e, "forge_event"), "deployed");
}

TEST(GenericNormalize, AConfiguredEventThatIsAbsentIsRefused) {
    EXPECT_EQ(normalize(generic(header("X-Event")), {}).error(), errc::missing_event_header);
    EXPECT_EQ(normalize(generic(header("X-Event")), {{"X-Event", "  "}}).error(),
              errc::missing_event_header);
    EXPECT_EQ(normalize(generic(field("data.kind")), {}).error(), errc::missing_field);
}

TEST(GenericNormalize, WithoutAnEventConfiguredTheEventHasNoName) {
    const auto events = normalize(generic(), {{"X-GitHub-Event", "push"}});
    ASSERT_TRUE(events);
    EXPECT_EQ(events->front().kind, EventKind::other);
    EXPECT_EQ(events->front().forge_event, "");
    EXPECT_EQ(events->front().delivery_id, "");
}

TEST(GenericNormalize, DeliveryIdHeaderIsReadBeforeTheBodyIsParsed) {
    EXPECT_EQ(ingest::delivery_id(generic({}, header("X-Delivery")), {{"X-Delivery", " d-9 "}}),
              "d-9");
    // From a payload field it is known only after parsing.
    EXPECT_EQ(ingest::delivery_id(generic({}, field("id")), {{"X-Delivery", "d-9"}}), "");
}

TEST(GenericRecordedHeader, KeepsItsConfiguredHeadersButNeverItsSignature) {
    auto source = generic(header("X-Event"), header("X-Delivery"));
    SignatureSpec spec;
    spec.header = "X-Signature";
    spec.timestamp_header = "X-Timestamp";
    source.signature = spec;
    EXPECT_TRUE(ingest::recorded_header(source, "x-event"));
    EXPECT_TRUE(ingest::recorded_header(source, "X-Delivery"));
    EXPECT_TRUE(ingest::recorded_header(source, "X-Timestamp"));
    EXPECT_TRUE(ingest::recorded_header(source, "Content-Type"));
    EXPECT_FALSE(ingest::recorded_header(source, "X-Signature"));
    EXPECT_FALSE(ingest::recorded_header(source, "X-Other"));
}

}  // namespace
}  // namespace hookrelay
