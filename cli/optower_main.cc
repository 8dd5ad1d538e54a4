// `optower`: the command-line tool. Offline subcommands (synth, train, policy, evaluate, experiment)
// call core/ directly; online ones (retrieve, feedback, items, stats, admin, simulate) go through the
// client library to a running optower-server.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>

#include "absl/strings/str_format.h"
#include "cli/command.h"

int main(int argc, char** argv) {
  using optower::cli::CommandRegistry;
  auto& commands = CommandRegistry();
  std::sort(commands.begin(), commands.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  const std::string first = argc > 1 ? argv[1] : "";
  if (argc < 2 || first == "--help" || first == "-h" || first == "help") {
    std::printf("usage: optower <command> [flags]   (optower <command> --help for its flags)\n\n");
    std::printf("commands:\n");
    for (const auto& c : commands) std::printf("  %-12s %s\n", c.name.c_str(), c.summary.c_str());
    return argc < 2 ? optower::cli::kExitUsage : optower::cli::kExitOk;
  }
  for (const auto& c : commands) {
    if (c.name == first) {
      std::string argv0 = "optower " + first;
      argv[1] = argv0.data();
      return c.run(argc - 1, argv + 1);
    }
  }
  return optower::cli::UsageError(
      absl::StrFormat("unknown command '%s' (optower --help lists them)", first));
}
