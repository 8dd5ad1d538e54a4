// The reward model q̂ of the policy learner, chosen by held-out loss among candidate fits
// (docs/LEARNING.md "Choosing q̂"): tower shapes, feature crosses and L2 strengths.
#ifndef OPTOWER_CORE_LEARNING_REWARD_MODEL_CHOICE_H_
#define OPTOWER_CORE_LEARNING_REWARD_MODEL_CHOICE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"
#include "core/base/train_progress.h"
#include "core/model/reward_model.h"
#include "core/model/two_tower_model.h"

namespace optower {

// The candidates FitQhat compares. Empty lists mean "the value in RewardModelOptions only".
struct QhatSearch {
  // When the configured towers have hidden layers: also linear towers.
  bool linear_alternative = false;
  // TwoTowerConfig::context_degree values to try (each 1..3).
  std::vector<int64_t> context_degrees;
  // L2 strengths as c / n, n = the rows of the log q̂ is given (its early-stopping rows included):
  // the Gaussian prior of a MAP fit, whose weight against the data's log-likelihood (a mean over
  // the rows) shrinks as 1/n.
  std::vector<double> l2_per_row;
  // A challenger replaces the incumbent fit when its mean held-out loss is lower by more than
  // selection_z standard errors of the paired per-row differences (0 = any improvement).
  double selection_z = 1.0;
  // Validation of the fields ("qhat_search.context_degrees: 4: must be 1, 2 or 3").
  absl::Status Validate() const;
};

// Fits q̂ with the first value of each list, then challenges the incumbent one change at a time:
// linear towers (linear_alternative), then each further L2 strength, then each further context
// degree, in the order given (degrees stop at the first one not kept). All fits hold out the same
// rows (FitRewardModel's held_out_losses), so the per-row losses pair up; a challenger is kept when
// it beats the incumbent by selection_z paired standard errors (ComparePaired,
// policy_selection.h).
absl::StatusOr<TwoTowerModel> FitQhat(const BanditLog& train_log, const ItemCatalog& items,
                                      const RewardModelOptions& rm, const QhatSearch& search,
                                      const ProgressCallback& progress);

}  // namespace optower

#endif  // OPTOWER_CORE_LEARNING_REWARD_MODEL_CHOICE_H_
