// PolicyLearner: trains the two-tower softmax policy pi_theta(a|x) = softmax(<u(x), v(a)> / tau)
// off-policy from logged bandit feedback (DESIGN §3).
//
//   1. split the log into train / validation (seeded);
//   2. fit q̂ (a two-tower reward model) on the train split;
//   3. objective dr : warm-start the policy towers from q̂'s towers (or from `init`), then follow the
//                    DR policy gradient (surrogate in policy_gradient.h) with Adam on minibatches;
//      objective ipw: same loop with the IPS gradient, from a random init (or `init`) — q̂ is used
//                    only to select the epoch;
//      objective dm : the policy is softmax(q̂ logits / tau) — no policy-gradient step;
//   4. after every epoch estimate the policy's value on the validation split by DR (with q̂, clipped
//      weights) and keep the candidate — the initial policy, the DM policy (dr), an epoch — whose
//      paired gain over the initial policy has the largest lower bound (policy_selection.h); stop
//      after `patience` epochs without a new largest estimate.
// Exact path: the second DR term sum_a pi(a|x) q̂(x,a) and the normaliser of log pi are computed over
// the whole catalog ([batch, N]). Sampled path (options.sampled; large catalogs): both over a
// per-context candidate set — the top rows of a proposal index over the policy's item embeddings,
// rebuilt every epoch, plus a uniform tail (core/learning/sampled_gradient.h) — for the training
// steps and the validation estimates alike, so a step's cost does not grow with N.
// Slates (a log with BanditLog's slate fields): the item at position j is one draw of a
// Plackett-Luce policy from the catalog minus the slate's earlier items, logged with the
// conditional propensity of that draw. Every term above is then taken over those remaining
// items (ExcludeEarlierItems), so each sample's gradient is the DR gradient of the value of the
// policy's choice at that step given the logged earlier items (docs/LEARNING.md "Slates": the
// estimator, its additive-reward assumption and its bias).
//
// Thread safety: TrainPolicy is reentrant but uses the process-wide torch intra-op pool
// (options.threads, 0 = all cores); run one training at a time for predictable speed.
#ifndef OPTOWER_CORE_LEARNING_POLICY_LEARNER_H_
#define OPTOWER_CORE_LEARNING_POLICY_LEARNER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/learning_report.h"
#include "core/base/bandit_data.h"
#include "core/learning/objective.h"
#include "core/learning/reward_model_choice.h"
#include "core/learning/sampled_gradient_options.h"
#include "core/model/reward_model.h"
#include "core/base/train_progress.h"
#include "core/model/two_tower_model.h"

namespace optower {

struct PolicyLearnerOptions {
  Objective objective = Objective::kDr;
  // Policy towers (ignored when warm-starting: the towers of q̂ or `init` are copied).
  std::vector<int64_t> hidden = {64};
  int64_t embedding_dim = 32;
  std::string activation = "relu";
  bool item_id_embedding = false;
  // Categorical schemas (docs/FEATURES.md). Columns of the log / catalog not listed get fields
  // derived from the data (DeriveCategoricalFields); with `init`, its schema is used. q̂ and the
  // policy always share one schema.
  std::vector<CategoricalField> context_fields;
  std::vector<CategoricalField> item_fields;
  double temperature = 0.1;  // tau of the learned policy
  // dr: the gradient steps compute pi at max(temperature, min_train_temperature); validation and the
  // result use `temperature`. Why: a policy warm-started from q̂ at a small tau is nearly
  // deterministic, so pi(a_i|x_i) ~ 0 for most logged actions and the DR correction's gradient
  // w_i (r_i − q̂_i) ∇log pi(a_i|x_i) nearly vanishes; at a softer tau the logged actions the
  // policy nearly chose still carry gradient. Measured in docs/LEARNING.md "Model selection".
  // 0 = steps at `temperature`.
  double min_train_temperature = 0.5;
  // Optimisation.
  int epochs = 20;
  int batch_size = 256;
  double learning_rate = 1e-3;
  double l2 = 0.0;            // Adam weight decay
  // Estimator variants (policy_gradient.h).
  // Importance-weight clip of the gradient (n = the train split) and of the validation terms
  // (n = the validation split): < 0 = the rule C = max(10, √n) (default; policy_selection.h says
  // why), 0 = none, > 0 = that fixed C.
  double weight_clip = -1.0;
  bool self_normalize = false;
  int top_k = 0;              // > 1: Chen et al. top-K correction with this K
  // Exact sums over the catalog, or the sampled estimator for large catalogs (default: sampled
  // from SampledGradientOptions::auto_min_items items on).
  SampledGradientOptions sampled;
  // Model selection (policy_selection.h): candidates are the initial policy (the reference), the
  // DM policy (dr, when it is not the initial one) and every epoch; the one with the largest lower
  // bound gain − selection_z·se of its paired validation-DR gain over the reference is kept, the
  // reference unless some bound is > 0. 0 = the largest validation DR.
  double selection_z = 1.0;
  double validation_fraction = 0.2;
  int patience = 5;
  // Initialisation: warm_start copies q̂'s towers into the policy (dr default; ipw: false).
  std::optional<bool> warm_start;  // unset = objective's default
  const TwoTowerModel* init = nullptr;  // start from this model instead (e.g. the served one)
  RewardModelOptions reward_model;
  // Candidate q̂ fits (linear towers beside hidden ones, feature crosses, L2 strengths), the one
  // with the lowest held-out loss kept; the policy then starts from its towers. Empty by default
  // (the server's trainer fits the configured q̂ only); the CLI searches (cli/learner_flags.h).
  QhatSearch qhat_search;
  uint64_t seed = 0;
  int threads = 0;  // 0 = all cores

  // InvalidArgument naming the first field out of range and its value ("epochs=-1: must be >= 0";
  // q̂'s as "reward_model.epochs"). Implemented in core/learning/policy_learner_options.cc.
  absl::Status Validate() const;
};

struct PolicyTrainResult {
  TwoTowerModel policy;
  TwoTowerModel reward_model;  // q̂
  PolicyTrainMetrics metrics;
};

absl::Status ValidateLogForLearning(const BanditLog& log, const ItemCatalog& items);

absl::StatusOr<PolicyTrainResult> TrainPolicy(const BanditLog& log, const ItemCatalog& items,
                                              const PolicyLearnerOptions& options,
                                              const ProgressCallback& progress = nullptr);

}  // namespace optower

#endif  // OPTOWER_CORE_LEARNING_POLICY_LEARNER_H_
