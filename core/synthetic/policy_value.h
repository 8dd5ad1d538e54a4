// Ground-truth policy values on contexts whose expected rewards are known (synthetic data):
//   V(pi) = mean_i sum_a pi(a|x_i) q(x_i, a)          (DESIGN §5, OBP_SYNTHETIC.md 7)
#ifndef OPTOWER_CORE_SYNTHETIC_POLICY_VALUE_H_
#define OPTOWER_CORE_SYNTHETIC_POLICY_VALUE_H_

#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"

namespace optower {

// `pi` and `q` are [n, N]; rows of pi must be distributions. Fails on a shape mismatch or n = 0.
absl::StatusOr<double> TruePolicyValue(const DenseMatrix& pi, const DenseMatrix& q);

// Value of the greedy policy argmax_a q(x, a): mean_i max_a q(x_i, a).
double OptimalPolicyValue(const DenseMatrix& q);

// Value of the uniform policy: mean over all entries of q.
double UniformPolicyValue(const DenseMatrix& q);

// (v - behavior) / (optimal - behavior): 0 = as good as the logger, 1 = optimal.
double NormalizedValue(double v, double behavior, double optimal);

}  // namespace optower

#endif  // OPTOWER_CORE_SYNTHETIC_POLICY_VALUE_H_
