// Off-policy evaluation (DESIGN §4): estimates of a target policy's value V(pi) from logs collected
// by a logging policy pi_0 with known propensities, each with a confidence interval. Used by
// `optower evaluate`, the learner's reports and the trainer's promotion gate.
//
// Estimators, with importance weights w_i = pi(a_i|x_i) / p_i (p_i = pi_0(a_i|x_i)), optionally
// clipped to min(w_i, c):
//   IPS    V = 1/n sum_i w_i r_i
//   SNIPS  V = sum_i w_i r_i / sum_i w_i
//   DR     V = 1/n sum_i [ qhat_under_target_i + w_i (r_i - qhat_logged_i) ]
// IPS and DR are unbiased for V(pi) when pi_0 has full support and no clipping is applied (DR whatever
// q̂ is, because p_i is the true logging propensity); SNIPS is consistent with O(1/n) bias; clipping
// trades bias (always downward for non-negative rewards) for variance.
//
// Intervals are asymptotic (normal): value ± z_{(1+confidence)/2} · std_error, where std_error is
// the sample standard deviation (denominator n-1) of the per-sample terms divided by sqrt(n) — for
// SNIPS the delta-method influence terms w_i (r_i - V)/mean(w). Why not a bootstrap: the normal
// interval is deterministic (a promotion decision must be reproducible from the logged numbers),
// costs one pass, and at the log sizes the gate sees (thousands of samples and up) the CLT holds well
// unless weights are extreme — which max_weight and effective_sample_size are reported to reveal.
// Small n under-covers when the per-sample terms are skewed (large rare weights): in tests/ope_test.cc's
// simulator (max weight 6, biased q̂) DR's 95% interval covered 0.917 at n = 200 but 0.946 at n = 2000.
// With n = 1 no standard error can be estimated: std_error is +inf and the interval (-inf, +inf), so
// a gate comparing intervals never trusts a single sample.
//
// All functions are pure and thread-safe; inputs are only read.
#ifndef OPTOWER_CORE_LEARNING_OPE_H_
#define OPTOWER_CORE_LEARNING_OPE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/learning_report.h"

namespace optower {

// One entry per logged sample i; every non-empty vector has the same length n >= 1.
struct OpeSamples {
  std::vector<double> target_prob;        // pi(a_i | x_i) under the evaluated policy, in [0, 1]
  std::vector<double> pscore;             // p_i = pi_0(a_i | x_i) as logged, in (0, 1]
  std::vector<double> reward;             // r_i, any finite value
  std::vector<double> qhat_logged;        // q̂(x_i, a_i); DR only (may be empty for IPS/SNIPS)
  std::vector<double> qhat_under_target;  // sum_a pi(a|x_i) q̂(x_i, a); DR only
};

struct OpeOptions {
  double confidence = 0.95;  // two-sided level of the interval, in (0, 1)
  double weight_clip = 0.0;  // 0 = no clipping; otherwise w_i = min(w_i, weight_clip), > 0
};

// Each fails with InvalidArgument naming the field, index and value, e.g.
// "pscore[3]=0: must be in (0, 1]", on: n = 0; vectors of different lengths; pscore outside (0, 1];
// target_prob outside [0, 1]; any non-finite number; confidence outside (0, 1); weight_clip negative
// or non-finite. IPS and SNIPS ignore the qhat vectors; DR requires both with length n.
absl::StatusOr<OpeEstimate> EstimateIps(const OpeSamples& samples, const OpeOptions& options = {});
// Also fails (FailedPrecondition) when sum_i w_i = 0: the target policy gives probability 0 to every
// logged action, so the self-normalised ratio is 0/0.
absl::StatusOr<OpeEstimate> EstimateSnips(const OpeSamples& samples, const OpeOptions& options = {});
absl::StatusOr<OpeEstimate> EstimateDr(const OpeSamples& samples, const OpeOptions& options = {});

// IPS, SNIPS and — when both qhat vectors are non-empty — DR, in that order. Exactly one qhat vector
// being empty is an InvalidArgument (it is almost certainly a caller bug, not a request for no DR).
// Any estimator's failure fails the call.
absl::StatusOr<std::vector<OpeEstimate>> EstimateAll(const OpeSamples& samples,
                                                     const OpeOptions& options = {});

// Phi^{-1}(p), the standard normal quantile, to ~1e-15 relative accuracy (Acklam's rational
// approximation refined by one Halley step on std::erfc). p must be in (0, 1).
absl::StatusOr<double> NormalQuantile(double p);

}  // namespace optower

#endif  // OPTOWER_CORE_LEARNING_OPE_H_
