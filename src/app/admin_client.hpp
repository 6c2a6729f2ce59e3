// `hookrelay status`, `hookrelay deliveries list|show|replay|redeliver` and `hookrelay reload`:
// command-line clients of the admin API. Tables for people, --json for scripts.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace hookrelay::app {

/// Adds the admin client subcommands to `cli`; returns a function that runs whichever of them
/// was chosen (exit code), or nullopt-like -1 when none was.
std::function<int()> add_admin_commands(CLI::App& cli);

}  // namespace hookrelay::app
