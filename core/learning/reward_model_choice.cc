#include "core/learning/reward_model_choice.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "core/base/status_macros.h"
#include "core/learning/policy_selection.h"

namespace optower {

namespace {

struct Candidate {
  TwoTowerModel model;
  RewardModelOptions options;
  std::vector<double> losses;  // per-row loss on q̂'s held-out rows (FitRewardModel)
};

absl::StatusOr<Candidate> Fit(const BanditLog& log, const ItemCatalog& items,
                              const RewardModelOptions& o, const ProgressCallback& progress) {
  std::vector<double> losses;
  ASSIGN_OR_RETURN(TwoTowerModel model, FitRewardModel(log, items, o, progress, &losses));
  return Candidate{std::move(model), o, std::move(losses)};
}

// True when `challenger`'s held-out loss is below `incumbent`'s by more than z standard errors of
// the paired per-row differences (policy_selection.h's comparison, with the losses' sign turned).
bool Beats(const Candidate& challenger, const Candidate& incumbent, double z) {
  return ComparePaired(incumbent.losses, challenger.losses, z).lower > 0;
}

}  // namespace

absl::StatusOr<TwoTowerModel> FitQhat(const BanditLog& train_log, const ItemCatalog& items,
                                      const RewardModelOptions& rm, const QhatSearch& search,
                                      const ProgressCallback& progress) {
  RETURN_IF_ERROR(search.Validate());
  auto l2_of = [&](double per_row) { return per_row / std::max<double>(1, train_log.size()); };
  RewardModelOptions first = rm;
  if (!search.l2_per_row.empty()) first.l2 = l2_of(search.l2_per_row.front());
  if (!search.context_degrees.empty()) first.context_degree = search.context_degrees.front();
  ASSIGN_OR_RETURN(Candidate best, Fit(train_log, items, first, progress));

  // One change at a time from the incumbent, in order; a challenger is kept only when it beats
  // the incumbent by the paired bound, so noise on small held-out sets keeps the simpler fit.
  bool kept = false;  // whether the last challenger was kept
  auto challenge = [&](RewardModelOptions o) -> absl::Status {
    ASSIGN_OR_RETURN(Candidate c, Fit(train_log, items, o, progress));
    kept = Beats(c, best, search.selection_z);
    if (kept) best = std::move(c);
    return absl::OkStatus();
  };
  if (search.linear_alternative && !rm.hidden.empty()) {
    RewardModelOptions o = best.options;
    o.hidden.clear();
    RETURN_IF_ERROR(challenge(o));
  }
  for (size_t i = 1; i < search.l2_per_row.size(); ++i) {
    RewardModelOptions o = best.options;
    o.l2 = l2_of(search.l2_per_row[i]);
    RETURN_IF_ERROR(challenge(o));
  }
  // Degrees stop at the first that is not kept: a higher degree holds the lower one's monomials.
  for (size_t i = 1; i < search.context_degrees.size(); ++i) {
    RewardModelOptions o = best.options;
    o.context_degree = search.context_degrees[i];
    RETURN_IF_ERROR(challenge(o));
    if (!kept) break;
  }
  return std::move(best.model);
}

}  // namespace optower
