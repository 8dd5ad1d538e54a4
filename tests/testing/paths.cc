#include "tests/testing/paths.h"

#include <cstdlib>

namespace optower::testutil {

std::string SourceDir() { return OPTOWER_SOURCE_DIR; }
std::string SharedDir() {
  if (const char* env = std::getenv("OPTOWER_SHARED_DIR")) return env;
  return OPTOWER_SHARED_DIR;
}
std::string BinaryDir() { return OPTOWER_BINARY_DIR; }

}  // namespace optower::testutil
