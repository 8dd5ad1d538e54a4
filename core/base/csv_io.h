// CSV files of bandit data (OBP's column names), read with strict validation and written
// atomically.
//
// Formats (comma-separated, header on line 1, one row per line, no quoting):
//   items.csv:  item,f0,...,f{E-1}[,c:<a>,c:<b>...]     E >= 0; item = a unique integer id
//   logs.csv:   x0,...,x{D-1}[,c:<u>...],action,reward,pscore[,position]
//               D >= 1, or D = 0 with at least one c: column; action = an item id;
//               0 < pscore <= 1; position (optional) = the row's 0-based slot, an integer >= 0
//   contexts:   x0,...,x{D-1}[,c:<u>...]              D >= 1, or D = 0 with a c: column
//   matrix:     <p>0,...,<p>{N-1}                    N >= 1 ("a" for per-action q or pi_b)
//
// Categorical columns (core/base/categorical.h, csv_categorical.h): a header column `c:<name>`
// (after the dense columns; name = 1..64 of [A-Za-z0-9_.-], unique) holds the raw ids of field
// <name>. A cell is ids separated by '|' ("12|-3|red"): integer text is the id, any other
// non-empty text becomes CategoricalIdFromText(text) (FNV-1a-64); an empty cell = no ids in that
// row. Cells cannot hold commas (no quoting). They fill ItemCatalog::categorical and
// BanditLog::context_categorical (fields in header order); a file without c: columns gives
// empty CategoricalColumns (no fields). Writers write ids as integers.
// The `position` column fills BanditLog::positions only (not prefix_offsets): each row stays a
// draw of its own with its logged pscore, as OBP treats the Open Bandit Dataset. WriteLogsCsv
// writes it when positions is non-empty and the log has no slate prefixes (a slate log's
// prefixes are not written, so neither are its positions: its pscores are conditional).
//
// Readers: the whole file is read into memory and parsed with std::from_chars (1M log rows
// with D = 5, 70 MB, read in 0.7 s). Values too small for a float/double read as 0 (or -0).
// Accepted: LF or CRLF line ends, a UTF-8 BOM, spaces around fields, blank lines at the very end.
// Rejected — always InvalidArgument with the one-line message
// "<path>:<line>: <what is wrong>" (line 1 = the header), naming the column and the bad value:
// empty file, missing/malformed header, wrong column count (expected vs found), non-numeric values,
// NaN/inf, values outside float range, a blank line followed by more rows, a header with no rows,
// duplicate item ids, unknown actions, pscore outside (0, 1], a position that is not an integer
// >= 0, an invalid or repeated c: name ("header column 3: column 'c:a b': name='a b': ..."), an
// empty id in a categorical cell ("column 'c:user': value '1||2': empty id ..."). A data row of
// only one empty categorical cell is a blank line (so write such contexts with a dense column).
// A file that cannot be opened gives the errno-derived code (NotFound, PermissionDenied, ...).
//
// Writers validate shapes (InvalidArgument) and write through WriteFileAtomically. Numbers are
// written in the shortest form that reads back to the identical float/double (std::to_chars), so a
// write/read round trip is exact.
//
// Thread safety: all functions are reentrant (no shared state).
#ifndef OPTOWER_CORE_BASE_CSV_IO_H_
#define OPTOWER_CORE_BASE_CSV_IO_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"

namespace optower {

// Rows in file order: ids[i] and features row i come from data line i.
absl::StatusOr<ItemCatalog> ReadItemsCsv(const std::string& path);
// The same from text already in memory; `name` stands for the file in messages.
absl::StatusOr<ItemCatalog> ParseItemsCsv(const std::string& text, const std::string& name);

// Actions are mapped from item ids to row indices of `items` (BanditLog::actions holds rows).
// `items_name` names the catalog in the "action=17 is not an item in <items_name>" message
// (typically its path). Fails if `items` itself has duplicate ids.
absl::StatusOr<BanditLog> ReadLogsCsv(const std::string& path, const ItemCatalog& items,
                                      std::string_view items_name = "the item catalog");

// Contexts [n, D] row-major; *dim receives D (dim must not be null). Dense files only: a file with
// c: columns is InvalidArgument "<path>:1: column 'c:<name>': categorical columns are not taken
// here ..." (use ReadContextTableCsv).
absl::StatusOr<std::vector<float>> ReadContextsCsv(const std::string& path, int64_t* dim);

// A contexts file with its categorical columns: dense [rows, dim] row-major (dim may be 0) and
// `categorical` with `rows` rows (or no fields).
struct ContextTable {
  int64_t rows = 0;
  int64_t dim = 0;
  std::vector<float> dense;
  CategoricalColumns categorical;
};
absl::StatusOr<ContextTable> ReadContextTableCsv(const std::string& path);

// Header `<column_prefix>0..<column_prefix>{N-1}`; values are doubles.
absl::StatusOr<DenseMatrix> ReadMatrixCsv(const std::string& path,
                                          const std::string& column_prefix);

// Writes item ids (items.ids[log.actions[i]]), not row indices, the context's categorical columns
// and positions (see above). Fails if an action is not a row of `items`, the log's vectors
// disagree in size, or a position is negative.
absl::Status WriteLogsCsv(const std::string& path, const BanditLog& log, const ItemCatalog& items);
absl::Status WriteItemsCsv(const std::string& path, const ItemCatalog& items);
// The text WriteItemsCsv writes (same checks; `path` names the destination in messages).
absl::StatusOr<std::string> FormatItemsCsv(const ItemCatalog& items, const std::string& path);
// `contexts` is [n, dim] row-major, dim >= 1.
absl::Status WriteContextsCsv(const std::string& path, const std::vector<float>& contexts,
                              int64_t dim);
// rows >= 1; dim >= 1, or 0 with categorical fields; dense [rows, dim]; categorical has `rows`
// rows or no fields. With dim = 0 and one field, every row needs an id (else a blank line).
absl::Status WriteContextTableCsv(const std::string& path, const ContextTable& table);
absl::Status WriteMatrixCsv(const std::string& path, const std::string& column_prefix,
                            const DenseMatrix& matrix);

}  // namespace optower

#endif  // OPTOWER_CORE_BASE_CSV_IO_H_
