// CatalogStore: the served item catalog, durable in <data_dir>/catalog/ (docs/SERVING.md "Catalog
// durability"). UpsertItems/DeleteItems save the changed catalog here before they answer, so a
// restarted server serves exactly the catalog the last acknowledged change left.
//
//   <data_dir>/catalog/items-000000000007.csv    the items CSV (item,f0,...,c:<name>...) of
//                                                catalog version 7, categorical item columns included
//
// Save writes the new version's file through WriteFileAtomically (temporary file, fsync, rename,
// folder fsync), then removes older versions' files. A crash between the two leaves two files;
// Load takes the highest version, so it always sees the newest acknowledged catalog. Load never falls
// back to an older file when the newest cannot be read (that would serve deleted items again): it
// fails, naming the file.
//
// Thread safety: Save calls must be serialised by the caller (the engine's writer lock); Load is
// meant for start-up. Blocking: file I/O and fsyncs.
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
  std::string path;     // the file it was read from
};

class CatalogStore {
 public:
  // Creates <data_dir>/catalog if missing (data_dir must exist: NotFound otherwise) and removes
  // temporaries a crash left.
  static absl::StatusOr<std::unique_ptr<CatalogStore>> Open(const std::string& data_dir);

  // The newest stored catalog, or nullopt when none was ever saved. DataLoss naming the file if it
  // cannot be parsed.
  absl::StatusOr<std::optional<StoredCatalog>> Load() const;

  // Makes `items` the stored catalog as `version` (>= 0, larger than any stored version is not
  // required: the newest file is the one with the largest number, so callers pass increasing
  // versions). Durable when it returns OK. Test points (core/base/test_points.h): fault
  // "catalog.write"; crash "catalog.before_write", "catalog.after_write".
  absl::Status Save(const ItemCatalog& items, int64_t version);

  const std::string& dir() const { return dir_; }

 private:
  explicit CatalogStore(std::string dir) : dir_(std::move(dir)) {}
  std::string FilePath(int64_t version) const;
  const std::string dir_;
};

// True when `a` and `b` hold the same ids with bit-identical features and equal categorical
// columns (same fields, same ids) in the same order (both
// are parsed from CSV text, so equal text gives equal floats).
bool SameCatalog(const ItemCatalog& a, const ItemCatalog& b);

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_CATALOG_STORE_H_
