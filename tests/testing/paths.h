// Where the tests find the source tree, shared/ and the build tree. The paths are compiled into one
// translation unit (paths.cc) only, so that every other test file is identical across clones of the
// repository and hits the ccache from a previous build.
#ifndef OPTOWER_TESTS_TESTING_PATHS_H_
#define OPTOWER_TESTS_TESTING_PATHS_H_

#include <string>

namespace optower::testutil {

std::string SourceDir();  // the repository root
std::string SharedDir();  // $OPTOWER_SHARED_DIR, else <repo>/../shared
std::string BinaryDir();  // the CMake build directory

}  // namespace optower::testutil

#endif  // OPTOWER_TESTS_TESTING_PATHS_H_
