// Shared plumbing of the online subcommands (retrieve, feedback, items, stats, admin, health):
// connecting to a running optower-server (bearer token, TLS; docs/SECURITY.md) and parsing
// list-valued flags.
#ifndef OPTOWER_CLI_ONLINE_CLIENT_H_
#define OPTOWER_CLI_ONLINE_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/flag_parser.h"
#include "client/optower_client.h"

namespace optower::cli {

// The flags every online subcommand takes for authentication and TLS:
//   --token T     bearer token sent with every call (default: $OPTOWER_TOKEN)
//   --tls-ca F    PEM CA the server's certificate must chain to; turns TLS on
//   --tls-cert F  PEM client certificate (mutual TLS), with --tls-key F
struct ConnectionFlags {
  std::string token;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;

  void Register(FlagParser* parser);
};

// A client for `address` ("host:port") whose calls time out after `timeout_seconds`, with the
// token (`connection.token`, else the environment variable OPTOWER_TOKEN) as
// "authorization: Bearer ..." metadata and TLS when a --tls-* flag is set.
// InvalidArgument (naming --server / --timeout / --token / --tls-*) for an empty address, a timeout
// <= 0, a token with spaces or line breaks, or inconsistent TLS flags; the TLS files' read errors.
absl::StatusOr<std::unique_ptr<client::OptowerClient>> ConnectToServer(
    const std::string& address, double timeout_seconds, const ConnectionFlags& connection = {});

// "0.5,-1,2e-3" -> floats. Empty text -> {}. InvalidArgument naming `flag` and the bad entry.
absl::StatusOr<std::vector<float>> ParseFloatList(const std::string& text, const std::string& flag);
// "3,17,42" -> ids. Empty text -> {}.
absl::StatusOr<std::vector<int64_t>> ParseIdList(const std::string& text, const std::string& flag);

// The failed call's status with the RPC's name in front ("Retrieve: k=0: k must be in [1, 100]"),
// code unchanged (so ReportError still maps INVALID_ARGUMENT to exit 2).
absl::Status RpcError(const std::string& rpc, const absl::Status& status);

}  // namespace optower::cli

#endif  // OPTOWER_CLI_ONLINE_CLIENT_H_
