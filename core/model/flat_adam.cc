#include "core/model/flat_adam.h"

#include <omp.h>

#include <cmath>
#include <stdexcept>
#include <unordered_set>

namespace optower {

FlatAdam::FlatAdam(const std::vector<torch::Tensor>& params, double lr, double weight_decay)
    : lr_(lr), weight_decay_(weight_decay) {
  std::unordered_set<const void*> seen;
  int64_t total = 0;
  for (const torch::Tensor& p : params) {
    if (!p.requires_grad() || !seen.insert(p.unsafeGetTensorImpl()).second) continue;
    if (p.scalar_type() != torch::kFloat32 || !p.device().is_cpu() || p.is_sparse())
      throw std::invalid_argument("FlatAdam holds dense float32 CPU parameters only");
    params_.push_back(p);
    total += p.numel();
  }
  torch::NoGradGuard ng;
  flat_ = torch::empty({total}, torch::kFloat32);
  grad_ = torch::zeros({total}, torch::kFloat32);
  exp_avg_ = torch::zeros({total}, torch::kFloat32);
  exp_avg_sq_ = torch::zeros({total}, torch::kFloat32);
  denom_ = torch::empty({total}, torch::kFloat32);
  int64_t offset = 0;
  for (torch::Tensor& p : params_) {
    const int64_t n = p.numel();
    torch::Tensor view = flat_.narrow(0, offset, n).view(p.sizes());
    view.copy_(p);
    p.set_data(view);
    p.mutable_grad() = grad_.narrow(0, offset, n).view(p.sizes());
    offset += n;
  }
}

FlatAdam::~FlatAdam() {
  try {
    torch::NoGradGuard ng;
    for (torch::Tensor& p : params_) {
      p.set_data(p.detach().clone());
      p.mutable_grad() = torch::Tensor();
    }
  } catch (...) {  // a destructor must not throw; the parameters then keep sharing the buffer
  }
}

void FlatAdam::ZeroGrad() { grad_.zero_(); }

void FlatAdam::Step() {
  ++step_;
  constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
  const double bias_correction1 = 1 - std::pow(kBeta1, static_cast<double>(step_));
  const double bias_correction2 = 1 - std::pow(kBeta2, static_cast<double>(step_));
  // The scalars in float, as torch's kernels use them on float tensors (wd = 0 adds exactly 0).
  const float b1 = static_cast<float>(kBeta1), b2 = static_cast<float>(kBeta2);
  const float c1 = static_cast<float>(1 - kBeta1), c2 = static_cast<float>(1 - kBeta2);
  const float wd = static_cast<float>(weight_decay_), eps = static_cast<float>(kEps);
  const float step_size = static_cast<float>(lr_ / bias_correction1);
  const float sqrt_bc2 = static_cast<float>(std::sqrt(bias_correction2));
  float* __restrict p = flat_.data_ptr<float>();
  const float* __restrict g = grad_.data_ptr<float>();
  float* __restrict m = exp_avg_.data_ptr<float>();
  float* __restrict v = exp_avg_sq_.data_ptr<float>();
  const int64_t n = flat_.numel();
  for (int64_t i = 0; i < n; ++i) {  // plain loops over contiguous floats: vectorised by GCC
    const float gi = g[i] + wd * p[i];
    m[i] = m[i] * b1 + c1 * gi;
    v[i] = v[i] * b2 + c2 * gi * gi;
  }
  torch::sqrt_out(denom_, exp_avg_sq_);  // (std::sqrt's errno path would keep a loop scalar)
  const float* __restrict d = denom_.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) p[i] -= step_size * (m[i] / (d[i] / sqrt_bc2 + eps));
}

// The OpenMP count of this thread, not at::set_num_threads: that also rebuilds LibTorch's global
// pthreadpool on every call, whose new worker spins before it sleeps (~9% of the CPU of a
// train_check run when the guard toggled it). LibTorch's parallel_for and the OpenMP BLAS read
// this count (at::get_num_threads() is omp_get_max_threads()).
ScopedIntraOpThreads::ScopedIntraOpThreads(int threads) {
  if (threads <= 0) return;
  previous_ = at::get_num_threads();  // first: it initialises this thread's count once, lazily
  if (previous_ != threads) omp_set_num_threads(threads);
}

ScopedIntraOpThreads::~ScopedIntraOpThreads() {
  if (previous_ > 0 && previous_ != omp_get_max_threads()) omp_set_num_threads(previous_);
}

int MinibatchThreads(int requested, int64_t batch_rows, int64_t macs_per_row) {
  constexpr int64_t kSmallStepMacs = int64_t{1} << 22;
  if (requested != 0) return 0;
  return batch_rows * macs_per_row <= kSmallStepMacs ? 1 : 0;
}

void StateSnapshot::Capture(const torch::nn::Module& module) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> now = module.parameters();
  for (const torch::Tensor& b : module.buffers()) now.push_back(b);
  if (values_.size() != now.size()) {
    values_.clear();
    for (const torch::Tensor& t : now) values_.push_back(t.detach().clone());
    return;
  }
  for (size_t i = 0; i < now.size(); ++i) values_[i].copy_(now[i]);
}

void StateSnapshot::Restore(torch::nn::Module& module) const {
  if (values_.empty()) throw std::invalid_argument("StateSnapshot::Restore: nothing was captured");
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> now = module.parameters();
  for (const torch::Tensor& b : module.buffers()) now.push_back(b);
  if (now.size() != values_.size())
    throw std::invalid_argument("StateSnapshot::Restore: the module's structure changed");
  for (size_t i = 0; i < now.size(); ++i) now[i].copy_(values_[i]);
}

}  // namespace optower
