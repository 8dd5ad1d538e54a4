// What a training snapshot keeps of the log (core/training/training_snapshot.h): the attribution
// window, the default reward and the declared reward range. Its own file so that the options'
// readers (TrainerOptions::Validate, the fuzz targets) need not link the snapshot code.
#ifndef OPTOWER_CORE_TRAINING_SNAPSHOT_OPTIONS_H_
#define OPTOWER_CORE_TRAINING_SNAPSHOT_OPTIONS_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/base/bandit_data.h"

namespace optower {

struct SnapshotOptions {
  // Served items without feedback: younger than this (at `now`) are left out of the job (their
  // feedback may still come); older get `default_reward`. >= 0.
  absl::Duration attribution_window = absl::Hours(1);
  double default_reward = 0.0;  // finite
  // The declared reward range (ServerConfig reward_min/reward_max). A logged reward that is not
  // finite as a float, or outside [reward_min, reward_max], leaves its row out (bad_reward) instead
  // of failing the job: the log is append-only, so a bad row would otherwise fail every later job.
  double reward_min = -kMaxRewardMagnitude;
  double reward_max = kMaxRewardMagnitude;

  // InvalidArgument naming the first bad field and its value: reward_min > reward_max or beyond
  // +-kMaxRewardMagnitude, default_reward not finite or outside [reward_min, reward_max], a negative
  // attribution_window.
  absl::Status Validate() const;
};

}  // namespace optower

#endif  // OPTOWER_CORE_TRAINING_SNAPSHOT_OPTIONS_H_
