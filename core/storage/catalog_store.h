// CatalogStore: the served item catalog, durable (docs/SERVING.md "Catalog durability").
// UpsertItems/DeleteItems save the changed catalog here before they answer, so a restarted server
// serves exactly the catalog the last acknowledged change left. This is the interface; two backends
// implement it:
//   FileCatalogStore      (core/storage/file_catalog_store.h)      <data_dir>/catalog/items-<v>.csv
//   PostgresCatalogStore  (core/storage/postgres_catalog_store.h)  the catalogs table, shared by
//                         several serving replicas (each polls LatestVersion or LISTENs).
// The stored form is the items CSV (item,f0,...,c:<name>...; core/base/csv_io.h), categorical item
// columns included. Load never falls back to an older version when the newest cannot be read (that
// would serve deleted items again): it fails, naming what it read.
//
// Thread safety: Save calls must be serialised by the caller (the engine's writer lock); Load and
// LatestVersion may be called from any thread. Blocking: file or database I/O.
#ifndef OPTOWER_CORE_STORAGE_CATALOG_STORE_H_
#define OPTOWER_CORE_STORAGE_CATALOG_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"

namespace optower {

struct StoredCatalog {
  ItemCatalog items;
  int64_t version = 0;  // the engine's catalog_version
  std::string path;     // what it was read from (a file, or "postgres:<schema>.catalogs@<v>")
};

class CatalogStore {
 public:
  CatalogStore() = default;
  virtual ~CatalogStore() = default;
  CatalogStore(const CatalogStore&) = delete;
  CatalogStore& operator=(const CatalogStore&) = delete;

  // The newest stored catalog, or nullopt when none was ever saved. DataLoss naming the source if it
  // cannot be parsed.
  virtual absl::StatusOr<std::optional<StoredCatalog>> Load() const = 0;

  // The newest stored version without reading the items (cheap: a replica polls it), or nullopt.
  virtual absl::StatusOr<std::optional<int64_t>> LatestVersion() const = 0;

  // Makes `items` the stored catalog as `version` (>= 0; callers pass increasing versions: the
  // newest is the one with the largest number). Durable when it returns OK. Test points
  // (core/base/test_points.h): fault "catalog.write"; the file store's crash points are in
  // file_catalog_store.h.
  virtual absl::Status Save(const ItemCatalog& items, int64_t version) = 0;

  // Where the catalogs live, for messages (a folder, or the PostgreSQL table).
  virtual std::string Location() const = 0;
};

// True when `a` and `b` hold the same ids with bit-identical features and equal categorical
// columns (same fields, same ids) in the same order (both
// are parsed from CSV text, so equal text gives equal floats).
bool SameCatalog(const ItemCatalog& a, const ItemCatalog& b);

// Load's DataLoss for a newest stored catalog (`where`: its file or row) that cannot be parsed:
// both backends refuse to fall back to an older one.
absl::Status UnreadableCatalogError(const std::string& where, const absl::Status& why);

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_CATALOG_STORE_H_
