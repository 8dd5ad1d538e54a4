// ReadSettingFile: the whole contents of a file named by a server setting (a token file, a PEM
// certificate or key), with errors that name the setting and the path, e.g.
// "admin_token_file=/etc/optower/token: cannot read it".
#ifndef OPTOWER_SERVER_SETTING_FILE_H_
#define OPTOWER_SERVER_SETTING_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace optower::server {

// Errors: the errno-derived code (NotFound, PermissionDenied, ...) when the file cannot be opened,
// DataLoss when reading it fails.
absl::StatusOr<std::string> ReadSettingFile(const std::string& path, const std::string& field);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_SETTING_FILE_H_
