// Start-up from the model store and the catalog store (server/model_loader.h): fall back past a
// version that cannot be served (issue 9, defect 8), and the stored catalog wins over items_path
// (defect 9).
#include "server/model_loader.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "core/storage/file_catalog_store.h"
#include "core/storage/file_model_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server_config.h"
#include "tests/testing/serving_fixture.h"

namespace optower::server {
namespace {

using ::testing::HasSubstr;
using testutil::RandomCatalog;
using testutil::TempDir;

class ModelLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    catalog_ = RandomCatalog(20, 3, /*seed=*/1);
    items_path_ = testutil::WriteItems(dir_.path(), catalog_);
    auto store = FileModelStore::Open(dir_.path());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    config_.set_data_dir(dir_.path());
    config_.set_items_path(items_path_);
    ApplyServerConfigDefaults(&config_);
  }

  std::string SavePromoted(uint64_t seed) {
    const std::string v = *store_->NextVersion();
    ModelManifest m;
    m.promoted = true;
    m.decision = "promoted";
    std::shared_ptr<const TwoTowerModel> model = testutil::TinyModel(4, catalog_, 1.0, seed);
    EXPECT_TRUE(store_->Save(v, *model, nullptr, catalog_, m).ok());
    return v;
  }

  TempDir dir_{"model_loader_test"};
  ItemCatalog catalog_;
  std::string items_path_;
  std::unique_ptr<FileModelStore> store_;
  v1::ServerConfig config_;
};

TEST_F(ModelLoaderTest, CurrentThatCannotLoadFallsBackToTheNewestLoadablePromotedVersion) {
  SavePromoted(1);
  SavePromoted(2);
  const std::string broken = SavePromoted(3);
  ASSERT_TRUE(store_->SetCurrent(broken).ok());
  // What a power loss could leave of unsynced weights: an empty file.
  std::ofstream(store_->VersionDir(broken) + "/policy/weights.pt", std::ios::trunc);
  absl::StatusOr<ServingModel> serving = LoadServingModel(config_, store_.get());
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_EQ(serving->version, "000002");
  EXPECT_TRUE(serving->trained);
  EXPECT_THAT(serving->source, HasSubstr("newest loadable promoted"));
  EXPECT_THAT(serving->source, HasSubstr("not served: 000003"));
}

TEST_F(ModelLoaderTest, UnreadableCurrentAndMalformedManifestAreSkipped) {
  SavePromoted(1);
  const std::string bad_manifest = SavePromoted(2);
  std::ofstream(store_->VersionDir(bad_manifest) + "/manifest.txt", std::ios::trunc) << "junk\n";
  std::ofstream(store_->models_dir() + "/CURRENT", std::ios::trunc) << "000009\n";
  absl::StatusOr<ServingModel> serving = LoadServingModel(config_, store_.get());
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_EQ(serving->version, "000001");
}

TEST_F(ModelLoaderTest, NoServableStoredVersionIsAnErrorNamingThem) {
  const std::string v = SavePromoted(1);
  ASSERT_TRUE(store_->SetCurrent(v).ok());
  std::filesystem::remove(store_->VersionDir(v) + "/policy/weights.pt");
  absl::StatusOr<ServingModel> serving = LoadServingModel(config_, store_.get());
  EXPECT_EQ(serving.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(serving.status().message(), HasSubstr("000001"));
}

TEST_F(ModelLoaderTest, ItemsPathSeedsAnEmptyCatalogStoreAndTheStoredCatalogWinsAfterwards) {
  auto catalogs = FileCatalogStore::Open(dir_.path());
  ASSERT_TRUE(catalogs.ok()) << catalogs.status();
  config_.set_dim_context(4);
  absl::StatusOr<ServingModel> first = LoadServingModel(config_, nullptr, catalogs->get());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->catalog.size(), 20);
  EXPECT_EQ(first->catalog_version, 0);
  // A catalog change (as UpsertItems/DeleteItems save it), then a restart with the same items_path.
  ItemCatalog changed = catalog_;
  changed.ids.resize(17);
  changed.features.resize(17 * 3);
  ASSERT_TRUE((*catalogs)->Save(changed, 4).ok());
  absl::StatusOr<ServingModel> second = LoadServingModel(config_, nullptr, catalogs->get());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->catalog.size(), 17);
  EXPECT_EQ(second->catalog_version, 4);
  EXPECT_THAT(second->source, HasSubstr("items-000000000004.csv"));
}

TEST(RetentionConfigTest, DefaultsAreBoundedAndBadValuesNameTheField) {
  v1::ServerConfig c;
  ApplyServerConfigDefaults(&c);
  const ModelStore::Options o = ModelStoreOptionsFromConfig(c);
  EXPECT_EQ(o.keep_promoted, 5);
  EXPECT_EQ(o.keep_rejected, 3);
  EXPECT_EQ(o.list_limit, 100);
  v1::ServerConfig zero;
  zero.mutable_trainer()->set_keep_rejected_versions(0);  // explicit 0: keep no rejected version
  ApplyServerConfigDefaults(&zero);
  EXPECT_EQ(ModelStoreOptionsFromConfig(zero).keep_rejected, 0);
  v1::TrainerConfig t = zero.trainer();
  EXPECT_TRUE(ValidateTrainerConfig(t).ok());
  t.set_keep_promoted_versions(-1);
  EXPECT_THAT(ValidateTrainerConfig(t).message(), HasSubstr("trainer.keep_promoted_versions=-1"));
  t.set_keep_promoted_versions(2);
  t.set_list_models_limit(-5);
  EXPECT_THAT(ValidateTrainerConfig(t).message(), HasSubstr("trainer.list_models_limit=-5"));
}

}  // namespace
}  // namespace optower::server
