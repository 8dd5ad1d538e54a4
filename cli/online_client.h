// Shared plumbing of the online subcommands (retrieve, feedback, items, stats; later admin ...):
// connecting to a running optower-server and parsing list-valued flags.
#ifndef OPTOWER_CLI_ONLINE_CLIENT_H_
#define OPTOWER_CLI_ONLINE_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/optower_client.h"

namespace optower::cli {

// A client for `address` ("host:port") whose calls time out after `timeout_seconds`.
// InvalidArgument (naming --server / --timeout) for an empty address or a timeout <= 0.
absl::StatusOr<std::unique_ptr<client::OptowerClient>> ConnectToServer(const std::string& address,
                                                                      double timeout_seconds);

// "0.5,-1,2e-3" -> floats. Empty text -> {}. InvalidArgument naming `flag` and the bad entry.
absl::StatusOr<std::vector<float>> ParseFloatList(const std::string& text, const std::string& flag);
// "3,17,42" -> ids. Empty text -> {}.
absl::StatusOr<std::vector<int64_t>> ParseIdList(const std::string& text, const std::string& flag);

// The failed call's status with the RPC's name in front ("Retrieve: k=0: k must be in [1, 100]"),
// code unchanged (so ReportError still maps INVALID_ARGUMENT to exit 2).
absl::Status RpcError(const std::string& rpc, const absl::Status& status);

}  // namespace optower::cli

#endif  // OPTOWER_CLI_ONLINE_CLIENT_H_
