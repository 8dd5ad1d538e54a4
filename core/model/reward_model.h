// q̂(x, a) ~= E[r | x, a] as a two-tower scorer (DESIGN §1): q̂ = link(<h(x), k(a)>) with
// link = sigmoid for binary rewards (fitted by BCE) and identity otherwise (MSE). Being a two-tower,
// q̂ for *every* item is one matrix product, which the DR estimator's second term needs.
#ifndef OPTOWER_CORE_MODEL_REWARD_MODEL_H_
#define OPTOWER_CORE_MODEL_REWARD_MODEL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"
#include "core/base/train_progress.h"
#include "core/model/two_tower_model.h"

namespace optower {

struct RewardModelOptions {
  std::vector<int64_t> hidden = {64};
  int64_t embedding_dim = 32;
  std::string activation = "relu";
  bool item_id_embedding = false;
  int64_t context_degree = 1;  // TwoTowerConfig::context_degree of q̂'s user tower
  // Categorical schemas (core/base/categorical.h); columns of the log / catalog not listed get a
  // schema derived from the data (DeriveCategoricalFields).
  std::vector<CategoricalField> context_fields;
  std::vector<CategoricalField> item_fields;
  int epochs = 30;
  int batch_size = 256;
  double learning_rate = 5e-3;
  double l2 = 1e-5;               // Adam weight decay
  double validation_fraction = 0.1;  // of the given log, for early stopping on held-out loss
  int patience = 3;               // epochs without validation improvement before stopping
  uint64_t seed = 0;
  int threads = 0;                // 0 = all cores
};

// True when every reward is 0 or 1 (then the sigmoid link and BCE are used).
bool RewardsAreBinary(const BanditLog& log);

// Fits q̂ on (x_i, a_i, r_i). The returned model's config has reward_link set and temperature 1.
// With `held_out_losses`, it is set to the returned fit's per-row loss (BCE or squared error, the
// fit's own) on the rows held out for early stopping (on the training rows when none are held
// out), in the split's order: the split depends on the seed and fraction only, so fits of the same
// log with the same seed and fraction give losses that pair up row by row.
absl::StatusOr<TwoTowerModel> FitRewardModel(const BanditLog& log, const ItemCatalog& items,
                                             const RewardModelOptions& options,
                                             const ProgressCallback& progress = nullptr,
                                             std::vector<double>* held_out_losses = nullptr);

}  // namespace optower

#endif  // OPTOWER_CORE_MODEL_REWARD_MODEL_H_
