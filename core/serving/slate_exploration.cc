#include "core/serving/slate_exploration.h"

#include "absl/strings/str_cat.h"

namespace optower {

absl::StatusOr<SlateExploration> ParseSlateExploration(absl::string_view name) {
  if (name == "per_position") return SlateExploration::kPerPosition;
  if (name == "per_slate") return SlateExploration::kPerSlate;
  return absl::InvalidArgumentError(absl::StrCat("slate_exploration='", name,
                                                 "': must be one of per_position, per_slate"));
}

const char* SlateExplorationName(SlateExploration exploration) {
  return exploration == SlateExploration::kPerSlate ? "per_slate" : "per_position";
}

}  // namespace optower
