// CSV files of bandit data (OBP's column names), read with strict validation and written
// atomically.
//
// Formats (comma-separated, header on line 1, one row per line, no quoting):
//   items.csv:  item,f0,...,f{E-1}                   E >= 0; item = a unique integer id
//   logs.csv:   x0,...,x{D-1},action,reward,pscore   D >= 1; action = an item id; 0 < pscore <= 1
//   contexts:   x0,...,x{D-1}                        D >= 1
//   matrix:     <p>0,...,<p>{N-1}                    N >= 1 ("a" for per-action q or pi_b)
//
// Readers: the whole file is read into memory and parsed with std::from_chars (1M log rows
// with D = 5, 70 MB, read in 0.7 s). Values too small for a float/double read as 0 (or -0).
// Accepted: LF or CRLF line ends, a UTF-8 BOM, spaces around fields, blank lines at the very end.
// Rejected — always InvalidArgument with the one-line message
// "<path>:<line>: <what is wrong>" (line 1 = the header), naming the column and the bad value:
// empty file, missing/malformed header, wrong column count (expected vs found), non-numeric values,
// NaN/inf, values outside float range, a blank line followed by more rows, a header with no rows,
// duplicate item ids, unknown actions, pscore outside (0, 1]. A file that cannot be opened gives
// the errno-derived code (NotFound, PermissionDenied, ...).
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

// Actions are mapped from item ids to row indices of `items` (BanditLog::actions holds rows).
// `items_name` names the catalog in the "action=17 is not an item in <items_name>" message
// (typically its path). Fails if `items` itself has duplicate ids.
absl::StatusOr<BanditLog> ReadLogsCsv(const std::string& path, const ItemCatalog& items,
                                      std::string_view items_name = "the item catalog");

// Contexts [n, D] row-major; *dim receives D (dim must not be null).
absl::StatusOr<std::vector<float>> ReadContextsCsv(const std::string& path, int64_t* dim);

// Header `<column_prefix>0..<column_prefix>{N-1}`; values are doubles.
absl::StatusOr<DenseMatrix> ReadMatrixCsv(const std::string& path,
                                          const std::string& column_prefix);

// Writes item ids (items.ids[log.actions[i]]), not row indices. Fails if an action is not a row of
// `items` or the log's vectors disagree in size.
absl::Status WriteLogsCsv(const std::string& path, const BanditLog& log, const ItemCatalog& items);
absl::Status WriteItemsCsv(const std::string& path, const ItemCatalog& items);
// `contexts` is [n, dim] row-major, dim >= 1.
absl::Status WriteContextsCsv(const std::string& path, const std::vector<float>& contexts,
                              int64_t dim);
absl::Status WriteMatrixCsv(const std::string& path, const std::string& column_prefix,
                            const DenseMatrix& matrix);

}  // namespace optower

#endif  // OPTOWER_CORE_BASE_CSV_IO_H_
