// Catalog changes and index builds at the engine and snapshot level (issue 11): the recall probe
// runs the user tower on logged contexts (else sampled ones); AUTO above exact_max_items picks a
// tuned ANN index; UpsertItems/DeleteItems layer the change over the served index (no rebuild)
// and serve what a full rebuild on the same catalog serves; drift triggers a rebuild.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/serving/index_probe.h"
#include "core/serving/model_snapshot.h"
#include "core/serving/retrieval_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/serving_fixture.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using testutil::RandomCatalog;
using testutil::TinyModel;

constexpr int64_t kDimContext = 4;
constexpr int64_t kDimItem = 3;

std::vector<float> Contexts(int64_t n, float offset) {
  std::vector<float> x;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < kDimContext; ++j) x.push_back(offset + 0.01f * static_cast<float>(i + j));
  }
  return x;
}

TEST(IndexProbeTest, UsesTheMostRecentLoggedContextsThenSampledOnes) {
  const ItemCatalog catalog = RandomCatalog(50, kDimItem, 1);
  auto model = TinyModel(kDimContext, catalog, 1.0, 2);
  const std::vector<float> logged = Contexts(30, 1.0f);
  absl::StatusOr<IndexProbe> probe = MakeIndexProbe(*model, &logged, 20, /*seed=*/3);
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->logged, 20);
  EXPECT_EQ(probe->sampled, 0);
  // The queries are the user tower's outputs of the last 20 logged contexts.
  absl::StatusOr<std::vector<float>> want =
      model->EmbedContexts(logged.data() + 10 * kDimContext, 20);
  ASSERT_TRUE(want.ok());
  ASSERT_EQ(probe->queries.size(), want->size());
  for (size_t i = 0; i < want->size(); ++i) EXPECT_NEAR(probe->queries[i], (*want)[i], 1e-5f);
  probe = MakeIndexProbe(*model, &logged, 100, 3);
  ASSERT_TRUE(probe.ok());
  EXPECT_EQ(probe->logged, 30);
  EXPECT_EQ(probe->sampled, 70);
  EXPECT_EQ(probe->Describe(), "user tower on 30 logged + 70 sampled contexts");
  probe = MakeIndexProbe(*model, nullptr, 10, 3);
  ASSERT_TRUE(probe.ok());
  EXPECT_EQ(probe->sampled, 10);
  const std::vector<float> ragged(5, 0.0f);
  EXPECT_FALSE(MakeIndexProbe(*model, &ragged, 10, 3).ok());
}

TEST(ModelSnapshotIndexTest, AutoAboveExactMaxItemsPicksATunedAnnIndexOnUserTowerQueries) {
  const ItemCatalog catalog = RandomCatalog(20000, kDimItem, 4);
  auto model = TinyModel(kDimContext, catalog, 1.0, 5);
  ModelSnapshot::Options options;  // kAuto, min_recall_at_10 0.95, ivf_nprobe 16
  options.index.exact_max_items = 5000;
  options.index.threads = 1;
  options.index.recall_queries = 300;
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> snap =
      ModelSnapshot::Build("v1", model, catalog, 0, options);
  ASSERT_TRUE(snap.ok()) << snap.status();
  const ItemIndex& index = (*snap)->index();
  std::printf("[auto] %s | probe: %s\n", index.build_report().c_str(),
              (*snap)->probe_source().c_str());
  EXPECT_NE(index.type_name(), "exact");
  EXPECT_GE(index.recall_at_10(), 0.95);
  EXPECT_EQ(index.probe_queries(), 300);
  EXPECT_EQ((*snap)->probe_source(), "user tower on 0 logged + 300 sampled contexts");
  // Logged contexts are used when given.
  const std::vector<float> logged = Contexts(40, -0.5f);
  snap = ModelSnapshot::Build("v1", model, catalog, 0, options, nullptr, &logged);
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ((*snap)->probe_source(), "user tower on 40 logged + 260 sampled contexts");
  // At or below exact_max_items no probe is needed.
  options.index.exact_max_items = 20000;
  snap = ModelSnapshot::Build("v1", model, catalog, 0, options);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ((*snap)->index().type_name(), "exact");
  EXPECT_EQ((*snap)->probe_source(), "none");
}

class CatalogChangesTest : public ::testing::Test {
 protected:
  void Init(int64_t n, ItemIndexOptions index) {
    catalog_ = RandomCatalog(n, kDimItem, /*seed=*/7);
    model_ = TinyModel(kDimContext, catalog_, 1.0, /*seed=*/11);
    ASSERT_NE(model_, nullptr);
    RetrievalEngineOptions options;
    options.snapshot.index = index;
    options_ = options;
    auto snap = ModelSnapshot::Build("v1", model_, catalog_, 0, options.snapshot);
    ASSERT_TRUE(snap.ok()) << snap.status();
    auto engine = RetrievalEngine::Create(options, *snap, nullptr);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
  }

  // The served top-m of `context` against a snapshot built from scratch on the served catalog.
  void ExpectServedEqualsFullRebuild() {
    const std::shared_ptr<const ModelSnapshot> served = engine_->snapshot();
    auto rebuilt = ModelSnapshot::Build("v1", model_, served->catalog(), 0, options_.snapshot);
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
    ASSERT_EQ(served->index().ids(), (*rebuilt)->index().ids());
    for (int q = 0; q < 20; ++q) {
      const std::vector<float> context = Contexts(1, 0.3f * static_cast<float>(q) - 3.0f);
      auto u = model_->EmbedContexts(context.data(), 1);
      ASSERT_TRUE(u.ok());
      auto got = served->index().Search(u->data(), 25);
      auto want = (*rebuilt)->index().Search(u->data(), 25);
      ASSERT_TRUE(got.ok() && want.ok());
      ASSERT_EQ(got->size(), want->size());
      for (size_t i = 0; i < got->size(); ++i) {
        const float tol = 1e-4f * (1.0f + std::fabs((*want)[i].score));
        EXPECT_NEAR((*got)[i].score, (*want)[i].score, tol) << "rank " << i;
        if ((*got)[i].item_id != (*want)[i].item_id) {
          EXPECT_NEAR((*got)[i].score, (*want)[i].score, 1e-5f) << "a different item, no tie";
        }
      }
    }
  }

  ItemCatalog catalog_;
  std::shared_ptr<const TwoTowerModel> model_;
  RetrievalEngineOptions options_;
  std::unique_ptr<RetrievalEngine> engine_;
};

ItemIndexOptions ExactWithLayers() {
  ItemIndexOptions o;
  o.type = ItemIndexOptions::Type::kExact;
  o.delta_max_items = 1000;
  o.delta_max_fraction = 0.5;
  return o;
}

TEST_F(CatalogChangesTest, UpsertAndDeleteAreLayeredAndServeWhatAFullRebuildServes) {
  Init(2000, ExactWithLayers());
  const ItemCatalog fresh = RandomCatalog(5, kDimItem, /*seed=*/99, /*first_id=*/50000);
  ItemCatalog changed = RandomCatalog(3, kDimItem, /*seed=*/98, /*first_id=*/100);  // existing ids
  ItemCatalog upsert = fresh;
  upsert.ids.insert(upsert.ids.end(), changed.ids.begin(), changed.ids.end());
  upsert.features.insert(upsert.features.end(), changed.features.begin(), changed.features.end());
  auto up = engine_->UpsertItems(upsert);
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_FALSE(up->index_rebuilt);
  EXPECT_EQ(up->index_delta_items, 8);
  EXPECT_EQ(up->index_tombstones, 3);
  EXPECT_EQ(up->catalog_size, 2005);
  ExpectServedEqualsFullRebuild();

  auto del = engine_->DeleteItems({50000, 101, 150, 1999 + 100});
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_FALSE(del->index_rebuilt);
  EXPECT_EQ(del->catalog_size, 2001);
  ExpectServedEqualsFullRebuild();
  // Rows: the catalog and the index agree row by row, embeddings included.
  const auto snap = engine_->snapshot();
  const int64_t d = snap->embedding_dim();
  auto all = model_->EmbedItems(snap->catalog());
  ASSERT_TRUE(all.ok());
  for (int64_t row = 0; row < snap->catalog().size(); ++row) {
    ASSERT_EQ(snap->index().ids()[row], snap->catalog().ids[row]);
    for (int64_t j = 0; j < d; ++j) {
      const float want = (*all)[row * d + j];
      ASSERT_NEAR(snap->item_embedding(row)[j], want, 1e-5f * (1.0f + std::fabs(want))) << row;
    }
  }
  const RetrievalEngine::Stats stats = engine_->stats();
  EXPECT_EQ(stats.index_incremental_updates, 2);
  EXPECT_EQ(stats.index_rebuilds, 0);
}

TEST_F(CatalogChangesTest, DeletedItemsAreNeverServedOnceDeleteItemsReturns) {
  Init(300, ExactWithLayers());
  // The items the policy likes most for this context: the first candidates.
  RetrieveRequest r;
  r.context = Contexts(1, 0.5f);
  r.k = 10;
  r.seed = 1;
  auto before = engine_->Retrieve(r);
  ASSERT_TRUE(before.ok());
  std::vector<int64_t> doomed;
  for (const SlateItem& item : before->items) doomed.push_back(item.item_id);
  auto del = engine_->DeleteItems(doomed);
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_FALSE(del->index_rebuilt);
  std::set<int64_t> served;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    r.seed = seed;
    auto after = engine_->Retrieve(r);
    ASSERT_TRUE(after.ok()) << after.status();
    for (const SlateItem& item : after->items) served.insert(item.item_id);
  }
  for (int64_t id : doomed) EXPECT_EQ(served.count(id), 0u) << id;
  EXPECT_GT(served.size(), 50u) << "exploration reaches the rest of the catalog";
}

TEST_F(CatalogChangesTest, DriftTriggersAFullRebuild) {
  ItemIndexOptions o = ExactWithLayers();
  o.delta_max_items = 6;
  Init(500, o);
  auto one = engine_->UpsertItems(RandomCatalog(3, kDimItem, 21, /*first_id=*/100));  // replace
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_FALSE(one->index_rebuilt);  // 3 delta + 3 tombstones = 6
  auto two = engine_->UpsertItems(RandomCatalog(1, kDimItem, 22, /*first_id=*/90000));
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_TRUE(two->index_rebuilt);  // 7 > 6
  EXPECT_EQ(two->index_delta_items, 0);
  EXPECT_EQ(two->index_tombstones, 0);
  EXPECT_TRUE(engine_->snapshot()->index_rebuilt());
  ExpectServedEqualsFullRebuild();
  auto three = engine_->DeleteItems({90000});
  ASSERT_TRUE(three.ok());
  EXPECT_FALSE(three->index_rebuilt) << "layers start again on the rebuilt index";
  const RetrievalEngine::Stats stats = engine_->stats();
  EXPECT_EQ(stats.index_rebuilds, 1);
  EXPECT_EQ(stats.index_incremental_updates, 2);
}

TEST_F(CatalogChangesTest, AModelSwapRebuildsAndProbesWithTheContextsOfRecentRequests) {
  ItemIndexOptions o;
  o.type = ItemIndexOptions::Type::kIvf;
  o.recall_queries = 50;
  o.threads = 1;
  Init(3000, o);
  EXPECT_EQ(engine_->snapshot()->probe_source(), "user tower on 0 logged + 50 sampled contexts");
  RetrieveRequest r;
  r.k = 3;
  for (int i = 0; i < 20; ++i) {
    r.context = Contexts(1, 0.1f * static_cast<float>(i));
    ASSERT_TRUE(engine_->Retrieve(r).ok());
  }
  ASSERT_TRUE(engine_->UpsertItems(RandomCatalog(2, kDimItem, 23, 80000)).ok());
  EXPECT_FALSE(engine_->snapshot()->index_rebuilt());
  ASSERT_TRUE(engine_->ReplaceModel("v2", TinyModel(kDimContext, catalog_, 1.0, 12)).ok());
  const auto snap = engine_->snapshot();
  EXPECT_TRUE(snap->index_rebuilt());
  EXPECT_EQ(snap->index().delta_size(), 0);
  EXPECT_EQ(snap->probe_source(), "user tower on 20 logged + 30 sampled contexts");
  EXPECT_EQ(snap->catalog().size(), 3002);
  // Seeded contexts (the server's start-up read of the event log) count as logged.
  engine_->SeedProbeContexts(Contexts(40, 2.0f), kDimContext);
  ASSERT_TRUE(engine_->ReplaceModel("v3", TinyModel(kDimContext, catalog_, 1.0, 13)).ok());
  EXPECT_EQ(engine_->snapshot()->probe_source(), "user tower on 50 logged + 0 sampled contexts");
}

}  // namespace
}  // namespace optower
