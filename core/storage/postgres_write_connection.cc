#include "core/storage/postgres_write_connection.h"

#include <libpq-fe.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "core/base/status_macros.h"
#include "core/storage/event_log_validation.h"
#include "core/storage/pg_prepared.h"
#include "core/storage/postgres_event_log_schema.h"

// Contexts are stored as the raw bytes of their float32 values, as in SQLite's BLOB; that is only
// portable across the hosts we build for (all little-endian).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "context BYTEA assumes little-endian float32");

namespace optower {
namespace {

// One statement per slate: the requests row, and (only if it was new) one served row per item,
// ids $10, $10 + 1, ... in the order of the arrays (serving order). No row inserted = the
// request_id was already logged.
constexpr const char* kInsertSlateSql =
    "WITH r AS (INSERT INTO requests (request_id, k, m, epsilon, temperature, model_version, "
    "context, categorical, time_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
    "ON CONFLICT (request_id) DO NOTHING RETURNING request_id) "
    "INSERT INTO served (id, request_id, item_id, position, propensity, conditional_propensity) "
    "SELECT $10::bigint + t.ord - 1, r.request_id, t.item_id, t.position, t.propensity, "
    "t.conditional_propensity FROM r, unnest($11::bigint[], $12::integer[], "
    "$13::double precision[], $14::double precision[]) WITH ORDINALITY "
    "AS t(item_id, position, propensity, conditional_propensity, ord)";

// One statement per feedback event: was (request_id, item_id) served (by any writer: committed rows
// and those of our open transaction), and did the insert add a row (first write wins).
constexpr const char* kDecideFeedbackSql =
    "WITH s AS (SELECT 1 FROM served WHERE request_id = $1::text AND item_id = $2::bigint), "
    "ins AS (INSERT INTO feedback (request_id, item_id, reward, time_us) "
    "SELECT $1::text, $2::bigint, $3::double precision, $4::bigint WHERE EXISTS (SELECT 1 FROM s) "
    "ON CONFLICT (request_id, item_id) DO NOTHING RETURNING 1) "
    "SELECT EXISTS (SELECT 1 FROM s), EXISTS (SELECT 1 FROM ins)";

constexpr const char* kMaxServedSql = "SELECT COALESCE(MAX(id), 0) FROM served";

// Whether PostgreSQL can store `s` as TEXT: valid UTF-8 (the database encoding) without NUL.
bool IsPgText(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    int n = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    for (int k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += static_cast<size_t>(n) + 1;
  }
  return true;
}

absl::Status CheckText(absl::string_view field, absl::string_view value, absl::string_view owner) {
  if (IsPgText(value)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      owner, ": ", field, " is not valid UTF-8 text without NUL bytes (PostgreSQL TEXT)"));
}

absl::Status CheckSlateText(const ServedSlate& s) {
  const std::string owner = absl::StrCat("slate request_id=", Quoted(s.request_id));
  RETURN_IF_ERROR(CheckText("request_id", s.request_id, owner));
  RETURN_IF_ERROR(CheckText("model_version", s.model_version, owner));
  return CheckText("categorical", s.categorical, owner);
}

// A PostgreSQL array literal of the values, formatted by `format`.
template <typename T, typename F>
std::string ArrayLiteral(const std::vector<ServedItem>& items, F field, const char* format) {
  std::string out = "{";
  for (size_t j = 0; j < items.size(); ++j) {
    if (j > 0) out += ',';
    absl::StrAppendFormat(&out, format, static_cast<T>(field(items[j])));
  }
  out += '}';
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresWriteConnection>> PostgresWriteConnection::Open(
    const EventLogOptions& options, const std::string& dsn) {
  std::unique_ptr<PostgresWriteConnection> c(new PostgresWriteConnection());
  c->synchronous_ = options.durability == EventLogOptions::Durability::kSynchronous;
  // lock_timeout 0 would mean "wait forever"; SQLite's busy_timeout 0 means "do not wait".
  c->lock_timeout_ms_ = std::max<int64_t>(1, absl::ToInt64Milliseconds(options.busy_timeout));
  ASSIGN_OR_RETURN(c->conn_, PgConnection::Connect(dsn, "optower event_log writer"));
  // The migrations' CREATE ... IF NOT EXISTS would print a NOTICE to stderr on every open.
  RETURN_IF_ERROR(c->conn_->Exec("SET client_min_messages = warning", "event log: session setup"));
  RETURN_IF_ERROR(ApplyPostgresEventLogSchema(*c->conn_));
  c->begin_sql_ = absl::StrCat("BEGIN; SELECT pg_advisory_xact_lock(",
                               c->conn_->LockKey("event_log.served"), ")");
  RETURN_IF_ERROR(c->SetUpSession());
  return c;
}

absl::Status PostgresWriteConnection::SetUpSession() {
  const std::string what = "event log: session setup";
  RETURN_IF_ERROR(conn_->Exec(
      absl::StrCat("SET synchronous_commit = ", synchronous_ ? "on" : "off",
                   "; SET lock_timeout = ", lock_timeout_ms_,
                   "; SET client_min_messages = warning"),
      what));
  RETURN_IF_ERROR(conn_->Query("SELECT set_config('application_name', $1, false)",
                               {PgParam::Text(absl::StrCat("optower event_log writer ",
                                                           conn_->schema()))},
                               what)
                      .status());
  RETURN_IF_ERROR(PgPrepare(*conn_, "insert_slate", kInsertSlateSql, what));
  RETURN_IF_ERROR(PgPrepare(*conn_, "decide_feedback", kDecideFeedbackSql, what));
  return PgPrepare(*conn_, "max_served", kMaxServedSql, what);
}

absl::Status PostgresWriteConnection::BeginOnce() {
  if (!conn_->ok()) {
    RETURN_IF_ERROR(conn_->Reset());
    RETURN_IF_ERROR(SetUpSession());
  }
  RETURN_IF_ERROR(conn_->Exec(begin_sql_, "event log: BEGIN and lock event_log.served"));
  absl::StatusOr<PgResult> max_id = PgExecPrepared(*conn_, "max_served", {}, "max served id");
  RETURN_IF_ERROR(max_id.status());
  next_served_id_ = max_id->GetInt(0, 0) + 1;
  return absl::OkStatus();
}

absl::Status PostgresWriteConnection::Begin() {
  absl::Status s = BeginOnce();
  // A connection that broke while idle (server restart, pg_terminate_backend, a network drop)
  // shows up here: reconnect once at once rather than fail the batch.
  if (!s.ok() && !conn_->ok()) {
    RollbackIfOpen();
    s = BeginOnce();
  }
  if (s.ok()) return s;
  RollbackIfOpen();
  return s.code() == absl::StatusCode::kUnavailable ? s : absl::UnavailableError(s.message());
}

absl::Status PostgresWriteConnection::Commit() {
  if (!InTransaction()) {
    // COMMIT of an aborted transaction "succeeds" as a ROLLBACK: never report that as a commit.
    RollbackIfOpen();
    return absl::UnavailableError("event log: COMMIT of a transaction that had failed");
  }
  return conn_->Exec("COMMIT", "event log: COMMIT");
}

void PostgresWriteConnection::RollbackIfOpen() {
  if (!conn_->ok()) return;  // the server ended the transaction with the session
  const PGTransactionStatusType t = PQtransactionStatus(conn_->raw());
  if (t == PQTRANS_INTRANS || t == PQTRANS_INERROR) {
    conn_->Exec("ROLLBACK", "event log: ROLLBACK").IgnoreError();
  }
}

bool PostgresWriteConnection::InTransaction() const {
  return conn_->ok() && PQtransactionStatus(conn_->raw()) == PQTRANS_INTRANS;
}

absl::Status PostgresWriteConnection::InsertSlates(const std::vector<ServedSlate>& slates) {
  for (const ServedSlate& slate : slates) RETURN_IF_ERROR(CheckSlateText(slate));
  if (slates.size() == 1) return InsertSlate(slates[0]);  // one statement: atomic by itself
  const int64_t served_id_before = next_served_id_;
  RETURN_IF_ERROR(conn_->Exec("SAVEPOINT op", "event log: SAVEPOINT"));
  for (const ServedSlate& slate : slates) {
    absl::Status s = InsertSlate(slate);
    if (!s.ok()) {
      next_served_id_ = served_id_before;
      if (InTransaction()) {
        conn_->Exec("ROLLBACK TO SAVEPOINT op; RELEASE SAVEPOINT op", "event log: ROLLBACK TO")
            .IgnoreError();
      }
      return s;
    }
  }
  return conn_->Exec("RELEASE SAVEPOINT op", "event log: RELEASE");
}

absl::Status PostgresWriteConnection::InsertSlate(const ServedSlate& slate) {
  const int64_t first_served = next_served_id_;
  std::vector<PgParam> p;
  p.reserve(14);
  p.push_back(PgParam::Text(slate.request_id));
  p.push_back(PgParam::Int(slate.k));
  p.push_back(PgParam::Int(slate.m));
  p.push_back(PgParam::Double(slate.epsilon));
  p.push_back(PgParam::Double(slate.temperature));
  p.push_back(PgParam::Text(slate.model_version));
  p.push_back(PgParam::Bytes(std::string(reinterpret_cast<const char*>(slate.context.data()),
                                         slate.context.size() * sizeof(float))));
  p.push_back(PgParam::Text(slate.categorical));
  p.push_back(PgParam::Int(slate.time_us));
  p.push_back(PgParam::Int(first_served));
  p.push_back(PgParam::Text(
      ArrayLiteral<long long>(slate.items, [](const ServedItem& i) { return i.item_id; }, "%d")));
  p.push_back(PgParam::Text(
      ArrayLiteral<int>(slate.items, [](const ServedItem& i) { return i.position; }, "%d")));
  p.push_back(PgParam::Text(ArrayLiteral<double>(
      slate.items, [](const ServedItem& i) { return i.propensity; }, "%.17g")));
  p.push_back(PgParam::Text(ArrayLiteral<double>(
      slate.items, [](const ServedItem& i) { return i.conditional_propensity; }, "%.17g")));
  const std::string what = absl::StrCat("insert slate request_id=", Quoted(slate.request_id));
  ASSIGN_OR_RETURN(PgResult r, PgExecPrepared(*conn_, "insert_slate", p, what));
  if (r.affected() == 0) {
    return absl::AlreadyExistsError(absl::StrCat(what, ": this request_id is already logged"));
  }
  next_served_id_ = first_served + static_cast<int64_t>(slate.items.size());
  return absl::OkStatus();
}

absl::StatusOr<FeedbackOutcome> PostgresWriteConnection::Decide(const FeedbackEvent& e) {
  ASSIGN_OR_RETURN(PgResult r,
                   PgExecPrepared(*conn_, "decide_feedback",
                                  {PgParam::Text(e.request_id), PgParam::Int(e.item_id),
                                   PgParam::Double(e.reward), PgParam::Int(e.time_us)},
                                  [&] {
                                    return absl::StrCat("feedback request_id=",
                                                        Quoted(e.request_id),
                                                        " item_id=", e.item_id);
                                  }()));
  if (!r.GetBool(0, 0)) return FeedbackOutcome::kUnknown;
  return r.GetBool(0, 1) ? FeedbackOutcome::kAccepted : FeedbackOutcome::kDuplicate;
}

absl::Status PostgresWriteConnection::DecideFeedback(const std::vector<FeedbackEvent>& events,
                                                     std::vector<FeedbackOutcome>& outcomes,
                                                     int64_t& accepted) {
  for (const FeedbackEvent& e : events) {
    RETURN_IF_ERROR(CheckText("request_id", e.request_id,
                              absl::StrCat("feedback item_id=", e.item_id)));
  }
  // Any error of a statement aborts the transaction, so a failed event takes the earlier ones of
  // the call with it (the batch is retried without this op): atomic without a savepoint.
  outcomes.clear();
  outcomes.reserve(events.size());
  accepted = 0;
  for (const FeedbackEvent& e : events) {
    ASSIGN_OR_RETURN(const FeedbackOutcome o, Decide(e));
    outcomes.push_back(o);
    if (o == FeedbackOutcome::kAccepted) ++accepted;
  }
  return absl::OkStatus();
}

}  // namespace optower
