#include "core/synthetic/synthetic_env.h"
#include "tests/testing/paths.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/synthetic/policy_value.h"

namespace optower {
namespace {

std::unique_ptr<SyntheticBandit> MakeEnv(const SyntheticOptions& options) {
  auto env = SyntheticBandit::Create(options);
  EXPECT_TRUE(env.ok()) << env.status();
  return env.ok() ? std::move(env).value() : nullptr;
}

double Mean(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double SampleSd(const std::vector<double>& v) {
  const double m = Mean(v);
  double s = 0.0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

double Logit(double p) { return std::log(p / (1.0 - p)); }

// ---------------------------------------------------------------------------------------------
// 1. Fidelity against OBP's own generator statistics (shared/obp/generator_stats.csv).

std::string SharedDir() {
  return testutil::SharedDir();
}

// setting name -> column name -> value, from generator_stats.csv.
std::map<std::string, std::map<std::string, std::string>> ReadGeneratorStats() {
  std::map<std::string, std::map<std::string, std::string>> rows;
  std::ifstream in(SharedDir() + "/obp/generator_stats.csv");
  std::string line;
  std::vector<std::string> header;
  auto split = [](const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string cell;
    while (std::getline(ss, cell, ',')) out.push_back(cell);
    return out;
  };
  if (!std::getline(in, line)) return rows;
  header = split(line);
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> cells = split(line);
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    rows[row["setting"]] = row;
  }
  return rows;
}

class ObpFidelityTest : public ::testing::TestWithParam<std::string> {};

// Our generator draws its own coefficients, contexts and actions, so agreement with OBP is in
// distribution: over S seeds the mean of each ground-truth value must match OBP's mean over its 30
// seeds. Most of the spread across seeds comes from the coefficients (OBP's sd column); the
// difference of two independent means of 30 seeds each has sd ≈ sd·sqrt(1/30 + 1/S), and we allow 4
// of those (a false alarm has probability ~6e-5 per comparison under normality; the five settings ×
// four values stay below 1e-3 in all). The reward rate differs from V(pi_b) by binomial noise of sd
// <= 0.5/sqrt(rounds) per seed, so its spread is sqrt(behavior_sd² + 0.25/rounds).
// The spread itself is checked too, for the behaviour and uniform values (both near-symmetric in
// the interior of (0, 1)): the sample sd of 30 near-normal values has relative sd ≈ 1/sqrt(2·29) ≈
// 13%, the ratio of two such sds ≈ 19% (0.19 in log), so a ratio outside [0.5, 2] (> 3.6 of those)
// means a wrong model. Not for the optimal value: it piles up near 1 with a long left tail, and its
// sample sd over 30 seeds is too unstable to test (from one law, 400 seeds: 0.015; two 30-seed
// samples gave 0.009 and 0.021).
TEST_P(ObpFidelityTest, GroundTruthValuesMatchObpAcrossSeeds) {
  const auto table = ReadGeneratorStats();
  ASSERT_FALSE(table.empty()) << "cannot read " << SharedDir() << "/obp/generator_stats.csv";
  auto it = table.find(GetParam());
  ASSERT_NE(it, table.end()) << "no row " << GetParam();
  const auto& row = it->second;
  auto num = [&](const std::string& col) { return std::stod(row.at(col)); };

  SyntheticOptions options;
  options.n_actions = static_cast<int64_t>(num("n_actions"));
  options.dim_context = static_cast<int64_t>(num("dim_context"));
  options.dim_action_context = row.at("action_context") == "normal5" ? 5 : 0;
  options.reward_type = RewardType::kLogistic;
  auto behavior = ParseBehaviorType(row.at("behavior"));
  ASSERT_TRUE(behavior.ok()) << behavior.status();
  options.behavior = *behavior;
  options.beta = num("beta");
  const int64_t rounds = static_cast<int64_t>(num("rounds"));
  constexpr int kSeeds = 30;

  std::vector<double> behavior_v, optimal_v, uniform_v, reward_rate;
  for (int seed = 0; seed < kSeeds; ++seed) {
    options.seed = static_cast<uint64_t>(seed);
    auto env = MakeEnv(options);
    ASSERT_NE(env, nullptr);
    SyntheticRounds batch = env->ObtainBatch(rounds);
    auto v = TruePolicyValue(batch.behavior_policy, batch.expected_reward);
    ASSERT_TRUE(v.ok()) << v.status();
    behavior_v.push_back(*v);
    optimal_v.push_back(OptimalPolicyValue(batch.expected_reward));
    uniform_v.push_back(UniformPolicyValue(batch.expected_reward));
    double r = 0.0;
    for (float x : batch.log.rewards) r += x;
    reward_rate.push_back(r / static_cast<double>(rounds));
  }

  const double obp_seeds = num("seeds");
  const double se_factor = std::sqrt(1.0 / obp_seeds + 1.0 / kSeeds);
  struct Check {
    const char* name;
    const std::vector<double>& ours;
    double obp_mean;
    double obp_sd;
  };
  const double reward_sd = std::sqrt(num("behavior_sd") * num("behavior_sd") + 0.25 / rounds);
  const Check checks[] = {
      {"behavior", behavior_v, num("behavior_mean"), num("behavior_sd")},
      {"optimal", optimal_v, num("optimal_mean"), num("optimal_sd")},
      {"uniform", uniform_v, num("uniform_mean"), num("uniform_sd")},
      {"reward_rate", reward_rate, num("reward_rate_mean"), reward_sd},
  };
  for (const Check& c : checks) {
    const double mean = Mean(c.ours), sd = SampleSd(c.ours);
    const double tol = 4.0 * c.obp_sd * se_factor;
    std::printf(
        "[fidelity] %-26s %-11s ours %.4f (sd %.4f)  obp %.4f (sd %.4f)  |diff| %.4f tol %.4f\n",
        GetParam().c_str(), c.name, mean, sd, c.obp_mean, c.obp_sd, std::fabs(mean - c.obp_mean),
        tol);
    EXPECT_NEAR(mean, c.obp_mean, tol) << c.name;
    if (std::string(c.name) == "behavior" || std::string(c.name) == "uniform") {
      EXPECT_GT(sd / c.obp_sd, 0.5) << c.name;
      EXPECT_LT(sd / c.obp_sd, 2.0) << c.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllObpSettings, ObpFidelityTest,
                         ::testing::Values("A10_onehot_linear_b-3", "A100_onehot_linear_b-3",
                                           "A100_onehot_expected_b1", "A100_normal5_linear_b1",
                                           "A1000_onehot_linear_b-3"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = 'm';
                           return name;
                         });

// ---------------------------------------------------------------------------------------------
// 2. Logged data invariants and determinism.

TEST(SyntheticBanditTest, LoggedBatchIsConsistentWithItsGroundTruth) {
  for (BehaviorType behavior :
       {BehaviorType::kExpected, BehaviorType::kLinear, BehaviorType::kPolynomial}) {
    SyntheticOptions options;
    options.n_actions = 7;
    options.dim_context = 3;
    options.behavior = behavior;
    options.beta = 2.0;
    options.seed = 11;
    auto env = MakeEnv(options);
    ASSERT_NE(env, nullptr);
    const int64_t n = 500;
    SyntheticRounds b = env->ObtainBatch(n);
    ASSERT_EQ(b.log.size(), n);
    ASSERT_EQ(b.log.dim_context, 3);
    ASSERT_EQ(b.log.contexts.size(), static_cast<size_t>(n * 3));
    ASSERT_EQ(b.log.rewards.size(), static_cast<size_t>(n));
    ASSERT_EQ(b.log.pscores.size(), static_cast<size_t>(n));
    ASSERT_EQ(b.expected_reward.rows, n);
    ASSERT_EQ(b.expected_reward.cols, 7);
    ASSERT_EQ(b.behavior_policy.rows, n);
    ASSERT_EQ(b.behavior_policy.cols, 7);
    for (int64_t i = 0; i < n; ++i) {
      double sum = 0.0;
      for (int64_t a = 0; a < 7; ++a) {
        const double p = b.behavior_policy.at(i, a);
        EXPECT_GT(p, 0.0);
        sum += p;
        EXPECT_GT(b.expected_reward.at(i, a), 0.0);
        EXPECT_LT(b.expected_reward.at(i, a), 1.0);
      }
      EXPECT_NEAR(sum, 1.0, 1e-12) << BehaviorTypeName(behavior) << " row " << i;
      const int64_t a = b.log.actions[i];
      ASSERT_GE(a, 0);
      ASSERT_LT(a, 7);
      // The logged pscore is the float cast of this very double: exact by construction.
      EXPECT_EQ(b.log.pscores[i], static_cast<float>(b.behavior_policy.at(i, a)));
      EXPECT_TRUE(b.log.rewards[i] == 0.0f || b.log.rewards[i] == 1.0f);
    }
  }
}

TEST(SyntheticBanditTest, ExpectedBehaviorIsSoftmaxOfBetaTimesQ) {
  SyntheticOptions options;
  options.n_actions = 5;
  options.beta = 3.0;
  options.seed = 4;
  auto env = MakeEnv(options);
  ASSERT_NE(env, nullptr);
  SyntheticRounds b = env->ObtainBatch(50);
  for (int64_t i = 0; i < 50; ++i)
    for (int64_t a = 1; a < 5; ++a)
      EXPECT_NEAR(std::log(b.behavior_policy.at(i, a) / b.behavior_policy.at(i, 0)),
                  3.0 * (b.expected_reward.at(i, a) - b.expected_reward.at(i, 0)), 1e-9);
}

TEST(SyntheticBanditTest, BetaZeroGivesUniformBehavior) {
  for (BehaviorType behavior : {BehaviorType::kExpected, BehaviorType::kLinear}) {
    SyntheticOptions options;
    options.n_actions = 6;
    options.behavior = behavior;
    options.beta = 0.0;
    auto env = MakeEnv(options);
    ASSERT_NE(env, nullptr);
    SyntheticRounds b = env->ObtainBatch(100);
    // softmax(0·logits) = exp(0) / (6·exp(0)) = 1/6 in IEEE arithmetic on any CPU (exp(0) = 1 and
    // the sum 6 are exact, the division is correctly rounded).
    for (double p : b.behavior_policy.data) EXPECT_DOUBLE_EQ(p, 1.0 / 6.0);
    for (float p : b.log.pscores) EXPECT_FLOAT_EQ(p, 1.0f / 6.0f);
  }
}

TEST(SyntheticBanditTest, NegativeBetaLogsWorseThanPositiveBeta) {
  // With behaviour = softmax(beta q), beta > 0 must favour high-q actions and beta < 0 low-q ones.
  SyntheticOptions options;
  options.n_actions = 20;
  options.seed = 9;
  options.beta = 5.0;
  auto good = MakeEnv(options);
  options.beta = -5.0;
  auto bad = MakeEnv(options);
  ASSERT_NE(good, nullptr);
  ASSERT_NE(bad, nullptr);
  SyntheticRounds g = good->ObtainBatch(1000), b = bad->ObtainBatch(1000);
  const double vg = *TruePolicyValue(g.behavior_policy, g.expected_reward);
  const double vb = *TruePolicyValue(b.behavior_policy, b.expected_reward);
  EXPECT_GT(vg, UniformPolicyValue(g.expected_reward));
  EXPECT_LT(vb, UniformPolicyValue(b.expected_reward));
}

TEST(SyntheticBanditTest, SameSeedGivesIdenticalBatchesAndOtherSeedsDiffer) {
  SyntheticOptions options;
  options.n_actions = 8;
  options.behavior = BehaviorType::kLinear;
  options.seed = 123;
  auto a = MakeEnv(options), b = MakeEnv(options);
  options.seed = 124;
  auto c = MakeEnv(options);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  SyntheticRounds ra = a->ObtainBatch(200), rb = b->ObtainBatch(200), rc = c->ObtainBatch(200);
  // Exact: the same computation on the same inputs and shapes, in the same process.
  EXPECT_EQ(ra.log.contexts, rb.log.contexts);
  EXPECT_EQ(ra.log.actions, rb.log.actions);
  EXPECT_EQ(ra.log.rewards, rb.log.rewards);
  EXPECT_EQ(ra.log.pscores, rb.log.pscores);
  EXPECT_EQ(ra.expected_reward.data, rb.expected_reward.data);
  EXPECT_EQ(ra.behavior_policy.data, rb.behavior_policy.data);
  EXPECT_NE(ra.log.contexts, rc.log.contexts);
  EXPECT_NE(ra.expected_reward.data, rc.expected_reward.data);
  EXPECT_NE(ra.log.actions, rc.log.actions);
  // A second batch from the same environment is a fresh draw.
  SyntheticRounds ra2 = a->ObtainBatch(200);
  EXPECT_NE(ra.log.contexts, ra2.log.contexts);
}

TEST(SyntheticBanditTest, OneHotActionContextsAreTheIdentityCatalog) {
  SyntheticOptions options;
  options.n_actions = 4;
  auto env = MakeEnv(options);
  ASSERT_NE(env, nullptr);
  ASSERT_EQ(env->action_context().rows, 4);
  ASSERT_EQ(env->action_context().cols, 4);
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 4; ++c) EXPECT_EQ(env->action_context().at(r, c), r == c ? 1.0 : 0.0);
  ItemCatalog items = env->Items();
  EXPECT_EQ(items.size(), 4);
  EXPECT_EQ(items.dim_features, 4);
  EXPECT_EQ(items.ids, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(items.feature(2)[2], 1.0f);
  EXPECT_EQ(items.feature(2)[1], 0.0f);
}

TEST(SyntheticBanditTest, GivenActionContextIsUsedAsIs) {
  SyntheticOptions options;
  options.n_actions = 3;
  options.action_context = DenseMatrix(3, 2);
  options.action_context.data = {0.5, -1.0, 2.0, 0.0, -0.25, 1.5};
  auto env = MakeEnv(options);
  ASSERT_NE(env, nullptr);
  EXPECT_EQ(env->action_context().data, options.action_context.data);
  ItemCatalog items = env->Items();
  EXPECT_EQ(items.dim_features, 2);
  EXPECT_EQ(items.feature(2)[1], 1.5f);
  SyntheticRounds b = env->ObtainBatch(100);
  for (double q : b.expected_reward.data) {
    EXPECT_GT(q, 0.0);
    EXPECT_LT(q, 1.0);
  }
}

TEST(SyntheticBanditTest, NormalActionContextsHaveTheRequestedDims) {
  SyntheticOptions options;
  options.n_actions = 50;
  options.dim_action_context = 5;
  options.seed = 2;
  auto env = MakeEnv(options);
  ASSERT_NE(env, nullptr);
  ASSERT_EQ(env->action_context().rows, 50);
  ASSERT_EQ(env->action_context().cols, 5);
  // 250 N(0,1) draws: sample mean within 4·1/sqrt(250) ≈ 0.25 of 0, variance within 0.4 of 1
  // (sd of the sample variance ≈ sqrt(2/250) ≈ 0.09).
  double s = 0.0, s2 = 0.0;
  for (double v : env->action_context().data) {
    s += v;
    s2 += v * v;
  }
  EXPECT_NEAR(s / 250.0, 0.0, 0.25);
  EXPECT_NEAR(s2 / 250.0, 1.0, 0.4);
}

// ---------------------------------------------------------------------------------------------
// 3. Streaming mode.

TEST(SyntheticBanditTest, StreamingModeNeedsFixStatistics) {
  SyntheticOptions options;
  auto env = MakeEnv(options);
  ASSERT_NE(env, nullptr);
  EXPECT_FALSE(env->streaming());
  std::vector<float> x = env->SampleContexts(3);
  EXPECT_EQ(env->ExpectedReward(x).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(env->BehaviorPolicy(x).status().code(), absl::StatusCode::kFailedPrecondition);
  env->FixStatistics(1000);
  EXPECT_TRUE(env->streaming());
  x.push_back(0.5f);  // no longer a multiple of dim_context = 5
  auto bad = env->ExpectedReward(x);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("contexts.size()=16"), std::string::npos) << bad.status();
}

// After FixStatistics(100k), scoring a 10k batch's own contexts must reproduce that batch's q and
// pi_b up to the sampling noise of the batch statistics (n = 10,000 i.i.d. contexts; the
// reference's own noise is √10 smaller). Reward: the shift mean(f)/std(f) moves by ≈ Δmean/std +
// mean·Δstd/std², each O(1/√n) = 0.01 of a unit-scale logit at 1 sd, so |Δq| <= |Δshift|/4 ≈ 0.0025
// per sd; we allow 0.01 (4 sd). Behaviour: the standardised logit (g − mean)/std moves by Δmean/std
// + z·Δstd/std with |z| up to ~4, i.e. up to ~0.05 per sd, and log pi differs by at most twice
// that; we allow 0.1 for beta = 1 (log pi of the kExpected behaviour moves by beta·Δq, far less).
TEST(SyntheticBanditTest, StreamingScoresMatchBatchScoresUpToStatisticsNoise) {
  for (BehaviorType behavior : {BehaviorType::kLinear, BehaviorType::kExpected}) {
    SyntheticOptions options;
    options.n_actions = 30;
    options.behavior = behavior;
    options.beta = 1.0;
    options.seed = 5;
    auto env = MakeEnv(options);
    ASSERT_NE(env, nullptr);
    SyntheticRounds b = env->ObtainBatch(10000);
    env->FixStatistics(100000);
    auto q = env->ExpectedReward(b.log.contexts);
    ASSERT_TRUE(q.ok()) << q.status();
    auto pi = env->BehaviorPolicy(b.log.contexts);
    ASSERT_TRUE(pi.ok()) << pi.status();
    ASSERT_EQ(q->rows, 10000);
    ASSERT_EQ(q->cols, 30);
    ASSERT_EQ(pi->rows, 10000);
    double max_dq = 0.0, max_dlogpi = 0.0, mean_abs_dq = 0.0;
    for (int64_t i = 0; i < q->rows; ++i) {
      double sum = 0.0;
      for (int64_t a = 0; a < q->cols; ++a) {
        const double dq = std::fabs(q->at(i, a) - b.expected_reward.at(i, a));
        max_dq = std::max(max_dq, dq);
        mean_abs_dq += dq;
        max_dlogpi = std::max(
            max_dlogpi, std::fabs(std::log(pi->at(i, a)) - std::log(b.behavior_policy.at(i, a))));
        sum += pi->at(i, a);
      }
      EXPECT_NEAR(sum, 1.0, 1e-12);
    }
    mean_abs_dq /= static_cast<double>(q->data.size());
    std::printf("[streaming] %s: max|dq| %.5f mean|dq| %.5f max|dlog pi| %.5f\n",
                BehaviorTypeName(behavior).c_str(), max_dq, mean_abs_dq, max_dlogpi);
    EXPECT_LT(max_dq, 0.01);
    EXPECT_LT(max_dlogpi, 0.1);
    // Not identical: the batch statistics really are this batch's.
    EXPECT_GT(max_dq, 0.0);
  }
}

TEST(SyntheticBanditTest, StreamingScoresOfAContextDoNotDependOnItsBatch) {
  SyntheticOptions options;
  options.n_actions = 12;
  options.behavior = BehaviorType::kPolynomial;
  options.reward_type = RewardType::kLogisticPolynomial;
  options.seed = 8;
  auto env = MakeEnv(options);
  ASSERT_NE(env, nullptr);
  env->FixStatistics(20000);
  std::vector<float> x = env->SampleContexts(40);
  auto q_all = env->ExpectedReward(x);
  auto pi_all = env->BehaviorPolicy(x);
  ASSERT_TRUE(q_all.ok() && pi_all.ok());
  std::vector<float> one(x.begin() + 7 * 5, x.begin() + 8 * 5);
  auto q_one = env->ExpectedReward(one);
  auto pi_one = env->BehaviorPolicy(one);
  ASSERT_TRUE(q_one.ok() && pi_one.ok());
  // Not bit-identical: one context and 40 contexts go through different BLAS kernels (GEMV-like vs
  // GEMM; AVX2 vs AVX-512) and ATen's exp has scalar and vector paths. The logits are float64 dot
  // products of D_k = 56 degree-3 features of |x| <= ~4 with O(1) weights, each rounded within
  // D_k·2^-53·Σ|f_k w_k| <= 56·1.1e-16·4e3 ≈ 3e-11; ×3 (the degree) and the sigmoid's slope 1/4
  // keep q within 1e-10; pi's logits are the same kind of sum scaled by 3/std(g) with std(g) = O(1),
  // and softmax moves by at most 2β·|Δlogit| (β = 1 here), so pi stays within ~1e-10 too. 1e-9 is
  // above that and far below what a dependence on the batch would cause (batch statistics move q
  // by ~1e-3, see StreamingScoresMatchBatchScoresUpToStatisticsNoise).
  constexpr double kRounding = 1e-9;
  for (int64_t a = 0; a < 12; ++a) {
    EXPECT_NEAR(q_one->at(0, a), q_all->at(7, a), kRounding);
    EXPECT_NEAR(pi_one->at(0, a), pi_all->at(7, a), kRounding);
  }
  // Same seed -> same fixed statistics -> same scores from a second environment: the same
  // computation on the same 40 contexts in the same process, hence bit-identical.
  auto env2 = MakeEnv(options);
  ASSERT_NE(env2, nullptr);
  env2->FixStatistics(20000);
  auto q2 = env2->ExpectedReward(x);
  ASSERT_TRUE(q2.ok());
  EXPECT_EQ(q2->data, q_all->data);
}

TEST(SyntheticBanditTest, SampleRewardIsBernoulli) {
  SyntheticOptions options;
  auto env = MakeEnv(options);
  ASSERT_NE(env, nullptr);
  EXPECT_EQ(env->SampleReward(0.0), 0.0f);
  EXPECT_EQ(env->SampleReward(1.0), 1.0f);
  // 20,000 draws of Bernoulli(0.3): sd of the mean = sqrt(0.21/20000) ≈ 0.0032; 4 sd ≈ 0.013.
  double s = 0.0;
  for (int i = 0; i < 20000; ++i) s += env->SampleReward(0.3);
  EXPECT_NEAR(s / 20000.0, 0.3, 0.013);
}

// ---------------------------------------------------------------------------------------------
// 4. Polynomial and sparse reward functions.

// The logged reward rate estimates V(pi_b) of the batch: given the contexts, r_i are independent
// with E[r_i | x_i] = Σ_a pi_b(a|x_i) q(x_i, a), so mean(r) − V(pi_b) has sd <= 0.5/sqrt(n) =
// 0.0035 at n = 20,000; we allow 4 sd = 0.014. q is a probability. Like OBP's (float64 numpy), it
// is exactly 0 or 1 where the ×3 / ×4 logits of cubic / quartic features pass ±37 (sigmoid rounds
// there), so the check is q ∈ [0, 1] with a real share of entries strictly inside.
void ExpectRewardRateMatchesBehaviorValue(const SyntheticOptions& options) {
  auto env = MakeEnv(options);
  ASSERT_NE(env, nullptr);
  const int64_t n = 20000;
  SyntheticRounds b = env->ObtainBatch(n);
  double min_q = 1.0, max_q = 0.0;
  int64_t interior = 0;
  for (double q : b.expected_reward.data) {
    ASSERT_GE(q, 0.0);
    ASSERT_LE(q, 1.0);
    min_q = std::min(min_q, q);
    max_q = std::max(max_q, q);
    if (q > 0.0 && q < 1.0) ++interior;
  }
  const double interior_share =
      static_cast<double>(interior) / static_cast<double>(b.expected_reward.data.size());
  EXPECT_GT(interior_share, 0.25);
  EXPECT_GT(max_q - min_q, 0.1) << "q is (nearly) constant";
  const double v = *TruePolicyValue(b.behavior_policy, b.expected_reward);
  double r = 0.0;
  for (float x : b.log.rewards) r += x;
  r /= static_cast<double>(n);
  std::printf(
      "[reward] %s/%s A%lld E%lld: V(pi_b) %.4f reward rate %.4f optimal %.4f "
      "q interior %.3f\n",
      RewardTypeName(options.reward_type).c_str(), BehaviorTypeName(options.behavior).c_str(),
      static_cast<long long>(options.n_actions), static_cast<long long>(env->action_context().cols),
      v, r, OptimalPolicyValue(b.expected_reward), interior_share);
  EXPECT_NEAR(r, v, 0.014);
}

TEST(SyntheticBanditTest, PolynomialRewardGivesProbabilitiesAndMatchingRewardRate) {
  SyntheticOptions options;
  options.n_actions = 10;
  options.reward_type = RewardType::kLogisticPolynomial;
  options.behavior = BehaviorType::kPolynomial;
  options.seed = 21;
  ExpectRewardRateMatchesBehaviorValue(options);
  options.dim_action_context = 5;
  ExpectRewardRateMatchesBehaviorValue(options);
}

TEST(SyntheticBanditTest, SparseRewardGivesProbabilitiesAndMatchingRewardRate) {
  SyntheticOptions options;
  options.n_actions = 10;
  options.reward_type = RewardType::kLogisticSparse;
  options.behavior = BehaviorType::kExpected;
  options.beta = 2.0;
  options.seed = 22;
  ExpectRewardRateMatchesBehaviorValue(options);
  options.dim_action_context = 5;
  ExpectRewardRateMatchesBehaviorValue(options);
  // One-hot with many actions: C(504, 4) ≈ 2.7e9 polynomial action dims, never materialised.
  options.dim_action_context = 0;
  options.n_actions = 500;
  ExpectRewardRateMatchesBehaviorValue(options);
}

TEST(SyntheticBanditTest, RewardTypesGiveDifferentRewardFunctions) {
  SyntheticOptions options;
  options.n_actions = 10;
  options.seed = 3;
  std::vector<std::vector<double>> qs;
  for (RewardType t :
       {RewardType::kLogistic, RewardType::kLogisticPolynomial, RewardType::kLogisticSparse}) {
    options.reward_type = t;
    auto env = MakeEnv(options);
    ASSERT_NE(env, nullptr);
    qs.push_back(env->ObtainBatch(100).expected_reward.data);
  }
  EXPECT_NE(qs[0], qs[1]);
  EXPECT_NE(qs[0], qs[2]);
  EXPECT_NE(qs[1], qs[2]);
}

// The logistic (degree 1) reward logit is affine in x for each action: logit(q)(x, a) =
// θᵀ[1, x] + const_a. A degree-3 one is not. Checked on one action along a line through contexts.
TEST(SyntheticBanditTest, LogisticRewardLogitIsAffineInContextPolynomialIsNot) {
  auto curvature = [](RewardType t) {
    SyntheticOptions options;
    options.n_actions = 3;
    options.dim_context = 2;
    options.reward_type = t;
    options.seed = 17;
    auto env = MakeEnv(options);
    env->FixStatistics(10000);
    std::vector<float> x;
    for (float s : {-1.0f, 0.0f, 1.0f}) {
      x.push_back(s);
      x.push_back(0.5f * s);
    }
    DenseMatrix q = *env->ExpectedReward(x);
    // Second difference of the logit along the line.
    return Logit(q.at(0, 1)) - 2.0 * Logit(q.at(1, 1)) + Logit(q.at(2, 1));
  };
  EXPECT_NEAR(curvature(RewardType::kLogistic), 0.0, 1e-9);
  EXPECT_GT(std::fabs(curvature(RewardType::kLogisticPolynomial)), 1e-3);
}

// ---------------------------------------------------------------------------------------------
// 5. Names and validation.

TEST(SyntheticBanditTest, TypeNamesRoundTrip) {
  for (RewardType t :
       {RewardType::kLogistic, RewardType::kLogisticPolynomial, RewardType::kLogisticSparse}) {
    auto parsed = ParseRewardType(RewardTypeName(t));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, t);
  }
  for (BehaviorType t :
       {BehaviorType::kExpected, BehaviorType::kLinear, BehaviorType::kPolynomial}) {
    auto parsed = ParseBehaviorType(BehaviorTypeName(t));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_EQ(RewardTypeName(RewardType::kLogisticSparse), "logistic-sparse");
  EXPECT_EQ(BehaviorTypeName(BehaviorType::kLinear), "linear");
}

TEST(SyntheticBanditTest, UnknownTypeNamesAreRejectedNamingTheValue) {
  auto r = ParseRewardType("gaussian");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("gaussian"), std::string::npos) << r.status();
  auto b = ParseBehaviorType("Linear");
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(b.status().message().find("Linear"), std::string::npos) << b.status();
}

TEST(SyntheticBanditTest, CreateRejectsInvalidOptions) {
  SyntheticOptions options;
  options.n_actions = 1;
  auto one = SyntheticBandit::Create(options);
  EXPECT_EQ(one.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(one.status().message().find("n_actions=1"), std::string::npos) << one.status();

  options = SyntheticOptions();
  options.dim_context = 0;
  auto no_context = SyntheticBandit::Create(options);
  EXPECT_EQ(no_context.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(no_context.status().message().find("dim_context=0"), std::string::npos);

  options = SyntheticOptions();
  options.n_actions = 4;
  options.action_context = DenseMatrix(3, 2);
  auto rows = SyntheticBandit::Create(options);
  EXPECT_EQ(rows.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(rows.status().message().find("3 rows"), std::string::npos) << rows.status();

  options = SyntheticOptions();
  options.beta = std::nan("");
  EXPECT_EQ(SyntheticBandit::Create(options).status().code(), absl::StatusCode::kInvalidArgument);

  options = SyntheticOptions();
  options.dim_action_context = -2;
  EXPECT_EQ(SyntheticBandit::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace optower
