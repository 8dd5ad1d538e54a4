#include "core/serving/catalog_edit.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {

// The first row of `cols` with an id in `field`, or 0.
int64_t FirstRowWithIds(const CategoricalColumns& cols, int64_t field) {
  for (int64_t r = 0; r < cols.rows(); ++r) {
    if (!cols.ids(r, field).empty()) return r;
  }
  return 0;
}

}  // namespace

absl::StatusOr<CategoricalColumns> ColumnsForSchema(const CategoricalColumns& cols, int64_t rows,
                                                    const std::vector<CategoricalField>& schema,
                                                    const std::string& what) {
  if (!cols.empty() && cols.rows() != rows) {
    return absl::InvalidArgumentError(absl::StrCat(what, ".categorical has ", cols.rows(),
                                                   " rows: expected ", rows));
  }
  // source[j]: the column of cols holding schema field j, or -1.
  std::vector<int64_t> source(schema.size(), -1);
  for (int64_t c = 0; c < cols.num_fields(); ++c) {
    const std::string& name = cols.fields()[static_cast<size_t>(c)];
    const auto it = std::find_if(schema.begin(), schema.end(),
                                 [&](const CategoricalField& f) { return f.name == name; });
    if (it == schema.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, "[", FirstRowWithIds(cols, c), "].categorical '", name.substr(0, 80),
          "': not a field of the model's item schema (fields: ", CategoricalFieldNames(schema),
          ")"));
    }
    source[static_cast<size_t>(it - schema.begin())] = c;
  }
  std::vector<std::string> names;
  names.reserve(schema.size());
  for (const CategoricalField& f : schema) names.push_back(f.name);
  CategoricalColumns out(std::move(names));
  for (int64_t r = 0; r < rows; ++r) {
    for (size_t j = 0; j < schema.size(); ++j) {
      if (source[j] < 0) {
        out.AddCell({});
        continue;
      }
      const absl::Span<const int64_t> ids = cols.ids(r, source[j]);
      if (static_cast<int64_t>(ids.size()) > schema[j].max_ids) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, "[", r, "].categorical '", schema[j].name, "': ", ids.size(),
            " ids, the model's item schema takes at most max_ids=", schema[j].max_ids));
      }
      out.AddCell(ids);
    }
  }
  return out;
}

absl::StatusOr<ItemCatalog> CatalogWithUpserts(const ItemCatalog& catalog, const ItemCatalog& items,
                                               const std::function<int64_t(int64_t)>& row_of,
                                               const std::vector<CategoricalField>& schema,
                                               int64_t* inserted, int64_t* updated) {
  const int64_t dim = catalog.dim_features;
  const int64_t n = items.size();
  *inserted = 0;
  *updated = 0;
  const bool categorical = !catalog.categorical.empty() || !items.categorical.empty();
  CategoricalColumns old_cols, new_cols;
  if (categorical) {
    ASSIGN_OR_RETURN(new_cols, ColumnsForSchema(items.categorical, n, schema, "items"));
    ASSIGN_OR_RETURN(old_cols,
                     ColumnsForSchema(catalog.categorical, catalog.size(), schema, "catalog"));
  }
  ItemCatalog next;
  next.dim_features = dim;
  next.ids = catalog.ids;
  next.features = catalog.features;
  // replaced_by[row]: the request index replacing catalog row `row`, or -1.
  std::vector<int64_t> replaced_by(categorical ? static_cast<size_t>(catalog.size()) : 0, -1);
  std::vector<int64_t> appended;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = row_of(items.ids[i]);
    if (row >= 0) {
      std::copy_n(items.feature(i), dim, next.features.data() + row * dim);
      if (categorical) replaced_by[static_cast<size_t>(row)] = i;
      ++*updated;
    } else {
      next.ids.push_back(items.ids[i]);
      next.features.insert(next.features.end(), items.feature(i), items.feature(i) + dim);
      appended.push_back(i);
      ++*inserted;
    }
  }
  if (categorical) {
    next.categorical = CategoricalColumns(old_cols.fields());
    for (int64_t row = 0; row < catalog.size(); ++row) {
      const int64_t i = replaced_by[static_cast<size_t>(row)];
      if (i >= 0) {
        next.categorical.AppendRow(new_cols, i);
      } else {
        next.categorical.AppendRow(old_cols, row);
      }
    }
    for (int64_t i : appended) next.categorical.AppendRow(new_cols, i);
  }
  return next;
}

ItemCatalog CatalogWithout(const ItemCatalog& catalog, const absl::flat_hash_set<int64_t>& doomed) {
  const int64_t dim = catalog.dim_features;
  const int64_t kept = catalog.size() - static_cast<int64_t>(doomed.size());
  ItemCatalog next;
  next.dim_features = dim;
  next.ids.reserve(static_cast<size_t>(std::max<int64_t>(kept, 0)));
  next.features.reserve(static_cast<size_t>(std::max<int64_t>(kept, 0) * dim));
  const bool categorical = !catalog.categorical.empty();
  if (categorical) next.categorical = CategoricalColumns(catalog.categorical.fields());
  for (int64_t row = 0; row < catalog.size(); ++row) {
    if (doomed.contains(catalog.ids[row])) continue;
    next.ids.push_back(catalog.ids[row]);
    next.features.insert(next.features.end(), catalog.feature(row), catalog.feature(row) + dim);
    if (categorical) next.categorical.AppendRow(catalog.categorical, row);
  }
  return next;
}

}  // namespace optower
