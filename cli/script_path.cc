#include "cli/script_path.h"

#include <cstdlib>

namespace optower::cli {

std::string ScriptPath(const std::string& name) {
  if (const char* dir = std::getenv("OPTOWER_SCRIPTS_DIR")) return std::string(dir) + "/" + name;
  return std::string(OPTOWER_SOURCE_DIR) + "/scripts/" + name;
}

}  // namespace optower::cli
