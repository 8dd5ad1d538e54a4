// Training-loop helpers for the learners' small towers, where LibTorch's per-op dispatch, not
// arithmetic, is the cost of a minibatch step (issue 14):
//   * FlatAdam: torch::optim::Adam's update over parameters re-seated as views of one flat buffer,
//     with their gradients views of one flat gradient buffer, so zeroing the gradients is one fill
//     and the step one pass over contiguous floats instead of ~10 dispatched ops per tensor.
//   * StateSnapshot: the best epoch's weights kept as tensor copies (torch::save into a stream
//     serialised the whole module on every improving epoch).
// Torch header: include only from core's torch translation units.
#ifndef OPTOWER_CORE_MODEL_FLAT_ADAM_H_
#define OPTOWER_CORE_MODEL_FLAT_ADAM_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace optower {

// Adam (Kingma & Ba): the update torch::optim::Adam makes (equal to float rounding) with betas
// (0.9, 0.999), eps 1e-8,
// no amsgrad, and L2 weight decay added to the gradient:
//   g += wd p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²;
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// The parameters (float32, CPU, dense; duplicates counted once; those without requires_grad left
// alone, as torch's Adam leaves them without a gradient) become views of one buffer for the
// optimiser's lifetime; the destructor gives each its own storage back and drops the gradient
// views, so models outlive the optimiser unchanged. One difference from torch's Adam: a parameter
// that never receives a gradient is still stepped (zero gradient plus weight decay) where torch's
// skips it; every parameter of the two towers is in every loss, so the learners never see it.
// Throws std::invalid_argument on a parameter it cannot hold (callers run under TorchStatus).
class FlatAdam {
 public:
  FlatAdam(const std::vector<torch::Tensor>& params, double lr, double weight_decay);
  ~FlatAdam();
  FlatAdam(const FlatAdam&) = delete;
  FlatAdam& operator=(const FlatAdam&) = delete;

  void ZeroGrad();  // the gradients to 0 (one fill of the flat gradient buffer)
  void Step();      // one Adam step from the accumulated gradients
  int64_t numel() const { return flat_.numel(); }  // of the parameters it holds

 private:
  std::vector<torch::Tensor> params_;
  torch::Tensor flat_, grad_, exp_avg_, exp_avg_sq_, denom_;  // [total] float32 each
  double lr_, weight_decay_;
  int64_t step_ = 0;
};

// Copies of a module's parameters and buffers (recursively), restorable into the same module.
class StateSnapshot {
 public:
  // Copies the current values (reusing the tensors of an earlier capture of the same module).
  void Capture(const torch::nn::Module& module);
  // Writes the captured values back; the module must have the structure it had at Capture.
  void Restore(torch::nn::Module& module) const;
  bool empty() const { return values_.empty(); }

 private:
  std::vector<torch::Tensor> values_;  // parameters, then buffers, in the module's order
};

// The intra-op threads of the calling thread set to `threads` for the guard's lifetime (> 0; 0 =
// leave them), the previous count restored after: the calling thread's OpenMP count, which
// LibTorch's OpenMP backend and the OpenMP BLAS follow (other threads are not affected).
class ScopedIntraOpThreads {
 public:
  explicit ScopedIntraOpThreads(int threads);
  ~ScopedIntraOpThreads();
  ScopedIntraOpThreads(const ScopedIntraOpThreads&) = delete;
  ScopedIntraOpThreads& operator=(const ScopedIntraOpThreads&) = delete;

 private:
  int previous_ = 0;
};

// The intra-op threads for a minibatch loop when the caller asked for `requested` (0 = auto):
// with auto, 1 when a minibatch's matrix products are too small to split, about
// `batch_rows` x `macs_per_row` <= 2^22 multiply-adds (each op a few µs to tens of µs, where
// waking a second thread for every product costs more than it saves: the default train_check
// setting made ~12,000 context switches with 2 threads); else 0 (leave the threads as they are).
int MinibatchThreads(int requested, int64_t batch_rows, int64_t macs_per_row);

// True when a minibatch of `batch_rows` rows should run the item tower once over all `n_items`
// catalog rows and gather the outputs by action, rather than gather the feature rows and run the
// tower on each: the tower is row-wise, so both give the same values (and gradients); this is the
// one with fewer rows to push through it.
inline bool EmbedWholeCatalog(int64_t n_items, int64_t batch_rows) {
  return n_items <= batch_rows;
}

}  // namespace optower

#endif  // OPTOWER_CORE_MODEL_FLAT_ADAM_H_
