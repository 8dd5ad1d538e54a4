#include "core/base/csv_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <system_error>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/csv_categorical.h"
#include "core/base/status_macros.h"

namespace optower::csv_internal {
namespace {

constexpr size_t kMaxShownValue = 40;  // keeps error messages to one readable line

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

}  // namespace

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

// ---- LineScanner ----

LineScanner::LineScanner(const std::string& path, absl::string_view text)
    : path_(path), text_(text) {
  if (text_.size() >= 3 && std::memcmp(text_.data(), "\xEF\xBB\xBF", 3) == 0)
    text_.remove_prefix(3);  // UTF-8 BOM (spreadsheet exports)
}

absl::StatusOr<bool> LineScanner::Next(absl::string_view* line) {
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

absl::Status LineScanner::ErrorAt(int64_t line, absl::string_view what) const {
  return absl::InvalidArgumentError(absl::StrCat(path_, ":", line, ": ", what));
}

size_t LineScanner::RemainingLinesHint() const {
  if (pos_ >= text_.size()) return 0;
  return static_cast<size_t>(std::count(text_.begin() + pos_, text_.end(), '\n')) + 1;
}

bool LineScanner::RestIsBlank() const {
  for (size_t i = pos_; i < text_.size(); ++i) {
    const char c = text_[i];
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  }
  return true;
}

// ---- CsvReader ----

absl::Status CsvReader::HeaderMismatch(size_t col, absl::string_view expected,
                                       absl::string_view format) const {
  if (col >= header_.size())
    return scanner_.Error(absl::StrFormat(
        "header ends after column %d, '%s' is missing; expected the header %s", header_.size(),
        expected, format));
  return scanner_.Error(
      absl::StrFormat("header column %d is '%s' where '%s' was expected; expected the header %s",
                      col + 1, Shown(header_[col]), expected, format));
}

absl::Status CsvReader::ReadCategoricalHeader(size_t* col, HeaderLayout* layout) const {
  layout->categorical_begin = *col;
  for (; *col < header_.size() && IsCategoricalColumn(header_[*col]); ++*col) {
    absl::StatusOr<std::string> name = CategoricalFieldOfColumn(header_[*col]);
    if (!name.ok())
      return scanner_.Error(absl::StrCat("header column ", *col + 1, ": ", name.status().message()));
    if (std::find(layout->categorical.begin(), layout->categorical.end(), *name) !=
        layout->categorical.end())
      return scanner_.Error(absl::StrCat("header column ", *col + 1, " '", header_[*col],
                                         "' repeats an earlier column"));
    layout->categorical.push_back(*std::move(name));
  }
  return absl::OkStatus();
}

absl::StatusOr<HeaderLayout> CsvReader::ReadHeader(const HeaderSpec& spec) {
  absl::string_view line;
  ASSIGN_OR_RETURN(bool has_line, scanner_.Next(&line));
  if (!has_line || scanner_.line() != 1)
    return scanner_.ErrorAt(1, absl::StrCat("empty file; expected the header ", spec.format));
  SplitFields(line, &fields_);
  header_.clear();
  for (absl::string_view f : fields_) header_.emplace_back(f);
  double first_value;
  auto [ptr, ec] =
      std::from_chars(fields_[0].data(), fields_[0].data() + fields_[0].size(), first_value);
  if (ec == std::errc() && !fields_[0].empty())
    return scanner_.Error(absl::StrCat("missing header: line 1 starts with the value ",
                                       Shown(fields_[0]), "; expected the header ", spec.format));
  for (size_t k = 0; k < spec.head.size(); ++k)
    if (k >= header_.size() || header_[k] != spec.head[k])
      return HeaderMismatch(k, spec.head[k], spec.format);
  HeaderLayout layout;
  size_t col = spec.head.size();
  while (col < header_.size() && header_[col] == absl::StrCat(spec.prefix, layout.dense)) {
    ++layout.dense;
    ++col;
  }
  if (spec.categorical) RETURN_IF_ERROR(ReadCategoricalHeader(&col, &layout));
  if (layout.dense < spec.min_prefix && layout.categorical.empty())
    return HeaderMismatch(col, absl::StrCat(spec.prefix, layout.dense), spec.format);
  layout.tail_begin = col;
  for (size_t k = 0; k < spec.tail.size(); ++k, ++col) {
    if (col < header_.size() && header_[col] == spec.tail[k]) continue;
    if (k > 0) return HeaderMismatch(col, spec.tail[k], spec.format);
    const std::string before = layout.categorical.empty()
                                   ? absl::StrCat(spec.prefix, layout.dense)
                                   : std::string(kCategoricalColumnPrefix) + "<name>";
    return HeaderMismatch(col, absl::StrCat(before, "' or '", spec.tail[0]), spec.format);
  }
  if (!spec.optional_last.empty() && col < header_.size() && header_[col] == spec.optional_last) {
    layout.has_optional = true;
    ++col;
  }
  if (header_.size() != col)
    return scanner_.Error(
        absl::StrFormat("header has an extra column %d '%s'; expected the header %s", col + 1,
                        Shown(header_[col]), spec.format));
  return layout;
}

absl::StatusOr<std::vector<std::string>> CsvReader::ReadHeaderColumns() {
  absl::string_view line;
  ASSIGN_OR_RETURN(bool has_line, scanner_.Next(&line));
  if (!has_line || scanner_.line() != 1) return scanner_.ErrorAt(1, "empty file; expected a header");
  SplitFields(line, &fields_);
  header_.clear();
  for (absl::string_view f : fields_) header_.emplace_back(f);
  return header_;
}

absl::StatusOr<bool> CsvReader::NextRow() {
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

template <typename T>
absl::Status CsvReader::ParseNumber(size_t col, T* out) const {
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

absl::Status CsvReader::Number(size_t col, float* out) const { return ParseNumber(col, out); }
absl::Status CsvReader::Number(size_t col, double* out) const { return ParseNumber(col, out); }

absl::Status CsvReader::Integer(size_t col, int64_t* out, absl::string_view what) const {
  absl::string_view s = fields_[col];
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size())
    return Error(absl::StrCat(header_[col], "=", Shown(s), ": ", what));
  return absl::OkStatus();
}

absl::Status CsvReader::Categorical(size_t col, std::vector<int64_t>* ids) const {
  absl::Status s = ParseCategoricalCell(header_[col], fields_[col], ids);
  if (!s.ok()) return Error(s.message());
  return absl::OkStatus();
}

// ---- writing ----

void AppendHeader(std::string* out, absl::string_view prefix, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    if (j > 0) out->push_back(',');
    absl::StrAppend(out, prefix, j);
  }
}

absl::Status WriteError(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("cannot write ", path, ": ", what));
}

namespace {
template <typename T>
absl::Status CheckFiniteImpl(const std::string& path, absl::string_view name,
                             const std::vector<T>& v) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      return WriteError(path, absl::StrCat(name, "[", i, "]=", v[i], ": must be finite"));
  return absl::OkStatus();
}
}  // namespace

absl::Status CheckFinite(const std::string& path, absl::string_view name,
                         const std::vector<float>& v) {
  return CheckFiniteImpl(path, name, v);
}
absl::Status CheckFinite(const std::string& path, absl::string_view name,
                         const std::vector<double>& v) {
  return CheckFiniteImpl(path, name, v);
}

}  // namespace optower::csv_internal
