#include "cli/command.h"

#include "cli/flag_parser.h"

#include <iostream>
#include <string>

namespace optower::cli {

std::vector<Command>& CommandRegistry() {
  static auto* registry = new std::vector<Command>();
  return *registry;
}

int ReportError(const absl::Status& status) {
  std::string msg(status.message());
  // Keep it to one line whatever the message holds.
  for (char& c : msg)
    if (c == '\n') c = ' ';
  std::cerr << "optower: " << msg << std::endl;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
      return kExitUsage;
    default:
      return kExitFailure;
  }
}

std::optional<int> ParseCommandLine(FlagParser& parser, int argc, char** argv,
                                    size_t max_positional) {
  if (absl::Status s = parser.Parse(argc, argv); !s.ok()) return UsageError(std::string(s.message()));
  if (parser.help_requested()) {
    std::cout << parser.Help();
    return kExitOk;
  }
  if (parser.positional().size() > max_positional)
    return UsageError("unexpected argument '" + parser.positional()[max_positional] + "'");
  return std::nullopt;
}

int UsageError(const std::string& message) {
  std::cerr << "optower: " << message << std::endl;
  return kExitUsage;
}

}  // namespace optower::cli
