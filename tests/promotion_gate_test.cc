// The promotion gate on hand-made holdouts (core/training/promotion_gate.h): the paired DR difference, the
// decision (promote unless the whole interval lies below -tolerance), force, the "unchanged" rule
// and the edge cases (one sample, no samples, nothing to compare). No threads, no models: every
// expected number is derived in a comment from the DR formula
//   DR_i(pi) = qhat_under_target_i + w_i (r_i - qhat_logged_i),  w_i = pi(a_i|x_i) / p_i,
// with z(95%) = 1.959964 and se = sd(d) / sqrt(n) (n - 1 denominator).
#include "core/training/promotion_gate.h"

#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace optower {
namespace {

using ::testing::HasSubstr;

constexpr double kZ95 = 1.959963984540054;

OpeSamples Samples(std::vector<double> target, std::vector<double> qut) {
  OpeSamples s;
  s.target_prob = std::move(target);
  s.pscore = {0.5, 0.5, 0.5, 0.5};
  s.reward = {1, 0, 1, 0};
  s.qhat_logged = {0.5, 0.5, 0.5, 0.5};
  s.qhat_under_target = std::move(qut);
  return s;
}

TEST(PairedDrDifferenceTest, MatchesAHandComputedExample) {
  // DR_i(old) = 0.5 + 1 (r - 0.5) = r = {1, 0, 1, 0};
  // DR_i(new) = qut + w (r - 0.5) with w = {2, 0, 2, 0}: {1.6, 0.4, 1.6, 0.4};
  // d = {0.6, 0.4, 0.6, 0.4}: mean 0.5, sample variance 0.04 / 3, se = sqrt(0.04 / 3 / 4).
  const OpeSamples old_s = Samples({0.5, 0.5, 0.5, 0.5}, {0.5, 0.5, 0.5, 0.5});
  const OpeSamples new_s = Samples({1, 0, 1, 0}, {0.6, 0.4, 0.6, 0.4});
  absl::StatusOr<OpeEstimate> d = PairedDrDifference(old_s, new_s);
  ASSERT_TRUE(d.ok()) << d.status();
  const double se = std::sqrt(0.04 / 3 / 4);
  EXPECT_NEAR(d->value, 0.5, 1e-12);
  EXPECT_NEAR(d->std_error, se, 1e-12);
  EXPECT_NEAR(d->ci_low, 0.5 - 1.959963984540054 * se, 1e-9);
  EXPECT_NEAR(d->ci_high, 0.5 + 1.959963984540054 * se, 1e-9);
  EXPECT_EQ(d->n, 4);
  EXPECT_EQ(d->estimator, "dr_diff");
  EXPECT_EQ(d->max_weight, 2.0);
  // Clipping at 1.5 applies to both policies' weights: DR(new) = {1.35, 0.4, 1.35, 0.4}.
  OpeOptions clip;
  clip.weight_clip = 1.5;
  EXPECT_NEAR(PairedDrDifference(old_s, new_s, clip)->value, (0.35 + 0.4 + 0.35 + 0.4) / 4, 1e-12);
}

TEST(PairedDrDifferenceTest, PairingIsTighterThanComparingSeparateIntervals) {
  // Same noisy rewards under both policies, nearly the same policy: the separate DR intervals are
  // wide (reward noise) while the paired difference cancels the shared noise.
  std::mt19937 rng(1);
  std::bernoulli_distribution coin(0.5);
  OpeSamples a, b;
  for (int i = 0; i < 400; ++i) {
    const double r = coin(rng) ? 1 : 0;
    for (OpeSamples* s : {&a, &b}) {
      s->pscore.push_back(0.5);
      s->reward.push_back(r);
      s->qhat_logged.push_back(0.5);
    }
    a.target_prob.push_back(0.5);
    b.target_prob.push_back(0.55);
    a.qhat_under_target.push_back(0.5);
    b.qhat_under_target.push_back(0.5);
  }
  const OpeEstimate da = *EstimateDr(a), db = *EstimateDr(b);
  const OpeEstimate d = *PairedDrDifference(a, b);
  EXPECT_NEAR(d.value, db.value - da.value, 1e-12);
  EXPECT_LT(d.std_error, 0.2 * std::min(da.std_error, db.std_error));
}

TEST(PairedDrDifferenceTest, RejectsSamplesFromDifferentLogs) {
  const OpeSamples old_s = Samples({0.5, 0.5, 0.5, 0.5}, {0.5, 0.5, 0.5, 0.5});
  OpeSamples other = old_s;
  other.reward[2] = 0;
  absl::StatusOr<OpeEstimate> d = PairedDrDifference(old_s, other);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(d.status().message(), HasSubstr("sample 2"));
  OpeSamples shorter = old_s;
  for (auto* v : {&shorter.target_prob, &shorter.pscore, &shorter.reward, &shorter.qhat_logged,
                  &shorter.qhat_under_target})
    v->pop_back();
  EXPECT_EQ(PairedDrDifference(old_s, shorter).status().code(),
            absl::StatusCode::kInvalidArgument);
}

OpeEstimate Diff(double value, double lo, double hi) {
  OpeEstimate e;
  e.estimator = "dr_diff";
  e.value = value;
  e.ci_low = lo;
  e.ci_high = hi;
  e.n = 100;
  return e;
}

TEST(DecidePromotionTest, RejectsOnlyWhenTheWholeIntervalIsBelowMinusTolerance) {
  PromotionGateOptions gate;
  const PromotionDecision worse = DecidePromotion(Diff(-0.2, -0.3, -0.1), gate, false);
  EXPECT_FALSE(worse.promote);
  EXPECT_EQ(worse.decision, "rejected");
  EXPECT_THAT(worse.reason, HasSubstr("[-0.3000, -0.1000]"));
  EXPECT_TRUE(DecidePromotion(Diff(-0.1, -0.2, 0.01), gate, false).promote);  // overlaps 0
  EXPECT_TRUE(DecidePromotion(Diff(0.1, 0.05, 0.15), gate, false).promote);
  gate.tolerance = 0.15;
  EXPECT_TRUE(DecidePromotion(Diff(-0.2, -0.3, -0.1), gate, false).promote);   // within tolerance
  EXPECT_FALSE(DecidePromotion(Diff(-0.3, -0.4, -0.2), gate, false).promote);
}

TEST(DecidePromotionTest, ForceOverridesARejection) {
  const PromotionDecision d = DecidePromotion(Diff(-0.2, -0.3, -0.1), {}, /*force=*/true);
  EXPECT_TRUE(d.promote);
  EXPECT_TRUE(d.forced);
  EXPECT_EQ(d.decision, "promoted");
  EXPECT_THAT(d.reason, HasSubstr("forced despite the gate"));
  EXPECT_FALSE(DecidePromotion(Diff(0.1, 0.0, 0.2), {}, true).forced);  // nothing to override
}

TEST(DecidePromotionTest, NonFiniteDifferenceRejectsAndNoComparisonPromotes) {
  EXPECT_FALSE(DecidePromotion(Diff(std::nan(""), std::nan(""), std::nan("")), {}, false).promote);
  const PromotionDecision none = DecidePromotion(std::nullopt, {}, false, "no served model");
  EXPECT_TRUE(none.promote);
  EXPECT_THAT(none.reason, HasSubstr("no served model"));
}

// ---- The decision from samples: CompareOnHoldout, then DecidePromotion ----

// A holdout with every logged propensity p_i = 0.5 and q̂(x_i, a_i) = 0.5; `target` is the
// evaluated policy's pi(a_i|x_i) (w_i = 2 target_i) and `qut` its q̂ under the policy.
OpeSamples OnHoldout(std::vector<double> reward, std::vector<double> target,
                     std::vector<double> qut) {
  OpeSamples s;
  const size_t n = reward.size();
  s.reward = std::move(reward);
  s.target_prob = std::move(target);
  s.qhat_under_target = std::move(qut);
  s.pscore.assign(n, 0.5);
  s.qhat_logged.assign(n, 0.5);
  return s;
}

const std::vector<double> kRewards = {1, 0, 1, 0};

// The served policy in most tests: pi = p (w = 1) and q̂ under it 0.5, so
// DR_i(old) = 0.5 + (r_i - 0.5) = r_i = {1, 0, 1, 0}, DR(old) = 0.5.
OpeSamples Served() { return OnHoldout(kRewards, {0.5, 0.5, 0.5, 0.5}, {0.5, 0.5, 0.5, 0.5}); }

// A candidate that puts all mass on the rewarded samples: w = {2, 0, 2, 0}, q̂ under it
// {0.8, 0.9, 0.8, 0.9}: DR_i = {0.8 + 2·0.5, 0.9, 0.8 + 2·0.5, 0.9} = {1.8, 0.9, 1.8, 0.9}.
OpeSamples Better() { return OnHoldout(kRewards, {1, 0, 1, 0}, {0.8, 0.9, 0.8, 0.9}); }

PromotionDecision Gate(const OpeSamples& old_s, const OpeSamples& new_s,
                       const PromotionGateOptions& gate, bool force = false) {
  absl::StatusOr<OpeComparison> c = CompareOnHoldout(old_s, new_s, gate);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) return {};
  return DecidePromotion(c->difference, gate, force);
}

TEST(PromotionGateTest, ClearlyBetterCandidatePromotes) {
  // d = DR_i(new) - DR_i(old) = {0.8, 0.9, 0.8, 0.9}: mean 0.85, squared deviations 4·0.05² = 0.01,
  // se = sqrt(0.01 / 3 / 4) = 0.028868, CI 0.85 ± 0.056579 = [0.7934, 0.9066], all above 0.
  absl::StatusOr<OpeComparison> c = CompareOnHoldout(Served(), Better(), {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NEAR(c->old_policy.value, 0.5, 1e-12);
  EXPECT_NEAR(c->new_policy.value, (1.8 + 0.9 + 1.8 + 0.9) / 4, 1e-12);
  EXPECT_NEAR(c->difference.value, 0.85, 1e-12);
  EXPECT_NEAR(c->difference.std_error, std::sqrt(0.01 / 12), 1e-12);
  EXPECT_NEAR(c->difference.ci_low, 0.85 - kZ95 * std::sqrt(0.01 / 12), 1e-9);
  const PromotionDecision d = DecidePromotion(c->difference, {}, /*force=*/false);
  EXPECT_TRUE(d.promote);
  EXPECT_FALSE(d.forced);
  EXPECT_EQ(d.decision, "promoted");
  EXPECT_THAT(d.reason, HasSubstr("[0.7934, 0.9066] on 4 holdout samples"));
  EXPECT_THAT(d.reason, HasSubstr("not worse beyond the interval"));
}

TEST(PromotionGateTest, ClearlyWorseCandidateIsRejectedUnlessForced) {
  // The roles swapped: d = {-0.8, -0.9, -0.8, -0.9}, CI [-0.9066, -0.7934]: ci_high < -0.
  const PromotionDecision d = Gate(Better(), Served(), {});
  EXPECT_FALSE(d.promote);
  EXPECT_EQ(d.decision, "rejected");
  EXPECT_THAT(d.reason, HasSubstr("[-0.9066, -0.7934]"));
  EXPECT_THAT(d.reason, HasSubstr("the new policy is worse"));
  // A tolerance of 0.5 does not cover a loss of at least 0.79 either.
  PromotionGateOptions gate;
  gate.tolerance = 0.5;
  EXPECT_FALSE(Gate(Better(), Served(), gate).promote);
  const PromotionDecision forced = Gate(Better(), Served(), {}, /*force=*/true);
  EXPECT_TRUE(forced.promote);
  EXPECT_TRUE(forced.forced);
  EXPECT_EQ(forced.decision, "promoted");
  EXPECT_THAT(forced.reason, HasSubstr("forced despite the gate"));
}

TEST(PromotionGateTest, ASmallSureLossIsRejectedOrKeptByTheTolerance) {
  // Candidate with w = 1 and q̂ under it {0.46, 0.44, 0.46, 0.44}: DR_i(new) = r_i - {0.04, 0.06, ...},
  // d = {-0.04, -0.06, -0.04, -0.06}: mean -0.05, squared deviations 4·0.01² = 0.0004,
  // se = sqrt(0.0004 / 12) = 0.0057735, CI -0.05 ± 0.011316 = [-0.0613, -0.0387].
  const OpeSamples slightly_worse =
      OnHoldout(kRewards, {0.5, 0.5, 0.5, 0.5}, {0.46, 0.44, 0.46, 0.44});
  PromotionGateOptions gate;
  const PromotionDecision strict = Gate(Served(), slightly_worse, gate);
  EXPECT_FALSE(strict.promote);  // the whole interval is below 0
  EXPECT_THAT(strict.reason, HasSubstr("[-0.0613, -0.0387]"));
  gate.tolerance = 0.03;         // -0.0387 < -0.03: still beyond the margin
  EXPECT_FALSE(Gate(Served(), slightly_worse, gate).promote);
  gate.tolerance = 0.05;         // -0.0387 >= -0.05: within the margin, kept
  const PromotionDecision kept = Gate(Served(), slightly_worse, gate);
  EXPECT_TRUE(kept.promote);
  EXPECT_FALSE(kept.forced);
  EXPECT_THAT(kept.reason, HasSubstr("tolerance 0.05"));
}

TEST(PromotionGateTest, ATiePromotes) {
  // The same policy twice: every d_i = t - t = 0 exactly, se = 0, CI [0, 0]; 0 < -0 is false,
  // so the tie is not "worse beyond the interval" and promotes (the unchanged rule, not the
  // interval, keeps an unchanged warm start from being published; see below).
  absl::StatusOr<OpeComparison> c = CompareOnHoldout(Served(), Served(), {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->difference.value, 0.0);
  EXPECT_EQ(c->difference.ci_high, 0.0);
  EXPECT_TRUE(DecidePromotion(c->difference, {}, false).promote);
}

TEST(PromotionGateTest, AnUncertainLossPromotes) {
  // Candidate w = 1, q̂ under it {0.8, 0, 0.8, 0}: DR_i(new) = {1.3, -0.5, 1.3, -0.5},
  // d = {0.3, -0.5, 0.3, -0.5}: mean -0.1 (worse), squared deviations 4·0.4² = 0.64,
  // se = sqrt(0.64 / 12) = 0.23094, CI -0.1 ± 0.45264 = [-0.5526, 0.3526]: overlaps 0, promote.
  const OpeSamples noisy = OnHoldout(kRewards, {0.5, 0.5, 0.5, 0.5}, {0.8, 0, 0.8, 0});
  const PromotionDecision d = Gate(Served(), noisy, {});
  EXPECT_TRUE(d.promote);
  EXPECT_THAT(d.reason, HasSubstr("= -0.1000, 95% CI [-0.5526, 0.3526]"));
}

TEST(PromotionGateTest, OneHoldoutSampleCannotReject) {
  // n = 1: se = +inf, so the interval is (-inf, +inf) however bad the point estimate
  // (DR(old) = 0.5 + (1 - 0.5) = 1, DR(new) = 0 + 1·(1 - 0.5) = 0.5, d = -0.5).
  const OpeSamples old_s = OnHoldout({1}, {0.5}, {0.5});
  const OpeSamples new_s = OnHoldout({1}, {0.5}, {0.0});
  absl::StatusOr<OpeComparison> c = CompareOnHoldout(old_s, new_s, {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NEAR(c->difference.value, -0.5, 1e-12);
  EXPECT_EQ(c->difference.std_error, std::numeric_limits<double>::infinity());
  EXPECT_EQ(c->difference.ci_high, std::numeric_limits<double>::infinity());
  EXPECT_TRUE(DecidePromotion(c->difference, {}, false).promote);
}

TEST(PromotionGateTest, NoHoldoutSamplesIsNoComparison) {
  // An empty holdout cannot be compared (EstimateDr needs n >= 1): the trainer does not call the
  // comparison then and the gate promotes with the reason it is given.
  EXPECT_EQ(CompareOnHoldout(OpeSamples(), OpeSamples(), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const PromotionDecision off =
      DecidePromotion(std::nullopt, {}, false, "holdout_fraction=0: the gate is off");
  EXPECT_TRUE(off.promote);
  EXPECT_FALSE(off.forced);
  EXPECT_EQ(off.decision, "promoted");
  EXPECT_EQ(off.reason, "no OPE comparison (holdout_fraction=0: the gate is off)");
  EXPECT_EQ(DecidePromotion(std::nullopt, {}, false).reason, "no OPE comparison (none available)");
}

TEST(PromotionGateTest, CompareOnHoldoutUsesTheGatesConfidenceAndClip) {
  // Clip 1.5: the candidate's w = 2 becomes 1.5, DR_i(new) = {0.8 + 1.5·0.5, 0.9, ...}
  // = {1.55, 0.9, 1.55, 0.9}, d = {0.55, 0.9, 0.55, 0.9}: mean 0.725, squared deviations
  // 4·0.175² = 0.1225, se = sqrt(0.1225 / 12); at 50% confidence z = 0.6744898.
  PromotionGateOptions gate;
  gate.confidence = 0.5;
  gate.weight_clip = 1.5;
  gate.tolerance = 0.2;
  absl::StatusOr<OpeComparison> c = CompareOnHoldout(Served(), Better(), gate);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->confidence, 0.5);
  EXPECT_EQ(c->tolerance, 0.2);
  EXPECT_EQ(c->old_policy.estimator, "dr");
  EXPECT_EQ(c->difference.estimator, "dr_diff");
  EXPECT_EQ(c->difference.max_weight, 1.5);
  EXPECT_NEAR(c->new_policy.value, (1.55 + 0.9 + 1.55 + 0.9) / 4, 1e-12);
  EXPECT_NEAR(c->difference.value, 0.725, 1e-12);
  EXPECT_NEAR(c->difference.ci_high, 0.725 + 0.6744897501960817 * std::sqrt(0.1225 / 12), 1e-9);
  // Samples from another holdout cannot be paired.
  EXPECT_EQ(CompareOnHoldout(Served(), OnHoldout({1, 1, 1, 0}, {1, 0, 1, 0}, {0.8, 0.9, 0.8, 0.9}),
                             gate)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- The unchanged rule and the evaluate event's text ----

PromotionDecision Promoted() { return DecidePromotion(Diff(0.0, -0.1, 0.1), {}, false); }

TEST(RejectIfUnchangedTest, AnUnchangedCandidateIsRejectedOrForced) {
  const PromotionDecision rejected = RejectIfUnchanged(Promoted(), /*unchanged=*/true, 0.8123,
                                                       /*force=*/false);
  EXPECT_FALSE(rejected.promote);
  EXPECT_EQ(rejected.decision, "rejected");
  EXPECT_THAT(rejected.reason, HasSubstr("unchanged: no epoch improved"));
  EXPECT_THAT(rejected.reason, HasSubstr("(0.8123)"));
  const PromotionDecision forced = RejectIfUnchanged(Promoted(), true, 0.8123, /*force=*/true);
  EXPECT_TRUE(forced.promote);
  EXPECT_TRUE(forced.forced);
  EXPECT_EQ(forced.decision, "promoted");
  EXPECT_THAT(forced.reason, HasSubstr("forced despite the gate: unchanged"));
}

TEST(RejectIfUnchangedTest, LeavesOtherDecisionsAlone) {
  const PromotionDecision changed = RejectIfUnchanged(Promoted(), /*unchanged=*/false, 0.8, false);
  EXPECT_TRUE(changed.promote);
  EXPECT_EQ(changed.reason, Promoted().reason);
  // Already rejected by the interval: keeps the gate's reason.
  const PromotionDecision worse = DecidePromotion(Diff(-0.2, -0.3, -0.1), {}, false);
  EXPECT_EQ(RejectIfUnchanged(worse, true, 0.8, false).reason, worse.reason);
  // Already forced past the interval: stays forced with the gate's reason.
  const PromotionDecision forced = DecidePromotion(Diff(-0.2, -0.3, -0.1), {}, true);
  const PromotionDecision still = RejectIfUnchanged(forced, true, 0.8, true);
  EXPECT_TRUE(still.promote);
  EXPECT_EQ(still.reason, forced.reason);
}

// Slates: the per-position comparison is CompareOnHoldout on each position's samples, and the
// summary quotes it. Position 0 gains, position 1 loses: the whole-slate difference is their mean.
TEST(CompareByPositionTest, SplitsTheComparisonByPosition) {
  // Samples 0..3 at position 0, 4..7 at position 1 (two slates of 2 interleaved would do as well).
  OpeSamples old_s = OnHoldout({1, 0, 1, 0, 1, 0, 1, 0}, std::vector<double>(8, 0.5),
                               std::vector<double>(8, 0.5));
  OpeSamples new_s = OnHoldout({1, 0, 1, 0, 1, 0, 1, 0}, {1, 0, 1, 0, 0, 1, 0, 1},
                               {0.8, 0.9, 0.8, 0.9, 0.1, 0.2, 0.1, 0.2});
  const std::vector<int32_t> positions = {0, 0, 0, 0, 1, 1, 1, 1};
  absl::StatusOr<std::vector<PositionComparison>> by =
      CompareByPosition(old_s, new_s, positions, {});
  ASSERT_TRUE(by.ok()) << by.status();
  ASSERT_EQ(by->size(), 2u);
  // Position 0 is Better() of the tests above: DR(new) 1.35, difference 0.85.
  EXPECT_EQ((*by)[0].position, 0);
  EXPECT_NEAR((*by)[0].new_policy.value, 1.35, 1e-12);
  EXPECT_NEAR((*by)[0].difference.value, 0.85, 1e-12);
  // Position 1: w = {0, 2, 0, 2}, DR_i = {0.1, 0.2 + 2(0 - 0.5), 0.1, -0.8} -> mean -0.35,
  // difference -0.35 - 0.5 = -0.85.
  EXPECT_EQ((*by)[1].position, 1);
  EXPECT_NEAR((*by)[1].new_policy.value, -0.35, 1e-12);
  EXPECT_NEAR((*by)[1].difference.value, -0.85, 1e-12);
  EXPECT_LT((*by)[1].difference.ci_high, 0.0);
  // The whole slate: the mean of the two.
  absl::StatusOr<OpeComparison> all = CompareOnHoldout(old_s, new_s, {});
  ASSERT_TRUE(all.ok());
  EXPECT_NEAR(all->difference.value, 0.0, 1e-12);
  all->positions = *by;
  const std::string text = GateSummary(*all, DecidePromotion(all->difference, {}, false));
  EXPECT_THAT(text, HasSubstr("per position (position 0: old 0.5000, new 1.3500"));
  EXPECT_THAT(text, HasSubstr("position 1: old 0.5000, new -0.3500, new-old -0.8500"));

  EXPECT_FALSE(CompareByPosition(old_s, new_s, {0, 1}, {}).ok());
  // A position with a single sample has no interval and is left out.
  absl::StatusOr<std::vector<PositionComparison>> lone =
      CompareByPosition(old_s, new_s, {0, 0, 0, 0, 0, 0, 0, 2}, {});
  ASSERT_TRUE(lone.ok());
  ASSERT_EQ(lone->size(), 1u);
  EXPECT_EQ(lone->front().position, 0);
}

// Issue 16: a candidate that improves position 0 and ruins positions 1 and 2 is rejected on the
// whole slate, and the per-position report shows where. 40 slates of 3: at position 0 the candidate
// is Better() (d_i = 0.8 / 0.9), at positions 1 and 2 it serves the unrewarded items
// (d_i = -0.9 / -0.8). Mean d = (0.85 - 2 * 0.85) / 3 = -0.283, sd ~0.84 over n = 120, se ~0.077,
// so the 95% interval's top is ~-0.13 < 0.
TEST(CompareByPositionTest, AGainAtPositionZeroDoesNotHideLossesAtTheOthers) {
  OpeSamples old_s, new_s;
  std::vector<int32_t> positions;
  for (int slate = 0; slate < 40; ++slate) {
    const double r = slate % 2 == 0 ? 1 : 0;
    for (int32_t pos = 0; pos < 3; ++pos) {
      positions.push_back(pos);
      for (OpeSamples* s : {&old_s, &new_s}) {
        s->reward.push_back(r);
        s->pscore.push_back(0.5);
        s->qhat_logged.push_back(0.5);
      }
      old_s.target_prob.push_back(0.5);
      old_s.qhat_under_target.push_back(0.5);
      const bool good = pos == 0;
      new_s.target_prob.push_back(good == (r == 1) ? 1.0 : 0.0);
      new_s.qhat_under_target.push_back(good ? (r == 1 ? 0.8 : 0.9) : (r == 1 ? 0.1 : 0.2));
    }
  }
  absl::StatusOr<OpeComparison> c = CompareOnHoldout(old_s, new_s, {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NEAR(c->difference.value, -0.85 / 3, 1e-12);
  EXPECT_LT(c->difference.ci_high, 0.0);
  EXPECT_FALSE(DecidePromotion(c->difference, {}, false).promote);
  absl::StatusOr<std::vector<PositionComparison>> by =
      CompareByPosition(old_s, new_s, positions, {});
  ASSERT_TRUE(by.ok()) << by.status();
  ASSERT_EQ(by->size(), 3u);
  EXPECT_GT((*by)[0].difference.ci_low, 0.0);   // a sure gain at position 0
  EXPECT_LT((*by)[1].difference.ci_high, 0.0);  // sure losses after it
  EXPECT_LT((*by)[2].difference.ci_high, 0.0);
}

TEST(GateSummaryTest, QuotesBothEstimatesAndTheDecision) {
  OpeComparison c;
  c.old_policy = Diff(0.5, 0.4, 0.6);
  c.new_policy = Diff(0.7, 0.65, 0.75);
  PromotionDecision d;
  d.decision = "promoted";
  d.reason = "because";
  EXPECT_EQ(GateSummary(c, d),
            "DR old 0.5000 [0.4000, 0.6000], new 0.7000 [0.6500, 0.7500]; promoted: because");
  EXPECT_EQ(GateSummary(std::nullopt, d), "promoted: because");
}

}  // namespace
}  // namespace optower
