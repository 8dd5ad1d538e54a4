#include "core/base/csv_io.h"

#include <cmath>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "core/base/atomic_file.h"
#include "core/base/csv_categorical.h"
#include "core/base/csv_reader.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {

using csv_internal::AppendHeader;
using csv_internal::AppendNumber;
using csv_internal::CheckFinite;
using csv_internal::CsvReader;
using csv_internal::HeaderLayout;
using csv_internal::HeaderSpec;
using csv_internal::ReadWholeFile;
using csv_internal::Shown;
using csv_internal::WriteError;

constexpr absl::string_view kPositionColumn = "position";
constexpr absl::string_view kBadPosition = "not a 0-based position (an integer >= 0)";

// Appends the categorical cells of the current row of `csv` (one per layout.categorical field).
absl::Status ReadCategoricalCells(const CsvReader& csv, const HeaderLayout& layout,
                                  std::vector<int64_t>* scratch, CategoricalColumns* out) {
  for (size_t f = 0; f < layout.categorical.size(); ++f) {
    RETURN_IF_ERROR(csv.Categorical(layout.categorical_begin + f, scratch));
    out->AddCell(*scratch);
  }
  return absl::OkStatus();
}

// Appends the dense values of columns [first, first + n) of the current row.
template <typename T>
absl::Status ReadNumbers(const CsvReader& csv, size_t first, int64_t n, std::vector<T>* out) {
  for (size_t j = first; j < first + static_cast<size_t>(n); ++j) {
    T v;
    RETURN_IF_ERROR(csv.Number(j, &v));
    out->push_back(v);
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::flat_hash_map<int64_t, int64_t>> RowOfItemId(const ItemCatalog& items,
                                                                  absl::string_view items_name) {
  absl::flat_hash_map<int64_t, int64_t> row_of;
  row_of.reserve(items.ids.size());
  for (int64_t r = 0; r < items.size(); ++r)
    if (!row_of.emplace(items.ids[r], r).second)
      return absl::InvalidArgumentError(
          absl::StrCat("item=", items.ids[r], ": duplicate item id in ", items_name));
  return row_of;
}

// One data row of a logs.csv (the header was read into `layout`) appended to *log.
absl::Status ReadLogRow(const CsvReader& csv, const HeaderLayout& layout,
                        const absl::flat_hash_map<int64_t, int64_t>& row_of,
                        absl::string_view items_name, std::vector<int64_t>* scratch,
                        BanditLog* log) {
  RETURN_IF_ERROR(ReadNumbers(csv, 0, layout.dense, &log->contexts));
  RETURN_IF_ERROR(ReadCategoricalCells(csv, layout, scratch, &log->context_categorical));
  const size_t action_col = layout.tail_begin;
  int64_t id;
  RETURN_IF_ERROR(csv.Integer(action_col, &id));
  auto it = row_of.find(id);
  if (it == row_of.end())
    return csv.Error(absl::StrCat("action=", id, " is not an item in ", items_name));
  float reward, pscore;
  RETURN_IF_ERROR(csv.Number(action_col + 1, &reward));
  RETURN_IF_ERROR(csv.Number(action_col + 2, &pscore));
  if (!(pscore > 0.0f && pscore <= 1.0f))
    return csv.Error(
        absl::StrCat("pscore=", Shown(csv.fields()[action_col + 2]), ": must be in (0, 1]"));
  if (layout.has_optional) {
    int64_t position;
    RETURN_IF_ERROR(csv.Integer(action_col + 3, &position, kBadPosition));
    if (position < 0 || position > std::numeric_limits<int32_t>::max())
      return csv.Error(absl::StrCat("position=", position, ": ", kBadPosition));
    log->positions.push_back(static_cast<int32_t>(position));
  }
  log->actions.push_back(it->second);
  log->rewards.push_back(reward);
  log->pscores.push_back(pscore);
  return absl::OkStatus();
}

// Shape checks shared by WriteLogsCsv's callers' data (InvalidArgument "cannot write ...").
absl::Status CheckLogForWrite(const std::string& path, const BanditLog& log,
                              const ItemCatalog& items) {
  const int64_t n = log.size();
  const int64_t d = log.dim_context;
  if (d < 0 || (d == 0 && log.context_categorical.empty()))
    return WriteError(path, absl::StrCat("dim_context=", d,
                                         ": must be >= 1 (or 0 with categorical context columns)"));
  if (n == 0) return WriteError(path, "the log has no rows");
  if (static_cast<int64_t>(log.contexts.size()) != n * d)
    return WriteError(path, absl::StrFormat("contexts has %d values, expected %d rows x %d dims",
                                            log.contexts.size(), n, d));
  if (static_cast<int64_t>(log.rewards.size()) != n ||
      static_cast<int64_t>(log.pscores.size()) != n)
    return WriteError(path, absl::StrFormat("%d actions but %d rewards and %d pscores", n,
                                            log.rewards.size(), log.pscores.size()));
  if (!log.positions.empty() && static_cast<int64_t>(log.positions.size()) != n)
    return WriteError(path, absl::StrFormat("%d actions but %d positions", n, log.positions.size()));
  if (absl::Status s = CheckCategoricalForWrite(log.context_categorical, n, "context_categorical");
      !s.ok())
    return WriteError(path, s.message());
  for (int64_t i = 0; i < n; ++i) {
    if (log.actions[i] < 0 || log.actions[i] >= items.size())
      return WriteError(path, absl::StrFormat("actions[%d]=%d: not a row of the %d-item catalog", i,
                                              log.actions[i], items.size()));
    if (!(log.pscores[i] > 0.0f && log.pscores[i] <= 1.0f))
      return WriteError(path,
                        absl::StrCat("pscores[", i, "]=", log.pscores[i], ": must be in (0, 1]"));
    if (!log.positions.empty() && log.positions[i] < 0)
      return WriteError(path, absl::StrCat("positions[", i, "]=", log.positions[i], ": must be >= 0"));
  }
  RETURN_IF_ERROR(CheckFinite(path, "contexts", log.contexts));
  return CheckFinite(path, "rewards", log.rewards);
}

// "x0,...,x{dim-1},c:a,c:b" (the separating comma only when both parts are present).
void AppendContextHeader(std::string* out, int64_t dim, const CategoricalColumns& categorical) {
  AppendHeader(out, "x", dim);
  const size_t before = out->size();
  AppendCategoricalHeader(out, categorical);
  if (dim == 0 && out->size() > before) out->erase(before, 1);
}

// Row i's context cells, as AppendContextHeader's columns.
void AppendContextRow(std::string* out, const float* x, int64_t dim,
                      const CategoricalColumns& categorical, int64_t i) {
  for (int64_t j = 0; j < dim; ++j) {
    if (j > 0) out->push_back(',');
    AppendNumber(out, x[j]);
  }
  const size_t before = out->size();
  AppendCategoricalCells(out, categorical, i);
  if (dim == 0 && out->size() > before) out->erase(before, 1);
}

}  // namespace

absl::StatusOr<ItemCatalog> ReadItemsCsv(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  return ParseItemsCsv(text, path);
}

absl::StatusOr<ItemCatalog> ParseItemsCsv(const std::string& text, const std::string& name) {
  CsvReader csv(name, text);
  HeaderSpec spec{{"item"}, "f", /*min_prefix=*/0, /*categorical=*/true, {}, "",
                  "item,f0,...,f{E-1}"};
  ASSIGN_OR_RETURN(const HeaderLayout layout, csv.ReadHeader(spec));
  ItemCatalog items;
  items.dim_features = layout.dense;
  if (!layout.categorical.empty()) items.categorical = CategoricalColumns(layout.categorical);
  const size_t hint = csv.RemainingLinesHint();
  items.ids.reserve(hint);
  items.features.reserve(hint * static_cast<size_t>(layout.dense));
  absl::flat_hash_map<int64_t, int64_t> first_line;  // id -> line it was defined on
  first_line.reserve(hint);
  std::vector<int64_t> scratch;
  while (true) {
    ASSIGN_OR_RETURN(const bool has_row, csv.NextRow());
    if (!has_row) break;
    int64_t id;
    RETURN_IF_ERROR(csv.Integer(0, &id));
    // Line of this row = 2 + rows read so far (blank lines can only come at the end).
    const int64_t line = items.size() + 2;
    auto [it, inserted] = first_line.emplace(id, line);
    if (!inserted)
      return csv.Error(
          absl::StrCat("item=", id, ": duplicate item id (first on line ", it->second, ")"));
    items.ids.push_back(id);
    RETURN_IF_ERROR(ReadNumbers(csv, 1, layout.dense, &items.features));
    RETURN_IF_ERROR(ReadCategoricalCells(csv, layout, &scratch, &items.categorical));
  }
  return items;
}

absl::StatusOr<BanditLog> ReadLogsCsv(const std::string& path, const ItemCatalog& items,
                                      std::string_view items_name_std) {
  const absl::string_view items_name(items_name_std.data(), items_name_std.size());
  ASSIGN_OR_RETURN(const auto row_of, RowOfItemId(items, items_name));
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  CsvReader csv(path, text);
  HeaderSpec spec{{},
                  "x",
                  /*min_prefix=*/1,
                  /*categorical=*/true,
                  {"action", "reward", "pscore"},
                  std::string(kPositionColumn),
                  "x0,...,x{D-1},action,reward,pscore"};
  ASSIGN_OR_RETURN(const HeaderLayout layout, csv.ReadHeader(spec));
  BanditLog log;
  log.dim_context = layout.dense;
  if (!layout.categorical.empty())
    log.context_categorical = CategoricalColumns(layout.categorical);
  const size_t hint = csv.RemainingLinesHint();
  log.contexts.reserve(hint * static_cast<size_t>(layout.dense));
  log.actions.reserve(hint);
  log.rewards.reserve(hint);
  log.pscores.reserve(hint);
  if (layout.has_optional) log.positions.reserve(hint);
  std::vector<int64_t> scratch;
  while (true) {
    ASSIGN_OR_RETURN(const bool has_row, csv.NextRow());
    if (!has_row) break;
    RETURN_IF_ERROR(ReadLogRow(csv, layout, row_of, items_name, &scratch, &log));
  }
  return log;
}

absl::StatusOr<ContextTable> ReadContextTableCsv(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  CsvReader csv(path, text);
  HeaderSpec spec{{}, "x", /*min_prefix=*/1, /*categorical=*/true, {}, "", "x0,...,x{D-1}"};
  ASSIGN_OR_RETURN(const HeaderLayout layout, csv.ReadHeader(spec));
  ContextTable table;
  table.dim = layout.dense;
  if (!layout.categorical.empty()) table.categorical = CategoricalColumns(layout.categorical);
  table.dense.reserve(csv.RemainingLinesHint() * static_cast<size_t>(layout.dense));
  std::vector<int64_t> scratch;
  while (true) {
    ASSIGN_OR_RETURN(const bool has_row, csv.NextRow());
    if (!has_row) break;
    RETURN_IF_ERROR(ReadNumbers(csv, 0, layout.dense, &table.dense));
    RETURN_IF_ERROR(ReadCategoricalCells(csv, layout, &scratch, &table.categorical));
    ++table.rows;
  }
  return table;
}

absl::StatusOr<std::vector<float>> ReadContextsCsv(const std::string& path, int64_t* dim) {
  if (dim == nullptr) return absl::InvalidArgumentError("ReadContextsCsv: dim must not be null");
  ASSIGN_OR_RETURN(ContextTable table, ReadContextTableCsv(path));
  if (!table.categorical.empty())
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":1: column '", kCategoricalColumnPrefix, table.categorical.fields()[0],
        "': categorical columns are not taken here (dense contexts x0,...,x{D-1} only)"));
  *dim = table.dim;
  return std::move(table.dense);
}

absl::StatusOr<DenseMatrix> ReadMatrixCsv(const std::string& path,
                                          const std::string& column_prefix) {
  if (column_prefix.empty())
    return absl::InvalidArgumentError("column_prefix is empty: a matrix header needs a prefix");
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  CsvReader csv(path, text);
  HeaderSpec spec{{}, column_prefix, /*min_prefix=*/1, /*categorical=*/false, {}, "",
                  absl::StrCat(column_prefix, "0,...,", column_prefix, "{N-1}")};
  ASSIGN_OR_RETURN(const HeaderLayout layout, csv.ReadHeader(spec));
  DenseMatrix m;
  m.cols = layout.dense;
  m.data.reserve(csv.RemainingLinesHint() * static_cast<size_t>(m.cols));
  while (true) {
    ASSIGN_OR_RETURN(const bool has_row, csv.NextRow());
    if (!has_row) break;
    RETURN_IF_ERROR(ReadNumbers(csv, 0, m.cols, &m.data));
    ++m.rows;
  }
  return m;
}

absl::Status WriteLogsCsv(const std::string& path, const BanditLog& log, const ItemCatalog& items) {
  RETURN_IF_ERROR(CheckLogForWrite(path, log, items));
  const int64_t n = log.size();
  const int64_t d = log.dim_context;
  const bool with_position = !log.positions.empty() && !log.has_slates();
  std::string out;
  out.reserve(static_cast<size_t>(n) *
                  static_cast<size_t>(d + 4 + log.context_categorical.num_fields()) * 12 +
              64);
  AppendContextHeader(&out, d, log.context_categorical);
  out += ",action,reward,pscore";
  if (with_position) absl::StrAppend(&out, ",", kPositionColumn);
  out.push_back('\n');
  for (int64_t i = 0; i < n; ++i) {
    AppendContextRow(&out, log.context(i), d, log.context_categorical, i);
    out.push_back(',');
    AppendNumber(&out, items.ids[log.actions[i]]);
    out.push_back(',');
    AppendNumber(&out, log.rewards[i]);
    out.push_back(',');
    AppendNumber(&out, log.pscores[i]);
    if (with_position) {
      out.push_back(',');
      AppendNumber(&out, log.positions[i]);
    }
    out.push_back('\n');
  }
  return WriteFileAtomically(path, out);
}

absl::StatusOr<std::string> FormatItemsCsv(const ItemCatalog& items, const std::string& path) {
  const int64_t n = items.size();
  const int64_t e = items.dim_features;
  if (e < 0) return WriteError(path, absl::StrCat("dim_features=", e, ": must be >= 0"));
  if (n == 0) return WriteError(path, "the catalog has no items");
  if (static_cast<int64_t>(items.features.size()) != n * e)
    return WriteError(path, absl::StrFormat("features has %d values, expected %d items x %d dims",
                                            items.features.size(), n, e));
  if (absl::Status s = CheckCategoricalForWrite(items.categorical, n, "categorical"); !s.ok())
    return WriteError(path, s.message());
  absl::flat_hash_map<int64_t, int64_t> seen;
  seen.reserve(items.ids.size());
  for (int64_t r = 0; r < n; ++r)
    if (!seen.emplace(items.ids[r], r).second)
      return WriteError(path, absl::StrCat("item=", items.ids[r], ": duplicate item id"));
  RETURN_IF_ERROR(CheckFinite(path, "features", items.features));

  std::string out;
  out.reserve(static_cast<size_t>(n) *
                  static_cast<size_t>(e + 1 + items.categorical.num_fields()) * 12 +
              64);
  out += "item";
  for (int64_t j = 0; j < e; ++j) absl::StrAppend(&out, ",f", j);
  AppendCategoricalHeader(&out, items.categorical);
  out.push_back('\n');
  for (int64_t r = 0; r < n; ++r) {
    AppendNumber(&out, items.ids[r]);
    const float* f = items.feature(r);
    for (int64_t j = 0; j < e; ++j) {
      out.push_back(',');
      AppendNumber(&out, f[j]);
    }
    AppendCategoricalCells(&out, items.categorical, r);
    out.push_back('\n');
  }
  return out;
}

absl::Status WriteItemsCsv(const std::string& path, const ItemCatalog& items) {
  ASSIGN_OR_RETURN(const std::string out, FormatItemsCsv(items, path));
  return WriteFileAtomically(path, out);
}

absl::Status WriteContextTableCsv(const std::string& path, const ContextTable& table) {
  const int64_t n = table.rows;
  const int64_t d = table.dim;
  if (d < 0 || (d == 0 && table.categorical.empty()))
    return WriteError(path, absl::StrCat("dim=", d, ": must be >= 1 (or 0 with categorical columns)"));
  if (n < 1) return WriteError(path, "no contexts to write");
  if (static_cast<int64_t>(table.dense.size()) != n * d)
    return WriteError(path, absl::StrFormat("dense has %d values, expected %d rows x %d dims",
                                            table.dense.size(), n, d));
  if (absl::Status s = CheckCategoricalForWrite(table.categorical, n, "categorical"); !s.ok())
    return WriteError(path, s.message());
  if (d == 0 && table.categorical.num_fields() == 1)
    for (int64_t i = 0; i < n; ++i)
      if (table.categorical.ids(i, 0).empty())
        return WriteError(path, absl::StrCat("row ", i, " has no ids and no other column: it would "
                                             "be a blank line"));
  RETURN_IF_ERROR(CheckFinite(path, "contexts", table.dense));
  std::string out;
  out.reserve(static_cast<size_t>(n) * static_cast<size_t>(d + table.categorical.num_fields()) *
                  12 + 64);
  AppendContextHeader(&out, d, table.categorical);
  out.push_back('\n');
  for (int64_t i = 0; i < n; ++i) {
    AppendContextRow(&out, table.dense.data() + i * d, d, table.categorical, i);
    out.push_back('\n');
  }
  return WriteFileAtomically(path, out);
}

absl::Status WriteContextsCsv(const std::string& path, const std::vector<float>& contexts,
                              int64_t dim) {
  if (dim < 1) return WriteError(path, absl::StrCat("dim=", dim, ": must be >= 1"));
  if (contexts.empty()) return WriteError(path, "no contexts to write");
  if (contexts.size() % static_cast<size_t>(dim) != 0)
    return WriteError(path, absl::StrFormat("contexts has %d values, not a multiple of dim=%d",
                                            contexts.size(), dim));
  ContextTable table;
  table.dim = dim;
  table.rows = static_cast<int64_t>(contexts.size()) / dim;
  table.dense = contexts;
  return WriteContextTableCsv(path, table);
}

absl::Status WriteMatrixCsv(const std::string& path, const std::string& column_prefix,
                            const DenseMatrix& matrix) {
  if (column_prefix.empty() || column_prefix.find(',') != std::string::npos)
    return WriteError(path, absl::StrCat("column_prefix='", column_prefix,
                                         "': must be non-empty and contain no comma"));
  if (matrix.rows < 1 || matrix.cols < 1)
    return WriteError(path, absl::StrFormat("matrix is [%d, %d]: needs at least one row and column",
                                            matrix.rows, matrix.cols));
  if (static_cast<int64_t>(matrix.data.size()) != matrix.rows * matrix.cols)
    return WriteError(path, absl::StrFormat("matrix has %d values, expected %d x %d",
                                            matrix.data.size(), matrix.rows, matrix.cols));
  RETURN_IF_ERROR(CheckFinite(path, "matrix", matrix.data));
  std::string out;
  out.reserve(matrix.data.size() * 20 + 64);
  AppendHeader(&out, column_prefix, matrix.cols);
  out.push_back('\n');
  for (int64_t r = 0; r < matrix.rows; ++r) {
    const double* row = matrix.row(r);
    for (int64_t c = 0; c < matrix.cols; ++c) {
      if (c > 0) out.push_back(',');
      AppendNumber(&out, row[c]);
    }
    out.push_back('\n');
  }
  return WriteFileAtomically(path, out);
}

}  // namespace optower
