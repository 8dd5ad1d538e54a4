#include "server/backends.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/storage/file_catalog_store.h"
#include "core/storage/file_model_store.h"
#include "core/storage/pg_connection.h"
#include "core/storage/postgres_catalog_store.h"
#include "core/storage/postgres_event_log.h"
#include "core/storage/postgres_model_store.h"
#include "core/storage/sqlite_event_log.h"
#include "server/server_config.h"

namespace optower::server {

absl::StatusOr<Backends> OpenBackends(const v1::ServerConfig& config, ServerRole role,
                                      const std::string& holder) {
  Backends b;
  const ModelStore::Options store_options = ModelStoreOptionsFromConfig(config);
  if (!config.postgres().enabled()) {
    ASSIGN_OR_RETURN(b.store, FileModelStore::Open(config.data_dir(), store_options));
    ASSIGN_OR_RETURN(b.catalogs, FileCatalogStore::Open(config.data_dir()));
    ASSIGN_OR_RETURN(b.event_log, SqliteEventLog::Open(EventLogOptionsFromConfig(config)));
    return b;
  }
  ASSIGN_OR_RETURN(b.dsn, LoadPgDsn(config.postgres().dsn_file()));
  PostgresModelStore::WriteGuard guard;
  if (RoleTrains(role)) {
    ASSIGN_OR_RETURN(b.election, TrainerElection::Open(b.dsn, holder));
    guard = [election = b.election.get()](PgConnection& conn) { return election->CheckFence(conn); };
  } else {
    guard = [](PgConnection&) {
      return absl::FailedPreconditionError(
          "a serving replica (role=serve) does not write the model registry or the catalog");
    };
  }
  ASSIGN_OR_RETURN(b.store, PostgresModelStore::Open(b.dsn, config.data_dir() + "/model-cache",
                                                     store_options, guard));
  ASSIGN_OR_RETURN(b.catalogs, PostgresCatalogStore::Open(b.dsn, guard));
  ASSIGN_OR_RETURN(b.event_log, PostgresEventLog::Open(EventLogOptionsFromConfig(config), b.dsn));
  return b;
}

}  // namespace optower::server
