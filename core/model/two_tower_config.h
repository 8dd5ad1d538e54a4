// The text form of a TwoTowerConfig: a model folder's config.txt (`key=value` lines, '#' comments,
// first key `format=optower-two-tower-v1`), and the checks every config must pass. Torch-free, so
// that readers of config.txt (and the fuzz target fuzz/model_config_fuzz.cc) need no LibTorch.
// Thread safety: reentrant.
#ifndef OPTOWER_CORE_MODEL_TWO_TOWER_CONFIG_H_
#define OPTOWER_CORE_MODEL_TWO_TOWER_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/model/two_tower_model.h"

namespace optower {

// InvalidArgument naming the field and value ("embedding_dim=0: must be >= 1").
absl::Status ValidateTwoTowerConfig(const TwoTowerConfig& config);

// What TwoTowerModel::Save writes as config.txt; TwoTowerConfigFromText reads it back exactly.
std::string TwoTowerConfigToText(const TwoTowerConfig& config);

// Parses config.txt; `path` names the file in messages ("<path>:<line>: key=value: what").
// InvalidArgument on unknown keys, malformed values, a missing format line, or a config that fails
// ValidateTwoTowerConfig.
absl::StatusOr<TwoTowerConfig> TwoTowerConfigFromText(const std::string& text,
                                                      const std::string& path);

}  // namespace optower

#endif  // OPTOWER_CORE_MODEL_TWO_TOWER_CONFIG_H_
