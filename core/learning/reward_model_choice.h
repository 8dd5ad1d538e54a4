// The reward model q̂ of the policy learner, with a choice of tower shape (docs/LEARNING.md "Model
// selection"): the configured towers and, optionally, linear towers, kept by held-out loss.
#ifndef OPTOWER_CORE_LEARNING_REWARD_MODEL_CHOICE_H_
#define OPTOWER_CORE_LEARNING_REWARD_MODEL_CHOICE_H_

#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"
#include "core/base/train_progress.h"
#include "core/model/reward_model.h"
#include "core/model/two_tower_model.h"

namespace optower {

// q̂ with the configured towers and — with `linear_alternative` when they have hidden layers — with
// linear towers too; the fit with the lower held-out loss is kept. Both fits hold out the same rows
// (FitRewardModel's inner split depends on the seed only), so the losses compare like for like.
absl::StatusOr<TwoTowerModel> FitQhat(const BanditLog& train_log, const ItemCatalog& items,
                                      const RewardModelOptions& rm, bool linear_alternative,
                                      const ProgressCallback& progress);

}  // namespace optower

#endif  // OPTOWER_CORE_LEARNING_REWARD_MODEL_CHOICE_H_
