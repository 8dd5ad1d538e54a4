#include "core/synthetic/policy_value.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace optower {

absl::StatusOr<double> TruePolicyValue(const DenseMatrix& pi, const DenseMatrix& q) {
  if (pi.rows != q.rows || pi.cols != q.cols)
    return absl::InvalidArgumentError(absl::StrFormat(
        "policy is [%d, %d] but expected rewards are [%d, %d]", pi.rows, pi.cols, q.rows, q.cols));
  if (q.rows == 0) return absl::InvalidArgumentError("no contexts to evaluate the policy on");
  double total = 0.0;
  for (int64_t i = 0; i < q.rows; ++i) {
    const double* p = pi.row(i);
    const double* r = q.row(i);
    double v = 0.0;
    for (int64_t a = 0; a < q.cols; ++a) v += p[a] * r[a];
    total += v;
  }
  return total / static_cast<double>(q.rows);
}

double OptimalPolicyValue(const DenseMatrix& q) {
  if (q.rows == 0) return 0.0;
  double total = 0.0;
  for (int64_t i = 0; i < q.rows; ++i) total += *std::max_element(q.row(i), q.row(i) + q.cols);
  return total / static_cast<double>(q.rows);
}

double UniformPolicyValue(const DenseMatrix& q) {
  if (q.data.empty()) return 0.0;
  double total = 0.0;
  for (double v : q.data) total += v;
  return total / static_cast<double>(q.data.size());
}

double NormalizedValue(double v, double behavior, double optimal) {
  return (v - behavior) / (optimal - behavior);
}

}  // namespace optower
