// Categorical features without torch: schema text and validation, ids from text, the stable hash,
// raw columns, the event log's text form, and the encoding into model input slots.
#include "core/base/categorical.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace optower {
namespace {

using ::testing::HasSubstr;

TEST(CategoricalTest, HashIsStableAcrossBuilds) {
  // Expected values computed independently (Python, the same FNV-1a-64 and SplitMix64
  // definitions): a change here re-buckets every deployed model's inputs.
  EXPECT_EQ(HashBucket("user", 12, 4096), 660);
  EXPECT_EQ(HashBucket("user", 13, 4096), 3687);
  EXPECT_EQ(HashBucket("country", 12, 4096), 588);  // fields hash differently
  EXPECT_EQ(HashBucket("user", -5, 1000003), 246260);
  EXPECT_EQ(CategoricalIdFromText("81ce123cbb5bd8ce818f60fb3586bba5"), 1391621094805402735);
  EXPECT_EQ(CategoricalIdFromText("49"), 49);
  EXPECT_EQ(CategoricalIdFromText("-7"), -7);
}

TEST(CategoricalTest, FieldTextRoundTripsAndRejectsBadSpecs) {
  auto f = CategoricalFieldFromText("user:1024:8:2");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->name, "user");
  EXPECT_EQ(f->buckets, 1024);
  EXPECT_EQ(f->width, 8);
  EXPECT_EQ(f->max_ids, 2);
  EXPECT_EQ(*CategoricalFieldFromText(CategoricalFieldToText(*f)), *f);
  auto defaults = CategoricalFieldFromText("country");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->buckets, CategoricalField().buckets);
  EXPECT_THAT(CategoricalFieldFromText("user:0").status().message(), HasSubstr("buckets=0"));
  EXPECT_THAT(CategoricalFieldFromText("user:16777217").status().message(),
              HasSubstr("buckets=16777217"));
  EXPECT_THAT(CategoricalFieldFromText("user:8:x").status().message(), HasSubstr("not an integer"));
  EXPECT_THAT(CategoricalFieldFromText("us er").status().message(), HasSubstr("[A-Za-z0-9_.-]"));
  EXPECT_THAT(ValidateCategoricalFields({{"a", 8, 4, 1}, {"a", 8, 4, 1}}, "context_field")
                  .message(),
              HasSubstr("context_field[1].name='a': repeated"));
}

TEST(CategoricalTest, ColumnsAppendFeaturesInSchemaOrder) {
  CategoricalColumns cols({"user", "tags"});
  ASSERT_TRUE(cols.AppendFeatures({{"tags", {3, 9}}, {"user", {12}}}).ok());
  ASSERT_TRUE(cols.AppendFeatures({}).ok());
  EXPECT_EQ(cols.rows(), 2);
  EXPECT_THAT(cols.ids(0, 0), ::testing::ElementsAre(12));
  EXPECT_THAT(cols.ids(0, 1), ::testing::ElementsAre(3, 9));
  EXPECT_TRUE(cols.ids(1, 0).empty());
  EXPECT_THAT(cols.AppendFeatures({{"device", {1}}}).message(), HasSubstr("'device'"));
  EXPECT_THAT(cols.AppendFeatures({{"user", {1}}, {"user", {2}}}).message(),
              HasSubstr("repeated"));
  EXPECT_EQ(cols.rows(), 2);  // nothing appended on error
  CategoricalColumns copy({"user", "tags"});
  copy.AppendRow(cols, 0);
  copy.AppendRow(cols, 1);
  EXPECT_EQ(copy, cols);
  copy.Truncate(1);
  EXPECT_EQ(copy.rows(), 1);
}

TEST(CategoricalTest, TextFormRoundTrips) {
  std::vector<CategoricalFeature> f = {{"user", {12}}, {"tags", {3, -9}}, {"empty", {}}};
  const std::string text = CategoricalFeaturesToText(f);
  EXPECT_EQ(text, "user=12;tags=3|-9");
  auto back = CategoricalFeaturesFromText(text);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[1].ids, (std::vector<int64_t>{3, -9}));
  EXPECT_TRUE(CategoricalFeaturesFromText("")->empty());
  EXPECT_FALSE(CategoricalFeaturesFromText("user=x").ok());
  EXPECT_FALSE(CategoricalFeaturesFromText("=1").ok());
}

TEST(CategoricalTest, EncodeRowsWritesBucketsAndEmptySlots) {
  const std::vector<CategoricalField> schema = {{"user", 4096, 8, 1}, {"tags", 100, 4, 3}};
  CategoricalColumns cols({"tags", "user"});  // column order need not match the schema's
  ASSERT_TRUE(cols.AppendFeatures({{"user", {12}}, {"tags", {3, 9}}}).ok());
  ASSERT_TRUE(cols.AppendFeatures({}).ok());
  const float dense[] = {0.5f, -1.0f};
  auto rows = EncodeRows(dense, 1, 2, cols, 0, schema);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u * (1 + 4));
  EXPECT_EQ((*rows)[0], 0.5f);
  EXPECT_EQ((*rows)[1], 660.0f);
  EXPECT_EQ((*rows)[2], static_cast<float>(HashBucket("tags", 3, 100)));
  EXPECT_EQ((*rows)[3], static_cast<float>(HashBucket("tags", 9, 100)));
  EXPECT_EQ((*rows)[4], -1.0f);
  EXPECT_EQ((*rows)[5], -1.0f);
  for (int j = 6; j < 10; ++j) EXPECT_EQ((*rows)[j], -1.0f);
  // The same row given as request features encodes identically.
  std::vector<float> slots(4);
  ASSERT_TRUE(EncodeFeatures({{"tags", {3, 9}}, {"user", {12}}}, schema, slots.data()).ok());
  EXPECT_EQ(std::vector<float>(rows->begin() + 1, rows->begin() + 5), slots);
}

TEST(CategoricalTest, EncodeRejectsFieldsOutsideTheSchemaAndTooManyIds) {
  const std::vector<CategoricalField> schema = {{"user", 64, 8, 1}};
  CategoricalColumns cols({"device"});
  cols.AddCell(std::vector<int64_t>{1});
  const float dense[] = {0.0f};
  EXPECT_THAT(EncodeRows(dense, 1, 1, cols, 0, schema).status().message(),
              HasSubstr("'device' is not in the model's schema (fields: user)"));
  CategoricalColumns two({"user"});
  two.AddCell(std::vector<int64_t>{1, 2});
  EXPECT_THAT(EncodeRows(dense, 1, 1, two, 0, schema).status().message(),
              HasSubstr("row 0: categorical field 'user' has 2 ids"));
  float slot;
  EXPECT_THAT(EncodeFeatures({{"device", {1}}}, schema, &slot).message(),
              HasSubstr("categorical[0].name='device': not a field of the model's schema"));
  EXPECT_THAT(CheckFeaturesAgainstSchema({{"user", {1, 2}}}, schema, "context.categorical")
                  .message(),
              HasSubstr("context.categorical[0] 'user': 2 ids"));
}

TEST(CategoricalTest, DerivedSchemaSizesFieldsFromTheData) {
  CategoricalColumns cols({"user", "tags"});
  for (int64_t u = 0; u < 100; ++u) {
    std::vector<int64_t> tags = {u % 3};
    if (u % 10 == 0) tags.push_back(7);
    ASSERT_TRUE(cols.AppendFeatures({{"user", {u}}, {"tags", tags}}).ok());
  }
  const auto fields = DeriveCategoricalFields(cols, {{"user", 32, 4, 1}});
  ASSERT_EQ(fields.size(), 2u);
  EXPECT_EQ(fields[0], (CategoricalField{"user", 32, 4, 1}));  // given fields are kept
  EXPECT_EQ(fields[1].name, "tags");
  EXPECT_EQ(fields[1].buckets, 16);  // 4 distinct ids x 4 -> 16
  EXPECT_EQ(fields[1].max_ids, 2);
  EXPECT_TRUE(ValidateCategoricalFields(fields, "f").ok());
}

}  // namespace
}  // namespace optower
