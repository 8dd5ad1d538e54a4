// What the learners and the estimators report: plain values (no LibTorch, no logic), shared by the
// learning library that computes them (core/learning: ope.h, policy_learner.h), the model store that
// records them in each version's manifest (core/storage/model_store.h), and the trainer, server and
// CLI that show them. They live in base so that storage does not depend on learning.
#ifndef OPTOWER_CORE_BASE_LEARNING_REPORT_H_
#define OPTOWER_CORE_BASE_LEARNING_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

namespace optower {

// An off-policy estimate of a policy's value with its interval (core/learning/ope.h).
struct OpeEstimate {
  std::string estimator;     // "ips" | "snips" | "dr"
  double value = 0.0;        // point estimate of V(pi)
  double std_error = 0.0;    // asymptotic standard error of `value` (+inf when n = 1)
  double ci_low = 0.0;       // value - z * std_error, z the normal quantile for options.confidence
  double ci_high = 0.0;
  int64_t n = 0;             // samples used
  double max_weight = 0.0;   // max_i w_i after clipping
  double effective_sample_size = 0.0;  // (sum w)^2 / sum w^2 (after clipping); 0 if all w are 0
};

// One epoch of TrainPolicy (core/learning/policy_learner.h).
struct EpochRecord {
  int epoch = 0;
  double train_loss = 0.0;
  double validation_dr = 0.0;  // DR estimate of the policy's value on the validation split
};

struct PolicyTrainMetrics {
  std::string objective;
  int64_t n_train = 0;
  int64_t n_validation = 0;
  int64_t n_items = 0;
  int epochs_run = 0;
  int best_epoch = 0;  // the kept candidate: 0 = the initial policy, k = epoch k, -1 = the DM policy
  double reward_model_seconds = 0.0;
  double policy_seconds = 0.0;
  double total_seconds = 0.0;
  double validation_dr_initial = 0.0;  // DR value estimate of the initial policy
  double validation_dr_best = 0.0;
  double logging_policy_value = 0.0;   // mean observed reward on the validation split
  int threads = 0;
  // "exact" (sums over the whole catalog) or "sampled" (core/learning/sampled_gradient.h).
  std::string gradient = "exact";
  double proposal_seconds = 0.0;  // sampled: embedding the catalog + building the proposal index
  int64_t train_steps = 0;        // minibatch steps taken
  double step_seconds = 0.0;      // wall time inside those steps (forward, backward, Adam)
  std::vector<EpochRecord> history;
};

}  // namespace optower

#endif  // OPTOWER_CORE_BASE_LEARNING_REPORT_H_
