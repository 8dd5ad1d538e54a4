#include "core/storage/pg_connection.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"

namespace optower {

absl::StatusOr<std::string> LoadPgDsn(const std::string& dsn_file, const char* env_name) {
  std::string dsn;
  if (!dsn_file.empty()) {
    std::ifstream in(dsn_file, std::ios::binary);
    if (!in) {
      return absl::InvalidArgumentError(absl::StrCat("postgres.dsn_file='", dsn_file,
                                                     "': cannot read it (", std::strerror(errno), ")"));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    dsn = std::string(absl::StripTrailingAsciiWhitespace(ss.str()));
    if (dsn.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("postgres.dsn_file='", dsn_file, "' is empty"));
    }
    return dsn;
  }
  const char* env = std::getenv(env_name);
  if (env != nullptr) dsn = std::string(absl::StripTrailingAsciiWhitespace(env));
  if (dsn.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "postgres: no connection string: set postgres.dsn_file or the environment variable ", env_name));
  }
  return dsn;
}

PgParam PgParam::Int(int64_t v) { return Text(absl::StrCat(v)); }
PgParam PgParam::Double(double v) { return Text(absl::StrFormat("%.17g", v)); }

PgResult::PgResult(pg_result* r) : r_(r) {}
PgResult::PgResult(PgResult&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
PgResult& PgResult::operator=(PgResult&& o) noexcept {
  if (this != &o) {
    if (r_ != nullptr) PQclear(r_);
    r_ = std::exchange(o.r_, nullptr);
  }
  return *this;
}
PgResult::~PgResult() {
  if (r_ != nullptr) PQclear(r_);
}
int PgResult::rows() const { return r_ == nullptr ? 0 : PQntuples(r_); }
int PgResult::columns() const { return r_ == nullptr ? 0 : PQnfields(r_); }
bool PgResult::IsNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
std::string PgResult::Get(int row, int col) const {
  return std::string(PQgetvalue(r_, row, col), PQgetlength(r_, row, col));
}
int64_t PgResult::GetInt(int row, int col) const {
  if (IsNull(row, col)) return 0;
  int64_t v = 0;
  if (!absl::SimpleAtoi(absl::string_view(PQgetvalue(r_, row, col)), &v)) return 0;
  return v;
}
double PgResult::GetDouble(int row, int col) const {
  if (IsNull(row, col)) return 0.0;
  return std::strtod(PQgetvalue(r_, row, col), nullptr);
}
bool PgResult::GetBool(int row, int col) const {
  return !IsNull(row, col) && PQgetvalue(r_, row, col)[0] == 't';
}
int64_t PgResult::affected() const {
  int64_t v = 0;
  if (r_ == nullptr || !absl::SimpleAtoi(absl::string_view(PQcmdTuples(r_)), &v)) return 0;
  return v;
}

absl::Status PgStatus(pg_conn* conn, pg_result* r, absl::string_view what) {
  std::string message;
  std::string state;
  if (r != nullptr) {
    const char* m = PQresultErrorMessage(r);
    if (m != nullptr) message = m;
    const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (s != nullptr) state = s;
  }
  if (message.empty() && conn != nullptr) message = PQerrorMessage(conn);
  message = std::string(absl::StripTrailingAsciiWhitespace(message));
  const bool broken = conn != nullptr && PQstatus(conn) != CONNECTION_OK;
  absl::StatusCode code = absl::StatusCode::kInternal;
  const std::string cls = state.substr(0, 2);
  if (broken || state.empty() || cls == "08" || cls == "53" || state == "57P01" ||
      state == "57P02" || state == "57P03" || state == "55P03" || state == "57014") {
    // No SQLSTATE: the connection (or the network) failed before the server answered.
    code = absl::StatusCode::kUnavailable;
  } else if (state == "23505") {
    code = absl::StatusCode::kAlreadyExists;
  } else if (cls == "40") {
    code = absl::StatusCode::kAborted;
  } else if (cls == "22" || cls == "23") {
    code = absl::StatusCode::kInvalidArgument;
  }
  std::string text = absl::StrCat(what, ": ", message.empty() ? "PostgreSQL error" : message);
  if (!state.empty()) absl::StrAppend(&text, " (SQLSTATE ", state, ")");
  return absl::Status(code, text);
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgConnection::Connect(
    const std::string& dsn, absl::string_view application_name, absl::Duration connect_timeout) {
  // The DSN may be a URI or keywords; the extra keywords go through expand_dbname so that the
  // caller's connect_timeout and application_name apply to either form.
  const std::string timeout = absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(connect_timeout)));
  const std::string app(application_name);
  const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
  const char* values[] = {dsn.c_str(), timeout.c_str(), app.c_str(), nullptr};
  pg_conn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) return absl::ResourceExhaustedError("postgres: out of memory connecting");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string m = absl::StrCat("postgres: cannot connect: ",
                                 absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn)));
    PQfinish(conn);
    return absl::UnavailableError(m);
  }
  std::unique_ptr<PgConnection> c(new PgConnection(conn));
  ASSIGN_OR_RETURN(PgResult r, c->Query("SELECT current_schema()", {}, "postgres: current_schema()"));
  if (r.rows() != 1 || r.IsNull(0, 0)) {
    return absl::FailedPreconditionError(
        "postgres: no current schema (the search_path names no existing schema)");
  }
  c->schema_ = r.Get(0, 0);
  return c;
}

PgConnection::~PgConnection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

bool PgConnection::ok() const { return PQstatus(conn_) == CONNECTION_OK; }

absl::Status PgConnection::Reset() {
  PQreset(conn_);
  if (!ok()) {
    return absl::UnavailableError(absl::StrCat(
        "postgres: reconnect failed: ", absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn_))));
  }
  return absl::OkStatus();
}

absl::Status PgConnection::Exec(absl::string_view sql, absl::string_view what) {
  // PQexec returns the last statement's result; an error stops the batch.
  pg_result* r = PQexec(conn_, std::string(sql).c_str());
  const ExecStatusType st = PQresultStatus(r);
  absl::Status status = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
                            ? absl::OkStatus()
                            : PgStatus(conn_, r, what);
  if (r != nullptr) PQclear(r);
  return status;
}

PgParamArrays::PgParamArrays(const std::vector<PgParam>& params)
    : values(params.size()), lengths(params.size()), formats(params.size()) {
  for (size_t i = 0; i < params.size(); ++i) {
    values[i] = params[i].null ? nullptr : params[i].value.data();
    lengths[i] = static_cast<int>(params[i].value.size());
    formats[i] = params[i].binary ? 1 : 0;
  }
}

absl::StatusOr<PgResult> PgResultOrStatus(pg_conn* conn, pg_result* r, absl::string_view what) {
  const ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return PgResult(r);
  absl::Status status = PgStatus(conn, r, what);
  if (r != nullptr) PQclear(r);
  return status;
}

absl::StatusOr<PgResult> PgConnection::Query(const std::string& sql, const std::vector<PgParam>& params,
                                             absl::string_view what, bool binary_results) {
  const PgParamArrays a(params);
  return PgResultOrStatus(conn_,
                          PQexecParams(conn_, sql.c_str(), a.size(), nullptr, a.values.data(),
                                       a.lengths.data(), a.formats.data(), binary_results ? 1 : 0),
                          what);
}

int64_t PgConnection::LockKey(absl::string_view purpose) const {
  uint64_t h = 1469598103934665603ULL;
  const std::string key = absl::StrCat(schema_, "/", purpose);
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return static_cast<int64_t>(h >> 1);
}

absl::Status PgConnection::Listen(absl::string_view channel) {
  char* quoted = PQescapeIdentifier(conn_, channel.data(), channel.size());
  if (quoted == nullptr) return PgStatus(conn_, nullptr, "postgres: LISTEN");
  const std::string sql = absl::StrCat("LISTEN ", quoted);
  PQfreemem(quoted);
  return Exec(sql, absl::StrCat("postgres: LISTEN ", channel));
}

absl::Status PgConnection::Notify(absl::string_view channel, absl::string_view payload) {
  return Query("SELECT pg_notify($1, $2)",
               {PgParam::Text(std::string(channel)), PgParam::Text(std::string(payload))},
               absl::StrCat("postgres: NOTIFY ", channel))
      .status();
}

absl::StatusOr<std::vector<PgConnection::Notification>> PgConnection::WaitForNotifications(
    absl::Duration timeout) {
  std::vector<Notification> out;
  auto drain = [&] {
    while (PGnotify* n = PQnotifies(conn_)) {
      out.push_back({n->relname, n->extra == nullptr ? "" : n->extra});
      PQfreemem(n);
    }
  };
  if (PQconsumeInput(conn_) == 0) return PgStatus(conn_, nullptr, "postgres: waiting for NOTIFY");
  drain();
  if (!out.empty()) return out;
  struct pollfd p;
  p.fd = PQsocket(conn_);
  p.events = POLLIN;
  p.revents = 0;
  if (p.fd < 0) return absl::UnavailableError("postgres: connection lost (no socket)");
  const int ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(timeout)));
  const int rc = ::poll(&p, 1, ms);
  if (rc < 0 && errno != EINTR) {
    return absl::UnavailableError(absl::StrCat("postgres: poll: ", std::strerror(errno)));
  }
  if (rc > 0) {
    if (PQconsumeInput(conn_) == 0) return PgStatus(conn_, nullptr, "postgres: waiting for NOTIFY");
    drain();
  }
  return out;
}

absl::Status ApplyPgMigrations(PgConnection& conn, absl::string_view component,
                               const std::vector<std::string>& migrations) {
  const std::string what = absl::StrCat("postgres: schema of ", component);
  const std::string lock = absl::StrCat(conn.LockKey("schema"));
  RETURN_IF_ERROR(conn.Exec("BEGIN", what));
  auto fail = [&](absl::Status s) {
    conn.Exec("ROLLBACK", what).IgnoreError();
    return s;
  };
  absl::Status s = conn.Query(absl::StrCat("SELECT pg_advisory_xact_lock(", lock, ")"), {}, what).status();
  if (s.ok()) {
    s = conn.Exec("CREATE TABLE IF NOT EXISTS optower_schema ("
                  "component TEXT PRIMARY KEY, version INTEGER NOT NULL)", what);
  }
  if (!s.ok()) return fail(s);
  absl::StatusOr<PgResult> r = conn.Query("SELECT version FROM optower_schema WHERE component = $1",
                                          {PgParam::Text(std::string(component))}, what);
  if (!r.ok()) return fail(r.status());
  const int64_t have = r->rows() == 0 ? 0 : r->GetInt(0, 0);
  const int64_t know = static_cast<int64_t>(migrations.size());
  if (have > know) {
    return fail(absl::FailedPreconditionError(absl::StrCat(
        what, " (schema \"", conn.schema(), "\") is version ", have, " but this optower knows only up to ",
        know, ": upgrade optower (a newer version wrote this database)")));
  }
  for (int64_t v = have; v < know; ++v) {
    s = conn.Exec(migrations[static_cast<size_t>(v)], absl::StrCat(what, ": migration ", v + 1));
    if (!s.ok()) return fail(s);
  }
  if (know > have) {
    r = conn.Query("INSERT INTO optower_schema (component, version) VALUES ($1, $2) "
                   "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
                   {PgParam::Text(std::string(component)), PgParam::Int(know)}, what);
    if (!r.ok()) return fail(r.status());
  }
  return conn.Exec("COMMIT", what);
}

}  // namespace optower
