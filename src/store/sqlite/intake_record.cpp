#include "store/sqlite/intake_record.hpp"

#include "store/codec.hpp"

#include <hookrelay/event.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace hookrelay::store::sqlite {
namespace {

constexpr char k_version = 1;
// The same layout, for a record that carries its body packed and no digest (since 2026-12-05 every
// kept body that compresses, unless the submitter gave the digest): the digest is taken from the
// packed body where it is needed. A hookrelay before that would store the digest of the empty
// body it finds instead; this version byte makes it refuse the log, saying why.
constexpr char k_version_digest_from_packed_body = 2;
// Versions 1 and 2 with each status target's `ref` after its context (since 2026-12-06). A
// hookrelay before that refuses the log by this byte, saying why, rather than misread it.
constexpr char k_version_with_status_ref = 3;
constexpr char k_version_digest_from_packed_body_with_status_ref = 4;

class Writer {
  public:
    explicit Writer(std::string& out) : out_(out) {}
    void u64(std::uint64_t v) {
        for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
    void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
    void flag(bool v) { out_.push_back(v ? 1 : 0); }
    void str(std::string_view v) {
        u64(v.size());
        out_.append(v);
    }
    void pairs(const std::vector<std::pair<std::string, std::string>>& v) {
        u64(v.size());
        for (const auto& [name, value] : v) {
            str(name);
            str(value);
        }
    }
    void strings(const std::vector<std::string>& v) {
        u64(v.size());
        for (const auto& s : v) str(s);
    }
    void size(const std::optional<std::int64_t>& v) {
        flag(v.has_value());
        if (v) i64(*v);
    }

  private:
    std::string& out_;
};

class Reader {
  public:
    explicit Reader(std::string_view in) : in_(in) {}
    bool ok() const { return ok_; }
    bool done() const { return ok_ && in_.empty(); }

    std::uint64_t u64() {
        if (!take(8)) return 0;
        std::uint64_t v = 0;
        for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(taken_[i]);
        return v;
    }
    std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
    bool flag() {
        if (!take(1)) return false;
        if (taken_[0] != 0 && taken_[0] != 1) ok_ = false;
        return taken_[0] == 1;
    }
    std::string str() {
        const std::uint64_t n = u64();
        if (!ok_ || n > in_.size()) {
            ok_ = false;
            return {};
        }
        take(static_cast<std::size_t>(n));
        return std::string(taken_);
    }
    // A count of items each at least `least` bytes long: refused when the bytes left cannot hold
    // it, so that a damaged count never reserves memory for nothing.
    std::size_t count(std::size_t least) {
        const std::uint64_t n = u64();
        if (!ok_ || n > in_.size() / least) {
            ok_ = false;
            return 0;
        }
        return static_cast<std::size_t>(n);
    }
    std::vector<std::pair<std::string, std::string>> pairs() {
        std::vector<std::pair<std::string, std::string>> v(count(16));
        for (auto& [name, value] : v) {
            name = str();
            value = str();
        }
        return v;
    }
    std::vector<std::string> strings() {
        std::vector<std::string> v(count(8));
        for (auto& s : v) s = str();
        return v;
    }
    std::optional<std::int64_t> size() {
        if (!flag()) return std::nullopt;
        return i64();
    }
    template <class T>
    T known(const std::optional<T>& parsed) {
        if (!parsed) ok_ = false;
        return parsed.value_or(T{});
    }

  private:
    bool take(std::size_t n) {
        if (!ok_ || in_.size() < n) {
            ok_ = false;
            taken_ = {};
            return false;
        }
        taken_ = in_.substr(0, n);
        in_.remove_prefix(n);
        return true;
    }
    std::string_view in_;
    std::string_view taken_;
    bool ok_ = true;
};

}  // namespace

std::string encode_intake_record(const IntakeRecord& r) {
    return encode_intake_record(r.delivery, r.stored_body, r.reasons, r.triggers, r.trigger_ids);
}

std::string encode_intake_record(const DeliveryRecord& d,
                                 const std::optional<StoredBody>& stored_body,
                                 const StoredReasons& reasons,
                                 const std::vector<TriggerRequest>& triggers,
                                 const std::vector<std::string>& trigger_ids) {
    struct {
        const std::optional<StoredBody>& stored_body;
        const StoredReasons& reasons;
        const std::vector<TriggerRequest>& triggers;
        const std::vector<std::string>& trigger_ids;
    } r{stored_body, reasons, triggers, trigger_ids};
    std::string out;
    out.reserve(256 + d.headers.size() * 64 +
                (r.stored_body ? r.stored_body->bytes.size() : d.body.size()) +
                r.reasons.bytes.size() + r.triggers.size() * 256);
    // A record with no status ref keeps the layout, and the version, it had before refs (so an
    // older hookrelay still reads the log after a crash, unless a record needs the new field).
    const bool digest_from_packed =
        !is_sha256_hex(d.body_sha256) && r.stored_body && r.stored_body->size;
    const bool status_ref = std::any_of(r.triggers.begin(), r.triggers.end(), [](const auto& t) {
        return t.status && !t.status->ref.empty();
    });
    out.push_back(status_ref
                      ? (digest_from_packed ? k_version_digest_from_packed_body_with_status_ref
                                            : k_version_with_status_ref)
                      : (digest_from_packed ? k_version_digest_from_packed_body : k_version));
    Writer w(out);
    w.str(d.source);
    w.str(to_string(d.provider));
    w.str(d.delivery_id);
    w.str(to_string(d.kind));
    w.str(d.forge_event);
    w.i64(d.received_at.time_since_epoch().count());
    w.pairs(d.headers);
    w.str(d.body_sha256);
    w.i64(d.duplicate_body_window.count());
    w.str(d.repository);
    w.str(d.ref);
    w.flag(r.stored_body.has_value());
    if (r.stored_body) {
        w.str(r.stored_body->bytes);
        w.size(r.stored_body->size);
    }
    // The body itself only when the store needs it: stored as it came (a StoredBody without a
    // size), or not stored but needed for its digest (no valid body_sha256 given).
    const bool raw = r.stored_body ? !r.stored_body->size : !is_sha256_hex(d.body_sha256);
    w.str(raw ? std::string_view(d.body) : std::string_view());
    w.str(r.reasons.bytes);
    w.size(r.reasons.size);
    w.u64(r.triggers.size());
    for (std::size_t i = 0; i < r.triggers.size(); ++i) {
        const TriggerRequest& t = r.triggers[i];
        w.str(i < r.trigger_ids.size() ? std::string_view(r.trigger_ids[i]) : std::string_view());
        w.str(t.rule);
        w.str(t.jenkins);
        w.strings(t.job);
        w.pairs(t.parameters);
        w.str(t.cause);
        w.str(to_string(t.follow));
        w.flag(t.status.has_value());
        if (t.status) {
            w.str(t.status->repository);
            w.str(t.status->sha);
            w.str(t.status->context);
            if (status_ref) w.str(t.status->ref);
        }
        w.str(t.coalesce);
        w.flag(t.cancel_superseded);
        w.u64(t.multibranch);
        w.flag(t.scan_only);
    }
    return out;
}

std::optional<IntakeRecord> decode_intake_record(std::string_view bytes) {
    if (bytes.empty() || bytes.front() < k_version ||
        bytes.front() > k_version_digest_from_packed_body_with_status_ref) {
        return std::nullopt;
    }
    const bool status_ref = bytes.front() >= k_version_with_status_ref;
    Reader in(bytes.substr(1));
    IntakeRecord r;
    DeliveryRecord& d = r.delivery;
    d.source = in.str();
    d.provider = in.known(provider_from_string(in.str()));
    d.delivery_id = in.str();
    d.kind = in.known(kind_from_string(in.str()));
    d.forge_event = in.str();
    d.received_at = TimePoint(TimePoint::duration(in.i64()));
    d.headers = in.pairs();
    d.body_sha256 = in.str();
    d.duplicate_body_window = std::chrono::milliseconds(in.i64());
    d.repository = in.str();
    d.ref = in.str();
    if (in.flag()) {
        StoredBody body;
        body.bytes = in.str();
        body.size = in.size();
        r.stored_body = std::move(body);
    }
    d.body = in.str();
    r.reasons.bytes = in.str();
    r.reasons.size = in.size();
    // A trigger is at least its id's, rule's, Jenkins', cause's, follow's, coalesce key's
    // lengths, two counts, three flags and a number: 83 bytes.
    const std::size_t triggers = in.count(83);
    r.triggers.resize(triggers);
    r.trigger_ids.resize(triggers);
    for (std::size_t i = 0; i < triggers && in.ok(); ++i) {
        TriggerRequest& t = r.triggers[i];
        r.trigger_ids[i] = in.str();
        t.rule = in.str();
        t.jenkins = in.str();
        t.job = in.strings();
        t.parameters = in.pairs();
        t.cause = in.str();
        t.follow = in.known(follow_mode_from_string(in.str()));
        if (in.flag()) {
            StatusTarget status;
            status.repository = in.str();
            status.sha = in.str();
            status.context = in.str();
            if (status_ref) status.ref = in.str();
            t.status = std::move(status);
        }
        t.coalesce = in.str();
        t.cancel_superseded = in.flag();
        const std::uint64_t multibranch = in.u64();
        if (multibranch > std::numeric_limits<std::size_t>::max()) return std::nullopt;
        t.multibranch = static_cast<std::size_t>(multibranch);
        t.scan_only = in.flag();
    }
    if (!in.done()) return std::nullopt;
    return r;
}

}  // namespace hookrelay::store::sqlite
