// CatalogStore's contract against both backends (FileCatalogStore, PostgresCatalogStore on the test
// server): nothing stored, newest wins across a reopen, categorical columns round-trip,
// LatestVersion, bad versions; then PostgreSQL only: the version history keeps the newest 10,
// NOTIFY optower_catalog, the write guard, a corrupt newest row, a newer schema.
// The file store's own layout and crash leftovers are in catalog_durability_test.cc.
#include "core/storage/catalog_store.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "core/storage/file_catalog_store.h"
#include "core/storage/pg_connection.h"
#include "core/storage/postgres_catalog_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/pg_test_db.h"
#include "tests/testing/serving_fixture.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using testutil::RandomCatalog;
using testutil::TempDir;

enum class Backend { kFile, kPostgres };

void PrintTo(Backend b, std::ostream* os) { *os << (b == Backend::kFile ? "file" : "postgres"); }

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kFile ? "File" : "Postgres";
}

class CatalogStoreContractTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kPostgres) {
      schema_ = std::make_unique<testing::PgTestSchema>();
      ASSERT_TRUE(schema_->ok()) << schema_->status();
    }
    absl::StatusOr<std::unique_ptr<CatalogStore>> s = OpenStore();
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  absl::StatusOr<std::unique_ptr<CatalogStore>> OpenStore() {
    if (GetParam() == Backend::kFile) {
      absl::StatusOr<std::unique_ptr<FileCatalogStore>> f = FileCatalogStore::Open(dir_.path());
      if (!f.ok()) return f.status();
      return std::unique_ptr<CatalogStore>(std::move(*f));
    }
    return PostgresCatalogStore::Open(schema_->dsn());
  }

  TempDir dir_{"catalog_store_contract"};
  std::unique_ptr<testing::PgTestSchema> schema_;
  std::unique_ptr<CatalogStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, CatalogStoreContractTest,
                         ::testing::Values(Backend::kFile, Backend::kPostgres), BackendName);

TEST_P(CatalogStoreContractTest, EmptyStoreLoadsNothingThenTheNewestSavedCatalog) {
  absl::StatusOr<std::optional<StoredCatalog>> none = store_->Load();
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  EXPECT_FALSE(store_->LatestVersion()->has_value());

  const ItemCatalog a = RandomCatalog(5, 2, /*seed=*/1);
  const ItemCatalog b = RandomCatalog(4, 2, /*seed=*/2, /*first_id=*/500);
  ASSERT_TRUE(store_->Save(a, 0).ok());
  ASSERT_TRUE(store_->Save(b, 1).ok());
  EXPECT_EQ(**store_->LatestVersion(), 1);
  absl::StatusOr<std::unique_ptr<CatalogStore>> reopened = OpenStore();
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  absl::StatusOr<std::optional<StoredCatalog>> loaded = (*reopened)->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->version, 1);
  EXPECT_EQ((*loaded)->items.ids, b.ids);
  EXPECT_TRUE(SameCatalog((*loaded)->items, b));  // the CSV round trip is exact
  EXPECT_FALSE(SameCatalog((*loaded)->items, a));
  EXPECT_FALSE((*loaded)->path.empty());
  EXPECT_EQ(**(*reopened)->LatestVersion(), 1);
}

TEST_P(CatalogStoreContractTest, CategoricalItemColumnsRoundTrip) {
  ItemCatalog items = RandomCatalog(2, 3, /*seed=*/9, /*first_id=*/1000);
  items.categorical = CategoricalColumns({"tags"});
  ASSERT_TRUE(items.categorical.AppendFeatures({{"tags", {4, -5}}}).ok());
  ASSERT_TRUE(items.categorical.AppendFeatures({}).ok());
  ASSERT_TRUE(store_->Save(items, 3).ok());
  absl::StatusOr<std::optional<StoredCatalog>> loaded = store_->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->items.categorical, items.categorical);
  EXPECT_TRUE(SameCatalog((*loaded)->items, items));
}

TEST_P(CatalogStoreContractTest, RefusesNegativeVersionsAndEmptyCatalogs) {
  EXPECT_EQ(store_->Save(RandomCatalog(2, 2, 1), -1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(store_->Save(ItemCatalog(), 1).ok());
  EXPECT_FALSE(store_->LatestVersion()->has_value());
}

class PostgresCatalogStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(schema_.ok()) << schema_.status();
    absl::StatusOr<std::unique_ptr<PgConnection>> c = PgConnection::Connect(schema_.dsn(), "test");
    ASSERT_TRUE(c.ok()) << c.status();
    sql_ = std::move(*c);
  }
  int64_t Count(const std::string& sql) {
    absl::StatusOr<PgResult> r = sql_->Query(sql, {}, "count");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->GetInt(0, 0) : -1;
  }
  testing::PgTestSchema schema_;
  std::unique_ptr<PgConnection> sql_;
};

TEST_F(PostgresCatalogStoreTest, KeepsTheNewestTenVersionsAndNotifiesEachSave) {
  absl::StatusOr<std::unique_ptr<CatalogStore>> store = PostgresCatalogStore::Open(schema_.dsn());
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE(sql_->Listen(kPgCatalogChannel).ok());
  for (int64_t v = 0; v < 12; ++v)
    ASSERT_TRUE((*store)->Save(RandomCatalog(3, 2, static_cast<uint64_t>(v) + 1), v).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM catalogs"), kKeptCatalogVersions);
  EXPECT_EQ(Count("SELECT min(version) FROM catalogs"), 2);
  EXPECT_EQ(Count("SELECT n_items FROM catalogs WHERE version = 11"), 3);
  std::vector<std::string> payloads;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (payloads.size() < 12 && absl::Now() < deadline) {
    absl::StatusOr<std::vector<PgConnection::Notification>> n =
        sql_->WaitForNotifications(absl::Milliseconds(200));
    ASSERT_TRUE(n.ok()) << n.status();
    for (const auto& x : *n) payloads.push_back(x.payload);
  }
  ASSERT_EQ(payloads.size(), 12u);
  EXPECT_EQ(payloads.front(), "0");
  EXPECT_EQ(payloads.back(), "11");
}

TEST_F(PostgresCatalogStoreTest, AFailingWriteGuardSavesNothing) {
  bool fenced = false;
  absl::StatusOr<std::unique_ptr<CatalogStore>> store =
      PostgresCatalogStore::Open(schema_.dsn(), [&](PgConnection&) {
        return fenced ? absl::FailedPreconditionError("fenced") : absl::OkStatus();
      });
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Save(RandomCatalog(3, 2, 1), 1).ok());
  fenced = true;
  EXPECT_EQ((*store)->Save(RandomCatalog(4, 2, 2), 2).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(**(*store)->LatestVersion(), 1);
  EXPECT_EQ((*(*store)->Load())->items.size(), 3);
}

TEST_F(PostgresCatalogStoreTest, UnreadableNewestCatalogIsDataLossNotAnOlderCatalog) {
  absl::StatusOr<std::unique_ptr<CatalogStore>> store = PostgresCatalogStore::Open(schema_.dsn());
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Save(RandomCatalog(3, 2, 1), 1).ok());
  ASSERT_TRUE((*store)->Save(RandomCatalog(3, 2, 2), 2).ok());
  ASSERT_TRUE(sql_->Exec("UPDATE catalogs SET items_csv = convert_to(E'item,f0,f1\\n1,0.5\\n', 'UTF8') "
                         "WHERE version = 2", "corrupt").ok());
  absl::StatusOr<std::optional<StoredCatalog>> loaded = (*store)->Load();
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(loaded.status().message(), HasSubstr("catalogs version 2"));
}

TEST_F(PostgresCatalogStoreTest, ANewerSchemaIsRefused) {
  ASSERT_TRUE(PostgresCatalogStore::Open(schema_.dsn()).ok());
  ASSERT_TRUE(sql_->Exec("UPDATE optower_schema SET version = 7 WHERE component = 'catalog'",
                         "bump").ok());
  absl::StatusOr<std::unique_ptr<CatalogStore>> s = PostgresCatalogStore::Open(schema_.dsn());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("upgrade optower"));
}

}  // namespace
}  // namespace optower
