#include "rules/rules.hpp"

#include "render/field_names.hpp"
#include "render/template.hpp"
#include "rules/pattern.hpp"
#include "rules/vocabulary.hpp"
#include "util/suggest.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <utility>

namespace hookrelay::rules {
namespace {

using Kind = ConditionSpec::Kind;

constexpr std::string_view k_paths = "paths";
constexpr std::string_view k_event = "event";
constexpr std::string_view k_action = "action";
// A value list longer than this is not spelled out in an error message (the did-you-mean and
// docs/configuration.md do better than 25 action names).
constexpr std::size_t k_max_listed = 8;
// How a literal condition's reason goes on after "<field>: '<value>'".
constexpr std::string_view k_none_of = " matches none of ";

// Long values (commit messages) are cut in reasons so a reason stays one readable line.
constexpr std::size_t k_max_shown = 60;

struct Verdict {
    bool ok = true;
    std::string reason;  // when !ok: why, in the admin's words
};

// Which closed set of values a field condition's verdicts were worked out for at compile time.
enum class Key { none, event_kind, provider };

struct Condition {
    Kind kind = Kind::all;
    std::string field;  // as written; the reason names it the way the admin wrote it
    bool paths = false;
    std::vector<Pattern> positives;
    std::vector<Pattern> negatives;
    std::vector<Condition> children;
    // Compiled once, so that a delivery pays little for each of many rules that do not match:
    std::string none_of;   // k_none_of + "[<positives>]", the end of that reason
    std::size_t slot = 0;  // the field's place in the per-event value cache (Facts)
    // `event` and `provider`: the verdict for every value (indexed by the enum), worked out by the
    // same code a delivery would run.
    Key key = Key::none;
    std::vector<Verdict> verdicts;
};

struct Segment {
    std::string text;
    std::size_t offset = 0;  // in the whole job text
};

struct Trigger {
    std::string jenkins;
    FollowMode follow = FollowMode::finished;
    std::string job_text;
    std::vector<render::Template> job;
    std::vector<std::pair<std::string, render::Template>> parameters;
    /// multibranch: `job` is the project and this the branch job's name (one segment).
    std::optional<render::Template> branch;
    bool scan = false;  ///< a `scan:` trigger: `job` is the project to scan
    /// After the rule's status context when the rule has several triggers that post statuses:
    /// "/<job>", or "/<jenkins>/<job>" when two of them name one job (e.g. on two controllers),
    /// then "#<n>" if that is still not enough. Empty for a rule with one.
    std::string status_suffix;
};

struct Rule {
    std::string name;
    Condition when;
    bool stop = false;
    bool mentions_deleted = false;
    std::vector<Trigger> triggers;
    std::optional<render::Template> coalesce;  ///< the `coalesce:` key
    bool cancel_superseded = false;
    /// The status context of each source that posts statuses for this rule's triggers.
    std::map<std::string, std::string, std::less<>> status_contexts;
};

Verdict pass() {
    return {};
}
Verdict fail(std::string reason) {
    return {false, std::move(reason)};
}

// Appends `value` quoted, cut to its first line and k_max_shown characters.
void append_shown(std::string& out, std::string_view value) {
    bool cut = false;
    if (const auto nl = value.find('\n'); nl != std::string_view::npos) {
        value = value.substr(0, nl);
        cut = true;
    }
    if (value.size() > k_max_shown) {
        value = value.substr(0, k_max_shown - 3);
        cut = true;
    }
    // Appending step by step: GCC 12 at -O3 misreads the chained operator+ as an overlapping
    // memcpy (-Wrestrict).
    out += '\'';
    out.append(value);
    out += cut ? "...'" : "'";
}

std::string list(const std::vector<Pattern>& patterns) {
    std::string out = "[";
    for (const auto& p : patterns) {
        if (out.size() > 1) out += ", ";
        out += p.text();
    }
    return out + "]";
}

std::string plural(std::size_t n, std::string_view word) {
    return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

// How a delivery is evaluated. `reference`: every pattern through RE2, every field read from the
// event each time, no compiled verdicts: the plain evaluation the fast one is tested against.
struct Mode {
    bool reference = false;
};

const Pattern* first_match(const std::vector<Pattern>& patterns, std::string_view value,
                           Mode mode) {
    for (const auto& p : patterns) {
        if (mode.reference ? p.matches_by_regex(value) : p.matches(value)) return &p;
    }
    return nullptr;
}

// The list accepts a value when a positive pattern matches (or there are none) and no negative
// one does. Returns false when accepted; else true, with the reason appended to `out`.
bool reject(const Condition& c, std::string_view value, Mode mode, std::string& out) {
    if (const auto* neg = first_match(c.negatives, value, mode)) {
        append_shown(out, value);
        out += " is excluded by ";
        out += neg->text();
        return true;
    }
    if (!c.positives.empty() && first_match(c.positives, value, mode) == nullptr) {
        append_shown(out, value);
        out += c.none_of;
        return true;
    }
    return false;
}

// The values of one event's condition fields, each read once however many rules ask for it.
class Facts {
  public:
    /// `fields`: the condition fields by slot (see Compiler::fields()); must outlive this.
    Facts(const Event& event, const std::vector<std::string>& fields, Mode mode)
        : event_(event), fields_(fields), values_(fields.size()), mode_(mode) {}

    const Event& event() const noexcept { return event_; }
    Mode mode() const noexcept { return mode_; }

    /// The value of field condition `c`'s field; valid until the next call.
    const std::optional<std::string>& value(const Condition& c) {
        if (mode_.reference) {
            scratch_ = event_field(event_, c.field);
            return scratch_;
        }
        return value_at(c.slot);
    }

    /// The value of the field in `slot`; valid as long as this.
    const std::optional<std::string>& value_at(std::size_t slot) {
        auto& cached = values_.at(slot);
        if (!cached) cached = event_field(event_, fields_.at(slot));
        return *cached;
    }

    /// `prefix` followed by the set value of the field in `slot` as reasons show it
    /// ("repository: 'acme/app'"); `prefix` must be the same for each slot.
    const std::string& shown_at(std::size_t slot, std::string_view prefix) {
        if (shown_.empty()) shown_.resize(values_.size());
        auto& cached = shown_.at(slot);
        if (!cached) {
            cached.emplace(prefix);
            append_shown(*cached, *value_at(slot));
        }
        return *cached;
    }

  private:
    const Event& event_;
    const std::vector<std::string>& fields_;
    std::vector<std::optional<std::optional<std::string>>> values_;
    std::vector<std::optional<std::string>> shown_;
    std::optional<std::string> scratch_;
    Mode mode_;
};

Verdict check_paths(const Condition& c, const Event& event, Mode mode) {
    // Only a complete list from a push to an existing branch says what changed; for anything
    // else, building is the safe side.
    const bool known =
        event.kind == EventKind::push && !event.created && event.changed_files_complete;
    if (!known) return pass();
    std::string why;
    for (const auto& file : event.changed_files) {
        if (!reject(c, file, mode, why)) return pass();
        why.clear();
    }
    const auto n = event.changed_files.size();
    if (n == 0) return fail("paths: the push changed no files");
    if (n == 1) {
        why = "paths: the only changed file ";
        reject(c, event.changed_files.front(), mode, why);
        return fail(std::move(why));
    }
    if (c.positives.empty()) {
        return fail("paths: all " + plural(n, "changed file") + " are excluded by " +
                    list(c.negatives));
    }
    std::string reason =
        "paths: none of " + plural(n, "changed file") + " matches " + list(c.positives);
    if (!c.negatives.empty()) reason += " outside " + list(c.negatives);
    return fail(std::move(reason));
}

// A field condition's verdict on `value` (nullopt: the field is not set for `event`).
Verdict field_verdict(const Condition& c, const std::optional<std::string>& value,
                      const Event& event, Mode mode) {
    if (!value) {
        // With only exclusions there is nothing to exclude.
        if (c.positives.empty()) return pass();
        return fail(c.field + " is not set for " + render::event_phrase(event));
    }
    std::string why;
    why.reserve(c.field.size() + 2 + std::min(value->size(), k_max_shown) + 3 + c.none_of.size());
    why += c.field;
    why += ": ";
    if (reject(c, *value, mode, why)) return fail(std::move(why));
    return pass();
}

Verdict check(const Condition& c, Facts& facts) {
    const auto& event = facts.event();
    switch (c.kind) {
        case Kind::field: {
            if (c.paths) return check_paths(c, event, facts.mode());
            if (!facts.mode().reference) {
                if (c.key == Key::event_kind) {
                    return c.verdicts.at(static_cast<std::size_t>(event.kind));
                }
                if (c.key == Key::provider) {
                    return c.verdicts.at(static_cast<std::size_t>(event.provider));
                }
            }
            return field_verdict(c, facts.value(c), event, facts.mode());
        }
        case Kind::all:
            for (const auto& child : c.children) {
                if (auto v = check(child, facts); !v.ok) return v;
            }
            return pass();
        case Kind::any: {
            std::string first;
            for (const auto& child : c.children) {
                auto v = check(child, facts);
                if (v.ok) return pass();
                if (first.empty()) first = std::move(v.reason);
            }
            return fail("any: none of " + plural(c.children.size(), "alternative") +
                        " matched (first: " + first + ")");
        }
        case Kind::not_:
            if (check(c.children.front(), facts).ok) {
                return fail("not: the inner condition matched");
            }
            return pass();
    }
    return fail("internal error: unknown condition kind");
}

bool mentions(const Condition& c, std::string_view field) {
    if (c.kind == Kind::field) return c.field == field;
    return std::any_of(c.children.begin(), c.children.end(),
                       [&](const Condition& child) { return mentions(child, field); });
}

Location shifted(Location where, std::size_t offset) {
    if (where.line > 0) where.column += static_cast<int>(offset);
    return where;
}

// Splits a job path on '/' outside {{ }} (quotes inside an expression are honoured), so a '/'
// produced by a rendered value stays inside its segment: Jenkins multibranch item names.
std::vector<Segment> split_job(std::string_view text) {
    std::vector<Segment> out;
    Segment current;
    std::size_t i = 0;
    while (i < text.size()) {
        if (text.substr(i).starts_with("{{")) {
            std::size_t j = i + 2;
            char quote = 0;
            while (j < text.size()) {
                const char c = text[j];
                if (quote != 0) {
                    if (c == '\\' && j + 1 < text.size()) {
                        ++j;
                    } else if (c == quote) {
                        quote = 0;
                    }
                } else if (c == '\'' || c == '"') {
                    quote = c;
                } else if (text.substr(j).starts_with("}}")) {
                    j += 2;
                    break;
                }
                ++j;
            }
            j = std::min(j, text.size());
            current.text += text.substr(i, j - i);
            i = j;
            continue;
        }
        if (text[i] == '/') {
            out.push_back(std::move(current));
            current = Segment{{}, i + 1};
        } else {
            current.text += text[i];
        }
        ++i;
    }
    out.push_back(std::move(current));
    return out;
}

// Event kinds as a bit set, for working out which kinds a condition can ever be evaluated on.
using KindSet = std::uint32_t;

KindSet bit(EventKind kind) {
    return KindSet{1} << static_cast<unsigned>(kind);
}

KindSet every_kind() {
    KindSet all = 0;
    for (const auto kind : event_kinds()) all |= bit(kind);
    return all;
}

// Providers as a bit set, likewise.
using ProviderSet = std::uint32_t;

ProviderSet bit(Provider provider) {
    return ProviderSet{1} << static_cast<unsigned>(provider);
}

ProviderSet every_provider() {
    ProviderSet all = 0;
    for (const auto provider : providers()) all |= bit(provider);
    return all;
}

// The event kinds and forges a condition is evaluated under: narrowed by every `event`, and every
// `provider` or `source` condition, that has to hold together with it (its siblings in the same
// map and in enclosing maps and `all` lists). `any` alternatives and `not` are not followed: they
// do not constrain their siblings.
struct Scope {
    KindSet kinds = every_kind();
    bool narrowed = false;  // some `event` condition applies
    ProviderSet providers = every_provider();
    bool providers_narrowed = false;  // some `provider` or `source` condition applies
    // The condition must hold for the rule to match (not under `any` or `not`): one on a field
    // that none of the rule's events has makes the rule one that can never match.
    bool required = true;
};

// A pattern's value when it is a plain literal (no glob syntax, not a regex), without its '!'.
std::optional<std::string_view> literal_value(std::string_view text) {
    if (text.starts_with('!')) text.remove_prefix(1);
    if (text.starts_with("re:") || text.find_first_of("*?[{") != std::string_view::npos) {
        return std::nullopt;
    }
    return text;
}

std::string joined(const std::vector<std::string_view>& values, std::string_view separator) {
    std::string out;
    for (const auto v : values) {
        if (!out.empty()) out += separator;
        out += v;
    }
    return out;
}

// The values a condition field can take, when that set is known.
struct Domain {
    std::vector<std::string_view> values;
    std::string what;   // completes "'x' is not ...": "an event", "true or false"
    std::string none;   // completes "'x*' matches ...": "no event", "neither true nor false"
    std::string known;  // appended after "; " when not empty: "events are push, tag, ..."
    // values is a guide, not the whole set: only a literal that is not in it but close to one of
    // its values (a typo) is an error.
    bool typos_only = false;
};

// The kinds in `kinds` as "pull_request events", "push or tag events", followed by the forges
// when the scope names them: "pull_request events from gitea or forgejo".
std::string kinds_phrase(const Scope& scope) {
    std::vector<std::string_view> names;
    for (const auto kind : event_kinds()) {
        if ((scope.kinds & bit(kind)) != 0) names.push_back(to_string(kind));
    }
    auto out = joined(names, " or ") + " events";
    if (scope.providers_narrowed) {
        std::vector<std::string_view> forges;
        for (const auto provider : providers()) {
            if ((scope.providers & bit(provider)) != 0) forges.push_back(to_string(provider));
        }
        out += " from " + joined(forges, " or ");
    }
    return out;
}

// Whether field `path` is never set on events of `kind`, whatever the forge: a template using it
// (without a default) can never render for a rule limited to such events. Only what every
// normalizer guarantees: pull request facts exist only on pull requests; a branch push names no
// tag, a tag push no branch, a pull request no tag. Pings never trigger and `other` events can
// carry anything (generic sources): never judged.
bool never_set(std::string_view path, EventKind kind) {
    const bool pull_request_field = path.starts_with("pull_request.");
    switch (kind) {
        case EventKind::push:
            return pull_request_field || path == "tag";
        case EventKind::tag:
            return pull_request_field || path == "branch";
        case EventKind::release:
            return pull_request_field;
        case EventKind::pull_request:
            return path == "tag";
        case EventKind::ping:
        case EventKind::other:
            return false;
    }
    return false;
}

// A job path copied from a Jenkins URL ("job/acme/job/app"): the path a rule means ("acme/app"),
// the "job" parts at even positions dropped; nullopt when it does not start that way.
std::optional<std::string> job_path_of_url_path(const std::vector<Segment>& segments) {
    if (segments.size() < 2 || segments.front().text != "job") return std::nullopt;
    std::string out;
    bool url_shaped = true;
    for (std::size_t i = 0; i < segments.size(); ++i) {
        if (url_shaped && i % 2 == 0 && segments[i].text == "job") continue;
        if (i % 2 == 0) url_shaped = false;
        if (!out.empty()) out += '/';
        out += segments[i].text;
    }
    return out;
}

std::vector<Provider> providers_in(ProviderSet set) {
    std::vector<Provider> out;
    for (const auto provider : providers()) {
        if ((set & bit(provider)) != 0) out.push_back(provider);
    }
    return out;
}

// Which actions a condition on `action` may name depends on the events it can see.
//  - Its scope excludes `other` (an `event:` condition names push, tag, pull_request, release,
//    ping only): the normalizers produce a known set of actions for those kinds, so every literal
//    must be one of them and every glob or regex must match one.
//  - An `event:` condition admits `other`: forge-specific events (workflow_run, check_suite,
//    GitLab notes, ...) carry the forge's own words, repository_dispatch even any word its sender
//    chose, so nothing is checked: the admin said which events they mean.
//  - No `event:` condition at all: a literal that is no action hookrelay knows of but is a typo
//    away from one (`opend`) is reported; anything else may be a forge-specific action and passes.
//    The message says how to match such an action on purpose (`event: other`).
// `provider:` and `source:` conditions narrow the set further to the actions of those forges.
std::optional<Domain> action_domain(const Scope& scope) {
    // No kind or no forge at all: the conditions contradict each other; nothing to check against.
    if (scope.kinds == 0 || scope.providers == 0) return std::nullopt;
    const bool other = (scope.kinds & bit(EventKind::other)) != 0;
    if (scope.narrowed && other) return std::nullopt;
    Domain d;
    const auto forges = providers_in(scope.providers);
    for (const auto kind : event_kinds()) {
        if ((scope.kinds & bit(kind)) == 0) continue;
        const auto actions =
            scope.providers_narrowed ? known_actions(kind, forges) : known_actions(kind);
        for (const auto action : actions) {
            if (std::find(d.values.begin(), d.values.end(), action) == d.values.end()) {
                d.values.push_back(action);
            }
        }
    }
    if (!scope.narrowed) {
        d.typos_only = true;
        d.what = "an action hookrelay knows";
        d.known =
            "to match an action of a forge-specific event hookrelay does not list, add "
            "`event: other`";
        return d;
    }
    const auto events = kinds_phrase(scope);
    if (d.values.empty()) {
        d.what = "an action of " + events + ": they carry none";
        d.none = "no action of " + events + ": they carry none";
        return d;
    }
    d.what = "an action of " + events;
    d.none = "no action of " + events;
    if (d.values.size() <= k_max_listed) d.known = "their actions are " + joined(d.values, ", ");
    return d;
}

class Compiler {
  public:
    Compiler(const Config& config, std::vector<ConfigError>& errors)
        : config_(config), errors_(errors) {}

    std::optional<std::vector<Rule>> run() {
        const std::size_t before = errors_.size();
        std::vector<Rule> rules;
        std::map<std::string, Location, std::less<>> seen;
        for (std::size_t i = 0; i < config_.rules.size(); ++i) {
            const auto& spec = config_.rules[i];
            label_ =
                spec.name.empty() ? "rule #" + std::to_string(i + 1) : "rule '" + spec.name + "'";
            if (spec.name.empty()) {
                error(spec.where, label_ + " has no name");
            } else if (const auto it = seen.find(spec.name); it != seen.end()) {
                error(spec.where,
                      "duplicate rule name '" + spec.name + "'" +
                          (it->second.line > 0
                               ? " (first defined at line " + std::to_string(it->second.line) + ")"
                               : std::string{}));
            } else {
                seen.emplace(spec.name, spec.where);
            }
            Rule rule;
            rule.name = spec.name;
            rule.stop = spec.stop;
            rule.when = condition(spec.when, Scope{});
            rule.mentions_deleted = mentions(rule.when, "deleted");
            // The events the rule can match at all, for templates that could never render.
            const Scope scope = spec.when.kind == Kind::all ? narrow(Scope{}, spec.when) : Scope{};
            for (const auto& t : spec.triggers) {
                rule.triggers.push_back(trigger(t, scope));
                const auto* jenkins = config_.find_jenkins(t.jenkins);
                // A scan builds nothing: there is nothing to follow.
                rule.triggers.back().follow =
                    t.scan ? FollowMode::none
                           : spec.follow.value_or(jenkins ? jenkins->follow : FollowMode::finished);
            }
            job_tokens(spec);
            if (spec.coalesce) {
                if (spec.coalesce->text.find_first_not_of(" \t") == std::string::npos) {
                    error(spec.coalesce->where, label_ + ": coalesce: the key is empty");
                } else if (auto tmpl = parse_template(spec.coalesce->text, spec.coalesce->where, 0,
                                                      "coalesce")) {
                    check_renders(*tmpl, spec.coalesce->where, "coalesce", scope);
                    rule.coalesce = std::move(*tmpl);
                }
            }
            rule.cancel_superseded = spec.cancel_superseded;
            if (spec.cancel_superseded &&
                std::any_of(rule.triggers.begin(), rule.triggers.end(), [](const Trigger& t) {
                    return !t.scan && t.follow == FollowMode::none;
                })) {
                // Only a followed build is known not to have started yet.
                error(spec.where, label_ +
                                      ": cancel_superseded needs its builds followed (`follow: "
                                      "started` or `finished`, the default), so hookrelay knows "
                                      "which queue items have not started");
            }
            if (spec.status_enabled.value_or(true)) {
                for (const auto& source : config_.sources) {
                    if (!source.status) continue;
                    std::string context = !spec.status_context.empty() ? spec.status_context
                                          : !source.status->context.empty()
                                              ? source.status->context
                                              : "hookrelay/" + spec.name;
                    rule.status_contexts.emplace(source.name, std::move(context));
                }
            }
            if (!rule.status_contexts.empty()) name_statuses(rule.triggers);
            rules.push_back(std::move(rule));
        }
        if (errors_.size() != before) return std::nullopt;
        return rules;
    }

  private:
    void error(Location where, std::string message) {
        errors_.push_back({config_.file, where, std::move(message)});
    }

    // Several builds of one rule on one commit: each posts under a name of its own (its job's,
    // stable from one push to the next, so a forge can require it), or the one that finished last
    // would decide what the forge shows for all of them.
    static void name_statuses(std::vector<Trigger>& triggers) {
        std::vector<Trigger*> posting;
        for (auto& t : triggers) {
            if (!t.scan) posting.push_back(&t);
        }
        if (posting.size() < 2) return;
        const auto name = [&](const Trigger& t, int level) {
            std::string out = "/";
            if (level >= 1) out += t.jenkins + "/";
            return out + t.job_text;
        };
        const auto unique_at = [&](int level) {
            std::set<std::string> seen;
            for (const Trigger* t : posting) {
                if (!seen.insert(name(*t, level)).second) return false;
            }
            return true;
        };
        const int level = unique_at(0) ? 0 : unique_at(1) ? 1 : 2;
        for (std::size_t i = 0; i < posting.size(); ++i) {
            posting[i]->status_suffix = name(*posting[i], std::min(level, 1));
            if (level == 2) posting[i]->status_suffix += "#" + std::to_string(i + 1);
        }
    }

    Condition condition(const ConditionSpec& spec, Scope scope) {
        Condition c;
        c.kind = spec.kind;
        switch (spec.kind) {
            case Kind::field:
                field(spec, c, scope);
                break;
            case Kind::all:
                scope = narrow(scope, spec);
                for (const auto& child : spec.children) {
                    c.children.push_back(condition(child, scope));
                }
                break;
            case Kind::any:
                if (spec.children.empty()) {
                    error(spec.where, label_ + ": 'any' needs at least one condition");
                }
                scope.required = false;
                for (const auto& child : spec.children) {
                    c.children.push_back(condition(child, scope));
                }
                break;
            case Kind::not_:
                if (spec.children.size() != 1) {
                    error(spec.where, label_ + ": 'not' takes exactly one condition, got " +
                                          std::to_string(spec.children.size()));
                }
                scope.required = false;
                for (const auto& child : spec.children) {
                    c.children.push_back(condition(child, scope));
                }
                break;
        }
        return c;
    }

    // `scope` narrowed by the `event`, `provider` and `source` conditions of the map (or `all`
    // list) `all_node`, including those of nested `all` lists.
    Scope narrow(Scope scope, const ConditionSpec& all_node) const {
        for (const auto& child : all_node.children) {
            if (child.kind == Kind::all) {
                scope = narrow(scope, child);
            } else if (child.kind == Kind::field && child.field == k_event) {
                if (const auto kinds = event_kinds_of(child)) {
                    scope.kinds &= *kinds;
                    scope.narrowed = true;
                }
            } else if (child.kind == Kind::field &&
                       (child.field == "provider" || child.field == "source")) {
                if (const auto forges = providers_of(child)) {
                    scope.providers &= *forges;
                    scope.providers_narrowed = true;
                }
            }
        }
        return scope;
    }

    // The providers a `provider` condition accepts, or those of the sources a `source` condition
    // accepts; nullopt when a pattern does not compile or matches nothing (reported on its own).
    std::optional<ProviderSet> providers_of(const ConditionSpec& spec) const {
        const bool by_source = spec.field == "source";
        if (by_source && config_.sources.empty()) return std::nullopt;
        bool any_positive = false;
        ProviderSet positive = 0;
        ProviderSet negative = 0;
        for (const auto& p : spec.patterns) {
            auto compiled = Pattern::compile(p.text);
            if (!compiled) return std::nullopt;
            ProviderSet matched = 0;
            if (by_source) {
                for (const auto& source : config_.sources) {
                    if (compiled->matches(source.name)) matched |= bit(source.provider);
                }
            } else {
                for (const auto provider : providers()) {
                    if (compiled->matches(to_string(provider))) matched |= bit(provider);
                }
            }
            if (matched == 0) return std::nullopt;
            if (compiled->negative()) {
                // "!ci-github" excludes one source, not every source of its forge.
                if (!by_source) negative |= matched;
            } else {
                any_positive = true;
                positive |= matched;
            }
        }
        return (any_positive ? positive : every_provider()) & ~negative;
    }

    // The kinds an `event` condition accepts; nullopt when one of its patterns does not compile or
    // names no kind (that is reported on its own; it must not narrow the scope of its siblings).
    static std::optional<KindSet> event_kinds_of(const ConditionSpec& spec) {
        bool any_positive = false;
        KindSet positive = 0;
        KindSet negative = 0;
        for (const auto& p : spec.patterns) {
            auto compiled = Pattern::compile(p.text);
            if (!compiled) return std::nullopt;
            KindSet matched = 0;
            for (const auto kind : event_kinds()) {
                if (compiled->matches(to_string(kind))) matched |= bit(kind);
            }
            if (matched == 0) return std::nullopt;
            if (compiled->negative()) {
                negative |= matched;
            } else {
                any_positive = true;
                positive |= matched;
            }
        }
        return (any_positive ? positive : every_kind()) & ~negative;
    }

    // The closed (or known) set of values of condition field `name` under `scope`.
    std::optional<Domain> domain(std::string_view name, const Scope& scope) const {
        Domain d;
        if (name == k_event) {
            for (const auto kind : event_kinds()) d.values.push_back(to_string(kind));
            d.what = "an event";
            d.none = "no event";
            d.known = "events are " + joined(d.values, ", ");
        } else if (name == "provider") {
            for (const auto provider : providers()) d.values.push_back(to_string(provider));
            d.what = "a provider";
            d.none = "no provider";
            d.known = "providers are " + joined(d.values, ", ");
        } else if (name == "source") {
            // Without sources the loader has reported that already; nothing to compare with.
            if (config_.sources.empty()) return std::nullopt;
            for (const auto& s : config_.sources) d.values.push_back(s.name);
            d.what = "a configured source";
            d.none = "no configured source";
            if (d.values.size() <= k_max_listed) d.known = "sources are " + joined(d.values, ", ");
        } else if (is_boolean_field(name)) {
            d.values = {"true", "false"};
            d.what = "true or false";
            d.none = "neither true nor false";
        } else if (name == k_action) {
            return action_domain(scope);
        } else {
            return std::nullopt;
        }
        return d;
    }

    // Reports every pattern of `spec` that can never match a value of `d`: a literal outside the
    // set (with a did-you-mean), a glob or regex matching none of it.
    void check_values(const ConditionSpec& spec, const Domain& d,
                      const std::vector<std::pair<const PatternSpec*, Pattern>>& patterns) {
        const auto known = d.known.empty() ? std::string() : "; " + d.known;
        for (const auto& [written, pattern] : patterns) {
            const auto prefix = label_ + ": " + spec.field + ": '" + written->text + "' ";
            if (const auto value = literal_value(written->text)) {
                if (std::find(d.values.begin(), d.values.end(), *value) != d.values.end()) {
                    continue;
                }
                const auto hint = did_you_mean(*value, d.values);
                if (d.typos_only && hint.empty()) continue;
                error(written->where, prefix + "is not " + d.what + hint + known);
                continue;
            }
            if (d.typos_only) continue;
            // Not captured by the lambda: clang before 16 cannot capture a structured binding.
            const Pattern& compiled = pattern;
            const bool matches_some =
                std::any_of(d.values.begin(), d.values.end(),
                            [&](std::string_view v) { return compiled.matches(v); });
            if (!matches_some) error(written->where, prefix + "matches " + d.none + known);
        }
    }

    void field(const ConditionSpec& spec, Condition& c, const Scope& scope) {
        c.field = spec.field;
        c.paths = spec.field == k_paths;
        const bool known_field = c.paths || is_event_field(spec.field);
        if (!known_field) {
            const std::array<std::string_view, 1> extra{k_paths};
            error(spec.where, label_ + ": unknown condition field '" + spec.field + "'" +
                                  render::field_suggestion(spec.field, extra));
        }
        if (spec.patterns.empty()) {
            error(spec.where, label_ + ": condition '" + spec.field + "' has no patterns");
        }
        std::vector<std::pair<const PatternSpec*, Pattern>> compiled_patterns;
        for (const auto& p : spec.patterns) {
            std::string why;
            std::size_t offset = 0;
            auto compiled = Pattern::compile(p.text, &why, &offset);
            if (!compiled) {
                const bool regex = compiled.error() == errc::bad_regex;
                error(shifted(p.where, offset), label_ + ": " + spec.field + ": " +
                                                    (regex ? "bad regex '" : "bad glob '") +
                                                    p.text + "': " + why);
                continue;
            }
            compiled_patterns.emplace_back(&p, *compiled);
            (compiled->negative() ? c.negatives : c.positives).push_back(std::move(*compiled));
        }
        c.none_of = std::string(k_none_of) + list(c.positives);
        if (!known_field || c.paths) return;
        never_matches(spec, c, scope);
        c.slot = slots_.emplace(spec.field, slots_.size()).first->second;
        precompute(c);
        if (const auto d = domain(spec.field, scope)) check_values(spec, *d, compiled_patterns);
    }

    std::optional<render::Template> parse_template(std::string_view text, Location where,
                                                   std::size_t base, std::string_view what) {
        std::string why;
        std::size_t offset = 0;
        auto t = render::Template::parse(text, &why, &offset);
        if (!t) {
            error(shifted(where, base + offset), label_ + ": " + std::string(what) + ": " + why);
            return std::nullopt;
        }
        return std::move(*t);
    }

    // A required condition with a positive pattern on a field that no event the rule matches has
    // (an unset field matches no positive pattern): the rule could never match. `event: push` with
    // `tag:` is the usual case, as GitHub sends tag pushes as "push" events but hookrelay calls
    // them `tag`.
    void never_matches(const ConditionSpec& spec, const Condition& c, const Scope& scope) {
        // Only negative patterns pass an unset field (`tag: "!v*"` on pushes matches them all).
        if (!scope.narrowed || !scope.required || c.positives.empty()) return;
        bool any_kind = false;
        for (const auto kind : event_kinds()) {
            if ((scope.kinds & bit(kind)) == 0) continue;
            any_kind = true;
            if (!never_set(spec.field, kind)) return;
        }
        if (!any_kind) return;
        std::string hint = "widen the rule's `event:` or drop the condition";
        if (spec.field == "tag") hint = "a tag push is `event: tag`; " + hint;
        if (spec.field == "branch") hint = "a branch push is `event: push`; " + hint;
        error(spec.where,
              label_ + ": condition '" + spec.field + "' is never set for " + kinds_phrase(scope) +
                  ", the only events this rule matches, so the rule could never match (" + hint +
                  ")");
    }

    // An error for each variable of `t` (at `where`) that no event the rule matches can set.
    void check_renders(const render::Template& t, Location where, std::string_view what,
                       const Scope& scope) {
        if (!scope.narrowed) return;
        std::vector<EventKind> kinds;
        for (const auto kind : event_kinds()) {
            if ((scope.kinds & bit(kind)) != 0) kinds.push_back(kind);
        }
        if (kinds.empty()) return;
        for (const auto& part : t.parts()) {
            if (part.literal) continue;
            if (std::any_of(part.filters.begin(), part.filters.end(),
                            [](const auto& f) { return f.name == "default"; })) {
                continue;
            }
            if (std::all_of(kinds.begin(), kinds.end(),
                            [&](EventKind k) { return never_set(part.text, k); })) {
                error(where, label_ + ": " + std::string(what) + ": '" + part.text +
                                 "' is never set for " + kinds_phrase(scope) +
                                 ", the only events this rule matches, so it could never render "
                                 "(add `| default('...')`, or widen the rule's `event:`)");
            }
        }
    }

    // The dispatcher finds a trigger's job token by its rule, its Jenkins and its job
    // (job_token()): a job written out in full gives its own token (a job has one), any other the
    // first templated trigger's. Two templated triggers of a rule on one Jenkins with different
    // tokens cannot be told apart, nor one job written twice with two tokens. A wrong token is
    // answered 403 and the trigger dies.
    void job_tokens(const RuleSpec& rule) {
        const auto same_token = [](const TriggerSpec& a, const TriggerSpec& b) {
            if (!a.token || !b.token) return !a.token && !b.token;
            return a.token->reveal() == b.token->reveal();
        };
        for (std::size_t i = 0; i < rule.triggers.size(); ++i) {
            const auto& a = rule.triggers[i];
            for (std::size_t j = i + 1; j < rule.triggers.size(); ++j) {
                const auto& b = rule.triggers[j];
                if (a.jenkins != b.jenkins || a.scan || b.scan || a.multibranch != b.multibranch ||
                    same_token(a, b)) {
                    continue;
                }
                const auto job_a = literal_job(a);
                const auto job_b = literal_job(b);
                if (job_a && job_b && *job_a == *job_b) {
                    error(b.job.where, label_ + ": job '" + b.job.text + "' on jenkins '" +
                                           b.jenkins + "' is given two different tokens");
                    return;
                }
                if (job_a || job_b) continue;
                error(b.job.where,
                      label_ + ": its triggers on jenkins '" + a.jenkins + "' ('" + a.job.text +
                          "' and '" + b.job.text +
                          "') have different job tokens, and hookrelay tells a build's token by "
                          "its job only where the job is written out in full: put them in rules "
                          "of their own");
                return;
            }
        }
    }

    Trigger trigger(const TriggerSpec& spec, const Scope& scope) {
        Trigger t;
        t.jenkins = spec.jenkins;
        t.job_text = spec.job.text;
        if (config_.find_jenkins(spec.jenkins) == nullptr) {
            std::string known;
            for (const auto& j : config_.jenkins) known += (known.empty() ? "" : ", ") + j.name;
            error(spec.jenkins_where, label_ + ": unknown jenkins '" + spec.jenkins +
                                          "' (known: " + (known.empty() ? "none" : known) + ")");
        }
        if (spec.job.text.find_first_not_of(" \t") == std::string::npos) {
            error(spec.job.where, label_ + ": trigger has no job");
        } else {
            const auto segments = split_job(spec.job.text);
            if (const auto fix = job_path_of_url_path(segments)) {
                error(spec.job.where,
                      label_ + ": job '" + spec.job.text +
                          "' looks copied from a Jenkins URL: write '" + *fix +
                          "' (hookrelay adds the job/ parts itself; for a folder really named "
                          "'job', write 'Job': Jenkins matches item names case-insensitively)");
            }
            for (const auto& segment : segments) {
                if (segment.text.empty()) {
                    error(shifted(spec.job.where, segment.offset),
                          label_ + ": job '" + spec.job.text + "' has an empty path segment");
                    continue;
                }
                if (auto tmpl =
                        parse_template(segment.text, spec.job.where, segment.offset, "job")) {
                    check_renders(*tmpl, shifted(spec.job.where, segment.offset), "job", scope);
                    t.job.push_back(std::move(*tmpl));
                }
            }
        }
        t.scan = spec.scan;
        if (spec.branch) {
            if (spec.branch->text.find_first_not_of(" \t") == std::string::npos) {
                error(spec.branch->where, label_ + ": trigger has an empty branch");
            } else if (auto tmpl =
                           parse_template(spec.branch->text, spec.branch->where, 0, "branch")) {
                check_renders(*tmpl, spec.branch->where, "branch", scope);
                t.branch = std::move(*tmpl);
            }
        }
        std::map<std::string, bool, std::less<>> names;
        for (const auto& [name, value] : spec.parameters) {
            if (name.empty()) {
                error(value.where, label_ + ": a parameter has an empty name");
            } else if (!names.emplace(name, true).second) {
                error(value.where, label_ + ": duplicate parameter '" + name + "'");
            } else if (name == "delay" || (name == "token" && spec.token)) {
                // Jenkins reads its parameters from the query and the body together: hookrelay's
                // own `delay` (and the job's `token`) would be a second value, which Jenkins
                // answers with 500 on every attempt.
                error(value.where,
                      label_ + ": parameter '" + name +
                          "' cannot be sent: Jenkins would also read " +
                          (name == "delay" ? std::string("the `delay` hookrelay sends")
                                           : std::string("the job's `token:`")) +
                          " as a value of it and refuse the build (500); rename the job's "
                          "parameter");
            }
            if (auto tmpl =
                    parse_template(value.text, value.where, 0, "parameter '" + name + "'")) {
                check_renders(*tmpl, value.where, "parameter '" + name + "'", scope);
                t.parameters.emplace_back(name, std::move(*tmpl));
            }
        }
        return t;
    }

    // The verdicts of an `event` or `provider` condition for each value it can see (an event's
    // kind and forge are always set), so a delivery looks them up instead of matching.
    static void precompute(Condition& c) {
        const Event none;  // read only for unset fields, and these are always set
        if (c.field == k_event) {
            c.key = Key::event_kind;
            for (const auto kind : event_kinds()) {
                const auto at = static_cast<std::size_t>(kind);
                if (c.verdicts.size() <= at) c.verdicts.resize(at + 1);
                c.verdicts[at] = field_verdict(c, std::string(to_string(kind)), none, Mode{});
            }
        } else if (c.field == "provider") {
            c.key = Key::provider;
            for (const auto provider : providers()) {
                const auto at = static_cast<std::size_t>(provider);
                if (c.verdicts.size() <= at) c.verdicts.resize(at + 1);
                c.verdicts[at] = field_verdict(c, std::string(to_string(provider)), none, Mode{});
            }
        }
    }

  public:
    /// The distinct fields the compiled conditions read, by slot (Condition::slot).
    std::vector<std::string> fields() const {
        std::vector<std::string> out(slots_.size());
        for (const auto& [name, slot] : slots_) out[slot] = name;
        return out;
    }

  private:
    const Config& config_;
    std::vector<ConfigError>& errors_;
    std::string label_;
    std::map<std::string, std::size_t, std::less<>> slots_;
};

// Why a rule whose conditions hold does not match a deleted ref when it does not mention
// `deleted`. Said only then: a rule its other conditions refuse says those (a pull request rule
// is not told to add `deleted: true`).
constexpr std::string_view k_deleted_guard =
    "the ref was deleted; add `deleted: true` to the rule to match deletions";
// Why no rule matches a ping, whatever its conditions.
constexpr std::string_view k_ping_guard = "ping events never trigger";

std::string cause(const Rule& rule, const Event& event) {
    std::string out = "hookrelay: " + std::string(to_string(event.provider)) + " " +
                      std::string(to_string(event.kind)) + " on " + event.repository.full_name;
    if (event.pull_request) {
        out += " PR #" + std::to_string(event.pull_request->number);
    } else if (!event.ref.empty()) {
        out += " " + event.ref;
    } else if (!event.tag.empty()) {
        out += " " + event.tag;
    }
    out += " (";
    if (!event.delivery_id.empty()) out += "delivery " + event.delivery_id + ", ";
    return out + "rule " + rule.name + ")";
}

// Where a trigger's statuses go: the commit the event is about. None for an event without one
// (a deleted branch, a tag object that is not a commit, a pull request event without its head).
std::optional<StatusTarget> status_target(const Event& event, const std::string& context) {
    std::string sha;
    bool abbreviated = false;
    if (event.pull_request) {
        sha = event.pull_request->head_sha;
        // Bitbucket Cloud sends 12 digits, which its status API resolves in the repository of
        // the hook; a fork's commits are not in it.
        if (sha.empty() && !event.pull_request->from_fork) {
            sha = event.pull_request->head_sha_abbrev;
            abbreviated = !sha.empty();
        }
    } else if (!event.deleted) {
        sha = event.commit;
    }
    const bool hex = !sha.empty() && sha.find_first_not_of("0123456789abcdef") == std::string::npos;
    const bool named = abbreviated ? sha.size() >= 7 && sha.size() < 40 : sha.size() == 40;
    if (!hex || !named || is_zero_sha(sha) || event.repository.full_name.empty()) {
        return std::nullopt;
    }
    std::string ref = event.pull_request      ? event.pull_request->source_branch
                      : !event.branch.empty() ? event.branch
                                              : event.tag;
    return StatusTarget{event.repository.full_name, std::move(sha), context, std::move(ref)};
}

void render_trigger(const Rule& rule, const Trigger& t, const Event& event, std::size_t index,
                    Decision& d) {
    TriggerRequest request;
    request.rule = rule.name;
    request.jenkins = t.jenkins;
    for (std::size_t i = 0; i < t.job.size(); ++i) {
        std::string why;
        auto segment = t.job[i].render(event, &why);
        if (!segment) {
            d.failures.push_back({rule.name, "job '" + t.job_text + "': " + why, index});
            return;
        }
        if (segment->empty()) {
            d.failures.push_back({rule.name,
                                  "job '" + t.job_text + "': segment " + std::to_string(i + 1) +
                                      " ('" + t.job[i].text() + "') rendered empty",
                                  index});
            return;
        }
        request.job.push_back(std::move(*segment));
    }
    if (t.branch) {
        // The branch job: one item name inside the project, a '/' in it included.
        std::string why;
        auto branch = t.branch->render(event, &why);
        if (!branch) {
            d.failures.push_back({rule.name, "branch '" + t.branch->text() + "': " + why, index});
            return;
        }
        if (branch->empty()) {
            d.failures.push_back(
                {rule.name, "branch '" + t.branch->text() + "' rendered empty", index});
            return;
        }
        request.multibranch = request.job.size();
        request.job.push_back(std::move(*branch));
    }
    request.scan_only = t.scan;
    if (rule.coalesce) {
        // A key the event has no value for (`branch` on a tag push) coalesces nothing, as an
        // empty one: the build still goes out, on its own. The key is bookkeeping, not a reason
        // to build nothing.
        std::string why;
        if (auto key = rule.coalesce->render(event, &why)) {
            request.coalesce = std::move(*key);
            request.cancel_superseded = rule.cancel_superseded && !request.coalesce.empty();
        }
    }
    for (const auto& [name, tmpl] : t.parameters) {
        std::string why;
        auto value = tmpl.render(event, &why);
        if (!value) {
            d.failures.push_back({rule.name, "parameter '" + name + "': " + why, index});
            return;
        }
        request.parameters.emplace_back(name, std::move(*value));
    }
    request.cause = cause(rule, event);
    request.follow = t.follow;
    if (const auto it = rule.status_contexts.find(event.source);
        !t.scan && it != rule.status_contexts.end()) {
        request.status = status_target(event, it->second + t.status_suffix);
    }
    d.triggers.push_back(std::move(request));
    d.trigger_events.push_back(index);
}

// A span of Index::arena.
struct Text {
    std::uint32_t offset = 0;
    std::uint32_t size = 0;
};

// One of a rule's leading top-level conditions that the event's kind, its forge or one field's
// value decides without matching a pattern: an `event` or `provider` condition, or a condition
// whose patterns are all plain literals (no wildcard, no regex, no '!').
struct Step {
    Key key = Key::none;
    std::uint32_t accepts = 0;  // event_kind, provider: a bit per enum value that passes
    std::uint32_t slot = 0;     // none: the field's slot in Facts
    // Into Index::texts. event_kind, provider: the reason for each of the `count` enum values
    // (empty: passes). none: the `count` literals, then "<field>: ", then the condition's none_of.
    std::uint32_t first = 0;
    std::uint32_t count = 0;
    std::uint32_t child = 0;  // which of rule.when.children it is
};

// The rules as a delivery first looks at them: for each rule its leading decidable conditions
// (Step), and the texts they compare with and explain themselves in, all in a few contiguous
// arrays built once per config load. Most rules of a large config fail one of these (another
// event, another repository), and a delivery then learns that, and the reason the full
// evaluation would give, without following a rule's pointers or running RE2.
struct Index {
    std::string arena;
    std::vector<Text> texts;
    std::vector<Step> steps;
    struct Entry {
        std::uint32_t begin = 0;  // [begin, end) of steps
        std::uint32_t end = 0;
        std::uint32_t name = 0;  // into texts
        bool mentions_deleted = false;
    };
    std::vector<Entry> rules;  // one per rule, in order

    // Each distinct text is stored once (many rules give the same reason for another event
    // kind), which keeps the arena small enough to stay in cache.
    std::uint32_t add(std::string_view text) {
        auto [it, added] =
            offsets.try_emplace(std::string(text), static_cast<std::uint32_t>(arena.size()));
        if (added) arena += text;
        texts.push_back({it->second, static_cast<std::uint32_t>(text.size())});
        return static_cast<std::uint32_t>(texts.size() - 1);
    }
    std::map<std::string, std::uint32_t, std::less<>> offsets;  // while building
    std::string_view text(std::uint32_t i) const {
        const auto t = texts[i];
        return std::string_view(arena).substr(t.offset, t.size);
    }
};

// Whether `c` can be a Step (see there).
bool decidable(const Condition& c) {
    if (c.kind != Kind::field || c.paths) return false;
    if (c.key != Key::none) return true;
    return c.negatives.empty() && !c.positives.empty() &&
           std::all_of(c.positives.begin(), c.positives.end(),
                       [](const Pattern& p) { return p.literal(); });
}

// `with_steps` false: names and guards only, every rule fully checked (Mode::reference).
Index build_index(const std::vector<Rule>& rules, bool with_steps) {
    Index index;
    for (const auto& rule : rules) {
        const auto begin = static_cast<std::uint32_t>(index.steps.size());
        const auto& children = rule.when.children;
        const bool all = rule.when.kind == Kind::all && with_steps;
        for (std::size_t i = 0; all && i < children.size(); ++i) {
            const auto& c = children[i];
            // Only the leading ones: the first condition that fails gives the reason.
            if (!decidable(c)) break;
            Step step;
            step.key = c.key;
            step.child = static_cast<std::uint32_t>(i);
            if (c.key != Key::none) {
                step.first = static_cast<std::uint32_t>(index.texts.size());
                step.count = static_cast<std::uint32_t>(c.verdicts.size());
                for (std::size_t at = 0; at < c.verdicts.size(); ++at) {
                    if (c.verdicts[at].ok) step.accepts |= std::uint32_t{1} << at;
                    index.add(c.verdicts[at].reason);
                }
            } else {
                step.slot = static_cast<std::uint32_t>(c.slot);
                step.first = static_cast<std::uint32_t>(index.texts.size());
                step.count = static_cast<std::uint32_t>(c.positives.size());
                for (const auto& p : c.positives) index.add(p.text());
                index.add(c.field + ": ");
                index.add(c.none_of);
            }
            index.steps.push_back(step);
        }
        index.rules.push_back({begin, static_cast<std::uint32_t>(index.steps.size()),
                               index.add(rule.name), rule.mentions_deleted});
    }
    index.offsets.clear();
    return index;
}

// What screen() found for a rule.
struct Screened {
    enum class Kind {
        undecided,  // every step passed (or one cannot tell): the rule needs check()
        fixed,      // failed; `first` is the whole reason, a text of the index
        composed,   // failed; the reason is `first` (Facts::shown_at) followed by `second`
        unset,      // failed on a field the event does not set: rule.when.children[child]
    };
    Kind kind = Kind::undecided;
    std::string_view first;
    std::string_view second;
    std::uint32_t child = 0;
};

// The first of a rule's steps (`entry`) that fails, with the reason check() gives (the conditions
// before it passed); undecided when every step passes and the rule needs check(). The views are
// valid as long as `index` and `facts`.
Screened screen(const Index& index, const Index::Entry& entry, Facts& facts) {
    const auto& event = facts.event();
    for (auto i = entry.begin; i < entry.end; ++i) {
        const auto& step = index.steps[i];
        if (step.key != Key::none) {
            const auto at = static_cast<std::size_t>(
                step.key == Key::event_kind ? static_cast<std::size_t>(event.kind)
                                            : static_cast<std::size_t>(event.provider));
            // A value outside the enum: left to check(), which reports it as an internal error.
            if (at >= step.count) return {};
            if (((step.accepts >> at) & 1U) != 0) continue;
            return {Screened::Kind::fixed,
                    index.text(step.first + static_cast<std::uint32_t>(at)),
                    {},
                    0};
        }
        const auto& value = facts.value_at(step.slot);
        if (!value) return {Screened::Kind::unset, {}, {}, step.child};
        bool found = false;
        for (auto k = step.first; k < step.first + step.count && !found; ++k) {
            found = index.text(k) == *value;
        }
        if (found) continue;
        // The same "<field>: '<value>'" for every rule that reads the field.
        return {Screened::Kind::composed,
                facts.shown_at(step.slot, index.text(step.first + step.count)),
                index.text(step.first + step.count + 1), 0};
    }
    return {};
}

}  // namespace

struct RuleSet::Impl {
    std::vector<Rule> rules;
    std::vector<std::string> fields;  ///< condition fields by slot (Facts)
    Index index;
    Mode mode;
};

RuleSet::RuleSet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RuleSet::~RuleSet() = default;

std::vector<std::string> Decision::matched_rules() const {
    std::vector<std::string> out;
    for (const auto& r : rules) {
        if (r.matched && std::find(out.begin(), out.end(), r.rule) == out.end()) {
            out.emplace_back(r.rule);
        }
    }
    return out;
}

std::shared_ptr<const RuleSet> RuleSet::compile(const Config& config,
                                                std::vector<ConfigError>& errors,
                                                const CompileOptions& options) {
    Compiler compiler(config, errors);
    auto rules = compiler.run();
    if (!rules) return nullptr;
    auto impl = std::make_unique<Impl>();
    impl->rules = std::move(*rules);
    impl->fields = compiler.fields();
    impl->mode.reference = options.reference;
    impl->index = build_index(impl->rules, !options.reference);
    return std::make_shared<const RuleSet>(std::move(impl));
}

Decision RuleSet::evaluate(const Event& event) const {
    return evaluate(std::span<const Event>(&event, 1));
}

Decision RuleSet::evaluate(std::span<const Event> events) const {
    Decision d;
    d.events = events.size();
    d.rules.reserve(impl_->rules.size() * events.size());
    // The reasons made for this delivery, one after another in one buffer. Each outcome's view
    // into it is set at the end, once the buffer no longer moves. Room for one event's reasons:
    // most rules' reasons are the rule set's own texts, and a delivery of many events (the
    // sender chooses how many) grows it as it needs.
    std::string texts;
    texts.reserve(64 * impl_->rules.size());
    struct Composed {
        std::size_t outcome;
        std::size_t offset;
        std::size_t size;
    };
    std::vector<Composed> composed;
    composed.reserve(impl_->rules.size());
    const auto compose = [&](std::size_t outcome, std::initializer_list<std::string_view> parts) {
        const auto offset = texts.size();
        for (const auto part : parts) texts += part;
        composed.push_back({outcome, offset, texts.size() - offset});
    };
    for (std::size_t index = 0; index < events.size(); ++index) {
        const auto& event = events[index];
        Facts facts(event, impl_->fields, impl_->mode);
        const Rule* stopped_by = nullptr;
        std::optional<Composed> stop_reason;  // the reason of every rule after stopped_by
        for (std::size_t r = 0; r < impl_->rules.size(); ++r) {
            // A rule the index decides is read from the index alone; `rule` is touched only
            // when it needs its full check.
            const auto& rule = impl_->rules[r];
            const auto& entry = impl_->index.rules[r];
            // Filled in place (d.rules has room for every outcome; rendering adds to the others).
            const auto at = d.rules.size();
            auto& outcome = d.rules.emplace_back();
            outcome.rule = impl_->index.text(entry.name);
            outcome.event = index;
            // Nothing here should throw but allocation; a failure must cost one rule, not the
            // delivery.
            try {
                if (stopped_by != nullptr) {
                    outcome.evaluated = false;
                    if (!stop_reason) {
                        compose(at, {"not evaluated: rule '", stopped_by->name,
                                     "' matched with stop: true"});
                        stop_reason = composed.back();
                    } else {
                        composed.push_back({at, stop_reason->offset, stop_reason->size});
                    }
                    outcome.shared = stop_reason->size;
                    continue;
                }
                if (event.kind == EventKind::ping) {
                    outcome.reason = k_ping_guard;
                    outcome.shared = k_ping_guard.size();
                    continue;
                }
                const auto screened = screen(impl_->index, entry, facts);
                if (screened.kind == Screened::Kind::fixed) {
                    outcome.reason = screened.first;
                    outcome.shared = screened.first.size();
                    continue;
                }
                if (screened.kind == Screened::Kind::composed) {
                    compose(at, {screened.first, screened.second});
                    // "<field>: '<value>' matches none of ": every rule of the index that the
                    // field fails says it; only its patterns differ.
                    outcome.shared =
                        screened.first.size() +
                        (screened.second.starts_with(k_none_of) ? k_none_of.size() : 0);
                    continue;
                }
                const auto verdict = screened.kind == Screened::Kind::unset
                                         ? field_verdict(rule.when.children[screened.child],
                                                         std::nullopt, event, facts.mode())
                                         : check(rule.when, facts);
                if (!verdict.ok) {
                    compose(at, {verdict.reason});
                    continue;
                }
                if (event.deleted && !entry.mentions_deleted) {
                    outcome.reason = k_deleted_guard;
                    outcome.shared = k_deleted_guard.size();
                    continue;
                }
                outcome.matched = true;
                for (const auto& t : rule.triggers) render_trigger(rule, t, event, index, d);
                if (rule.stop) stopped_by = &rule;
            } catch (const std::exception& e) {
                outcome.matched = false;
                try {
                    compose(at, {"internal error: ", e.what()});
                } catch (const std::exception&) {
                    outcome.reason = "internal error";
                }
            }
        }
    }
    auto owned = std::make_shared<const std::string>(std::move(texts));
    const std::string_view all(*owned);
    for (const auto& c : composed) d.rules[c.outcome].reason = all.substr(c.offset, c.size);
    d.delivery_texts = std::move(owned);
    d.rule_texts = shared_from_this();
    return d;
}

StaticJobPath static_job_path(std::string_view job_text) {
    StaticJobPath out;
    for (const auto& segment : split_job(job_text)) {
        auto tmpl = render::Template::parse(segment.text);
        if (!tmpl || !tmpl->is_literal() || segment.text.empty()) {
            out.complete = false;
            break;
        }
        out.segments.push_back(segment.text);
    }
    return out;
}

}  // namespace hookrelay::rules
