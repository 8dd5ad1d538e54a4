// How a K-slate explores at positions >= 1: the config's slate_exploration (the two distributions
// are in core/serving/slate_sampler.h; docs/SERVING.md "Exploration across the slate"). Its own
// file so that the config readers (server/server_config.cc, the fuzz targets) need not link the
// sampler.
#ifndef OPTOWER_CORE_SERVING_SLATE_EXPLORATION_H_
#define OPTOWER_CORE_SERVING_SLATE_EXPLORATION_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace optower {

enum class SlateExploration { kPerPosition, kPerSlate };

// "per_position" / "per_slate" (the config's spelling); InvalidArgument naming
// slate_exploration='value' otherwise.
absl::StatusOr<SlateExploration> ParseSlateExploration(absl::string_view name);
const char* SlateExplorationName(SlateExploration exploration);

}  // namespace optower

#endif  // OPTOWER_CORE_SERVING_SLATE_EXPLORATION_H_
