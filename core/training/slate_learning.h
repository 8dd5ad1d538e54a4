// How the trainer learns from K > 1 slates (docs/LEARNING.md "Slates";
// TrainerOptions::slate_learning).
//   kPerDraw (default): each served item is one sample of its draw: weighted by the logged
//     conditional propensity p_j(a_j | a_<j), with the slate's earlier items masked out of the
//     draw's softmax (the per-draw Plackett–Luce DR/IPS gradient, BanditLog's slate fields).
//   kTopKCorrection: the top-K off-policy correction of Chen et al. (WSDM 2019): each served item
//     is a sample of the single-draw policy, weighted by pi_0(a|x) (the behaviour before issue 16),
//     and the gradient's first term is multiplied by lambda_K = K (1 - pi(a|x))^(K-1)
//     (PolicyLearnerOptions::top_k), K = the largest slate in the job's training data.
// Pure functions; no state.
#ifndef OPTOWER_CORE_TRAINING_SLATE_LEARNING_H_
#define OPTOWER_CORE_TRAINING_SLATE_LEARNING_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"

namespace optower {

enum class SlateLearning { kPerDraw, kTopKCorrection };

std::string SlateLearningName(SlateLearning learning);                  // per_draw | top_k
// InvalidArgument naming the value unless per_draw or top_k.
absl::StatusOr<SlateLearning> ParseSlateLearning(const std::string& name);

// For kTopKCorrection: turns `log` into the single-draw log the correction trains on (pscores :=
// first_draw_pscores; positions and prefixes cleared) and returns K = the largest position + 1
// (1 for a log without slates, which is left as it is). InvalidArgument when the log has slates
// but no first_draw_pscores of its size.
absl::StatusOr<int> ToTopKCorrectionLog(BanditLog* log);

}  // namespace optower

#endif  // OPTOWER_CORE_TRAINING_SLATE_LEARNING_H_
