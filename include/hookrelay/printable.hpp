// What a client sent (a delivery id, a header, a path, a payload value), made safe to show in a
// log line, an API answer or on a terminal: only printable UTF-8, and in a log line's key=value
// head one word that cannot add fields of its own.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace hookrelay {

/// Longest value, in bytes, that a webhook response echoes from a delivery.
inline constexpr std::size_t k_max_echoed_bytes = 512;

/// Length of the valid UTF-8 sequence at the start of `s` (RFC 3629: no overlong forms, no
/// surrogates, nothing above U+10FFFF), or 0 when it is not one (or `s` is empty).
std::size_t utf8_sequence(std::string_view s);

/// `value` when it is at most k_max_echoed_bytes long; else its first bytes (cut at a UTF-8
/// character boundary) followed by "…", k_max_echoed_bytes in all. For every field of a webhook
/// response that the sender controls (ref, repository, delivery id, job paths and reasons that
/// quote payload values), so the answer stays small whatever the payload holds.
std::string echoed(std::string_view value);

/// `text` with every byte that is not printable UTF-8 (invalid sequences, control characters
/// C0, DEL and C1) written as `\xNN`, shortened as echoed(): for what a request sent to be shown
/// in the API and on a terminal.
std::string printable(std::string_view text);

/// printable() that keeps line breaks and tabs and is never shortened: for text a command prints
/// on a terminal (a field of a stored delivery could otherwise move the cursor, retitle the
/// window or hide what follows).
std::string printable_text(std::string_view text);

/// `text` with every byte that is not part of valid UTF-8 written as `prefix` and two hex digits
/// (`\xNN`; control characters kept). For JSON, which must be UTF-8: applied to serialized JSON,
/// where only strings hold such bytes, with the prefix `\\x` (an escaped backslash).
std::string valid_utf8(std::string_view text, std::string_view prefix = "\\x");

/// printable(), with spaces, `=`, `:`, `,` and `;` written as `\x20`, `\x3d`, ... too: a value a
/// request claims (its delivery id) as one word of a log line's `key=value` head, which cannot
/// then add words (fields) of its own.
std::string printable_word(std::string_view text);

/// `value` for a log line's head: itself when it is one word already (no copy on the accept
/// path), else printable_word() of it, kept in `scratch`.
std::string_view log_word(const std::string& value, std::string& scratch);

}  // namespace hookrelay
