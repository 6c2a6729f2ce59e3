#include "jenkins/follow.hpp"

#include "jenkins/client.hpp"

#include <hookrelay/jenkins.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <limits>

namespace hookrelay::jenkins {

namespace {

namespace json = boost::json;

constexpr std::string_view k_queue_item = "queue/item/";
// These answers nest three levels (a job's builds); the bound keeps hostile nesting off the
// stack. Their size is bounded by read() (k_read_body_limit) and checked again here.
constexpr unsigned k_max_depth = 16;

// A parse failure: errc::malformed_json with `reason` in *why.
struct Malformed {
    std::string reason;
};

json::value parse_value(std::string_view text) {
    if (text.size() > k_read_body_limit) {
        throw Malformed{"answer over " + std::to_string(k_read_body_limit / 1024) + " KiB"};
    }
    json::parse_options options;
    options.max_depth = k_max_depth;
    boost::system::error_code ec;
    auto value = json::parse(text, ec, {}, options);
    if (ec) throw Malformed{"not JSON: " + ec.message()};
    if (!value.is_object()) throw Malformed{"not a JSON object"};
    return value;
}

std::int64_t integer(const json::value& v, std::string_view key) {
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64() &&
        v.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return static_cast<std::int64_t>(v.get_uint64());
    }
    throw Malformed{"'" + std::string(key) + "' is not an integer"};
}

// The field `key` of `o`, nullptr when absent or null.
const json::value* field(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && !v->is_null() ? v : nullptr;
}

std::optional<std::int64_t> integer_of(const json::object& o, std::string_view key) {
    const auto* v = field(o, key);
    if (!v) return std::nullopt;
    return integer(*v, key);
}

std::optional<std::string> text_of(const json::object& o, std::string_view key) {
    const auto* v = field(o, key);
    if (!v) return std::nullopt;
    if (!v->is_string()) throw Malformed{"'" + std::string(key) + "' is not a string"};
    return std::string(v->get_string());
}

std::optional<bool> flag_of(const json::object& o, std::string_view key) {
    const auto* v = field(o, key);
    if (!v) return std::nullopt;
    if (!v->is_bool()) throw Malformed{"'" + std::string(key) + "' is not a boolean"};
    return v->get_bool();
}

const json::object* object_of(const json::object& o, std::string_view key) {
    const auto* v = field(o, key);
    if (!v) return nullptr;
    if (!v->is_object()) throw Malformed{"'" + std::string(key) + "' is not an object"};
    return &v->get_object();
}

// Runs `parse`, turning a Malformed into errc::malformed_json (and *why).
template <class T, class F>
result<T> guarded(std::string* why, F parse) {
    try {
        return parse();
    } catch (const Malformed& m) {
        if (why) *why = m.reason;
        return make_error_code(errc::malformed_json);
    }
}

Build build_of(const json::object& o) {
    Build b;
    const auto number = integer_of(o, "number");
    if (!number) throw Malformed{"build without 'number'"};
    b.number = *number;
    b.url = text_of(o, "url").value_or("");
    b.result = text_of(o, "result").value_or("");
    // Without `building` (not in the tree), a result is what says it finished.
    b.building = flag_of(o, "building").value_or(b.result.empty());
    if (const auto timestamp = integer_of(o, "timestamp"); timestamp && *timestamp > 0) {
        b.started_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(*timestamp));
    }
    b.duration = std::chrono::milliseconds(integer_of(o, "duration").value_or(0));
    b.queue_id = integer_of(o, "queueId");
    return b;
}

}  // namespace

std::optional<std::int64_t> queue_item_id(std::string_view location) noexcept {
    if (!location.empty() && location.back() == '/') location.remove_suffix(1);
    const auto slash = location.rfind('/');
    const auto digits = slash == std::string_view::npos ? location : location.substr(slash + 1);
    const auto before = location.substr(0, location.size() - digits.size());
    // "…/queue/item/" or a relative "queue/item/" (build-token-root answers one).
    if (!before.ends_with(k_queue_item)) return std::nullopt;
    const auto prefix = before.substr(0, before.size() - k_queue_item.size());
    if (!prefix.empty() && prefix.back() != '/') return std::nullopt;
    if (digits.empty()) return std::nullopt;
    std::int64_t id = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
    if (ec != std::errc{} || end != digits.data() + digits.size() || id <= 0) return std::nullopt;
    return id;
}

std::string queue_item_path(std::int64_t id) {
    return std::string(k_queue_item) + std::to_string(id) +
           "/api/json?tree=id,why,blocked,stuck,cancelled,executable[number,url]";
}

std::string build_path(const std::vector<std::string>& job, std::int64_t number) {
    return job_path(job) + std::to_string(number) +
           "/api/json?tree=number,url,building,result,duration,timestamp,queueId";
}

std::string builds_path(const std::vector<std::string>& job) {
    return job_path(job) + "api/json?tree=builds[number,queueId,url]{0,50}";
}

result<QueueItem> parse_queue_item(std::string_view json, std::string* why) {
    return guarded<QueueItem>(why, [&] {
        const auto value = parse_value(json);
        const auto& o = value.get_object();
        // Checked for their types only: the follower has no use for them yet.
        (void)integer_of(o, "id");
        (void)flag_of(o, "blocked");
        (void)flag_of(o, "stuck");
        QueueItem item;
        item.why = text_of(o, "why").value_or("");
        item.cancelled = flag_of(o, "cancelled").value_or(false);
        if (const auto* executable = object_of(o, "executable")) {
            const auto number = integer_of(*executable, "number");
            if (!number) throw Malformed{"'executable' without 'number'"};
            item.number = *number;
            item.url = text_of(*executable, "url").value_or("");
        }
        return item;
    });
}

result<Build> parse_build(std::string_view json, std::string* why) {
    return guarded<Build>(why, [&] { return build_of(parse_value(json).get_object()); });
}

result<std::optional<Build>> find_build_by_queue_id(std::string_view json, std::int64_t queue_id,
                                                    std::string* why) {
    return guarded<std::optional<Build>>(why, [&]() -> std::optional<Build> {
        const auto value = parse_value(json);
        const auto* builds = value.get_object().if_contains("builds");
        if (!builds || !builds->is_array()) throw Malformed{"no 'builds' array"};
        for (const auto& entry : builds->get_array()) {
            if (!entry.is_object()) throw Malformed{"a build that is not an object"};
            auto build = build_of(entry.get_object());
            if (build.queue_id == queue_id) return build;
        }
        return std::nullopt;
    });
}

}  // namespace hookrelay::jenkins
