// Small helpers over the SQLite C API, shared by the event log's write and read connections
// (core/storage/sqlite_write_connection.h, core/storage/sqlite_event_log_reader.h): error mapping to absl::Status,
// RAII handles for connections and prepared statements, and one-statement runners.
//
// Thread safety: a SQLite connection and its statements are used by one thread at a time (the
// callers hold their own lock or are the only user); these helpers add no locking.
#ifndef OPTOWER_CORE_STORAGE_SQLITE_UTIL_H_
#define OPTOWER_CORE_STORAGE_SQLITE_UTIL_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace optower {

// The Status for SQLite result code `rc` (extended codes on), naming `what` and the connection's
// error message. Mapping (docs/EVENT_LOG.md "Write failures"): UNIQUE / PRIMARY KEY constraint ->
// AlreadyExists, other constraints -> InvalidArgument; failed writes that may pass (BUSY, LOCKED,
// FULL, IOERR, READONLY, NOMEM, PROTOCOL) -> Unavailable (the writer retries exactly these; never
// ResourceExhausted, which the API reserves for a full queue); CORRUPT / NOTADB -> DataLoss;
// CANTOPEN / PERM -> FailedPrecondition; anything else -> Internal. `db` may be null.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what);

struct SqliteStmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
// A prepared statement, finalized on destruction.
using Stmt = std::unique_ptr<sqlite3_stmt, SqliteStmtDeleter>;

struct SqliteDbCloser {
  // close_v2: statements still alive keep the connection as a zombie until they are finalized.
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
// A connection, closed on destruction.
using SqliteDb = std::unique_ptr<sqlite3, SqliteDbCloser>;

// Opens `path` with `flags` (SQLITE_OPEN_*), extended result codes on and the given busy timeout
// (how long a statement waits for another connection's lock).
absl::StatusOr<SqliteDb> OpenConnection(const std::string& path, int flags,
                                        absl::Duration busy_timeout);

// Prepares `sql` for repeated use (SQLITE_PREPARE_PERSISTENT).
absl::StatusOr<Stmt> Prepare(sqlite3* db, const char* sql);

// Steps a statement that returns no rows and resets it for reuse.
absl::Status StepDone(sqlite3* db, sqlite3_stmt* s, absl::string_view what);

// The same with the description built only on error (`what()` returns a string; per-row inserts
// run this once per item, so the success path must not allocate).
template <typename What>
absl::Status StepDoneLazy(sqlite3* db, sqlite3_stmt* s, const What& what) {
  const int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) {
    sqlite3_reset(s);
    return absl::OkStatus();
  }
  absl::Status status = SqliteError(db, rc, what());
  sqlite3_reset(s);
  return status;
}

// Runs a prepared one-integer query and resets it: the first column of its first row.
absl::StatusOr<int64_t> QueryInt(sqlite3* db, sqlite3_stmt* st, absl::string_view what);

// Runs a one-value query (PRAGMA or SELECT) and returns the first column of the first row as
// text; Internal if it returns no row.
absl::StatusOr<std::string> QueryText(sqlite3* db, const char* sql);

// Runs `sql` (one or more statements, no results) with sqlite3_exec.
absl::Status Exec(sqlite3* db, const char* sql);

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_SQLITE_UTIL_H_
