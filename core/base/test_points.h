// Named test-only crash and fault points, for the crash-consistency and disk-full tests
// (docs/RELIABILITY.md "Model store and catalog crash consistency").
//
//   OPTOWER_TEST_CRASH_POINT=save.after_weights   the process SIGKILLs itself when it reaches
//                                                 CrashPoint("save.after_weights");
//   OPTOWER_TEST_FAULT_POINT=save.weights         FaultPoint("save.weights") returns an ENOSPC
//                                                 error ("No space left on device") instead of OK.
//
// Compiled in but inert: each variable is read once (at the first call) and, when it is unset, a
// point costs one comparison of an empty string. Points are named "<step>.<when>"; the list is
// AllCrashPoints() below (a test loops over it); every crash point used in the code is in it.
//
// Thread safety: all functions may be called from any thread.
#ifndef OPTOWER_CORE_BASE_TEST_POINTS_H_
#define OPTOWER_CORE_BASE_TEST_POINTS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace optower {

// Every crash point of a model publish and a catalog change, in the order a publish reaches them.
const std::vector<std::string>& AllCrashPoints();

// Kills the process with SIGKILL (no clean-up, no flush: what a power cut or OOM kill leaves) when
// OPTOWER_TEST_CRASH_POINT equals `name`.
void CrashPoint(const char* name);

// When OPTOWER_TEST_FAULT_POINT equals `name`: the error a real write would return on a full disk
// (absl::ErrnoToStatus(ENOSPC, ...), as core/base/atomic_file.cc returns it), naming `what` and saying
// it was injected; else OK.
absl::Status FaultPoint(const char* name, const std::string& what);

}  // namespace optower

#endif  // OPTOWER_CORE_BASE_TEST_POINTS_H_
