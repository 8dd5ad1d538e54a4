// BanditLog as torch tensors, and the seeded train/validation split the learners share.
// Torch header: include only from core's torch translation units.
#ifndef OPTOWER_CORE_MODEL_LOG_TENSORS_H_
#define OPTOWER_CORE_MODEL_LOG_TENSORS_H_

#include <torch/torch.h>

#include <cstdint>

#include "core/base/bandit_data.h"

namespace optower {

struct LogTensors {
  torch::Tensor x;  // [n, dim_context] float
  torch::Tensor a;  // [n] int64 catalog rows
  torch::Tensor r;  // [n] float
  torch::Tensor p;  // [n] float pscores
  int64_t size() const { return a.size(0); }
  LogTensors Select(const torch::Tensor& index) const;
};

LogTensors MakeLogTensors(const BanditLog& log);

// A seeded random permutation of 0..n-1 split into (train, validation); validation gets
// round(n * fraction) rows but at least 1 and at most n-1 when fraction > 0 and n >= 2.
std::pair<torch::Tensor, torch::Tensor> SplitTrainValidation(int64_t n, double fraction,
                                                             uint64_t seed);

}  // namespace optower

#endif  // OPTOWER_CORE_MODEL_LOG_TENSORS_H_
