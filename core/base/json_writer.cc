#include "core/base/json_writer.h"

#include <charconv>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace optower {

std::string JsonQuote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

void JsonWriter::Fail(std::string message) {
  if (error_.empty()) error_ = std::move(message);
}

void JsonWriter::Newline(size_t depth) {
  if (options_.indent <= 0) return;
  out_.push_back('\n');
  out_.append(depth * static_cast<size_t>(options_.indent), ' ');
}

bool JsonWriter::BeforeValue(const char* what) {
  if (!error_.empty()) return false;
  if (stack_.empty()) {
    if (done_) {
      Fail(absl::StrCat(what, " after the complete top-level value"));
      return false;
    }
    return true;
  }
  Frame& top = stack_.back();
  if (top.object) {
    if (!top.have_key) {
      Fail(absl::StrCat(what, " inside an object without a Key()"));
      return false;
    }
    top.have_key = false;
  } else {
    if (top.count > 0) out_.push_back(',');
    Newline(stack_.size());
  }
  ++top.count;
  return true;
}

JsonWriter& JsonWriter::Key(std::string_view key) {
  if (!error_.empty()) return *this;
  const absl::string_view k(key.data(), key.size());
  if (stack_.empty() || !stack_.back().object) {
    Fail(absl::StrCat("Key(\"", k, "\") outside an object"));
    return *this;
  }
  Frame& top = stack_.back();
  if (top.have_key) {
    Fail(absl::StrCat("Key(\"", k, "\") right after another key"));
    return *this;
  }
  if (top.count > 0) out_.push_back(',');
  Newline(stack_.size());
  out_ += JsonQuote(key);
  out_ += options_.indent > 0 ? ": " : ":";
  top.have_key = true;
  return *this;
}

JsonWriter& JsonWriter::BeginObject() {
  if (!BeforeValue("BeginObject()")) return *this;
  out_.push_back('{');
  stack_.push_back({/*object=*/true});
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  if (!BeforeValue("BeginArray()")) return *this;
  out_.push_back('[');
  stack_.push_back({/*object=*/false});
  return *this;
}

JsonWriter& JsonWriter::Close(bool object) {
  if (!error_.empty()) return *this;
  const char* name = object ? "EndObject()" : "EndArray()";
  if (stack_.empty() || stack_.back().object != object) {
    Fail(absl::StrCat(name, " without a matching Begin"));
    return *this;
  }
  if (stack_.back().have_key) {
    Fail(absl::StrCat(name, " right after a key with no value"));
    return *this;
  }
  const bool empty = stack_.back().count == 0;
  stack_.pop_back();
  if (!empty) Newline(stack_.size());
  out_.push_back(object ? '}' : ']');
  if (stack_.empty()) done_ = true;
  return *this;
}

JsonWriter& JsonWriter::EndObject() { return Close(/*object=*/true); }
JsonWriter& JsonWriter::EndArray() { return Close(/*object=*/false); }

JsonWriter& JsonWriter::String(std::string_view s) {
  if (!BeforeValue("String()")) return *this;
  out_ += JsonQuote(s);
  if (stack_.empty()) done_ = true;
  return *this;
}

JsonWriter& JsonWriter::Double(double v) {
  if (!BeforeValue("Double()")) return *this;
  if (!std::isfinite(v)) {
    out_ += "null";
  } else {
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), v);
    out_.append(buf, res.ptr);
  }
  if (stack_.empty()) done_ = true;
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t v) {
  if (!BeforeValue("Int()")) return *this;
  absl::StrAppend(&out_, v);
  if (stack_.empty()) done_ = true;
  return *this;
}

JsonWriter& JsonWriter::Bool(bool v) {
  if (!BeforeValue("Bool()")) return *this;
  out_ += v ? "true" : "false";
  if (stack_.empty()) done_ = true;
  return *this;
}

JsonWriter& JsonWriter::Null() {
  if (!BeforeValue("Null()")) return *this;
  out_ += "null";
  if (stack_.empty()) done_ = true;
  return *this;
}

absl::StatusOr<std::string> JsonWriter::Finish() const {
  if (!error_.empty()) return absl::FailedPreconditionError(absl::StrCat("JsonWriter: ", error_));
  if (!done_)
    return absl::FailedPreconditionError(
        absl::StrCat("JsonWriter: document incomplete (", stack_.size(), " open containers)"));
  return absl::StrCat(out_, "\n");
}

}  // namespace optower
