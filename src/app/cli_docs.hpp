// The man page and the bash completion script, generated from the command line's own definition
// (`hookrelay generate man|bash-completion`), so neither drifts from --help. The Debian package
// runs both at build time.
#pragma once

#include <iosfwd>

namespace CLI {
class App;
}

namespace hookrelay::app {

/// Writes hookrelay(1) in roff (man(7) macros): every subcommand with its options and their
/// help text, the footer as a section of its own.
void write_man_page(const CLI::App& cli, std::ostream& out);

/// Writes a bash completion script for `hookrelay`: subcommands (nested ones too) and each
/// one's options; files complete for options that take a value.
void write_bash_completion(const CLI::App& cli, std::ostream& out);

}  // namespace hookrelay::app
