// OBP-compatible synthetic bandit environment (Open Bandit Pipeline's SyntheticBandit Dataset), as
// defined in shared/OBP_SYNTHETIC.md. Used to evaluate learning with known ground truth and to drive
// the closed-loop simulator.
//
// Two modes:
//  - batch mode (ObtainBatch): reproduces OBP's quirks — the reward logits are shifted by
//    mean(f)/std(f) of *this batch* and the linear/polynomial behaviour logits are standardised over
//    *this batch* — so q and pi_b of a context depend slightly on the batch it came with.
//  - streaming mode (after FixStatistics): those batch statistics are fixed once, from a reference
//    batch drawn from a separate stream derived from the same seed, so a context can be scored alone.
//
// Thread safety: const methods are safe to call concurrently; ObtainBatch/SampleContexts/
// SampleRewards/FixStatistics mutate the random stream and need external synchronisation.
// The [n, N] passes (one GEMM, sigmoid, softmax) run on ATen and so use its intra-op thread pool.
//
// Agreement with OBP is in distribution (numpy's random stream is not reproduced). Like OBP's,
// q is exactly 0 or 1 in double where the x3/x4 logits of the polynomial/sparse rewards pass ±37.
#ifndef OPTOWER_CORE_SYNTHETIC_SYNTHETIC_ENV_H_
#define OPTOWER_CORE_SYNTHETIC_SYNTHETIC_ENV_H_

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"

namespace optower {

enum class RewardType { kLogistic, kLogisticPolynomial, kLogisticSparse };
enum class BehaviorType {
  kExpected,    // pi_b = softmax(beta * q)                       (OBP: behavior_policy_function=None)
  kLinear,      // pi_b = softmax(beta * standardised g), degree 1 (OBP: linear_behavior_policy)
  kPolynomial,  // same with degree-3 polynomial features          (OBP: polynomial_behavior_policy)
};

absl::StatusOr<RewardType> ParseRewardType(const std::string& name);  // logistic|logistic-polynomial|logistic-sparse
absl::StatusOr<BehaviorType> ParseBehaviorType(const std::string& name);  // expected|linear|polynomial
std::string RewardTypeName(RewardType t);
std::string BehaviorTypeName(BehaviorType t);

struct SyntheticOptions {
  int64_t n_actions = 10;
  int64_t dim_context = 5;
  // 0 => one-hot action contexts (the N x N identity, OBP's default);
  // > 0 => action contexts drawn i.i.d. N(0, 1) with this many dims (OBP's "normal5" uses 5).
  int64_t dim_action_context = 0;
  // When non-empty ([n_actions, E]) it is used as the action context matrix as given and
  // dim_action_context is ignored.
  DenseMatrix action_context;
  RewardType reward_type = RewardType::kLogistic;
  BehaviorType behavior = BehaviorType::kExpected;
  double beta = 1.0;  // inverse temperature of the behaviour policy
  uint64_t seed = 0;
};

// n logged rounds with their ground truth.
struct SyntheticRounds {
  BanditLog log;                // actions are row indices 0..N-1 of action_context()
  DenseMatrix expected_reward;  // q(x_i, a)    [n, N]
  DenseMatrix behavior_policy;  // pi_b(a|x_i)  [n, N]
};

class SyntheticBandit {
 public:
  // Validates options (n_actions >= 2, dim_context >= 1, shapes) and draws the coefficients once.
  static absl::StatusOr<std::unique_ptr<SyntheticBandit>> Create(const SyntheticOptions& options);

  const SyntheticOptions& options() const { return options_; }
  int64_t n_actions() const { return options_.n_actions; }
  int64_t dim_context() const { return options_.dim_context; }
  const DenseMatrix& action_context() const { return action_context_; }  // [N, E]
  // The catalog as optower sees it: ids 0..N-1, features = action contexts (as float).
  ItemCatalog Items() const;

  // OBP batch mode: x ~ N(0, I), q and pi_b with this batch's statistics, a ~ pi_b,
  // r ~ Bernoulli(q(x, a)), pscore = pi_b(a|x). Advances the random stream. Always batch mode, also
  // after FixStatistics. q and pi_b are computed from the contexts as logged (rounded to float).
  // n <= 0 gives an empty batch.
  SyntheticRounds ObtainBatch(int64_t n);

  // Streaming mode: fixes the batch statistics from a reference batch of `reference_rounds`
  // contexts drawn from a stream derived from the seed alone (not the main stream), so the same seed
  // always gives the same statistics. Cost O(reference_rounds * D_x^2); no [n, N] matrix is built.
  void FixStatistics(int64_t reference_rounds = 100000);
  bool streaming() const { return stats_fixed_; }

  // Fresh contexts x ~ N(0, I): [n, dim_context]. Advances the random stream.
  std::vector<float> SampleContexts(int64_t n);
  // q(x, a) for every action, [n, N], using the fixed statistics. FailedPrecondition before
  // FixStatistics; InvalidArgument if contexts.size() is not a multiple of dim_context.
  absl::StatusOr<DenseMatrix> ExpectedReward(const std::vector<float>& contexts) const;
  // pi_b(a|x) [n, N] with the fixed statistics (same preconditions).
  absl::StatusOr<DenseMatrix> BehaviorPolicy(const std::vector<float>& contexts) const;
  // Bernoulli(q) draw. Advances the random stream.
  float SampleReward(double q);

 private:
  explicit SyntheticBandit(const SyntheticOptions& options);
  struct Impl;  // coefficients, kept dimensions, fixed statistics
  SyntheticOptions options_;
  DenseMatrix action_context_;
  std::shared_ptr<Impl> impl_;
  std::mt19937_64 rng_;
  bool stats_fixed_ = false;
};

}  // namespace optower

#endif  // OPTOWER_CORE_SYNTHETIC_SYNTHETIC_ENV_H_
