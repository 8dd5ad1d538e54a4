// Bridges a trained model and the OPE estimators: the per-sample quantities of core/learning/ope.h for a
// policy (and optionally q̂) on a logged dataset.
#ifndef OPTOWER_CORE_LEARNING_POLICY_EVALUATION_H_
#define OPTOWER_CORE_LEARNING_POLICY_EVALUATION_H_

#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"
#include "core/learning/ope.h"
#include "core/model/two_tower_model.h"

namespace optower {

// target_prob[i] = pi(a_i|x_i), pscore, reward; with `qhat` also qhat_logged[i] = q̂(x_i,a_i) and
// qhat_under_target[i] = sum_a pi(a|x_i) q̂(x_i,a). Works in chunks of rows so memory stays
// O(chunk * N) whatever the log size.
absl::StatusOr<OpeSamples> MakeOpeSamples(const TwoTowerModel& policy, const TwoTowerModel* qhat,
                                          const BanditLog& log, const ItemCatalog& items);

}  // namespace optower

#endif  // OPTOWER_CORE_LEARNING_POLICY_EVALUATION_H_
