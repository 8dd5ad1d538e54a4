#include "core/storage/sqlite_util.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace optower {

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  const std::string msg =
      absl::StrCat(what, ": sqlite error ", rc, " (", sqlite3_errstr(rc),
                   db != nullptr ? absl::StrCat("): ", sqlite3_errmsg(db)) : std::string(")"));
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
                 ? absl::AlreadyExistsError(msg)
                 : absl::InvalidArgumentError(msg);
    // Failed writes that may pass (another connection's lock, disk full, I/O error, a read-only
    // remount, memory): the writer retries them (docs/EVENT_LOG.md "Write failures"). Not
    // ResourceExhausted, which the API reserves for a full queue.
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
      return absl::UnavailableError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
      return absl::FailedPreconditionError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::StatusOr<SqliteDb> OpenConnection(const std::string& path, int flags,
                                        absl::Duration busy_timeout) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = SqliteError(db, rc, absl::StrCat("open path='", path, "'"));
    sqlite3_close_v2(db);
    return s;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(absl::ToInt64Milliseconds(busy_timeout)));
  return SqliteDb(db);
}

absl::StatusOr<Stmt> Prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, absl::StrCat("prepare '", sql, "'"));
  return Stmt(s);
}

absl::Status StepDone(sqlite3* db, sqlite3_stmt* s, absl::string_view what) {
  const int rc = sqlite3_step(s);
  absl::Status status = rc == SQLITE_DONE ? absl::OkStatus() : SqliteError(db, rc, what);
  sqlite3_reset(s);
  return status;
}

absl::StatusOr<int64_t> QueryInt(sqlite3* db, sqlite3_stmt* st, absl::string_view what) {
  const int rc = sqlite3_step(st);
  absl::StatusOr<int64_t> out =
      rc == SQLITE_ROW ? absl::StatusOr<int64_t>(sqlite3_column_int64(st, 0))
                       : absl::StatusOr<int64_t>(SqliteError(db, rc, what));
  sqlite3_reset(st);
  return out;
}

absl::StatusOr<std::string> QueryText(sqlite3* db, const char* sql) {
  ASSIGN_OR_RETURN(Stmt s, Prepare(db, sql));
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(s.get(), 0);
    return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text));
  }
  if (rc == SQLITE_DONE) return absl::InternalError(absl::StrCat("'", sql, "' returned no row"));
  return SqliteError(db, rc, sql);
}

absl::Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return absl::OkStatus();
  absl::Status s = SqliteError(db, rc, absl::StrCat("exec '", sql, "'"));
  sqlite3_free(err);
  return s;
}

}  // namespace optower
