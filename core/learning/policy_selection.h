// Model selection of the policy learner (docs/LEARNING.md "Model selection") and the weight-clipping
// rule of its gradient: plain statistics over per-sample validation terms, no LibTorch.
//
// Candidates. The learner compares, on the validation split, a *reference* policy — the initial
// one: the DM policy softmax(q̂/τ) when the towers start from q̂, the served policy when they start
// from it — with the other candidates: the DM policy (when it is not the reference) and the policy
// after every epoch. Each candidate c has per-sample DR terms on the same validation rows,
//   t_i(c) = sum_a c(a|x_i) q̂(x_i,a) + min(w_i, C) (r_i − q̂(x_i,a_i)),  w_i = c(a_i|x_i)/p_i,
// and the comparison is paired: d_i = t_i(c) − t_i(reference), gain = mean(d), se = sd(d)/√n.
// Rule: keep the candidate with the largest lower bound gain − z·se, and the reference unless some
// bound is > 0. Pairing removes the shared noise (same rows, same q̂); the bound removes the winner's
// curse of picking the largest of several noisy means (z = 0: the old largest-mean rule).
//
// Weight clipping rule (gradient and validation): C = max(kMinWeightClip, √n) for an average over n
// samples. Why: with |r − q̂| ≤ 1 a clipped term's second moment is ≤ E[min(w, C)²] ≤ C·E[w] = C
// (E[w] = 1 under the logger), so the variance of the mean is ≤ C/n = 1/√n → 0, while the bias,
// E[(w − C)⁺ (r − q̂)], vanishes as C → ∞ (w has a finite mean). So the rule is consistent, tightens
// with data, and clips hardest where the logs are few: n = 1k → 32, 16k → 126, 10^6 → 1000.
#ifndef OPTOWER_CORE_LEARNING_POLICY_SELECTION_H_
#define OPTOWER_CORE_LEARNING_POLICY_SELECTION_H_

#include <cstdint>
#include <vector>

namespace optower {

inline constexpr double kMinWeightClip = 10.0;

// The clipping threshold of the rule above for an average over n samples.
double AutoWeightClip(int64_t n);

// The threshold a learner uses: `configured` < 0 = the rule for n samples, 0 = no clipping (returns
// 0), > 0 = that fixed value.
double ResolveWeightClip(double configured, int64_t n);

// Paired comparison of a candidate's per-sample terms with the reference's (same rows, same order).
struct PairedGain {
  double gain = 0.0;       // mean_i (candidate_i − reference_i)
  double std_error = 0.0;  // sd of the differences / √n (0 when n < 2)
  double lower = 0.0;      // gain − z · std_error
};
PairedGain ComparePaired(const std::vector<double>& candidate, const std::vector<double>& reference,
                         double z);

// Running selection over candidates: Offer each one's terms with its id (the learner uses the
// epoch number, kDmCandidate for the DM policy); the reference (id 0) is kept until a candidate's
// lower bound is > 0 and above every earlier one's.
inline constexpr int kDmCandidate = -1;
class CandidateSelection {
 public:
  CandidateSelection(std::vector<double> reference_terms, double z);
  // True when `id` becomes the selected candidate.
  bool Offer(int id, const std::vector<double>& terms);
  int selected() const { return selected_; }
  double selected_lower() const { return best_lower_; }
  double reference_mean() const { return reference_mean_; }
  // Mean term of the selected candidate (its validation DR estimate).
  double selected_mean() const { return selected_mean_; }

 private:
  std::vector<double> reference_;
  double z_;
  double reference_mean_ = 0.0;
  int selected_ = 0;
  double best_lower_ = 0.0;
  double selected_mean_ = 0.0;
};

double MeanOfTerms(const std::vector<double>& v);

}  // namespace optower

#endif  // OPTOWER_CORE_LEARNING_POLICY_SELECTION_H_
