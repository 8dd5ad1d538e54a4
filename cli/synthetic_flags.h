// Flags that describe an OBP synthetic setting, shared by `optower synth` and `optower experiment`.
#ifndef OPTOWER_CLI_SYNTHETIC_FLAGS_H_
#define OPTOWER_CLI_SYNTHETIC_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "cli/flag_parser.h"
#include "core/synthetic/synthetic_env.h"

namespace optower::cli {

struct SyntheticFlags {
  int64_t n_actions = 0;
  int64_t dim_context = 0;
  int64_t dim_action_context = 0;
  bool one_hot = false;
  // Defaults: SyntheticOptions'.
  double beta = SyntheticOptions{}.beta;
  std::string behavior = BehaviorTypeName(SyntheticOptions{}.behavior);
  std::string reward = RewardTypeName(SyntheticOptions{}.reward_type);

  void Register(FlagParser& parser);
  // Validates the flags (after FlagParser::Parse) into generator options with the given seed.
  absl::StatusOr<SyntheticOptions> ToOptions(const FlagParser& parser, int64_t seed) const;
  // A short name like "A100_onehot_linear_b-3" (the naming of shared/obp/*.csv).
  std::string SettingName() const;
};

}  // namespace optower::cli

#endif  // OPTOWER_CLI_SYNTHETIC_FLAGS_H_
