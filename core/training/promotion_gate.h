// Promotion gate: whether a trainer job's candidate policy replaces the served one (DESIGN §4;
// core/training/trainer.h, phase "evaluate"; docs/TRAINING.md). Both policies are valued by DR on the job's
// holdout with the same (new) q̂, and the decision rests on the paired per-sample difference
// DR_i(new) - DR_i(old) and its normal interval: promote unless the whole interval lies below
// -tolerance. Pure functions over OpeSamples and estimates: no threads, no models, no I/O.
#ifndef OPTOWER_CORE_TRAINING_PROMOTION_GATE_H_
#define OPTOWER_CORE_TRAINING_PROMOTION_GATE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/storage/model_store.h"
#include "core/learning/ope.h"

namespace optower {

// Paired difference of DR estimates on one log: per sample
//   d_i = DR_i(new) - DR_i(old),  DR_i(pi) = qhat_under_target_i(pi) + w_i(pi) (r_i - qhat_logged_i)
// with w_i = min(pi(a_i|x_i)/p_i, clip) as in EstimateDr; value = mean d_i, std_error = sd(d)/sqrt(n)
// (n-1 denominator; +inf when n = 1), interval value ± z·std_error; max_weight is the larger of the
// two policies' and effective_sample_size the smaller. Pairing removes the variance the
// two estimates share (the same r_i and q̂), so the interval is much tighter than comparing the two
// separate intervals. InvalidArgument when the samples are not on the same log (different n,
// pscores, rewards or qhat_logged) or fail EstimateDr's checks. estimator = "dr_diff".
absl::StatusOr<OpeEstimate> PairedDrDifference(const OpeSamples& old_policy,
                                               const OpeSamples& new_policy,
                                               const OpeOptions& options = {});

struct PromotionGateOptions {
  double confidence = 0.95;  // of the paired interval, in (0, 1)
  double tolerance = 0.0;    // >= 0: how much worse than the served policy is still acceptable
  double weight_clip = 0.0;  // importance-weight clip of the gate's DR estimates (0 = none)
};

// The gate's numbers for one holdout: DR of the served (`old_policy`) and the candidate
// (`new_policy`) policy, and PairedDrDifference, all at gate.confidence with gate.weight_clip.
// Both sample sets must come from the same holdout and the same q̂. Errors as PairedDrDifference.
absl::StatusOr<OpeComparison> CompareOnHoldout(const OpeSamples& old_policy,
                                               const OpeSamples& new_policy,
                                               const PromotionGateOptions& gate);

// Slates: CompareOnHoldout on the samples of each position (positions[i] = sample i's position,
// 0-based), in position order; positions with fewer than 2 samples are left out. The overall
// comparison over all samples values the whole slate (the mean over its draws); this one shows
// where a candidate gains and loses. InvalidArgument when positions has another length than the
// samples, or as CompareOnHoldout.
absl::StatusOr<std::vector<PositionComparison>> CompareByPosition(
    const OpeSamples& old_policy, const OpeSamples& new_policy,
    const std::vector<int32_t>& positions, const PromotionGateOptions& gate);

struct PromotionDecision {
  bool promote = false;
  bool forced = false;   // the gate said reject but `force` overrode it
  std::string decision;  // "promoted" | "rejected"
  std::string reason;    // with the numbers
};

// The gate: reject iff difference->ci_high < -tolerance (the new policy is worse beyond the
// interval) or the difference is not finite; `force` turns a reject into a forced promote. No
// difference (nothing served to compare against, or no holdout) promotes, saying why.
PromotionDecision DecidePromotion(const std::optional<OpeEstimate>& difference,
                                  const PromotionGateOptions& gate, bool force,
                                  const std::string& no_comparison_reason = "");

// The "unchanged" rule applied after DecidePromotion: a warm-started job in which no epoch improved
// the served policy's validation DR (`unchanged`) has the served policy itself as its candidate, and
// publishing it would only churn versions and rebuild the index. Such a promote (not already forced)
// becomes a reject, or with `force` a forced promote; any other decision is returned as is.
// `validation_dr_initial` is the served policy's validation DR, quoted in the reason.
PromotionDecision RejectIfUnchanged(PromotionDecision decision, bool unchanged,
                                    double validation_dr_initial, bool force);

// The evaluate event's message: the two DR estimates (when compared) and the decision with its
// reason.
std::string GateSummary(const std::optional<OpeComparison>& comparison,
                        const PromotionDecision& decision);

}  // namespace optower

#endif  // OPTOWER_CORE_TRAINING_PROMOTION_GATE_H_
