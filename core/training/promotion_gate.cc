#include "core/training/promotion_gate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {

// Per-sample DR terms DR_i = qhat_under_target_i + w_i (r_i - qhat_logged_i), w clipped as in ope.cc.
double DrTerm(const OpeSamples& s, size_t i, double clip, double* weight) {
  double w = s.target_prob[i] / s.pscore[i];
  if (clip > 0) w = std::min(w, clip);
  *weight = w;
  return s.qhat_under_target[i] + w * (s.reward[i] - s.qhat_logged[i]);
}

std::string EstimateText(const OpeEstimate& e) {
  return absl::StrFormat("%.4f [%.4f, %.4f]", e.value, e.ci_low, e.ci_high);
}

// InvalidArgument unless both sample sets are on the same log with the same q̂ (n, pscores,
// rewards and qhat_logged equal).
absl::Status CheckSameLog(const OpeSamples& old_policy, const OpeSamples& new_policy) {
  const size_t n = old_policy.pscore.size();
  if (new_policy.pscore.size() != n)
    return absl::InvalidArgumentError(absl::StrFormat(
        "old policy has %d samples, new policy %d: a paired difference needs the same log", n,
        new_policy.pscore.size()));
  for (size_t i = 0; i < n; ++i) {
    if (old_policy.pscore[i] != new_policy.pscore[i] ||
        old_policy.reward[i] != new_policy.reward[i] ||
        old_policy.qhat_logged[i] != new_policy.qhat_logged[i])
      return absl::InvalidArgumentError(absl::StrFormat(
          "sample %d differs between old and new (pscore %g/%g, reward %g/%g, qhat_logged %g/%g): "
          "a paired difference needs the same log and the same q̂",
          i, old_policy.pscore[i], new_policy.pscore[i], old_policy.reward[i],
          new_policy.reward[i], old_policy.qhat_logged[i], new_policy.qhat_logged[i]));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OpeEstimate> PairedDrDifference(const OpeSamples& old_policy,
                                               const OpeSamples& new_policy,
                                               const OpeOptions& options) {
  // EstimateDr validates every vector (lengths, ranges, finiteness) and the options.
  ASSIGN_OR_RETURN(OpeEstimate old_dr, EstimateDr(old_policy, options));
  ASSIGN_OR_RETURN(OpeEstimate new_dr, EstimateDr(new_policy, options));
  RETURN_IF_ERROR(CheckSameLog(old_policy, new_policy));
  const size_t n = old_policy.pscore.size();
  ASSIGN_OR_RETURN(double z, NormalQuantile(0.5 + options.confidence / 2));
  std::vector<double> d(n);
  double sum = 0, max_w = 0;
  for (size_t i = 0; i < n; ++i) {
    double w_old, w_new;
    const double t_old = DrTerm(old_policy, i, options.weight_clip, &w_old);
    const double t_new = DrTerm(new_policy, i, options.weight_clip, &w_new);
    d[i] = t_new - t_old;
    sum += d[i];
    max_w = std::max({max_w, w_old, w_new});
  }
  const double mean = sum / static_cast<double>(n);
  double ss = 0;
  for (double v : d) ss += (v - mean) * (v - mean);
  OpeEstimate e;
  e.estimator = "dr_diff";
  e.value = mean;
  e.n = static_cast<int64_t>(n);
  e.std_error = n > 1 ? std::sqrt(ss / static_cast<double>(n - 1) / static_cast<double>(n))
                      : std::numeric_limits<double>::infinity();
  e.ci_low = mean - z * e.std_error;
  e.ci_high = mean + z * e.std_error;
  e.max_weight = max_w;
  e.effective_sample_size = std::min(old_dr.effective_sample_size, new_dr.effective_sample_size);
  return e;
}

absl::StatusOr<OpeComparison> CompareOnHoldout(const OpeSamples& old_policy,
                                               const OpeSamples& new_policy,
                                               const PromotionGateOptions& gate) {
  OpeOptions oo;
  oo.confidence = gate.confidence;
  oo.weight_clip = gate.weight_clip;
  OpeComparison c;
  c.confidence = gate.confidence;
  c.tolerance = gate.tolerance;
  ASSIGN_OR_RETURN(c.old_policy, EstimateDr(old_policy, oo));
  ASSIGN_OR_RETURN(c.new_policy, EstimateDr(new_policy, oo));
  ASSIGN_OR_RETURN(c.difference, PairedDrDifference(old_policy, new_policy, oo));
  return c;
}

namespace {

OpeSamples SubsetSamples(const OpeSamples& s, const std::vector<int64_t>& idx) {
  OpeSamples out;
  auto take = [&idx](const std::vector<double>& from, std::vector<double>* to) {
    if (from.empty()) return;
    to->reserve(idx.size());
    for (int64_t i : idx) to->push_back(from[static_cast<size_t>(i)]);
  };
  take(s.target_prob, &out.target_prob);
  take(s.pscore, &out.pscore);
  take(s.reward, &out.reward);
  take(s.qhat_logged, &out.qhat_logged);
  take(s.qhat_under_target, &out.qhat_under_target);
  return out;
}

}  // namespace

absl::StatusOr<std::vector<PositionComparison>> CompareByPosition(
    const OpeSamples& old_policy, const OpeSamples& new_policy,
    const std::vector<int32_t>& positions, const PromotionGateOptions& gate) {
  if (positions.size() != old_policy.pscore.size() || positions.size() != new_policy.pscore.size())
    return absl::InvalidArgumentError(absl::StrFormat(
        "positions has %d entries for %d / %d samples", positions.size(),
        old_policy.pscore.size(), new_policy.pscore.size()));
  std::map<int32_t, std::vector<int64_t>> by_position;
  for (size_t i = 0; i < positions.size(); ++i)
    by_position[positions[i]].push_back(static_cast<int64_t>(i));
  std::vector<PositionComparison> out;
  for (const auto& [position, idx] : by_position) {
    if (idx.size() < 2) continue;
    ASSIGN_OR_RETURN(OpeComparison c, CompareOnHoldout(SubsetSamples(old_policy, idx),
                                                       SubsetSamples(new_policy, idx), gate));
    out.push_back({position, c.old_policy, c.new_policy, c.difference});
  }
  return out;
}

PromotionDecision DecidePromotion(const std::optional<OpeEstimate>& difference,
                                  const PromotionGateOptions& gate, bool force,
                                  const std::string& no_comparison_reason) {
  PromotionDecision out;
  if (!difference.has_value()) {
    out.promote = true;
    out.decision = "promoted";
    out.reason = absl::StrCat(
        "no OPE comparison (",
        no_comparison_reason.empty() ? "none available" : no_comparison_reason, ")");
    return out;
  }
  const OpeEstimate& d = *difference;
  const bool finite = std::isfinite(d.value) && !std::isnan(d.ci_high);
  const bool worse = !finite || d.ci_high < -gate.tolerance;
  const std::string numbers = absl::StrFormat(
      "DR(new) - DR(old) = %.4f, %g%% CI [%.4f, %.4f] on %d holdout samples, tolerance %g",
      d.value, gate.confidence * 100, d.ci_low, d.ci_high, d.n, gate.tolerance);
  if (!worse) {
    out.promote = true;
    out.decision = "promoted";
    out.reason = numbers + ": not worse beyond the interval";
    return out;
  }
  const std::string why =
      finite ? numbers + ": the new policy is worse (the whole interval is below -tolerance)"
             : numbers + ": the difference is not finite";
  if (force) {
    out.promote = true;
    out.forced = true;
    out.decision = "promoted";
    out.reason = "forced despite the gate: " + why;
  } else {
    out.decision = "rejected";
    out.reason = why;
  }
  return out;
}

PromotionDecision RejectIfUnchanged(PromotionDecision decision, bool unchanged,
                                    double validation_dr_initial, bool force) {
  if (!unchanged || !decision.promote || decision.forced) return decision;
  const std::string why = absl::StrFormat(
      "unchanged: no epoch improved the served policy's validation DR (%.4f), nor did the DM "
      "policy (by the learner's selection rule), so the candidate is the served policy itself",
      validation_dr_initial);
  if (force) {
    decision.forced = true;
    decision.reason = "forced despite the gate: " + why;
  } else {
    decision.promote = false;
    decision.decision = "rejected";
    decision.reason = why;
  }
  return decision;
}

std::string GateSummary(const std::optional<OpeComparison>& comparison,
                        const PromotionDecision& decision) {
  if (!comparison.has_value()) return absl::StrCat(decision.decision, ": ", decision.reason);
  std::string by_position;
  for (const PositionComparison& p : comparison->positions) {
    absl::StrAppendFormat(&by_position, "%sposition %d: old %.4f, new %.4f, new-old %s",
                          by_position.empty() ? "; per position (" : "; ", p.position,
                          p.old_policy.value, p.new_policy.value, EstimateText(p.difference));
  }
  if (!by_position.empty()) by_position += ")";
  return absl::StrFormat("DR old %s, new %s%s; %s: %s", EstimateText(comparison->old_policy),
                         EstimateText(comparison->new_policy), by_position, decision.decision,
                         decision.reason);
}

}  // namespace optower
