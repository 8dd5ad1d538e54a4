#include "core/storage/catalog_store.h"

#include <cstring>

namespace optower {

bool SameCatalog(const ItemCatalog& a, const ItemCatalog& b) {
  if (a.dim_features != b.dim_features || a.ids != b.ids ||
      a.features.size() != b.features.size() || !(a.categorical == b.categorical))
    return false;
  return std::memcmp(a.features.data(), b.features.data(), a.features.size() * sizeof(float)) == 0;
}

}  // namespace optower
