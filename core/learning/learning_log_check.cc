// ValidateLogForLearning (core/learning/policy_learner.h): what a log must hold to train a policy.
#include <cmath>

#include "absl/strings/str_format.h"
#include "core/learning/policy_learner.h"

namespace optower {

absl::Status ValidateLogForLearning(const BanditLog& log, const ItemCatalog& items) {
  constexpr int64_t kMinRows = 10;
  if (log.size() < kMinRows)
    return absl::FailedPreconditionError(absl::StrFormat(
        "too few logged events (%d): at least %d are needed to train", log.size(), kMinRows));
  if (static_cast<int64_t>(log.contexts.size()) != log.size() * log.dim_context ||
      log.rewards.size() != log.actions.size() || log.pscores.size() != log.actions.size())
    return absl::InvalidArgumentError("log columns have inconsistent lengths");
  if (items.size() < 2)
    return absl::FailedPreconditionError(
        absl::StrFormat("catalog has %d items: a policy needs at least 2", items.size()));
  if (log.has_slates()) {
    if (static_cast<int64_t>(log.positions.size()) != log.size() ||
        static_cast<int64_t>(log.prefix_offsets.size()) != log.size() + 1 ||
        log.prefix_offsets.front() != 0 ||
        log.prefix_offsets.back() != static_cast<int64_t>(log.prefix_rows.size()))
      return absl::InvalidArgumentError("log slate columns have inconsistent lengths");
    for (int64_t i = 0; i < log.size(); ++i) {
      const int64_t prefix_len = log.prefix_end(i) - log.prefix_begin(i);
      if (prefix_len < 0 || prefix_len >= items.size())
        return absl::InvalidArgumentError(
            absl::StrFormat("event %d: its slate prefix leaves no item to draw", i));
      for (const int64_t* r = log.prefix_begin(i); r < log.prefix_end(i); ++r) {
        if (*r < 0 || *r >= items.size() || *r == log.actions[i])
          return absl::InvalidArgumentError(absl::StrFormat(
              "event %d: earlier slate item row %d is outside the catalog or the event's own "
              "action",
              i, *r));
      }
    }
  }
  bool any_stochastic = false;
  for (int64_t i = 0; i < log.size(); ++i) {
    if (log.actions[i] < 0 || log.actions[i] >= items.size())
      return absl::InvalidArgumentError(
          absl::StrFormat("action row %d of event %d is outside the catalog", log.actions[i], i));
    if (!(log.pscores[i] > 0.0f && log.pscores[i] <= 1.0f))
      return absl::InvalidArgumentError(
          absl::StrFormat("pscore=%g of event %d: must be in (0, 1]", log.pscores[i], i));
    if (!std::isfinite(log.rewards[i]))
      return absl::InvalidArgumentError(absl::StrFormat("reward of event %d is not finite", i));
    if (log.pscores[i] < 1.0f) any_stochastic = true;
  }
  if (!any_stochastic)
    return absl::FailedPreconditionError(
        "deterministic logging policy: every logged propensity is 1, so no other action was "
        "ever possible and off-policy learning has nothing to compare against");
  bool varied = false;
  for (float r : log.rewards) varied |= (r != log.rewards[0]);
  if (!varied)
    return absl::FailedPreconditionError(absl::StrFormat(
        "every logged reward equals %g: there is no signal to learn from", log.rewards[0]));
  return absl::OkStatus();
}

}  // namespace optower
