#include "core/storage/event_log_schema.h"

#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/storage/sqlite_util.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {

constexpr const char* kMetaSql = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
)sql";

// No AUTOINCREMENT: the log is append-only (nothing ever deletes rows), so max(rowid)+1 never hands
// out an id twice, and we save the sqlite_sequence update per insert. served.id is assigned by the
// writer (first_served + position in the slate's item list), so the items of one request are the
// contiguous id range [first_served, first_served + number of items) and the feedback lookup needs
// no index on served (see SqliteWriteConnection::DecideFeedback).
constexpr const char* kSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS requests (
  id            INTEGER PRIMARY KEY,
  request_id    TEXT    NOT NULL UNIQUE,
  k             INTEGER NOT NULL,
  m             INTEGER NOT NULL,
  epsilon       REAL    NOT NULL,
  temperature   REAL    NOT NULL,
  model_version TEXT    NOT NULL,
  context       BLOB    NOT NULL,
  time_us       INTEGER NOT NULL,
  first_served  INTEGER NOT NULL,
  categorical   TEXT    NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS served (
  id         INTEGER PRIMARY KEY,
  request    INTEGER NOT NULL,
  item_id    INTEGER NOT NULL,
  position   INTEGER NOT NULL,
  propensity REAL    NOT NULL CHECK (propensity > 0 AND propensity <= 1),
  conditional_propensity REAL
    CHECK (conditional_propensity > 0 AND conditional_propensity <= 1)
);
CREATE TABLE IF NOT EXISTS feedback (
  request_id TEXT    NOT NULL,
  item_id    INTEGER NOT NULL,
  reward     REAL    NOT NULL,
  time_us    INTEGER NOT NULL,
  PRIMARY KEY (request_id, item_id)
) WITHOUT ROWID;
)sql";

// The file's schema_version (nullopt when the meta table has none: a new file), or the error.
absl::StatusOr<std::optional<std::string>> ReadSchemaVersion(sqlite3* db) {
  ASSIGN_OR_RETURN(Stmt q, Prepare(db, "SELECT value FROM meta WHERE key = 'schema_version'"));
  const int rc = sqlite3_step(q.get());
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return SqliteError(db, rc, "read schema_version");
  const unsigned char* text = sqlite3_column_text(q.get(), 0);
  return std::optional<std::string>(
      text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text)));
}

// Schema 2 -> 3: served gains conditional_propensity, NULL for the rows already there (the reader
// derives their value, core/storage/sqlite_event_log_reader.cc). The column is declared as in kSchemaSql,
// so a migrated file has the layout of a new one; SQLite's ADD COLUMN only rewrites the table's
// definition, not its rows. Runs inside CreateOrCheckSchema's transaction.
absl::Status MigrateFrom2(sqlite3* db) {
  RETURN_IF_ERROR(Exec(db,
                       "ALTER TABLE served ADD COLUMN conditional_propensity REAL "
                       "CHECK (conditional_propensity > 0 AND conditional_propensity <= 1)"));
  return Exec(db, "UPDATE meta SET value = '3' WHERE key = 'schema_version'");
}

// Schema 3 -> 4: requests gains categorical (the request's categorical context features in
// CategoricalFeaturesToText form), '' for the rows already there (they were logged without any:
// Retrieve ignored categorical features before schema 4). Declared as in kSchemaSql.
absl::Status MigrateFrom3(sqlite3* db) {
  RETURN_IF_ERROR(Exec(db, "ALTER TABLE requests ADD COLUMN categorical TEXT NOT NULL DEFAULT ''"));
  return Exec(db, "UPDATE meta SET value = '4' WHERE key = 'schema_version'");
}

// The body of CreateOrCheckSchema's transaction.
absl::Status CreateOrCheckInTransaction(sqlite3* db, const std::string& path) {
  // The version is checked before any other table is created: CREATE ... IF NOT EXISTS would skip
  // a table of another version's layout and fail (or succeed wrongly) later.
  RETURN_IF_ERROR(Exec(db, kMetaSql));
  ASSIGN_OR_RETURN(std::optional<std::string> version, ReadSchemaVersion(db));
  static_assert(kEventLogSchemaVersion == 4, "add the migration to the new version here");
  if (version.has_value() && *version == "2") {
    RETURN_IF_ERROR(MigrateFrom2(db));
    version = "3";
  }
  if (version.has_value() && *version == "3") {
    RETURN_IF_ERROR(MigrateFrom3(db));
    version = "4";
  }
  if (version.has_value() && *version != std::to_string(kEventLogSchemaVersion)) {
    int number = 0;
    const bool newer = absl::SimpleAtoi(*version, &number) && number > kEventLogSchemaVersion;
    return absl::FailedPreconditionError(absl::StrCat(
        "path='", path, "': schema_version=", *version, ", this build reads ",
        kEventLogSchemaVersion,
        newer ? " (the file was written by a newer optower: open it with that version)"
              : " and migrates only from 2 and 3 (no migration: start a new log file)"));
  }
  RETURN_IF_ERROR(Exec(db, kSchemaSql));
  if (!version.has_value()) {
    RETURN_IF_ERROR(Exec(db, absl::StrCat("INSERT INTO meta(key, value) VALUES ('schema_version', '",
                                          kEventLogSchemaVersion, "')")
                                 .c_str()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ConfigureWriteConnection(sqlite3* db, const std::string& path, bool synchronous) {
  // SQLite opens a file it cannot write read-only instead of failing; every write would then fail.
  if (sqlite3_db_readonly(db, "main") == 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "path='", path, "': the event log file is read-only (check its permissions and "
        "that its folder is writable)"));
  }
  ASSIGN_OR_RETURN(const std::string mode, QueryText(db, "PRAGMA journal_mode=WAL"));
  if (mode != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat("path='", path, "': cannot enable WAL, journal_mode=", mode));
  }
  return Exec(db, synchronous ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
}

absl::Status CreateOrCheckSchema(sqlite3* db, const std::string& path) {
  RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  absl::Status s = CreateOrCheckInTransaction(db, path);
  if (s.ok()) s = Exec(db, "COMMIT");
  if (!s.ok() && sqlite3_get_autocommit(db) == 0) Exec(db, "ROLLBACK").IgnoreError();
  return s;
}

}  // namespace optower
