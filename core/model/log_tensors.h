// BanditLog as torch tensors, and the seeded train/validation split the learners share.
// Torch header: include only from core's torch translation units.
#ifndef OPTOWER_CORE_MODEL_LOG_TENSORS_H_
#define OPTOWER_CORE_MODEL_LOG_TENSORS_H_

#include <torch/torch.h>

#include <cstdint>

#include "core/base/bandit_data.h"
#include "core/model/two_tower_model.h"

namespace optower {

struct LogTensors {
  torch::Tensor x;  // [n, ContextInputWidth] float: the model's encoded input rows
  torch::Tensor a;  // [n] int64 catalog rows
  torch::Tensor r;  // [n] float
  torch::Tensor p;  // [n] float pscores
  // [n, P] int64 catalog rows of the earlier items of each sample's slate, padded with -1
  // (P = the longest prefix); undefined when no sample has earlier items.
  torch::Tensor prefix;
  int64_t size() const { return a.size(0); }
  LogTensors Select(const torch::Tensor& index) const;
  LogTensors Slice(int64_t begin, int64_t end) const;  // rows [begin, end), as views
};

// x holds `model`'s input rows (dense contexts, then categorical slots: Impl::ContextInputs);
// throws (TorchStatus callers) when the log's categorical fields are not in the model's schema.
LogTensors MakeLogTensors(const BanditLog& log, const TwoTowerModel::Impl& model);

// logits [B, N] with the entries of each row's earlier slate items (prefix [B, P], -1 = none) set
// to kExcludedLogit, so that softmax / log_softmax over the row is the policy's distribution over
// the items its draw could still pick (Plackett-Luce conditional). Returns `logits` itself when
// `prefix` is undefined or has no columns. Differentiable (masked_fill).
inline constexpr float kExcludedLogit = -1e30f;  // exp() underflows to exactly 0; no inf arithmetic
torch::Tensor ExcludeEarlierItems(const torch::Tensor& logits, const torch::Tensor& prefix);

// A seeded random permutation of 0..n-1 split into (train, validation); validation gets
// round(n * fraction) rows but at least 1 and at most n-1 when fraction > 0 and n >= 2.
std::pair<torch::Tensor, torch::Tensor> SplitTrainValidation(int64_t n, double fraction,
                                                             uint64_t seed);

}  // namespace optower

#endif  // OPTOWER_CORE_MODEL_LOG_TENSORS_H_
