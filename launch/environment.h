// The environment of a child process: this process's environment with some entries added or
// replaced. Shared by launch::ServerProcess and the tests' RunSubprocess (tests/testing/
// subprocess.cc), so the two cannot disagree on which variables a child sees. No protobuf, no core.
// Thread safety: reads `environ`; do not call while another thread changes the environment.
#ifndef OPTOWER_LAUNCH_ENVIRONMENT_H_
#define OPTOWER_LAUNCH_ENVIRONMENT_H_

#include <string>
#include <vector>

namespace optower::launch {

// This process's environment with `extra` ("NAME=value") added, overriding same-named entries.
std::vector<std::string> MergedEnvironment(const std::vector<std::string>& extra);

}  // namespace optower::launch

#endif  // OPTOWER_LAUNCH_ENVIRONMENT_H_
