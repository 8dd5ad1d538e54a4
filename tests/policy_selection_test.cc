// Model selection of the policy learner (core/learning/policy_selection.h): the paired lower-bound
// rule and the weight-clipping rule.
#include "core/learning/policy_selection.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace optower {
namespace {

TEST(PolicySelectionTest, WeightClipRuleGrowsAsSqrtNWithAFloor) {
  EXPECT_DOUBLE_EQ(AutoWeightClip(0), kMinWeightClip);
  EXPECT_DOUBLE_EQ(AutoWeightClip(50), kMinWeightClip);  // √50 ≈ 7.1 < 10
  EXPECT_DOUBLE_EQ(AutoWeightClip(10000), 100.0);
  EXPECT_DOUBLE_EQ(AutoWeightClip(1000000), 1000.0);
  EXPECT_DOUBLE_EQ(ResolveWeightClip(-1.0, 10000), 100.0);  // < 0: the rule
  EXPECT_DOUBLE_EQ(ResolveWeightClip(0.0, 10000), 0.0);     // 0: none
  EXPECT_DOUBLE_EQ(ResolveWeightClip(3.5, 10000), 3.5);     // fixed
}

TEST(PolicySelectionTest, PairedGainCancelsTheNoiseBothCandidatesShare) {
  // The reference's terms vary a lot from row to row; the candidate adds exactly 0.01 to each.
  // Unpaired, the gain would be buried in that spread; paired, its standard error is 0.
  std::vector<double> ref, cand;
  for (int i = 0; i < 100; ++i) {
    ref.push_back((i % 7) * 3.0 - 9.0);
    cand.push_back(ref.back() + 0.01);
  }
  const PairedGain g = ComparePaired(cand, ref, /*z=*/2.0);
  EXPECT_NEAR(g.gain, 0.01, 1e-12);
  EXPECT_NEAR(g.std_error, 0.0, 1e-12);
  EXPECT_NEAR(g.lower, 0.01, 1e-12);
}

TEST(PolicySelectionTest, KeepsTheReferenceUnlessALowerBoundIsPositive) {
  std::vector<double> ref(200, 0.5);
  // Candidate 1: mean gain +0.02 but noisy (±1 alternating): se ≈ 0.071, bound at z = 1 < 0.
  std::vector<double> noisy = ref;
  for (size_t i = 0; i < noisy.size(); ++i) noisy[i] += 0.02 + (i % 2 == 0 ? 1.0 : -1.0);
  // Candidate 2: a smaller but certain gain of +0.005.
  std::vector<double> sure = ref;
  for (double& t : sure) t += 0.005;
  CandidateSelection z1(ref, /*z=*/1.0);
  EXPECT_FALSE(z1.Offer(1, noisy));
  EXPECT_EQ(z1.selected(), 0);
  EXPECT_TRUE(z1.Offer(kDmCandidate, sure));
  EXPECT_EQ(z1.selected(), kDmCandidate);
  EXPECT_NEAR(z1.selected_mean(), 0.505, 1e-12);
  // z = 0 is the largest-mean rule: the noisy candidate's larger mean wins.
  CandidateSelection z0(ref, /*z=*/0.0);
  EXPECT_TRUE(z0.Offer(1, noisy));
  EXPECT_FALSE(z0.Offer(2, sure));
  EXPECT_EQ(z0.selected(), 1);
  // A candidate equal to the reference never replaces it (bound 0 is not > 0).
  CandidateSelection same(ref, 1.0);
  EXPECT_FALSE(same.Offer(3, ref));
  EXPECT_EQ(same.selected(), 0);
}

}  // namespace
}  // namespace optower
