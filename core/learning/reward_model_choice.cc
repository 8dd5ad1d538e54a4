#include "core/learning/reward_model_choice.h"

#include <cmath>
#include <optional>
#include <utility>

#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"
#include "core/model/log_tensors.h"
#include "core/model/two_tower_net.h"

namespace optower {

namespace {

struct Candidate {
  TwoTowerModel model;
  RewardModelOptions options;
  torch::Tensor losses;  // [n_held_out] per-row loss on q̂'s held-out rows
};

// Per-row loss (BCE or squared error, as the fit used) of `qhat` on the rows FitRewardModel held
// out with `o` (its split depends on the seed and fraction only).
torch::Tensor HeldOutLosses(TwoTowerModel& qhat, const BanditLog& log,
                            const ItemCatalog& items, const RewardModelOptions& o) {
  torch::NoGradGuard ng;
  TwoTowerModel::Impl& m = qhat.impl();
  LogTensors all = MakeLogTensors(log, m);
  auto split = SplitTrainValidation(all.size(), o.validation_fraction, o.seed + 1);
  LogTensors val = all.Select(split.second.numel() > 0 ? split.second : split.first);
  torch::Tensor u = m.net->User(val.x);
  torch::Tensor v = m.net->Item(m.ItemFeatures(items).index_select(0, val.a),
                                m.ItemIdRows(items).index_select(0, val.a));
  torch::Tensor score = (u * v).sum(1);
  if (m.config.reward_link == "sigmoid")
    return torch::binary_cross_entropy_with_logits(score, val.r, {}, {},
                                                   torch::Reduction::None)
        .to(torch::kFloat64);
  return (score - val.r).pow(2).to(torch::kFloat64);
}

absl::StatusOr<Candidate> Fit(const BanditLog& log, const ItemCatalog& items,
                              const RewardModelOptions& o, const ProgressCallback& progress) {
  ASSIGN_OR_RETURN(TwoTowerModel model, FitRewardModel(log, items, o, progress));
  torch::Tensor losses;
  RETURN_IF_ERROR(TorchStatus([&] { losses = HeldOutLosses(model, log, items, o); },
                              "scoring q̂ on its held-out rows"));
  return Candidate{std::move(model), o, losses};
}

// True when `challenger`'s held-out loss is below `incumbent`'s by more than z standard errors of
// the paired per-row differences.
bool Beats(const Candidate& challenger, const Candidate& incumbent, double z) {
  torch::Tensor d = incumbent.losses - challenger.losses;
  const int64_t n = d.numel();
  if (n == 0) return false;
  const double mean = d.mean().item<double>();
  const double se = n > 1 ? d.std().item<double>() / std::sqrt(static_cast<double>(n)) : 0.0;
  return mean > z * se && mean > 0;
}

}  // namespace

absl::StatusOr<TwoTowerModel> FitQhat(const BanditLog& train_log, const ItemCatalog& items,
                                      const RewardModelOptions& rm, const QhatSearch& search,
                                      const ProgressCallback& progress) {
  RETURN_IF_ERROR(search.Validate());
  RewardModelOptions first = rm;
  if (!search.l2_per_row.empty())
    first.l2 = search.l2_per_row.front() / std::max<double>(1, train_log.size());
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
    o.l2 = search.l2_per_row[i] / std::max<double>(1, train_log.size());
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
