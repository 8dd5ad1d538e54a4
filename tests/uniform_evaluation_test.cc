// MakeUniformOpeSamples (core/learning/uniform_evaluation.h): target probabilities of the
// uniform-random policy, with and without slate prefixes, and q̂ under it for DR.
#include "core/learning/uniform_evaluation.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/model/reward_model.h"

namespace optower {
namespace {

ItemCatalog FourItems() {
  ItemCatalog items;
  items.dim_features = 1;
  items.ids = {1, 2, 3, 4};
  items.features = {0.f, 1.f, 2.f, 3.f};
  return items;
}

BanditLog SmallLog() {
  BanditLog log;
  log.dim_context = 1;
  for (int i = 0; i < 40; ++i) {
    log.contexts.push_back(static_cast<float>((i / 4) % 5));  // rows 0..3 and 20..23: 0
    log.actions.push_back(i % 4);
    log.rewards.push_back(i % 4 == 3 ? 1.f : 0.f);
    log.pscores.push_back(0.25f);
  }
  return log;
}

TEST(UniformEvaluationTest, TargetIsOneOverTheItemsTheDrawCouldPick) {
  BanditLog log = SmallLog();
  auto s = MakeUniformOpeSamples(nullptr, log, FourItems());
  ASSERT_TRUE(s.ok()) << s.status();
  for (double p : s->target_prob) EXPECT_EQ(p, 0.25);
  EXPECT_TRUE(s->qhat_logged.empty());
  // Slates: row i's earlier items are excluded; row 1 had one earlier item -> 1/3.
  log.prefix_offsets.assign(log.size() + 1, 0);
  log.positions.assign(log.size(), 0);
  for (int64_t i = 2; i <= log.size(); ++i) log.prefix_offsets[i] = 1;
  log.prefix_rows = {0};
  s = MakeUniformOpeSamples(nullptr, log, FourItems());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->target_prob[0], 0.25);
  EXPECT_DOUBLE_EQ(s->target_prob[1], 1.0 / 3);
  log.actions[5] = 4;
  EXPECT_FALSE(MakeUniformOpeSamples(nullptr, log, FourItems()).ok());
}

TEST(UniformEvaluationTest, QhatUnderTargetIsTheMeanOverItems) {
  const BanditLog log = SmallLog();
  const ItemCatalog items = FourItems();
  RewardModelOptions options;
  options.epochs = 2;
  options.threads = 1;
  auto qhat = FitRewardModel(log, items, options);
  ASSERT_TRUE(qhat.ok()) << qhat.status();
  auto s = MakeUniformOpeSamples(&*qhat, log, items);
  ASSERT_TRUE(s.ok()) << s.status();
  // Rows 0..3 share context 0 and log actions 0..3: their q̂(x, a_i) are the four items' q̂ at
  // that context, whose mean is q̂ under the uniform target (up to float rounding in the towers).
  double mean = 0;
  for (int i = 0; i < 4; ++i) mean += s->qhat_logged[i] / 4;
  EXPECT_NEAR(s->qhat_under_target[0], mean, 1e-6);
  EXPECT_NEAR(s->qhat_under_target[20], mean, 1e-6);  // context 0 again
  for (double q : s->qhat_logged) EXPECT_TRUE(q > 0 && q < 1);  // sigmoid link: binary rewards
}

}  // namespace
}  // namespace optower
