// OPE samples (core/learning/ope.h) for the uniform-random target policy over the catalog: the
// policy that shows every catalog item with the same probability. Needs no trained policy, so a
// log can estimate what a uniformly random recommender would have earned — e.g. the Open Bandit
// Dataset's BTS log estimating the value of its random policy, whose own log is the ground truth
// (docs/LEARNING.md "Open Bandit Dataset (real log)").
#ifndef OPTOWER_CORE_LEARNING_UNIFORM_EVALUATION_H_
#define OPTOWER_CORE_LEARNING_UNIFORM_EVALUATION_H_

#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"
#include "core/learning/ope.h"
#include "core/model/two_tower_model.h"

namespace optower {

// target_prob[i] = 1/N (N = catalog size; 1/(N - k) for a slate draw whose k earlier items are
// excluded) — for slates of K items drawn uniformly without replacement this is also the marginal
// probability of any item at any one position, which is what position-wise logged propensities
// (OBD's) are. pscore and reward as logged. With `qhat` (fitted on rewards, e.g. by
// FitRewardModel): qhat_logged[i] = q̂(x_i, a_i) and qhat_under_target[i] = mean over the items
// the draw could pick of q̂(x_i, a), for DR. InvalidArgument if the catalog or the log's contexts
// do not fit q̂'s schema, or an action is outside the catalog.
absl::StatusOr<OpeSamples> MakeUniformOpeSamples(const TwoTowerModel* qhat, const BanditLog& log,
                                                 const ItemCatalog& items);

}  // namespace optower

#endif  // OPTOWER_CORE_LEARNING_UNIFORM_EVALUATION_H_
