// Catalog durability and the cost of a catalog change (issue 9, defect 9):
//   CatalogStore: save/load, newest wins, leftovers, a corrupt newest file is an error (never an
//   older catalog with deleted items in it);
//   RetrievalEngine: a change is persisted before it is served, a failed save leaves the served
//   snapshot unchanged, and a change no longer waits for readers of the old snapshot to let go.
#include "core/storage/file_catalog_store.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "core/serving/model_snapshot.h"
#include "core/serving/retrieval_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/serving_fixture.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using testutil::RandomCatalog;
using testutil::TempDir;

std::set<std::string> Entries(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.insert(e.path().filename());
  return out;
}

TEST(CatalogStoreTest, EmptyStoreLoadsNothingThenTheNewestSavedCatalog) {
  TempDir dir("catalog_store");
  auto store = FileCatalogStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<std::optional<StoredCatalog>> none = (*store)->Load();
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());

  const ItemCatalog a = RandomCatalog(5, 2, /*seed=*/1);
  const ItemCatalog b = RandomCatalog(4, 2, /*seed=*/2, /*first_id=*/500);
  ASSERT_TRUE((*store)->Save(a, 0).ok());
  ASSERT_TRUE((*store)->Save(b, 1).ok());
  // Only the newest file remains.
  EXPECT_EQ(Entries((*store)->dir()), (std::set<std::string>{"items-000000000001.csv"}));
  auto reopened = FileCatalogStore::Open(dir.path());
  ASSERT_TRUE(reopened.ok());
  absl::StatusOr<std::optional<StoredCatalog>> loaded = (*reopened)->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->version, 1);
  EXPECT_EQ((*loaded)->items.ids, b.ids);
  EXPECT_TRUE(SameCatalog((*loaded)->items, b));  // the CSV round trip is exact
  EXPECT_FALSE(SameCatalog((*loaded)->items, a));
}

TEST(CatalogStoreTest, ACrashBetweenWriteAndCleanUpStillLoadsTheNewest) {
  TempDir dir("catalog_store_crash");
  auto store = FileCatalogStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  const ItemCatalog old_items = RandomCatalog(5, 2, /*seed=*/1);
  const ItemCatalog new_items = RandomCatalog(3, 2, /*seed=*/1);
  ASSERT_TRUE((*store)->Save(new_items, 7).ok());
  // What a crash leaves: an older version's file not yet removed, and a temporary never renamed.
  testutil::WriteItems((*store)->dir(), old_items, "items-000000000006.csv");
  std::ofstream((*store)->dir() + "/.items-000000000008.csv.tmp-abcdefgh") << "item,f0\n1,";
  auto reopened = FileCatalogStore::Open(dir.path());
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(Entries((*reopened)->dir()),
            (std::set<std::string>{"items-000000000006.csv", "items-000000000007.csv"}));
  absl::StatusOr<std::optional<StoredCatalog>> loaded = (*reopened)->Load();
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->version, 7);
  EXPECT_EQ((*loaded)->items.size(), 3);
}

TEST(CatalogStoreTest, UnreadableNewestCatalogIsDataLossNotAnOlderCatalog) {
  TempDir dir("catalog_store_corrupt");
  auto store = FileCatalogStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Save(RandomCatalog(5, 2, 1), 0).ok());
  ASSERT_TRUE((*store)->Save(RandomCatalog(4, 2, 1), 1).ok());
  testutil::WriteItems((*store)->dir(), RandomCatalog(5, 2, 1), "items-000000000000.csv");
  std::ofstream((*store)->dir() + "/items-000000000001.csv") << "item,f0,f1\n1,0.5\n";
  absl::StatusOr<std::optional<StoredCatalog>> loaded = (*store)->Load();
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(loaded.status().message(), HasSubstr("items-000000000001.csv"));
}

class CatalogEngineTest : public ::testing::Test {
 protected:
  void Init(RetrievalEngineOptions options) {
    catalog_ = RandomCatalog(50, 3, /*seed=*/7);
    model_ = testutil::TinyModel(/*dim_context=*/4, catalog_, /*temperature=*/1.0, /*seed=*/11);
    ASSERT_NE(model_, nullptr);
    options.snapshot.index.type = ItemIndexOptions::Type::kExact;
    // Normal priority: the figure below is about waiting, not about the CPU share of a build.
    options.build_priority = BackgroundPriority::kNormal;
    absl::StatusOr<std::shared_ptr<const ModelSnapshot>> snap =
        ModelSnapshot::Build("v1", model_, catalog_, /*catalog_version=*/0, options.snapshot);
    ASSERT_TRUE(snap.ok()) << snap.status();
    absl::StatusOr<std::unique_ptr<RetrievalEngine>> engine =
        RetrievalEngine::Create(options, *snap, /*event_log=*/nullptr);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
  }

  ItemCatalog catalog_;
  std::shared_ptr<const TwoTowerModel> model_;
  std::unique_ptr<RetrievalEngine> engine_;
};

TEST_F(CatalogEngineTest, ChangeIsPersistedBeforeItIsServedAndAFailedSaveServesNothingNew) {
  std::vector<std::pair<int64_t, int64_t>> saved;  // (catalog size, version)
  bool fail = false;
  RetrievalEngineOptions options;
  options.persist_catalog = [&](const ItemCatalog& items, int64_t version) -> absl::Status {
    if (fail) return absl::ResourceExhaustedError("write: No space left on device");
    // Not served yet while it is being saved.
    EXPECT_EQ(engine_->snapshot()->catalog_version(), version - 1);
    saved.push_back({items.size(), version});
    return absl::OkStatus();
  };
  Init(options);
  ASSERT_TRUE(engine_->DeleteItems({100, 101, 102}).ok());
  ASSERT_EQ(saved.size(), 1u);
  EXPECT_EQ(saved[0], (std::pair<int64_t, int64_t>{47, 1}));
  fail = true;
  absl::StatusOr<CatalogChangeResult> r = engine_->DeleteItems({103});
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("No space left on device"));
  EXPECT_EQ(engine_->snapshot()->catalog().size(), 47);
  EXPECT_EQ(engine_->snapshot()->catalog_version(), 1);
  EXPECT_TRUE(engine_->snapshot()->index().Contains(103));
}

// The measured 2,006 ms DeleteItems: the writer waited (up to 2 s) for every holder of the old
// snapshot to let go, and optower-server's main() held the first snapshot for its whole life.
// Here the test holds it: before the fix the call took >= 2 s by construction (a deterministic
// lower bound, not a timing race); now it returns after the build (~ms for 50 items), and the
// reaper frees the old snapshot once the holder lets go. The 1 s bound is half the old fixed wait
// and hundreds of times the build, so scheduling noise cannot make it fail.
TEST_F(CatalogEngineTest, DeleteItemsDoesNotWaitForHoldersOfTheOldSnapshot) {
  Init(RetrievalEngineOptions{});
  std::shared_ptr<const ModelSnapshot> held = engine_->snapshot();
  std::weak_ptr<const ModelSnapshot> watch = held;
  const absl::Time start = absl::Now();
  ASSERT_TRUE(engine_->DeleteItems({100, 101, 102}).ok());
  const absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, absl::Seconds(1)) << "took " << took;
  EXPECT_FALSE(watch.expired());  // still held here
  held.reset();
  // Freed by the reaper (it polls every ms; 10 s is a generous bound on a loaded machine).
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!watch.expired() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_TRUE(watch.expired());
  std::printf("DeleteItems of 3 of 50 items with the old snapshot held: %.1f ms\n",
              absl::ToDoubleMilliseconds(took));
}

}  // namespace
}  // namespace optower
