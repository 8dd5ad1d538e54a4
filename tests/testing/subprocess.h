// Test helper: run a program, capture its exit code, stdout and stderr. Used by the CLI tests,
// which exercise the real `optower` binary end to end.
//
//   absl::StatusOr<SubprocessResult> r = optower::testutil::RunOptower({"synth", "--help"});
//   ASSERT_TRUE(r.ok()) << r.status();
//   EXPECT_EQ(r->exit_code, 0) << r->err;
//
// The namespace is `testutil`, not `testing`: inside `namespace optower`, a nested `testing` would
// hide gtest's `::testing` for every test written there.
#ifndef OPTOWER_TESTS_TESTING_SUBPROCESS_H_
#define OPTOWER_TESTS_TESTING_SUBPROCESS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace optower::testutil {

struct SubprocessOptions {
  std::string stdin_data;              // written to the child's stdin, which is then closed
  double timeout_seconds = 300;        // the child is killed (SIGKILL) past this; see timed_out
  std::vector<std::string> extra_env;  // "NAME=value" entries added to (overriding) the environment
  std::string working_dir;             // empty = the caller's
};

struct SubprocessResult {
  int exit_code = -1;   // the child's exit status, or -1 if it died from a signal
  int term_signal = 0;  // the signal that ended it, 0 if it exited
  bool timed_out = false;
  std::string out;  // everything written to stdout
  std::string err;  // everything written to stderr

  // Number of '\n'-terminated lines in `err` (a final line without '\n' counts too).
  int ErrLineCount() const;
};

// Runs argv[0] (a path; PATH is not searched) with argv. Blocks until the child exits.
// Errors only for failures to start it (e.g. NotFound for a missing binary); a non-zero exit is a
// normal result. Thread-compatible: safe to call from several threads at once.
absl::StatusOr<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv,
                                               const SubprocessOptions& options = {});

// Path of the built `optower` tool: BinaryDir() + "/cli/optower" (see paths.h).
std::string OptowerBinaryPath();

// RunSubprocess({OptowerBinaryPath(), args...}).
absl::StatusOr<SubprocessResult> RunOptower(const std::vector<std::string>& args,
                                            const SubprocessOptions& options = {});

// Runs the Python expression `expression` over the JSON document `json` (bound to `d`) with
// /usr/bin/python3 and returns what it prints, trailing whitespace removed. A failed run or a
// document that is not JSON is a test failure (EXPECT) and returns "".
std::string PyJson(const std::string& json, const std::string& expression);

}  // namespace optower::testutil

#endif  // OPTOWER_TESTS_TESTING_SUBPROCESS_H_
