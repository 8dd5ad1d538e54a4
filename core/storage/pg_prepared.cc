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
  std::vector<const char*> values(params.size());
  std::vector<int> lengths(params.size());
  std::vector<int> formats(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    values[i] = params[i].null ? nullptr : params[i].value.data();
    lengths[i] = static_cast<int>(params[i].value.size());
    formats[i] = params[i].binary ? 1 : 0;
  }
  pg_result* r = PQexecPrepared(conn.raw(), name.c_str(), static_cast<int>(params.size()),
                                values.data(), lengths.data(), formats.data(),
                                binary_results ? 1 : 0);
  const ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return PgResult(r);
  absl::Status status = PgStatus(conn.raw(), r, what);
  if (r != nullptr) PQclear(r);
  return status;
}

}  // namespace optower
