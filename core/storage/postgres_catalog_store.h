// PostgresCatalogStore: the catalog store (core/storage/catalog_store.h) in PostgreSQL, shared by
// several serving replicas (docs/SCALING.md).
//
//   catalogs(version BIGINT PRIMARY KEY, items_csv BYTEA, n_items BIGINT, created_us BIGINT)
//     (component "catalog" of ApplyPgMigrations) the catalog's version history: the items CSV of
//     each version (core/base/csv_io.h, categorical columns included), the newest kKeptCatalogVersions.
//
// Save inserts the version (replacing a row of the same version), deletes versions beyond the newest
// kKeptCatalogVersions and sends NOTIFY optower_catalog (payload: the version), all in one
// transaction holding the advisory lock "catalog", with the WriteGuard last before COMMIT
// (core/storage/pg_write_transaction.h). Load returns the newest version; LatestVersion reads only
// its number, so a replica can poll it cheaply (or LISTEN on optower_catalog).
//
// Thread safety: all methods are safe to call concurrently; they share one connection and take turns.
#ifndef OPTOWER_CORE_STORAGE_POSTGRES_CATALOG_STORE_H_
#define OPTOWER_CORE_STORAGE_POSTGRES_CATALOG_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/storage/catalog_store.h"
#include "core/storage/pg_connection.h"
#include "core/storage/pg_write_transaction.h"

namespace optower {

// The NOTIFY channel of Save.
inline constexpr char kPgCatalogChannel[] = "optower_catalog";
// How many catalog versions the table keeps.
inline constexpr int kKeptCatalogVersions = 10;

class PostgresCatalogStore : public CatalogStore {
 public:
  using WriteGuard = PgWriteGuard;

  // Connects and applies the "catalog" migrations (FailedPrecondition when the database's schema is
  // newer than this build); Unavailable when the server is down.
  static absl::StatusOr<std::unique_ptr<CatalogStore>> Open(const std::string& dsn,
                                                            WriteGuard guard = nullptr);

  // StoredCatalog::path is "postgres:<schema>.catalogs version <v>".
  absl::StatusOr<std::optional<StoredCatalog>> Load() const override;
  absl::StatusOr<std::optional<int64_t>> LatestVersion() const override;
  absl::Status Save(const ItemCatalog& items, int64_t version) override;
  std::string Location() const override;

 private:
  PostgresCatalogStore(std::unique_ptr<PgConnection> conn, WriteGuard guard)
      : conn_(std::move(conn)), guard_(std::move(guard)) {}

  mutable absl::Mutex mu_;
  const std::unique_ptr<PgConnection> conn_ ABSL_PT_GUARDED_BY(mu_);
  const WriteGuard guard_;
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_POSTGRES_CATALOG_STORE_H_
