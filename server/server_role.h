// The process's role in a deployment (ServerConfig.role, docs/SCALING.md "Roles") and the
// scale-out fields' defaults and checks (ServerConfig.postgres, role, trainer_address).
//
//   all    serving, feedback, the trainer and admin writes (the default; one process)
//   serve  Retrieve, Feedback, admin reads; follows the shared CURRENT and catalog
//   train  the trainer (elected) and admin writes; Retrieve/Feedback answer FAILED_PRECONDITION
// serve and train need postgres.enabled: they exist to share one database. `all` with postgres
// also takes part in the election, so several `all` processes serve while one of them trains.
#ifndef OPTOWER_SERVER_SERVER_ROLE_H_
#define OPTOWER_SERVER_SERVER_ROLE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "optower/v1/optower.pb.h"

namespace optower::server {

enum class ServerRole { kAll, kServe, kTrain };

// InvalidArgument "role='x': must be all, serve or train".
absl::StatusOr<ServerRole> ParseServerRole(const std::string& name);
const char* ServerRoleName(ServerRole role);
inline bool RoleServes(ServerRole r) { return r != ServerRole::kTrain; }
inline bool RoleTrains(ServerRole r) { return r != ServerRole::kServe; }

// role "all"; with postgres.enabled: poll_interval_ms 2000, election_interval_ms 1000.
void ApplyScaleOutDefaults(v1::ServerConfig* config);
// After the defaults: InvalidArgument naming the field and value (an unknown role; serve/train
// without postgres.enabled; train with trainer.disabled; intervals not finite and > 0).
absl::Status ValidateScaleOut(const v1::ServerConfig& config);

// What a process of `role` answers to calls it does not take (FailedPrecondition, naming the role
// and where to go): admin writes on a serving replica, Retrieve/Feedback on a trainer. OK when the
// role takes `call`.
absl::Status RefuseAdminWrite(ServerRole role, const std::string& trainer_address, const char* method);
absl::Status RefuseServing(ServerRole role, const char* method);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_SERVER_ROLE_H_
