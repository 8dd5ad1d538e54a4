#include "core/storage/pg_prepared.h"

#include <libpq-fe.h>

namespace optower {

absl::Status PgPrepare(PgConnection& conn, const std::string& name, const std::string& sql,
                       absl::string_view what) {
  pg_result* r = PQprepare(conn.raw(), name.c_str(), sql.c_str(), 0, nullptr);
  absl::Status status =
      PQresultStatus(r) == PGRES_COMMAND_OK ? absl::OkStatus() : PgStatus(conn.raw(), r, what);
  if (r != nullptr) PQclear(r);
  return status;
}

absl::StatusOr<PgResult> PgExecPrepared(PgConnection& conn, const std::string& name,
                                        const std::vector<PgParam>& params, absl::string_view what,
                                        bool binary_results) {
  const PgParamArrays a(params);
  return PgResultOrStatus(conn.raw(),
                          PQexecPrepared(conn.raw(), name.c_str(), a.size(), a.values.data(),
                                         a.lengths.data(), a.formats.data(), binary_results ? 1 : 0),
                          what);
}

}  // namespace optower
