// Checking a config against the real Jenkins (`hookrelay check --online`, `hookrelay jenkins
// test`, and the daemon's background check): whether each Jenkins answers, whom it takes
// hookrelay's credentials for, whether CSRF protection is on, and, for each rule trigger whose
// job path does not depend on the event, that the job exists, is buildable and declares the
// parameters the trigger sends (Jenkins drops undeclared ones silently, SECURITY-170). The
// requests are GETs of Jenkins' JSON API (jenkins-builds-and-jobs.md §2.3) through
// JenkinsClient::read(); the judgement of each answer is a pure function below.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/error.hpp>
#include <hookrelay/jenkins.hpp>

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::jenkins {

/// What one rule trigger asks of its Jenkins, as far as it is known without an event.
struct JobCheck {
    std::string rule;
    /// complete: the job's item names; otherwise the longest static folder prefix (may be empty:
    /// nothing to check).
    std::vector<std::string> job;
    bool complete = true;
    /// The path is a scan's or a multibranch trigger's project, written out in full: a job there
    /// is a finding (hookrelay refuses to scan it: its POST build would queue a build of it).
    bool computed_folder = false;
    std::string job_text;  ///< the job as written, for messages
    Location job_where;
    /// The parameter names the trigger sends, in config order, each with its position.
    std::vector<std::pair<std::string, Location>> parameters;
};

/// Everything checked on one Jenkins entry.
struct CheckPlan {
    std::string jenkins;   ///< the entry's name
    Location where;        ///< the entry in the config (Jenkins-wide problems point here)
    std::string auth_key;  ///< the config key to fix when Jenkins refuses the credentials
    std::vector<JobCheck> jobs;
};

/// One problem, at the config position it concerns.
struct Finding {
    Location where;
    std::string message;
};

/// What checking one Jenkins came to.
struct CheckReport {
    std::string jenkins;
    bool reachable = false;          ///< Jenkins answered (whatever it said)
    std::string identity;            ///< "authenticated as x", "anonymous", or "" when unknown
    std::string csrf;                ///< "on", "off", or "" when unknown
    std::size_t jobs_checked = 0;    ///< jobs (and static folder prefixes) read
    std::size_t jobs_templated = 0;  ///< triggers whose job depends on the event entirely
    std::vector<Finding> findings;
    /// False when the check stopped because Jenkins was down, timed out or rate limited (its
    /// findings then say so, not what the config gets wrong): worth doing again later.
    bool complete = true;
};

/// A job (or folder) as its api/json?tree=_class,buildable,property[parameterDefinitions[...]]
/// answer describes it.
struct JobFacts {
    std::string klass;              ///< Jenkins' _class ("" when absent)
    std::optional<bool> buildable;  ///< absent: not a job (a folder, a multibranch project ...)
    /// Declared parameter names, in Jenkins' order; empty when it is not parameterized.
    std::vector<std::string> parameters;
};

/// The tree asked for a job: its class, whether it is buildable, and its parameter definitions.
inline constexpr std::string_view k_job_tree =
    "api/json?tree=_class,buildable,property[parameterDefinitions[name,type]]";

/// Parses a job's api/json answer (k_job_tree). errc::malformed_json when it is not a JSON object.
result<JobFacts> parse_job(std::string_view body);

/// The problems of sending `check`'s parameters to a job that `facts` describes, each at the
/// position it concerns: not buildable (disabled) or not a job at all; parameters to a job that
/// declares none (Jenkins answers buildWithParameters 400); no parameters to a parameterized job
/// (Jenkins answers POST build 400); each parameter the job does not declare (Jenkins would drop
/// it), with a did-you-mean for a near miss (a different case first, then a small edit distance).
/// `job` is the job's display path ("acme/app"), `jenkins` the entry's name. Pure.
std::vector<Finding> job_findings(const JobCheck& check, const JobFacts& facts,
                                  std::string_view jenkins);

/// The closest of `names` to `sent`: one that differs only in case, else the closest by edit
/// distance (util/suggest.hpp); "" when none is close. For parameter names and item names alike.
std::string closest_name(std::string_view sent, const std::vector<std::string>& names);

/// The tree asked for a folder's (or, below no job path, the root's) items: Jenkins lists them in
/// `jobs`.
inline constexpr std::string_view k_items_tree = "api/json?tree=jobs[name]";

/// An item group as its api/json?tree=jobs[name] answer describes it.
struct FolderItems {
    std::string klass;  ///< Jenkins' _class ("" when absent)
    /// The item names in Jenkins' order; absent when the answer has no `jobs` (not a folder).
    std::optional<std::vector<std::string>> items;
};

/// Parses an api/json?tree=jobs[name] answer. errc::malformed_json when it is not a JSON object.
result<FolderItems> parse_items(std::string_view body);

/// Why `missing` cannot be found in `folder` (item names; empty: the root), given what the
/// folder's k_items_tree answer says: "folder 'acme' has no item 'ap' (did you mean 'app'?)"
/// (closest_name), else the folder's first five items ("... (its items: a, b, c, d, e and 2
/// more)"), "... (it has no items)", or "'acme/app' is not a folder (it is a <class>)". Pure.
std::string missing_item(const std::vector<std::string>& folder, std::string_view missing,
                         const FolderItems& answer);

/// Runs the plan against `client`: GET whoAmI/api/json (reachability, TLS and credentials;
/// 401/403 name plan.auth_key), GET crumbIssuer/api/json (2xx: CSRF on, 404: off), then each job
/// (each distinct path read once): a complete path with k_job_tree, a static folder prefix with
/// api/json?tree=_class. A path that answers 404 is explained: the deepest ancestor folder that
/// answers k_items_tree (the root for the first segment) names the first missing segment with a
/// did-you-mean or its items (missing_item()); each such folder is read at most once per run, and
/// a folder that cannot be read leaves the finding without the explanation. Stops at the first
/// answer that says Jenkins is down or refuses the credentials (every further request would fail
/// alike). Every request is bounded by the client's deadlines; never throws.
boost::asio::awaitable<CheckReport> check_jenkins(JenkinsClient& client, CheckPlan plan);

}  // namespace hookrelay::jenkins
