#include "server/setting_file.h"

#include <cerrno>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace optower::server {

absl::StatusOr<std::string> ReadSettingFile(const std::string& path, const std::string& field) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno != 0 ? errno : ENOENT;
    return absl::ErrnoToStatus(err, absl::StrCat(field, "=", path, ": cannot read it"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(field, "=", path, ": read error"));
  return text.str();
}

}  // namespace optower::server
