// One write transaction of a PostgreSQL store (model registry, catalog): BEGIN, the writers'
// advisory lock of the component (so writers in several processes take turns), the caller's
// statements, the caller's WriteGuard, COMMIT — or ROLLBACK on the first error, returning it.
//
// The WriteGuard is the trainer election's fencing check (docs/SCALING.md): it runs on the same
// connection inside the transaction, after the writes and before COMMIT, so a trainer that lost
// its election cannot publish: its guard fails and nothing it wrote becomes visible.
#ifndef OPTOWER_CORE_STORAGE_PG_WRITE_TRANSACTION_H_
#define OPTOWER_CORE_STORAGE_PG_WRITE_TRANSACTION_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/storage/pg_connection.h"

namespace optower {

// Run inside every write transaction before it commits; a non-OK status rolls it back and is
// returned as is. Null: no check.
using PgWriteGuard = std::function<absl::Status(PgConnection&)>;

// `lock_purpose` names the advisory lock (PgConnection::LockKey); `what` prefixes errors of BEGIN,
// the lock and COMMIT. A COMMIT that fails because the connection broke is Unavailable: the outcome
// is then unknown (the caller re-reads the state).
absl::Status RunPgWriteTransaction(PgConnection& conn, absl::string_view lock_purpose,
                                   absl::string_view what,
                                   const std::function<absl::Status(PgConnection&)>& body,
                                   const PgWriteGuard& guard);

// Reconnects a connection that broke since its last use (PgConnection::Reset); OK when it is up.
absl::Status EnsurePgConnected(PgConnection& conn);

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_PG_WRITE_TRANSACTION_H_
