#include "core/learning/reward_model_choice.h"

#include <algorithm>
#include <limits>

#include "core/base/status_macros.h"

namespace optower {

// q̂ with the configured towers and — with `linear_alternative` when they have hidden layers — with
// linear towers too; the fit with the lower held-out loss is kept. Both fits hold out the same rows
// (FitRewardModel's inner split depends on the seed only), so the losses compare like for like.
absl::StatusOr<TwoTowerModel> FitQhat(const BanditLog& train_log, const ItemCatalog& items,
                                      const RewardModelOptions& rm, bool linear_alternative,
                                      const ProgressCallback& progress) {
  auto fit = [&](const RewardModelOptions& o, double* best_loss) {
    ProgressCallback track = [&progress, best_loss](const TrainProgress& p) {
      if (p.phase == "reward_model") *best_loss = std::min(*best_loss, p.validation);
      if (progress) progress(p);
    };
    return FitRewardModel(train_log, items, o, track);
  };
  double loss = std::numeric_limits<double>::infinity();
  ASSIGN_OR_RETURN(TwoTowerModel qhat, fit(rm, &loss));
  if (!linear_alternative || rm.hidden.empty()) return qhat;
  RewardModelOptions linear = rm;
  linear.hidden.clear();
  double linear_loss = std::numeric_limits<double>::infinity();
  ASSIGN_OR_RETURN(TwoTowerModel alternative, fit(linear, &linear_loss));
  if (linear_loss < loss) return alternative;
  return qhat;
}

}  // namespace optower
