// Rules: compiled `when:` conditions and `trigger:` templates, evaluated against an Event.
// Conditions are field conditions (a list of patterns: globs, "!glob" negations, "re:" RE2
// regexes) composed with all/any/not. Every matching rule fires (fan-out) unless a matching rule
// says stop: true. RuleSet is immutable after compile and thread-safe.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/error.hpp>
#include <hookrelay/event.hpp>
#include <hookrelay/trigger.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::rules {

/// How one rule fared against one event. Its texts are views into the Decision it belongs to
/// (the rule set's names and fixed reasons, and the reasons composed for that delivery), valid
/// as long as that Decision or a copy of it: copy them into strings to keep them longer.
struct RuleOutcome {
    std::string_view rule;
    bool matched = false;
    bool evaluated = true;  ///< false when an earlier rule said stop: true
    /// Not matched: the first condition that failed, e.g.
    /// "branch: 'dev' matches none of [main, release/*]". Matched: empty.
    std::string_view reason;
    /// How many of the reason's first bytes other rules' reasons of the delivery may begin with
    /// too: "repository: 'acme/app' matches none of " of a rule the index decides (its patterns
    /// follow), or the whole of a fixed reason ("event: 'push' matches none of [tag]"); 0 when
    /// the reason is the rule's own. A store writes such a beginning once per delivery.
    std::size_t shared = 0;
    std::size_t event = 0;  ///< which event of the delivery (0: the first, most often the only)
};

/// A trigger that could not be rendered (e.g. a variable unset for this event).
struct RenderFailure {
    std::string rule;
    std::string reason;
    std::size_t event = 0;  ///< which event of the delivery
};

/// The whole decision for one delivery: every rule's outcome for each of its events, the
/// triggers to queue (rendered), and render failures (the rule matched but its trigger could not
/// be built), all in event order.
struct Decision {
    std::vector<RuleOutcome> rules;
    std::vector<TriggerRequest> triggers;
    std::vector<std::size_t> trigger_events;  ///< per trigger: the index of its event
    std::vector<RenderFailure> failures;
    std::size_t events = 1;  ///< how many events were evaluated
    /// What the outcomes' texts point into: the rule set, and the reasons composed for this
    /// delivery. Shared, so that a copy of the decision reads them too. A decision evaluated with
    /// 1,000 rules holds ~1,000 reasons: one buffer for all of them instead of a string each.
    std::shared_ptr<const void> rule_texts;
    std::shared_ptr<const std::string> delivery_texts;

    /// The rules that matched some event, each once, in the order they first matched.
    std::vector<std::string> matched_rules() const;
};

/// How RuleSet::compile prepares the rules.
struct CompileOptions {
    /// Evaluate every condition from its patterns alone: each through RE2, each field read from
    /// the event for every condition, no verdicts worked out at compile time. The decisions are
    /// the same, only slower; tests compare the two (the default is what the daemon runs).
    bool reference = false;
};

class RuleSet : public std::enable_shared_from_this<RuleSet> {
  public:
    /// Compiles every rule in `config`, appending every problem to `errors` (file:line:column
    /// from the specs' locations): unknown condition fields, bad globs, RE2 errors, values that
    /// can never match a field with a closed set of values (`event`, `provider`, `source`,
    /// booleans, `action` where the rule's `event` conditions say which actions exist; see
    /// rules/vocabulary.hpp), unknown template variables, a trigger naming a missing Jenkins,
    /// duplicate rule names, a `not` without exactly one child. Returns nullptr when any error
    /// was found. Everything a delivery can be spared is done here, once per config load: the
    /// verdicts of `event` and `provider` conditions for each kind and forge, literal patterns
    /// compared as text, the fixed parts of reasons.
    static std::shared_ptr<const RuleSet> compile(const Config& config,
                                                  std::vector<ConfigError>& errors,
                                                  const CompileOptions& options = {});

    /// Evaluates every rule in order against `event`; renders each matching rule's triggers.
    /// Ping events match nothing. Throws only std::bad_alloc (a rule that fails otherwise gets
    /// an "internal error: …" reason).
    Decision evaluate(const Event& event) const;

    /// Evaluates every event of one delivery in turn, each as above (a `stop: true` rule stops
    /// the rules for its own event only), and appends the outcomes into one decision.
    Decision evaluate(std::span<const Event> events) const;

    struct Impl;
    explicit RuleSet(std::unique_ptr<Impl> impl);
    ~RuleSet();

  private:
    std::unique_ptr<Impl> impl_;
};

/// The part of a trigger's job path (TriggerSpec::job, as written) that is the same for every
/// event: the item names up to the first segment with a {{ }} in it. `complete` when no segment
/// has one (then `segments` is the whole job); otherwise `segments` is the longest static folder
/// prefix (possibly empty). "acme/app/{{ branch }}" → {{"acme","app"}, false}; "a/b" →
/// {{"a","b"}, true}; "{{ repository.name }}/main" → {{}, false}. A segment that does not parse
/// or is empty ends the prefix too (config::load reports those).
struct StaticJobPath {
    std::vector<std::string> segments;
    bool complete = true;
};
StaticJobPath static_job_path(std::string_view job_text);

}  // namespace hookrelay::rules
