// Learning on OBP synthetic data with known ground truth.
#include "core/learning/policy_learner.h"

#include <gtest/gtest.h>

#include "core/synthetic/policy_value.h"
#include "core/synthetic/synthetic_env.h"

namespace optower {
namespace {

struct Outcome {
  double value, behavior, optimal;
};

Outcome TrainAndMeasure(Objective objective, uint64_t seed) {
  SyntheticOptions so;
  so.n_actions = 20;
  so.dim_context = 5;
  so.behavior = BehaviorType::kLinear;
  so.beta = -3;
  so.seed = seed;
  auto env = SyntheticBandit::Create(so);
  EXPECT_TRUE(env.ok()) << env.status();
  const SyntheticRounds test = (*env)->ObtainBatch(3000);
  const SyntheticRounds train = (*env)->ObtainBatch(4000);
  PolicyLearnerOptions o;
  o.objective = objective;
  o.hidden = {};
  o.reward_model.hidden = {};
  o.temperature = 0.02;
  o.epochs = 5;
  o.seed = seed;
  o.threads = 1;
  auto result = TrainPolicy(train.log, (*env)->Items(), o);
  EXPECT_TRUE(result.ok()) << result.status();
  auto pi = result->policy.ActionProbabilities(test.log.contexts.data(), test.log.size(), (*env)->Items());
  EXPECT_TRUE(pi.ok());
  return {*TruePolicyValue(*pi, test.expected_reward),
          *TruePolicyValue(test.behavior_policy, test.expected_reward),
          OptimalPolicyValue(test.expected_reward)};
}

// With 20 actions and 4000 rounds the DR-trained policy closes well over half of the gap between
// the (poor, beta = -3) behaviour policy and the optimal one; OBP's NNPolicyLearner(dr) reaches
// ~0.5-0.9 normalised at comparable sizes (shared/obp/reference.csv, 10 actions). The margin 0.5 is
// far from both the learned value (measured 0.8-0.9 on this seed) and from the behaviour policy (0),
// so neither seed noise nor a small regression trips it while a broken learner does.
TEST(PolicyLearnerTest, DrPolicyBeatsBehaviourByHalfTheGap) {
  const Outcome o = TrainAndMeasure(Objective::kDr, /*seed=*/11);
  const double normalized = NormalizedValue(o.value, o.behavior, o.optimal);
  EXPECT_GT(normalized, 0.5) << "value " << o.value << " behaviour " << o.behavior << " optimal "
                             << o.optimal;
}

// IPS from a random init is weaker than DR (no q̂), but still closes a good part of the gap:
// measured 0.57-0.67 normalised on seeds 11-12 at this size; 0.3 leaves room for seed noise while a
// learner whose gradients vanish (the value stays at the behaviour's, ~uniform here) fails.
TEST(PolicyLearnerTest, IpwPolicyImprovesOnBehaviour) {
  const Outcome o = TrainAndMeasure(Objective::kIpw, /*seed=*/12);
  EXPECT_GT(NormalizedValue(o.value, o.behavior, o.optimal), 0.3)
      << "value " << o.value << " behaviour " << o.behavior;
}

TEST(PolicyLearnerTest, RefusesLogsThatCannotTrainAPolicy) {
  BanditLog log;
  log.dim_context = 1;
  ItemCatalog items;
  items.dim_features = 1;
  items.ids = {0, 1};
  items.features = {0.f, 1.f};
  for (int i = 0; i < 40; ++i) {
    log.contexts.push_back(static_cast<float>(i));
    log.actions.push_back(i % 2);
    log.rewards.push_back(0.f);
    log.pscores.push_back(0.5f);
  }
  auto r = TrainPolicy(log, items, {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("every logged reward equals 0"), std::string::npos) << r.status();
  for (float& p : log.pscores) p = 1.0f;
  for (int i = 0; i < 40; i += 2) log.rewards[i] = 1.f;
  r = TrainPolicy(log, items, {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("deterministic"), std::string::npos) << r.status();
  log.actions.resize(5);
  log.rewards.resize(5);
  log.pscores.resize(5);
  log.contexts.resize(5);
  r = TrainPolicy(log, items, {});
  EXPECT_NE(r.status().message().find("too few"), std::string::npos) << r.status();
}

TEST(PolicyLearnerTest, SavedModelReloadsWithIdenticalProbabilities) {
  SyntheticOptions so;
  so.n_actions = 6;
  so.dim_context = 3;
  so.seed = 4;
  auto env = SyntheticBandit::Create(so);
  const SyntheticRounds train = (*env)->ObtainBatch(500);
  PolicyLearnerOptions o;
  o.epochs = 2;
  o.threads = 1;
  auto result = TrainPolicy(train.log, (*env)->Items(), o);
  ASSERT_TRUE(result.ok()) << result.status();
  const std::string dir = ::testing::TempDir() + "/reload_model";
  ASSERT_TRUE(result->policy.Save(dir).ok());
  auto loaded = TwoTowerModel::Load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto a = result->policy.ActionProbabilities(train.log.contexts.data(), 50, (*env)->Items());
  auto b = loaded->ActionProbabilities(train.log.contexts.data(), 50, (*env)->Items());
  ASSERT_TRUE(a.ok() && b.ok());
  // Exact: the saved weights come back bit for bit and both run the same 50-context batch on the
  // same path; any difference would mean the reload changed the model.
  EXPECT_EQ(a->data, b->data);
}

}  // namespace
}  // namespace optower
