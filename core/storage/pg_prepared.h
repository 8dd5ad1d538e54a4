// Prepared statements on a PgConnection (PQprepare / PQexecPrepared): parsed and planned once per
// connection instead of once per call, for the statements a backend runs on every operation (the
// event log's inserts and feedback decisions). A prepared statement lives as long as the server
// session: after PgConnection::Reset, prepare it again.
//
// Thread safety: as PgConnection (none).
#ifndef OPTOWER_CORE_STORAGE_PG_PREPARED_H_
#define OPTOWER_CORE_STORAGE_PG_PREPARED_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/storage/pg_connection.h"

namespace optower {

// Prepares `sql` (parameters $1.., types inferred from their use) under `name` on `conn`. Errors as
// PgStatus, prefixed by `what`.
absl::Status PgPrepare(PgConnection& conn, const std::string& name, const std::string& sql,
                       absl::string_view what);

// Runs the statement prepared as `name` with `params` (as PgConnection::Query).
absl::StatusOr<PgResult> PgExecPrepared(PgConnection& conn, const std::string& name,
                                        const std::vector<PgParam>& params, absl::string_view what,
                                        bool binary_results = false);

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_PG_PREPARED_H_
