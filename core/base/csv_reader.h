// The line/field machinery behind the CSV readers and writers of core/base (internal to core/base:
// csv_io.cc, csv_categorical.cc and obd_campaign.cc use it; everything else includes csv_io.h).
//
// CsvReader reads a whole-file buffer line by line, checks the header against a HeaderSpec and
// turns every value error into InvalidArgument "<path>:<line>: <column>=<value>: <what>".
//
// Thread safety: one CsvReader per file and thread; the free functions are reentrant.
#ifndef OPTOWER_CORE_BASE_CSV_READER_H_
#define OPTOWER_CORE_BASE_CSV_READER_H_

#include <charconv>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace optower::csv_internal {

// The whole file (errno-derived status if it cannot be opened or read).
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);
// Without leading/trailing spaces, tabs (and a trailing '\r').
absl::string_view Trim(absl::string_view s);
// A value as messages show it: "(empty)", or cut after 40 characters with "...".
std::string Shown(absl::string_view value);

// Walks the lines of a whole-file buffer, tracking 1-based line numbers for messages.
class LineScanner {
 public:
  // `path` must outlive the scanner.
  LineScanner(const std::string& path, absl::string_view text);

  // Reads the next line into *line. Returns false at the end of input. Blank lines are allowed
  // only if nothing but blank lines follows them.
  absl::StatusOr<bool> Next(absl::string_view* line);
  int64_t line() const { return line_; }
  // "<path>:<line>: <what>"
  absl::Status Error(absl::string_view what) const { return ErrorAt(line_, what); }
  absl::Status ErrorAt(int64_t line, absl::string_view what) const;
  // A cheap upper bound on the remaining rows, to reserve vectors.
  size_t RemainingLinesHint() const;

 private:
  bool RestIsBlank() const;

  const std::string& path_;
  absl::string_view text_;
  size_t pos_ = 0;
  int64_t line_ = 0;
};

// The header a file must have: `head`, then `<prefix>0..<prefix>{n-1}` (n >= min_prefix), then
// (if categorical) any number of `c:<name>` columns, then `tail`, then optionally `optional_last`.
// With categorical columns allowed, `min_prefix` prefix columns may be replaced by at least one
// categorical column (a logs.csv with D = 0 needs one c: column).
struct HeaderSpec {
  std::vector<std::string> head;
  std::string prefix;
  int64_t min_prefix = 0;
  bool categorical = false;
  std::vector<std::string> tail;
  std::string optional_last;  // "" = none
  std::string format;         // the expected header, for messages
};

// Where the columns of a checked header are.
struct HeaderLayout {
  int64_t dense = 0;                     // n prefix columns, at head.size()
  size_t categorical_begin = 0;          // first c: column
  std::vector<std::string> categorical;  // field names (without "c:"), in header order
  size_t tail_begin = 0;                 // first tail column
  bool has_optional = false;             // optional_last present (the last column)
};

// One CSV file being read: the scanner plus the parsed header, so value errors can name columns.
class CsvReader {
 public:
  // `path` and `text` must outlive the reader.
  CsvReader(const std::string& path, absl::string_view text) : scanner_(path, text) {}

  // Reads line 1 and checks it against `spec`.
  absl::StatusOr<HeaderLayout> ReadHeader(const HeaderSpec& spec);
  // Reads line 1 as it is (any column names; for foreign files such as the Open Bandit Dataset's,
  // whose columns are looked up by name). Error if the file is empty.
  absl::StatusOr<std::vector<std::string>> ReadHeaderColumns();
  // Next data row split into fields(). False at the end. Checks the column count.
  absl::StatusOr<bool> NextRow();

  const std::vector<absl::string_view>& fields() const { return fields_; }
  const std::string& header(size_t col) const { return header_[col]; }
  size_t RemainingLinesHint() const { return scanner_.RemainingLinesHint(); }
  absl::Status Error(absl::string_view what) const { return scanner_.Error(what); }

  // Parses column `col` of the current row as a finite float/double.
  absl::Status Number(size_t col, float* out) const;
  absl::Status Number(size_t col, double* out) const;
  // Parses column `col` as an integer; `what` ends the message ("<col>=1.5: not an integer
  // item id").
  absl::Status Integer(size_t col, int64_t* out,
                       absl::string_view what = "not an integer item id") const;
  // Parses column `col` as a categorical cell (csv_categorical.h) into *ids (cleared first).
  absl::Status Categorical(size_t col, std::vector<int64_t>* ids) const;

 private:
  absl::Status HeaderMismatch(size_t col, absl::string_view expected,
                              absl::string_view format) const;
  // The c: columns from header_[*col] on; advances *col past them.
  absl::Status ReadCategoricalHeader(size_t* col, HeaderLayout* layout) const;
  template <typename T>
  absl::Status ParseNumber(size_t col, T* out) const;

  LineScanner scanner_;
  std::vector<std::string> header_;
  std::vector<absl::string_view> fields_;
  int64_t rows_ = 0;
};

// ---- writing ----

// Shortest text that reads back to the identical value.
template <typename T>
void AppendNumber(std::string* out, T v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, res.ptr);
}
// "<prefix>0,...,<prefix>{n-1}"
void AppendHeader(std::string* out, absl::string_view prefix, int64_t n);
// InvalidArgument "cannot write <path>: <what>".
absl::Status WriteError(const std::string& path, absl::string_view what);
// WriteError naming the first non-finite value.
absl::Status CheckFinite(const std::string& path, absl::string_view name,
                         const std::vector<float>& v);
absl::Status CheckFinite(const std::string& path, absl::string_view name,
                         const std::vector<double>& v);

}  // namespace optower::csv_internal

#endif  // OPTOWER_CORE_BASE_CSV_READER_H_
