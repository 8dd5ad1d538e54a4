#include "core/training/snapshot_options.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace optower {

absl::Status SnapshotOptions::Validate() const {
  const SnapshotOptions& s = *this;
  if (!(s.reward_min <= s.reward_max) || !(std::abs(s.reward_min) <= kMaxRewardMagnitude) ||
      !(std::abs(s.reward_max) <= kMaxRewardMagnitude))
    return absl::InvalidArgumentError(absl::StrFormat(
        "reward_min=%g, reward_max=%g: want reward_min <= reward_max, both within +-%g",
        s.reward_min, s.reward_max, kMaxRewardMagnitude));
  if (!std::isfinite(s.default_reward))
    return absl::InvalidArgumentError(
        absl::StrFormat("default_reward=%g: must be finite", s.default_reward));
  if (!(s.default_reward >= s.reward_min && s.default_reward <= s.reward_max))
    return absl::InvalidArgumentError(
        absl::StrCat("default_reward=", s.default_reward,
                     ": must be in [reward_min, reward_max] = [", s.reward_min, ", ", s.reward_max,
                     "]"));
  if (s.attribution_window < absl::ZeroDuration())
    return absl::InvalidArgumentError(
        absl::StrCat("attribution_window=", absl::FormatDuration(s.attribution_window),
                     ": must be >= 0"));
  return absl::OkStatus();
}

}  // namespace optower
