// Categorical columns in the CSV files of core/base/csv_io.h (the format is described there):
// a header column `c:<name>` holds field <name>; a cell holds that field's ids separated by '|'
// ("12|abc|-3"; integer text is the id, other text is hashed by CategoricalIdFromText); an empty
// cell is a row without ids. Writers write every id as an integer, so a write/read round trip is
// exact.
//
// Thread safety: reentrant functions.
#ifndef OPTOWER_CORE_BASE_CSV_CATEGORICAL_H_
#define OPTOWER_CORE_BASE_CSV_CATEGORICAL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/categorical.h"

namespace optower {

inline constexpr absl::string_view kCategoricalColumnPrefix = "c:";
inline constexpr char kCategoricalIdSeparator = '|';

// True if a header column starts with "c:".
bool IsCategoricalColumn(absl::string_view column);
// The field name of a "c:<name>" column, checked with ValidateCategoricalName; InvalidArgument
// "column 'c:a b': ..." otherwise.
absl::StatusOr<std::string> CategoricalFieldOfColumn(absl::string_view column);

// Parses one cell into *ids (cleared first). InvalidArgument "column '<column>': value '1||2':
// empty id (ids are separated by single '|')" on an empty id; callers prefix "<path>:<line>: ".
absl::Status ParseCategoricalCell(absl::string_view column, absl::string_view cell,
                                  std::vector<int64_t>* ids);

// ",c:<name>" for every field of `cols`.
void AppendCategoricalHeader(std::string* out, const CategoricalColumns& cols);
// ",<ids of field 0>,<ids of field 1>..." for row `row` (ids joined by '|').
void AppendCategoricalCells(std::string* out, const CategoricalColumns& cols, int64_t row);
// Checks that `cols` can be written beside `rows` rows: no fields at all, or exactly `rows` rows
// and valid, unique field names. `what` names the columns in messages ("context_categorical").
// The message has no path; callers wrap it.
absl::Status CheckCategoricalForWrite(const CategoricalColumns& cols, int64_t rows,
                                      absl::string_view what);

}  // namespace optower

#endif  // OPTOWER_CORE_BASE_CSV_CATEGORICAL_H_
