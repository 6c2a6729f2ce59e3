// Templates: "{{ path.to.field }}" over the normalized event, "{{ payload.x.y }}" over the raw
// payload, with filters: default(x), lower, upper, replace(from, to), short_sha [ (n) ].
//   job: "acme/app/{{ branch }}"   parameters: {SHA: "{{ commit | short_sha }}"}
// Parsing checks every variable against the event model, so unknown variables are config
// errors, not 3 a.m. surprises. Immutable after parse; thread-safe.
#pragma once

#include <hookrelay/error.hpp>
#include <hookrelay/event.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::render {

class Template {
public:
    /// Parses and validates `text`. On failure returns errc::bad_template or
    /// errc::unknown_variable, and sets *why to a one-line reason naming the offending part
    /// (e.g. "unknown variable 'brnch' (did you mean 'branch'?)"), with *offset to its byte
    /// offset in `text` (for column numbers).
    static result<Template> parse(std::string_view text, std::string* why = nullptr,
                                  std::size_t* offset = nullptr);

    /// Renders against `event`. A variable without a value and without a `default` filter is
    /// errc::variable_not_set, with *why naming it ("'pull_request.number' is not set for a push
    /// event").
    result<std::string> render(const Event& event, std::string* why = nullptr) const;

    /// The template as written.
    const std::string& text() const noexcept;
    /// True when the template has no {{ }} at all.
    bool is_literal() const noexcept;

    // Parsed representation; public for the implementation file only.
    struct Filter {
        std::string name;
        std::vector<std::string> args;
    };
    struct Part {
        bool literal = true;
        std::string text;  ///< literal text, or the variable path
        std::vector<Filter> filters;
    };
    /// The literal text and the variables (with their filters), in order.
    const std::vector<Part>& parts() const noexcept { return parts_; }

  private:
    std::string text_;
    std::vector<Part> parts_;
};

}  // namespace hookrelay::render
