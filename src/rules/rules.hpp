// Rules: compiled `when:` conditions and `trigger:` templates, evaluated against an Event.
// Conditions are field conditions (a list of patterns: globs, "!glob" negations, "re:" RE2
// regexes) composed with all/any/not. Every matching rule fires (fan-out) unless a matching rule
// says stop: true. RuleSet is immutable after compile and thread-safe.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/error.hpp>
#include <hookrelay/event.hpp>
#include <hookrelay/trigger.hpp>

#include <memory>
#include <string>
#include <vector>

namespace hookrelay::rules {

/// How one rule fared against one event.
struct RuleOutcome {
    std::string rule;
    bool matched = false;
    bool evaluated = true;  ///< false when an earlier rule said stop: true
    /// Not matched: the first condition that failed, e.g.
    /// "branch: 'dev' matches none of [main, release/*]". Matched: empty.
    std::string reason;
};

/// A trigger that could not be rendered (e.g. a variable unset for this event).
struct RenderFailure {
    std::string rule;
    std::string reason;
};

/// The whole decision for one event: every rule's outcome, the triggers to queue (rendered), and
/// render failures (the rule matched but its trigger could not be built).
struct Decision {
    std::vector<RuleOutcome> rules;
    std::vector<TriggerRequest> triggers;
    std::vector<RenderFailure> failures;

    std::vector<std::string> matched_rules() const;
};

class RuleSet {
public:
    /// Compiles every rule in `config`, appending every problem to `errors` (file:line:column
    /// from the specs' locations): unknown condition fields, bad globs, RE2 errors, values that
    /// can never match a field with a closed set of values (`event`, `provider`, `source`,
    /// booleans, `action` where the rule's `event` conditions say which actions exist; see
    /// rules/vocabulary.hpp), unknown template variables, a trigger naming a missing Jenkins,
    /// duplicate rule names, a `not` without exactly one child. Returns nullptr when any error
    /// was found.
    static std::shared_ptr<const RuleSet> compile(const Config& config,
                                                  std::vector<ConfigError>& errors);

    /// Evaluates every rule in order against `event`; renders each matching rule's triggers.
    /// Ping events match nothing. Never throws.
    Decision evaluate(const Event& event) const;

    struct Impl;
    explicit RuleSet(std::unique_ptr<Impl> impl);
    ~RuleSet();

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace hookrelay::rules
