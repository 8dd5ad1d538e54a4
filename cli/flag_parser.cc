#include "cli/flag_parser.h"

#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace optower::cli {

FlagParser::FlagParser(std::string usage, std::string description)
    : usage_(std::move(usage)), description_(std::move(description)) {}

void FlagParser::AddString(const std::string& name, std::string* dst, const std::string& help) {
  flags_.push_back({name, Kind::kString, dst, help, dst->empty() ? "" : *dst});
}
void FlagParser::AddInt(const std::string& name, int64_t* dst, const std::string& help) {
  flags_.push_back({name, Kind::kInt, dst, help, absl::StrCat(*dst)});
}
void FlagParser::AddDouble(const std::string& name, double* dst, const std::string& help) {
  flags_.push_back({name, Kind::kDouble, dst, help, absl::StrCat(*dst)});
}
void FlagParser::AddBool(const std::string& name, bool* dst, const std::string& help) {
  flags_.push_back({name, Kind::kBool, dst, help, *dst ? "true" : "false"});
}
void FlagParser::Require(const std::string& name) {
  if (Flag* f = Find(name)) f->required = true;
}

FlagParser::Flag* FlagParser::Find(const std::string& name) {
  for (Flag& f : flags_)
    if (f.name == name) return &f;
  return nullptr;
}
const FlagParser::Flag* FlagParser::Find(const std::string& name) const {
  for (const Flag& f : flags_)
    if (f.name == name) return &f;
  return nullptr;
}

bool FlagParser::was_set(const std::string& name) const {
  const Flag* f = Find(name);
  return f != nullptr && f->set;
}

absl::Status FlagParser::Assign(Flag& flag, const std::string& value) {
  switch (flag.kind) {
    case Kind::kString:
      *static_cast<std::string*>(flag.dst) = value;
      break;
    case Kind::kInt: {
      int64_t v;
      if (!absl::SimpleAtoi(value, &v))
        return absl::InvalidArgumentError(
            absl::StrFormat("--%s=%s: expected an integer", flag.name, value));
      *static_cast<int64_t*>(flag.dst) = v;
      break;
    }
    case Kind::kDouble: {
      double v;
      if (!absl::SimpleAtod(value, &v) || !std::isfinite(v))
        return absl::InvalidArgumentError(
            absl::StrFormat("--%s=%s: expected a finite number", flag.name, value));
      *static_cast<double*>(flag.dst) = v;
      break;
    }
    case Kind::kBool: {
      bool v;
      if (!absl::SimpleAtob(value, &v))
        return absl::InvalidArgumentError(
            absl::StrFormat("--%s=%s: expected true or false", flag.name, value));
      *static_cast<bool*>(flag.dst) = v;
      break;
    }
  }
  flag.set = true;
  return absl::OkStatus();
}

absl::Status FlagParser::Parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      help_requested_ = true;
      return absl::OkStatus();
    }
  }
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    Flag* flag = Find(name);
    if (flag == nullptr)
      return absl::InvalidArgumentError(absl::StrFormat("unknown flag --%s (see --help)", name));
    if (!has_value) {
      if (flag->kind == Kind::kBool) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrFormat("--%s needs a value", name));
      }
    }
    if (absl::Status s = Assign(*flag, value); !s.ok()) return s;
  }
  for (const Flag& f : flags_) {
    if (f.required && !f.set)
      return absl::InvalidArgumentError(absl::StrFormat("missing required flag --%s", f.name));
  }
  return absl::OkStatus();
}

std::string FlagParser::Help() const {
  std::string out = absl::StrCat("usage: ", usage_, "\n\n", description_, "\n\nflags:\n");
  for (const Flag& f : flags_) {
    std::string lhs = absl::StrCat("  --", f.name);
    if (f.kind != Kind::kBool) absl::StrAppend(&lhs, " VALUE");
    std::string rhs = f.help;
    if (f.required) {
      absl::StrAppend(&rhs, " (required)");
    } else if (!f.default_text.empty()) {
      absl::StrAppend(&rhs, " (default: ", f.default_text, ")");
    }
    absl::StrAppend(&out, absl::StrFormat("%-28s %s\n", lhs, rhs));
  }
  return out;
}

}  // namespace optower::cli
