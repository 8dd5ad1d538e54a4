// Fuzzes ReadItemsCsv (core/base/csv_io.h): any bytes as an items.csv. Accepted files must give a
// consistent catalog: ids.size() * dim_features == features.size(), unique ids, finite features,
// categorical columns (if any) with one row per item.
#include <cmath>
#include <cstdint>
#include <unordered_set>

#include "core/base/csv_io.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static optower::fuzz::ScratchFile file;
  absl::StatusOr<optower::ItemCatalog> items = optower::ReadItemsCsv(file.Write(data, size));
  if (!items.ok()) return 0;
  using optower::fuzz::Check;
  Check(items->dim_features >= 0, "dim_features >= 0");
  Check(items->features.size() == items->ids.size() * static_cast<size_t>(items->dim_features),
        "features.size() == ids.size() * dim_features");
  std::unordered_set<int64_t> seen(items->ids.begin(), items->ids.end());
  Check(seen.size() == items->ids.size(), "item ids are unique");
  for (float f : items->features) Check(std::isfinite(f), "features are finite");
  Check(items->categorical.empty() || items->categorical.rows() == items->size(),
        "categorical rows == items");
  return 0;
}
