// Catalog edits of RetrievalEngine's UpsertItems/DeleteItems: the next ItemCatalog after a change,
// with every row's dense features AND its raw categorical features (ItemCatalog::categorical)
// following the item through upserts (in place for an existing id, appended for a new one) and
// deletes. The index side of a change is ItemIndex::Changes (core/serving/item_index.h); the row
// order produced here is the order the index's ids take.
//
// Categorical columns: a catalog of a model with item fields keeps its columns in the model's
// item_fields order (all of them, empty cells for no value), so that catalogs built by different
// changes compare equal and CheckCatalogSchema holds. Dense-only catalogs (no columns anywhere) are
// copied exactly as before issue 12.
//
// Thread safety: pure functions.
#ifndef OPTOWER_CORE_SERVING_CATALOG_EDIT_H_
#define OPTOWER_CORE_SERVING_CATALOG_EDIT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"
#include "core/base/categorical.h"

namespace optower {

// `cols` (rows [0, rows), any subset of the schema's fields in any order, or no fields = all
// empty) as columns with exactly the schema's field names in schema order. InvalidArgument
// naming `what` (e.g. "items"), the row and the field for a field outside the schema ("items[3]
// .categorical 'brand': not a field of the model's item schema (fields: category)") or a row with
// more ids than max_ids.
absl::StatusOr<CategoricalColumns> ColumnsForSchema(const CategoricalColumns& cols, int64_t rows,
                                                    const std::vector<CategoricalField>& schema,
                                                    const std::string& what);

// The catalog after upserting `items` into `catalog`: rows of ids already there (row_of(id) >= 0)
// are replaced in place, new ids appended in request order. `items` must have been checked
// (dimension, distinct ids). `schema`: the model's item_fields; when either catalog has
// categorical columns, both are brought to the schema's columns (ColumnsForSchema's errors).
// Counts the updated and inserted rows.
absl::StatusOr<ItemCatalog> CatalogWithUpserts(const ItemCatalog& catalog, const ItemCatalog& items,
                                               const std::function<int64_t(int64_t)>& row_of,
                                               const std::vector<CategoricalField>& schema,
                                               int64_t* inserted, int64_t* updated);

// `catalog` without the rows whose id is in `doomed` (order kept, categorical rows included).
ItemCatalog CatalogWithout(const ItemCatalog& catalog, const absl::flat_hash_set<int64_t>& doomed);

}  // namespace optower

#endif  // OPTOWER_CORE_SERVING_CATALOG_EDIT_H_
