// Logging setup: one spdlog logger on stderr, as human-readable text or as one JSON object per line
// for the systemd journal, containers and log shippers.
#pragma once

#include <hookrelay/printable.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace spdlog {
class formatter;
}

namespace hookrelay::app {

enum class LogFormat {
    /// "2026-11-24T23:10:01.123+00:00 info message" (local time; level colored on a terminal).
    text,
    /// {"ts":"2026-11-24T23:10:01.123Z","level":"info","msg":"message"} (UTC), one per line, plus
    /// the daemon's key=value pairs (delivery, source, trigger, rule, jenkins) lifted from the
    /// message into fields of their own; see make_log_formatter().
    json,
};

/// "text", "json", or "auto": text when stderr is a terminal, json otherwise. Returns nullopt for
/// anything else (the caller reports the error).
std::optional<LogFormat> parse_log_format(std::string_view text, bool stderr_is_tty);

/// Whether stderr is a terminal (isatty(2)), for parse_log_format().
bool stderr_is_tty();

/// Replaces spdlog's default logger with one named "hookrelay" that writes to stderr in `format`
/// at `level` (an spdlog level name: trace, debug, info, warn, error, critical, off; an unknown
/// name means off) and flushes after every line at info and above. Call it at startup, before
/// other threads log; calling it again replaces the logger. The logger itself is thread-safe:
/// each line is written whole.
void setup_logging(const std::string& level, LogFormat format);

/// The formatter setup_logging() installs for `format` (tests; other sinks). Every line ends in
/// '\n'. JSON lines: "msg" is the complete message; invalid UTF-8 in it is replaced with U+FFFD and
/// control characters are escaped, so each line is one valid JSON object. A word of the message
/// of the form delivery=V, source=V, trigger=V, rule=V or jenkins=V (V up to the next whitespace,
/// without a trailing ':', ',' or ';') also becomes the field "delivery":"V" etc.; when a key
/// appears more than once, the first wins. Not thread-safe on its own (spdlog sinks lock around
/// it).
std::unique_ptr<spdlog::formatter> make_log_formatter(LogFormat format);

}  // namespace hookrelay::app
