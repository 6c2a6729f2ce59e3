#include "app/logging.hpp"

#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/json/serialize.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <iterator>
#include <utility>
#include <vector>

namespace hookrelay::app {

namespace {

constexpr const char* k_text_pattern = "%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v";

// The keys hookrelay's own log lines carry (see webhook.cpp, dispatcher.cpp); shippers filter on
// them, so they become fields. A fixed list, lifted only from the line's head (below): a message
// may quote untrusted text, which must not invent fields of its own.
constexpr std::array<std::string_view, 5> k_lifted_keys{"delivery", "source", "trigger", "rule",
                                                        "jenkins"};

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Messages quote untrusted bytes (header values, parser errors); Boost.JSON would copy invalid
// UTF-8 through and make the line unparseable, so each bad byte becomes U+FFFD.
std::string to_valid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    while (!s.empty()) {
        const std::size_t n = utf8_sequence(s);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            s.remove_prefix(1);
        } else {
            out.append(s.substr(0, n));
            s.remove_prefix(n);
        }
    }
    return out;
}

struct Field {
    std::string_view key;
    std::string_view value;
};

// The lifted keys among the words a line starts with: "key=value" words ("delivery=… source=…
// remote=… rejected 401: …", "jenkins=ci: cannot …"), up to the first other word or a value that
// ends with ':'. What follows may quote what a request sent; a value there is never a field.
// The first occurrence of a key counts.
std::vector<Field> lift_fields(std::string_view msg) {
    std::vector<Field> fields;
    std::size_t i = 0;
    while (i < msg.size()) {
        std::size_t end = i;
        while (end < msg.size() && !is_space(msg[end])) ++end;
        const auto word = msg.substr(i, end - i);
        const auto eq = word.find('=');
        if (eq == std::string_view::npos || eq == 0) break;
        const auto key = word.substr(0, eq);
        if (!std::all_of(key.begin(), key.end(),
                         [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; })) {
            break;
        }
        auto value = word.substr(eq + 1);
        bool head_ends = false;
        while (!value.empty() &&
               (value.back() == ':' || value.back() == ',' || value.back() == ';')) {
            head_ends = head_ends || value.back() == ':';
            value.remove_suffix(1);
        }
        const bool lifted =
            std::find(k_lifted_keys.begin(), k_lifted_keys.end(), key) != k_lifted_keys.end();
        const bool seen =
            std::any_of(fields.begin(), fields.end(), [&](const Field& f) { return f.key == key; });
        if (lifted && !value.empty() && !seen) fields.push_back({key, value});
        if (head_ends) break;
        i = end;
        while (i < msg.size() && is_space(msg[i])) ++i;
    }
    return fields;
}

void append(spdlog::memory_buf_t& dest, std::string_view s) {
    dest.append(s.data(), s.data() + s.size());
}

class JsonFormatter final : public spdlog::formatter {
  public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        const auto since_epoch = msg.time.time_since_epoch();
        const auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
        const auto millis =
            std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
        const std::time_t t = seconds.count();
        std::tm tm{};
        gmtime_r(&t, &tm);
        fmt::format_to(std::back_inserter(dest),
                       R"({{"ts":"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z","level":"{}","msg":)",
                       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                       tm.tm_sec, millis, spdlog::level::to_string_view(msg.level));
        const std::string text = to_valid_utf8({msg.payload.data(), msg.payload.size()});
        append(dest, boost::json::serialize(text));
        for (const auto& field : lift_fields(text)) {
            append(dest, ",\"");
            append(dest, field.key);  // from k_lifted_keys: nothing to escape
            append(dest, "\":");
            append(dest, boost::json::serialize(field.value));
        }
        append(dest, "}\n");
    }

    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<JsonFormatter>();
    }
};

}  // namespace

std::optional<LogFormat> parse_log_format(std::string_view text, bool stderr_is_tty) {
    if (text == "text") return LogFormat::text;
    if (text == "json") return LogFormat::json;
    if (text == "auto") return stderr_is_tty ? LogFormat::text : LogFormat::json;
    return std::nullopt;
}

bool stderr_is_tty() {
    return ::isatty(STDERR_FILENO) == 1;
}

std::unique_ptr<spdlog::formatter> make_log_formatter(LogFormat format) {
    if (format == LogFormat::json) return std::make_unique<JsonFormatter>();
    return std::make_unique<spdlog::pattern_formatter>(k_text_pattern);
}

void setup_logging(const std::string& level, LogFormat format) {
    spdlog::sink_ptr sink;
    if (format == LogFormat::json) {
        sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    } else {
        // Colors only when stderr is a terminal that supports them (color_mode::automatic).
        sink = std::make_shared<spdlog::sinks::ansicolor_stderr_sink_mt>();
    }
    sink->set_formatter(make_log_formatter(format));
    auto logger = std::make_shared<spdlog::logger>("hookrelay", std::move(sink));
    logger->set_level(spdlog::level::from_str(level));
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(std::move(logger));
}

}  // namespace hookrelay::app
