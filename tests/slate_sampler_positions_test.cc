// SlateSampler beyond position 0 (issue 16): the distribution of every draw given the earlier ones,
// in both exploration modes, against an independent reference; the logged conditional propensities
// against StepDistribution and the draw-remove-renormalise formula; the product of the conditionals
// as the probability of the ordered slate. slate_sampler_test.cc covers position 0.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/serving/slate_sampler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace optower {
namespace {

using ::testing::HasSubstr;

// Chi-square critical values at p = 0.001. Fixed seeds make each test pass or fail
// deterministically; the level only has to let a correct sampler pass for essentially any seed
// choice (1 in 1000) while a wrong distribution fails: with 200k slates, a 5% relative error in a
// cell of probability 0.05 (500 of 10,000 draws off, sd ~100) adds ~25 by itself, and the errors a
// wrong mode makes (position 1 probabilities off by a factor of 2 or more) add thousands.
constexpr double kChi2Crit999Df11 = 31.26;   // scipy.stats.chi2.ppf(0.999, 11)
constexpr double kChi2Crit999Df23 = 49.73;   // scipy.stats.chi2.ppf(0.999, 23)
constexpr double kChi2Crit999Df131 = 186.8;  // Wilson-Hilferty approximation (accurate to ~0.2)

struct Catalog {
  std::vector<int64_t> ids;
  std::vector<float> x;
  std::unique_ptr<ItemIndex> index;
};

Catalog MakeCatalog(int64_t n, uint64_t seed) {
  Catalog c;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  c.x.resize(static_cast<size_t>(n * 4));
  for (float& v : c.x) v = normal(rng);
  for (int64_t i = 0; i < n; ++i) c.ids.push_back(100 + 3 * i);
  ItemIndexOptions o;
  o.type = ItemIndexOptions::Type::kExact;
  auto built = ItemIndex::Build(c.x.data(), n, /*dim=*/4, c.ids, o);
  EXPECT_TRUE(built.ok()) << built.status();
  if (built.ok()) c.index = std::move(built).value();
  return c;
}

SlateSampler MustCreate(double epsilon, double temperature, SlateExploration mode) {
  SlateSamplerOptions o;
  o.epsilon = epsilon;
  o.temperature = temperature;
  o.exploration = mode;
  auto s = SlateSampler::Create(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

// The conditional distribution of the next draw, written from the definitions in
// core/serving/slate_sampler.h independently of the sampler's code (no shifts, no caching).
std::map<int64_t, double> ReferenceStep(SlateExploration mode, double eps, double tau,
                                        const std::vector<SearchHit>& cands,
                                        const std::vector<int64_t>& eligible,
                                        const std::set<int64_t>& drawn) {
  std::map<int64_t, double> p;
  const double n = static_cast<double>(eligible.size());
  if (mode == SlateExploration::kPerSlate) {
    std::map<int64_t, double> pi0;
    for (int64_t id : eligible) pi0[id] = eps / n;
    double z = 0.0;
    for (const SearchHit& h : cands) z += std::exp(h.score / tau);
    for (const SearchHit& h : cands) pi0[h.item_id] += (1.0 - eps) * std::exp(h.score / tau) / z;
    double left = 1.0;
    for (int64_t id : drawn) left -= pi0[id];
    for (const auto& [id, q] : pi0) p[id] = drawn.count(id) ? 0.0 : q / left;
    return p;
  }
  const double remaining = n - static_cast<double>(drawn.size());
  double z = 0.0;
  for (const SearchHit& h : cands) {
    if (!drawn.count(h.item_id)) z += std::exp(h.score / tau);
  }
  for (int64_t id : eligible) p[id] = drawn.count(id) ? 0.0 : (z > 0 ? eps : 1.0) / remaining;
  for (const SearchHit& h : cands) {
    if (!drawn.count(h.item_id)) p[h.item_id] += (1.0 - eps) * std::exp(h.score / tau) / z;
  }
  return p;
}

double ChiSquareTerm(double observed, double expected) {
  return (observed - expected) * (observed - expected) / expected;
}

class SlatePositionsTest : public ::testing::TestWithParam<SlateExploration> {
 protected:
  void SetUp() override {
    catalog_ = MakeCatalog(/*n=*/12, /*seed=*/1);
    ASSERT_NE(catalog_.index, nullptr);
    // A policy that puts most of its softmax mass on one item (the case of issue 16): at tau 0.5
    // the shares are 0.87, 0.08, 0.035, 0.016.
    cands_ = {{catalog_.ids[0], 2.0f}, {catalog_.ids[1], 0.8f}, {catalog_.ids[2], 0.4f},
              {catalog_.ids[3], 0.0f}};
    query_ = {0.5f, -0.25f, 1.0f, 0.0f};
  }
  const double eps_ = 0.2, tau_ = 0.5;
  Catalog catalog_;
  std::vector<SearchHit> cands_;
  std::vector<float> query_;
};

INSTANTIATE_TEST_SUITE_P(BothModes, SlatePositionsTest,
                         ::testing::Values(SlateExploration::kPerPosition,
                                           SlateExploration::kPerSlate),
                         [](const auto& info) {
                           return std::string(SlateExplorationName(info.param));
                         });

TEST_P(SlatePositionsTest, FirstThreePositionsFollowTheStepDistributions) {
  const SlateSampler sampler = MustCreate(eps_, tau_, GetParam());
  const std::vector<int64_t>& ids = catalog_.ids;
  // Expected joint law of (a0, a1) and marginal of a2 from the reference.
  std::map<std::pair<int64_t, int64_t>, double> joint;
  std::map<int64_t, double> third;
  const auto p0 = ReferenceStep(GetParam(), eps_, tau_, cands_, ids, {});
  for (int64_t a : ids) {
    const auto p1 = ReferenceStep(GetParam(), eps_, tau_, cands_, ids, {a});
    for (int64_t b : ids) {
      if (b == a) continue;
      joint[{a, b}] = p0.at(a) * p1.at(b);
      const auto p2 = ReferenceStep(GetParam(), eps_, tau_, cands_, ids, {a, b});
      for (const auto& [c, q] : p2) third[c] += p0.at(a) * p1.at(b) * q;
    }
  }
  const int64_t slates = 200000;
  std::map<std::pair<int64_t, int64_t>, int64_t> joint_count;
  std::map<int64_t, int64_t> third_count;
  for (int64_t s = 0; s < slates; ++s) {
    auto slate = sampler.Sample(query_.data(), cands_, *catalog_.index, {}, /*k=*/3, 7000000 + s);
    ASSERT_TRUE(slate.ok()) << slate.status();
    ++joint_count[{slate->items[0].item_id, slate->items[1].item_id}];
    ++third_count[slate->items[2].item_id];
  }
  double chi2_joint = 0.0, chi2_third = 0.0;
  for (const auto& [cell, q] : joint) {
    chi2_joint += ChiSquareTerm(static_cast<double>(joint_count[cell]), q * slates);
  }
  for (const auto& [c, q] : third) {
    chi2_third += ChiSquareTerm(static_cast<double>(third_count[c]), q * slates);
  }
  std::printf("%s: chi-square (a0, a1) %.1f (df 131, critical %.1f), a2 %.1f (df 11, "
              "critical %.2f)\n",
              SlateExplorationName(GetParam()), chi2_joint, kChi2Crit999Df131, chi2_third,
              kChi2Crit999Df11);
  EXPECT_LT(chi2_joint, kChi2Crit999Df131);
  EXPECT_LT(chi2_third, kChi2Crit999Df11);
}

TEST(SlatePositionsModes, ModesDifferAfterPositionZero) {
  // The chi-square test above can only tell the modes apart if their laws differ: at position 1
  // after the dominant item, per-position gives the runner-up 0.50, per-slate 0.28.
  const Catalog c = MakeCatalog(12, 1);
  const std::vector<SearchHit> cands = {{c.ids[0], 2.0f}, {c.ids[1], 0.8f}, {c.ids[2], 0.4f},
                                        {c.ids[3], 0.0f}};
  const auto per_position =
      ReferenceStep(SlateExploration::kPerPosition, 0.2, 0.5, cands, c.ids, {c.ids[0]});
  const auto per_slate =
      ReferenceStep(SlateExploration::kPerSlate, 0.2, 0.5, cands, c.ids, {c.ids[0]});
  EXPECT_NEAR(per_position.at(c.ids[1]), 0.50, 0.01);
  EXPECT_NEAR(per_slate.at(c.ids[1]), 0.28, 0.01);
}

TEST_P(SlatePositionsTest, LoggedConditionalIsTheStepDistributionAtTheDrawnItem) {
  const SlateSampler sampler = MustCreate(eps_, tau_, GetParam());
  const ItemIndex& cat = *catalog_.index;
  // An excluded candidate and an excluded outside item: N = 10, |C'| = 3.
  const std::vector<int64_t> exclude = {catalog_.ids[1], catalog_.ids[9]};
  std::vector<int64_t> eligible;
  for (int64_t id : catalog_.ids) {
    if (id != exclude[0] && id != exclude[1]) eligible.push_back(id);
  }
  for (uint64_t seed = 0; seed < 300; ++seed) {
    auto slate = sampler.Sample(query_.data(), cands_, cat, exclude, /*k=*/8, seed);
    ASSERT_TRUE(slate.ok()) << slate.status();
    std::vector<int64_t> drawn;
    for (const SlateItem& it : slate->items) {
      auto step = sampler.StepDistribution(cands_, cat, exclude, drawn);
      ASSERT_TRUE(step.ok()) << step.status();
      double sum = 0.0;
      for (double q : *step) sum += q;
      EXPECT_NEAR(sum, 1.0, 1e-12);
      // Sample and StepDistribution run the same arithmetic on the same inputs: a few ulp allow
      // only for the compiler contracting the two call sites differently.
      const double q = (*step)[cat.RowOf(it.item_id)];
      EXPECT_NEAR(it.conditional_propensity, q, 4e-16 * q) << "position " << it.position;
      // And both agree with the reference written from the definitions (1e-12: a dozen roundings).
      const std::set<int64_t> drawn_set(drawn.begin(), drawn.end());
      const auto ref = ReferenceStep(GetParam(), eps_, tau_,
                                     {cands_[0], cands_[2], cands_[3]}, eligible, drawn_set);
      EXPECT_NEAR(it.conditional_propensity, ref.at(it.item_id), 1e-12);
      EXPECT_GT(it.conditional_propensity, 0.0);
      EXPECT_LE(it.conditional_propensity, 1.0);
      for (int64_t id : exclude) EXPECT_EQ((*step)[cat.RowOf(id)], 0.0);
      for (int64_t id : drawn) EXPECT_EQ((*step)[cat.RowOf(id)], 0.0);
      drawn.push_back(it.item_id);
    }
  }
}

TEST_P(SlatePositionsTest, PositionZeroIsPi0AndTheSameDrawInBothModes) {
  const SlateSampler sampler = MustCreate(eps_, tau_, GetParam());
  const SlateSampler per_slate = MustCreate(eps_, tau_, SlateExploration::kPerSlate);
  for (uint64_t seed = 0; seed < 500; ++seed) {
    auto a = sampler.Sample(query_.data(), cands_, *catalog_.index, {}, /*k=*/1, seed);
    auto b = per_slate.Sample(query_.data(), cands_, *catalog_.index, {}, /*k=*/1, seed);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->items[0].item_id, b->items[0].item_id) << "seed " << seed;
    EXPECT_EQ(a->items[0].propensity, b->items[0].propensity);
    // propensity / total with total = 1 up to the rounding of a 12-term sum.
    EXPECT_NEAR(a->items[0].conditional_propensity, a->items[0].propensity, 1e-14);
  }
}

TEST_P(SlatePositionsTest, ProductOfConditionalsIsTheProbabilityOfTheOrderedSlate) {
  // Four items, two of them candidates, K = 4: a slate is one of the 24 orders. Their
  // probabilities (products of the step distributions) sum to 1, every slate's logged product
  // equals its own, and the frequencies of the orders follow them.
  const Catalog tiny = MakeCatalog(/*n=*/4, /*seed=*/3);
  const std::vector<SearchHit> cands = {{tiny.ids[2], 1.0f}, {tiny.ids[0], 0.0f}};
  const SlateSampler sampler = MustCreate(/*epsilon=*/0.3, /*temperature=*/1.0, GetParam());
  std::map<std::vector<int64_t>, double> prob;
  std::vector<int64_t> order = tiny.ids;
  std::sort(order.begin(), order.end());
  do {
    double p = 1.0;
    for (size_t j = 0; j < order.size(); ++j) {
      auto step = sampler.StepDistribution(
          cands, *tiny.index, {}, std::vector<int64_t>(order.begin(), order.begin() + j));
      ASSERT_TRUE(step.ok()) << step.status();
      p *= (*step)[tiny.index->RowOf(order[j])];
    }
    prob[order] = p;
  } while (std::next_permutation(order.begin(), order.end()));
  double total = 0.0;
  for (const auto& [o, p] : prob) total += p;
  EXPECT_NEAR(total, 1.0, 1e-12);

  const int64_t slates = 100000;
  std::map<std::vector<int64_t>, int64_t> count;
  for (int64_t s = 0; s < slates; ++s) {
    auto slate = sampler.Sample(query_.data(), cands, *tiny.index, {}, /*k=*/4, 9000000 + s);
    ASSERT_TRUE(slate.ok()) << slate.status();
    std::vector<int64_t> ids;
    double product = 1.0;
    for (const SlateItem& it : slate->items) {
      ids.push_back(it.item_id);
      product *= it.conditional_propensity;
    }
    if (s < 1000) EXPECT_NEAR(product, prob.at(ids), 1e-14);
    ++count[ids];
  }
  double chi2 = 0.0;
  for (const auto& [o, p] : prob) chi2 += ChiSquareTerm(static_cast<double>(count[o]), p * slates);
  std::printf("%s: chi-square over the 24 orders %.1f (df 23, critical %.2f)\n",
              SlateExplorationName(GetParam()), chi2, kChi2Crit999Df23);
  EXPECT_LT(chi2, kChi2Crit999Df23);
}

TEST(SlatePositionsPerSlate, ConditionalIsPi0OverTheMassLeft) {
  const Catalog c = MakeCatalog(12, 1);
  const std::vector<SearchHit> cands = {{c.ids[0], 2.0f}, {c.ids[1], 0.8f}, {c.ids[2], 0.4f}};
  const std::vector<float> q = {0.5f, -0.25f, 1.0f, 0.0f};
  const SlateSampler sampler = MustCreate(0.2, 0.5, SlateExploration::kPerSlate);
  for (uint64_t seed = 0; seed < 300; ++seed) {
    auto slate = sampler.Sample(q.data(), cands, *c.index, {}, /*k=*/6, seed);
    ASSERT_TRUE(slate.ok()) << slate.status();
    double drawn_mass = 0.0;
    for (const SlateItem& it : slate->items) {
      // 1 - sum of at most 5 propensities loses ~1e-16 absolute; the mass left is >= 0.05 here,
      // so the ratio is within ~1e-14 relative.
      const double expected = it.propensity / (1.0 - drawn_mass);
      EXPECT_NEAR(it.conditional_propensity, expected, 1e-13 * expected);
      drawn_mass += it.propensity;
    }
  }
}

TEST(SlatePositionsPerPosition, EpsilonZeroDrawsOnlyCandidatesWithNonZeroPi0) {
  const Catalog c = MakeCatalog(12, 1);
  const std::vector<float> q = {0.5f, -0.25f, 1.0f, 0.0f};
  const SlateSampler sampler = MustCreate(0.0, 1.0, SlateExploration::kPerPosition);
  const std::vector<SearchHit> cands = {{c.ids[4], 0.0f}, {c.ids[5], -3.0f}};
  for (uint64_t seed = 0; seed < 50; ++seed) {
    auto slate = sampler.Sample(q.data(), cands, *c.index, {}, /*k=*/2, seed);
    ASSERT_TRUE(slate.ok()) << slate.status();
    // Nothing but the other candidate is left: probability 1 (total = its own weight).
    EXPECT_EQ(slate->items[1].conditional_propensity, 1.0);
    EXPECT_TRUE(slate->items[0].in_candidates && slate->items[1].in_candidates);
  }
  auto too_many = sampler.Sample(q.data(), cands, *c.index, {}, /*k=*/3, 1);
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_many.status().message()), HasSubstr("k=3: with epsilon=0"));
  // exp(-800) underflows: pi_0 = 0 cannot be logged, so that candidate is not drawable at any
  // position, even once the best is drawn and the softmax is re-shifted by the -700 one (which
  // would give it weight e^-100).
  const std::vector<SearchHit> underflow = {
      {c.ids[4], 0.0f}, {c.ids[5], -800.0f}, {c.ids[6], -700.0f}};
  for (uint64_t seed = 0; seed < 50; ++seed) {
    auto slate = sampler.Sample(q.data(), underflow, *c.index, {}, /*k=*/2, seed);
    ASSERT_TRUE(slate.ok()) << slate.status();
    for (const SlateItem& it : slate->items) {
      EXPECT_NE(it.item_id, c.ids[5]);
      EXPECT_GT(it.propensity, 0.0);
    }
    EXPECT_EQ(slate->items[1].conditional_propensity, 1.0);
  }
  auto refused = sampler.Sample(q.data(), underflow, *c.index, {}, /*k=*/3, 1);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("only 2 candidates"));
  auto step = sampler.StepDistribution(underflow, *c.index, {}, {c.ids[4]});
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ((*step)[5], 0.0);
  EXPECT_EQ((*step)[6], 1.0);
}

TEST(SlatePositionsPerPosition, SoftmaxIsReshiftedFarBelowTheBestCandidate) {
  // exp(-800) underflows: shifted by the best score of C', the two low candidates would weigh 0
  // once the best is drawn. Shifted by the best remaining score they keep their softmax 1 : e^-1.
  const Catalog c = MakeCatalog(12, 1);
  const std::vector<SearchHit> cands = {{c.ids[0], 0.0f}, {c.ids[1], -800.0f}, {c.ids[2], -801.0f}};
  const std::vector<float> q = {0.5f, -0.25f, 1.0f, 0.0f};
  const SlateSampler sampler = MustCreate(0.2, 1.0, SlateExploration::kPerPosition);
  auto step = sampler.StepDistribution(cands, *c.index, {}, {c.ids[0]});
  ASSERT_TRUE(step.ok()) << step.status();
  const double share = 1.0 / (1.0 + std::exp(-1.0));
  EXPECT_NEAR((*step)[1], 0.8 * share + 0.2 / 11, 1e-12);
  EXPECT_NEAR((*step)[2], 0.8 * (1.0 - share) + 0.2 / 11, 1e-12);
  EXPECT_NEAR((*step)[5], 0.2 / 11, 1e-15);
  int checked = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    auto slate = sampler.Sample(q.data(), cands, *c.index, {}, /*k=*/3, seed);
    ASSERT_TRUE(slate.ok()) << slate.status();
    if (slate->items[0].item_id != c.ids[0]) continue;
    const SlateItem& second = slate->items[1];
    const double expected = (*step)[c.index->RowOf(second.item_id)];
    EXPECT_NEAR(second.conditional_propensity, expected, 4e-16 * expected);
    ++checked;
  }
  EXPECT_GT(checked, 100);  // the best item comes first with probability 0.8 + 0.2/12
}

TEST(SlatePositionsPerPosition, OnceTheCandidatesAreGoneTheDrawIsUniform) {
  const Catalog c = MakeCatalog(12, 1);
  const std::vector<SearchHit> cands = {{c.ids[0], 2.0f}};
  const SlateSampler sampler = MustCreate(0.2, 0.5, SlateExploration::kPerPosition);
  auto step = sampler.StepDistribution(cands, *c.index, {c.ids[11]}, {c.ids[0], c.ids[5]});
  ASSERT_TRUE(step.ok()) << step.status();
  for (int64_t row = 0; row < 12; ++row) {
    const int64_t id = c.ids[row];
    const bool gone = id == c.ids[0] || id == c.ids[5] || id == c.ids[11];
    EXPECT_NEAR((*step)[row], gone ? 0.0 : 1.0 / 9.0, 1e-15) << "row " << row;
  }
}

TEST(SlatePositions, GreedyConditionalIsOneAndStepDistributionIsRefused) {
  SlateSamplerOptions o;
  o.greedy = true;
  auto sampler = SlateSampler::Create(o);
  ASSERT_TRUE(sampler.ok());
  const Catalog c = MakeCatalog(12, 1);
  const std::vector<SearchHit> cands = {{c.ids[0], 2.0f}, {c.ids[1], 0.8f}};
  const std::vector<float> q = {0.5f, -0.25f, 1.0f, 0.0f};
  auto slate = sampler->Sample(q.data(), cands, *c.index, {}, 2, 1);
  ASSERT_TRUE(slate.ok());
  for (const SlateItem& it : slate->items) EXPECT_EQ(it.conditional_propensity, 1.0);
  EXPECT_EQ(sampler->StepDistribution(cands, *c.index, {}, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(SlatePositions, StepDistributionRejectsIneligibleDrawnIds) {
  const Catalog c = MakeCatalog(12, 1);
  const std::vector<SearchHit> cands = {{c.ids[0], 2.0f}, {c.ids[1], 0.8f}};
  const SlateSampler sampler = MustCreate(0.2, 0.5, SlateExploration::kPerPosition);
  auto expect_invalid = [](const absl::Status& st, const std::string& fragment) {
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
    EXPECT_THAT(std::string(st.message()), HasSubstr(fragment));
  };
  expect_invalid(sampler.StepDistribution(cands, *c.index, {}, {101}).status(),
                 "drawn[0]=101: not in the catalog");
  expect_invalid(sampler.StepDistribution(cands, *c.index, {c.ids[3]}, {c.ids[3]}).status(),
                 "excluded");
  expect_invalid(sampler.StepDistribution(cands, *c.index, {}, {c.ids[0], c.ids[0]}).status(),
                 "drawn[1]");
  expect_invalid(sampler.StepDistribution(cands, *c.index, {}, {c.ids[5], c.ids[5]}).status(),
                 "repeated");
  expect_invalid(sampler.StepDistribution(cands, *c.index, {}, c.ids).status(), "nothing");
}

TEST(SlatePositions, ParsesTheModeNames) {
  EXPECT_EQ(*ParseSlateExploration("per_position"), SlateExploration::kPerPosition);
  EXPECT_EQ(*ParseSlateExploration("per_slate"), SlateExploration::kPerSlate);
  EXPECT_STREQ(SlateExplorationName(SlateExploration::kPerSlate), "per_slate");
  const absl::Status bad = ParseSlateExploration("per_item").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("slate_exploration='per_item'"));
  EXPECT_EQ(SlateSamplerOptions{}.exploration, SlateExploration::kPerPosition);
}

}  // namespace
}  // namespace optower
