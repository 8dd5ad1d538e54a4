// Where the server keeps its state (docs/SCALING.md "Backends"): the event log, the model store
// and the catalog store, opened for the config —
//   default:  data_dir — SQLite event log (events.sqlite), model versions in data_dir/models,
//             the catalog in data_dir/catalog (one process);
//   postgres: all three in PostgreSQL (postgres.dsn_file or OPTOWER_PG_DSN), shared by every
//             process on the same database and schema; model versions are cached in
//             data_dir/model-cache. A process that may train (role all or train) also joins the
//             trainer election; its registry and catalog writes are fenced by it
//             (core/storage/trainer_election.h). A serving replica's writes are refused.
#ifndef OPTOWER_SERVER_BACKENDS_H_
#define OPTOWER_SERVER_BACKENDS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/storage/catalog_store.h"
#include "core/storage/event_log.h"
#include "core/storage/model_store.h"
#include "core/storage/trainer_election.h"
#include "optower/v1/optower.pb.h"
#include "server/server_role.h"

namespace optower::server {

struct Backends {
  std::string dsn;  // postgres only; never printed
  std::unique_ptr<EventLog> event_log;
  std::unique_ptr<ModelStore> store;
  std::unique_ptr<CatalogStore> catalogs;
  std::unique_ptr<TrainerElection> election;  // postgres and a role that trains; else null
};

// `config` has passed ValidateServerConfig; `holder` names this process in the election's lease
// row. Errors name the config field (postgres.dsn_file) or the backend's error.
absl::StatusOr<Backends> OpenBackends(const v1::ServerConfig& config, ServerRole role,
                                      const std::string& holder);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_BACKENDS_H_
