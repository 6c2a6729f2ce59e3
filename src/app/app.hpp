// The command-line entry points. main() only calls run_cli().
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace hookrelay::app {

/// Parses the command line and runs the chosen command; returns the process exit code: 0 done,
/// 1 the command failed (a config error, the daemon refused), 2 a usage error (CLI11's own codes
/// are mapped to 2) or the daemon could not be reached.
int run_cli(int argc, char** argv);

struct DaemonOptions {
    std::string config_path;
    std::string ready_file;  ///< written with "http=<host>:<port>" once listening (tests, scripts)
    std::string log_level;   ///< overrides log.level when set
};

/// `hookrelay run`: serves until SIGTERM/SIGINT. Returns the exit code: 0 after a stop, 78
/// (EX_CONFIG) for a start refused for the config or a store it must not open (starting again
/// changes nothing), 1 for anything else.
int run_daemon(const DaemonOptions& options);

/// `hookrelay check`: validates the config; prints every error to `err`. Returns the exit code.
int run_check(const std::string& config_path, std::ostream& out, std::ostream& err);

struct ExplainOptions {
    std::string config_path;
    std::string source;
    std::string body_file;
    std::vector<std::string> headers;  ///< "Name: value"
    std::string headers_file;          ///< one "Name: value" per line
    bool json = false;                 ///< the report as JSON (scripts) instead of a table
};

/// `hookrelay explain`: dry-runs one delivery through the rules and prints a rule-by-rule table
/// (or, with options.json, the report as JSON) to `out`. 0, or 1 when the delivery is rejected.
int run_explain(const ExplainOptions& options, std::ostream& out, std::ostream& err);

}  // namespace hookrelay::app
