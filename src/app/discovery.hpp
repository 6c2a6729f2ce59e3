// Where the command line finds its config when --config is not given, so that `hookrelay status`
// works as documented on an installed machine, in a container and under `make run` alike.
#pragma once

#include <optional>
#include <string>

namespace hookrelay::app {

/// The installed config every command falls back to (the Debian package's conffile).
inline constexpr const char* k_system_config = "/etc/hookrelay/hookrelay.yaml";

/// The config file to use: `explicit_path` when not empty; else $HOOKRELAY_CONFIG when set and
/// not empty; else k_system_config when that file exists; else nullopt (callers say what to do).
/// Never fails on its own: a named file that does not exist is returned as is, so the loader
/// reports it with its path.
std::optional<std::string> discover_config(const std::string& explicit_path);

/// The message for a command that needs a config and found none.
std::string no_config_message();

}  // namespace hookrelay::app
