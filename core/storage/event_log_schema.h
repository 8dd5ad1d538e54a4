// The SQLite event log's file: pragmas of the write connection and the schema (docs/EVENT_LOG.md
// "Schema"). Schema 4: one `requests` row per Retrieve (with its categorical context features as
// text), one small `served` row per item (with its propensity and conditional propensity), one
// `feedback` row per (request_id, item_id), and a `meta` table holding schema_version. Older files
// are migrated in place when opened, in one transaction: 2 -> 3 (served gains
// conditional_propensity, NULL for its existing rows), 3 -> 4 (requests gains categorical, '' for
// its existing rows); a file of any other version (e.g. newer) is refused, and left as it was.
//
// Thread safety: each function uses only the connection it is given (the caller's).
#ifndef OPTOWER_CORE_STORAGE_EVENT_LOG_SCHEMA_H_
#define OPTOWER_CORE_STORAGE_EVENT_LOG_SCHEMA_H_

#include <sqlite3.h>

#include <string>

#include "absl/status/status.h"

namespace optower {

// The schema version this build reads and writes.
inline constexpr int kEventLogSchemaVersion = 4;

// Readies the write connection `db` to `path`: FailedPrecondition if SQLite opened the file
// read-only (it does so instead of failing when the file is not writable) or if WAL cannot be
// enabled; then PRAGMA synchronous=FULL (`synchronous`) or NORMAL (docs/EVENT_LOG.md "Durability
// per mode").
absl::Status ConfigureWriteConnection(sqlite3* db, const std::string& path, bool synchronous);

// In one transaction: creates the tables if missing and records the schema version in a new file,
// or checks it in an existing one: a schema 2 or 3 file is migrated to 4, any other version is refused
// (FailedPrecondition naming both versions, before any table is created or changed). `path` only
// names the file in errors.
absl::Status CreateOrCheckSchema(sqlite3* db, const std::string& path);

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_EVENT_LOG_SCHEMA_H_
