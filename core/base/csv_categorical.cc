#include "core/base/csv_categorical.h"


#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/csv_reader.h"

namespace optower {

bool IsCategoricalColumn(absl::string_view column) {
  return absl::StartsWith(column, kCategoricalColumnPrefix);
}

absl::StatusOr<std::string> CategoricalFieldOfColumn(absl::string_view column) {
  const absl::string_view name = column.substr(kCategoricalColumnPrefix.size());
  absl::Status valid = ValidateCategoricalName(name,
                                               "name");
  if (!valid.ok())
    return absl::InvalidArgumentError(absl::StrCat("column '", csv_internal::Shown(column),
                                                   "': ", valid.message()));
  return std::string(name);
}

absl::Status ParseCategoricalCell(absl::string_view column, absl::string_view cell,
                                  std::vector<int64_t>* ids) {
  ids->clear();
  if (cell.empty()) return absl::OkStatus();
  size_t start = 0;
  while (true) {
    const size_t bar = cell.find(kCategoricalIdSeparator, start);
    const absl::string_view id = csv_internal::Trim(
        cell.substr(start, bar == absl::string_view::npos ? absl::string_view::npos : bar - start));
    if (id.empty())
      return absl::InvalidArgumentError(
          absl::StrCat("column '", column, "': value '", csv_internal::Shown(cell),
                       "': empty id (ids are separated by single '|')"));
    ids->push_back(CategoricalIdFromText(id));
    if (bar == absl::string_view::npos) return absl::OkStatus();
    start = bar + 1;
  }
}

void AppendCategoricalHeader(std::string* out, const CategoricalColumns& cols) {
  for (const std::string& name : cols.fields())
    absl::StrAppend(out, ",", kCategoricalColumnPrefix, name);
}

void AppendCategoricalCells(std::string* out, const CategoricalColumns& cols, int64_t row) {
  for (int64_t f = 0; f < cols.num_fields(); ++f) {
    out->push_back(',');
    bool first = true;
    for (int64_t id : cols.ids(row, f)) {
      if (!first) out->push_back(kCategoricalIdSeparator);
      first = false;
      csv_internal::AppendNumber(out, id);
    }
  }
}

absl::Status CheckCategoricalForWrite(const CategoricalColumns& cols, int64_t rows,
                                      absl::string_view what) {
  if (cols.empty()) return absl::OkStatus();
  if (cols.rows() != rows)
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", cols.rows(), " rows, expected ", rows));
  absl::flat_hash_set<std::string> seen;
  for (const std::string& name : cols.fields()) {
    absl::Status valid = ValidateCategoricalName(name, "name");
    if (!valid.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", valid.message()));
    if (!seen.insert(name).second)
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": field '", name, "' appears twice"));
  }
  return absl::OkStatus();
}

}  // namespace optower
