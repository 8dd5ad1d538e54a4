// `optower health --server ADDR [--service NAME]`: the standard gRPC health check
// (grpc.health.v1.Health/Check) of a running optower-server, for container HEALTHCHECKs and scripts.
// Prints the serving status (SERVING, NOT_SERVING, ...) and exits 0 only when it is SERVING;
// 1 otherwise, also when the server is unreachable or does not know the service; 2 for bad flags.
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/flag_parser.h"
#include "cli/online_client.h"
#include "core/base/json_writer.h"

namespace optower::cli {
namespace {

struct HealthFlags {
  std::string server;
  ConnectionFlags connection;  // --token, --tls-ca, --tls-cert, --tls-key
  std::string service;  // "" = the whole server
  double timeout = 3;
  bool json = false;
};

int HealthMain(int argc, char** argv) {
  HealthFlags f;
  FlagParser parser(
      "optower health --server ADDR [--service NAME] [--json]",
      "Checks a running optower-server with the gRPC health service. Exit 0 when SERVING,\n"
      "1 otherwise (NOT_SERVING, shutting down, unreachable, unknown service).\n"
      "Services: \"\" (the whole server, default), optower.v1.RetrievalService,\n"
      "optower.v1.AdminService.");
  parser.AddString("server", &f.server, "server address host:port");
  f.connection.Register(&parser);
  parser.AddString("service", &f.service, "service to check (empty = the whole server)");
  parser.AddDouble("timeout", &f.timeout, "deadline in seconds");
  parser.AddBool("json", &f.json, "print one JSON object");
  parser.Require("server");
  if (auto done = ParseCommandLine(parser, argc, argv, 0)) return *done;
  absl::StatusOr<std::unique_ptr<client::OptowerClient>> client =
      ConnectToServer(f.server, f.timeout, f.connection);
  if (!client.ok()) return UsageError(std::string(client.status().message()));

  using ServingStatus = grpc::health::v1::HealthCheckResponse;
  absl::StatusOr<ServingStatus::ServingStatus> status = (*client)->CheckHealth(f.service);
  // Any failure of the check means "not healthy" (1), whatever its code: a HEALTHCHECK must not
  // read an unreachable server as a usage error.
  const std::string name = status.ok() ? ServingStatus::ServingStatus_Name(*status) : "UNREACHABLE";
  const bool serving = status.ok() && *status == ServingStatus::SERVING;
  if (f.json) {
    JsonWriter w(JsonWriter::Options{/*indent=*/0});
    w.BeginObject().Field("server", f.server).Field("service", f.service).Field("status", name);
    w.Field("serving", serving);
    if (!status.ok()) w.Field("error", std::string(status.status().message()));
    w.EndObject();
    absl::StatusOr<std::string> json = w.Finish();
    if (json.ok()) std::fputs(json->c_str(), stdout);
  } else {
    std::printf("%s\n", name.c_str());
  }
  if (!status.ok()) {
    std::fprintf(stderr, "optower: Check: %s\n", std::string(status.status().message()).c_str());
  }
  return serving ? kExitOk : kExitFailure;
}

}  // namespace

OPTOWER_REGISTER_COMMAND(health, "health", "gRPC health check of a running server (exit 0 = SERVING)",
                         HealthMain);

}  // namespace optower::cli
