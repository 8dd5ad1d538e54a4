// The PostgreSQL event log's tables (docs/EVENT_LOG.md "PostgreSQL backend"), in the schema the
// connection's search_path names, as versioned migrations of the component "event_log"
// (ApplyPgMigrations, core/storage/pg_connection.h):
//   requests  one row per Retrieve: request_id (PRIMARY KEY), k, m, epsilon, temperature,
//             model_version, context (BYTEA: the float32 values, little-endian, as SQLite's BLOB),
//             categorical (CategoricalFeaturesToText form, '' = none), time_us
//   served    one row per item: id (BIGINT PRIMARY KEY, assigned by the writer), request_id,
//             item_id, position, propensity, conditional_propensity; UNIQUE (request_id, item_id),
//             the index the feedback lookup uses
//   feedback  one row per (request_id, item_id) (PRIMARY KEY): reward, time_us
// Doubles are DOUBLE PRECISION (IEEE binary64) and round-trip bit-exactly.
//
// Thread safety: uses only the connection it is given (the caller's).
#ifndef OPTOWER_CORE_STORAGE_POSTGRES_EVENT_LOG_SCHEMA_H_
#define OPTOWER_CORE_STORAGE_POSTGRES_EVENT_LOG_SCHEMA_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/storage/pg_connection.h"

namespace optower {

// The component name in optower_schema.
inline constexpr const char* kPgEventLogComponent = "event_log";

// migrations[i] takes the event log's tables from version i to i + 1 (version 1 = this layout).
const std::vector<std::string>& PostgresEventLogMigrations();

// Creates or upgrades the tables (once, under the migrations' advisory lock). FailedPrecondition
// naming both versions when the database holds a newer event_log schema than this build knows.
absl::Status ApplyPostgresEventLogSchema(PgConnection& conn);

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_POSTGRES_EVENT_LOG_SCHEMA_H_
