#include "core/model/reward_model.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_format.h"
#include "core/model/flat_adam.h"
#include "core/model/log_tensors.h"
#include "core/base/status_macros.h"
#include "core/model/two_tower_net.h"

namespace optower {

bool RewardsAreBinary(const BanditLog& log) {
  for (float r : log.rewards)
    if (r != 0.0f && r != 1.0f) return false;
  return true;
}

namespace {

// One pass over `train` in shuffled minibatches; the mean minibatch loss. The rows are put in the
// epoch's order once, so a minibatch is a slice (the same rows as gathering each batch by index).
template <typename LossOf>
double TrainEpoch(const LogTensors& train, int64_t batch_size, torch::Generator& gen,
                  FlatAdam& opt, const LossOf& loss_of) {
  const int64_t n = train.size();
  const LogTensors shuffled = train.Select(torch::randperm(n, gen, torch::kInt64));
  double total = 0;
  int64_t batches = 0;
  for (int64_t s = 0; s < n; s += batch_size) {
    opt.ZeroGrad();
    torch::Tensor loss = loss_of(shuffled.Slice(s, std::min(n, s + batch_size)));
    loss.backward();
    opt.Step();
    total += *loss.data_ptr<float>();
    ++batches;
  }
  return total / std::max<int64_t>(batches, 1);
}

// q̂'s towers: the options' shape, temperature 1, the link the rewards call for.
TwoTowerConfig RewardModelConfig(const BanditLog& log, const ItemCatalog& items,
                                 const RewardModelOptions& options, bool binary) {
  TwoTowerConfig config =
      MakeTowerConfig(log.dim_context, items, options.hidden, options.embedding_dim,
                      options.activation, options.item_id_embedding, /*temperature=*/1.0);
  config.reward_link = binary ? "sigmoid" : "identity";
  config.context_degree = options.context_degree;
  config.context_fields = DeriveCategoricalFields(log.context_categorical, options.context_fields);
  config.item_fields = DeriveCategoricalFields(items.categorical, options.item_fields);
  return config;
}

}  // namespace

absl::StatusOr<TwoTowerModel> FitRewardModel(const BanditLog& log, const ItemCatalog& items,
                                             const RewardModelOptions& options,
                                             const ProgressCallback& progress,
                                             std::vector<double>* held_out_losses) {
  if (log.size() < 2)
    return absl::InvalidArgumentError(
        absl::StrFormat("logs have %d rows: at least 2 are needed to fit q̂", log.size()));
  if (options.epochs < 1 || options.batch_size < 1)
    return absl::InvalidArgumentError(absl::StrFormat(
        "epochs=%d batch_size=%d: both must be >= 1", options.epochs, options.batch_size));
  const bool binary = RewardsAreBinary(log);
  ASSIGN_OR_RETURN(TwoTowerModel model,
                   TwoTowerModel::Create(RewardModelConfig(log, items, options, binary), items.ids,
                                         options.seed));

  RETURN_IF_ERROR(TorchStatus(
      [&] {
        ConfigureTorchForTraining(options.threads);
        torch::manual_seed(options.seed);
        TwoTowerModel::Impl& m = model.impl();
        LogTensors all = MakeLogTensors(log, m);
        auto [train_idx, val_idx] =
            SplitTrainValidation(all.size(), options.validation_fraction, options.seed + 1);
        LogTensors train = all.Select(train_idx);
        LogTensors val = all.Select(val_idx);
        m.net->StandardiseContexts(train.x);  // the training split's statistics, kept in q̂
        const torch::Tensor features = m.ItemFeatures(items);
        const torch::Tensor id_rows = m.ItemIdRows(items);
        FlatAdam opt(m.net->parameters(), options.learning_rate, options.l2);
        const ScopedIntraOpThreads threads(  // weights ~ multiply-adds per row
            MinibatchThreads(options.threads, options.batch_size, opt.numel()));
        auto loss_of = [&](const LogTensors& b,
                           torch::Reduction::Reduction reduction = torch::Reduction::Mean) {
          torch::Tensor u = m.net->User(b.x);
          torch::Tensor v = EmbedWholeCatalog(features.size(0), b.size())
                                ? m.net->Item(features, id_rows).index_select(0, b.a)
                                : m.net->Item(features.index_select(0, b.a),
                                              id_rows.index_select(0, b.a));
          torch::Tensor score = (u * v).sum(1);
          return binary ? torch::binary_cross_entropy_with_logits(score, b.r, {}, {}, reduction)
                        : torch::mse_loss(score, b.r, reduction);
        };
        double best = std::numeric_limits<double>::infinity();
        StateSnapshot best_state;
        int since_best = 0;
        torch::Generator gen = at::detail::createCPUGenerator(options.seed + 2);
        for (int epoch = 1; epoch <= options.epochs; ++epoch) {
          m.net->train();
          const double train_loss = TrainEpoch(train, options.batch_size, gen, opt, loss_of);
          double val_loss = train_loss;
          if (val.size() > 0) {
            torch::NoGradGuard ng;
            val_loss = loss_of(val).item<double>();
          }
          const bool improved = val_loss < best - 1e-6;
          if (improved) {
            best = val_loss;
            since_best = 0;
            best_state.Capture(*m.net);
          } else {
            ++since_best;
          }
          if (progress)
            progress({"reward_model", epoch, options.epochs, train_loss, val_loss, improved});
          if (since_best >= options.patience) break;
        }
        best_state.Restore(*m.net);
        m.net->eval();
        if (held_out_losses != nullptr) {
          torch::NoGradGuard ng;
          const torch::Tensor rows =
              loss_of(val.size() > 0 ? val : train, torch::Reduction::None)
                  .to(torch::kFloat64)
                  .contiguous();
          held_out_losses->assign(rows.data_ptr<double>(), rows.data_ptr<double>() + rows.numel());
        }
      },
      "fitting the reward model"));
  return model;
}

}  // namespace optower
