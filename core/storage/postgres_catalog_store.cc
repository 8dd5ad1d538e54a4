#include "core/storage/postgres_catalog_store.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/csv_io.h"
#include "core/base/status_macros.h"
#include "core/base/test_points.h"

namespace optower {
namespace {
namespace pcs {  // named: the storage library is a unity build

const std::vector<std::string>& Migrations() {
  static const std::vector<std::string>* m = new std::vector<std::string>{
      "CREATE TABLE catalogs (version BIGINT PRIMARY KEY, items_csv BYTEA NOT NULL, "
      "n_items BIGINT NOT NULL, created_us BIGINT NOT NULL)"};
  return *m;
}

}  // namespace pcs
}  // namespace

absl::StatusOr<std::unique_ptr<CatalogStore>> PostgresCatalogStore::Open(const std::string& dsn,
                                                                          WriteGuard guard) {
  ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn,
                   PgConnection::Connect(dsn, "optower catalog store"));
  RETURN_IF_ERROR(ApplyPgMigrations(*conn, "catalog", pcs::Migrations()));
  return std::unique_ptr<CatalogStore>(new PostgresCatalogStore(std::move(conn), std::move(guard)));
}

std::string PostgresCatalogStore::Location() const {
  absl::MutexLock lock(&mu_);
  return absl::StrCat("the PostgreSQL table ", conn_->schema(), ".catalogs");
}

absl::StatusOr<std::optional<int64_t>> PostgresCatalogStore::LatestVersion() const {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(EnsurePgConnected(*conn_));
  ASSIGN_OR_RETURN(PgResult r, conn_->Query("SELECT max(version) FROM catalogs", {},
                                            "postgres: newest catalog version"));
  if (r.rows() == 0 || r.IsNull(0, 0)) return std::optional<int64_t>();
  return std::optional<int64_t>(r.GetInt(0, 0));
}

absl::StatusOr<std::optional<StoredCatalog>> PostgresCatalogStore::Load() const {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(EnsurePgConnected(*conn_));
  // Binary results for both columns: the version as its decimal text (convert_to gives bytea).
  ASSIGN_OR_RETURN(PgResult r,
                   conn_->Query("SELECT convert_to(version::text, 'UTF8'), items_csv FROM catalogs "
                                "ORDER BY version DESC LIMIT 1",
                                {}, "postgres: reading the newest catalog", /*binary_results=*/true));
  if (r.rows() == 0) return std::optional<StoredCatalog>();
  StoredCatalog out;
  if (!absl::SimpleAtoi(r.Get(0, 0), &out.version))
    return absl::DataLossError(absl::StrCat("catalog version \"", r.Get(0, 0), "\" is not a number"));
  out.path = absl::StrCat("postgres:", conn_->schema(), ".catalogs version ", out.version);
  absl::StatusOr<ItemCatalog> items = ParseItemsCsv(r.Get(0, 1), out.path);
  if (!items.ok()) return UnreadableCatalogError(out.path, items.status());
  out.items = std::move(*items);
  return std::optional<StoredCatalog>(std::move(out));
}

absl::Status PostgresCatalogStore::Save(const ItemCatalog& items, int64_t version) {
  if (version < 0)
    return absl::InvalidArgumentError(absl::StrCat("catalog version=", version, ": must be >= 0"));
  absl::MutexLock lock(&mu_);
  const std::string what = absl::StrCat("postgres: saving catalog version ", version);
  RETURN_IF_ERROR(FaultPoint("catalog.write", what));
  ASSIGN_OR_RETURN(const std::string csv,
                   FormatItemsCsv(items, absl::StrCat("catalog version ", version)));
  return RunPgWriteTransaction(
      *conn_, "catalog", what,
      [&](PgConnection& c) -> absl::Status {
        RETURN_IF_ERROR(c.Query("INSERT INTO catalogs (version, items_csv, n_items, created_us) "
                                "VALUES ($1, $2, $3, $4) ON CONFLICT (version) DO UPDATE SET "
                                "items_csv = EXCLUDED.items_csv, n_items = EXCLUDED.n_items, "
                                "created_us = EXCLUDED.created_us",
                                {PgParam::Int(version), PgParam::Bytes(csv), PgParam::Int(items.size()),
                                 PgParam::Int(absl::ToUnixMicros(absl::Now()))},
                                what)
                            .status());
        RETURN_IF_ERROR(c.Query("DELETE FROM catalogs WHERE version NOT IN (SELECT version FROM "
                                "catalogs ORDER BY version DESC LIMIT $1)",
                                {PgParam::Int(kKeptCatalogVersions)}, what)
                            .status());
        return c.Notify(kPgCatalogChannel, absl::StrCat(version));
      },
      guard_);
}

}  // namespace optower
