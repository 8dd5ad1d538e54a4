// The start-up mistakes a newcomer makes first, turned into errors that say what to do next.
//
// optower-server's generic checks (ValidateServerConfig, the CSV reader, gRPC's bind) are correct
// but name config fields and syscalls; a first start is usually made with flags. These run at the
// edge (main.cc) and name the flags, the commands that make a missing file, and the alternatives.
#ifndef OPTOWER_SERVER_START_CHECKS_H_
#define OPTOWER_SERVER_START_CHECKS_H_

#include <string>

#include "absl/status/status.h"
#include "optower/v1/optower.pb.h"

namespace optower::server {

// Before ValidateServerConfig: no data_dir, no catalog (items_path) and no model, no dim_context
// for random towers, an items file or model folder that does not exist. InvalidArgument /
// NotFound with one line (the caller's exit code 2), OK when none applies. Reads only metadata
// (stat); does not create anything.
absl::Status CheckFirstStart(const v1::ServerConfig& config);

// After OptowerServer::Start failed with `start_error`: when host:port is taken by another
// process (probed with a bind(2) of our own, SO_REUSEADDR like gRPC's), returns Unavailable naming
// the port and what to do (--port=0 or another port); otherwise `start_error` unchanged.
absl::Status ExplainStartFailure(const absl::Status& start_error, const v1::ServerConfig& config);

// True when a TCP listener of another process holds `host`:`port` (bind fails with EADDRINUSE).
// Exposed for tests.
bool PortInUse(const std::string& host, int port);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_START_CHECKS_H_
