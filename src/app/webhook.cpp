#include "app/webhook.hpp"

#include "app/logging.hpp"

#include "ingest/forge.hpp"
#include "ingest/hmac.hpp"
#include "ingest/ingest.hpp"
#include "store/codec.hpp"
#include "util/bridge.hpp"

#include <hookrelay/json_writer.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <mutex>

namespace hookrelay::app {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// Answers are written as JSON text directly (json_writer.hpp): every webhook gets one, and a DOM
// of it cost more than the rest of the answer's work.
std::string rejection(std::string_view status, std::string_view reason) {
    JsonWriter w;
    w.begin_object().member("status", status).member("error", reason).end_object();
    return w.take();
}

http::Response respond(unsigned status, std::string body) {
    http::Response r;
    r.status = status;
    r.body = std::move(body);
    r.body += '\n';
    return r;
}

// At most this many log lines about rejected requests per window; the rest are counted and the
// count is logged with the next line that goes through.
constexpr std::size_t k_rejection_log_burst = 20;
constexpr std::chrono::milliseconds k_rejection_log_window{10'000};

std::string_view path_of(std::string_view target) {
    return target.substr(0, target.find('?'));
}

// The client's address as `hookrelay status` shows it: the one a trusted proxy forwarded, else
// the direct peer's, without its port (the server writes "192.0.2.7:51234", "2001:db8::7:51234").
std::string client_address(const http::RequestHead* head, std::string_view remote) {
    if (head != nullptr && head->client) return to_string(*head->client);
    return std::string(remote.substr(0, remote.rfind(':')));
}

const SourceConfig* source_for_path(const Config& config, std::string_view target) {
    const auto path = path_of(target);
    for (const auto& s : config.sources) {
        if (s.path == path) return &s;
    }
    return nullptr;
}

// Waits for Store::submit for at most `deadline`; a store that does not answer in time is
// treated as unavailable.
asio::awaitable<result<Receipt>> submit_with_deadline(DeliveryIntake& store,
                                                      DeliveryRecord delivery,
                                                      std::vector<TriggerRequest> triggers,
                                                      std::chrono::milliseconds deadline) {
    auto receipt = co_await await_callback<result<Receipt>>(
        [&](auto done) { store.submit(std::move(delivery), std::move(triggers), std::move(done)); },
        deadline);
    if (!receipt) co_return errc::store_timeout;
    co_return std::move(*receipt);
}

// The first members of an answer about a delivery (its object is left open).
void write_event_summary(JsonWriter& w, const Event& e) {
    w.member("delivery", echoed(e.delivery_id)).member("source", e.source);
    w.member("event", to_string(e.kind)).member("repository", echoed(e.repository.full_name));
    if (!e.action.empty()) w.member("action", echoed(e.action));
    if (!e.ref.empty()) w.member("ref", echoed(e.ref));
    if (!e.commit.empty()) w.member("commit", echoed(e.commit));
}

// One event of a delivery with several: what tells it from its siblings.
void write_event_brief(JsonWriter& w, const Event& e) {
    w.begin_object().member("event", to_string(e.kind));
    if (!e.action.empty()) w.member("action", echoed(e.action));
    if (!e.ref.empty()) w.member("ref", echoed(e.ref));
    if (!e.commit.empty()) w.member("commit", echoed(e.commit));
    if (e.created) w.member("created", true);
    if (e.deleted) w.member("deleted", true);
    w.end_object();
}

}  // namespace

std::string_view media_kind(Provider provider, std::string_view content_type) noexcept {
    return ingest::media_kind(provider, content_type);
}

json::object decision_json(const rules::Decision& decision) {
    const bool several = decision.events > 1;
    json::array rules;
    for (const auto& r : decision.rules) {
        json::object o{{"name", r.rule}, {"matched", r.matched}};
        if (several) o["event"] = r.event;
        if (!r.evaluated) o["evaluated"] = false;
        if (!r.reason.empty()) o["reason"] = r.reason;
        rules.push_back(std::move(o));
    }
    json::array triggers;
    for (std::size_t i = 0; i < decision.triggers.size(); ++i) {
        const auto& t = decision.triggers[i];
        json::array segments;
        for (const auto& s : t.job) segments.emplace_back(s);
        json::object params;
        for (const auto& [k, v] : t.parameters) params[k] = v;
        json::object o{{"rule", t.rule},
                       {"jenkins", t.jenkins},
                       {"job", job_display_path(t.job)},
                       {"job_segments", std::move(segments)},
                       {"parameters", std::move(params)},
                       {"cause", t.cause}};
        if (several) o["event"] = decision.trigger_events.at(i);
        triggers.push_back(std::move(o));
    }
    json::array failures;
    for (const auto& f : decision.failures) {
        json::object o{{"rule", f.rule}, {"reason", f.reason}};
        if (several) o["event"] = f.event;
        failures.push_back(std::move(o));
    }
    return json::object{{"rules", std::move(rules)},
                        {"triggers", std::move(triggers)},
                        {"failures", std::move(failures)}};
}

Prepared prepare(const Runtime& runtime, const SourceConfig& source, const HeaderMap& headers,
                 std::string_view body, bool verify, std::chrono::system_clock::time_point now) {
    Prepared out;
    auto reject = [&](unsigned status, std::string reason) {
        out.status = status;
        out.body = rejection("rejected", reason);
        out.log_reason = std::move(reason);
        return out;
    };
    if (verify) {
        if (auto v = ingest::verify(source, headers, body, now); !v) {
            if (v.error() == errc::signature_missing) {
                // Which header: a forge sending none usually has no secret set for the hook.
                return reject(401, fmt::format("{}: this {} source checks {}", v.error().message(),
                                               to_string(source.provider),
                                               ingest::expected_credentials(source, headers)));
            }
            return reject(401, v.error().message());
        }
    }
    const auto content_type = headers.find("Content-Type").value_or("");
    if (media_kind(source.provider, content_type).empty()) {
        return reject(415, fmt::format("unsupported content type '{}' for a {} source",
                                       echoed(content_type), to_string(source.provider)));
    }
    const auto parse_limit = runtime.config->server.parse_memory_limit;
    auto parsed = ingest::parse_body(content_type, body, parse_limit);
    if (!parsed) {
        if (parsed.error() == errc::payload_too_large) {
            return reject(413, fmt::format("payload too large to parse: more than {} MiB of JSON "
                                           "structure (server.parse_memory_limit)",
                                           parse_limit / (1024 * 1024)));
        }
        return reject(parsed.error() == errc::unsupported_media_type ? 415 : 400,
                      parsed.error().message());
    }
    auto events = ingest::normalize(source, headers, std::move(*parsed));
    if (!events) {
        if (events.error() == errc::too_many_events) {
            return reject(400,
                          fmt::format("{}: more than {} ref changes in one delivery",
                                      events.error().message(), ingest::k_max_events_per_delivery));
        }
        if (events.error() == errc::missing_event_header) {
            // Which header: the source's own, or its forge's.
            std::string names;
            if (source.event_name.from == ValueRef::From::header) {
                names = source.event_name.name;
            } else {
                for (const auto name : ingest::forge(source.provider).event_headers) {
                    names += (names.empty() ? "" : " or ") + std::string(name);
                }
            }
            return reject(400,
                          fmt::format("{}: a {} source takes the event from {}",
                                      events.error().message(), to_string(source.provider), names));
        }
        if (events.error() == errc::other_forge_event) {
            return reject(400, fmt::format("{}: '{}' is not a {} event; point the hook at a "
                                           "source of its kind (bitbucket-cloud or "
                                           "bitbucket-server)",
                                           events.error().message(),
                                           printable(ingest::event_name(source, headers)),
                                           ingest::forge(source.provider).title));
        }
        if (const auto event = ingest::event_name(source, headers);
            events.error() == errc::missing_field && !event.empty()) {
            // Most often a body sent under another event's name (a test tool, a proxy): say
            // which event it was read as.
            return reject(
                400, fmt::format("{} of a '{}' event (a push needs its ref and repository, a pull "
                                 "request its number): does the event header name what the "
                                 "body is?",
                                 events.error().message(), printable(event)));
        }
        return reject(400, events.error().message());
    }

    if (events->front().kind == EventKind::ping) {
        out.status = 200;
        JsonWriter w;
        w.begin_object();
        write_event_summary(w, events->front());
        w.member("status", "pong").end_object();
        out.body = w.take();
        out.event = std::move(events->front());
        return out;
    }
    out.decision = runtime.rules->evaluate(*events);
    out.event = std::move(events->front());
    if (events->size() > 1) {
        out.more_events.assign(std::make_move_iterator(events->begin() + 1),
                               std::make_move_iterator(events->end()));
    }
    out.record = true;
    return out;
}

WebhookHandler::WebhookHandler(std::shared_ptr<const Runtime> runtime,
                               std::shared_ptr<DeliveryIntake> store,
                               std::shared_ptr<Metrics> metrics)
    : body_limit_(runtime->config->server.body_limit),
      runtime_(std::move(runtime)),
      store_(std::move(store)),
      metrics_(std::move(metrics)),
      rejection_log_(k_rejection_log_burst, k_rejection_log_window),
      ping_log_(k_rejection_log_burst, k_rejection_log_window),
      store_failure_log_(k_rejection_log_burst, k_rejection_log_window),
      duplicate_log_(k_rejection_log_burst, k_rejection_log_window) {}

void WebhookHandler::set_runtime(std::shared_ptr<const Runtime> runtime) noexcept {
    runtime_.store(std::move(runtime));
}

std::shared_ptr<const Runtime> WebhookHandler::runtime() const noexcept {
    return runtime_.load();
}

std::optional<http::Response> WebhookHandler::check_head(const http::RequestHead& head) {
    const auto runtime = runtime_.load();
    const auto* source = source_for_path(*runtime->config, head.target);
    auto early = check_head_for(*runtime, source, head);
    if (early) {
        metrics_->webhook(source ? std::string_view(source->name) : "none",
                          source ? to_string(source->provider) : "none", early->status);
    }
    return early;
}

void WebhookHandler::rejected(const http::Rejection& rejection) {
    // The server has logged it; count it like any other answer on the webhook port.
    const SourceConfig* source = nullptr;
    const auto runtime = runtime_.load();
    if (rejection.head) source = source_for_path(*runtime->config, rejection.head->target);
    const std::string_view name = source ? std::string_view(source->name) : "none";
    metrics_->webhook(name, source ? to_string(source->provider) : "none", rejection.status);
    count_rejection(name, rejection.status, rejection.reason,
                    client_address(rejection.head, rejection.remote));
}

void WebhookHandler::count_rejection(std::string_view source, unsigned status,
                                     std::string_view reason, std::string_view client) {
    // One entry per reason, so that a stray request (an unsigned probe) does not hide why the
    // forge's own deliveries fail. Reasons may quote what the request held (a path, a content
    // type): past k_reasons of a source and status, the one seen least recently gives its place
    // to the new one and is counted in an entry shared by the others. Sources come from the
    // config (and "none"); a reload that renames them adds names: no new entry past
    // k_max_entries.
    constexpr std::size_t k_reasons = 4;
    constexpr std::size_t k_max_entries = 1000;
    auto shown_reason = printable(reason);
    auto shown_client = printable(client);
    const auto now = std::chrono::system_clock::now();
    std::lock_guard lock(rejections_mutex_);
    Rejections::key_type key{std::string(source), status, shown_reason};
    auto it = rejections_.find(key);
    if (it == rejections_.end()) {
        std::size_t reasons = 0;
        auto oldest = rejections_.end();
        for (auto at = rejections_.lower_bound({std::get<0>(key), status, std::string()});
             at != rejections_.end() && std::get<0>(at->first) == source &&
             std::get<1>(at->first) == status;
             ++at) {
            if (std::get<2>(at->first) == k_other_reasons) continue;
            ++reasons;
            if (oldest == rejections_.end() || at->second.last_at < oldest->second.last_at) {
                oldest = at;
            }
        }
        if (reasons >= k_reasons) {
            const Rejections::key_type other_key{std::get<0>(key), status, k_other_reasons};
            auto other = rejections_.find(other_key);
            if (other == rejections_.end()) {
                other = rejections_.emplace(other_key, RejectionCount{}).first;
                other->second.source = std::get<0>(key);
                other->second.status = status;
            }
            RejectionCount& folded = other->second;
            folded.count += oldest->second.count;
            if (oldest->second.last_at >= folded.last_at) {
                folded.last_at = oldest->second.last_at;
                folded.last_reason = "(other reasons; the last) " + oldest->second.last_reason;
                folded.last_client = oldest->second.last_client;
            }
            rejections_.erase(oldest);
        } else if (rejections_.size() >= k_max_entries) {
            return;
        }
        it = rejections_.emplace(key, RejectionCount{}).first;
        it->second.source = std::get<0>(key);
        it->second.status = status;
    }
    RejectionCount& r = it->second;
    ++r.count;
    r.last_at = now;
    r.last_reason = std::move(shown_reason);
    r.last_client = std::move(shown_client);
}

std::vector<RejectionCount> WebhookHandler::rejections() const {
    std::lock_guard lock(rejections_mutex_);
    std::vector<RejectionCount> out;
    out.reserve(rejections_.size());
    for (const auto& [name, r] : rejections_) out.push_back(r);
    return out;
}

std::optional<http::Response> WebhookHandler::check_head_for(const Runtime& runtime,
                                                             const SourceConfig* source,
                                                             const http::RequestHead& head) {
    const auto path = path_of(head.target);
    const auto client = head.client ? to_string(*head.client) : std::string("unknown");
    auto log_rejection = [&](unsigned status, std::string_view reason) {
        count_rejection(source ? std::string_view(source->name) : "none", status, reason,
                        client_address(&head, head.remote));
        if (std::size_t suppressed = 0; rejection_log_.allow(&suppressed)) {
            spdlog::warn("source={} client={} remote={} rejected {}: {}{}",
                         source ? std::string_view(source->name) : "none", client, head.remote,
                         status, printable(reason),
                         suppressed == 0
                             ? std::string()
                             : fmt::format(" ({} similar lines suppressed)", suppressed));
        }
    };
    if (source == nullptr) {
        std::string hint;
        // "/hooks/github/" for "/hooks/github" is the most common set-up mistake.
        if (path.size() > 1 && path.back() == '/') {
            if (const auto* s = source_for_path(*runtime.config, path.substr(0, path.size() - 1))) {
                hint = fmt::format(
                    " (did you mean {}? the forge's webhook URL has a trailing "
                    "slash)",
                    s->path);
            }
        }
        const auto shown = echoed(path);
        log_rejection(404, fmt::format("no webhook source at {}{}", shown, hint));
        return respond(
            404, rejection("rejected", fmt::format("no webhook source at {}{}", shown, hint)));
    }
    if (!source->allow_from.empty() &&
        (!head.client || !contains_any(source->allow_from, *head.client))) {
        log_rejection(403, "client address not in allow_from");
        return respond(403, rejection("rejected", "this address may not deliver to this source"));
    }
    if (head.method != "POST") {
        log_rejection(
            405, fmt::format("method {} (webhooks are delivered with POST)", echoed(head.method)));
        auto r = respond(405, rejection("rejected", "webhooks are delivered with POST"));
        r.headers.emplace_back("Allow", "POST");
        return r;
    }
    if (head.content_length && *head.content_length > body_limit_) {
        log_rejection(413, fmt::format("Content-Length {} exceeds body_limit {}",
                                       *head.content_length, body_limit_));
        return respond(413, rejection("rejected", "body exceeds the configured body_limit"));
    }
    const auto content_type = head.headers.find("Content-Type").value_or("");
    if (media_kind(source->provider, content_type).empty()) {
        const auto reason = fmt::format("unsupported content type '{}' for a {} source",
                                        echoed(content_type), to_string(source->provider));
        log_rejection(415, reason);
        return respond(415, rejection("rejected", reason));
    }
    return std::nullopt;
}

asio::awaitable<http::Response> WebhookHandler::handle(http::Request request) {
    const auto runtime = runtime_.load();
    const auto* source = source_for_path(*runtime->config, request.head.target);
    if (source == nullptr) {
        // A reload took its source away after the head was checked.
        metrics_->webhook("none", "none", 404);
        count_rejection("none", 404, "no webhook source at this path (removed by a reload)",
                        client_address(&request.head, request.head.remote));
        co_return respond(404, rejection("rejected", "no webhook source at this path"));
    }
    const auto started = std::chrono::steady_clock::now();
    auto response = co_await process(std::move(request), *source, runtime);
    metrics_->webhook_duration(source->name, std::chrono::steady_clock::now() - started);
    metrics_->webhook(source->name, to_string(source->provider), response.status);
    co_return response;
}

asio::awaitable<http::Response> WebhookHandler::process(http::Request request,
                                                        const SourceConfig& source,
                                                        std::shared_ptr<const Runtime> runtime) {
    const auto received_at = std::chrono::system_clock::now();
    const std::string request_client = client_address(&request.head, request.head.remote);
    auto prepared =
        prepare(*runtime, source, request.head.headers, request.body, true, received_at);
    if (!prepared.event) {
        // The delivery id is the sender's claim here: the request was not verified.
        if (std::size_t suppressed = 0; rejection_log_.allow(&suppressed)) {
            spdlog::warn(
                "delivery={} source={} remote={} rejected {}: {}{}",
                printable_word(ingest::delivery_id(source, request.head.headers)), source.name,
                request.head.remote, prepared.status, printable(prepared.log_reason),
                suppressed == 0 ? std::string()
                                : fmt::format(" ({} similar lines suppressed)", suppressed));
        }
        if (prepared.status == 401) metrics_->signature_failure(source.name);
        count_rejection(source.name, prepared.status, prepared.log_reason, request_client);
        co_return respond(prepared.status, std::move(prepared.body));
    }
    if (!prepared.record) {
        // A ping may come unsigned (Bitbucket Data Center's "Test connection"): what it says
        // about itself is echoed shortened, and at most as often as rejections are logged.
        if (std::size_t suppressed = 0; ping_log_.allow(&suppressed)) {
            spdlog::info("delivery={} source={} {}: ping answered{}",
                         printable_word(prepared.event->delivery_id), source.name,
                         printable_word(prepared.event->forge_event),
                         suppressed == 0
                             ? std::string()
                             : fmt::format(" ({} similar lines suppressed)", suppressed));
        }
        co_return respond(prepared.status, std::move(prepared.body));
    }

    DeliveryRecord record;
    // The answer, written as far as the store's receipt: its object stays open.
    JsonWriter body;
    std::string delivery, repository, ref;
    EventKind kind = EventKind::other;
    {
        const Event& event = *prepared.event;
        record.source = source.name;
        record.provider = source.provider;
        record.delivery_id = event.delivery_id;
        record.kind = event.kind;
        record.forge_event = event.forge_event;
        record.received_at = received_at;
        // For listings: pull requests by their ref (refs/pull/<n>/head), pushes by theirs.
        record.repository = event.repository.full_name;
        record.ref = !event.ref.empty() ? event.ref : event.tag;
        for (const auto& [name, value] : request.head.headers.fields()) {
            if (ingest::recorded_header(source, name)) {
                record.headers.emplace_back(name, value);
            }
        }
        // Why each rule that queued nothing did not, each reason as the answer below says it
        // (bounded), and every one where the answer lists the first k_max_skipped_answered, so
        // `deliveries show` can say it once the forge's delivery log is gone.
        // Written as the decision is read: with a thousand rules, a thousand reasons, most of
        // each a beginning they share ("repository: 'acme/app' matches none of "), which the
        // store's text holds once (store::RuleReasonsWriter).
        {
            // ~28 bytes a rule where most reasons share their beginning (docs/performance.md).
            store::RuleReasonsWriter reasons(32 + 32 * prepared.decision.rules.size());
            for (const auto& r : prepared.decision.rules) {
                if (r.matched) continue;
                if (r.reason.size() <= k_max_echoed_bytes) {
                    reasons.add(r.rule, r.reason, r.shared, false, r.event);
                } else {
                    reasons.add(r.rule, echoed(r.reason), 0, false, r.event);
                }
            }
            for (const auto& f : prepared.decision.failures) {
                reasons.add(f.rule, echoed(f.reason), 0, true, f.event);
            }
            record.rule_reasons = std::move(reasons).finish();
        }
        // body_sha256 is left to the store (SQLite takes a kept body's only when it is shown).
        record.duplicate_body_window =
            ingest::duplicate_body_window(source, !event.delivery_id.empty());
        record.body = std::move(request.body);

        // What the answer and the log lines need of the events, bounded (the sender chose it).
        body.begin_object();
        write_event_summary(body, event);
        if (!prepared.more_events.empty()) {
            body.key("events").begin_array();
            write_event_brief(body, event);
            for (const auto& more : prepared.more_events) write_event_brief(body, more);
            body.end_array();
        }
        delivery = echoed(event.delivery_id);
        repository = echoed(event.repository.full_name);
        ref = echoed(event.ref);
        kind = event.kind;
    }
    // The events and their parsed payload go before the wait for the store: a parsed payload
    // lives only while a network thread works on it, so at most server.threads exist at once.
    prepared.event.reset();
    prepared.more_events.clear();
    const bool several = prepared.decision.events > 1;
    // As the log lines' heads show them: the sender chose them (and did not sign the id).
    std::string scratch_delivery, scratch_repository, scratch_ref;
    const auto logged_delivery = log_word(delivery, scratch_delivery);

    const auto& decision = prepared.decision;
    auto receipt = co_await submit_with_deadline(*store_, std::move(record), decision.triggers,
                                                 runtime->config->server.store_timeout);
    if (!receipt) {
        // A persistent store fault repeats this for every delivery: rate-limited.
        if (std::size_t suppressed = 0; store_failure_log_.allow(&suppressed)) {
            spdlog::error(
                "delivery={} source={}: store did not accept the delivery ({}); answered "
                "503 so the forge records a failure{}",
                logged_delivery, source.name, receipt.error().message(),
                suppressed == 0 ? std::string()
                                : fmt::format(" ({} similar lines suppressed)", suppressed));
        }
        metrics_->store_failure();
        // Not stored (or, after server.store_timeout, maybe later: a redelivery is then a
        // duplicate): listed with the requests turned away, since `deliveries list` may not
        // have it.
        count_rejection(
            source.name, 503,
            fmt::format("the store did not accept the delivery ({})", receipt.error().message()),
            request_client);
        body.member("status", "unavailable")
            .member("error", "the relay cannot record deliveries right now")
            .end_object();
        co_return respond(503, body.take());
    }
    if (receipt->duplicate) {
        const auto earlier = echoed(receipt->duplicate_of);
        const auto reason = receipt->same_body
                                ? fmt::format(
                                      "same body as delivery {}, received within the "
                                      "source's duplicate body window",
                                      earlier)
                                : fmt::format("delivery id {} was received before", earlier);
        if (std::size_t suppressed = 0; duplicate_log_.allow(&suppressed)) {
            spdlog::info("delivery={} source={}: duplicate ({}), nothing queued{}", logged_delivery,
                         source.name, printable(reason),
                         suppressed == 0
                             ? std::string()
                             : fmt::format(" ({} similar lines suppressed)", suppressed));
        }
        metrics_->duplicate(source.name);
        body.member("status", "duplicate").member("duplicate_of", earlier).member("reason", reason);
        // GitHub's "Redeliver" button reuses the delivery id: say how to run it again.
        body.member("hint", fmt::format("already recorded as {}; to run it through the current "
                                        "rules use hookrelay deliveries redeliver {}",
                                        earlier, earlier));
        body.end_object();
        co_return respond(200, body.take());
    }

    const auto matched = decision.matched_rules();
    const bool accepted = !decision.triggers.empty();
    // "not_queued": rules matched but none of their triggers could be built (see failures).
    body.member("status", accepted ? "accepted" : (matched.empty() ? "no_match" : "not_queued"));
    body.key("matched_rules").begin_array();
    for (const auto& name : matched) body.value(name);
    body.end_array();
    body.key("triggers").begin_array();
    for (std::size_t i = 0; i < decision.triggers.size(); ++i) {
        const auto& t = decision.triggers[i];
        const auto job = echoed(job_display_path(t.job));
        body.begin_object().member("id", receipt->trigger_ids.at(i)).member("rule", t.rule);
        body.member("jenkins", t.jenkins).member("job", job);
        if (several) body.member("event", std::uint64_t{decision.trigger_events.at(i)});
        body.end_object();
        metrics_->triggers_queued(t.rule, t.jenkins, 1);
        std::string scratch_job;
        spdlog::info("delivery={} trigger={} rule={} jenkins={} job={} queued", logged_delivery,
                     receipt->trigger_ids.at(i), t.rule, t.jenkins, log_word(job, scratch_job));
        for (const auto& [old_id, new_id] : receipt->superseded) {
            if (new_id != receipt->trigger_ids.at(i)) continue;
            metrics_->trigger_outcome(t.rule, t.jenkins, "superseded");
            spdlog::info(
                "delivery={} trigger={} rule={} supersedes trigger {} (same coalesce key '{}', "
                "still waiting): {} will not be sent",
                logged_delivery, new_id, t.rule, old_id, printable(t.coalesce), old_id);
        }
    }
    body.end_array();
    body.key("skipped").begin_array();
    std::size_t listed = 0;
    std::size_t not_listed = 0;
    for (const auto& r : decision.rules) {
        if (r.matched) continue;
        if (listed == k_max_skipped_answered) {
            ++not_listed;
            continue;
        }
        ++listed;
        body.begin_object().member("rule", r.rule).member("reason", echoed(r.reason));
        if (several) body.member("event", std::uint64_t{r.event});
        body.end_object();
    }
    body.end_array();
    if (not_listed > 0) {
        body.member("skipped_not_listed", std::uint64_t{not_listed});
        // The id as the forge sent it names the delivery; one cut for the answer, or none at
        // all (the store knows it as #<seq>), is found with deliveries list.
        const bool named = !delivery.empty() && delivery.size() < k_max_echoed_bytes;
        body.member("hint", fmt::format("{} more {} queued nothing; {} lists why for each",
                                        not_listed, not_listed == 1 ? "rule" : "rules",
                                        named ? "hookrelay deliveries show " + delivery
                                              : std::string("hookrelay deliveries list finds this "
                                                            "delivery, and deliveries show")));
    }
    if (!decision.failures.empty()) {
        body.key("failures").begin_array();
        for (const auto& f : decision.failures) {
            const auto reason = echoed(f.reason);
            spdlog::warn("delivery={} rule={}: matched but its trigger could not be built: {}",
                         logged_delivery, f.rule, printable(reason));
            body.begin_object().member("rule", f.rule).member("reason", reason);
            if (several) body.member("event", std::uint64_t{f.event});
            body.end_object();
        }
        body.end_array();
    }
    body.end_object();
    spdlog::info(
        "delivery={} source={} event={} repository={} ref={}{}: {}, {} trigger(s)", logged_delivery,
        source.name, to_string(kind), log_word(repository, scratch_repository),
        log_word(ref, scratch_ref),
        several ? fmt::format(" (and {} more events)", decision.events - 1) : std::string(),
        accepted ? "accepted" : "no rule matched", decision.triggers.size());
    co_return respond(accepted ? 202 : 200, body.take());
}

}  // namespace hookrelay::app
