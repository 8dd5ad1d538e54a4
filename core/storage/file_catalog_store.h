// FileCatalogStore: the catalog store (core/storage/catalog_store.h) in <data_dir>/catalog/, the
// embedded default:
//
//   <data_dir>/catalog/items-000000000007.csv    the items CSV of catalog version 7
//
// Save writes the new version's file through WriteFileAtomically (temporary file, fsync, rename,
// folder fsync), then removes older versions' files. A crash between the two leaves two files;
// Load takes the highest version, so it always sees the newest acknowledged catalog.
// Test points (core/base/test_points.h): fault "catalog.write"; crash "catalog.before_write",
// "catalog.after_write".
#ifndef OPTOWER_CORE_STORAGE_FILE_CATALOG_STORE_H_
#define OPTOWER_CORE_STORAGE_FILE_CATALOG_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/storage/catalog_store.h"

namespace optower {

class FileCatalogStore : public CatalogStore {
 public:
  // Creates <data_dir>/catalog if missing (data_dir must exist: NotFound otherwise) and removes
  // temporaries a crash left.
  static absl::StatusOr<std::unique_ptr<FileCatalogStore>> Open(const std::string& data_dir);

  absl::StatusOr<std::optional<StoredCatalog>> Load() const override;
  // The newest file's version.
  absl::StatusOr<std::optional<int64_t>> LatestVersion() const override;
  absl::Status Save(const ItemCatalog& items, int64_t version) override;
  std::string Location() const override { return dir_; }

  const std::string& dir() const { return dir_; }

 private:
  explicit FileCatalogStore(std::string dir) : dir_(std::move(dir)) {}
  std::string FilePath(int64_t version) const;
  const std::string dir_;
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_FILE_CATALOG_STORE_H_
