#include "core/base/csv_io.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <system_error>
#include <type_traits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "core/base/atomic_file.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {

constexpr size_t kMaxShownValue = 40;  // keeps error messages to one readable line

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open(", path, ")"));
  std::string text;
  struct stat st;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) text.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return absl::ErrnoToStatus(err, absl::StrCat("read(", path, ")"));
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

absl::string_view Trim(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string Shown(absl::string_view value) {
  if (value.empty()) return "(empty)";
  if (value.size() <= kMaxShownValue) return std::string(value);
  return absl::StrCat(value.substr(0, kMaxShownValue), "...");
}

// Splits `line` on commas into `fields` (trimmed views into `line`).
void SplitFields(absl::string_view line, std::vector<absl::string_view>* fields) {
  fields->clear();
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    if (comma == absl::string_view::npos) {
      fields->push_back(Trim(line.substr(start)));
      return;
    }
    fields->push_back(Trim(line.substr(start, comma - start)));
    start = comma + 1;
  }
}

// Walks the lines of a whole-file buffer, tracking 1-based line numbers for messages.
class LineScanner {
 public:
  LineScanner(const std::string& path, absl::string_view text) : path_(path), text_(text) {
    if (text_.size() >= 3 && std::memcmp(text_.data(), "\xEF\xBB\xBF", 3) == 0)
      text_.remove_prefix(3);  // UTF-8 BOM (spreadsheet exports)
  }

  // Reads the next line into *line. Returns false at the end of input. Blank lines are allowed only
  // if nothing but blank lines follows them.
  absl::StatusOr<bool> Next(absl::string_view* line) {
    while (pos_ < text_.size()) {
      size_t end = text_.find('\n', pos_);
      if (end == absl::string_view::npos) end = text_.size();
      absl::string_view raw = text_.substr(pos_, end - pos_);
      pos_ = end + 1;
      ++line_;
      if (!Trim(raw).empty()) {
        *line = raw;
        return true;
      }
      if (!RestIsBlank())
        return Error("blank line (blank lines are only allowed at the end of the file)");
      pos_ = text_.size();
    }
    return false;
  }

  int64_t line() const { return line_; }
  // "<path>:<line>: <what>"
  absl::Status Error(absl::string_view what) const { return ErrorAt(line_, what); }
  absl::Status ErrorAt(int64_t line, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ":", line, ": ", what));
  }
  // A cheap upper bound on the remaining rows, to reserve vectors.
  size_t RemainingLinesHint() const {
    if (pos_ >= text_.size()) return 0;
    return static_cast<size_t>(std::count(text_.begin() + pos_, text_.end(), '\n')) + 1;
  }

 private:
  bool RestIsBlank() const {
    for (size_t i = pos_; i < text_.size(); ++i) {
      const char c = text_[i];
      if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
    }
    return true;
  }

  const std::string& path_;
  absl::string_view text_;
  size_t pos_ = 0;
  int64_t line_ = 0;
};

// One CSV file being read: the scanner plus the parsed header, so value errors can name columns.
class CsvReader {
 public:
  CsvReader(const std::string& path, absl::string_view text) : scanner_(path, text) {}

  // Reads line 1 and checks that it is exactly `head`, then `<prefix>0..<prefix>{n-1}`, then
  // `tail`, with n >= min_prefix. Returns n. `format` describes the expected header for messages.
  absl::StatusOr<int64_t> ReadHeader(const std::vector<std::string>& head, absl::string_view prefix,
                                     int64_t min_prefix, const std::vector<std::string>& tail,
                                     absl::string_view format) {
    absl::string_view line;
    ASSIGN_OR_RETURN(bool has_line, scanner_.Next(&line));
    if (!has_line || scanner_.line() != 1)
      return scanner_.ErrorAt(1, absl::StrCat("empty file; expected the header ", format));
    SplitFields(line, &fields_);
    header_.clear();
    for (absl::string_view f : fields_) header_.emplace_back(f);
    double first_value;
    auto [ptr, ec] =
        std::from_chars(fields_[0].data(), fields_[0].data() + fields_[0].size(), first_value);
    if (ec == std::errc() && !fields_[0].empty())
      return scanner_.Error(absl::StrCat("missing header: line 1 starts with the value ",
                                         Shown(fields_[0]), "; expected the header ", format));
    auto mismatch = [&](size_t col, absl::string_view expected) {
      if (col >= header_.size())
        return scanner_.Error(
            absl::StrFormat("header ends after column %d, '%s' is missing; "
                            "expected the header %s",
                            header_.size(), expected, format));
      return scanner_.Error(
          absl::StrFormat("header column %d is '%s' where '%s' was expected; "
                          "expected the header %s",
                          col + 1, Shown(header_[col]), expected, format));
    };
    for (size_t k = 0; k < head.size(); ++k)
      if (k >= header_.size() || header_[k] != head[k]) return mismatch(k, head[k]);
    int64_t n = 0;
    while (head.size() + n < header_.size() && header_[head.size() + n] == absl::StrCat(prefix, n))
      ++n;
    if (n < min_prefix) return mismatch(head.size() + n, absl::StrCat(prefix, n));
    const size_t tail_start = head.size() + static_cast<size_t>(n);
    for (size_t k = 0; k < tail.size(); ++k) {
      const size_t col = tail_start + k;
      if (col >= header_.size() || header_[col] != tail[k])
        return mismatch(col, k == 0 ? absl::StrCat(prefix, n, "' or '", tail[0]) : tail[k]);
    }
    const size_t expected_size = tail_start + tail.size();
    if (header_.size() != expected_size)
      return scanner_.Error(
          absl::StrFormat("header has an extra column %d '%s'; expected the header %s",
                          expected_size + 1, Shown(header_[expected_size]), format));
    return n;
  }

  // Next data row split into fields(). False at the end. Checks the column count.
  absl::StatusOr<bool> NextRow() {
    absl::string_view line;
    ASSIGN_OR_RETURN(bool has_line, scanner_.Next(&line));
    if (!has_line) {
      if (rows_ == 0) return scanner_.ErrorAt(2, "no data rows after the header");
      return false;
    }
    SplitFields(line, &fields_);
    if (fields_.size() != header_.size())
      return scanner_.Error(absl::StrFormat("expected %d columns as in the header, found %d",
                                            header_.size(), fields_.size()));
    ++rows_;
    return true;
  }

  const std::vector<absl::string_view>& fields() const { return fields_; }
  size_t RemainingLinesHint() const { return scanner_.RemainingLinesHint(); }
  absl::Status Error(absl::string_view what) const { return scanner_.Error(what); }

  // Parses column `col` of the current row as a finite float/double.
  template <typename T>
  absl::Status Number(size_t col, T* out) const {
    absl::string_view s = fields_[col];
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    if (s.empty() || (ec != std::errc() && ec != std::errc::result_out_of_range) ||
        ptr != s.data() + s.size())
      return Error(absl::StrCat(header_[col], "=", Shown(s), ": not a number"));
    if (ec == std::errc::result_out_of_range) {
      // Rare path. Overflow is an error; underflow (1e-50 as a float) rounds toward zero as strtod
      // does, since such values come from legitimate double-precision exports.
      const std::string copy(s);
      const long double wide = std::strtold(copy.c_str(), nullptr);
      if (!(std::fabs(wide) <= static_cast<long double>(std::numeric_limits<T>::max())))
        return Error(absl::StrCat(header_[col], "=", Shown(s), ": outside the ",
                                  std::is_same_v<T, float> ? "float" : "double", " range"));
      *out = static_cast<T>(wide);
    }
    if (!std::isfinite(*out))
      return Error(absl::StrCat(header_[col], "=", Shown(s), ": must be finite"));
    return absl::OkStatus();
  }

  absl::Status Integer(size_t col, int64_t* out) const {
    absl::string_view s = fields_[col];
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size())
      return Error(absl::StrCat(header_[col], "=", Shown(s), ": not an integer item id"));
    return absl::OkStatus();
  }

 private:
  LineScanner scanner_;
  std::vector<std::string> header_;
  std::vector<absl::string_view> fields_;
  int64_t rows_ = 0;
};

// ---- writing ----

template <typename T>
void AppendNumber(std::string* out, T v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, res.ptr);
}

void AppendHeader(std::string* out, absl::string_view prefix, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    if (j > 0) out->push_back(',');
    absl::StrAppend(out, prefix, j);
  }
}

absl::Status WriteError(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("cannot write ", path, ": ", what));
}

template <typename T>
absl::Status CheckFinite(const std::string& path, absl::string_view name, const std::vector<T>& v) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      return WriteError(path, absl::StrCat(name, "[", i, "]=", v[i], ": must be finite"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ItemCatalog> ReadItemsCsv(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  CsvReader csv(path, text);
  ASSIGN_OR_RETURN(const int64_t dim,
                   csv.ReadHeader({"item"}, "f", /*min_prefix=*/0, {}, "item,f0,...,f{E-1}"));
  ItemCatalog items;
  items.dim_features = dim;
  const size_t hint = csv.RemainingLinesHint();
  items.ids.reserve(hint);
  items.features.reserve(hint * static_cast<size_t>(dim));
  absl::flat_hash_map<int64_t, int64_t> first_line;  // id -> line it was defined on
  first_line.reserve(hint);
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
    for (int64_t j = 0; j < dim; ++j) {
      float v;
      RETURN_IF_ERROR(csv.Number(static_cast<size_t>(j) + 1, &v));
      items.features.push_back(v);
    }
  }
  return items;
}

absl::StatusOr<BanditLog> ReadLogsCsv(const std::string& path, const ItemCatalog& items,
                                      std::string_view items_name_std) {
  const absl::string_view items_name(items_name_std.data(), items_name_std.size());
  absl::flat_hash_map<int64_t, int64_t> row_of;
  row_of.reserve(items.ids.size());
  for (int64_t r = 0; r < items.size(); ++r)
    if (!row_of.emplace(items.ids[r], r).second)
      return absl::InvalidArgumentError(
          absl::StrCat("item=", items.ids[r], ": duplicate item id in ", items_name));

  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  CsvReader csv(path, text);
  ASSIGN_OR_RETURN(const int64_t dim,
                   csv.ReadHeader({}, "x", /*min_prefix=*/1, {"action", "reward", "pscore"},
                                  "x0,...,x{D-1},action,reward,pscore"));
  const size_t action_col = static_cast<size_t>(dim);
  BanditLog log;
  log.dim_context = dim;
  const size_t hint = csv.RemainingLinesHint();
  log.contexts.reserve(hint * static_cast<size_t>(dim));
  log.actions.reserve(hint);
  log.rewards.reserve(hint);
  log.pscores.reserve(hint);
  while (true) {
    ASSIGN_OR_RETURN(const bool has_row, csv.NextRow());
    if (!has_row) break;
    for (size_t j = 0; j < action_col; ++j) {
      float v;
      RETURN_IF_ERROR(csv.Number(j, &v));
      log.contexts.push_back(v);
    }
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
    log.actions.push_back(it->second);
    log.rewards.push_back(reward);
    log.pscores.push_back(pscore);
  }
  return log;
}

absl::StatusOr<std::vector<float>> ReadContextsCsv(const std::string& path, int64_t* dim) {
  if (dim == nullptr) return absl::InvalidArgumentError("ReadContextsCsv: dim must not be null");
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  CsvReader csv(path, text);
  ASSIGN_OR_RETURN(const int64_t d, csv.ReadHeader({}, "x", /*min_prefix=*/1, {}, "x0,...,x{D-1}"));
  std::vector<float> contexts;
  contexts.reserve(csv.RemainingLinesHint() * static_cast<size_t>(d));
  while (true) {
    ASSIGN_OR_RETURN(const bool has_row, csv.NextRow());
    if (!has_row) break;
    for (size_t j = 0; j < static_cast<size_t>(d); ++j) {
      float v;
      RETURN_IF_ERROR(csv.Number(j, &v));
      contexts.push_back(v);
    }
  }
  *dim = d;
  return contexts;
}

absl::StatusOr<DenseMatrix> ReadMatrixCsv(const std::string& path,
                                          const std::string& column_prefix) {
  if (column_prefix.empty())
    return absl::InvalidArgumentError("column_prefix is empty: a matrix header needs a prefix");
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  CsvReader csv(path, text);
  ASSIGN_OR_RETURN(const int64_t cols,
                   csv.ReadHeader({}, column_prefix, /*min_prefix=*/1, {},
                                  absl::StrCat(column_prefix, "0,...,", column_prefix, "{N-1}")));
  DenseMatrix m;
  m.cols = cols;
  m.data.reserve(csv.RemainingLinesHint() * static_cast<size_t>(cols));
  while (true) {
    ASSIGN_OR_RETURN(const bool has_row, csv.NextRow());
    if (!has_row) break;
    for (size_t j = 0; j < static_cast<size_t>(cols); ++j) {
      double v;
      RETURN_IF_ERROR(csv.Number(j, &v));
      m.data.push_back(v);
    }
    ++m.rows;
  }
  return m;
}

absl::Status WriteLogsCsv(const std::string& path, const BanditLog& log, const ItemCatalog& items) {
  const int64_t n = log.size();
  const int64_t d = log.dim_context;
  if (d < 1) return WriteError(path, absl::StrCat("dim_context=", d, ": must be >= 1"));
  if (n == 0) return WriteError(path, "the log has no rows");
  if (static_cast<int64_t>(log.contexts.size()) != n * d)
    return WriteError(path, absl::StrFormat("contexts has %d values, expected %d rows x %d dims",
                                            log.contexts.size(), n, d));
  if (static_cast<int64_t>(log.rewards.size()) != n ||
      static_cast<int64_t>(log.pscores.size()) != n)
    return WriteError(path, absl::StrFormat("%d actions but %d rewards and %d pscores", n,
                                            log.rewards.size(), log.pscores.size()));
  for (int64_t i = 0; i < n; ++i) {
    if (log.actions[i] < 0 || log.actions[i] >= items.size())
      return WriteError(path, absl::StrFormat("actions[%d]=%d: not a row of the %d-item catalog", i,
                                              log.actions[i], items.size()));
    if (!(log.pscores[i] > 0.0f && log.pscores[i] <= 1.0f))
      return WriteError(path,
                        absl::StrCat("pscores[", i, "]=", log.pscores[i], ": must be in (0, 1]"));
  }
  RETURN_IF_ERROR(CheckFinite(path, "contexts", log.contexts));
  RETURN_IF_ERROR(CheckFinite(path, "rewards", log.rewards));

  std::string out;
  out.reserve(static_cast<size_t>(n) * static_cast<size_t>(d + 3) * 12 + 64);
  AppendHeader(&out, "x", d);
  out += ",action,reward,pscore\n";
  for (int64_t i = 0; i < n; ++i) {
    const float* x = log.context(i);
    for (int64_t j = 0; j < d; ++j) {
      AppendNumber(&out, x[j]);
      out.push_back(',');
    }
    AppendNumber(&out, items.ids[log.actions[i]]);
    out.push_back(',');
    AppendNumber(&out, log.rewards[i]);
    out.push_back(',');
    AppendNumber(&out, log.pscores[i]);
    out.push_back('\n');
  }
  return WriteFileAtomically(path, out);
}

absl::Status WriteItemsCsv(const std::string& path, const ItemCatalog& items) {
  const int64_t n = items.size();
  const int64_t e = items.dim_features;
  if (e < 0) return WriteError(path, absl::StrCat("dim_features=", e, ": must be >= 0"));
  if (n == 0) return WriteError(path, "the catalog has no items");
  if (static_cast<int64_t>(items.features.size()) != n * e)
    return WriteError(path, absl::StrFormat("features has %d values, expected %d items x %d dims",
                                            items.features.size(), n, e));
  absl::flat_hash_map<int64_t, int64_t> seen;
  seen.reserve(items.ids.size());
  for (int64_t r = 0; r < n; ++r)
    if (!seen.emplace(items.ids[r], r).second)
      return WriteError(path, absl::StrCat("item=", items.ids[r], ": duplicate item id"));
  RETURN_IF_ERROR(CheckFinite(path, "features", items.features));

  std::string out;
  out.reserve(static_cast<size_t>(n) * static_cast<size_t>(e + 1) * 12 + 64);
  out += "item";
  for (int64_t j = 0; j < e; ++j) absl::StrAppend(&out, ",f", j);
  out.push_back('\n');
  for (int64_t r = 0; r < n; ++r) {
    AppendNumber(&out, items.ids[r]);
    const float* f = items.feature(r);
    for (int64_t j = 0; j < e; ++j) {
      out.push_back(',');
      AppendNumber(&out, f[j]);
    }
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
  RETURN_IF_ERROR(CheckFinite(path, "contexts", contexts));
  std::string out;
  out.reserve(contexts.size() * 12 + 64);
  AppendHeader(&out, "x", dim);
  out.push_back('\n');
  for (size_t i = 0; i < contexts.size(); ++i) {
    AppendNumber(&out, contexts[i]);
    out.push_back((i + 1) % static_cast<size_t>(dim) == 0 ? '\n' : ',');
  }
  return WriteFileAtomically(path, out);
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
