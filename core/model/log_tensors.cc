#include "core/model/log_tensors.h"

#include <algorithm>
#include <cmath>

#include "core/model/two_tower_net.h"

namespace optower {

LogTensors LogTensors::Select(const torch::Tensor& index) const {
  return {x.index_select(0, index), a.index_select(0, index), r.index_select(0, index),
          p.index_select(0, index), prefix.defined() ? prefix.index_select(0, index) : prefix};
}

LogTensors LogTensors::Slice(int64_t begin, int64_t end) const {
  return {x.slice(0, begin, end), a.slice(0, begin, end), r.slice(0, begin, end),
          p.slice(0, begin, end), prefix.defined() ? prefix.slice(0, begin, end) : prefix};
}

torch::Tensor ExcludeEarlierItems(const torch::Tensor& logits, const torch::Tensor& prefix) {
  if (!prefix.defined() || prefix.size(1) == 0) return logits;
  const torch::Tensor valid = prefix.ge(0);
  const torch::Tensor rows =
      torch::arange(prefix.size(0), torch::kInt64).unsqueeze(1).expand_as(prefix);
  torch::Tensor mask = torch::zeros(logits.sizes(), torch::kBool);
  mask.index_put_({rows.masked_select(valid), prefix.masked_select(valid)}, true);
  return logits.masked_fill(mask, kExcludedLogit);
}

LogTensors MakeLogTensors(const BanditLog& log, const TwoTowerModel::Impl& model) {
  const int64_t n = log.size();
  LogTensors t;
  t.x = model.ContextInputs(log);
  t.a = torch::from_blob(const_cast<int64_t*>(log.actions.data()), {n}, torch::kInt64).clone();
  t.r = torch::from_blob(const_cast<float*>(log.rewards.data()), {n}, torch::kFloat32).clone();
  t.p = torch::from_blob(const_cast<float*>(log.pscores.data()), {n}, torch::kFloat32).clone();
  if (log.has_slates()) {
    int64_t width = 0;
    for (int64_t i = 0; i < n; ++i) {
      width = std::max(width, log.prefix_end(i) - log.prefix_begin(i));
    }
    if (width > 0) {
      t.prefix = torch::full({n, width}, -1, torch::kInt64);
      int64_t* out = t.prefix.data_ptr<int64_t>();
      for (int64_t i = 0; i < n; ++i) {
        std::copy(log.prefix_begin(i), log.prefix_end(i), out + i * width);
      }
    }
  }
  return t;
}

std::pair<torch::Tensor, torch::Tensor> SplitTrainValidation(int64_t n, double fraction,
                                                             uint64_t seed) {
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  torch::Tensor perm = torch::randperm(n, gen, torch::kInt64);
  int64_t n_val = 0;
  if (fraction > 0 && n >= 2) {
    n_val = std::clamp<int64_t>(static_cast<int64_t>(std::llround(n * fraction)), 1, n - 1);
  }
  return {perm.slice(0, n_val, n), perm.slice(0, 0, n_val)};
}

}  // namespace optower
