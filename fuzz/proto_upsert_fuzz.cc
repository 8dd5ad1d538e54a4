// Fuzzes the UpsertItemsRequest path up to core: any bytes parsed as a v1::UpsertItemsRequest, then
// FromProto (server/proto_convert.h) against a catalog of dim_features = 3 (and 0, for catalogs
// of id embeddings only). Property: accepted items form a consistent catalog fragment (categorical
// columns included: one row per item); an item of another feature count, with more than
// kMaxCategoricalFields categorical features or a categorical name twice is rejected with
// InvalidArgument.
#include <cstdint>
#include <set>
#include <string>

#include "core/base/categorical.h"

#include "fuzz/fuzz_file.h"
#include "server/proto_convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  optower::v1::UpsertItemsRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  using optower::fuzz::Check;
  for (const int64_t dim : {int64_t{3}, int64_t{0}}) {
    bool all_match = true;
    for (const optower::v1::Item& item : request.items()) {
      all_match &= item.features_size() == dim;
      all_match &= item.categorical_size() <= optower::kMaxCategoricalFields;
      std::set<std::string> names;
      for (const optower::v1::CategoricalFeature& f : item.categorical()) {
        all_match &= names.insert(f.name()).second;
      }
    }
    absl::StatusOr<optower::ItemCatalog> items = optower::server::FromProto(request, dim);
    Check(items.ok() == all_match,
          "rejected exactly when a feature count differs or categorical features are malformed");
    if (!items.ok()) {
      Check(absl::IsInvalidArgument(items.status()), "a mismatch is InvalidArgument");
      continue;
    }
    Check(items->dim_features == dim, "dim_features kept");
    Check(items->ids.size() == static_cast<size_t>(request.items_size()), "one id per item");
    Check(items->features.size() == items->ids.size() * static_cast<size_t>(dim),
          "features.size() == ids.size() * dim_features");
    Check(items->categorical.empty() || items->categorical.rows() == request.items_size(),
          "one categorical row per item");
    for (int i = 0; i < request.items_size(); ++i) {
      Check(items->ids[static_cast<size_t>(i)] == request.items(i).item_id(), "item_id copied");
    }
  }
  return 0;
}
