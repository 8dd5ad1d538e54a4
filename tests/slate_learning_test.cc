// core/training/slate_learning.h: the names, and the log the top-K correction trains on.
#include "core/training/slate_learning.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace optower {
namespace {

using ::testing::HasSubstr;

// Two slates of sizes 3 and 2: rows (position, prefix): (0,{}), (1,{4}), (2,{4,7}), (0,{}), (1,{2}).
BanditLog TwoSlates() {
  BanditLog log;
  log.dim_context = 1;
  log.contexts = {0.f, 0.f, 0.f, 1.f, 1.f};
  log.actions = {4, 7, 1, 2, 5};
  log.rewards = {1.f, 0.f, 1.f, 0.f, 1.f};
  log.pscores = {0.3f, 0.5f, 0.9f, 0.2f, 0.4f};
  log.first_draw_pscores = {0.3f, 0.1f, 0.05f, 0.2f, 0.01f};
  log.positions = {0, 1, 2, 0, 1};
  log.prefix_offsets = {0, 0, 1, 3, 3, 4};
  log.prefix_rows = {4, 4, 7, 2};
  return log;
}

TEST(SlateLearningTest, NamesRoundTripAndABadNameIsNamed) {
  for (SlateLearning s : {SlateLearning::kPerDraw, SlateLearning::kTopKCorrection}) {
    absl::StatusOr<SlateLearning> parsed = ParseSlateLearning(SlateLearningName(s));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, s);
  }
  absl::StatusOr<SlateLearning> bad = ParseSlateLearning("plackett");
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("slate_learning=plackett"));
}

TEST(SlateLearningTest, TopKCorrectionTrainsOnSingleDrawWeightsWithoutPrefixes) {
  BanditLog log = TwoSlates();
  absl::StatusOr<int> k = ToTopKCorrectionLog(&log);
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(*k, 3) << "the largest slate";
  EXPECT_EQ(log.pscores, (std::vector<float>{0.3f, 0.1f, 0.05f, 0.2f, 0.01f}));
  EXPECT_FALSE(log.has_slates());
  EXPECT_TRUE(log.positions.empty());
  EXPECT_TRUE(log.prefix_rows.empty());
  // The samples themselves are unchanged.
  EXPECT_EQ(log.actions, TwoSlates().actions);
  EXPECT_EQ(log.rewards, TwoSlates().rewards);
  EXPECT_EQ(log.contexts, TwoSlates().contexts);
}

TEST(SlateLearningTest, ALogWithoutSlatesIsLeftAsItIs) {
  BanditLog log = TwoSlates();
  log.positions.clear();
  log.prefix_offsets.clear();
  log.prefix_rows.clear();
  log.first_draw_pscores.clear();
  absl::StatusOr<int> k = ToTopKCorrectionLog(&log);
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(*k, 1);
  EXPECT_EQ(log.pscores, TwoSlates().pscores);
}

TEST(SlateLearningTest, SlatesWithoutFirstDrawPropensitiesAreRefused) {
  BanditLog log = TwoSlates();
  log.first_draw_pscores.pop_back();
  absl::StatusOr<int> k = ToTopKCorrectionLog(&log);
  ASSERT_EQ(k.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(k.status().message(), HasSubstr("4 first-draw propensities for 5 samples"));
  EXPECT_EQ(log.pscores, TwoSlates().pscores) << "nothing changed";
}

}  // namespace
}  // namespace optower
