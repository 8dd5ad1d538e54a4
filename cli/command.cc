#include "cli/command.h"

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

int UsageError(const std::string& message) {
  std::cerr << "optower: " << message << std::endl;
  return kExitUsage;
}

}  // namespace optower::cli
