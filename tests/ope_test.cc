// Tests for core/learning/ope.h: exact formulas on a hand-computed example, input validation, and the
// statistical properties (unbiasedness, variance, SE calibration, coverage) on a tiny bandit
// simulator with known q, pi_0 and pi defined below (independent of core/synthetic_env).
#include "core/learning/ope.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace optower {
namespace {

using ::testing::HasSubstr;

constexpr double kExact = 1e-12;
constexpr double kZ95 = 1.9599639845400536;  // Phi^{-1}(0.975), Python statistics.NormalDist
constexpr double kZ90 = 1.6448536269514715;  // Phi^{-1}(0.95)

// ---------------------------------------------------------------------------------------------
// Tiny simulator: contexts are one of kTypes "types" drawn uniformly; kActions actions; Bernoulli
// rewards with known mean q(type, a); known logging policy pi_0 (full support, min 0.1) and target
// policy pi (with zeros, leaning to high q). Max weight pi/pi_0 = 6.
constexpr int kTypes = 8;
constexpr int kActions = 5;

constexpr double kQ[kTypes][kActions] = {
    {0.10, 0.30, 0.50, 0.70, 0.90}, {0.80, 0.20, 0.40, 0.60, 0.30}, {0.50, 0.50, 0.20, 0.90, 0.10},
    {0.25, 0.75, 0.35, 0.45, 0.55}, {0.90, 0.10, 0.60, 0.30, 0.40}, {0.15, 0.65, 0.85, 0.05, 0.35},
    {0.40, 0.40, 0.70, 0.20, 0.60}, {0.60, 0.80, 0.10, 0.50, 0.20}};
constexpr double kPi0[kTypes][kActions] = {
    {0.30, 0.25, 0.20, 0.15, 0.10}, {0.10, 0.30, 0.20, 0.20, 0.20}, {0.20, 0.20, 0.20, 0.20, 0.20},
    {0.15, 0.15, 0.30, 0.30, 0.10}, {0.25, 0.10, 0.25, 0.15, 0.25}, {0.10, 0.20, 0.10, 0.40, 0.20},
    {0.20, 0.30, 0.10, 0.30, 0.10}, {0.35, 0.10, 0.25, 0.10, 0.20}};
constexpr double kPi[kTypes][kActions] = {
    {0.00, 0.05, 0.15, 0.30, 0.50}, {0.60, 0.00, 0.10, 0.20, 0.10}, {0.10, 0.10, 0.00, 0.70, 0.10},
    {0.05, 0.50, 0.10, 0.15, 0.20}, {0.70, 0.00, 0.20, 0.05, 0.05}, {0.05, 0.25, 0.60, 0.00, 0.10},
    {0.10, 0.10, 0.50, 0.05, 0.25}, {0.20, 0.60, 0.00, 0.15, 0.05}};

// Value of pi in one type, and overall: V = mean_t sum_a pi(a|t) q(t, a).
double TypeValue(int t) {
  double v = 0.0;
  for (int a = 0; a < kActions; ++a) v += kPi[t][a] * kQ[t][a];
  return v;
}
double TrueValue() {
  double v = 0.0;
  for (int t = 0; t < kTypes; ++t) v += TypeValue(t);
  return v / kTypes;
}

enum class QhatKind { kExact, kWrong };  // kWrong: q̂ = min(q + 0.2, 1), biased upward everywhere
double Qhat(QhatKind kind, int t, int a) {
  return kind == QhatKind::kExact ? kQ[t][a] : std::min(kQ[t][a] + 0.2, 1.0);
}

// Portable uniform in [0, 1) (std::uniform_real_distribution is implementation-defined).
double Uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

int SampleAction(std::mt19937_64& rng, const double* probs) {
  const double u = Uniform(rng);
  double cum = 0.0;
  for (int a = 0; a < kActions - 1; ++a) {
    cum += probs[a];
    if (u < cum) return a;
  }
  return kActions - 1;
}

// One log of n rounds under pi_0, with the q̂ columns filled from `kind`.
OpeSamples SimulateLog(std::mt19937_64& rng, int n, QhatKind kind) {
  OpeSamples s;
  for (int i = 0; i < n; ++i) {
    const int t = static_cast<int>(rng() % kTypes);
    const int a = SampleAction(rng, kPi0[t]);
    const double r = Uniform(rng) < kQ[t][a] ? 1.0 : 0.0;
    double q_under_target = 0.0;
    for (int b = 0; b < kActions; ++b) q_under_target += kPi[t][b] * Qhat(kind, t, b);
    s.target_prob.push_back(kPi[t][a]);
    s.pscore.push_back(kPi0[t][a]);
    s.reward.push_back(r);
    s.qhat_logged.push_back(Qhat(kind, t, a));
    s.qhat_under_target.push_back(q_under_target);
  }
  return s;
}

struct Summary {
  double mean = 0.0;
  double var = 0.0;          // sample variance across the M estimates (n-1 denominator)
  double se_of_mean = 0.0;   // sqrt(var / M)
};
Summary Summarize(const std::vector<double>& x) {
  Summary s;
  for (double v : x) s.mean += v;
  s.mean /= static_cast<double>(x.size());
  for (double v : x) s.var += (v - s.mean) * (v - s.mean);
  s.var /= static_cast<double>(x.size() - 1);
  s.se_of_mean = std::sqrt(s.var / static_cast<double>(x.size()));
  return s;
}

// M independent logs of n rounds each; every estimator's estimate on every log.
constexpr int kSets = 2000;
constexpr int kRoundsPerSet = 200;
constexpr double kClip = 5.0;  // only the three weights of 6 are clipped
struct MonteCarlo {
  std::vector<OpeEstimate> ips, snips, dr, ips_clipped;
  std::vector<double> dm;  // direct method mean(qhat_under_target): shows q̂'s own bias
};
MonteCarlo RunMonteCarlo(QhatKind kind, uint64_t seed, int rounds_per_set = kRoundsPerSet) {
  std::mt19937_64 rng(seed);
  MonteCarlo mc;
  OpeOptions clipped;
  clipped.weight_clip = kClip;
  for (int m = 0; m < kSets; ++m) {
    const OpeSamples s = SimulateLog(rng, rounds_per_set, kind);
    auto all = EstimateAll(s);
    EXPECT_TRUE(all.ok()) << all.status();
    if (!all.ok()) return mc;
    mc.ips.push_back((*all)[0]);
    mc.snips.push_back((*all)[1]);
    mc.dr.push_back((*all)[2]);
    auto c = EstimateIps(s, clipped);
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) return mc;
    mc.ips_clipped.push_back(*c);
    double dm = 0.0;
    for (double v : s.qhat_under_target) dm += v;
    mc.dm.push_back(dm / rounds_per_set);
  }
  return mc;
}
std::vector<double> Values(const std::vector<OpeEstimate>& e) {
  std::vector<double> v;
  for (const auto& x : e) v.push_back(x.value);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Statistical behaviour.

// Means over M = 2000 logs are compared with V within 4 standard errors of that mean, the SE being
// computed from the M estimates themselves (sd / sqrt(M)). For an unbiased estimator the chance of a
// miss is ~6e-5 per check; the clipped-IPS and DM checks below show the same band does detect a bias.
TEST(OpeStatisticsTest, IpsAndDrWithWrongQhatAreUnbiased) {
  const double v = TrueValue();
  const MonteCarlo mc = RunMonteCarlo(QhatKind::kWrong, /*seed=*/20240601);
  ASSERT_EQ(mc.dr.size(), static_cast<size_t>(kSets));
  const Summary ips = Summarize(Values(mc.ips));
  const Summary dr = Summarize(Values(mc.dr));
  EXPECT_NEAR(ips.mean, v, 4 * ips.se_of_mean) << "V=" << v;
  EXPECT_NEAR(dr.mean, v, 4 * dr.se_of_mean) << "V=" << v;

  // The band is tight enough to catch real bias: q̂ alone (DM) is biased upward by ~0.17, and
  // clipping at 5 lowers IPS's expectation to E_t sum_a pi_0 min(w, 5) q, i.e. by 0.245/8 = 0.031
  // (~14 SE): the clipped mean must match that value and miss V.
  const Summary dm = Summarize(mc.dm);
  EXPECT_GT(dm.mean - v, 4 * dm.se_of_mean + 0.1);
  double v_clipped = 0.0;
  for (int t = 0; t < kTypes; ++t)
    for (int a = 0; a < kActions; ++a)
      v_clipped += kPi0[t][a] * std::min(kPi[t][a] / kPi0[t][a], kClip) * kQ[t][a] / kTypes;
  const Summary clipped = Summarize(Values(mc.ips_clipped));
  EXPECT_NEAR(clipped.mean, v_clipped, 4 * clipped.se_of_mean);
  EXPECT_LT(clipped.mean, v - 4 * clipped.se_of_mean);
  std::printf("V=%.5f  mean IPS=%.5f±%.5f  DR=%.5f±%.5f  DM=%.5f  IPS clip 5=%.5f±%.5f\n", v,
              ips.mean, ips.se_of_mean, dr.mean, dr.se_of_mean, dm.mean, clipped.mean,
              clipped.se_of_mean);
}

// SNIPS is biased at O(1/n) but consistent: at n = 5000 the bias is negligible beside its own SE
// (~0.008 here), so one estimate lies within 4 of its SEs of V (miss probability ~6e-5).
TEST(OpeStatisticsTest, SnipsIsConsistentAtLargeN) {
  std::mt19937_64 rng(/*seed=*/77);
  const OpeSamples s = SimulateLog(rng, /*n=*/5000, QhatKind::kWrong);
  auto e = EstimateSnips(s);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->n, 5000);
  EXPECT_GT(e->std_error, 0.0);
  EXPECT_NEAR(e->value, TrueValue(), 4 * e->std_error);
}

// With q̂ = q, DR removes the reward-mean part of IPS's variance. Both empirical variances (across
// M logs) are checked against their closed forms / n:
//   Var(IPS term)  = E_t sum_a pi^2/pi_0 q - V^2             (r is Bernoulli so r^2 = r)
//   Var(DR term)   = Var_t(V_t) + E_t sum_a pi^2/pi_0 q(1-q)
// Relative SE of a sample variance over M = 2000 near-normal estimates is sqrt(2/(M-1)) = 0.032, so
// a 15% relative tolerance is more than 4 SE; the analytic ratio (~0.5) leaves DR < IPS far outside
// that noise.
TEST(OpeStatisticsTest, DrWithExactQhatHasLowerVarianceThanIps) {
  const double v = TrueValue();
  double e_ips_sq = 0.0, e_dr_noise = 0.0, var_type_value = 0.0;
  for (int t = 0; t < kTypes; ++t) {
    for (int a = 0; a < kActions; ++a) {
      const double w2p0 = kPi[t][a] * kPi[t][a] / kPi0[t][a];
      e_ips_sq += w2p0 * kQ[t][a] / kTypes;
      e_dr_noise += w2p0 * kQ[t][a] * (1 - kQ[t][a]) / kTypes;
    }
    var_type_value += (TypeValue(t) - v) * (TypeValue(t) - v) / kTypes;
  }
  const double ips_var_expected = (e_ips_sq - v * v) / kRoundsPerSet;
  const double dr_var_expected = (var_type_value + e_dr_noise) / kRoundsPerSet;

  const MonteCarlo mc = RunMonteCarlo(QhatKind::kExact, /*seed=*/9001);
  ASSERT_EQ(mc.dr.size(), static_cast<size_t>(kSets));
  const Summary ips = Summarize(Values(mc.ips));
  const Summary dr = Summarize(Values(mc.dr));
  EXPECT_NEAR(ips.var / ips_var_expected, 1.0, 0.15);
  EXPECT_NEAR(dr.var / dr_var_expected, 1.0, 0.15);
  EXPECT_LT(dr.var, ips.var);
  std::printf("V=%.6f  var IPS=%.3g (closed form %.3g)  var DR=%.3g (closed form %.3g)\n", v,
              ips.var, ips_var_expected, dr.var, dr_var_expected);
}

// The reported std_error must match the actual spread of the estimates across logs. The empirical
// SD over M = 2000 has relative SE ~1/sqrt(2M) = 0.016, and the mean of 2000 reported SEs is far
// less noisy; 8% (5 SE) also absorbs the O(1/n) bias of SNIPS's delta-method SE at n = 200.
TEST(OpeStatisticsTest, ReportedStdErrorMatchesSpreadAcrossLogs) {
  const MonteCarlo mc = RunMonteCarlo(QhatKind::kWrong, /*seed=*/4242);
  ASSERT_EQ(mc.dr.size(), static_cast<size_t>(kSets));
  for (const auto* est : {&mc.ips, &mc.snips, &mc.dr}) {
    double mean_se = 0.0;
    for (const auto& e : *est) mean_se += e.std_error / kSets;
    const double sd = std::sqrt(Summarize(Values(*est)).var);
    EXPECT_NEAR(mean_se / sd, 1.0, 0.08) << est->front().estimator;
    std::printf("%-5s mean reported SE=%.5f  SD across logs=%.5f\n",
                est->front().estimator.c_str(), mean_se, sd);
  }
}

// Coverage of DR's 95% interval (wrong q̂) over M = 2000 logs: the binomial SE of the covered
// fraction is sqrt(0.95 * 0.05 / 2000) = 0.0049, so [0.93, 0.97] is about ±4 SE around 0.95.
// Logs have n = 2000 rounds because the interval is asymptotic: with this q̂ the DR term is skewed
// (rare large w (1 - q̂)), and a 200k-log numpy replica of this simulator measured coverage 0.917 at
// n = 200, 0.940 at n = 1000 and 0.946 at n = 2000 (most misses above V). At n = 2000 the lower
// bound is > 3 binomial SE below the expected coverage.
constexpr int kCoverageRounds = 2000;
TEST(OpeStatisticsTest, DrNinetyFivePercentIntervalCoversTrueValue) {
  const double v = TrueValue();
  const MonteCarlo mc = RunMonteCarlo(QhatKind::kWrong, /*seed=*/31337, kCoverageRounds);
  ASSERT_EQ(mc.dr.size(), static_cast<size_t>(kSets));
  int covered = 0;
  for (const auto& e : mc.dr) covered += (e.ci_low <= v && v <= e.ci_high) ? 1 : 0;
  const double coverage = static_cast<double>(covered) / kSets;
  EXPECT_GE(coverage, 0.93);
  EXPECT_LE(coverage, 0.97);
  std::printf("DR 95%% interval coverage: %.4f\n", coverage);
}

// ---------------------------------------------------------------------------------------------
// Exact formulas on three samples, worked by hand:
//   target_prob = {0.5, 0.2, 0.9}, pscore = {0.25, 0.4, 0.3}  =>  w = {2, 0.5, 3}
//   reward = {1, 0, 1}, qhat_logged = {0.6, 0.3, 0.5}, qhat_under_target = {0.4, 0.7, 0.2}
OpeSamples HandExample() {
  OpeSamples s;
  s.target_prob = {0.5, 0.2, 0.9};
  s.pscore = {0.25, 0.4, 0.3};
  s.reward = {1, 0, 1};
  s.qhat_logged = {0.6, 0.3, 0.5};
  s.qhat_under_target = {0.4, 0.7, 0.2};
  return s;
}

TEST(OpeFormulaTest, IpsMatchesHandComputation) {
  // terms w r = {2, 0, 3}: mean 5/3; squared deviations {1/9, 25/9, 16/9} sum 14/3, sample var 7/3,
  // SE = sqrt(7/3 / 3) = sqrt(7)/3. ESS = 5.5^2 / (4 + 0.25 + 9) = 121/53.
  auto e = EstimateIps(HandExample());
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->estimator, "ips");
  EXPECT_EQ(e->n, 3);
  EXPECT_NEAR(e->value, 5.0 / 3, kExact);
  EXPECT_NEAR(e->std_error, std::sqrt(7.0) / 3, kExact);
  EXPECT_NEAR(e->ci_low, 5.0 / 3 - kZ95 * std::sqrt(7.0) / 3, kExact);
  EXPECT_NEAR(e->ci_high, 5.0 / 3 + kZ95 * std::sqrt(7.0) / 3, kExact);
  EXPECT_NEAR(e->max_weight, 3.0, kExact);
  EXPECT_NEAR(e->effective_sample_size, 121.0 / 53, kExact);
}

TEST(OpeFormulaTest, SnipsMatchesHandComputationWithDeltaMethodError) {
  // V = (2 + 3) / 5.5 = 10/11; mean w = 11/6; influence w (r - V) / mean w =
  // {2 (1/11), 0.5 (-10/11), 3 (1/11)} * 6/11 = {12, -30, 18} / 121 (sums to 0);
  // sample var = (144 + 900 + 324) / 121^2 / 2 = 684 / 14641; SE = sqrt(684/14641/3) = sqrt(228)/121.
  auto e = EstimateSnips(HandExample());
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->estimator, "snips");
  EXPECT_NEAR(e->value, 10.0 / 11, kExact);
  EXPECT_NEAR(e->std_error, std::sqrt(228.0) / 121, kExact);
  EXPECT_NEAR(e->ci_low, 10.0 / 11 - kZ95 * std::sqrt(228.0) / 121, kExact);
  EXPECT_NEAR(e->ci_high, 10.0 / 11 + kZ95 * std::sqrt(228.0) / 121, kExact);
  EXPECT_NEAR(e->effective_sample_size, 121.0 / 53, kExact);
}

TEST(OpeFormulaTest, DrMatchesHandComputation) {
  // terms = {0.4 + 2 (0.4), 0.7 + 0.5 (-0.3), 0.2 + 3 (0.5)} = {1.2, 0.55, 1.7}: mean 1.15;
  // squared deviations {0.0025, 0.36, 0.3025} sum 0.665, sample var 0.3325, SE = sqrt(0.3325/3).
  auto e = EstimateDr(HandExample());
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->estimator, "dr");
  EXPECT_NEAR(e->value, 1.15, kExact);
  EXPECT_NEAR(e->std_error, std::sqrt(0.3325 / 3), kExact);
  EXPECT_NEAR(e->ci_high - e->value, kZ95 * std::sqrt(0.3325 / 3), kExact);
  EXPECT_NEAR(e->max_weight, 3.0, kExact);
}

TEST(OpeFormulaTest, ClippingCapsWeightsInEveryEstimator) {
  // Clip at 2.5: w = {2, 0.5, 2.5}; ESS = 4.5^2 / (4 + 0.25 + 6.25) = 50/21.
  //   IPS terms {2, 0, 2.5}: mean 1.5, sq. dev {0.25, 2.25, 1} sum 3.5, var 1.75, SE sqrt(1.75/3).
  //   SNIPS = (2 + 2.5) / (2 + 0.5 + 2.5) = 0.9.
  //   DR terms {1.2, 0.55, 0.2 + 2.5 (0.5) = 1.45}: mean 3.2/3.
  OpeOptions options;
  options.weight_clip = 2.5;
  auto ips = EstimateIps(HandExample(), options);
  auto snips = EstimateSnips(HandExample(), options);
  auto dr = EstimateDr(HandExample(), options);
  ASSERT_TRUE(ips.ok() && snips.ok() && dr.ok());
  EXPECT_NEAR(ips->value, 1.5, kExact);
  EXPECT_NEAR(ips->std_error, std::sqrt(1.75 / 3), kExact);
  EXPECT_NEAR(ips->max_weight, 2.5, kExact);
  EXPECT_NEAR(ips->effective_sample_size, 50.0 / 21, kExact);
  EXPECT_NEAR(snips->value, 0.9, kExact);
  EXPECT_NEAR(snips->max_weight, 2.5, kExact);
  EXPECT_NEAR(dr->value, 3.2 / 3, kExact);
  EXPECT_NEAR(dr->effective_sample_size, 50.0 / 21, kExact);
}

TEST(OpeFormulaTest, ConfidenceLevelSetsTheNormalQuantile) {
  OpeOptions options;
  options.confidence = 0.90;
  auto e = EstimateIps(HandExample(), options);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_NEAR(e->ci_high - e->value, kZ90 * std::sqrt(7.0) / 3, kExact);
  EXPECT_NEAR(e->value - e->ci_low, kZ90 * std::sqrt(7.0) / 3, kExact);
}

TEST(OpeFormulaTest, NormalQuantileMatchesReferenceValues) {
  // Reference values from Python's statistics.NormalDist().inv_cdf (Wichura AS241, ~1e-16).
  struct Case { double p, x; };
  for (const Case c : {Case{0.975, 1.9599639845400536}, Case{0.95, 1.6448536269514715},
                       Case{0.5, 0.0}, Case{0.3, -0.5244005127080407},
                       Case{0.02425, -1.9729610513118845}, Case{0.001, -3.090232306167813},
                       Case{1e-10, -6.361340902404056}, Case{1 - 1e-12, 7.0344869100478356}}) {
    auto x = NormalQuantile(c.p);
    ASSERT_TRUE(x.ok()) << x.status();
    EXPECT_NEAR(*x, c.x, 1e-12 * std::max(1.0, std::abs(c.x))) << "p=" << c.p;
  }
  for (double bad : {0.0, 1.0, -0.5, std::nan("")})
    EXPECT_EQ(NormalQuantile(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
}

TEST(OpeFormulaTest, SingleSampleHasInfiniteErrorAndUnboundedInterval) {
  OpeSamples s;
  s.target_prob = {0.5};
  s.pscore = {0.5};
  s.reward = {0.7};
  auto e = EstimateIps(s);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_NEAR(e->value, 0.7, kExact);
  EXPECT_TRUE(std::isinf(e->std_error));
  EXPECT_EQ(e->ci_low, -std::numeric_limits<double>::infinity());
  EXPECT_EQ(e->ci_high, std::numeric_limits<double>::infinity());
}

TEST(OpeFormulaTest, EstimateAllReturnsDrOnlyWhenQhatIsGiven) {
  auto all = EstimateAll(HandExample());
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].estimator, "ips");
  EXPECT_EQ((*all)[1].estimator, "snips");
  EXPECT_EQ((*all)[2].estimator, "dr");
  EXPECT_NEAR((*all)[2].value, 1.15, kExact);

  OpeSamples no_qhat = HandExample();
  no_qhat.qhat_logged.clear();
  no_qhat.qhat_under_target.clear();
  auto two = EstimateAll(no_qhat);
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[1].estimator, "snips");

  OpeSamples half = HandExample();
  half.qhat_under_target.clear();
  EXPECT_EQ(EstimateAll(half).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OpeFormulaTest, BoundaryProbabilitiesAreAccepted) {
  OpeSamples s = HandExample();
  s.pscore[1] = 1.0;
  s.target_prob[0] = 0.0;
  s.target_prob[2] = 1.0;
  EXPECT_TRUE(EstimateAll(s).ok());
}

// ---------------------------------------------------------------------------------------------
// Validation: every case is InvalidArgument whose message names the field, index and value.

void ExpectInvalid(const absl::StatusOr<OpeEstimate>& r, const std::string& fragment) {
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(fragment));
}

TEST(OpeValidationTest, RejectsEmptyInput) {
  const OpeSamples empty;
  ExpectInvalid(EstimateIps(empty), "target_prob is empty");
  ExpectInvalid(EstimateSnips(empty), "target_prob is empty");
  ExpectInvalid(EstimateDr(empty), "target_prob is empty");
  EXPECT_EQ(EstimateAll(empty).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OpeValidationTest, RejectsLengthMismatch) {
  OpeSamples s = HandExample();
  s.pscore.pop_back();
  ExpectInvalid(EstimateIps(s), "pscore has 2 entries but target_prob has 3");
  s = HandExample();
  s.reward.push_back(1.0);
  ExpectInvalid(EstimateSnips(s), "reward has 4 entries");
  s = HandExample();
  s.qhat_logged.pop_back();
  ExpectInvalid(EstimateDr(s), "qhat_logged has 2 entries");
  EXPECT_TRUE(EstimateIps(s).ok()) << "IPS does not read q̂";
  s = HandExample();
  s.qhat_under_target.clear();
  ExpectInvalid(EstimateDr(s), "qhat_under_target has 0 entries");
}

TEST(OpeValidationTest, RejectsPscoreOutsideUnitInterval) {
  OpeSamples s = HandExample();
  s.pscore.push_back(0.5);
  s.target_prob.push_back(0.5);
  s.reward.push_back(1.0);
  s.qhat_logged.push_back(0.5);
  s.qhat_under_target.push_back(0.5);
  s.pscore[3] = 0.0;
  ExpectInvalid(EstimateIps(s), "pscore[3]=0: must be in (0, 1]");
  s.pscore[3] = -0.2;
  ExpectInvalid(EstimateSnips(s), "pscore[3]=-0.2");
  s.pscore[3] = 1.5;
  ExpectInvalid(EstimateDr(s), "pscore[3]=1.5");
  s.pscore[3] = std::nan("");
  ExpectInvalid(EstimateIps(s), "pscore[3]=nan");
}

TEST(OpeValidationTest, RejectsTargetProbOutsideUnitInterval) {
  OpeSamples s = HandExample();
  s.target_prob[1] = -0.1;
  ExpectInvalid(EstimateIps(s), "target_prob[1]=-0.1: must be in [0, 1]");
  s.target_prob[1] = 1.2;
  ExpectInvalid(EstimateDr(s), "target_prob[1]=1.2");
  s.target_prob[1] = std::numeric_limits<double>::infinity();
  ExpectInvalid(EstimateSnips(s), "target_prob[1]=inf");
}

TEST(OpeValidationTest, RejectsNonFiniteRewardsAndQhat) {
  OpeSamples s = HandExample();
  s.reward[2] = std::numeric_limits<double>::infinity();
  ExpectInvalid(EstimateIps(s), "reward[2]=inf: must be finite");
  s = HandExample();
  s.reward[0] = std::nan("");
  ExpectInvalid(EstimateSnips(s), "reward[0]=nan");
  s = HandExample();
  s.qhat_logged[1] = std::nan("");
  ExpectInvalid(EstimateDr(s), "qhat_logged[1]=nan");
  s = HandExample();
  s.qhat_under_target[2] = -std::numeric_limits<double>::infinity();
  ExpectInvalid(EstimateDr(s), "qhat_under_target[2]=-inf");
}

TEST(OpeValidationTest, RejectsBadOptions) {
  for (double c : {0.0, 1.0, -0.5, 1.5, std::nan("")}) {
    OpeOptions o;
    o.confidence = c;
    ExpectInvalid(EstimateIps(HandExample(), o), "confidence=");
    ExpectInvalid(EstimateDr(HandExample(), o), "confidence=");
  }
  for (double clip : {-1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    OpeOptions o;
    o.weight_clip = clip;
    ExpectInvalid(EstimateSnips(HandExample(), o), "weight_clip=");
  }
}

TEST(OpeValidationTest, SnipsFailsWhenAllWeightsAreZero) {
  OpeSamples s = HandExample();
  s.target_prob = {0.0, 0.0, 0.0};
  EXPECT_EQ(EstimateSnips(s).status().code(), absl::StatusCode::kFailedPrecondition);
  auto ips = EstimateIps(s);  // IPS is still well defined (0) for such a policy
  ASSERT_TRUE(ips.ok()) << ips.status();
  EXPECT_EQ(ips->value, 0.0);
  EXPECT_EQ(ips->effective_sample_size, 0.0);
}

}  // namespace
}  // namespace optower
