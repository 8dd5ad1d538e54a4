// FlatAdam against torch::optim::Adam, and StateSnapshot (core/model/flat_adam.h).
#include "core/model/flat_adam.h"

#include <gtest/gtest.h>

namespace optower {
namespace {

// A small MLP regression; the same seed gives the same initial weights and data.
struct Problem {
  torch::nn::Sequential net{nullptr};
  torch::Tensor x, y;
  explicit Problem(uint64_t seed) {
    torch::manual_seed(seed);
    net = torch::nn::Sequential(torch::nn::Linear(4, 8), torch::nn::ReLU(), torch::nn::Linear(8, 2));
    x = torch::randn({64, 4});
    y = torch::randn({64, 2});
  }
  torch::Tensor Loss() { return torch::mse_loss(net->forward(x), y); }
};

TEST(FlatAdamTest, FollowsTorchAdamWithWeightDecay) {
  Problem a(7), b(7);
  torch::optim::Adam reference(a.net->parameters(),
                               torch::optim::AdamOptions(1e-2).weight_decay(1e-3));
  std::vector<torch::Tensor> after;
  {
    FlatAdam flat(b.net->parameters(), 1e-2, 1e-3);
    for (int step = 0; step < 50; ++step) {
      reference.zero_grad();
      a.Loss().backward();
      reference.step();
      flat.ZeroGrad();
      b.Loss().backward();
      flat.Step();
    }
    after = b.net->parameters();
    for (size_t i = 0; i < after.size(); ++i)
      EXPECT_TRUE(torch::allclose(after[i], a.net->parameters()[i], 1e-4, 1e-5)) << "param " << i;
  }
  // After the optimiser: the parameters hold their values in storage of their own, no gradient.
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(torch::allclose(b.net->parameters()[i], a.net->parameters()[i], 1e-4, 1e-5));
    EXPECT_FALSE(b.net->parameters()[i].grad().defined());
    EXPECT_EQ(b.net->parameters()[i].storage().nbytes(),
              b.net->parameters()[i].numel() * sizeof(float));
  }
  EXPECT_LT(b.Loss().item<double>(), Problem(7).Loss().item<double>());
}

TEST(FlatAdamTest, RefusesNonFloatParameters) {
  torch::Tensor p = torch::zeros({3}, torch::kFloat64).requires_grad_(true);
  EXPECT_THROW(FlatAdam({p}, 1e-3, 0), std::invalid_argument);
}

TEST(StateSnapshotTest, RestoresCapturedParametersAndBuffers) {
  Problem p(3);
  torch::nn::BatchNorm1d bn(4);
  p.net->push_back(bn);  // a module with buffers (running mean / var)
  StateSnapshot snap;
  EXPECT_TRUE(snap.empty());
  EXPECT_THROW(snap.Restore(*p.net), std::invalid_argument);
  snap.Capture(*p.net);
  const std::vector<torch::Tensor> params = p.net->parameters(), buffers = p.net->buffers();
  std::vector<torch::Tensor> before_p, before_b;
  for (const auto& t : params) before_p.push_back(t.detach().clone());
  for (const auto& t : buffers) before_b.push_back(t.detach().clone());
  {
    torch::NoGradGuard ng;
    for (auto& t : p.net->parameters()) t.add_(1.0);
    for (auto& t : p.net->buffers()) t.add_(1);
  }
  snap.Restore(*p.net);
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(params[i], before_p[i]));
  for (size_t i = 0; i < buffers.size(); ++i) EXPECT_TRUE(torch::equal(buffers[i], before_b[i]));
}

TEST(MinibatchThreadsTest, OneThreadForSmallStepsOnlyWhenAuto) {
  EXPECT_EQ(MinibatchThreads(0, 256, 5000), 1);         // ~1.3M multiply-adds per step
  EXPECT_EQ(MinibatchThreads(0, 4096, 1 << 20), 0);     // large steps keep the threads
  EXPECT_EQ(MinibatchThreads(2, 256, 5000), 0);         // an explicit count is left alone
}

TEST(ScopedIntraOpThreadsTest, RestoresTheCount) {
  at::set_num_threads(2);
  {
    ScopedIntraOpThreads one(1);
    EXPECT_EQ(at::get_num_threads(), 1);
  }
  EXPECT_EQ(at::get_num_threads(), 2);
  {
    ScopedIntraOpThreads none(0);
    EXPECT_EQ(at::get_num_threads(), 2);
  }
  EXPECT_EQ(at::get_num_threads(), 2);
}

}  // namespace
}  // namespace optower
