#include "core/learning/policy_evaluation.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "core/model/reward_model.h"
#include "core/base/status_macros.h"

namespace optower {

absl::StatusOr<OpeSamples> MakeOpeSamples(const TwoTowerModel& policy, const TwoTowerModel* qhat,
                                          const BanditLog& log, const ItemCatalog& items) {
  if (log.dim_context != policy.config().dim_context)
    return absl::InvalidArgumentError(absl::StrFormat(
        "logs have %d context features but the model takes %d", log.dim_context,
        policy.config().dim_context));
  const int64_t n = log.size();
  const int64_t N = items.size();
  OpeSamples out;
  out.target_prob.resize(n);
  out.pscore.assign(log.pscores.begin(), log.pscores.end());
  out.reward.assign(log.rewards.begin(), log.rewards.end());
  if (qhat != nullptr) {
    out.qhat_logged.resize(n);
    out.qhat_under_target.resize(n);
  }
  constexpr int64_t kChunk = 1024;
  for (int64_t s = 0; s < n; s += kChunk) {
    const int64_t len = std::min(kChunk, n - s);
    // Slates: each draw is valued over the items it could still pick (its slate's earlier items
    // excluded), matching its logged conditional propensity (docs/LEARNING.md "Slates").
    ASSIGN_OR_RETURN(DenseMatrix pi,
                     log.has_slates()
                         ? policy.ActionProbabilities(log.context(s), len, items,
                                                      log.prefix_offsets.data() + s,
                                                      log.prefix_begin(s))
                         : policy.ActionProbabilities(log.context(s), len, items));
    std::vector<float> q;
    if (qhat != nullptr) {
      ASSIGN_OR_RETURN(q, PredictRewardsAll(*qhat, log.context(s), len, items));
    }
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i = s + j;
      const int64_t a = log.actions[i];
      out.target_prob[i] = pi.at(j, a);
      if (qhat != nullptr) {
        const float* qrow = q.data() + j * N;
        out.qhat_logged[i] = qrow[a];
        double expected = 0;
        const double* prow = pi.row(j);
        for (int64_t b = 0; b < N; ++b) expected += prow[b] * qrow[b];
        out.qhat_under_target[i] = expected;
      }
    }
  }
  return out;
}

}  // namespace optower
