#include "core/storage/postgres_event_log_reader.h"

#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

// Contexts are stored as the raw bytes of their float32 values (postgres_write_connection.cc).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "context BYTEA assumes little-endian float32");

namespace optower {
namespace {

// Columns of kPgReadJoinedSql.
enum PgJoinColumn {
  kPgServedId, kPgRequestId, kPgItemId, kPgPosition, kPgPropensity, kPgConditionalPropensity,
  kPgK, kPgM, kPgEpsilon, kPgTemperature, kPgModelVersion, kPgContext, kPgCategorical,
  kPgServedTime, kPgReward, kPgFeedbackTime, kPgNumColumns
};

constexpr const char* kPgReadJoinedSql =
    "SELECT s.id, s.request_id, s.item_id, s.position, s.propensity, s.conditional_propensity, "
    "r.k, r.m, r.epsilon, r.temperature, r.model_version, r.context, r.categorical, r.time_us, "
    "f.reward, f.time_us FROM served AS s JOIN requests AS r ON r.request_id = s.request_id "
    "LEFT JOIN feedback AS f ON f.request_id = s.request_id AND f.item_id = s.item_id "
    "WHERE s.id >= $1::bigint AND s.id <= $2::bigint ORDER BY s.id LIMIT $3::bigint";

uint64_t LoadBigEndian64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return __builtin_bswap64(v);
}
uint32_t LoadBigEndian32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return __builtin_bswap32(v);
}

// Binary result values: network byte order (int8, int4, float8 as IEEE binary64).
class BinaryRow {
 public:
  BinaryRow(const PgResult& r, int row) : r_(r), row_(row) {}
  absl::StatusOr<int64_t> Int64(int col) const {
    ASSIGN_OR_RETURN(std::string v, Raw(col, 8));
    return static_cast<int64_t>(LoadBigEndian64(v.data()));
  }
  absl::StatusOr<int32_t> Int32(int col) const {
    ASSIGN_OR_RETURN(std::string v, Raw(col, 4));
    return static_cast<int32_t>(LoadBigEndian32(v.data()));
  }
  absl::StatusOr<double> Double(int col) const {
    ASSIGN_OR_RETURN(std::string v, Raw(col, 8));
    const uint64_t bits = LoadBigEndian64(v.data());
    double d;
    std::memcpy(&d, &bits, sizeof(d));
    return d;
  }
  std::string Bytes(int col) const { return r_.Get(row_, col); }
  bool IsNull(int col) const { return r_.IsNull(row_, col); }

 private:
  absl::StatusOr<std::string> Raw(int col, size_t size) const {
    std::string v = r_.Get(row_, col);
    if (v.size() != size) {
      return absl::DataLossError(absl::StrCat("event log: column ", col, " of row ", row_, " has ",
                                              v.size(), " bytes, expected ", size));
    }
    return v;
  }
  const PgResult& r_;
  int row_;
};

absl::Status DecodePgRequestFields(const BinaryRow& b, EventLog::JoinedRow& r) {
  r.request_id = b.Bytes(kPgRequestId);
  r.model_version = b.Bytes(kPgModelVersion);
  r.categorical = b.Bytes(kPgCategorical);
  const std::string context = b.Bytes(kPgContext);
  if (context.size() % sizeof(float) != 0) {
    return absl::DataLossError(absl::StrCat("requests request_id='", r.request_id, "': context of ",
                                            context.size(), " bytes is not a float32 array"));
  }
  r.context.resize(context.size() / sizeof(float));
  if (!context.empty()) std::memcpy(r.context.data(), context.data(), context.size());
  return absl::OkStatus();
}

// Row `row` of the join. `prev`: the row before it, or null.
absl::StatusOr<EventLog::JoinedRow> DecodePgRow(const PgResult& result, int row,
                                              const EventLog::JoinedRow* prev) {
  const BinaryRow b(result, row);
  EventLog::JoinedRow r;
  ASSIGN_OR_RETURN(r.served_id, b.Int64(kPgServedId));
  ASSIGN_OR_RETURN(r.item_id, b.Int64(kPgItemId));
  ASSIGN_OR_RETURN(r.position, b.Int32(kPgPosition));
  ASSIGN_OR_RETURN(r.propensity, b.Double(kPgPropensity));
  ASSIGN_OR_RETURN(r.conditional_propensity, b.Double(kPgConditionalPropensity));
  ASSIGN_OR_RETURN(r.k, b.Int32(kPgK));
  ASSIGN_OR_RETURN(r.m, b.Int32(kPgM));
  ASSIGN_OR_RETURN(r.epsilon, b.Double(kPgEpsilon));
  ASSIGN_OR_RETURN(r.temperature, b.Double(kPgTemperature));
  ASSIGN_OR_RETURN(r.served_time_us, b.Int64(kPgServedTime));
  if (prev != nullptr && result.Get(row, kPgRequestId) == prev->request_id) {
    // Items of one request are adjacent in served-id order: copy its strings and context.
    r.request_id = prev->request_id;
    r.model_version = prev->model_version;
    r.context = prev->context;
    r.categorical = prev->categorical;
  } else {
    RETURN_IF_ERROR(DecodePgRequestFields(b, r));
  }
  r.has_feedback = !b.IsNull(kPgReward);
  if (r.has_feedback) {
    ASSIGN_OR_RETURN(r.reward, b.Double(kPgReward));
    ASSIGN_OR_RETURN(r.feedback_time_us, b.Int64(kPgFeedbackTime));
  }
  return r;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresEventLogReader>> PostgresEventLogReader::Open(
    const std::string& dsn) {
  std::unique_ptr<PostgresEventLogReader> r(new PostgresEventLogReader());
  absl::MutexLock l(&r->mu_);
  ASSIGN_OR_RETURN(r->conn_, PgConnection::Connect(dsn, "optower event_log reader"));
  return r;
}

absl::StatusOr<PgResult> PostgresEventLogReader::Run(const std::string& sql,
                                                     const std::vector<PgParam>& params,
                                                     const char* what, bool binary) const {
  mu_.AssertHeld();
  if (!conn_->ok()) RETURN_IF_ERROR(conn_->Reset());
  absl::StatusOr<PgResult> r = conn_->Query(sql, params, what, binary);
  if (r.ok() || conn_->ok()) return r;
  // The connection broke (server restart, a terminated backend): reconnect and try once more.
  RETURN_IF_ERROR(conn_->Reset());
  return conn_->Query(sql, params, what, binary);
}

absl::StatusOr<std::vector<EventLog::JoinedRow>> PostgresEventLogReader::ReadJoined(
    const EventLog::ReadOptions& options) const {
  absl::MutexLock l(&mu_);
  ASSIGN_OR_RETURN(
      PgResult result,
      Run(kPgReadJoinedSql,
          {PgParam::Int(options.min_served_id),
           PgParam::Int(options.max_served_id < 0 ? std::numeric_limits<int64_t>::max()
                                                   : options.max_served_id),
           // LIMIT NULL = no limit
           options.max_rows < 0 ? PgParam::Null() : PgParam::Int(options.max_rows)},
          "event log: read joined log", /*binary=*/true));
  if (result.columns() != kPgNumColumns) {
    return absl::InternalError(absl::StrCat("event log: the join returned ", result.columns(),
                                            " columns, expected ", kPgNumColumns));
  }
  std::vector<EventLog::JoinedRow> rows;
  rows.reserve(static_cast<size_t>(result.rows()));
  for (int i = 0; i < result.rows(); ++i) {
    ASSIGN_OR_RETURN(EventLog::JoinedRow row,
                     DecodePgRow(result, i, rows.empty() ? nullptr : &rows.back()));
    rows.push_back(std::move(row));
  }
  return rows;
}

absl::StatusOr<int64_t> PostgresEventLogReader::MaxServedId() const {
  absl::MutexLock l(&mu_);
  ASSIGN_OR_RETURN(PgResult r, Run("SELECT COALESCE(MAX(id), 0) FROM served", {},
                                   "event log: max served id", false));
  return r.GetInt(0, 0);
}

absl::StatusOr<int64_t> PostgresEventLogReader::CountFeedback() const {
  absl::MutexLock l(&mu_);
  ASSIGN_OR_RETURN(PgResult r, Run("SELECT COUNT(*) FROM feedback", {},
                                   "event log: count feedback", false));
  return r.GetInt(0, 0);
}

}  // namespace optower
