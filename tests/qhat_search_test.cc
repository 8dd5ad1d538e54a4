// q̂'s feature crosses (TwoTowerConfig::context_degree) and the held-out search over q̂ fits
// (core/learning/reward_model_choice.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "core/learning/policy_learner.h"
#include "core/learning/reward_model_choice.h"
#include "core/model/two_tower_config.h"

namespace optower {
namespace {

using ::testing::HasSubstr;

TEST(QhatSearchTest, CrossCountIsTheNumberOfMonomials) {
  EXPECT_EQ(ContextCrossCount(5, 1), 0);
  EXPECT_EQ(ContextCrossCount(5, 2), 15);       // C(6, 2)
  EXPECT_EQ(ContextCrossCount(5, 3), 15 + 35);  // + C(7, 3)
  EXPECT_EQ(ContextCrossCount(0, 3), 0);
  EXPECT_EQ(ContextCrossCount(100, 3), kMaxCrossFeatures + 1);  // saturates
}

TEST(QhatSearchTest, ConfigTextKeepsTheDegreeAndChecksIt) {
  TwoTowerConfig c;
  c.dim_context = 5;
  c.dim_item = 3;
  EXPECT_THAT(TwoTowerConfigToText(c), ::testing::Not(HasSubstr("context_degree")));  // readable by old binaries
  c.context_degree = 3;
  auto back = TwoTowerConfigFromText(TwoTowerConfigToText(c), "config.txt");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->context_degree, 3);
  c.context_degree = 4;
  EXPECT_THAT(ValidateTwoTowerConfig(c).message(), HasSubstr("context_degree=4"));
  c.context_degree = 3;
  c.dim_context = 100;  // 171,700 + 5,050 monomials
  EXPECT_THAT(ValidateTwoTowerConfig(c).message(), HasSubstr("cross features"));
}

// Two one-hot items whose rewards depend on x0·x1 with opposite signs: no function linear in x
// separates them, the degree-2 crosses do exactly.
void InteractionData(int64_t n, uint64_t seed, BanditLog* log, ItemCatalog* items) {
  items->dim_features = 2;
  items->ids = {10, 11};
  items->features = {1, 0, 0, 1};
  log->dim_context = 2;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> uniform;
  for (int64_t i = 0; i < n; ++i) {
    const float x0 = normal(rng), x1 = normal(rng);
    const int64_t a = uniform(rng) < 0.5f ? 0 : 1;
    const float logit = (a == 0 ? 3.0f : -3.0f) * x0 * x1;
    log->contexts.insert(log->contexts.end(), {x0, x1});
    log->actions.push_back(a);
    log->rewards.push_back(uniform(rng) < 1.0f / (1.0f + std::exp(-logit)) ? 1.0f : 0.0f);
    log->pscores.push_back(0.5f);
  }
}

// The search keeps the degree-2 fit: its held-out log-loss is lower than the linear fit's by many
// paired standard errors (the linear q̂ is near 0.69 nats, the best constant; the crossed one near
// the data's ≈ 0.45), so float differences between CPUs cannot flip the choice. And the DM policy
// of the chosen q̂ picks the right item for most contexts, which a linear q̂ cannot (≈ 50 %).
TEST(QhatSearchTest, KeepsCrossesWhenTheRewardNeedsThem) {
  BanditLog log;
  ItemCatalog items;
  InteractionData(3000, 1, &log, &items);
  RewardModelOptions rm;
  rm.hidden = {};
  rm.embedding_dim = 4;
  rm.threads = 1;
  rm.learning_rate = 1e-2;
  QhatSearch search;
  search.context_degrees = {1, 2};
  auto qhat = FitQhat(log, items, rm, search, nullptr);
  ASSERT_TRUE(qhat.ok()) << qhat.status();
  EXPECT_EQ(qhat->config().context_degree, 2);
  // Saved and loaded, it keeps the crosses.
  const std::string dir = ::testing::TempDir() + "/crossed_qhat";
  ASSERT_TRUE(qhat->Save(dir).ok());
  auto loaded = TwoTowerModel::Load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config().context_degree, 2);
  const float probes[] = {1.0f, 1.0f, 1.0f, -1.0f, -1.5f, -1.0f, 0.8f, -1.2f};
  auto scores = loaded->ActionProbabilities(probes, 4, items);
  ASSERT_TRUE(scores.ok()) << scores.status();
  for (int i = 0; i < 4; ++i) {
    const bool same_sign = probes[2 * i] * probes[2 * i + 1] > 0;  // item 0 is better
    EXPECT_EQ(scores->data[2 * i] > scores->data[2 * i + 1], same_sign) << "probe " << i;
  }
}

TEST(QhatSearchTest, RefusesBadCandidates) {
  QhatSearch s;
  s.context_degrees = {1, 4};
  EXPECT_THAT(s.Validate().message(), HasSubstr("context_degrees: 4"));
  s.context_degrees = {};
  s.l2_per_row = {-1};
  EXPECT_THAT(s.Validate().message(), HasSubstr("l2_per_row: -1"));
  s.l2_per_row = {};
  s.selection_z = -1;
  EXPECT_THAT(s.Validate().message(), HasSubstr("selection_z: -1"));
  PolicyLearnerOptions o;
  o.qhat_search.context_degrees = {0};
  EXPECT_THAT(o.Validate().message(), HasSubstr("context_degrees: 0"));
}

}  // namespace
}  // namespace optower
