#include "core/learning/ope.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kSqrtTwoPi = 2.5066282746310002;  // sqrt(2 pi)

absl::Status ValidateOptions(const OpeOptions& options) {
  if (!(options.confidence > 0.0 && options.confidence < 1.0))  // also rejects NaN
    return absl::InvalidArgumentError(
        absl::StrCat("confidence=", options.confidence, ": must be in (0, 1)"));
  if (!(options.weight_clip >= 0.0) || !std::isfinite(options.weight_clip))
    return absl::InvalidArgumentError(absl::StrCat(
        "weight_clip=", options.weight_clip, ": must be 0 (no clipping) or a finite positive cap"));
  return absl::OkStatus();
}

absl::Status CheckLength(const char* name, const std::vector<double>& v, size_t n) {
  if (v.size() != n)
    return absl::InvalidArgumentError(absl::StrCat(
        name, " has ", v.size(), " entries but target_prob has ", n,
        ": all OpeSamples vectors must have the same length"));
  return absl::OkStatus();
}

absl::Status CheckFinite(const char* name, const std::vector<double>& v) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      return absl::InvalidArgumentError(
          absl::StrCat(name, "[", i, "]=", v[i], ": must be finite"));
  return absl::OkStatus();
}

// Checks everything every estimator reads; DR additionally passes need_qhat.
absl::Status ValidateSamples(const OpeSamples& s, bool need_qhat) {
  const size_t n = s.target_prob.size();
  if (n == 0) return absl::InvalidArgumentError("target_prob is empty: OPE needs n >= 1 samples");
  RETURN_IF_ERROR(CheckLength("pscore", s.pscore, n));
  RETURN_IF_ERROR(CheckLength("reward", s.reward, n));
  if (need_qhat) {
    RETURN_IF_ERROR(CheckLength("qhat_logged", s.qhat_logged, n));
    RETURN_IF_ERROR(CheckLength("qhat_under_target", s.qhat_under_target, n));
  }
  for (size_t i = 0; i < n; ++i) {
    const double t = s.target_prob[i];
    if (!(t >= 0.0 && t <= 1.0))
      return absl::InvalidArgumentError(
          absl::StrCat("target_prob[", i, "]=", t, ": must be in [0, 1]"));
    const double p = s.pscore[i];
    if (!(p > 0.0 && p <= 1.0))
      return absl::InvalidArgumentError(absl::StrCat("pscore[", i, "]=", p, ": must be in (0, 1]"));
  }
  RETURN_IF_ERROR(CheckFinite("reward", s.reward));
  if (need_qhat) {
    RETURN_IF_ERROR(CheckFinite("qhat_logged", s.qhat_logged));
    RETURN_IF_ERROR(CheckFinite("qhat_under_target", s.qhat_under_target));
  }
  return absl::OkStatus();
}

std::vector<double> Weights(const OpeSamples& s, const OpeOptions& options) {
  std::vector<double> w(s.target_prob.size());
  for (size_t i = 0; i < w.size(); ++i) {
    w[i] = s.target_prob[i] / s.pscore[i];
    if (options.weight_clip > 0.0) w[i] = std::min(w[i], options.weight_clip);
  }
  return w;
}

double Mean(const std::vector<double>& v) {
  double sum = 0.0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

// Standard error of the mean of `terms`: sample SD (n-1 denominator, two-pass for accuracy) / sqrt(n).
double StandardErrorOfMean(const std::vector<double>& terms) {
  const size_t n = terms.size();
  if (n < 2) return kInf;
  const double mean = Mean(terms);
  double ss = 0.0;
  for (double t : terms) ss += (t - mean) * (t - mean);
  return std::sqrt(ss / static_cast<double>(n - 1) / static_cast<double>(n));
}

// Fills n, the weight diagnostics and the interval around `value` with `std_error`.
absl::StatusOr<OpeEstimate> Finish(std::string name, double value, double std_error,
                                   const std::vector<double>& w, const OpeOptions& options) {
  ASSIGN_OR_RETURN(const double z, NormalQuantile(0.5 + 0.5 * options.confidence));
  OpeEstimate e;
  e.estimator = std::move(name);
  e.value = value;
  e.std_error = std_error;
  e.ci_low = std::isinf(std_error) ? -kInf : value - z * std_error;
  e.ci_high = std::isinf(std_error) ? kInf : value + z * std_error;
  e.n = static_cast<int64_t>(w.size());
  double sum = 0.0, sum_sq = 0.0, max_w = 0.0;
  for (double x : w) {
    sum += x;
    sum_sq += x * x;
    max_w = std::max(max_w, x);
  }
  e.max_weight = max_w;
  e.effective_sample_size = sum_sq > 0.0 ? sum * sum / sum_sq : 0.0;
  return e;
}

}  // namespace

absl::StatusOr<double> NormalQuantile(double p) {
  if (!(p > 0.0 && p < 1.0))
    return absl::InvalidArgumentError(absl::StrCat("p=", p, ": must be in (0, 1)"));
  // Work in the lower half and reflect: 1 - p is exact for p in [0.5, 1), and the Halley step's
  // residual Phi(x) - p is then computed without cancellation.
  if (p > 0.5) {
    ASSIGN_OR_RETURN(const double x, NormalQuantile(1.0 - p));
    return -x;
  }
  // Acklam's rational approximation (relative error < 1.15e-9).
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLowRegion = 0.02425;
  double x;
  if (p < kLowRegion) {
    const double q = std::sqrt(-2.0 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  } else {
    const double q = p - 0.5;
    const double r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
  }
  // One Halley step on f(x) = Phi(x) - p brings it to full double precision.
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * kSqrtTwoPi * std::exp(0.5 * x * x);
  x -= u / (1.0 + 0.5 * x * u);
  return x;
}

absl::StatusOr<OpeEstimate> EstimateIps(const OpeSamples& s, const OpeOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  RETURN_IF_ERROR(ValidateSamples(s, /*need_qhat=*/false));
  const std::vector<double> w = Weights(s, options);
  std::vector<double> terms(w.size());
  for (size_t i = 0; i < w.size(); ++i) terms[i] = w[i] * s.reward[i];
  return Finish("ips", Mean(terms), StandardErrorOfMean(terms), w, options);
}

absl::StatusOr<OpeEstimate> EstimateSnips(const OpeSamples& s, const OpeOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  RETURN_IF_ERROR(ValidateSamples(s, /*need_qhat=*/false));
  const std::vector<double> w = Weights(s, options);
  double sum_w = 0.0, sum_wr = 0.0;
  for (size_t i = 0; i < w.size(); ++i) {
    sum_w += w[i];
    sum_wr += w[i] * s.reward[i];
  }
  if (!(sum_w > 0.0))
    return absl::FailedPreconditionError(
        "sum of importance weights is 0: the target policy gives probability 0 to every logged "
        "action, so SNIPS is 0/0");
  const double value = sum_wr / sum_w;
  // Delta method: SNIPS is the ratio mean(w r) / mean(w); its influence function is
  // w_i (r_i - V) / E[w], whose sample SE is the ratio's asymptotic SE.
  const double mean_w = sum_w / static_cast<double>(w.size());
  std::vector<double> influence(w.size());
  for (size_t i = 0; i < w.size(); ++i) influence[i] = w[i] * (s.reward[i] - value) / mean_w;
  return Finish("snips", value, StandardErrorOfMean(influence), w, options);
}

absl::StatusOr<OpeEstimate> EstimateDr(const OpeSamples& s, const OpeOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  RETURN_IF_ERROR(ValidateSamples(s, /*need_qhat=*/true));
  const std::vector<double> w = Weights(s, options);
  std::vector<double> terms(w.size());
  for (size_t i = 0; i < w.size(); ++i)
    terms[i] = s.qhat_under_target[i] + w[i] * (s.reward[i] - s.qhat_logged[i]);
  return Finish("dr", Mean(terms), StandardErrorOfMean(terms), w, options);
}

absl::StatusOr<std::vector<OpeEstimate>> EstimateAll(const OpeSamples& s,
                                                     const OpeOptions& options) {
  const bool has_logged = !s.qhat_logged.empty();
  const bool has_target = !s.qhat_under_target.empty();
  if (has_logged != has_target)
    return absl::InvalidArgumentError(absl::StrCat(
        "qhat_logged has ", s.qhat_logged.size(), " entries but qhat_under_target has ",
        s.qhat_under_target.size(), ": DR needs both (or leave both empty to skip DR)"));
  std::vector<OpeEstimate> out;
  ASSIGN_OR_RETURN(OpeEstimate ips, EstimateIps(s, options));
  out.push_back(std::move(ips));
  ASSIGN_OR_RETURN(OpeEstimate snips, EstimateSnips(s, options));
  out.push_back(std::move(snips));
  if (has_logged) {
    ASSIGN_OR_RETURN(OpeEstimate dr, EstimateDr(s, options));
    out.push_back(std::move(dr));
  }
  return out;
}

}  // namespace optower
