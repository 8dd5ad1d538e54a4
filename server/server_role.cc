#include "server/server_role.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace optower::server {

absl::StatusOr<ServerRole> ParseServerRole(const std::string& name) {
  if (name == "all" || name.empty()) return ServerRole::kAll;
  if (name == "serve") return ServerRole::kServe;
  if (name == "train") return ServerRole::kTrain;
  return absl::InvalidArgumentError(absl::StrCat("role='", name, "': must be all, serve or train"));
}

const char* ServerRoleName(ServerRole role) {
  switch (role) {
    case ServerRole::kServe:
      return "serve";
    case ServerRole::kTrain:
      return "train";
    case ServerRole::kAll:
      break;
  }
  return "all";
}

void ApplyScaleOutDefaults(v1::ServerConfig* c) {
  if (c->role().empty()) c->set_role("all");
  if (!c->postgres().enabled()) return;
  v1::PostgresConfig* pg = c->mutable_postgres();
  if (!pg->has_poll_interval_ms()) pg->set_poll_interval_ms(2000);
  if (!pg->has_election_interval_ms()) pg->set_election_interval_ms(1000);
}

absl::Status ValidateScaleOut(const v1::ServerConfig& c) {
  absl::StatusOr<ServerRole> role = ParseServerRole(c.role());
  if (!role.ok()) return role.status();
  if (*role != ServerRole::kAll && !c.postgres().enabled()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "role='", c.role(), "': needs postgres.enabled (flag --postgres_dsn_file): roles split one "
        "deployment across processes that share a PostgreSQL database"));
  }
  if (*role == ServerRole::kTrain && c.trainer().disabled()) {
    return absl::InvalidArgumentError("role='train' with trainer.disabled=true: nothing to do");
  }
  if (!c.postgres().enabled()) return absl::OkStatus();
  const v1::PostgresConfig& pg = c.postgres();
  if (!std::isfinite(pg.poll_interval_ms()) || pg.poll_interval_ms() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("postgres.poll_interval_ms=", pg.poll_interval_ms(), ": must be finite and > 0"));
  }
  if (!std::isfinite(pg.election_interval_ms()) || pg.election_interval_ms() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("postgres.election_interval_ms=",
                                                   pg.election_interval_ms(),
                                                   ": must be finite and > 0"));
  }
  return absl::OkStatus();
}

absl::Status RefuseAdminWrite(ServerRole role, const std::string& trainer_address, const char* method) {
  if (role != ServerRole::kServe) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      method, ": this process is a serving replica (role=serve); send admin writes to the trainer",
      trainer_address.empty() ? " (role=train)" : absl::StrCat(" at ", trainer_address)));
}

absl::Status RefuseServing(ServerRole role, const char* method) {
  if (role != ServerRole::kTrain) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      method, ": this process is the trainer (role=train); send Retrieve and Feedback to a serving "
              "replica (role=serve)"));
}

}  // namespace optower::server
