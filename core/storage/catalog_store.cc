#include "core/storage/catalog_store.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace optower {

bool SameCatalog(const ItemCatalog& a, const ItemCatalog& b) {
  if (a.dim_features != b.dim_features || a.ids != b.ids ||
      a.features.size() != b.features.size() || !(a.categorical == b.categorical))
    return false;
  return std::memcmp(a.features.data(), b.features.data(), a.features.size() * sizeof(float)) == 0;
}

absl::Status UnreadableCatalogError(const std::string& where, const absl::Status& why) {
  return absl::DataLossError(absl::StrCat(
      "stored catalog ", where, " cannot be read (", why.message(),
      "); an older catalog is not served in its place, since it may hold deleted items"));
}

}  // namespace optower
