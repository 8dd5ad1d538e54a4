// The folded logit models of the OBP synthetic environment (core/synthetic/synthetic_env.h): how they are
// drawn (BuildLogitModel) and evaluated (features, logits, batch statistics). Internal to
// SyntheticBandit; exposed in a header of its own so that synthetic_env.cc holds the environment
// and this file the model algebra.
//
// Implementation notes (the model itself is defined in shared/OBP_SYNTHETIC.md).
//
// Every logit model here — OBP's reward logits f and its linear/polynomial behaviour logits g — has
// the form  logit(x, a) = poly(x)ᵀ C poly(a) + cᵀ poly(a) [+ c_xᵀ poly(x)].  Since the action side
// is fixed, we fold it once at Create time into per-action parameters
//     w_a = C poly(a) [+ c_x] ∈ R^{D_x},   b_a = cᵀ poly(a),
// so that logit(x, a) = poly(x)ᵀ w_a + b_a costs O(D_x) per pair and no [N, D_a] feature matrix is
// ever built. That matters for one-hot actions: poly_3(e_a) has C(N+3, 3) dims (1.7e8 at N = 1000)
// but only 1 + degree of them are non-zero (the bias and e_a, e_a², e_a³ at the "diagonal"
// monomials; every cross term is 0). Coefficients that multiply a zero can never influence the
// model, so we draw only the ones that can — the same distribution as OBP, which draws all of them.
//
// Batch statistics (OBP's shift f − mean(f)/std(f) and the behaviour standardisation) are the mean
// and population std over all n·N entries. They follow exactly from the mean μ and covariance Σ of
// poly(x) over the batch (law of total variance over actions):
//     mean = 1/N Σ_a (μᵀw_a + b_a),   var = 1/N Σ_a [ w_aᵀ Σ w_a + (μᵀw_a + b_a − mean)² ],
// which lets FixStatistics use a large reference batch without materialising its [n, N] logits.
#ifndef OPTOWER_CORE_SYNTHETIC_SYNTHETIC_LOGIT_MODEL_H_
#define OPTOWER_CORE_SYNTHETIC_SYNTHETIC_LOGIT_MODEL_H_

#include <array>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"

namespace optower::synthetic_internal {

inline constexpr int kMaxDegree = 4;

// A monomial of degree n: the product of x[idx[0]] ... x[idx[n-1]] (n = 0 is the bias).
struct Monomial {
  int n = 0;
  std::array<int32_t, kMaxDegree> idx{};
};

inline double Uniform01(std::mt19937_64& rng) {
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

// Mean and population covariance of feature rows, accumulated chunk by chunk (Chan et al.'s
// pairwise update) so that a large reference batch need not be held in memory.
class FeatureMoments {
 public:
  explicit FeatureMoments(int64_t dim)
      : dim_(dim), mean_(static_cast<size_t>(dim), 0.0), m2_(static_cast<size_t>(dim * dim), 0.0) {}

  // feats: [n, dim] row-major.
  void Add(const double* feats, int64_t n);

  int64_t count() const { return count_; }
  const std::vector<double>& mean() const { return mean_; }
  // Population covariance (divided by count), upper triangle filled.
  double Covariance(int64_t k, int64_t l) const {
    if (k > l) std::swap(k, l);
    return m2_[k * dim_ + l] / static_cast<double>(count_);
  }

 private:
  int64_t dim_;
  int64_t count_ = 0;
  std::vector<double> mean_;
  std::vector<double> m2_;  // sums of centred cross products; upper triangle
};

struct LogitStats {
  double mean = 0.0;
  double std = 1.0;
};

// Element-wise passes over [rows, cols] row-major matrices, in place (ATen's vectorised exp).
void SigmoidInPlace(double* data, int64_t rows, int64_t cols);
// Each row <- softmax(beta * row).
void SoftmaxRowsInPlace(double beta, double* data, int64_t rows, int64_t cols);

// One folded logit model: logit(x, a) = features(x)ᵀ w_a + b_a (see the note at the top).
struct LogitModel {
  int degree = 1;
  int64_t n_actions = 0;
  int64_t dim_context = 0;
  std::vector<Monomial> context_terms;  // the kept monomials of x: D_k of them
  std::vector<double> weights;          // [D_k, N] row-major: column a is w_a
  std::vector<double> bias;             // [N]

  int64_t dk() const { return static_cast<int64_t>(context_terms.size()); }

  // contexts: [n, dim_context] floats -> out: [n, D_k].
  void Features(const float* contexts, int64_t n, std::vector<double>* out) const;
  // Affine-transformed logits of n contexts: out[i, a] = scale * (feats_iᵀ w_a + b_a - offset).
  // feats: [n, D_k], out: [n, N]. One GEMM: at degree 3 (D_k = 56) it is most of a batch's work.
  void TransformedLogits(const double* feats, int64_t n, double scale, double offset,
                         double* out) const;
  // Mean and population std of the logits over (contexts whose features have these moments) ×
  // actions.
  LogitStats Stats(const FeatureMoments& moments) const;
};

// How the action side of a logit model is drawn: OBP's _base_reward_function (coefficients in
// (-1, 1), a context-only term, optional sparsity) or _base_behavior_policy_function (coefficients
// in (0, 1), no context-only term).
struct LogitModelSpec {
  int degree = 1;
  double keep_ratio = 1.0;
  double coef_low = -1.0;
  double coef_high = 1.0;
  bool context_term = true;
};

// Draws a model. `action_context` is [N, E]; `one_hot` says it is the N×N identity (then it is not
// read). InvalidArgument when the polynomial expansion is too large to generate.
absl::StatusOr<LogitModel> BuildLogitModel(const LogitModelSpec& spec, int64_t dim_context,
                                           const DenseMatrix& action_context, bool one_hot,
                                           std::mt19937_64& rng);

}  // namespace optower::synthetic_internal

#endif  // OPTOWER_CORE_SYNTHETIC_SYNTHETIC_LOGIT_MODEL_H_
