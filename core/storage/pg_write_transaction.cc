#include "core/storage/pg_write_transaction.h"

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace optower {

absl::Status RunPgWriteTransaction(PgConnection& conn, absl::string_view lock_purpose,
                                   absl::string_view what,
                                   const std::function<absl::Status(PgConnection&)>& body,
                                   const PgWriteGuard& guard) {
  RETURN_IF_ERROR(EnsurePgConnected(conn));
  RETURN_IF_ERROR(conn.Exec("BEGIN", what));
  absl::Status s = conn.Query(absl::StrCat("SELECT pg_advisory_xact_lock(",
                                           conn.LockKey(lock_purpose), ")"),
                              {}, what)
                       .status();
  if (s.ok()) s = body(conn);
  if (s.ok() && guard != nullptr) s = guard(conn);
  if (!s.ok()) {
    // A broken connection has rolled back already; the error that broke it is what matters.
    conn.Exec("ROLLBACK", what).IgnoreError();
    return s;
  }
  return conn.Exec("COMMIT", what);
}

absl::Status EnsurePgConnected(PgConnection& conn) {
  if (conn.ok()) return absl::OkStatus();
  return conn.Reset();
}

}  // namespace optower
