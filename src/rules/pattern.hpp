// Compiled condition patterns: globs, "!" negations and "re:" RE2 regexes, all matched in linear
// time by RE2. Private to the rules module (tests include it directly).
#pragma once

#include <hookrelay/error.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace re2 {
class RE2;
}

namespace hookrelay::rules {

/// Translates a glob to an RE2 pattern (to be full-matched):
///   `*` any run of characters except '/', `**` any run including '/' (and `**/` also matches
///   no directory at all, so "**/*.md" matches "README.md"), `?` one character except '/',
///   `[abc]` `[a-z]` `[!a]` (or `[^a]`) classes (a negated class never matches '/'),
///   `{a,b}` alternation (nestable, may contain wildcards); everything else is literal.
/// Returns errc::bad_glob for an unclosed '[' or '{', with *why and *offset (byte offset in
/// `glob`) describing it.
result<std::string> glob_to_re2(std::string_view glob, std::string* why = nullptr,
                                std::size_t* offset = nullptr);

/// One pattern as written in a condition, compiled. Immutable; matches() is thread-safe.
class Pattern {
  public:
    /// Compiles "re:<RE2>", "!<pattern>" (negation of a glob or of "re:") or a glob. Fails with
    /// errc::bad_glob / errc::bad_regex (*why: the reason, RE2's own text for regexes; *offset:
    /// byte offset in `text` where known, else 0), or errc::bad_glob for an empty pattern.
    static result<Pattern> compile(std::string_view text, std::string* why = nullptr,
                                   std::size_t* offset = nullptr);

    /// Whether `value` fully matches the pattern, ignoring negation (the caller decides what a
    /// negative match means). A glob without wildcards, classes or braces ("main",
    /// "acme/app") is compared as text, which is what its RE2 translation matches; any other
    /// glob runs RE2 only on values that start with its text before the first wildcard.
    bool matches(std::string_view value) const;
    /// As matches(), always through RE2: the reference the text comparison is tested against.
    bool matches_by_regex(std::string_view value) const;
    /// True for a glob compared as text (see matches()).
    bool literal() const noexcept { return literal_; }
    /// True for "!..." patterns.
    bool negative() const noexcept { return negative_; }
    /// The pattern as written, including any "!" or "re:".
    const std::string& text() const noexcept { return text_; }

  private:
    std::string text_;
    bool negative_ = false;
    bool literal_ = false;         ///< text_ (after any '!') is the whole pattern, matched as text
    std::size_t prefix_size_ = 0;  ///< a glob's literal start (after any '!'), before any wildcard
    std::shared_ptr<const re2::RE2> re_;
};

}  // namespace hookrelay::rules
