// Where the CLI finds its helper scripts (the matplotlib plotters in scripts/).
#ifndef OPTOWER_CLI_SCRIPT_PATH_H_
#define OPTOWER_CLI_SCRIPT_PATH_H_

#include <string>

namespace optower::cli {

// $OPTOWER_SCRIPTS_DIR/<name> when that variable is set (installed layouts), else
// <source tree>/scripts/<name>. The source path is compiled into script_path.cc only, so the other
// CLI files stay identical across clones (and hit ccache).
std::string ScriptPath(const std::string& name);

}  // namespace optower::cli

#endif  // OPTOWER_CLI_SCRIPT_PATH_H_
