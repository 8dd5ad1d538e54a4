// A small per-subcommand flag parser for the `optower` CLI. absl::flags is process-global, which does
// not fit a tool whose subcommands each take their own flags and print their own --help.
//
// Accepted forms: `--name value`, `--name=value`, `--flag` (booleans; `--flag=false` too), and
// positional arguments (collected in order). Unknown flags and bad values are errors naming the flag.
#ifndef OPTOWER_CLI_FLAG_PARSER_H_
#define OPTOWER_CLI_FLAG_PARSER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace optower::cli {

class FlagParser {
 public:
  // `usage` is the one-line synopsis shown first by --help, e.g. "optower synth [flags]".
  FlagParser(std::string usage, std::string description);

  // Registers a flag. `dst` keeps its current value as the default and must outlive Parse().
  void AddString(const std::string& name, std::string* dst, const std::string& help);
  void AddInt(const std::string& name, int64_t* dst, const std::string& help);
  void AddDouble(const std::string& name, double* dst, const std::string& help);
  void AddBool(const std::string& name, bool* dst, const std::string& help);
  // Marks a registered flag as required (Parse fails when it is absent).
  void Require(const std::string& name);

  // Parses argv[first..argc). Returns InvalidArgument with a one-line message on error.
  // When --help/-h is present, returns OK and help_requested() is true (nothing else is checked).
  absl::Status Parse(int argc, char** argv, int first = 1);

  bool help_requested() const { return help_requested_; }
  bool was_set(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }
  std::string Help() const;

 private:
  enum class Kind { kString, kInt, kDouble, kBool };
  struct Flag {
    std::string name;
    Kind kind;
    void* dst;
    std::string help;
    std::string default_text;
    bool required = false;
    bool set = false;
  };
  Flag* Find(const std::string& name);
  const Flag* Find(const std::string& name) const;
  absl::Status Assign(Flag& flag, const std::string& value);

  std::string usage_;
  std::string description_;
  std::vector<Flag> flags_;
  std::vector<std::string> positional_;
  bool help_requested_ = false;
};

}  // namespace optower::cli

#endif  // OPTOWER_CLI_FLAG_PARSER_H_
