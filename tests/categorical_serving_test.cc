// Issue 12 in the serving engine (no gRPC): categorical context features validated against the
// served model's schema before any work, encoded into the user tower, logged with the request and
// read back into a training snapshot; categorical item fields through UpsertItems/DeleteItems; the
// recall probe's encoded rows; swaps to another schema refused.
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "core/base/categorical.h"
#include "core/serving/catalog_edit.h"
#include "core/serving/context_sample.h"
#include "core/serving/index_probe.h"
#include "core/serving/model_snapshot.h"
#include "core/serving/retrieval_engine.h"
#include "core/storage/file_catalog_store.h"
#include "core/storage/event_log.h"
#include "core/storage/sqlite_event_log.h"
#include "core/training/training_snapshot.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/serving_fixture.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using testutil::RandomCatalog;
using testutil::TempDir;
using testutil::TinyCategoricalModel;
using testutil::TinyModel;

constexpr int64_t kDimContext = 3;
constexpr int64_t kDimItem = 2;

std::vector<CategoricalField> ContextFields() { return {{"user", 256, 4, 1}, {"country", 64, 4, 1}}; }
std::vector<CategoricalField> ItemFields() { return {{"brand", 64, 4, 1}, {"tags", 64, 4, 2}}; }

std::vector<int64_t> Ids(const CategoricalColumns& cols, int64_t row, int64_t field) {
  const absl::Span<const int64_t> ids = cols.ids(row, field);
  return std::vector<int64_t>(ids.begin(), ids.end());
}

class CategoricalServingTest : public ::testing::Test {
 protected:
  void Init(std::shared_ptr<const TwoTowerModel> model, const ItemCatalog& catalog) {
    model_ = std::move(model);
    ASSERT_NE(model_, nullptr);
    ModelSnapshot::Options snapshot_options;
    snapshot_options.index.type = ItemIndexOptions::Type::kExact;
    RetrievalEngineOptions options;
    options.snapshot = snapshot_options;
    options.max_categorical_features = 4;
    absl::StatusOr<std::shared_ptr<const ModelSnapshot>> snap =
        ModelSnapshot::Build("v1", model_, catalog, /*catalog_version=*/0, snapshot_options);
    ASSERT_TRUE(snap.ok()) << snap.status();
    EventLogOptions log_options;
    log_options.path = dir_.File("events.sqlite");
    log_options.max_commit_delay = absl::Milliseconds(1);
    absl::StatusOr<std::unique_ptr<EventLog>> log = SqliteEventLog::Open(log_options);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
    absl::StatusOr<std::unique_ptr<RetrievalEngine>> engine =
        RetrievalEngine::Create(options, *snap, log_.get());
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
  }
  void InitCategorical() {
    catalog_ = RandomCatalog(12, kDimItem, /*seed=*/3);
    Init(TinyCategoricalModel(kDimContext, catalog_, ContextFields(), ItemFields(), /*seed=*/5),
         catalog_);
  }

  RetrieveRequest Request(std::vector<CategoricalFeature> features, uint64_t seed = 1) const {
    RetrieveRequest r;
    r.context = {0.5f, -1.0f, 0.25f};
    r.categorical = std::move(features);
    r.k = 3;
    r.seed = seed;
    return r;
  }

  std::vector<EventLog::JoinedRow> ReadLog() {
    EXPECT_TRUE(log_->Flush().ok());
    absl::StatusOr<std::vector<EventLog::JoinedRow>> rows = log_->ReadJoined({});
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *rows : std::vector<EventLog::JoinedRow>{};
  }

  TempDir dir_{"categorical_serving_test"};
  ItemCatalog catalog_;
  std::shared_ptr<const TwoTowerModel> model_;
  std::unique_ptr<EventLog> log_;
  std::unique_ptr<RetrievalEngine> engine_;
};

TEST_F(CategoricalServingTest, RetrieveUsesAndLogsTheFeatures) {
  InitCategorical();
  absl::StatusOr<RetrieveResult> a = engine_->Retrieve(Request({{"user", {12}}, {"country", {49}}}));
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<RetrieveResult> b = engine_->Retrieve(Request({{"user", {13}}, {"country", {49}}}));
  ASSERT_TRUE(b.ok()) << b.status();
  absl::StatusOr<RetrieveResult> c = engine_->Retrieve(Request({}));  // no features: empty slots
  ASSERT_TRUE(c.ok()) << c.status();
  // The features reach the user tower: the scores equal <u(encoded x), v(a)> of the model's own
  // encoding of dense + categorical features.
  absl::StatusOr<std::vector<float>> x =
      model_->EncodeContext(Request({}).context.data(), {{"user", {12}}, {"country", {49}}}, "t");
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(static_cast<int64_t>(x->size()), ContextInputWidth(model_->config()));
  absl::StatusOr<std::vector<float>> u = model_->EmbedContexts(x->data(), 1);
  ASSERT_TRUE(u.ok());
  const std::shared_ptr<const ModelSnapshot> snap = engine_->snapshot();
  const SlateItem& first = a->items[0];
  const float* v = snap->item_embedding(snap->index().RowOf(first.item_id));
  float dot = 0;
  for (int64_t j = 0; j < snap->embedding_dim(); ++j) dot += (*u)[j] * v[j];
  EXPECT_NEAR(first.score, dot, 1e-4f * (1.0f + std::fabs(dot)));

  const std::vector<EventLog::JoinedRow> rows = ReadLog();
  ASSERT_EQ(rows.size(), 9u);
  EXPECT_EQ(rows[0].categorical, "user=12;country=49");
  EXPECT_EQ(rows[2].categorical, "user=12;country=49");
  EXPECT_EQ(rows[3].categorical, "user=13;country=49");
  EXPECT_EQ(rows[6].categorical, "");
}

TEST_F(CategoricalServingTest, FeaturesOutsideTheSchemaAreRefusedBeforeAnyWork) {
  InitCategorical();
  struct Case {
    std::vector<CategoricalFeature> features;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{{"user", {1}}, {"foo", {2}}},
       "context.categorical[1].name='foo': not a field of the model's schema (fields: user, "
       "country)"},
      {{{"user", {1}}, {"user", {2}}}, "context.categorical[1].name='user': repeated"},
      {{{"country", {1, 2}}}, "context.categorical[0] 'country': 2 ids"},
      {{{"", {1}}}, "context.categorical[0].name=''"},
      {{{"user", {1}}, {"a", {}}, {"b", {}}, {"c", {}}, {"d", {}}},
       "context.categorical has 5 features: at most max_categorical_features=4"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<RetrieveResult> r = engine_->Retrieve(Request(c.features));
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << c.message << ": " << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message));
  }
  EXPECT_TRUE(ReadLog().empty()) << "refused requests log nothing";
}

TEST_F(CategoricalServingTest, DenseOnlyModelRefusesCategoricalFeatures) {
  catalog_ = RandomCatalog(6, kDimItem, 3);
  Init(TinyModel(kDimContext, catalog_, 1.0, 5), catalog_);
  absl::StatusOr<RetrieveResult> r = engine_->Retrieve(Request({{"user", {1}}}));
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("context.categorical[0].name='user': not a field of the model's schema "
                        "(fields: none)"));
  ASSERT_TRUE(engine_->Retrieve(Request({})).ok());
  EXPECT_EQ(ReadLog()[0].categorical, "");
}

// Retrieve -> event log -> the trainer's snapshot: the features come back as the BanditLog's
// categorical columns, in the served schema's field order.
TEST_F(CategoricalServingTest, LoggedFeaturesRoundTripIntoTheTrainingSnapshot) {
  InitCategorical();
  ASSERT_TRUE(engine_->Retrieve(Request({{"country", {49}}, {"user", {12}}})).ok());
  ASSERT_TRUE(engine_->Retrieve(Request({{"user", {-7}}})).ok());
  ASSERT_TRUE(log_->Flush().ok());
  absl::StatusOr<int64_t> watermark = log_->MaxServedId();
  ASSERT_TRUE(watermark.ok());
  SnapshotOptions options;
  options.attribution_window = absl::ZeroDuration();  // every row counts (default reward)
  TrainingSnapshot snap;
  snap.log.dim_context = kDimContext;
  snap.context_fields = model_->config().context_fields;
  SnapshotReadRange range;
  range.watermark = *watermark;
  ASSERT_TRUE(ReadTrainingSnapshot(*log_, range, engine_->snapshot()->catalog(), options,
                                   absl::Now(), nullptr, &snap)
                  .ok());
  ASSERT_EQ(snap.log.size(), 6);
  const CategoricalColumns& cols = snap.log.context_categorical;
  EXPECT_EQ(cols.fields(), (std::vector<std::string>{"user", "country"}));
  ASSERT_EQ(cols.rows(), 6);
  for (int64_t row = 0; row < 3; ++row) {
    EXPECT_EQ(Ids(cols, row, 0), std::vector<int64_t>{12});
    EXPECT_EQ(Ids(cols, row, 1), std::vector<int64_t>{49});
  }
  for (int64_t row = 3; row < 6; ++row) {
    EXPECT_EQ(Ids(cols, row, 0), std::vector<int64_t>{-7});
    EXPECT_TRUE(Ids(cols, row, 1).empty());
  }
  // The model encodes the snapshot's log as the engine encoded the requests.
  absl::StatusOr<std::vector<float>> encoded = model_->EncodeLogContexts(snap.log);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  absl::StatusOr<std::vector<float>> served = model_->EncodeContext(
      Request({}).context.data(), {{"user", {12}}, {"country", {49}}}, "t");
  ASSERT_TRUE(served.ok());
  EXPECT_EQ(std::vector<float>(encoded->begin(), encoded->begin() + served->size()), *served);
}

TEST_F(CategoricalServingTest, CategoricalItemFieldsFollowTheirItemsThroughChanges) {
  InitCategorical();
  ItemCatalog upsert = RandomCatalog(3, kDimItem, /*seed=*/9, /*first_id=*/1000);
  upsert.ids[2] = 101;  // an existing item: replaced in place
  upsert.categorical = CategoricalColumns({"tags", "brand"});  // any order, subset of the schema
  ASSERT_TRUE(upsert.categorical.AppendFeatures({{"brand", {5}}, {"tags", {1, 2}}}).ok());
  ASSERT_TRUE(upsert.categorical.AppendFeatures({}).ok());
  ASSERT_TRUE(upsert.categorical.AppendFeatures({{"brand", {6}}}).ok());
  absl::StatusOr<CatalogChangeResult> up = engine_->UpsertItems(upsert);
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->inserted, 2);
  EXPECT_EQ(up->updated, 1);
  const ItemCatalog& cat = engine_->snapshot()->catalog();
  ASSERT_EQ(cat.size(), 14);
  EXPECT_EQ(cat.categorical.fields(), (std::vector<std::string>{"brand", "tags"}));
  ASSERT_EQ(cat.categorical.rows(), 14);
  EXPECT_EQ(Ids(cat.categorical, 1, 0), std::vector<int64_t>{6});  // id 101, in place
  EXPECT_TRUE(Ids(cat.categorical, 0, 0).empty());
  EXPECT_EQ(cat.ids[12], 1000);
  EXPECT_EQ(Ids(cat.categorical, 12, 0), std::vector<int64_t>{5});
  EXPECT_EQ(Ids(cat.categorical, 12, 1), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(Ids(cat.categorical, 13, 0).empty());

  // Cold start: the new item is embedded from its features, as the model embeds it.
  ItemCatalog one;
  one.dim_features = kDimItem;
  one.ids = {1000};
  one.features.assign(upsert.feature(0), upsert.feature(0) + kDimItem);
  one.categorical = CategoricalColumns({"brand", "tags"});
  ASSERT_TRUE(one.categorical.AppendFeatures({{"brand", {5}}, {"tags", {1, 2}}}).ok());
  absl::StatusOr<std::vector<float>> want = model_->EmbedItems(one);
  ASSERT_TRUE(want.ok()) << want.status();
  const std::shared_ptr<const ModelSnapshot> snap = engine_->snapshot();
  const float* got = snap->item_embedding(snap->index().RowOf(1000));
  for (int64_t j = 0; j < snap->embedding_dim(); ++j) {
    EXPECT_NEAR(got[j], (*want)[j], 1e-5f * (1.0f + std::fabs((*want)[j])));
  }

  // Deletes take the item's categorical row with it.
  ASSERT_TRUE(engine_->DeleteItems({100, 1000}).ok());
  const ItemCatalog& after = engine_->snapshot()->catalog();
  ASSERT_EQ(after.categorical.rows(), 12);
  EXPECT_EQ(after.ids[0], 101);
  EXPECT_EQ(Ids(after.categorical, 0, 0), std::vector<int64_t>{6});
  EXPECT_EQ(after.ids[11], 1001);
  EXPECT_TRUE(Ids(after.categorical, 11, 0).empty());

  // A full rebuild (model swap) embeds the catalog with its categorical features.
  ASSERT_TRUE(engine_->ReplaceModel(
      "v2", TinyCategoricalModel(kDimContext, catalog_, ContextFields(), ItemFields(), 6)).ok());
  EXPECT_EQ(engine_->snapshot()->catalog().categorical, after.categorical);
}

// The engine's persist hook saves the catalog with its categorical columns (items CSV c:<name>),
// and the store loads them back: a restart serves the same item features.
TEST_F(CategoricalServingTest, CatalogStoreKeepsCategoricalItemColumns) {
  InitCategorical();
  ItemCatalog upsert = RandomCatalog(2, kDimItem, 9, 1000);
  upsert.categorical = CategoricalColumns({"tags"});
  ASSERT_TRUE(upsert.categorical.AppendFeatures({{"tags", {4, -5}}}).ok());
  ASSERT_TRUE(upsert.categorical.AppendFeatures({}).ok());
  ASSERT_TRUE(engine_->UpsertItems(upsert).ok());
  const ItemCatalog& served = engine_->snapshot()->catalog();
  absl::StatusOr<std::unique_ptr<CatalogStore>> store = FileCatalogStore::Open(dir_.path());
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Save(served, 1).ok());
  absl::StatusOr<std::optional<StoredCatalog>> loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->items.categorical, served.categorical);
  EXPECT_TRUE(SameCatalog((*loaded)->items, served));
  ItemCatalog other = served;
  other.categorical = CategoricalColumns();
  EXPECT_FALSE(SameCatalog(other, served));
}

TEST_F(CategoricalServingTest, UpsertWithAFieldOutsideTheItemSchemaIsRefusedNamingIt) {
  InitCategorical();
  ItemCatalog upsert = RandomCatalog(2, kDimItem, 9, 1000);
  upsert.categorical = CategoricalColumns({"brand", "colour"});
  ASSERT_TRUE(upsert.categorical.AppendFeatures({{"brand", {1}}}).ok());
  ASSERT_TRUE(upsert.categorical.AppendFeatures({{"colour", {3}}}).ok());
  absl::Status s = engine_->UpsertItems(upsert).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("items[1].categorical 'colour': not a field of the model's item schema "
                        "(fields: brand, tags)"));
  ItemCatalog many = RandomCatalog(1, kDimItem, 9, 1000);
  many.categorical = CategoricalColumns({"tags"});
  ASSERT_TRUE(many.categorical.AppendFeatures({{"tags", {1, 2, 3}}}).ok());
  s = engine_->UpsertItems(many).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("items[0].categorical 'tags': 3 ids"));
  EXPECT_EQ(engine_->snapshot()->catalog_version(), 0) << "failed changes publish nothing";
}

TEST_F(CategoricalServingTest, SwapToAnotherSchemaIsRefused) {
  InitCategorical();
  std::vector<CategoricalField> other = ContextFields();
  other[1].buckets = 128;
  absl::Status s = engine_->ReplaceModel(
      "v2", TinyCategoricalModel(kDimContext, catalog_, other, ItemFields(), 6));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("model.context_fields=[user:256:4:1, country:128:4:1]: differs from the "
                        "served model's context_fields=[user:256:4:1, country:64:4:1]"));
  s = engine_->ReplaceModel("v2", TinyCategoricalModel(kDimContext, catalog_, ContextFields(), {}, 6));
  EXPECT_THAT(std::string(s.message()), HasSubstr("model.item_fields=[] (none): differs"));
  EXPECT_EQ(engine_->snapshot()->model_version(), "v1");
}

// The recall probe's contexts are user-tower inputs: logged requests encoded with their features,
// sampled ones with empty slots.
TEST_F(CategoricalServingTest, ProbeContextsAreEncodedRowsOfTheModelsInputWidth) {
  InitCategorical();
  ASSERT_TRUE(engine_->Retrieve(Request({{"user", {12}}})).ok());
  ASSERT_TRUE(engine_->Retrieve(Request({{"country", {3}}}, 2)).ok());
  ASSERT_TRUE(log_->Flush().ok());
  absl::StatusOr<std::vector<float>> logged = RecentLoggedContexts(*log_, 10, *model_);
  ASSERT_TRUE(logged.ok()) << logged.status();
  const int64_t width = ContextInputWidth(model_->config());
  EXPECT_EQ(width, kDimContext + 2);
  ASSERT_EQ(static_cast<int64_t>(logged->size()), 2 * width);
  absl::StatusOr<std::vector<float>> first =
      model_->EncodeContext(Request({}).context.data(), {{"user", {12}}}, "t");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(std::vector<float>(logged->begin(), logged->begin() + width), *first);
  EXPECT_EQ((*logged)[width + kDimContext], -1.0f) << "no user id: empty slot";

  absl::StatusOr<IndexProbe> probe = MakeIndexProbe(*model_, &*logged, 5, /*seed=*/1);
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->logged, 2);
  EXPECT_EQ(probe->sampled, 3);
  std::vector<float> wrong(static_cast<size_t>(kDimContext), 0.0f);  // dense rows: wrong width
  EXPECT_TRUE(absl::IsInvalidArgument(MakeIndexProbe(*model_, &wrong, 5, 1).status()));

  // A dense-only model skips requests logged with features (another schema's).
  std::shared_ptr<const TwoTowerModel> dense = TinyModel(kDimContext, catalog_, 1.0, 5);
  absl::StatusOr<std::vector<float>> none = RecentLoggedContexts(*log_, 10, *dense);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace optower
