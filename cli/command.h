// Subcommand registry of the `optower` CLI. Each cmd_*.cc registers itself with
// OPTOWER_REGISTER_COMMAND; optower_main.cc dispatches on argv[1].
//
// Exit codes (shared by every subcommand):
//   0 success; 1 runtime failure (I/O, server unreachable, training failed);
//   2 bad usage or bad input data — one line on stderr, `file:line: what is wrong` for data files.
#ifndef OPTOWER_CLI_COMMAND_H_
#define OPTOWER_CLI_COMMAND_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace optower::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct Command {
  std::string name;     // e.g. "synth" or "items upsert" is not supported: one word
  std::string summary;  // one line for `optower --help`
  // argv[0] is "optower <name>", argv[1..] the subcommand's own arguments.
  std::function<int(int argc, char** argv)> run;
};

std::vector<Command>& CommandRegistry();

struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string summary, std::function<int(int, char**)> run) {
    CommandRegistry().push_back({std::move(name), std::move(summary), std::move(run)});
  }
};

#define OPTOWER_REGISTER_COMMAND(ident, name, summary, fn) \
  static ::optower::cli::CommandRegistrar optower_command_##ident(name, summary, fn)

// Prints `optower: <message>` (one line) to stderr and returns the exit code for `status`:
// InvalidArgument / NotFound / FailedPrecondition / OutOfRange on input -> 2, anything else -> 1.
int ReportError(const absl::Status& status);

// Prints a one-line usage error and returns kExitUsage.
int UsageError(const std::string& message);

class FlagParser;
// The start of every subcommand: parses argv with `parser`. Returns the exit code when the command
// must stop here — --help printed to stdout (0), or a one-line usage error: a bad flag, or more than
// `max_positional` positional arguments (2) — and nullopt to go on.
std::optional<int> ParseCommandLine(FlagParser& parser, int argc, char** argv,
                                    size_t max_positional = 0);
// For commands that check their positional arguments themselves.
inline constexpr size_t kAnyPositional = static_cast<size_t>(-1);

}  // namespace optower::cli

#endif  // OPTOWER_CLI_COMMAND_H_
