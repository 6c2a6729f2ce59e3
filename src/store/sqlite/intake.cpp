#include "store/sqlite/intake.hpp"

#include "store/sqlite/codec.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace hookrelay::store::sqlite {
namespace {

constexpr auto k_max_size = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());

}  // namespace

Intake::Intake(Connection& connection, Chores& chores)
    : db_(connection),
      chores_(chores),
      insert_delivery_(db_.get(), "insert delivery", R"sql(
INSERT INTO deliveries (source, provider, delivery_id, kind, forge_event, received_at, headers,
                        body, body_sha256, body_key, rule_reasons, repository, ref, body_lz4_size,
                        rule_reasons_lz4_size)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (source, delivery_id) DO NOTHING)sql"),
      insert_unmatched_(db_.get(), "insert unmatched",
                        "INSERT INTO unmatched (delivery) VALUES (?)"),
      // The second the running maximum of received_at reached (schema version 9): a row only if
      // no earlier delivery reached it, so a page is written about once a second. Both reads
      // are seeks in received_marks_second.
      mark_received_(db_.get(), "mark received", R"sql(
INSERT OR IGNORE INTO received_marks (first_delivery, second)
VALUES (?1, max(?2 / 1000, coalesce((SELECT max(second) FROM received_marks), ?2 / 1000))))sql"),
      // INDEXED BY: without statistics the planner would rather walk deliveries_source, all of
      // the source's deliveries for every submit.
      find_body_(db_.get(), "find body", R"sql(
SELECT id, delivery_id FROM deliveries INDEXED BY deliveries_body
WHERE body_key = ?1 AND body_sha256 = ?2 AND source = ?3 AND received_at >= ?4
ORDER BY id DESC LIMIT 1)sql"),
      insert_trigger_(db_.get(), "insert trigger", R"sql(
INSERT INTO triggers (id, delivery, rule, jenkins, job, parameters, cause, state, attempts,
                      created_at, next_attempt_at, updated_at, last_outcome, queue_url, follow,
                      status_target, coalesce_key, cancel_superseded, multibranch, scan_only,
                      scope)
VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, '', '', ?, ?, ?, ?, ?, ?, ?))sql"),
      // Open triggers of earlier deliveries with the scope, walking triggers_scope_open; one
      // under a claim that has not expired is in flight and left alone. The claim and any
      // follow chore end; the status wish is recorded by the caller (Chores::record_wish).
      supersede_(db_.get(), "supersede", R"sql(
UPDATE triggers INDEXED BY triggers_scope_open
SET state = 'superseded', outcome = 'superseded', superseded_by = ?1, last_outcome = ?2,
    updated_at = ?3, claim_id = NULL, claim_owner = NULL, claim_expires_at = NULL,
    follow_due_at = NULL, follow_claim_id = NULL, follow_owner = NULL, follow_expires_at = NULL
WHERE scope = ?4 AND scope != '' AND state IN ('pending', 'retrying') AND delivery < ?5
    AND (claim_id IS NULL OR claim_expires_at <= ?3)
RETURNING id, status_target IS NOT NULL)sql") {}

Receipt Intake::insert(const DeliveryRecord& d, const StoredBody* body,
                       const StoredReasons& reasons, const std::vector<TriggerRequest>& triggers,
                       const std::vector<std::string>* ids) {
    if (ids && ids->size() != triggers.size()) {
        throw StoreError(errc::store_unavailable,
                         "a submission's trigger ids do not match its triggers");
    }
    const std::int64_t received = to_ms(d.received_at);
    const bool by_body = d.duplicate_body_window.count() > 0;
    // Not given (SqliteStore::submit gives it for a body not kept): computed here only where a
    // body window compares it, from the body or from the packed body when the intake log's thread
    // let go of the body itself. Otherwise the kept body is its record: the column stays empty,
    // and Admin::read_detail computes the digest when the delivery is shown.
    std::string digest;
    if (is_sha256_hex(d.body_sha256)) {
        digest = d.body_sha256;
    } else if (by_body || !body) {
        digest = d.body.empty() && body && body->size
                     ? sha256_hex(unpack_body(body->bytes, body->size))
                     : sha256_hex(d.body);
    }
    const std::int64_t key = by_body ? body_key(digest) : 0;
    if (by_body) {
        if (auto earlier = find_same_body(d, digest, key, received)) return std::move(*earlier);
    }
    {
        const std::string headers = pairs_json(d.headers);
        Query query(insert_delivery_);
        query.bind_text(d.source).bind_text(to_string(d.provider));
        query.bind_text_or_null(d.delivery_id);
        query.bind_text(to_string(d.kind)).bind_text(d.forge_event).bind_int(received);
        query.bind_text(headers);
        if (body) {
            query.bind_blob_ref(body->size ? std::string_view(body->bytes) : d.body);
        } else {
            query.bind_null();
        }
        query.bind_text(digest);
        if (by_body) {
            query.bind_int(key);
        } else {
            query.bind_null();
        }
        if (reasons.size) {
            query.bind_blob_ref(reasons.bytes);
        } else {
            query.bind_text(reasons.bytes);
        }
        query.bind_text(d.repository).bind_text(d.ref);
        if (body && body->size) {
            query.bind_int(*body->size);
        } else {
            query.bind_null();
        }
        if (reasons.size) {
            query.bind_int(*reasons.size);
        } else {
            query.bind_null();
        }
        query.run();
    }
    Receipt receipt;
    // DO NOTHING on the unique key: no row means this (source, delivery id) is already stored,
    // by an earlier transaction or earlier in this one.
    if (db_.changes() == 0) {
        receipt.duplicate = true;
        receipt.duplicate_of = d.delivery_id;
        return receipt;
    }
    const std::int64_t delivery = db_.last_insert_rowid();
    Query(mark_received_).bind_int(delivery).bind_int(received).run();
    // The listing's "unmatched" reads this instead of probing every delivery for a trigger.
    if (triggers.empty()) Query(insert_unmatched_).bind_int(delivery).run();
    for (std::size_t i = 0; i < triggers.size(); ++i) {
        receipt.trigger_ids.push_back(
            add_trigger(delivery, triggers[i], received, ids ? &(*ids)[i] : nullptr));
    }
    // After every trigger of the submission is in: they never supersede each other (the same
    // delivery), only those of earlier deliveries, including earlier ones of this group commit.
    const std::string newer_delivery =
        d.delivery_id.empty() ? "#" + std::to_string(delivery) : d.delivery_id;
    for (std::size_t i = 0; i < triggers.size(); ++i) {
        const std::string scope = coalesce_scope(triggers[i]);
        if (scope.empty()) continue;
        supersede_older(delivery, scope, triggers[i], receipt.trigger_ids[i], newer_delivery,
                        received, receipt.superseded);
    }
    return receipt;
}

std::string Intake::add_trigger(std::int64_t delivery, const TriggerRequest& t, std::int64_t at_ms,
                                const std::string* given) {
    std::string id = given ? *given : make_trigger_id();
    const std::string job = strings_json(t.job);
    const std::string parameters = pairs_json(t.parameters);
    Query query(insert_trigger_);
    query.bind_text(id).bind_int(delivery).bind_text(t.rule).bind_text(t.jenkins);
    query.bind_text(job).bind_text(parameters).bind_text(t.cause);
    query.bind_int(at_ms).bind_int(at_ms).bind_int(at_ms).bind_text(to_string(t.follow));
    // The outcome ("pending"), the build record and the chores keep their column defaults.
    query.bind_text_or_null(status_target_json(t.status)).bind_text(t.coalesce);
    query.bind_int(t.cancel_superseded ? 1 : 0);
    query.bind_int(static_cast<std::int64_t>(std::min<std::size_t>(t.multibranch, k_max_size)));
    query.bind_int(t.scan_only ? 1 : 0).bind_text(coalesce_scope(t)).run();
    return id;
}

void Intake::supersede_older(std::int64_t delivery, const std::string& scope,
                             const TriggerRequest& newer_request, const std::string& newer,
                             const std::string& newer_delivery, std::int64_t at_ms,
                             std::vector<std::pair<std::string, std::string>>& out) {
    const std::string outcome = superseded_outcome(newer, newer_delivery);
    std::vector<std::pair<std::string, bool>> superseded;
    {
        Query query(supersede_);
        query.bind_text(newer).bind_text(outcome).bind_int(at_ms).bind_text(scope);
        query.bind_int(delivery);
        while (query.step()) superseded.emplace_back(query.text(0), query.int64(1) != 0);
    }
    if (superseded.empty()) return;
    const StatusWish wish = superseded_wish(newer_request, newer);
    for (auto& [id, has_status] : superseded) {
        if (has_status) chores_.record_wish(id, wish);
        out.emplace_back(std::move(id), newer);
    }
}

std::optional<Receipt> Intake::find_same_body(const DeliveryRecord& d, const std::string& digest,
                                              std::int64_t key, std::int64_t received) {
    const std::int64_t window = d.duplicate_body_window.count();
    constexpr auto k_min = std::numeric_limits<std::int64_t>::min();
    const std::int64_t since = received < k_min + window ? k_min : received - window;
    Query query(find_body_);
    query.bind_int(key).bind_text(digest).bind_text(d.source).bind_int(since);
    if (!query.step()) return std::nullopt;
    Receipt receipt;
    receipt.duplicate = true;
    if (query.is_null(1)) {
        receipt.duplicate_of = "#" + std::to_string(query.int64(0));
    } else {
        receipt.duplicate_of = query.text(1);
    }
    // The same id too: a redelivery, reported as such.
    receipt.same_body = d.delivery_id.empty() || receipt.duplicate_of != d.delivery_id;
    return receipt;
}

}  // namespace hookrelay::store::sqlite
