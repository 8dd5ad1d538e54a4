// ModelStore: numbered versions, manifests, CURRENT, LatestPromoted, retention — the contract,
// run against both backends (FileModelStore and PostgresModelStore on the test server); then the
// file store's own layout: partial folders, fsyncs, crash leftovers.
// PostgreSQL-only behaviour (two instances, NOTIFY, the write guard, a killed Save) is in
// postgres_model_store_test.cc.
#include "core/storage/file_model_store.h"

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string>

#include "core/base/atomic_file.h"
#include "core/storage/postgres_model_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/pg_test_db.h"
#include "tests/testing/store_fixture.h"
#include "tests/testing/serving_fixture.h"

namespace optower {
namespace {

using ::testing::HasSubstr;

OpeEstimate Estimate(const std::string& name, double value, double se) {
  OpeEstimate e;
  e.estimator = name;
  e.value = value;
  e.std_error = se;
  e.ci_low = value - 1.96 * se;
  e.ci_high = value + 1.96 * se;
  e.n = 123;
  e.max_weight = 4.5;
  e.effective_sample_size = 99.25;
  return e;
}

ModelManifest FullManifest() {
  ModelManifest m;
  m.parent_version = "000001";
  m.created_time_us = 1700000000123456;
  m.job_id = "job-1";
  m.data_watermark = 4242;
  m.objective = "dr";
  m.n_events = 1000;
  m.n_train = 800;
  m.n_holdout = 200;
  m.metrics.objective = "dr";
  m.metrics.n_train = 640;
  m.metrics.n_validation = 160;
  m.metrics.n_items = 3;
  m.metrics.epochs_run = 4;
  m.metrics.best_epoch = 3;
  m.metrics.validation_dr_initial = 0.1;
  m.metrics.validation_dr_best = 1.0 / 3.0;  // not exactly representable: tests %.17g round trip
  m.metrics.history = {{1, 0.5, 0.2}};
  OpeComparison c;
  c.confidence = 0.9;
  c.tolerance = 0.01;
  c.old_policy = Estimate("dr", 0.4, 0.02);
  c.new_policy = Estimate("dr", 0.45, 0.03);
  c.difference = Estimate("dr_diff", 0.05, std::numeric_limits<double>::infinity());
  m.ope = c;
  m.promoted = true;
  m.decision = "promoted";
  m.reason = "line one\nline two with = and \\ backslash";
  m.index_recall = 0.987;
  return m;
}

std::string MakeRoot() {
  std::string tmpl = ::testing::TempDir() + "/model_store_test.XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

// Saves a new version with the given decision into `store` and returns its name.
std::string SaveVersionIn(ModelStore& store, bool promoted, uint64_t seed = 1) {
  absl::StatusOr<std::string> v = store.NextVersion();
  EXPECT_TRUE(v.ok()) << v.status();
  ModelManifest m;
  m.promoted = promoted;
  m.decision = promoted ? "promoted" : "rejected";
  m.reason = "test";
  const TwoTowerModel policy = testutil::StoreTestModel(seed);
  const TwoTowerModel qhat = testutil::StoreTestModel(seed + 100);
  absl::Status s = store.Save(*v, policy, &qhat, testutil::StoreTestCatalog(), m);
  EXPECT_TRUE(s.ok()) << s;
  return *v;
}

enum class Backend { kFile, kPostgres };

void PrintTo(Backend b, std::ostream* os) { *os << (b == Backend::kFile ? "file" : "postgres"); }

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kFile ? "File" : "Postgres";
}

// The contract of ModelStore, for each backend.
class ModelStoreContractTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    root_ = MakeRoot();
    if (GetParam() == Backend::kPostgres) {
      schema_ = std::make_unique<testing::PgTestSchema>();
      ASSERT_TRUE(schema_->ok()) << schema_->status();
    }
    absl::StatusOr<std::unique_ptr<ModelStore>> store = OpenStore(ModelStore::Options());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  // A (further) store on the same storage: a reopen, or another process's view (PostgreSQL: its
  // own cache folder `cache`).
  absl::StatusOr<std::unique_ptr<ModelStore>> OpenStore(const ModelStore::Options& options,
                                                        const std::string& cache = "cache") {
    if (GetParam() == Backend::kFile) {
      absl::StatusOr<std::unique_ptr<FileModelStore>> f = FileModelStore::Open(root_, options);
      if (!f.ok()) return f.status();
      return std::unique_ptr<ModelStore>(std::move(*f));
    }
    return PostgresModelStore::Open(schema_->dsn(), root_ + "/" + cache, options);
  }

  std::string SaveVersion(bool promoted, uint64_t seed = 1) {
    return SaveVersionIn(*store_, promoted, seed);
  }

  std::string root_;
  std::unique_ptr<testing::PgTestSchema> schema_;
  std::unique_ptr<ModelStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, ModelStoreContractTest,
                         ::testing::Values(Backend::kFile, Backend::kPostgres), BackendName);

// The file store's own layout.
class ModelStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeRoot();
    auto store = FileModelStore::Open(root_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  std::string SaveVersion(bool promoted, uint64_t seed = 1) {
    return SaveVersionIn(*store_, promoted, seed);
  }

  std::string root_;
  std::unique_ptr<FileModelStore> store_;
};

TEST_P(ModelStoreContractTest, VersionsStartAtOneAndIncrease) {
  EXPECT_EQ(*store_->NextVersion(), "000001");
  EXPECT_EQ(SaveVersion(true), "000001");
  EXPECT_EQ(SaveVersion(false), "000002");
  EXPECT_EQ(*store_->NextVersion(), "000003");
  std::vector<ModelManifest> all = *store_->List();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].version, "000001");
  EXPECT_EQ(all[1].version, "000002");
}

TEST_P(ModelStoreContractTest, SavedVersionLoadsAndManifestRoundTrips) {
  const ModelManifest in = FullManifest();
  const TwoTowerModel policy = testutil::StoreTestModel(3);
  ASSERT_TRUE(store_->Save("000001", policy, nullptr, testutil::StoreTestCatalog(), in).ok());

  absl::StatusOr<ModelManifest> out = store_->GetManifest("000001");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->version, "000001");
  EXPECT_EQ(out->parent_version, in.parent_version);
  EXPECT_EQ(out->created_time_us, in.created_time_us);
  EXPECT_EQ(out->job_id, in.job_id);
  EXPECT_EQ(out->data_watermark, in.data_watermark);
  EXPECT_EQ(out->n_holdout, in.n_holdout);
  EXPECT_EQ(out->metrics.best_epoch, 3);
  EXPECT_EQ(out->metrics.validation_dr_best, in.metrics.validation_dr_best);  // exact
  EXPECT_TRUE(out->metrics.history.empty());  // history lives in manifest.json only
  ASSERT_TRUE(out->ope.has_value());
  EXPECT_EQ(out->ope->confidence, 0.9);
  EXPECT_EQ(out->ope->new_policy.value, 0.45);
  EXPECT_EQ(out->ope->old_policy.ci_high, in.ope->old_policy.ci_high);
  EXPECT_EQ(out->ope->difference.estimator, "dr_diff");
  EXPECT_TRUE(std::isinf(out->ope->difference.std_error));
  EXPECT_EQ(out->ope->difference.effective_sample_size, 99.25);
  EXPECT_TRUE(out->promoted);
  EXPECT_EQ(out->reason, in.reason);  // newline, '=' and backslash survive
  ASSERT_TRUE(out->index_recall.has_value());
  EXPECT_EQ(*out->index_recall, 0.987);

  absl::StatusOr<ModelFolder> folder = store_->Load("000001");
  ASSERT_TRUE(folder.ok()) << folder.status();
  EXPECT_EQ(folder->policy.config().dim_context, 3);
  EXPECT_FALSE(folder->reward_model.has_value());
  ASSERT_TRUE(folder->items.has_value());
  EXPECT_EQ(folder->items->ids, testutil::StoreTestCatalog().ids);

  std::ifstream json(store_->VersionDir("000001") + "/manifest.json");
  std::stringstream ss;
  ss << json.rdbuf();
  EXPECT_THAT(ss.str(), HasSubstr("\"parent_version\": \"000001\""));
  EXPECT_THAT(ss.str(), HasSubstr("\"data_watermark\": 4242"));
  EXPECT_THAT(ss.str(), HasSubstr("\"history\""));
}

TEST_F(ModelStoreTest, ManifestWithoutOpeOrRecallRoundTrips) {
  ModelManifest m;
  m.version = "000005";
  m.decision = "rejected";
  absl::StatusOr<ModelManifest> back = ParseManifestText(FormatManifestText(m));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->ope.has_value());
  EXPECT_FALSE(back->index_recall.has_value());
  EXPECT_FALSE(back->promoted);
  EXPECT_EQ(back->decision, "rejected");
}

TEST_F(ModelStoreTest, ListIgnoresLeftoverTemporaryAndForeignFolders) {
  SaveVersion(true);
  // What a crash during Save leaves behind, plus entries the store did not write.
  std::filesystem::create_directories(store_->models_dir() + "/000002.tmp-abc123/policy");
  std::ofstream(store_->models_dir() + "/000002.tmp-abc123/manifest.txt") << "garbage";
  std::filesystem::create_directories(store_->models_dir() + "/notes");
  std::filesystem::create_directories(store_->models_dir() + "/000004");  // no manifest
  std::vector<ModelManifest> all = *store_->List();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].version, "000001");
  // The incomplete 000004 still reserves its number.
  EXPECT_EQ(*store_->NextVersion(), "000005");
  EXPECT_EQ(store_->GetManifest("000004").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(ModelStoreContractTest, CurrentStartsEmptyAndFollowsSetCurrentAcrossReopen) {
  EXPECT_FALSE(store_->Current()->has_value());
  SaveVersion(true);
  SaveVersion(true);
  EXPECT_EQ(store_->SetCurrent("000003").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->SetCurrent("000002").ok());
  EXPECT_EQ(**store_->Current(), "000002");
  ASSERT_TRUE(store_->SetCurrent("000001").ok());
  auto reopened = OpenStore(ModelStore::Options(), "cache2");
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(**(*reopened)->Current(), "000001");
}

TEST_F(ModelStoreTest, CurrentNamingAMissingVersionIsDataLoss) {
  std::ofstream(store_->models_dir() + "/CURRENT") << "000009\n";
  absl::StatusOr<std::optional<std::string>> c = store_->Current();
  EXPECT_EQ(c.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(c.status().message(), HasSubstr("000009"));
}

TEST_P(ModelStoreContractTest, LatestPromotedSkipsRejectedVersions) {
  EXPECT_FALSE(store_->LatestPromoted()->has_value());
  EXPECT_FALSE(store_->ServingVersion()->has_value());
  SaveVersion(true);
  SaveVersion(true);
  SaveVersion(false);
  EXPECT_EQ((*store_->LatestPromoted())->version, "000002");
  // Without CURRENT a restart serves the latest promoted version; CURRENT (a rollback) wins.
  EXPECT_EQ(**store_->ServingVersion(), "000002");
  ASSERT_TRUE(store_->SetCurrent("000001").ok());
  EXPECT_EQ(**store_->ServingVersion(), "000001");
}

TEST_P(ModelStoreContractTest, RejectsBadVersionNamesAndOverwrites) {
  const TwoTowerModel policy = testutil::StoreTestModel(1);
  for (const std::string bad : {"", "12", "../../etc", "00000a", "000001/.."}) {
    EXPECT_EQ(store_->Save(bad, policy, nullptr, testutil::StoreTestCatalog(), {}).code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
    EXPECT_EQ(store_->GetManifest(bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
    EXPECT_EQ(store_->SetCurrent(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  SaveVersion(true);
  EXPECT_EQ(store_->Save("000001", policy, nullptr, testutil::StoreTestCatalog(), {}).code(),
            absl::StatusCode::kAlreadyExists);
  ModelManifest other;
  other.version = "000007";
  EXPECT_EQ(store_->Save("000002", policy, nullptr, testutil::StoreTestCatalog(), other).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(ModelStoreContractTest, UpdateManifestRewritesTheRecord) {
  SaveVersion(true);
  ASSERT_TRUE(store_
                  ->UpdateManifest("000001",
                                   [](ModelManifest& m) {
                                     m.index_recall = 0.5;
                                     m.promoted = false;
                                   })
                  .ok());
  ModelManifest m = *store_->GetManifest("000001");
  EXPECT_EQ(*m.index_recall, 0.5);
  EXPECT_FALSE(m.promoted);
  EXPECT_EQ(store_->UpdateManifest("000001", [](ModelManifest& m) { m.version = "000002"; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->UpdateManifest("000003", [](ModelManifest&) {}).code(),
            absl::StatusCode::kNotFound);
}

// Low-severity defect of issue 9: one malformed manifest broke ListModels and the start-up.
TEST_F(ModelStoreTest, MalformedManifestIsSkippedAndReportedNamingTheFile) {
  SaveVersion(true);
  SaveVersion(true);
  std::ofstream(store_->VersionDir("000001") + "/manifest.txt")
      << "# optower model manifest v1\nversion=000001\npromoted=maybe\n";
  std::vector<absl::Status> skipped;
  absl::StatusOr<std::vector<ModelManifest>> all = store_->List(0, &skipped);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].version, "000002");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(skipped[0].message(), HasSubstr("000001/manifest.txt"));
  EXPECT_THAT(skipped[0].message(), HasSubstr("promoted=\"maybe\""));
  EXPECT_EQ((*store_->LatestPromoted())->version, "000002");
  // GetManifest of that very version still says what is wrong.
  EXPECT_EQ(store_->GetManifest("000001").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseManifestText("version=000001\n").status().code(), absl::StatusCode::kDataLoss);
}

// Defect 8: Commit fsynced the manifests (written by WriteFileAtomically) but not the weights and
// configs that torch::save and the config writer produce.
std::vector<std::string>* g_fsynced = nullptr;
void RecordFsync(const std::string& path) { g_fsynced->push_back(path); }

TEST_F(ModelStoreTest, SaveFsyncsEveryFileAndFolderOfTheVersion) {
  std::vector<std::string> fsynced;
  g_fsynced = &fsynced;
  SetFsyncObserverForTesting(&RecordFsync);
  const std::string v = SaveVersion(true);
  SetFsyncObserverForTesting(nullptr);
  g_fsynced = nullptr;
  // Observed paths are under the temporary name "<models>/000001.tmp-xxxxxxxx/...": compare what
  // follows it.
  std::set<std::string> synced_relative;
  const std::string temp_prefix = store_->VersionDir(v) + ".tmp-";
  for (const std::string& p : fsynced) {
    if (p.rfind(temp_prefix, 0) != 0) continue;
    const size_t slash = p.find('/', temp_prefix.size());
    synced_relative.insert(slash == std::string::npos ? "." : p.substr(slash + 1));
  }
  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(store_->VersionDir(v))) {
    const std::string rel =
        std::filesystem::relative(e.path(), store_->VersionDir(v)).string();
    EXPECT_EQ(synced_relative.count(rel), 1u) << rel << " was not fsynced";
    files += e.is_regular_file();
  }
  EXPECT_GE(files, 7);  // policy/{config.txt,weights.pt}, reward_model/{...}, items.csv, manifests
  EXPECT_EQ(synced_relative.count("."), 1u);  // the version folder itself
  // And the models folder, after the rename.
  EXPECT_NE(std::find(fsynced.begin(), fsynced.end(), store_->models_dir()), fsynced.end());
}

// Defect 11: versions were never deleted, rejected ones included (each holds a catalog copy).
TEST_P(ModelStoreContractTest, RetentionKeepsNewestPromotedNewestRejectedCurrentAndNewest) {
  ModelStore::Options options;
  options.keep_promoted = 2;
  options.keep_rejected = 1;
  auto store = OpenStore(options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto save = [&](bool promoted) {
    const std::string v = *(*store)->NextVersion();
    ModelManifest m;
    m.promoted = promoted;
    m.decision = promoted ? "promoted" : "rejected";
    EXPECT_TRUE((*store)->Save(v, testutil::StoreTestModel(1), nullptr, testutil::StoreTestCatalog(), m).ok());
    return v;
  };
  auto names = [&] {
    std::vector<std::string> out;
    const std::vector<ModelManifest> all = *(*store)->List();  // a copy: List() is a temporary
    for (const ModelManifest& m : all) out.push_back(m.version);
    return out;
  };
  save(true);                                      // 000001
  ASSERT_TRUE((*store)->SetCurrent("000001").ok());  // a rollback target kept as CURRENT
  for (int i = 0; i < 4; ++i) save(false);         // 000002..000005
  EXPECT_EQ(names(), (std::vector<std::string>{"000001", "000004", "000005"}));
  save(true);  // 000006
  save(true);  // 000007
  save(true);  // 000008 (newest: kept even before it is CURRENT)
  // Promoted kept: CURRENT 000001 + the newest two besides the newest (000007, 000006) + 000008;
  // rejected kept: 000005.
  EXPECT_EQ(names(), (std::vector<std::string>{"000001", "000005", "000006", "000007", "000008"}));
  ASSERT_TRUE((*store)->SetCurrent("000008").ok());
  // 000001 is no longer CURRENT: the two newest promoted besides CURRENT stay.
  EXPECT_EQ(names(), (std::vector<std::string>{"000005", "000006", "000007", "000008"}));
  // Numbers are never reused.
  EXPECT_EQ(*(*store)->NextVersion(), "000009");
  // Nothing half-deleted is left over.
  for (const auto& e : std::filesystem::recursive_directory_iterator(root_))
    EXPECT_EQ(e.path().filename().string().find(".trash-"), std::string::npos) << e.path();
}

TEST_P(ModelStoreContractTest, ListReturnsAtMostTheNewestEntries) {
  ModelStore::Options options;
  options.keep_rejected = 10;
  auto store = OpenStore(options);
  ASSERT_TRUE(store.ok()) << store.status();
  for (int i = 0; i < 4; ++i) {
    ModelManifest m;
    ASSERT_TRUE((*store)->Save(*(*store)->NextVersion(), testutil::StoreTestModel(1), nullptr, testutil::StoreTestCatalog(), m).ok());
  }
  std::vector<ModelManifest> two = *(*store)->List(2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].version, "000003");
  EXPECT_EQ(two[1].version, "000004");
  EXPECT_EQ((*store)->List()->size(), 4u);
  options.list_limit = 0;
  EXPECT_EQ(OpenStore(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.list_limit = 1;
  options.keep_promoted = 0;
  EXPECT_THAT(OpenStore(options).status().message(), HasSubstr("keep_promoted_versions=0"));
}

TEST_F(ModelStoreTest, OpenRemovesWhatACrashLeftBehind) {
  SaveVersion(true);
  std::filesystem::create_directories(store_->models_dir() + "/000002.tmp-abc123/policy");
  std::filesystem::create_directories(store_->models_dir() + "/.trash-000000/policy");
  std::ofstream(store_->models_dir() + "/.CURRENT.tmp-abcdefgh") << "000001\n";
  std::filesystem::create_directories(store_->models_dir() + "/notes");  // not ours: kept
  ASSERT_TRUE(FileModelStore::Open(root_).ok());
  std::set<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(store_->models_dir()))
    left.insert(e.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{"000001", "notes"}));
}

TEST(ModelStoreOpenTest, MissingRootIsNotFound) {
  EXPECT_EQ(FileModelStore::Open("/nonexistent/optower/root").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace optower
