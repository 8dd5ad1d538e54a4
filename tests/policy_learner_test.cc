// Learning on OBP synthetic data with known ground truth.
#include "core/learning/policy_learner.h"

#include <gtest/gtest.h>

#include "core/learning/policy_selection.h"
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

// A DR job that starts from another policy (the trainer's warm start from the served towers) has the
// DM policy softmax(q̂/τ) among its candidates, so it can do no worse than DM by the validation
// estimate. Here the start is random towers and no DR step is taken (epochs = 0): before the DM
// candidate existed the job returned the random start unchanged (best_epoch 0, value ≈ uniform);
// now the DM policy wins the paired comparison on the validation split (20 actions, 4000 rounds:
// its gain over a random policy is many standard errors) and is returned.
TEST(PolicyLearnerTest, DmPolicyIsACandidateWhenStartingFromAnotherPolicy) {
  SyntheticOptions so;
  so.n_actions = 20;
  so.dim_context = 5;
  so.behavior = BehaviorType::kLinear;
  so.beta = -3;
  so.seed = 13;
  auto env = SyntheticBandit::Create(so);
  ASSERT_TRUE(env.ok()) << env.status();
  const ItemCatalog items = (*env)->Items();
  const SyntheticRounds test = (*env)->ObtainBatch(3000);
  const SyntheticRounds train = (*env)->ObtainBatch(4000);
  auto start = TwoTowerModel::Create(
      MakeTowerConfig(so.dim_context, items, /*hidden=*/{}, /*embedding_dim=*/8, "relu",
                      /*item_id_embedding=*/false, /*temperature=*/0.05),
      items.ids, /*seed=*/3);
  ASSERT_TRUE(start.ok()) << start.status();
  PolicyLearnerOptions o;
  o.hidden = {};
  o.reward_model.hidden = {};
  o.epochs = 0;
  o.threads = 1;
  o.init = &*start;
  auto result = TrainPolicy(train.log, items, o);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->metrics.best_epoch, kDmCandidate);
  EXPECT_GT(result->metrics.validation_dr_best, result->metrics.validation_dr_initial);
  EXPECT_DOUBLE_EQ(result->policy.config().temperature, 0.05);  // the start's temperature
  auto value = [&](const TwoTowerModel& m) {
    auto pi = m.ActionProbabilities(test.log.contexts.data(), test.log.size(), items);
    EXPECT_TRUE(pi.ok()) << pi.status();
    return *TruePolicyValue(*pi, test.expected_reward);
  };
  const double optimal = OptimalPolicyValue(test.expected_reward);
  const double v_start = value(*start), v_new = value(result->policy);
  // The DM policy of a linear q̂ fitted on 3200 rows of this well-specified setting closes most of
  // the gap from a random policy to the optimum (DrPolicyBeatsBehaviourByHalfTheGap: 0.8-0.9 of
  // the behaviour's gap at this size); a learner that returned the random start would close ≈ 0.
  EXPECT_GT(v_new, v_start + 0.5 * (optimal - v_start))
      << "start " << v_start << " learned " << v_new << " optimal " << optimal;
  // With the DM candidate off (ipw keeps the plain rule) the start comes back unchanged.
  o.objective = Objective::kIpw;
  auto ipw = TrainPolicy(train.log, items, o);
  ASSERT_TRUE(ipw.ok()) << ipw.status();
  EXPECT_EQ(ipw->metrics.best_epoch, 0);
}

}  // namespace
}  // namespace optower
