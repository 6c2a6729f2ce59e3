// The config checked against the real Jenkins (src/jenkins/check.hpp): the plans made from a
// config, `hookrelay check --online` / `hookrelay jenkins test`, and the daemon's background
// check after start and after each reload.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/metrics.hpp>

#include "jenkins/check.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::app {

/// One plan per Jenkins entry of `config` (only the one named `only` when it is not empty), in
/// config order, each with every rule trigger to it: the static part of its job path
/// (rules::static_job_path) and the parameter names it sends, with their positions.
std::vector<jenkins::CheckPlan> check_plans(const Config& config, std::string_view only = {});

/// `hookrelay check --online` (only empty) and `hookrelay jenkins test [NAME]`: loads the config
/// (its errors as `check` prints them, exit 1), checks each Jenkins concurrently, prints every
/// finding as "file:line:column: message" to `err` and a summary line per Jenkins to `out`.
/// 0 when nothing was found; 1 when something was (or the config is invalid, or no Jenkins is
/// named `only`).
int run_online_check(const std::string& config_path, const std::string& only, std::ostream& out,
                     std::ostream& err);

/// The daemon's background check. Thread-safe.
class OnlineChecks : public std::enable_shared_from_this<OnlineChecks> {
  public:
    OnlineChecks(boost::asio::any_io_executor executor, std::shared_ptr<Metrics> metrics);

    /// Checks `config` against each of its Jenkins in the background (never waits for them): each
    /// finding is logged as a warning, counted in Metrics::config_findings and kept for
    /// findings(). A check that Jenkins' being down (or rate limited) cut short is done again,
    /// first after the entry's probe_initial, then at twice the last wait up to its probe_max,
    /// until it completes: an outage at start is not left as the config's problem. A later run()
    /// supersedes the results of an earlier one still running, and its checks to come.
    void run(std::shared_ptr<const Config> config);

    /// The latest finished check's findings for `jenkins`, "file:line:column: message"; empty
    /// when none (or not checked yet).
    std::vector<std::string> findings(const std::string& jenkins) const;

  private:
    boost::asio::any_io_executor executor_;
    std::shared_ptr<Metrics> metrics_;
    mutable std::mutex mutex_;
    unsigned generation_ = 0;
    std::map<std::string, std::vector<std::string>> findings_;

    /// Keeps `report`'s findings unless a later run() superseded `generation`; false then.
    /// `again`: a check done again after an outage, whose unchanged findings are not logged.
    bool publish(unsigned generation, const std::string& file, const jenkins::CheckReport& report,
                 bool again);
    boost::asio::awaitable<void> check(JenkinsConfig entry, jenkins::CheckPlan plan,
                                       unsigned generation, std::string file);
};

}  // namespace hookrelay::app
