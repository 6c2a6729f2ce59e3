#include "store/codec.hpp"

#include <hookrelay/json_writer.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_to.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace hookrelay::store {
namespace {

using Clock = std::chrono::system_clock;

// What we wrote ourselves; bytes that are not UTF-8 went in verbatim and must come back so.
boost::json::value parse_value(std::string_view text) {
    boost::json::parse_options options;
    options.allow_invalid_utf8 = true;
    return boost::json::parse(text, {}, options);
}

boost::json::array parse_array(std::string_view text) {
    return parse_value(text).as_array();
}

std::string to_hex(const unsigned char* data, std::size_t size) {
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(size * 2);
    for (std::size_t i = 0; i < size; ++i) {
        out += k_digits[data[i] >> 4];
        out += k_digits[data[i] & 0x0f];
    }
    return out;
}

boost::json::object parse_object(std::string_view text) {
    return parse_value(text).as_object();
}

std::string text_of(const boost::json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v ? std::string(v->as_string()) : std::string();
}

std::int64_t int_of(const boost::json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v ? v->as_int64() : 0;
}

}  // namespace

std::int64_t to_ms(TimePoint t) noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::int64_t to_ms_not_before(TimePoint t) noexcept {
    return std::chrono::ceil<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

TimePoint from_ms(std::int64_t ms) noexcept {
    return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(ms)));
}

// Written directly (json_writer.hpp), as Boost.JSON would serialize the array: the SQLite store
// encodes each submit's headers, job and parameters on its one thread.
std::string pairs_json(const Pairs& pairs) {
    JsonWriter w;
    w.begin_array();
    for (const auto& [name, value] : pairs) w.begin_array().value(name).value(value).end_array();
    w.end_array();
    return w.take();
}

std::string strings_json(const std::vector<std::string>& strings) {
    JsonWriter w;
    w.begin_array();
    for (const auto& s : strings) w.value(s);
    w.end_array();
    return w.take();
}

Pairs parse_pairs(std::string_view text) {
    Pairs out;
    for (const auto& v : parse_array(text)) {
        const auto& pair = v.as_array();
        out.emplace_back(pair.at(0).as_string(), pair.at(1).as_string());
    }
    return out;
}

std::vector<std::string> parse_strings(std::string_view text) {
    std::vector<std::string> out;
    for (const auto& v : parse_array(text)) out.emplace_back(v.as_string());
    return out;
}

RuleReasonsWriter::RuleReasonsWriter(std::size_t capacity) : out_(capacity) {
    out_.begin_object().key("reasons").begin_array();
}

std::size_t RuleReasonsWriter::head(std::string_view text) {
    const auto recent_end = recent_.begin() + static_cast<std::ptrdiff_t>(recent_count_);
    auto found = std::find_if(recent_.begin(), recent_end,
                              [&](std::size_t at) { return heads_[at] == text; });
    std::size_t at = 0;
    if (found != recent_end) {
        at = *found;
    } else {
        // Not among the recent ones: a head used before, or a new one.
        at = index_.try_emplace(text, heads_.size()).first->second;
        if (at == heads_.size()) heads_.push_back(text);
        if (recent_count_ < recent_.size()) ++recent_count_;
        found = recent_.begin() + static_cast<std::ptrdiff_t>(recent_count_ - 1);
    }
    // Most recent first.
    std::move_backward(recent_.begin(), found, found + 1);
    recent_[0] = at;
    return at;
}

void RuleReasonsWriter::add(std::string_view rule, std::string_view reason, std::size_t shared,
                            bool matched, std::size_t event) {
    any_ = true;
    out_.begin_array().value(rule);
    if (shared > 0 && shared <= reason.size()) {
        out_.value(std::uint64_t{head(reason.substr(0, shared))}).value(reason.substr(shared));
    } else {
        out_.value(reason);
    }
    if (event != 0 || matched) out_.value(std::uint64_t{event}).value(matched);
    out_.end_array();
}

std::string RuleReasonsWriter::finish() && {
    if (!any_) return "[]";
    out_.end_array().key("heads").begin_array();
    for (const auto head : heads_) out_.value(head);
    out_.end_array().end_object();
    return out_.take();
}

std::string rule_reasons_json(const std::vector<RuleReason>& reasons) {
    std::size_t size = 16;
    for (const RuleReason& r : reasons) size += r.rule.size() + r.reason.size() + 24;
    RuleReasonsWriter w(size);
    for (const RuleReason& r : reasons) w.add(r.rule, r.reason, 0, r.matched, r.event);
    return std::move(w).finish();
}

std::vector<RuleReason> parse_rule_reasons(std::string_view json) {
    const auto parsed = parse_value(json);
    std::vector<RuleReason> out;
    if (parsed.is_array()) {
        // As written before 2026-12-05.
        for (const auto& v : parsed.get_array()) {
            const auto& row = v.as_array();
            RuleReason r;
            r.rule = row.at(0).as_string();
            r.reason = row.at(1).as_string();
            r.event = boost::json::value_to<std::size_t>(row.at(2));
            r.matched = row.at(3).as_bool();
            out.push_back(std::move(r));
        }
        return out;
    }
    const auto& object = parsed.as_object();
    const auto& heads = object.at("heads").as_array();
    const auto& reasons = object.at("reasons").as_array();
    out.reserve(reasons.size());
    for (const auto& v : reasons) {
        const auto& row = v.as_array();
        RuleReason r;
        r.rule = row.at(0).as_string();
        std::size_t next = 2;
        if (row.at(1).is_string()) {
            r.reason = row.at(1).get_string();
        } else {
            const auto& head = heads.at(boost::json::value_to<std::size_t>(row.at(1))).as_string();
            const auto& rest = row.at(2).as_string();
            r.reason.reserve(head.size() + rest.size());
            r.reason.append(head.data(), head.size()).append(rest.data(), rest.size());
            next = 3;
        }
        if (row.size() > next) {
            r.event = boost::json::value_to<std::size_t>(row.at(next));
            r.matched = row.at(next + 1).as_bool();
        }
        if (row.size() > next + 2) throw std::runtime_error("a rule reason with extra values");
        out.push_back(std::move(r));
    }
    return out;
}

std::optional<EventKind> kind_from_string(std::string_view text) noexcept {
    for (auto kind : {EventKind::push, EventKind::tag, EventKind::pull_request, EventKind::release,
                      EventKind::ping, EventKind::other}) {
        if (to_string(kind) == text) return kind;
    }
    return std::nullopt;
}

std::string sha256_hex(std::string_view bytes) {
    // Fetched once: EVP_sha256() makes EVP_Digest fetch the implementation again on every call
    // (OpenSSL 3), a lookup under a lock.
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (sha256 == nullptr ||
        EVP_Digest(bytes.data(), bytes.size(), digest, &size, sha256, nullptr) != 1) {
        throw std::runtime_error("SHA-256 failed");
    }
    return to_hex(digest, size);
}

bool is_sha256_hex(std::string_view text) noexcept {
    return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::int64_t body_key(std::string_view digest) noexcept {
    std::uint64_t key = 0;
    std::from_chars(digest.data(), digest.data() + std::min<std::size_t>(digest.size(), 16), key,
                    16);
    return static_cast<std::int64_t>(key);
}

namespace {

// Random bytes from OpenSSL's generator, drawn 512 at a time per thread: each RAND_bytes call
// checks for a fork with getpid() (a system call) and locks its generator, once per trigger id
// otherwise. A fork starts every block over (the child handler below), so a child process never
// hands out bytes its parent has or will. Bytes handed out are wiped from the block; those not yet
// handed out (future ids, not secrets) stay in it.
std::atomic<unsigned> g_forks{0};

struct RandomBlock {
    unsigned char bytes[512];
    std::size_t used = sizeof bytes;
    unsigned forks = 0;
};

void random_bytes(unsigned char* out, std::size_t n) {
    // Without the fork handler (it could not be registered), every draw goes to OpenSSL.
    static const bool fork_safe = pthread_atfork(nullptr, nullptr, [] {
                                      g_forks.fetch_add(1, std::memory_order_relaxed);
                                  }) == 0;
    thread_local RandomBlock block;
    if (!fork_safe || n > sizeof block.bytes) {
        if (RAND_bytes(out, static_cast<int>(n)) != 1)
            throw std::runtime_error("RAND_bytes failed");
        return;
    }
    const unsigned forks = g_forks.load(std::memory_order_relaxed);
    if (block.forks != forks || block.used + n > sizeof block.bytes) {
        if (RAND_bytes(block.bytes, sizeof block.bytes) != 1) {
            block.used = sizeof block.bytes;
            throw std::runtime_error("RAND_bytes failed");
        }
        block.used = 0;
        block.forks = forks;
    }
    std::memcpy(out, block.bytes + block.used, n);
    OPENSSL_cleanse(block.bytes + block.used, n);
    block.used += n;
}

}  // namespace

std::string random_hex(std::size_t bytes) {
    std::string raw(bytes, '\0');
    random_bytes(reinterpret_cast<unsigned char*>(raw.data()), bytes);
    return to_hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

std::string make_trigger_id(std::chrono::system_clock::time_point now) {
    unsigned char b[16];
    random_bytes(b, sizeof b);
    // RFC 9562 version 7: the first 48 bits are the Unix time in milliseconds, big-endian.
    const auto ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
    for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (8 * (5 - i)));
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x70);  // version 7
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 9562 variant
    const std::string hex = to_hex(b, sizeof b);
    return hex.substr(0, 8) + '-' + hex.substr(8, 4) + '-' + hex.substr(12, 4) + '-' +
           hex.substr(16, 4) + '-' + hex.substr(20);
}

std::array<std::string, 3> outcomes_by_follow(TriggerState state, const BuildRecord& build,
                                              bool follow_starts, bool following) {
    std::array<std::string, 3> outcomes;
    for (FollowMode mode : {FollowMode::none, FollowMode::started, FollowMode::finished}) {
        StoredTrigger t;
        t.state = state;
        t.request.follow = mode;
        t.build = build;
        t.following = follow_starts ? mode != FollowMode::none : following;
        outcomes[static_cast<std::size_t>(mode)] = trigger_outcome(t);
    }
    return outcomes;
}

std::optional<std::int64_t> parse_seq(std::string_view text) noexcept {
    if (text.size() < 2 || text.front() != '#') return std::nullopt;
    std::int64_t seq = 0;
    const char* first = text.data() + 1;
    const char* last = text.data() + text.size();
    const auto [end, ec] = std::from_chars(first, last, seq);
    if (ec != std::errc() || end != last) return std::nullopt;
    return seq;
}

}  // namespace hookrelay::store

namespace hookrelay::store {

std::string build_record_json(const BuildRecord& b) {
    if (b == BuildRecord{}) return {};
    boost::json::object o;
    auto text = [&](std::string_view key, const std::string& value) {
        if (!value.empty()) o[key] = value;
    };
    auto time = [&](std::string_view key, const std::optional<TimePoint>& value) {
        if (value) o[key] = to_ms(*value);
    };
    text("queue_url", b.queue_url);
    if (b.queue_id != 0) o["queue_id"] = b.queue_id;
    if (b.merged) o["merged"] = true;
    text("merged_with", b.merged_with);
    text("why", b.why);
    if (b.number != 0) o["number"] = b.number;
    text("url", b.url);
    text("result", b.result);
    time("queued_at", b.queued_at);
    time("started_at", b.started_at);
    time("finished_at", b.finished_at);
    text("error", b.error);
    if (b.unreadable != 0) o["unreadable"] = b.unreadable;
    return boost::json::serialize(o);
}

BuildRecord parse_build_record(std::string_view json) {
    BuildRecord b;
    if (json.empty()) return b;
    const auto o = parse_object(json);
    auto time = [&](std::string_view key) -> std::optional<TimePoint> {
        if (const auto* v = o.if_contains(key)) return from_ms(v->as_int64());
        return std::nullopt;
    };
    b.queue_url = text_of(o, "queue_url");
    b.queue_id = int_of(o, "queue_id");
    if (const auto* v = o.if_contains("merged")) b.merged = v->as_bool();
    b.merged_with = text_of(o, "merged_with");
    b.why = text_of(o, "why");
    b.number = int_of(o, "number");
    b.url = text_of(o, "url");
    b.result = text_of(o, "result");
    b.queued_at = time("queued_at");
    b.started_at = time("started_at");
    b.finished_at = time("finished_at");
    b.error = text_of(o, "error");
    b.unreadable = static_cast<int>(int_of(o, "unreadable"));
    return b;
}

std::string status_wish_json(const StatusWish& wish) {
    if (wish.state.empty()) return {};
    boost::json::object o;
    o["state"] = wish.state;
    o["description"] = wish.description;
    if (!wish.target_url.empty()) o["target_url"] = wish.target_url;
    return boost::json::serialize(o);
}

StatusWish parse_status_wish(std::string_view json) {
    StatusWish wish;
    if (json.empty()) return wish;
    const auto o = parse_object(json);
    wish.state = text_of(o, "state");
    wish.description = text_of(o, "description");
    wish.target_url = text_of(o, "target_url");
    return wish;
}

std::string status_target_json(const std::optional<StatusTarget>& target) {
    if (!target) return {};
    boost::json::object o;
    o["repository"] = target->repository;
    o["sha"] = target->sha;
    o["context"] = target->context;
    if (!target->ref.empty()) o["ref"] = target->ref;
    return boost::json::serialize(o);
}

std::optional<StatusTarget> parse_status_target(std::string_view json) {
    if (json.empty()) return std::nullopt;
    const auto o = parse_object(json);
    return StatusTarget{text_of(o, "repository"), text_of(o, "sha"), text_of(o, "context"),
                        text_of(o, "ref")};
}

}  // namespace hookrelay::store
