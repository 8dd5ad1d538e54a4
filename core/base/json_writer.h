// A small streaming JSON writer for summary/manifest files (no parsing). Output is deterministic
// (fields in call order) and pretty-printed by default so summaries diff well.
//
//   JsonWriter w;
//   w.BeginObject().Field("optimal_value", 0.81).Field("reward", "logistic");
//   w.Key("sizes").BeginArray().Value(1).Value(2).EndArray();
//   w.EndObject();
//   ASSIGN_OR_RETURN(std::string text, w.Finish());
//
// Numbers: integers exactly; doubles in the shortest form that parses back to the same double
// (std::to_chars); NaN and +-inf have no JSON form and are written as null. Strings are escaped per
// RFC 8259 (quote, backslash, control characters); other bytes, including UTF-8, pass through as
// is. Misuse (a value where a key is expected, unbalanced End*, two top-level values) is a
// programming error: it is recorded, later calls are ignored, and Finish() returns
// FailedPrecondition naming it. Thread safety: none (one writer per thread).
#ifndef OPTOWER_CORE_BASE_JSON_WRITER_H_
#define OPTOWER_CORE_BASE_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"

namespace optower {

class JsonWriter {
 public:
  struct Options {
    int indent = 2;  // spaces per level; 0 writes everything on one line
  };

  JsonWriter() : JsonWriter(Options{}) {}
  explicit JsonWriter(const Options& options) : options_(options) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // Only inside an object, before each value.
  JsonWriter& Key(std::string_view key);

  JsonWriter& String(std::string_view s);
  JsonWriter& Double(double v);
  JsonWriter& Int(int64_t v);
  JsonWriter& Bool(bool v);
  JsonWriter& Null();

  // Dispatches on the type, so that Value(3) is an integer and Value(true) a boolean (overloads
  // alone would make an int literal ambiguous).
  template <typename T>
  JsonWriter& Value(const T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      return Bool(v);
    } else if constexpr (std::is_integral_v<T>) {
      return Int(static_cast<int64_t>(v));
    } else if constexpr (std::is_floating_point_v<T>) {
      return Double(static_cast<double>(v));
    } else {
      return String(std::string_view(v));
    }
  }
  // Key(key).Value(v).
  template <typename T>
  JsonWriter& Field(std::string_view key, const T& v) {
    return Key(key).Value(v);
  }

  // The document, with a trailing newline. FailedPrecondition if it is incomplete or was misused.
  absl::StatusOr<std::string> Finish() const;

 private:
  struct Frame {
    bool object;
    int64_t count = 0;
    bool have_key = false;
  };
  bool BeforeValue(const char* what);  // false (and error recorded) when a value is not allowed
  JsonWriter& Close(bool object);
  void Newline(size_t depth);
  void Fail(std::string message);

  Options options_;
  std::string out_;
  std::vector<Frame> stack_;
  bool done_ = false;  // the top-level value is complete
  std::string error_;
};

// `s` as a JSON string literal, quotes included.
std::string JsonQuote(std::string_view s);

}  // namespace optower

#endif  // OPTOWER_CORE_BASE_JSON_WRITER_H_
