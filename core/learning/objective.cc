#include "core/learning/objective.h"

#include "absl/strings/str_format.h"

namespace optower {

absl::StatusOr<Objective> ParseObjective(const std::string& name) {
  if (name == "dr") return Objective::kDr;
  if (name == "ipw" || name == "ips") return Objective::kIpw;
  if (name == "dm") return Objective::kDm;
  return absl::InvalidArgumentError(
      absl::StrFormat("objective=%s: must be dr, ipw or dm", name));
}

std::string ObjectiveName(Objective objective) {
  switch (objective) {
    case Objective::kDr:
      return "dr";
    case Objective::kIpw:
      return "ipw";
    case Objective::kDm:
      return "dm";
  }
  return "?";
}

}  // namespace optower
