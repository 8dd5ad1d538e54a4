// PgConnection: one libpq connection with absl::Status errors, the thin layer every PostgreSQL
// backend of optower (event log, catalog, model registry, trainer election) is written on
// (docs/SCALING.md). libpq (Debian's libpq-dev) rather than libpqxx 6.4: libpqxx reports errors by
// exceptions, while optower returns absl::Status everywhere, and it would be a second dependency
// wrapping the first; the C API, a few RAII holders and one error mapping are all we need.
//
// Errors map to absl codes by SQLSTATE class (PgStatus): connection failures and server shutdown
// (08, 57P01-57P03), out of resources such as a full disk (53) and lock timeouts (55P03) are
// Unavailable (retryable write faults); unique violations (23505) AlreadyExists; serialization
// failures and deadlocks (40) Aborted; other integrity or data errors (22, 23) InvalidArgument;
// anything else Internal. Messages carry the context given by the caller and PostgreSQL's message,
// never the connection string (it may hold a password).
//
// Thread safety: none; one connection per thread (as libpq requires).
#ifndef OPTOWER_CORE_STORAGE_PG_CONNECTION_H_
#define OPTOWER_CORE_STORAGE_PG_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

struct pg_conn;
struct pg_result;

namespace optower {

// The connection string: the file's content (trailing whitespace removed) when `dsn_file` is set,
// else the environment variable `env_name`. InvalidArgument naming the file (or the variable) when
// it is missing or empty; never echoes the content.
absl::StatusOr<std::string> LoadPgDsn(const std::string& dsn_file, const char* env_name = "OPTOWER_PG_DSN");

// One query parameter, sent as text (numbers, strings) or binary (bytea).
struct PgParam {
  std::string value;
  bool binary = false;
  bool null = false;
  static PgParam Text(std::string v) { return PgParam{std::move(v), false, false}; }
  static PgParam Bytes(std::string v) { return PgParam{std::move(v), true, false}; }
  static PgParam Int(int64_t v);
  static PgParam Double(double v);  // "%.17g": parses back to the same double
  static PgParam Bool(bool v) { return Text(v ? "t" : "f"); }
  static PgParam Null() { return PgParam{std::string(), false, true}; }
};

// A query's rows. Values are read as text (the default result format), bytea columns as binary
// when the query was run with binary_results (PgConnection::Query).
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(pg_result* r);
  PgResult(PgResult&& o) noexcept;
  PgResult& operator=(PgResult&& o) noexcept;
  ~PgResult();

  int rows() const;
  int columns() const;
  bool IsNull(int row, int col) const;
  std::string Get(int row, int col) const;  // raw bytes (text, or binary with binary_results)
  int64_t GetInt(int row, int col) const;   // 0 for NULL; text results only
  double GetDouble(int row, int col) const; // exact for what PgParam::Double sent
  bool GetBool(int row, int col) const;     // text results only ('t')
  int64_t affected() const;                 // rows affected by INSERT/UPDATE/DELETE

 private:
  pg_result* r_ = nullptr;
};

class PgConnection {
 public:
  // Connects (waiting at most `connect_timeout`) and sets application_name. Unavailable when the
  // server cannot be reached or refuses the login (PostgreSQL's message, without the DSN).
  static absl::StatusOr<std::unique_ptr<PgConnection>> Connect(
      const std::string& dsn, absl::string_view application_name,
      absl::Duration connect_timeout = absl::Seconds(10));
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one or more statements without parameters (BEGIN, COMMIT, DDL...). `what` prefixes errors.
  absl::Status Exec(absl::string_view sql, absl::string_view what);
  // Runs one statement with $1.. parameters. binary_results: every column comes back in binary
  // (use it only for queries whose columns are all bytea).
  absl::StatusOr<PgResult> Query(const std::string& sql, const std::vector<PgParam>& params,
                                 absl::string_view what, bool binary_results = false);

  // True while the connection is up (libpq's CONNECTION_OK).
  bool ok() const;
  // Re-establishes a broken connection (PQreset). Unavailable if that fails.
  absl::Status Reset();

  // The schema that unqualified names resolve to (current_schema(), read at Connect). Every
  // optower table lives there, so one database can hold several deployments, one per schema
  // (tests use one schema each); advisory-lock keys are derived from it (LockKey).
  const std::string& schema() const { return schema_; }
  // A 63-bit advisory-lock key for `purpose` in this connection's schema (FNV-1a of
  // "<schema>/<purpose>"): the same on every process of a deployment, distinct across schemas.
  int64_t LockKey(absl::string_view purpose) const;

  // LISTEN on `channel` (an identifier). Notifications then arrive through WaitForNotifications.
  absl::Status Listen(absl::string_view channel);
  // NOTIFY `channel` with `payload` (pg_notify; delivered at commit when inside a transaction).
  absl::Status Notify(absl::string_view channel, absl::string_view payload);
  struct Notification {
    std::string channel;
    std::string payload;
  };
  // Waits at most `timeout` for notifications and returns those received (possibly none).
  // Unavailable when the connection broke (call Reset, LISTEN again, then re-read the state).
  absl::StatusOr<std::vector<Notification>> WaitForNotifications(absl::Duration timeout);

  pg_conn* raw() { return conn_; }

 private:
  explicit PgConnection(pg_conn* conn) : conn_(conn) {}
  pg_conn* conn_;
  std::string schema_;
};

// libpq's parallel arrays for a parameter list (PQexecParams, PQexecPrepared); points into
// `params`, which must outlive it.
struct PgParamArrays {
  explicit PgParamArrays(const std::vector<PgParam>& params);
  int size() const { return static_cast<int>(values.size()); }
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
};
// `r` as a PgResult when the statement succeeded, else its PgStatus (and `r` is freed).
absl::StatusOr<PgResult> PgResultOrStatus(pg_conn* conn, pg_result* r, absl::string_view what);

// The status for a failed result (or a connection error when `r` is null): code by SQLSTATE as in
// the file comment, message "<what>: <PostgreSQL's message> (SQLSTATE xxxxx)".
absl::Status PgStatus(pg_conn* conn, pg_result* r, absl::string_view what);

// Versioned schema migrations of one component ("event_log", "catalog", "models"), kept in the
// table optower_schema(component, version). migrations[i] takes the component from version i to
// i + 1; each runs once, in its own transaction under a transaction-scoped advisory lock, so
// several processes starting at once apply it once. FailedPrecondition, saying which component,
// which version the database holds and which this build knows, when the database is newer than
// the code ("upgrade optower"); never downgrades.
absl::Status ApplyPgMigrations(PgConnection& conn, absl::string_view component,
                               const std::vector<std::string>& migrations);

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_PG_CONNECTION_H_
